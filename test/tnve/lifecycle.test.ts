/**
 * The agent's lifecycle mapping (SPLIT-NVE.md §3) on the simulator: what each call sends,
 * what the nNVE holds afterwards, and what a call answers when the nNVE refuses or is gone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TnveSim } from './sim.js';

const VSI1 = '00000000-0000-4000-8000-000000000001';

function setup(profile: '802.1Qbg' | 'splitnve' = 'splitnve', agentCfg = {}): TnveSim {
  const sim = new TnveSim(7);
  sim.addBridge('nnve', ['p1'], { profile });
  sim.addHypervisor('hv1', [{ name: 'eth0', bridge: 'nnve', port: 'p1' }], {
    profile,
    ...agentCfg,
  });
  sim.run(500_000); // LLDP exchange
  return sim;
}

describe('lifecycle -> VDP on the simulator', () => {
  it('define (reserve), start, pause, suspend, resume, stop, destroy', () => {
    const sim = setup('splitnve', { preAssociateOnDefine: true });
    const def = sim.def(1, 5000, { ips: ['10.0.0.1', 'fd00::1'] });
    let r = sim.op('hv1', { op: 'define', name: 'vm1', def });
    assert.equal(r.ok, true, r.message);
    assert.equal(r.state, 'shutoff');
    let b = sim.bridgeStates(VSI1);
    assert.deepEqual(
      b.map((x) => x.state),
      ['pre-associated-rr'],
    );

    r = sim.op('hv1', { op: 'start', name: 'vm1' });
    assert.equal(r.ok, true, r.message);
    assert.equal(r.state, 'running');
    b = sim.bridgeStates(VSI1);
    assert.deepEqual(
      b.map((x) => x.state),
      ['associated'],
    );
    // splitnve profile with IPv4+IPv6: one 0xF1 filter with the IPv4 address mapped.
    const bv = sim.bridges.get('nnve')!.vsis()[0]!.vsi;
    assert.equal(bv.filterFormat, 0xf1);
    assert.deepEqual(bv.entries.map((e) => e.ipv6).sort(), ['::ffff:a00:1', 'fd00::1'].sort());
    const vid = bv.entries[0]!.vid;
    assert.ok(vid >= 100 && vid <= 3999);
    const view = sim.agent('hv1').vmView('vm1')!;
    assert.deepEqual(view.interfaces[0]!.localTag, { uplink: 'eth0', vid });
    assert.equal(view.interfaces[0]!.tsiState, 'Activated');
    const tags = sim.eventsOf('hv1', 'tag');
    assert.equal(tags.at(-1)!.vid, vid);

    // pause: nothing on the wire
    const framesBefore = sim.fabric.stats.framesSent;
    const reqBefore = sim.agent('hv1').node.uplinkInfo('eth0')!.vdp.requests;
    r = sim.op('hv1', { op: 'pause', name: 'vm1' });
    assert.equal(r.ok, true);
    assert.equal(r.state, 'paused');
    assert.equal(sim.agent('hv1').node.uplinkInfo('eth0')!.vdp.requests, reqBefore);
    assert.ok(sim.fabric.stats.framesSent >= framesBefore);

    r = sim.op('hv1', { op: 'suspend', name: 'vm1' });
    assert.equal(r.ok, true, r.message);
    b = sim.bridgeStates(VSI1);
    assert.equal(b[0]!.state, 'pre-associated-rr');
    assert.deepEqual(b[0]!.hints, { m: false, s: true });
    // the tag is kept while suspended (resources reserved)
    assert.equal(sim.agent('hv1').vmView('vm1')!.interfaces[0]!.localTag?.vid, vid);

    r = sim.op('hv1', { op: 'resume', name: 'vm1' });
    assert.equal(r.ok, true, r.message);
    assert.equal(sim.bridgeStates(VSI1)[0]!.state, 'associated');

    r = sim.op('hv1', { op: 'stop', name: 'vm1' });
    assert.equal(r.ok, true, r.message);
    assert.equal(r.state, 'shutoff');
    assert.deepEqual(sim.bridgeStates(VSI1), []);
    assert.equal(sim.eventsOf('hv1', 'tag').at(-1)!.vid, null);

    r = sim.op('hv1', { op: 'start', name: 'vm1' });
    assert.equal(r.ok, true);
    r = sim.op('hv1', { op: 'destroy', name: 'vm1' });
    assert.equal(r.ok, true, r.message);
    assert.equal(r.state, null);
    assert.deepEqual(sim.bridgeStates(VSI1), []);
    assert.equal(sim.agent('hv1').hasVm('vm1'), false);
    assert.equal(sim.records.get('hv1')!.has('vm1'), false);
    // destroy is idempotent
    assert.equal(sim.op('hv1', { op: 'destroy', name: 'vm1' }).ok, true);
    assert.deepEqual(sim.violations, []);
  });

  it('set-addresses re-associates with the new filter list; several addresses per TSI', () => {
    const sim = setup();
    sim.op('hv1', { op: 'define', name: 'vm1', def: sim.def(1, 5000, { ips: ['10.0.0.1'] }) });
    assert.equal(sim.op('hv1', { op: 'start', name: 'vm1' }).ok, true);
    let bv = sim.bridges.get('nnve')!.vsis()[0]!.vsi;
    assert.equal(bv.filterFormat, 0xf0);
    assert.deepEqual(
      bv.entries.map((e) => [e.mac, e.ipv4]),
      [['52:54:00:00:00:01', '10.0.0.1']],
    );
    const r = sim.op('hv1', {
      op: 'set-addresses',
      name: 'vm1',
      vsiId: VSI1,
      update: {
        macs: ['52:54:00:00:00:01', '52:54:00:00:00:11'],
        ips: ['10.0.0.7'],
        pairs: [
          { mac: '52:54:00:00:00:01', ip: '10.0.0.1' },
          { mac: '52:54:00:00:00:11', ip: '10.0.0.2' },
        ],
      },
    });
    assert.equal(r.ok, true, r.message);
    bv = sim.bridges.get('nnve')!.vsis()[0]!.vsi;
    assert.equal(bv.state, 'associated');
    assert.deepEqual(
      bv.entries.map((e) => [e.mac, e.ipv4]).sort(),
      [
        ['00:00:00:00:00:00', '10.0.0.7'],
        ['52:54:00:00:00:01', '10.0.0.1'],
        ['52:54:00:00:00:11', '10.0.0.2'],
      ].sort(),
    );
    assert.equal(sim.agent('hv1').vmView('vm1')!.state, 'running');
  });

  it('plain profile: GroupID/MAC/VID, IPs kept locally; suspend goes through Init to pre-associated', () => {
    const sim = setup('802.1Qbg');
    sim.op('hv1', { op: 'define', name: 'vm1', def: sim.def(1, 5000, { ips: ['10.0.0.1'] }) });
    assert.equal(sim.op('hv1', { op: 'start', name: 'vm1' }).ok, true);
    const bv = sim.bridges.get('nnve')!.vsis()[0]!.vsi;
    assert.equal(bv.filterFormat, 4);
    assert.deepEqual(
      bv.entries.map((e) => [e.groupId, e.mac]),
      [[5000, '52:54:00:00:00:01']],
    );
    assert.deepEqual(sim.agent('hv1').vmView('vm1')!.interfaces[0]!.ips, ['10.0.0.1']);
    const r = sim.op('hv1', { op: 'suspend', name: 'vm1' });
    assert.equal(r.ok, true, r.message);
    assert.equal(sim.bridgeStates(VSI1)[0]!.state, 'pre-associated-rr');
    const kinds = sim.bridgeEvents
      .filter((x) => x.e.type === 'tsi')
      .map((x) => (x.e as { to: string }).to);
    assert.deepEqual(kinds.slice(-2), ['init', 'pre-associated-rr']);
    assert.equal(sim.op('hv1', { op: 'resume', name: 'vm1' }).ok, true);
    assert.equal(sim.bridgeStates(VSI1)[0]!.state, 'associated');
  });

  it('plain profile, plainSuspend keep-associated: suspend leaves the TSI Activated', () => {
    const sim = setup('802.1Qbg', { plainSuspend: 'keep-associated' });
    sim.op('hv1', { op: 'define', name: 'vm1', def: sim.def(1, 5000) });
    assert.equal(sim.op('hv1', { op: 'start', name: 'vm1' }).ok, true);
    assert.equal(sim.op('hv1', { op: 'suspend', name: 'vm1' }).ok, true);
    assert.equal(sim.bridgeStates(VSI1)[0]!.state, 'associated');
  });

  it('start fails with the reason code and the uplink when the nNVE refuses; the VM stays shut off', () => {
    const sim = new TnveSim(3);
    sim.addBridge('nnve', ['p1'], { pool: { min: 200, max: 200 } });
    sim.addHypervisor('hv1', [{ name: 'eth0', bridge: 'nnve', port: 'p1' }]);
    sim.run(500_000);
    sim.op('hv1', { op: 'define', name: 'a', def: sim.def(1, 5000) });
    sim.op('hv1', { op: 'define', name: 'b', def: sim.def(2, 6000) });
    assert.equal(sim.op('hv1', { op: 'start', name: 'a' }).ok, true);
    const r = sim.op('hv1', { op: 'start', name: 'b' });
    assert.equal(r.ok, false);
    assert.equal(r.error, 'refused');
    assert.equal(r.state, 'shutoff');
    assert.equal(r.failures[0]!.uplink, 'eth0');
    assert.equal(r.failures[0]!.reason, 2);
    assert.match(r.message!, /uplink eth0: refused reason 2 \(insufficient resources\)/);
    assert.equal(sim.agent('hv1').vmView('b')!.state, 'shutoff');
  });

  it('start fails within its timeout when no nNVE answers', () => {
    const sim = setup();
    sim.blackhole('hv1', 'eth0', true);
    sim.op('hv1', { op: 'define', name: 'vm1', def: sim.def(1, 5000) });
    const t0 = sim.fabric.now;
    const r = sim.op('hv1', { op: 'start', name: 'vm1' }, 10_000_000, 3_000_000);
    assert.equal(r.ok, false);
    assert.match(r.error!, /timeout|no-uplink/);
    assert.ok(sim.fabric.now - t0 <= 3_100_000, `answered after ${sim.fabric.now - t0} µs`);
    assert.match(r.message!, /eth0/);
    assert.equal(r.state, 'shutoff');
  });

  it('start over a cut cable fails at once with no-uplink, also after earlier answers', () => {
    const sim = setup();
    sim.op('hv1', { op: 'define', name: 'vm1', def: sim.def(1, 5000) });
    assert.equal(sim.op('hv1', { op: 'start', name: 'vm1' }).ok, true);
    assert.equal(sim.op('hv1', { op: 'stop', name: 'vm1' }).ok, true);
    // the nNVE has answered before: that must not count as the link being back
    sim.cable('hv1', 'eth0', false);
    sim.run(1000);
    assert.equal(sim.agent('hv1').uplinkHealth('eth0').linkUp, false);
    const t0 = sim.fabric.now;
    const r = sim.op('hv1', { op: 'start', name: 'vm1' }, 10_000_000, 3_000_000);
    assert.equal(r.ok, false);
    assert.equal(r.error, 'no-uplink', r.message);
    assert.match(r.message!, /no uplink of VN 5000 is up \(eth0\)/);
    assert.ok(sim.fabric.now - t0 < 1000, `answered after ${sim.fabric.now - t0} µs`);
    assert.equal(r.state, 'shutoff');
    sim.cable('hv1', 'eth0', true);
    sim.run(1000);
    // nothing of the failed start went out over the cut cable to reach the nNVE afterwards
    // (not even for a moment: ECP would have retransmitted it once the cable was back)
    sim.run(500_000);
    assert.deepEqual(sim.bridges.get('nnve')!.vsis(), []);
    assert.deepEqual(
      sim.bridgeEvents.filter((x) => x.t >= t0 && x.e.type === 'tsi').map((x) => x.e.type),
      [],
    );
    assert.equal(sim.op('hv1', { op: 'start', name: 'vm1' }).ok, true);
  });

  it('conflicting calls are refused with the state named', () => {
    const sim = setup();
    let r = sim.op('hv1', { op: 'start', name: 'nope' });
    assert.equal(r.error, 'not-found');
    sim.op('hv1', { op: 'define', name: 'vm1', def: sim.def(1, 5000) });
    r = sim.op('hv1', { op: 'migrate-in-commit', name: 'vm1' });
    assert.equal(r.error, 'conflict');
    assert.match(r.message!, /VM vm1 is shutoff/);
    // a VSI id belongs to one VM
    r = sim.op('hv1', { op: 'define', name: 'vm2', def: sim.def(1, 5000) });
    assert.equal(r.error, 'conflict');
    assert.match(r.message!, /belongs to VM vm1/);
    // a VN is needed
    r = sim.op('hv1', {
      op: 'define',
      name: 'vm3',
      def: { interfaces: [{ ...sim.def(3, 1).interfaces[0]!, vni: undefined }] },
    });
    assert.equal(r.error, 'invalid');
    assert.match(r.message!, /has no VN/);
  });
});
