/**
 * OvsDataPlane against one real userspace OVS instance: exact, idempotent reconcile (no
 * duplicate or stale flows), restart of the driver (flows kept and adopted) and of
 * ovs-vswitchd (flows lost, restored), validation errors, the OVSDB client, and how long
 * programming 1000 local endpoints takes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { DataPlaneOp, DataPlaneState, LocalEndpoint } from '../../src/dataplane/dataplane.js';
import {
  OvsDataPlane,
  compileAll,
  flowCookie,
  flowText,
  type InstalledFlow,
} from '../../src/dataplane/ovs.js';
import { OvsdbClient } from '../../src/dataplane/ovsdb.js';
import { StateModel, sortState } from '../../src/dataplane/state.js';
import { Lab, OvsInstance, sleep } from '../harness/ovs.js';

const lab = new Lab(`sno${process.pid}`);
const n = (s: string): string => lab.name(s);
const BR = () => n('nr');
const TUN = () => n('vr');
let ovs: OvsInstance;
let ns: string;
let dp: OvsDataPlane;

function driver(): OvsDataPlane {
  return new OvsDataPlane({
    bridge: BR(),
    rundir: ovs.dir,
    localIp: '198.18.0.1',
    ports: [n('p1'), n('p2')],
    tunnelPort: TUN(),
  });
}

function stateS(): DataPlaneState {
  const p1 = n('p1');
  const p2 = n('p2');
  return {
    vaps: [
      { port: p1, vlan: 10, vni: 5000 },
      { port: p2, vlan: 20, vni: 5000 },
      { port: p2, vlan: 30, vni: 6000 },
    ],
    locals: [
      {
        port: p1,
        vlan: 10,
        vni: 5000,
        mac: '02:00:00:00:0a:01',
        ips: ['192.0.2.11'],
        active: true,
      },
      {
        port: p1,
        vlan: 10,
        vni: 5000,
        mac: '02:00:00:00:0a:02',
        ips: ['192.0.2.12', '2001:db8::12'],
        active: false,
      },
      { port: p2, vlan: 20, vni: 5000, mac: '02:00:00:00:0a:03', ips: [], active: true },
      {
        port: p2,
        vlan: 30,
        vni: 6000,
        mac: '02:00:00:00:0a:04',
        ips: ['2001:db8::4'],
        active: true,
      },
    ],
    remotes: [
      { vni: 5000, mac: '02:00:00:00:0b:01', vtep: '198.18.0.2' },
      { vni: 5000, mac: '02:00:00:00:0b:02', vtep: '198.18.0.3' },
      { vni: 6000, mac: '02:00:00:00:0b:03', vtep: '198.18.0.2' },
    ],
    floods: [
      { vni: 5000, vteps: ['198.18.0.2', '198.18.0.3'] },
      { vni: 6000, vteps: ['198.18.0.2'] },
    ],
  };
}

/** A different state: one VAP, endpoints and a flood list gone, others changed. */
function stateS2(): DataPlaneState {
  const s = stateS();
  return {
    vaps: s.vaps.slice(0, 2),
    locals: [
      { ...s.locals[0]!, ips: ['192.0.2.21'] },
      { ...s.locals[1]!, active: true },
      s.locals[2]!,
    ],
    remotes: [{ ...s.remotes[0]!, vtep: '198.18.0.9' }],
    floods: [{ vni: 5000, vteps: ['198.18.0.9'] }],
  };
}

function expectedCookies(state: DataPlaneState): string[] {
  return [...compileAll(StateModel.from(state), TUN()).values()]
    .flat()
    .map((f) => flowCookie(flowText(f)))
    .sort();
}

const cookiesOf = (flows: readonly InstalledFlow[]): string[] => flows.map((f) => f.cookie).sort();

/** cookie -> duration (s), from a dump with stats. */
async function durations(): Promise<Map<string, number>> {
  const out = await ovs.ofctl(BR(), 'dump-flows');
  const m = new Map<string, number>();
  for (const line of out.split('\n')) {
    const c = /cookie=(0x[0-9a-f]+)/.exec(line)?.[1];
    const d = /duration=([\d.]+)s/.exec(line)?.[1];
    if (c && d) m.set(`0x${BigInt(c).toString(16)}`, Number(d));
  }
  return m;
}

