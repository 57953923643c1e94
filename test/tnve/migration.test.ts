/**
 * Live migration between two hypervisors on the simulator, both ends driven through the
 * agents' lifecycle calls: on the same nNVE (the nNVE's takeover deactivates the source), on
 * different nNVEs (the source's switchover deactivates it first), and aborted migrations.
 * The fabric checks on every nNVE event that the VSI is never Activated in two places.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TnveSim } from './sim.js';

const VSI = '00000000-0000-4000-8000-000000000001';

function sameNnve(profile: 'splitnve' | '802.1Qbg' = 'splitnve'): TnveSim {
  const sim = new TnveSim(11);
  sim.addBridge('nnve', ['p1', 'p2'], { profile });
  sim.addHypervisor('src', [{ name: 'eth0', bridge: 'nnve', port: 'p1' }], { profile });
  sim.addHypervisor('dst', [{ name: 'eth0', bridge: 'nnve', port: 'p2' }], { profile });
  sim.run(500_000);
  return sim;
}

function twoNnves(): TnveSim {
  const sim = new TnveSim(12);
  sim.addBridge('nnveA', ['p1']);
  sim.addBridge('nnveB', ['p1']);
  sim.addHypervisor('src', [{ name: 'eth0', bridge: 'nnveA', port: 'p1' }]);
  sim.addHypervisor('dst', [{ name: 'eth0', bridge: 'nnveB', port: 'p1' }]);
  sim.run(500_000);
  return sim;
}

function runningAtSource(sim: TnveSim): void {
  const def = sim.def(1, 5000, { ips: ['10.0.0.1'] });
  assert.equal(sim.op('src', { op: 'define', name: 'vm', def }).ok, true);
  assert.equal(sim.op('src', { op: 'start', name: 'vm' }).ok, true);
}

function states(sim: TnveSim): string[] {
  return sim
    .bridgeStates(VSI)
    .map((x) => `${x.bridge}/${x.port}:${x.state}`)
    .sort();
}

describe('migration on the simulator', () => {
  for (const profile of ['splitnve', '802.1Qbg'] as const) {
    it(`same nNVE (${profile}): pre-associate M=1, associate M=1 takes over, source de-associates S=1`, () => {
      const sim = sameNnve(profile);
      runningAtSource(sim);
      const def = sim.def(1, 5000, { ips: ['10.0.0.1'] });
      let r = sim.op('dst', { op: 'migrate-in-begin', name: 'vm', def });
      assert.equal(r.ok, true, r.message);
      assert.deepEqual(states(sim), ['nnve/p1:associated', 'nnve/p2:pre-associated-rr']);
      const dstVsi = sim.bridgeStates(VSI).find((x) => x.port === 'p2')!;
      assert.deepEqual(dstVsi.hints, { m: true, s: false });
      assert.equal(sim.op('src', { op: 'migrate-out-begin', name: 'vm' }).ok, true);
      // Same nNVE: the orchestrator may go straight to the destination's commit.
      r = sim.op('dst', { op: 'migrate-in-commit', name: 'vm' });
      assert.equal(r.ok, true, r.message);
      assert.equal(r.state, 'running');
      sim.run(50_000);
      const src = sim.agent('src').vmView('vm')!;
      assert.equal(src.state, 'switched', 'the source learned of the takeover');
      r = sim.op('src', { op: 'migrate-out-commit', name: 'vm' });
      assert.equal(r.ok, true, r.message);
      assert.equal(r.state, null);
      assert.deepEqual(states(sim), ['nnve/p2:associated']);
      assert.deepEqual(sim.violations, []);
      // the source's last request was a De-Associate with S=1 (or the plain profile's takeover)
      const srcTsis = sim.bridgeEvents.filter(
        (x) => x.e.type === 'tsi' && x.e.port === 'p1' && x.e.to === 'init',
      );
      assert.equal(srcTsis.length, 1);
      // the destination's tag is the segment's VID for VN 5000
      const tag = sim.agent('dst').vmView('vm')!.interfaces[0]!.localTag;
      assert.equal(tag?.vid, sim.bridges.get('nnve')!.vsis()[0]!.vsi.entries[0]!.vid);
    });
  }

  it('different nNVEs: switchover deactivates the source before the destination activates', () => {
    const sim = twoNnves();
    runningAtSource(sim);
    const def = sim.def(1, 5000, { ips: ['10.0.0.1'] });
    assert.equal(sim.op('dst', { op: 'migrate-in-begin', name: 'vm', def }).ok, true);
    assert.equal(sim.op('src', { op: 'migrate-out-begin', name: 'vm' }).ok, true);
    assert.deepEqual(states(sim), ['nnveA/p1:associated', 'nnveB/p1:pre-associated-rr']);
    let r = sim.op('src', { op: 'migrate-out-switchover', name: 'vm' });
    assert.equal(r.ok, true, r.message);
    assert.deepEqual(states(sim), ['nnveA/p1:pre-associated-rr', 'nnveB/p1:pre-associated-rr']);
    assert.deepEqual(sim.bridgeStates(VSI).find((x) => x.bridge === 'nnveA')!.hints, {
      m: false,
      s: true,
    });
    r = sim.op('dst', { op: 'migrate-in-commit', name: 'vm' });
    assert.equal(r.ok, true, r.message);
    r = sim.op('src', { op: 'migrate-out-commit', name: 'vm' });
    assert.equal(r.ok, true, r.message);
    assert.deepEqual(states(sim), ['nnveB/p1:associated']);
    assert.deepEqual(sim.violations, []);
  });

  it('different nNVEs: committing at the destination before the switchover is caught by the checker', () => {
    const sim = twoNnves();
    runningAtSource(sim);
    assert.equal(
      sim.op('dst', { op: 'migrate-in-begin', name: 'vm', def: sim.def(1, 5000) }).ok,
      true,
    );
    assert.equal(sim.op('dst', { op: 'migrate-in-commit', name: 'vm' }).ok, true);
    assert.equal(sim.violations.length, 1, 'the invariant checker must see the double activation');
  });

  it('aborted migration: the source stays Activated the whole time', () => {
    const sim = sameNnve();
    runningAtSource(sim);
    const mark = sim.bridgeEvents.length;
    const def = sim.def(1, 5000, { ips: ['10.0.0.1'] });
    assert.equal(sim.op('dst', { op: 'migrate-in-begin', name: 'vm', def }).ok, true);
    assert.equal(sim.op('src', { op: 'migrate-out-begin', name: 'vm' }).ok, true);
    let r = sim.op('dst', { op: 'migrate-in-abort', name: 'vm' });
    assert.equal(r.ok, true, r.message);
    assert.equal(r.state, null);
    r = sim.op('src', { op: 'migrate-out-abort', name: 'vm' });
    assert.equal(r.ok, true, r.message);
    assert.equal(r.state, 'running');
    assert.deepEqual(states(sim), ['nnve/p1:associated']);
    const srcChanges = sim.bridgeEvents
      .slice(mark)
      .filter((x) => x.e.type === 'tsi' && x.e.port === 'p1');
    assert.deepEqual(srcChanges, [], 'the source TSI never changed');
    assert.equal(sim.agent('dst').hasVm('vm'), false);
  });

  it('aborted after the switchover: the source takes the TSI back', () => {
    const sim = twoNnves();
    runningAtSource(sim);
    const def = sim.def(1, 5000);
    assert.equal(sim.op('dst', { op: 'migrate-in-begin', name: 'vm', def }).ok, true);
    assert.equal(sim.op('src', { op: 'migrate-out-begin', name: 'vm' }).ok, true);
    assert.equal(sim.op('src', { op: 'migrate-out-switchover', name: 'vm' }).ok, true);
    assert.equal(sim.op('dst', { op: 'migrate-in-abort', name: 'vm' }).ok, true);
    const r = sim.op('src', { op: 'migrate-out-abort', name: 'vm' });
    assert.equal(r.ok, true, r.message);
    assert.deepEqual(states(sim), ['nnveA/p1:associated']);
    assert.deepEqual(sim.violations, []);
  });

  it('rolled back after the commit on one nNVE: the source re-associates with M=1', () => {
    const sim = sameNnve();
    runningAtSource(sim);
    const def = sim.def(1, 5000);
    assert.equal(sim.op('dst', { op: 'migrate-in-begin', name: 'vm', def }).ok, true);
    assert.equal(sim.op('src', { op: 'migrate-out-begin', name: 'vm' }).ok, true);
    assert.equal(sim.op('dst', { op: 'migrate-in-commit', name: 'vm' }).ok, true);
    sim.run(50_000);
    assert.equal(sim.op('dst', { op: 'destroy', name: 'vm' }).ok, true);
    const r = sim.op('src', { op: 'migrate-out-abort', name: 'vm' });
    assert.equal(r.ok, true, r.message);
    assert.deepEqual(states(sim), ['nnve/p1:associated']);
    assert.deepEqual(sim.violations, []);
  });
});
