/**
 * Multi-homing (Req-3/4) on the simulator: a hypervisor with two uplinks to two nNVEs.
 * Active-standby: the standby is pre-associated with RR and takes over within two keep-alive
 * intervals when the active uplink's link goes down or its keep-alives go unanswered.
 * Active-active: associated on both. Then a restart of the agent re-asserts everything.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KA_US, TnveSim } from './sim.js';

const VSI = '00000000-0000-4000-8000-000000000001';

function dual(cfg = {}): TnveSim {
  const sim = new TnveSim(21);
  sim.addBridge('A', ['p1']);
  sim.addBridge('B', ['p1']);
  sim.addHypervisor(
    'hv',
    [
      { name: 'up1', bridge: 'A', port: 'p1' },
      { name: 'up2', bridge: 'B', port: 'p1' },
    ],
    cfg,
  );
  sim.run(500_000);
  return sim;
}

function where(sim: TnveSim): Record<string, string> {
  return Object.fromEntries(sim.bridgeStates(VSI).map((x) => [x.bridge, x.state]));
}

/** Time from `t0` until bridge `b` has the VSI Activated (µs), or undefined. */
function activatedAfter(sim: TnveSim, b: string, t0: number): number | undefined {
  const e = sim.bridgeEvents.find(
    (x) => x.bridge === b && x.t >= t0 && x.e.type === 'tsi' && x.e.to === 'associated',
  );
  return e ? e.t - t0 : undefined;
}