function assertNotReinstalled(before: Map<string, number>, after: Map<string, number>): void {
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
  for (const [c, d] of before) {
    assert.ok(after.get(c)! >= d, `flow ${c} was re-installed (duration ${d} -> ${after.get(c)})`);
  }
}

before(async () => {
  ns = await lab.netns('r');
  await lab.veth(n('p1'), ns, n('q1'), ns);
  await lab.veth(n('p2'), ns, n('q2'), ns);
  ovs = await lab.ovs('R', ns);
  dp = driver();
  lab.defer('driver', () => dp.close());
  await dp.start();
});

after(() => lab.cleanup());

describe('OvsDataPlane reconcile and restarts', () => {
  test('a fresh bridge gets exactly the base flows', async () => {
    assert.deepEqual(
      cookiesOf(await dp.flows()),
      expectedCookies({ vaps: [], locals: [], remotes: [], floods: [] }),
    );
    assert.deepEqual(await dp.dump(), { vaps: [], locals: [], remotes: [], floods: [] });
    const br = await ovs.vsctl('get', 'bridge', BR(), 'datapath_type', 'fail_mode');
    assert.deepEqual(br.trim().split('\n'), ['netdev', 'secure']);
    const opts = await ovs.vsctl('get', 'interface', TUN(), 'type', 'options');
    assert.match(opts, /vxlan/);
    assert.match(opts, /key=flow/);
    assert.match(opts, /local_ip="198\.18\.0\.1"/);
    assert.match(opts, /remote_ip=flow/);
  });

  test('reconcile installs exactly the desired flows; the same state again changes nothing', async () => {
    await dp.reconcile(stateS());
    const flows = await dp.flows();
    assert.deepEqual(cookiesOf(flows), expectedCookies(stateS()), 'exactly the desired flows');
    assert.deepEqual(await dp.dump(), sortState(stateS()), 'reads back as the state');
    const lines = flows.map((f) => f.line).sort();
    const d0 = await durations();
    const bundles = dp.stats.bundles;
    await sleep(50);
    await dp.reconcile(stateS());
    await dp.reconcile(stateS());
    assert.equal(dp.stats.bundles, bundles, 'no flow-mod was sent');
    assert.deepEqual((await dp.flows()).map((f) => f.line).sort(), lines, 'same flow dump');
    assertNotReinstalled(d0, await durations());
  });

  test('apply with ops that are already true is a no-op', async () => {
    const bundles = dp.stats.bundles;
    const s = stateS();
    await dp.apply([
      ...s.vaps.map((vap): DataPlaneOp => ({ op: 'vap-set', vap })),
      ...s.locals.map((local): DataPlaneOp => ({ op: 'local-set', local })),
      { op: 'remote-del', vni: 7777, mac: '02:00:00:00:0c:01' },
    ]);
    assert.equal(dp.stats.bundles, bundles);
  });

  test('restarting the driver keeps the flows and adopts them', async () => {
    const d0 = await durations();
    await dp.close();
    dp = driver();
    await dp.start();
    assert.deepEqual(dp.current(), sortState(stateS()), 'state rebuilt from the flows');
    assert.equal(dp.stats.bundles, 0, 'start changed no flow');
    await dp.reconcile(stateS());
    assert.equal(dp.stats.bundles, 0, 'reconcile after restart changed no flow');
    assertNotReinstalled(d0, await durations());
    // incremental ops work against the adopted state
    await dp.apply([{ op: 'remote-del', vni: 5000, mac: '02:00:00:00:0b:02' }]);
    const s = stateS();
    const expected = { ...s, remotes: s.remotes.filter((r) => r.mac !== '02:00:00:00:0b:02') };
    assert.deepEqual(cookiesOf(await dp.flows()), expectedCookies(expected));
    await dp.reconcile(stateS());
    assert.deepEqual(cookiesOf(await dp.flows()), expectedCookies(stateS()));
  });

  test('after ovs-vswitchd is killed and restarted (flows lost), reconcile restores them exactly', async () => {
    await ovs.killVswitchd();
    await ovs.startVswitchd();
    await ovs.bridgeReady(BR());
    assert.deepEqual(cookiesOf(await dp.flows()), [], 'the restarted switch has no flows');
    await dp.reconcile(stateS());
    const flows = await dp.flows();
    assert.equal(new Set(cookiesOf(flows)).size, flows.length, 'no duplicates');
    assert.deepEqual(cookiesOf(flows), expectedCookies(stateS()));
    const bundles = dp.stats.bundles;
    await dp.reconcile(stateS());
    assert.equal(dp.stats.bundles, bundles, 'and again is a no-op');
  });

  test('reconcile removes foreign and stale flows and fixes changed ones', async () => {
    const p1 = n('p1');
    // cookie 0 (not ours), a cookie that looks like ours but is stale, and a desired
    // (table, priority, match) whose actions were changed behind our back.
    await ovs.ofctl(BR(), 'add-flow', `table=0,priority=5,in_port=${p1},actions=drop`);
    await ovs.ofctl(
      BR(),
      'add-flow',
      `cookie=0x5e0000000000abcd,table=2,priority=7,tun_id=1,actions=drop`,
    );
    await ovs.ofctl(
      BR(),
      'add-flow',
      `cookie=0x5e0000000000abce,table=2,priority=90,tun_id=5000,dl_dst=02:00:00:00:0b:01,actions=drop`,
    );
    assert.notDeepEqual(cookiesOf(await dp.flows()), expectedCookies(stateS()));
    await dp.reconcile(stateS());
    assert.deepEqual(cookiesOf(await dp.flows()), expectedCookies(stateS()));
  });

  test('reconcile to a different state leaves exactly that state', async () => {
    await dp.reconcile(stateS2());
    assert.deepEqual(cookiesOf(await dp.flows()), expectedCookies(stateS2()));
    assert.deepEqual(await dp.dump(), sortState(stateS2()));
    // a foreign flow present while the driver is down is removed by start()
    await dp.close();
    await ovs.ofctl(BR(), 'add-flow', `table=3,priority=5,actions=drop`);
    dp = driver();
    await dp.start();
    assert.deepEqual(cookiesOf(await dp.flows()), expectedCookies(stateS2()));
    assert.deepEqual(dp.current(), sortState(stateS2()));
  });

  test('invalid input is rejected with a clear message and changes nothing', async () => {
    const before = cookiesOf(await dp.flows());
    const local: LocalEndpoint = {
      port: 'nosuchport',
      vlan: 10,
      vni: 5000,
      mac: '02:00:00:00:0a:09',
      ips: [],
      active: true,
    };
    await assert.rejects(dp.apply([{ op: 'local-set', local }]), /nosuchport.*not an nNVE port/);
    await assert.rejects(
      dp.apply([{ op: 'local-set', local: { ...local, port: n('p1'), mac: '01:00:5e:00:00:01' } }]),
      /group \(multicast\) address/,
    );
    await assert.rejects(
      dp.apply([{ op: 'vap-set', vap: { port: n('p1'), vlan: 4095, vni: 1 } }]),
      /vlan 4095/,
    );
    await assert.rejects(
      dp.apply([
        { op: 'remote-set', remote: { vni: 1, mac: '02:00:00:00:0b:09', vtep: '2001:db8::1' } },
      ]),
      /address family/,
    );
    const s = stateS2();
    await assert.rejects(dp.reconcile({ ...s, vaps: [...s.vaps, s.vaps[0]!] }), /duplicate/);
    assert.deepEqual(cookiesOf(await dp.flows()), before);
  });

  test('a port that cannot be opened fails start() with its name', async () => {
    const bad = new OvsDataPlane({
      bridge: n('nz'),
      rundir: ovs.dir,
      localIp: '198.18.0.1',
      ports: [n('zz')],
      tunnelPort: n('vz'),
      timeoutMs: 5000,
    });
    await assert.rejects(
      bad.start(),
      new RegExp(`${n('zz')}: .*(No such device|could not open)`, 'i'),
    );
    await ovs.vsctl('del-br', n('nz'));
  });

  test('the OVSDB client: list_dbs, and transaction errors name the op', async () => {
    const db = await OvsdbClient.connect(ovs.dbSocket);
    try {
      assert.ok((await db.listDbs()).includes('Open_vSwitch'));
      await assert.rejects(
        db.transact('Open_vSwitch', [{ op: 'insert', table: 'NoSuchTable', row: {} }]),
        /op 0 \(insert NoSuchTable\)/,
      );
      const [r] = await db.transact('Open_vSwitch', [
        { op: 'select', table: 'Bridge', where: [['name', '==', BR()]], columns: ['name'] },
      ]);
      assert.deepEqual(r?.rows, [{ name: BR() }]);
    } finally {
      await db.close();
    }
  });

  test('1000 local endpoints: timing of one apply, of 1000 concurrent applies, of sequential applies', async () => {
    await dp.reconcile({
      vaps: [{ port: n('p1'), vlan: 100, vni: 9000 }],
      locals: [],
      remotes: [],
      floods: [],
    });
    const mac = (i: number) =>
      `02:00:01:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
    const local = (i: number): LocalEndpoint => ({
      port: n('p1'),
      vlan: 100,
      vni: 9000,
      mac: mac(i),
      ips: [`10.9.${i >> 8}.${i & 0xff}`],
      active: true,
    });
    const N = 1000;
    const all = Array.from({ length: N }, (_, i) => local(i));
    const full: DataPlaneState = {
      vaps: [{ port: n('p1'), vlan: 100, vni: 9000 }],
      locals: all,
      remotes: [],
      floods: [],
    };
    const empty: DataPlaneState = { ...full, locals: [] };
    const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

    let t0 = process.hrtime.bigint();
    await dp.apply(all.map((l): DataPlaneOp => ({ op: 'local-set', local: l })));
    const oneApply = ms(t0);
    const flowsAfter = (await dp.flows()).length;
    assert.deepEqual(cookiesOf(await dp.flows()), expectedCookies(full));

    t0 = process.hrtime.bigint();
    await dp.apply(
      all.map((l): DataPlaneOp => ({ op: 'local-del', port: l.port, vlan: l.vlan, mac: l.mac })),
    );
    const oneDelete = ms(t0);
    assert.deepEqual(cookiesOf(await dp.flows()), expectedCookies(empty));

    let bundles = dp.stats.bundles;
    t0 = process.hrtime.bigint();
    await Promise.all(all.map((l) => dp.apply([{ op: 'local-set', local: l }])));
    const concurrent = ms(t0);
    const concurrentBundles = dp.stats.bundles - bundles;
    assert.equal(concurrentBundles, 1, '1000 calls in one tick were coalesced into one bundle');
    assert.deepEqual(cookiesOf(await dp.flows()), expectedCookies(full));

    const SEQ = 50;
    bundles = dp.stats.bundles;
    t0 = process.hrtime.bigint();
    for (let i = 0; i < SEQ; i++) {
      await dp.apply([{ op: 'local-set', local: { ...all[i]!, active: false } }]);
    }
    const sequential = ms(t0);
    assert.equal(dp.stats.bundles - bundles, SEQ);

    t0 = process.hrtime.bigint();
    await dp.reconcile(full);
    const reconcileFull = ms(t0);
    assert.deepEqual(cookiesOf(await dp.flows()), expectedCookies(full));

    console.log(
      `# ovs timing: ${N} local endpoints (${flowsAfter} flows): one apply ${oneApply.toFixed(0)} ms, ` +
        `delete all ${oneDelete.toFixed(0)} ms, ${N} concurrent apply calls ${concurrent.toFixed(0)} ms ` +
        `(${concurrentBundles} bundle), ${SEQ} sequential apply calls ${sequential.toFixed(0)} ms ` +
        `(${(sequential / SEQ).toFixed(1)} ms each), reconcile of ${SEQ} changes among ${N} ${reconcileFull.toFixed(0)} ms`,
    );
    await dp.reconcile(empty);
  });
});
