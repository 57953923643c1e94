/**
 * Interop (d): two of our tNVE daemons behind a Linux bridge share one port of our nNVE
 * (Req-1/2). Station 1 sends its ECP frames to the nNVE's unicast MAC (`--uplink IF@MAC`);
 * station 2 uses a configured group address that bridges forward, for LLDP and ECP (--config
 * JSON on both daemons). The nNVE keeps one session per station MAC: the same VSI id on both
 * stations gives two TSIs with their own states; one VN gets one VID on the port. Every frame
 * the daemons sent decodes cleanly and carries the expected destination (e).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it, type TestContext } from 'node:test';
import { evbTimerMs } from '../harness/lldpad.js';
import { Lab } from '../harness/netns.js';
import { sleep } from '../harness/proc.js';
import {
  Capture,
  SplitnveDaemon,
  checkFrames,
  decodeCapture,
  poll,
  withLogs,
  daemonTails,
} from '../harness/splitnve.js';

const ST1 = '02:00:00:00:aa:01';
const ST2 = '02:00:00:00:aa:02';
const NVE = '02:00:00:00:bb:01';
/** A locally administered group address: any bridge floods it (not an 01-80-C2 address). */
const GROUP = '03:53:4e:00:00:01';
const NCB = '01:80:c2:00:00:00';
// RTE 10: a 10 ms ACK timer; with RTE 8 (2.56 ms, 4 tries in 10 ms) a daemon stalled 10 ms by a
// loaded 2-core CI machine made lldpad give up a keep-alive (it never retries one).
const EVB = { r: 3, rte: 10, rwd: 14, rka: 16 };

function spec(n: number, vni: number, vid = 0): Record<string, unknown> {
  const hex = n.toString(16).padStart(2, '0');
  return {
    managerId: 'nvemgr1',
    typeId: 9,
    typeVersion: 1,
    idFormat: 5,
    id: `e1b2c3d4-0001-4000-8000-0000000000${hex}`,
    filterFormat: 4,
    entries: [{ groupId: vni, mac: `02:00:00:02:00:${hex}`, vid }],
  };
}
const uuid = (n: number): string => (spec(n, 1).id as string).toLowerCase();

interface NnveVsi {
  port: string;
  station: string;
  vsi: string;
  state: string;
  vdpState: string;
  entries: { vid: number }[];
}
interface StationView {
  port: string;
  station: string;
  vsis: number;
  ecp: { rxRequests: number; txRequests: number };
}

