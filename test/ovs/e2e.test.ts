/**
 * Two nNVEs (OvsDataPlane on two userspace OVS instances in two namespaces) joined by an
 * underlay veth, and a "hypervisor" namespace whose own OVS bridges tag the VMs' frames onto
 * 802.1Q trunks (the kernel here has no VLAN devices):
 *
 *   v1 (02:..:0a:01, 192.0.2.11) ─┐ tag 10                          ┌ tag 20 ─ v4 (02:..:0b:01, .12)
 *   v2 (02:..:0a:02, 192.0.2.21) ─┤ hv bridge ha ══ trunk ta ─ nNVE A ~~ VXLAN ~~ nNVE B ─ tb ══ hb
 *   v3 (02:..:0a:03, 192.0.2.13) ── hv bridge hx ══ trunk xa ─┘ (tag 30)
 *
 * All of VLAN 10 @ta, VLAN 30 @xa (nNVE A) and VLAN 20 @tb (nNVE B) map to VNI 5000. v1, v3 and
 * v4 are endpoints the nNVEs know (as from VDP associations, remotes/flood lists as from the
 * NVA); v2 is on VLAN 10 but not associated.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { DataPlaneState } from '../../src/dataplane/dataplane.js';
import { OvsDataPlane, baseFlows, flowCookie, flowText } from '../../src/dataplane/ovs.js';
import { sortState } from '../../src/dataplane/state.js';
import { Lab, OvsInstance, nsRun, ping, pingEventually, waitFor } from '../harness/ovs.js';

const lab = new Lab(`sno${process.pid}`);
const n = (s: string): string => lab.name(s);
const VNI = 5000;
const TIP_A = '198.18.0.1';
const TIP_B = '198.18.0.2';
const MAC = {
  v1: '02:00:00:00:0a:01',
  v2: '02:00:00:00:0a:02',
  v3: '02:00:00:00:0a:03',
  v4: '02:00:00:00:0b:01',
};
const IP = { v1: '192.0.2.11', v2: '192.0.2.21', v3: '192.0.2.13', v4: '192.0.2.12' };

let ovsA: OvsInstance;
let ovsB: OvsInstance;
let ovsH: OvsInstance;
let dpA: OvsDataPlane;
let dpB: OvsDataPlane;
const vm: Record<'v1' | 'v2' | 'v3' | 'v4', string> = { v1: '', v2: '', v3: '', v4: '' };

function stateA(v1Active = true): DataPlaneState {
  return {
    vaps: [
      { port: n('ta'), vlan: 10, vni: VNI },
      { port: n('xa'), vlan: 30, vni: VNI },
    ],
    locals: [
      { port: n('ta'), vlan: 10, vni: VNI, mac: MAC.v1, ips: [IP.v1], active: v1Active },
      { port: n('xa'), vlan: 30, vni: VNI, mac: MAC.v3, ips: [], active: true },
    ],
    remotes: [{ vni: VNI, mac: MAC.v4, vtep: TIP_B }],
    floods: [{ vni: VNI, vteps: [TIP_B] }],
  };
}

function stateB(): DataPlaneState {
  return {
    vaps: [{ port: n('tb'), vlan: 20, vni: VNI }],
    locals: [{ port: n('tb'), vlan: 20, vni: VNI, mac: MAC.v4, ips: [IP.v4], active: true }],
    remotes: [
      { vni: VNI, mac: MAC.v1, vtep: TIP_A },
      { vni: VNI, mac: MAC.v3, vtep: TIP_A },
    ],
    floods: [{ vni: VNI, vteps: [TIP_A] }],
  };
}

before(async () => {
  const nsA = await lab.netns('a');
  const nsB = await lab.netns('b');
  const nsH = await lab.netns('h');
  // underlay, trunks
  await lab.veth(n('ua'), nsA, n('ub'), nsB, { mtu: 1600 });
  await lab.veth(n('ta'), nsA, n('ka'), nsH);
  await lab.veth(n('xa'), nsA, n('kx'), nsH);
  await lab.veth(n('tb'), nsB, n('kb'), nsH);
  // VMs
  vm.v1 = await lab.vm('v1', {
    nic: n('e'),
    mac: MAC.v1,
    ip: IP.v1,
    hostSide: n('m1'),
    hostNs: nsH,
  });
  vm.v2 = await lab.vm('v2', {
    nic: n('e'),
    mac: MAC.v2,
    ip: IP.v2,
    hostSide: n('m2'),
    hostNs: nsH,
  });
  vm.v3 = await lab.vm('v3', {
    nic: n('e'),
    mac: MAC.v3,
    ip: IP.v3,
    hostSide: n('m3'),
    hostNs: nsH,
  });
  vm.v4 = await lab.vm('v4', {
    nic: n('e'),
    mac: MAC.v4,
    ip: IP.v4,
    hostSide: n('m4'),
    hostNs: nsH,
  });
  [ovsA, ovsB, ovsH] = await Promise.all([lab.ovs('A', nsA), lab.ovs('B', nsB), lab.ovs('H', nsH)]);
  await ovsA.underlay(n('la'), n('ua'), `${TIP_A}/24`);
  await ovsB.underlay(n('lb'), n('ub'), `${TIP_B}/24`);
  await ovsH.hypervisorBridge(n('ha'), n('ka'), [
    { port: n('m1'), vlan: 10 },
    { port: n('m2'), vlan: 10 },
  ]);
  await ovsH.hypervisorBridge(n('hx'), n('kx'), [{ port: n('m3'), vlan: 30 }]);
  await ovsH.hypervisorBridge(n('hb'), n('kb'), [{ port: n('m4'), vlan: 20 }]);
  dpA = new OvsDataPlane({
    bridge: n('na'),
    rundir: ovsA.dir,
    localIp: TIP_A,
    ports: [n('ta'), n('xa')],
    tunnelPort: n('vx'),
  });
  dpB = new OvsDataPlane({
    bridge: n('nb'),
    rundir: ovsB.dir,
    localIp: TIP_B,
    ports: [n('tb')],
    tunnelPort: n('vx'),
  });
  lab.defer('dpA', () => dpA.close());
  lab.defer('dpB', () => dpB.close());
  await Promise.all([dpA.start(), dpB.start()]);
  await Promise.all([dpA.reconcile(stateA()), dpB.reconcile(stateB())]);
  // OVS resolves a VTEP's MAC (tnl/arp) on the first encapsulation and drops packets until
  // then: warm the tunnel both ways so the tests below see a steady state.
  assert.ok(await pingEventually(vm.v1, IP.v4), 'warm-up v1 -> v4');
  assert.ok(await pingEventually(vm.v4, IP.v1), 'warm-up v4 -> v1');
});

after(() => lab.cleanup());

/** n_packets of the flows of `bridge` whose text contains `needle`. */
async function packetsOf(
  ovs: OvsInstance,
  bridge: string,
  pred: (line: string) => boolean,
): Promise<number> {
  const dump = await ovs.ofctl(bridge, 'dump-flows');
  let sum = 0;
  for (const line of dump.split('\n')) {
    if (line.includes('cookie=') && pred(line))
      sum += Number(/n_packets=(\d+)/.exec(line)?.[1] ?? 0);
  }
  return sum;
}

