/**
 * Active-active multi-homing and address changes with real daemons over veth: a hypervisor
 * with two uplinks to two nNVEs, `--multi-homing active-active`. A VM is Activated on both;
 * set-addresses on the running VM changes the filter on both nNVEs without a state change; a
 * cut uplink leaves the other one serving; the expiry its nNVE reports when the link returns
 * is respected until the next lifecycle call re-asserts the association.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EVB_ARGS, ip, Lab, type Daemon, type VmView } from './lab.js';

const VSI = '00000000-0000-4000-8000-0000000004a1';
const MAC = '52:54:00:00:04:a1';
const MAC2 = '52:54:00:00:04:a2';
const DEF = { interfaces: [{ vsiId: VSI, vni: 6100, macs: [MAC], ips: ['10.41.0.1'] }] };

interface TsiView {
  port: string;
  vsiId: string;
  state: string;
  endpoints: { vni: number; vid: number; mac: string; ips: string[] }[];
}

describe('active-active multi-homing over veth', () => {
  const lab = new Lab(EVB_ARGS, 'snt4');
  let a: Daemon;
  let b: Daemon;
  let hv: Daemon;
  const ns: Record<string, string> = {};
  let u1: string;
  let u2: string;
  let pa: string;
  let pb: string;

  before(async () => {
    ({ a, b, hv, u1, u2, pa, pb } = await lab.dualHomed(ns, ['--multi-homing', 'active-active']));
  });

  after(() => lab.destroy());

  const tsi = async (nnve: string): Promise<TsiView[]> =>
    (await lab.nnveCall<TsiView[]>(nnve, 'GET', '/v1/tsis')).filter((t) => t.vsiId === VSI);
  const stateOn = (d: Daemon, port: string): string | undefined =>
    d.tsiStates().get(`${port}|${VSI}`);

  it('start: Activated on both nNVEs, both uplinks active', async () => {
    await lab.call('hv', 'PUT', '/v1/vms/vm', DEF);
    const r = await lab.call<{ state: string; view: VmView }>('hv', 'POST', '/v1/vms/vm/start', {});
    assert.equal(r.state, 'running');
    const i = r.view.interfaces[0]!;
    assert.deepEqual(
      i.uplinks.map((u) => `${u.uplink}:${u.role}`),
      [`${u1}:active`, `${u2}:active`],
    );
    assert.equal(i.tsiState, 'Activated');
    // start answered when both nNVEs confirmed: their APIs show the TSI Activated now
    const [ta, tb] = await Promise.all([tsi('na'), tsi('nb')]);
    assert.deepEqual(
      ta.map((t) => `${t.port}:${t.state}`),
      [`${pa}:Activated`],
    );
    assert.deepEqual(
      tb.map((t) => `${t.port}:${t.state}`),
      [`${pb}:Activated`],
    );
    assert.deepEqual(ta[0]!.endpoints, [
      { vni: 6100, vid: ta[0]!.endpoints[0]!.vid, mac: MAC, ips: ['10.41.0.1'] },
    ]);
    // with active-active the first uplink's tag is the VM's local tag
    assert.deepEqual(i.localTag, { uplink: u1, vid: ta[0]!.endpoints[0]!.vid });
    const vns = await lab.call<{ vni: number; mode: string; uplinks: { role: string }[] }[]>(
      'hv',
      'GET',
      '/v1/vns',
    );
    const vn = vns.find((v) => v.vni === 6100)!;
    assert.equal(vn.mode, 'active-active');
    assert.deepEqual(
      vn.uplinks.map((u) => u.role),
      ['active', 'active'],
    );
  });

  it('set-addresses on the running VM: the new filter on both nNVEs, state unchanged', async () => {
    const marks = [a.tsiLogs().length, b.tsiLogs().length];
    const r = await lab.call<{ state: string; view: VmView }>(
      'hv',
      'POST',
      '/v1/vms/vm/addresses',
      {
        vsiId: VSI,
        macs: [MAC2],
        ips: ['10.41.0.2', '10.41.0.3'],
      },
    );
    assert.equal(r.state, 'running');
    assert.deepEqual(r.view.interfaces[0]!.macs, [MAC2]);
    assert.deepEqual(r.view.interfaces[0]!.ips, ['10.41.0.2', '10.41.0.3']);
    assert.equal(r.view.interfaces[0]!.tsiState, 'Activated');
    for (const [name, port] of [
      ['na', pa],
      ['nb', pb],
    ] as const) {
      const t = await tsi(name);
      assert.equal(t.length, 1, `${name}: ${JSON.stringify(t)}`);
      assert.equal(t[0]!.port, port);
      assert.equal(t[0]!.state, 'Activated');
      assert.deepEqual(
        t[0]!.endpoints.map((e) => [e.vni, e.mac, [...e.ips].sort()]),
        [[6100, MAC2, ['10.41.0.2', '10.41.0.3']]],
        `${name}: the new MAC with both addresses, the old one gone`,
      );
    }
    // no state change on either nNVE: no Init, no Associated in between
    for (const [d, m] of [
      [a, marks[0]!],
      [b, marks[1]!],
    ] as const) {
      const changes = d
        .tsiLogs()
        .slice(m)
        .filter((l) => l.vsi === VSI && l.from !== l.to);
      assert.deepEqual(changes, []);
    }
    assert.equal(stateOn(a, pa), 'Activated');
    assert.equal(stateOn(b, pb), 'Activated');
  });

  it('a cut uplink leaves the other serving; after the link returns the next start re-associates it', async () => {
    const mark = b.tsiLogs().length;
    const hvMark = hv.lines.length;
    ip('-n', ns.hv!, 'link', 'set', u2, 'down');
    try {
      await hv.waitLog(
        (l) => l.event === 'uplink.unhealthy' && l.uplink === u2,
        'u2 unhealthy',
        3000,
        hvMark,
      );
      const v = await lab.call<VmView>('hv', 'GET', '/v1/vms/vm');
      assert.equal(v.state, 'running');
      assert.equal(v.interfaces[0]!.tsiState, 'Activated');
      assert.deepEqual(v.interfaces[0]!.localTag?.uplink, u1);
      // nb stops hearing keep-alives and expires the TSI; na keeps it
      await lab.until(() => stateOn(b, pb) === undefined, 'expired on nb', 6000);
      assert.equal(
        b
          .tsiLogs()
          .slice(mark)
          .find((l) => l.vsi === VSI && l.to === 'Init')!.cause,
        'keepalive-expired',
      );
      assert.equal(stateOn(a, pa), 'Activated');
      assert.deepEqual(
        (await tsi('na')).map((t) => t.state),
        ['Activated'],
      );
    } finally {
      ip('-n', ns.hv!, 'link', 'set', u2, 'up');
    }
    // nb told the agent of its expiry once the link was back: reported, respected (README:
    // bridge-initiated changes are not fought until the next lifecycle call)
    const bridge = await hv.waitLog(
      (l) => l.event === 'tsi.bridge' && l.uplink === u2,
      'the expiry reported',
      5000,
      hvMark,
    );
    assert.equal(bridge.cause, 'bridge-deassociate');
    let v = await lab.call<VmView & { note?: string }>('hv', 'GET', '/v1/vms/vm');
    assert.equal(v.state, 'running');
    assert.equal(v.interfaces[0]!.tsiState, 'Activated');
    assert.match(String(v.note), new RegExp(`nNVE on ${u2}: bridge-deassociate`));
    // the orchestrator's next start re-asserts the association on nb, with the new addresses
    const r = await lab.call<{ state: string; view: VmView }>('hv', 'POST', '/v1/vms/vm/start', {});
    assert.equal(r.state, 'running');
    v = r.view;
    assert.deepEqual(
      v.interfaces[0]!.uplinks.map((u) => `${u.uplink}:${u.role}`),
      [`${u1}:active`, `${u2}:active`],
    );
    await lab.until(() => stateOn(b, pb) === 'Activated', 'Activated on nb again');
    const t = await tsi('nb');
    assert.deepEqual(
      t[0]!.endpoints.map((e) => e.mac),
      [MAC2],
    );
    assert.equal(stateOn(a, pa), 'Activated');
  });

  it('stop: Init on both nNVEs', async () => {
    const r = await lab.call<{ state: string }>('hv', 'POST', '/v1/vms/vm/stop', {});
    assert.equal(r.state, 'shutoff');
    const [ta, tb] = await Promise.all([tsi('na'), tsi('nb')]);
    assert.deepEqual([ta, tb], [[], []]);
    assert.deepEqual(a.doubleActivations(), []);
    assert.deepEqual(b.doubleActivations(), []);
  });
});