describe('interop (d): two splitnve stations behind a Linux bridge share one nNVE port', () => {
  let lab: Lab | undefined;
  let nnve: SplitnveDaemon;
  let tnve1: SplitnveDaemon;
  let tnve2: SplitnveDaemon;
  let capture: Capture;

  const logs = daemonTails(() => ({ nnve, tnve1, tnve2 }));
  const step = (fn: (t: TestContext) => Promise<void>): ((t: TestContext) => Promise<void>) =>
    withLogs(() => lab, logs, fn);

  const request = async (
    d: SplitnveDaemon,
    mode: string,
    vsi: Record<string, unknown>,
  ): Promise<{ state: string; entries: { vid: number }[] }> => {
    const r = await d.post<{ state: string; entries: { vid: number }[] }>('/v1/requests', {
      mode,
      vsi,
      timeoutMs: 10_000,
    });
    assert.equal(r.status, 200, `${mode} ${String(vsi.id)}: ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const nVsis = async (): Promise<NnveVsi[]> => nnve.get<NnveVsi[]>('/v1/vsis');

  before(async () => {
    lab = Lab.create('sni');
    const brNs = await lab.addNetns('br');
    const st1Ns = await lab.addNetns('st1');
    const st2Ns = await lab.addNetns('st2');
    await lab.addSwitch({
      nve: { netns: brNs, name: 'vbr0', mac: NVE },
      stations: [
        { netns: st1Ns, name: 'vs0', mac: ST1 },
        { netns: st2Ns, name: 'vs1', mac: ST2 },
      ],
    });
    capture = await Capture.start(lab, brNs, 'vbr0', 'd-nve');
    const nnveConfig = lab.file('nnve.json');
    writeFileSync(
      nnveConfig,
      JSON.stringify({
        ports: [{ name: 'vbr0', groupAddresses: [GROUP] }],
        vlanPool: '100-199',
        profile: 'splitnve',
        evb: EVB,
      }),
    );
    const tnve2Config = lab.file('tnve2.json');
    writeFileSync(
      tnve2Config,
      JSON.stringify({
        uplinks: [{ name: 'vs1', peer: GROUP, evb: { destination: GROUP } }],
        profile: 'splitnve',
        evb: EVB,
      }),
    );
    nnve = await SplitnveDaemon.start(lab, {
      name: 'nnve',
      netns: brNs,
      kind: 'nnve',
      args: ['--config', nnveConfig],
    });
    const evbFlags = ['--r', '3', '--rte', '10', '--rwd', '14', '--rka', '16'];
    [tnve1, tnve2] = await Promise.all([
      SplitnveDaemon.start(lab, {
        name: 'tnve1',
        netns: st1Ns,
        kind: 'tnve',
        args: ['--uplink', `vs0@${NVE}`, '--profile', 'splitnve', ...evbFlags],
      }),
      SplitnveDaemon.start(lab, {
        name: 'tnve2',
        netns: st2Ns,
        kind: 'tnve',
        args: ['--config', tnve2Config],
      }),
    ]);
  });

  after(async () => {
    await lab?.close();
  });

  it(
    'both stations negotiate EVB with the nNVE through the bridge',
    step(async () => {
      for (const d of [tnve1, tnve2]) {
        const u = await poll(
          `${d.opts.name} negotiated`,
          async () => {
            const [x] = await d.get<{ bridge: string | null; profile: string }[]>('/v1/uplinks');
            return x?.profile === 'splitnve' ? x : undefined;
          },
          20_000,
        );
        assert.equal(u.bridge, NVE);
      }
      const peers = await poll('two peers on vbr0', async () => {
        const p =
          await nnve.get<{ port: string; peer: string; negotiated: unknown }[]>('/v1/peers');
        return p.filter((x) => x.negotiated).length === 2 ? p : undefined;
      });
      assert.deepEqual(peers.map((p) => [p.port, p.peer]).sort(), [
        ['vbr0', ST1],
        ['vbr0', ST2],
      ]);
    }),
  );

  it(
    'keeps one session per station: same VN -> one VID on the port, own VSIs and ECP state',
    step(async () => {
      const a = await request(tnve1, 'associate', spec(1, 7001));
      const b = await request(tnve2, 'associate', spec(2, 7001));
      assert.equal(a.state, 'Activated');
      assert.equal(b.state, 'Activated');
      assert.equal(a.entries[0]!.vid, b.entries[0]!.vid, 'one VID per (port, VN)');
      const stations = await nnve.get<StationView[]>('/v1/stations');
      assert.deepEqual(stations.map((s) => [s.port, s.station, s.vsis]).sort(), [
        ['vbr0', ST1, 1],
        ['vbr0', ST2, 1],
      ]);
      for (const s of stations) assert.ok(s.ecp.rxRequests >= 1 && s.ecp.txRequests >= 1);
      const vaps =
        await nnve.get<{ vni: number; vid: number; tsis: number; stations: number }[]>('/v1/vaps');
      assert.deepEqual(
        vaps.map((v) => [v.vni, v.vid, v.tsis, v.stations]),
        [[7001, a.entries[0]!.vid, 2, 2]],
      );
    }),
  );

  it(
    'the same VSI id on both stations is two TSIs, each with its own state',
    step(async () => {
      await request(tnve1, 'pre-associate', spec(3, 7003));
      await request(tnve2, 'pre-associate', spec(3, 7003));
      let both = (await nVsis()).filter((v) => v.vsi === uuid(3));
      assert.deepEqual(both.map((v) => [v.station, v.vdpState]).sort(), [
        [ST1, 'pre-associated'],
        [ST2, 'pre-associated'],
      ]);
      // Station 1 activates it; station 2's TSI stays as it is.
      const vid = both[0]!.entries[0]!.vid;
      await request(tnve1, 'associate', spec(3, 7003, vid));
      both = (await nVsis()).filter((v) => v.vsi === uuid(3));
      assert.deepEqual(both.map((v) => [v.station, v.vdpState]).sort(), [
        [ST1, 'associated'],
        [ST2, 'pre-associated'],
      ]);
      // Keep-alives of both hold everything for a few periods.
      await sleep(4 * evbTimerMs(EVB.rka));
      assert.equal(
        nnve.events('tsi.state').filter((e) => e.cause === 'keepalive-expired').length,
        0,
      );
      assert.equal((await nVsis()).length, 4);
      // Station 2 de-associates its TSI: station 1's is untouched.
      await request(tnve2, 'de-associate', spec(3, 7003, vid));
      both = (await nVsis()).filter((v) => v.vsi === uuid(3));
      assert.deepEqual(
        both.map((v) => [v.station, v.state]),
        [[ST1, 'Activated']],
      );
    }),
  );

  it(
    '(e) frames go to the nNVE unicast MAC or the forwarded group and decode cleanly',
    step(async (t) => {
      const file = await capture.stop();
      const r = await checkFrames(file, [ST1, ST2, NVE]);
      assert.deepEqual(r.problems, []);
      const frames = await decodeCapture(file);
      const dsts = (src: string, ethertype: number): Set<string> =>
        new Set(
          frames
            .filter(
              (f) =>
                f.ethernet?.source === src &&
                (f.ethernet as { ethertype?: number }).ethertype === ethertype,
            )
            .map((f) => f.ethernet!.destination),
        );
      const ECP = 0x8940;
      const LLDP = 0x88cc;
      assert.deepEqual([...dsts(ST1, ECP)], [NVE], 'station 1: ECP to the nNVE unicast MAC');
      assert.deepEqual([...dsts(ST2, ECP)], [GROUP], 'station 2: ECP to the group');
      assert.deepEqual([...dsts(ST2, LLDP)], [GROUP], 'station 2: LLDP to the group');
      assert.deepEqual([...dsts(ST1, LLDP)], [NCB]);
      // The nNVE answers each where it sends: station 1 at its MAC, station 2 at the group.
      assert.deepEqual([...dsts(NVE, ECP)].sort(), [ST1, GROUP].sort());
      t.diagnostic(`${r.checked} of ${r.frames} frames checked`);
    }),
  );
});
