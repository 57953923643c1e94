/**
 * The failure paths of the lifecycle API with real daemons over veth: an nNVE with one local
 * tag and no automatic VN creation, two hypervisors on it. A `start` the nNVE refuses (tag
 * pool exhausted, unknown VN) answers 409 with the reason code and the uplink and leaves the VM
 * shut off and nothing on the nNVE; a `start` towards a hung nNVE or over a downed link fails
 * clearly within its timeout; a `migrate-in commit` the destination's nNVE refuses leaves the
 * destination not running and the source Activated.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApiCallError } from '../../src/tnve/client.js';
import { EVB_ARGS, ip, Lab, type Daemon, type VmView } from './lab.js';

interface Failure {
  uplink: string;
  vsiId: string;
  error: string;
  reason?: number;
}
interface TsiView {
  port: string;
  station: string;
  vsiId: string;
  state: string;
}

const vsi = (n: number) => `00000000-0000-4000-8000-0000000004${n.toString(16).padStart(2, '0')}`;
const def = (n: number, vni: number) => ({
  interfaces: [
    {
      vsiId: vsi(n),
      vni,
      macs: [`52:54:00:00:04:${n.toString(16).padStart(2, '0')}`],
      ips: [`10.4.0.${n}`],
    },
  ],
});

/** The API error of a call that must fail. */
async function refusal(p: Promise<unknown>): Promise<ApiCallError> {
  const e = await p.then(
    () => assert.fail('the call succeeded'),
    (x: unknown) => x,
  );
  assert.ok(e instanceof ApiCallError, String(e));
  return e;
}