describe('multi-homing on the simulator', () => {
  it('active-standby: standby pre-associated with RR; a link cut fails over at once', () => {
    const sim = dual();
    sim.op('hv', { op: 'define', name: 'vm', def: sim.def(1, 5000, { port: 'vnet0' }) });
    const r = sim.op('hv', { op: 'start', name: 'vm' });
    assert.equal(r.ok, true, r.message);
    sim.run(100_000);
    assert.deepEqual(where(sim), { A: 'associated', B: 'pre-associated-rr' });
    const vidB = sim.agent('hv').vmView('vm')!.interfaces[0]!.uplinks[1]!.vid;
    assert.ok(vidB !== null, 'the standby has its local tag already');

    const t0 = sim.fabric.now;
    sim.cable('hv', 'up1', false);
    sim.run(2 * KA_US);
    const took = activatedAfter(sim, 'B', t0);
    assert.ok(took !== undefined && took <= 2 * KA_US, `failover took ${took} µs`);
    const fo = sim.eventsOf('hv', 'active-uplink').at(-1)!;
    assert.deepEqual([fo.vni, fo.from, fo.uplink], [5000, 'up1', 'up2']);
    assert.match(fo.cause, /link down/);
    const v = sim.agent('hv').vmView('vm')!.interfaces[0]!;
    assert.deepEqual(v.localTag, { uplink: 'up2', vid: vidB });
    assert.equal(sim.eventsOf('hv', 'tag').at(-1)!.uplink, 'up2');

    // The old uplink comes back: it becomes the standby (deactivated), no fail-back.
    sim.cable('hv', 'up1', true);
    sim.run(4 * KA_US);
    assert.deepEqual(where(sim), { A: 'pre-associated-rr', B: 'associated' });
    assert.equal(sim.agent('hv').vnsView()[0]!.active, 'up2');
  });

  it('active-standby: unanswered keep-alives fail over within two keep-alive intervals', () => {
    const sim = dual();
    sim.op('hv', { op: 'define', name: 'vm', def: sim.def(1, 5000) });
    assert.equal(sim.op('hv', { op: 'start', name: 'vm' }).ok, true);
    sim.run(100_000);
    const t0 = sim.fabric.now;
    sim.blackhole('hv', 'up1', true);
    sim.run(3 * KA_US);
    const took = activatedAfter(sim, 'B', t0);
    assert.ok(took !== undefined && took <= 2 * KA_US, `failover took ${took} µs`);
    assert.equal(sim.agent('hv').vnsView()[0]!.active, 'up2');
    const h = sim.eventsOf('hv', 'uplink-health').find((e) => e.uplink === 'up1' && !e.healthy);
    assert.ok(h, 'up1 marked unhealthy');
  });

  it('a start while the preferred uplink is down goes to the standby', () => {
    const sim = dual();
    sim.cable('hv', 'up1', false);
    sim.op('hv', { op: 'define', name: 'vm', def: sim.def(1, 5000) });
    const r = sim.op('hv', { op: 'start', name: 'vm' });
    assert.equal(r.ok, true, r.message);
    assert.equal(where(sim).B, 'associated');
    assert.deepEqual(r.unconfirmed, [{ uplink: 'up1', vsiId: VSI }]);
  });

  it('active-active: associated on every uplink; a cut leaves the other one serving', () => {
    const sim = dual({ multiHoming: 'active-active' });
    sim.op('hv', { op: 'define', name: 'vm', def: sim.def(1, 5000) });
    const r = sim.op('hv', { op: 'start', name: 'vm' });
    assert.equal(r.ok, true, r.message);
    sim.run(50_000);
    assert.deepEqual(where(sim), { A: 'associated', B: 'associated' });
    sim.cable('hv', 'up2', false);
    sim.run(2 * KA_US);
    assert.equal(where(sim).A, 'associated');
    assert.equal(sim.agent('hv').vmView('vm')!.interfaces[0]!.tsiState, 'Activated');
    assert.equal(sim.op('hv', { op: 'stop', name: 'vm' }).ok, true);
    assert.equal(where(sim).A, undefined);
  });

  it('per-VN mode and uplinks: one VN active-active, one only on up2', () => {
    const sim = dual({
      vns: [
        { vni: 7000, mode: 'active-active' },
        { vni: 8000, uplinks: ['up2'] },
      ],
    });
    const d = (n: number, vni: number) => sim.def(n, vni);
    sim.op('hv', { op: 'define', name: 'a', def: d(1, 7000) });
    sim.op('hv', { op: 'define', name: 'b', def: d(2, 8000) });
    assert.equal(sim.op('hv', { op: 'start', name: 'a' }).ok, true);
    assert.equal(sim.op('hv', { op: 'start', name: 'b' }).ok, true);
    sim.run(50_000);
    const vns = sim.agent('hv').vnsView();
    assert.deepEqual(
      vns.map((v) => [v.vni, v.mode, v.uplinks.map((u) => `${u.uplink}:${u.role}`).join(',')]),
      [
        [7000, 'active-active', 'up1:active,up2:active'],
        [8000, 'active-standby', 'up2:active'],
      ],
    );
  });

  it('restart: a new agent restored from the records re-asserts every association, tags unchanged', () => {
    const sim = dual();
    for (let i = 1; i <= 3; i++) {
      sim.op('hv', { op: 'define', name: `vm${i}`, def: sim.def(i, 5000 + i) });
    }
    assert.equal(sim.op('hv', { op: 'start', name: 'vm1' }).ok, true);
    assert.equal(sim.op('hv', { op: 'start', name: 'vm2' }).ok, true);
    assert.equal(sim.op('hv', { op: 'suspend', name: 'vm2' }).ok, true);
    sim.run(100_000);
    const before = sim.bridges
      .get('A')!
      .vsis()
      .map((v) => [v.vsi.vsiId, v.vsi.state, v.vsi.entries[0]!.vid]);
    const tagsBefore = sim.agent('hv').vmView('vm1')!.interfaces[0]!.localTag;
    const a = sim.restartAgent('hv', 1);
    sim.run(3 * KA_US);
    assert.deepEqual(a.vmNames().sort(), ['vm1', 'vm2', 'vm3']);
    const after = sim.bridges
      .get('A')!
      .vsis()
      .map((v) => [v.vsi.vsiId, v.vsi.state, v.vsi.entries[0]!.vid]);
    assert.deepEqual(after.sort(), before.sort());
    assert.equal(a.node.vsis('up1').length, 2);
    assert.equal(a.node.vsis('up2').length, 2);
    assert.deepEqual(a.vmView('vm1')!.interfaces[0]!.localTag, tagsBefore);
    assert.equal(a.vmView('vm1')!.interfaces[0]!.tsiState, 'Activated');
    // keep-alives continue from the new agent: nothing expires on the nNVEs
    sim.run(10 * KA_US);
    assert.equal(sim.bridges.get('A')!.vsis().length, 2);
    assert.equal(sim.bridges.get('B')!.vsis().length, 2);
  });

  it('restart: a VSI the agent wanted gone while it was down is de-associated', () => {
    const sim = dual();
    sim.op('hv', { op: 'define', name: 'vm', def: sim.def(1, 5000) });
    assert.equal(sim.op('hv', { op: 'start', name: 'vm' }).ok, true);
    sim.run(100_000);
    // The agent died after recording "shutoff" but before the De-Associate left.
    const rec = sim.records.get('hv')!.get('vm')!;
    rec.state = 'shutoff';
    sim.restartAgent('hv', 1);
    sim.run(3 * KA_US);
    assert.deepEqual(where(sim), {});
  });
});