function frame(dst: string, src: string, vlan: number | null, ethertype: number): string {
  const hex = (m: string) => m.replace(/:/g, '');
  const tag = vlan === null ? '' : `8100${(vlan & 0xfff).toString(16).padStart(4, '0')}`;
  return `${hex(dst)}${hex(src)}${tag}${ethertype.toString(16).padStart(4, '0')}${'00'.repeat(46)}`;
}

/** Sends `count` copies of a frame out of hv bridge `bridge` port `port` (into the nNVE). */
async function inject(bridge: string, port: string, hex: string, count: number): Promise<void> {
  const lines = Array.from(
    { length: count },
    () => `in_port=CONTROLLER packet=${hex} actions=output:${port}`,
  );
  for (const l of lines) await ovsH.ofctl(bridge, 'packet-out', l);
}

describe('nNVE data plane on OVS (two nNVEs, VXLAN)', () => {
  test('the installed flows read back as the state that was set', async () => {
    assert.deepEqual(await dpA.dump(), sortState(stateA()));
    assert.deepEqual(await dpB.dump(), sortState(stateB()));
  });

  test('ECP and LLDP frames from a trunk are never forwarded; other frames are (control)', async () => {
    // Observation points: on every hypervisor bridge, flows that count what arrives from its
    // trunk (i.e. what came out of an nNVE port) by ethertype; on nNVE B, its own ECP/LLDP drop
    // flows count what arrived over VXLAN. ARP and other background traffic does not matter.
    const types = { ecp: 0x8940, lldp: 0x88cc, ctl: 0x88b5 };
    const taps = [
      { bridge: n('ha'), trunk: n('ka') },
      { bridge: n('hx'), trunk: n('kx') },
      { bridge: n('hb'), trunk: n('kb') },
    ];
    for (const { bridge, trunk } of taps) {
      for (const t of Object.values(types)) {
        await ovsH.ofctl(
          bridge,
          'add-flow',
          `priority=100,in_port=${trunk},dl_type=${t},actions=NORMAL`,
        );
      }
    }
    const arrived = (bridge: string, type: number) =>
      packetsOf(ovsH, bridge, (l) => l.includes(`dl_type=0x${type.toString(16)}`));
    const dropsOf = (ovs: OvsInstance, bridge: string) =>
      packetsOf(ovs, bridge, (l) => l.includes('priority=1000'));
    const droppedA0 = await dropsOf(ovsA, n('na'));
    const droppedB0 = await dropsOf(ovsB, n('nb'));

    const bcast = 'ff:ff:ff:ff:ff:ff';
    await inject(n('ha'), n('ka'), frame('01:80:c2:00:00:00', MAC.v1, null, types.ecp), 5);
    await inject(n('ha'), n('ka'), frame(bcast, MAC.v1, 10, types.ecp), 5);
    await inject(n('ha'), n('ka'), frame('01:80:c2:00:00:0e', MAC.v1, null, types.lldp), 5);
    await inject(n('ha'), n('ka'), frame(bcast, MAC.v1, 10, types.lldp), 5);
    // Control: a broadcast with another ethertype from the same active endpoint is flooded to
    // the other local VAP (xa -> hx) and over VXLAN to nNVE B (tb -> hb).
    await inject(n('ha'), n('ka'), frame(bcast, MAC.v1, 10, types.ctl), 5);

    // OpenFlow counters lag the datapath (revalidators push megaflow stats periodically); the
    // control frames were sent last, so once they are counted everywhere the rest is too.
    let dropped = 0;
    await waitFor('20 ECP/LLDP frames counted by nNVE A drop flows', async () => {
      dropped = (await dropsOf(ovsA, n('na'))) - droppedA0;
      return dropped >= 20;
    }).catch(() => assert.fail(`only ${dropped} of 20 ECP/LLDP frames reached the drop flows`));
    await waitFor('control frames at hx', async () => (await arrived(n('hx'), types.ctl)) >= 5);
    await waitFor('control frames at hb', async () => (await arrived(n('hb'), types.ctl)) >= 5);
    assert.equal(dropped, 20);
    assert.equal(await arrived(n('hx'), types.ctl), 5, 'control flooded to the other local VAP');
    assert.equal(await arrived(n('hb'), types.ctl), 5, 'control flooded over VXLAN');
    assert.equal(await arrived(n('ha'), types.ctl), 0, 'control not sent back to its port');
    for (const { bridge } of taps) {
      assert.equal(await arrived(bridge, types.ecp), 0, `no ECP came out towards ${bridge}`);
      assert.equal(await arrived(bridge, types.lldp), 0, `no LLDP came out towards ${bridge}`);
    }
    assert.equal(await dropsOf(ovsB, n('nb')), droppedB0, 'no ECP/LLDP reached nNVE B');
  });

  test('ping across VXLAN (VLAN 10 -> VNI 5000 -> VLAN 20) and between two local VAPs', async () => {
    assert.ok(await pingEventually(vm.v1, IP.v4), 'v1 -> v4 across VXLAN');
    assert.ok(await pingEventually(vm.v4, IP.v1), 'v4 -> v1 across VXLAN');
    assert.ok(await pingEventually(vm.v3, IP.v4), 'v3 (VLAN 30) -> v4');
    assert.ok(await pingEventually(vm.v3, IP.v1), 'v3 (VLAN 30 @xa) -> v1 (VLAN 10 @ta), local');
  });

  test('TCP across VXLAN (1 MiB; needs the 1600-byte underlay MTU and tx checksum offload off)', async () => {
    // A node process in each VM namespace: v4 counts the bytes it receives and answers with
    // the count, v1 sends 1 MiB of full-size segments.
    const server = spawn(
      'ip',
      [
        'netns',
        'exec',
        vm.v4,
        process.execPath,
        '-e',
        `const s = require('net').createServer((c) => { let n = 0; c.on('data', (d) => (n += d.length));
           c.on('end', () => c.end(String(n))); }).listen(5001, '${IP.v4}', () => console.log('ready'));
         setTimeout(() => process.exit(2), 20000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        server.stdout!.once('data', () => resolve());
        server.once('exit', (code) => reject(new Error(`TCP server exited ${code}`)));
      });
      const client = await nsRun(vm.v1, process.execPath, [
        '-e',
        `const c = require('net').connect(5001, '${IP.v4}', () => c.end(Buffer.alloc(1 << 20, 7)));
         let r = ''; c.on('data', (d) => (r += d)); c.on('end', () => { console.log(r); process.exit(0); });
         c.on('error', (e) => { console.error(e.message); process.exit(1); });
         setTimeout(() => { console.error('timeout'); process.exit(1); }, 15000);`,
      ]);
      assert.equal(client.trim(), String(1 << 20));
    } finally {
      server.kill();
    }
  });

  test('an inactive endpoint cannot send; active again restores it', async () => {
    await dpA.apply([{ op: 'local-set', local: stateA(false).locals[0]! }]);
    assert.equal(await ping(vm.v1, IP.v4), false, 'v1 inactive: no traffic');
    assert.equal(await ping(vm.v4, IP.v1), false, 'v1 inactive: not reachable');
    assert.deepEqual(
      await dpA.dump(),
      sortState(stateA(false)),
      'inactive endpoint is still provisioned',
    );
    await dpA.apply([{ op: 'local-set', local: stateA(true).locals[0]! }]);
    assert.ok(await pingEventually(vm.v1, IP.v4), 'v1 active again');
  });

  test('source filter: unassociated MAC and spoofed source IP cannot send', async () => {
    const filtered0 = await packetsOf(
      ovsA,
      n('na'),
      (l) => l.includes('table=1') && l.includes('priority=0'),
    );
    assert.equal(await ping(vm.v2, IP.v4), false, 'v2 (MAC not an endpoint) cannot send');
    const filtered1 = await packetsOf(
      ovsA,
      n('na'),
      (l) => l.includes('table=1') && l.includes('priority=0'),
    );
    assert.ok(filtered1 > filtered0, 'v2 frames hit the source-filter default drop');
    await nsRun(vm.v1, 'ip', ['addr', 'add', '192.0.2.99/24', 'dev', n('e')]);
    try {
      assert.equal(
        await ping(vm.v1, IP.v4, { src: '192.0.2.99' }),
        false,
        'spoofed source IP dropped',
      );
      assert.ok(await pingEventually(vm.v1, IP.v4), 'its own address still works');
    } finally {
      await nsRun(vm.v1, 'ip', ['addr', 'del', '192.0.2.99/24', 'dev', n('e')]);
    }
  });

  test('removing everything leaves only the base flows', async () => {
    const s = stateA();
    await dpA.apply([
      ...s.locals.map((l) => ({
        op: 'local-del' as const,
        port: l.port,
        vlan: l.vlan,
        mac: l.mac,
      })),
      ...s.remotes.map((r) => ({ op: 'remote-del' as const, vni: r.vni, mac: r.mac })),
      { op: 'flood-set', flood: { vni: VNI, vteps: [] } },
      ...s.vaps.map((v) => ({ op: 'vap-del' as const, port: v.port, vlan: v.vlan })),
    ]);
    const cookies = (await dpA.flows()).map((f) => f.cookie).sort();
    const base = baseFlows(n('vx'))
      .map((f) => flowCookie(flowText(f)))
      .sort();
    assert.deepEqual(cookies, base);
    assert.deepEqual(await dpA.dump(), { vaps: [], locals: [], remotes: [], floods: [] });
    assert.equal(await ping(vm.v4, IP.v1), false, 'nothing forwards any more');
    // and back
    await dpA.reconcile(stateA());
    assert.ok(await pingEventually(vm.v1, IP.v4), 'restored by reconcile');
  });

  test('changes went over the persistent OpenFlow connection, not ovs-ofctl', () => {
    for (const dp of [dpA, dpB]) {
      assert.ok(dp.stats.openflowBundles > 0, JSON.stringify(dp.stats));
      assert.equal(dp.stats.ofctlBundles, 0, `${dp.openflowError}`);
    }
  });
});