describe('tnve over veth: refusals and timeouts', () => {
  const lab = new Lab(EVB_ARGS, 'snt4');
  let n: Daemon;
  let h1: Daemon;
  const ns: Record<string, string> = {};
  const up: Record<string, string> = {};

  before(async () => {
    for (const t of ['n', 'h1', 'h2']) ns[t] = lab.ns(t);
    [up.h1, up.p1] = lab.veth(ns.h1!, ns.n!, '1');
    [up.h2, up.p2] = lab.veth(ns.h2!, ns.n!, '2');
    // one local tag, no VN created on first use; the VNs it knows are set over its API
    n = await lab.nnve(
      'n',
      ns.n!,
      [up.p1!, up.p2!],
      ['--vlan-pool', '100-100', '--no-vn-auto-create', '--tag-hold', '0'],
    );
    await lab.nnveCall('n', 'POST', '/v1/vns', { vni: 5000 });
    await lab.nnveCall('n', 'POST', '/v1/vns', { vni: 5001 });
    [h1] = await Promise.all([lab.tnve('h1', ns.h1!, [up.h1!]), lab.tnve('h2', ns.h2!, [up.h2!])]);
  });

  after(() => lab.destroy());

  const tsis = () => lab.nnveCall<TsiView[]>('n', 'GET', '/v1/tsis');
  const onN = async (id: string) => (await tsis()).filter((t) => t.vsiId === id);

  it('start refused by the nNVE (pool exhausted, unknown VN): reason code and uplink, VM shut off, nothing on the nNVE', async () => {
    await lab.call('h1', 'PUT', '/v1/vms/a', def(1, 5000));
    await lab.call('h1', 'PUT', '/v1/vms/b', def(2, 5001));
    await lab.call('h1', 'PUT', '/v1/vms/c', def(3, 9999));
    const a = await lab.call<{ view: VmView }>('h1', 'POST', '/v1/vms/a/start', {});
    assert.equal(a.view.interfaces[0]!.localTag!.vid, 100);
    // VN 5001 is known but the only tag is VN 5000's
    let e = await refusal(lab.call('h1', 'POST', '/v1/vms/b/start', {}));
    assert.equal(e.status, 409);
    assert.equal(e.body.error, 'refused');
    assert.equal(e.body.state, 'shutoff');
    assert.match(
      String(e.body.detail),
      new RegExp(`uplink ${up.h1}: refused reason 2 \\(insufficient resources\\)`),
    );
    let f = (e.body.failures as Failure[])[0]!;
    assert.deepEqual([f.uplink, f.vsiId, f.reason], [up.h1, vsi(2), 2]);
    // VN 9999 is unknown to the nNVE
    e = await refusal(lab.call('h1', 'POST', '/v1/vms/c/start', {}));
    assert.equal(e.status, 409);
    assert.equal(e.body.state, 'shutoff');
    assert.match(String(e.body.detail), new RegExp(`uplink ${up.h1}: refused reason 5 `));
    f = (e.body.failures as Failure[])[0]!;
    assert.deepEqual([f.uplink, f.vsiId, f.reason], [up.h1, vsi(3), 5]);
    // the nNVE logged both refusals with its reason
    const refused = n.lines.filter((l) => l.event === 'vsi.refused');
    assert.deepEqual(
      refused.map((l) => [l.vsi, l.reason, l.port]),
      [
        [vsi(2), 2, up.p1],
        [vsi(3), 5, up.p1],
      ],
    );
    assert.match(String(refused[1]!.detail), /GroupID 9999 is not a VN known to the NVA/);
    for (const name of ['b', 'c']) {
      const v = await lab.call<VmView>('h1', 'GET', `/v1/vms/${name}`);
      assert.equal(v.state, 'shutoff');
      assert.equal(v.interfaces[0]!.localTag, null);
    }
    // nothing of b or c on the nNVE, a untouched; still so a few keep-alives later
    await new Promise((r) => setTimeout(r, 800));
    assert.deepEqual(
      (await tsis()).map((t) => `${t.vsiId}:${t.port}:${t.state}`),
      [`${vsi(1)}:${up.p1}:Activated`],
    );
    assert.deepEqual(
      n.tsiLogs().map((l) => l.vsi),
      [vsi(1)],
    );
    for (const name of ['a', 'b', 'c']) await lab.call('h1', 'DELETE', `/v1/vms/${name}`);
    await lab.until(() => n.tsiStates().size === 0, 'a de-associated');
  });

  it('start towards a hung nNVE fails within its timeout, naming the uplink; nothing stays once it wakes up', async (t) => {
    await lab.call('h1', 'PUT', '/v1/vms/t', def(4, 5000));
    const pid = n.child.pid!;
    process.kill(pid, 'SIGSTOP');
    let e: ApiCallError;
    const t0 = performance.now();
    try {
      e = await refusal(lab.call('h1', 'POST', '/v1/vms/t/start', { timeoutMs: 1500 }));
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const took = performance.now() - t0;
    t.diagnostic(`start towards a hung nNVE failed after ${Math.round(took)} ms: ${e.message}`);
    assert.ok(took < 1500 + 1000, `answered after ${took} ms`);
    assert.equal(e.status, 504);
    assert.equal(e.body.error, 'timeout');
    assert.match(e.message, new RegExp(`uplink ${up.h1}: timeout: no response from the bridge`));
    assert.equal(e.body.state, 'shutoff');
    // the nNVE may still act on the frames it had queued; the agent takes them back
    await lab.until(() => n.tsiStates().size === 0, 'nothing on the nNVE for t', 6000);
    await new Promise((r) => setTimeout(r, 800));
    const seen = n
      .tsiLogs()
      .filter((l) => l.vsi === vsi(4))
      .map((l) => `${l.to}(${l.cause})`);
    t.diagnostic(`on the nNVE after it woke up: ${seen.join(', ')}`);
    // taken back by a De-Associate, not left to the nNVE's keep-alive expiry
    if (seen.length > 0) assert.equal(seen.at(-1), 'Init(deassociate)');
    assert.deepEqual(await onN(vsi(4)), []);
    const v = await lab.call<VmView>('h1', 'GET', '/v1/vms/t');
    assert.equal(v.state, 'shutoff');
    // once the nNVE answers again, the same start succeeds
    const r = await lab.call<{ state: string }>('h1', 'POST', '/v1/vms/t/start', {});
    assert.equal(r.state, 'running');
    await lab.call('h1', 'DELETE', '/v1/vms/t');
    await lab.until(() => n.tsiStates().size === 0, 't de-associated');
  });

  it('start over a downed uplink fails at once, naming it; the VM stays shut off', async (t) => {
    await lab.call('h1', 'PUT', '/v1/vms/d', def(5, 5000));
    const mark = h1.lines.length;
    ip('-n', ns.h1!, 'link', 'set', up.h1!, 'down');
    let e: ApiCallError;
    const t0 = performance.now();
    try {
      await h1.waitLog(
        (l) => l.event === 'uplink.down' && l.uplink === up.h1,
        'the link down seen',
        3000,
        mark,
      );
      e = await refusal(lab.call('h1', 'POST', '/v1/vms/d/start', { timeoutMs: 1500 }));
    } finally {
      ip('-n', ns.h1!, 'link', 'set', up.h1!, 'up');
    }
    const took = performance.now() - t0;
    t.diagnostic(`start over a downed uplink failed after ${Math.round(took)} ms: ${e.message}`);
    assert.ok(took < 1500 + 1000, `answered after ${took} ms`);
    assert.equal(e.status, 503);
    assert.equal(e.body.error, 'no-uplink');
    assert.match(e.message, new RegExp(`no uplink of VN 5000 is up \\(${up.h1}\\)`));
    assert.equal(e.body.state, 'shutoff');
    assert.equal((await lab.call<VmView>('h1', 'GET', '/v1/vms/d')).state, 'shutoff');
    // the link is back: still nothing on the nNVE, and the VM can start
    await h1.waitLog(
      (l) => l.event === 'uplink.healthy' && l.uplink === up.h1,
      'the uplink healthy again',
      5000,
      mark,
    );
    assert.deepEqual(await onN(vsi(5)), []);
    const r = await lab.call<{ state: string }>('h1', 'POST', '/v1/vms/d/start', {});
    assert.equal(r.state, 'running');
    await lab.call('h1', 'DELETE', '/v1/vms/d');
    await lab.until(() => n.tsiStates().size === 0, 'd de-associated');
  });

  it('migrate-in commit refused by the nNVE: the destination is not running, the source stays Activated', async () => {
    const src = lab.mac(ns.h1!, up.h1!);
    const dst = lab.mac(ns.h2!, up.h2!);
    await lab.nnveCall('n', 'POST', '/v1/vns', { vni: 5000, allowedStations: [src, dst] });
    await lab.call('h1', 'PUT', '/v1/vms/m', def(6, 5000));
    await lab.call('h1', 'POST', '/v1/vms/m/start', {});
    const r1 = await lab.call<{ state: string }>(
      'h2',
      'POST',
      '/v1/vms/m/migrate-in/begin',
      def(6, 5000),
    );
    assert.equal(r1.state, 'incoming');
    await lab.call('h1', 'POST', '/v1/vms/m/migrate-out/begin', {});
    await lab.until(
      () => n.tsiStates().get(`${up.p2}|${vsi(6)}`) === 'Associated',
      'the destination pre-associated',
    );
    const mark = n.tsiLogs().length;
    // the operator takes the destination's station off the VN before the switchover
    await lab.nnveCall('n', 'POST', '/v1/vns', { vni: 5000, allowedStations: [src] });
    const e = await refusal(lab.call('h2', 'POST', '/v1/vms/m/migrate-in/commit', {}));
    assert.equal(e.status, 409);
    assert.equal(e.body.error, 'refused');
    assert.equal(e.body.state, 'incoming');
    assert.match(String(e.body.detail), new RegExp(`uplink ${up.h2}: refused reason 5 `));
    const f = (e.body.failures as Failure[])[0]!;
    assert.deepEqual([f.uplink, f.reason], [up.h2, 5]);
    const refused = n.lines.filter((l) => l.event === 'vsi.refused' && l.vsi === vsi(6));
    assert.match(String(refused.at(-1)!.detail), /may not attach to VN 5000/);
    const d = await lab.call<VmView>('h2', 'GET', '/v1/vms/m');
    assert.notEqual(d.state, 'running');
    assert.notEqual(d.interfaces[0]!.tsiState, 'Activated');
    const s = await lab.call<VmView>('h1', 'GET', '/v1/vms/m');
    assert.equal(s.state, 'outgoing');
    assert.equal(s.interfaces[0]!.tsiState, 'Activated');
    // on the nNVE: the source never changed, the destination never Activated
    await new Promise((r) => setTimeout(r, 500));
    const after = n
      .tsiLogs()
      .slice(mark)
      .filter((l) => l.vsi === vsi(6));
    assert.deepEqual(
      after.filter((l) => l.port === up.p1),
      [],
    );
    assert.deepEqual(
      after.filter((l) => l.to === 'Activated'),
      [],
    );
    const now = await onN(vsi(6));
    assert.deepEqual(
      now.filter((x) => x.state === 'Activated').map((x) => x.port),
      [up.p1],
    );
    assert.deepEqual(n.doubleActivations(), []);
    // the orchestrator aborts: the destination is dropped, the source runs on
    await lab.call('h2', 'POST', '/v1/vms/m/migrate-in/abort', {});
    const r = await lab.call<{ state: string }>('h1', 'POST', '/v1/vms/m/migrate-out/abort', {});
    assert.equal(r.state, 'running');
    await lab.until(() => !n.tsiStates().has(`${up.p2}|${vsi(6)}`), 'the destination gone');
    assert.equal(n.tsiStates().get(`${up.p1}|${vsi(6)}`), 'Activated');
  });
});
