/**
 * Several stations and one nNVE port on a Linux bridge (Lab.addSwitch): what the bridge forwards
 * of the 01:80:C2:00:00:0X group addresses, checked with lldpad's own agents.
 *  - :00 (nearest customer bridge: EVB TLV, ECP/VDP) crosses the bridge with group_fwd_mask 0;
 *  - :0E (nearest bridge, plain LLDP) crosses only once bit 14 (0x4000) is set;
 *  - bits 0-2 of group_fwd_mask are refused by the kernel;
 *  - isolated station ports never hear each other.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Lldpad, waitEvbNegotiated, type EvbParams } from '../harness/lldpad.js';
import { Lab, getGroupFwdMask, setGroupFwdMask, type SwitchInfo } from '../harness/netns.js';
import { run, waitUntil } from '../harness/proc.js';

const EVB: EvbParams = { retries: 3, rte: 10, rwd: 17, rka: 17 };
const NVE_MAC = '02:00:00:00:bb:01';
const ST_MACS = ['02:00:00:00:aa:01', '02:00:00:00:aa:02'];

/** Chassis ID MAC of the neighbour the agent last heard, or undefined. */
async function neighbourMac(d: Lldpad, agent: 'nb' | 'ncb'): Promise<string | undefined> {
  const out = await d.lldptool(['-t', '-n', '-i', d.ifname, '-g', agent, '-V', 'chassisID']);
  return /MAC:\s*([0-9a-f:]{17})/i.exec(out)?.[1]?.toLowerCase();
}

async function framesSent(d: Lldpad, agent: 'nb' | 'ncb'): Promise<number> {
  const out = await d.lldptool(['-S', '-i', d.ifname, '-g', agent]);
  return Number(/Total Frames Transmitted\s*=\s*(\d+)/.exec(out)?.[1] ?? NaN);
}

describe('stations and an nNVE on a Linux bridge', () => {
  let lab: Lab;
  let sw: SwitchInfo;
  let nve: Lldpad;
  let stations: Lldpad[];

  before(async () => {
    lab = Lab.create('snl');
    const nveNs = await lab.addNetns('nve');
    const stNs = [await lab.addNetns('st0'), await lab.addNetns('st1')];
    sw = await lab.addSwitch({
      nve: { netns: nveNs, name: 'nve0', mac: NVE_MAC },
      stations: stNs.map((ns, i) => ({ netns: ns, name: `st${i}`, mac: ST_MACS[i] })),
    });
    [nve, ...stations] = await Promise.all([
      Lldpad.start(lab, { netns: nveNs, ifname: 'nve0', role: 'bridge', evb: EVB }),
      ...stNs.map((ns, i) =>
        Lldpad.start(lab, { netns: ns, ifname: `st${i}`, role: 'station', evb: EVB }),
      ),
    ]);
    // Plain LLDP (nearest bridge agent, 01:80:C2:00:00:0E) on the nNVE and station 1 for now.
    for (const d of [nve, stations[1]!]) {
      await d.lldptool(['-L', '-i', d.ifname, 'adminStatus=rxtx']);
    }
  });

  after(async () => {
    await lab?.close();
  });

  it('builds the bridge with STP off and refuses mask bits 0-2', async () => {
    assert.equal(await getGroupFwdMask(sw.netns, sw.bridge), 0);
    const stp = await run('cat', [`/sys/class/net/${sw.bridge}/bridge/stp_state`], {
      netns: sw.netns,
    });
    assert.equal(stp.stdout.trim(), '0');
    // The kernel itself refuses the restricted bits (01:80:C2:00:00:00-02) ...
    const r = await run('ip', [
      '-n',
      sw.netns,
      'link',
      'set',
      sw.bridge,
      'type',
      'bridge',
      'group_fwd_mask',
      '1',
    ]);
    assert.notEqual(r.code, 0, 'group_fwd_mask 0x1 must be refused');
    // ... and the harness says why before asking.
    await assert.rejects(setGroupFwdMask(sw.netns, sw.bridge, 0x4), /restricted/);
    assert.equal(await getGroupFwdMask(sw.netns, sw.bridge), 0);
  });

  it('forwards 01:80:C2:00:00:00: EVB negotiates through the bridge for every station', async () => {
    for (const st of stations) {
      const neg = await waitEvbNegotiated(st, nve, 20_000);
      assert.equal(neg.station.rrstat, 1);
      // The ncb neighbour of each station is the nNVE, never the other station.
      assert.equal(await neighbourMac(st, 'ncb'), NVE_MAC);
    }
    // The nNVE hears stations (which one last depends on timing).
    assert.ok(ST_MACS.includes((await neighbourMac(nve, 'ncb')) ?? ''));
  });

  it('drops 01:80:C2:00:00:0E until group_fwd_mask has bit 14 set', async () => {
    // By now both nearest-bridge agents have sent LLDPDUs; none crossed the bridge.
    for (const d of [nve, stations[1]!]) {
      assert.ok((await framesSent(d, 'nb')) >= 1, `${d.ifname} sent nearest-bridge LLDPDUs`);
      assert.equal(await neighbourMac(d, 'nb'), undefined, `${d.ifname}: no nb neighbour`);
    }
    // Station 1 only listens from now on (its shutdown LLDPDU is still dropped).
    await stations[1]!.lldptool(['-L', '-i', 'st1', 'adminStatus=rx']);
    await setGroupFwdMask(sw.netns, sw.bridge, 0x4000);
    assert.equal(await getGroupFwdMask(sw.netns, sw.bridge), 0x4000);
    // Station 0 starts plain LLDP now (fast transmission: one LLDPDU per second at first).
    await stations[0]!.lldptool(['-L', '-i', 'st0', 'adminStatus=rxtx']);
    await waitUntil(
      'the nNVE to hear station 0 on the nearest-bridge address',
      async () => (await neighbourMac(nve, 'nb')) === ST_MACS[0],
      { timeoutMs: 5000, intervalMs: 100 },
    );
    // Station 1 shares the flood domain but its port is isolated from station 0's (it may hear
    // the nNVE's own nearest-bridge LLDPDUs, never station 0's).
    assert.notEqual(await neighbourMac(stations[1]!, 'nb'), ST_MACS[0], 'isolated stations');
  });
});
