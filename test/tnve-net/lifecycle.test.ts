/**
 * Real daemons over veth: `splitnve nnve` and `splitnve tnve` in network namespaces, raw
 * sockets, the lifecycle API on unix sockets. Three hypervisors: h1 and h2 on one nNVE (n1),
 * h3 on another (n2). Covers the lifecycle with start latency, local tags applied to an Open
 * vSwitch, migrations on one nNVE and across two, an aborted migration, and a restart.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import { startOvsHv, type OvsHv } from '../harness/ovs-hv.js';
import { RUNNING_DOMAIN } from '../tnve-libvirt/fixtures.js';
import { ip, Lab, MAIN, type Daemon, type VmView } from './lab.js';

interface Answer {
  state: string | null;
  tookMs: number;
  view: VmView | null;
}

const vsi = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const def = (n: number, vni: number, port?: string) => ({
  interfaces: [
    {
      vsiId: vsi(n),
      vni,
      macs: [`52:54:00:00:01:${n.toString(16).padStart(2, '0')}`],
      ips: [`10.5.0.${n}`],
      ...(port ? { port } : {}),
    },
  ],
});

describe('tnve over veth with real daemons', () => {
  // keep-alive 1.3 s: a restarted agent is back long before the nNVE would expire anything
  const lab = new Lab(['--r', '3', '--rte', '10', '--rwd', '15', '--rka', '17']);
  let n1: Daemon;
  let n2: Daemon;
  let h1: Daemon;
  let ovs: OvsHv;
  let vnet: string;
  const ns: Record<string, string> = {};
  const up: Record<string, string> = {};

  /**
   * Defines and starts VM `name` (VSI `n`) on h1 and waits until n1's log has it Activated (the
   * log comes through n1's stdout, not in step with h1's answer); returns n1's log length then.
   */
  async function startOnH1(name: string, n: number, vni: number): Promise<number> {
    await lab.call('h1', 'PUT', `/v1/vms/${name}`, def(n, vni));
    await lab.call('h1', 'POST', `/v1/vms/${name}/start`, {});
    await lab.until(
      () => n1.tsiStates().get(`${up.n1p1}|${vsi(n)}`) === 'Activated',
      `n1 logged ${name} Activated`,
    );
    return n1.tsiLogs().length;
  }

  /** Stops (or SIGKILLs) h1 and starts it again on its state; returns how long it was down. */
  async function restartH1(how: 'stop' | 'kill'): Promise<number> {
    const t0 = performance.now();
    await (how === 'stop' ? h1.stop() : h1.kill());
    h1 = await lab.tnve('h1', ns.h1!, [up.h1!], ['--ovs-db', ovs.db]);
    await h1.waitLog((l) => l.event === 'state.restored', 'restore');
    return performance.now() - t0;
  }

  before(async () => {
    for (const t of ['n1', 'n2', 'h1', 'h2', 'h3']) ns[t] = lab.ns(t);
    [up.h1, up.n1p1] = lab.veth(ns.h1!, ns.n1!, '1');
    [up.h2, up.n1p2] = lab.veth(ns.h2!, ns.n1!, '2');
    [up.h3, up.n2p1] = lab.veth(ns.h3!, ns.n2!, '3');
    ovs = await startOvsHv(ns.h1!, join(lab.dir, 'ovs-h1'), ['br-hv']);
    // the VM's port on the hypervisor's vswitch (the other end stands for the guest)
    const [v, g] = lab.veth(ns.h1!, ns.h1!, 'v');
    vnet = v;
    void g;
    ovs.vsctl('add-port', 'br-hv', vnet);
    [n1, n2] = await Promise.all([
      lab.nnve('n1', ns.n1!, [up.n1p1!, up.n1p2!]),
      lab.nnve('n2', ns.n2!, [up.n2p1!]),
    ]);
    [h1] = await Promise.all([
      lab.tnve('h1', ns.h1!, [up.h1!], ['--ovs-db', ovs.db]),
      lab.tnve('h2', ns.h2!, [up.h2!]),
      lab.tnve('h3', ns.h3!, [up.h3!]),
    ]);
  });

  after(async () => {
    await lab.destroy();
    await ovs?.stop();
  });

  it('lifecycle on h1: start answers after the nNVE accepted, the OVS port gets the local tag', async (t) => {
    await lab.call('h1', 'PUT', '/v1/vms/vm1', def(1, 5000, vnet));
    const times: number[] = [];
    let vid = 0;
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      const r = await lab.call<Answer>('h1', 'POST', '/v1/vms/vm1/start', {});
      times.push(performance.now() - t0);
      assert.equal(r.state, 'running');
      vid = r.view!.interfaces[0]!.localTag!.vid;
      // when start answered, the nNVE has logged the activation
      await lab.until(
        () => n1.tsiStates().get(`${up.n1p1}|${vsi(1)}`) === 'Activated',
        'Activated on n1',
      );
      if (i < 9) await lab.call('h1', 'POST', '/v1/vms/vm1/stop', {});
    }
    times.sort((a, b) => a - b);
    t.diagnostic(
      `start latency over veth (HTTP call, Associate round trip): median ${times[5]!.toFixed(1)} ms, max ${times[9]!.toFixed(1)} ms`,
    );
    assert.ok(vid >= 100 && vid <= 199);
    const log = n1.tsiLogs().at(-1)!;
    assert.deepEqual(log.vids, [vid]);
    await lab.until(() => {
      try {
        return ovs.vsctl('get', 'port', vnet, 'tag').trim() === String(vid);
      } catch {
        return false;
      }
    }, `tag=${vid} on ${vnet}`);
    // suspend: Associated, S=1 (leaving); the tag stays
    let r = await lab.call<Answer>('h1', 'POST', '/v1/vms/vm1/suspend', {});
    assert.equal(r.state, 'suspended');
    await lab.until(
      () => n1.tsiStates().get(`${up.n1p1}|${vsi(1)}`) === 'Associated',
      'Associated',
    );
    assert.equal(n1.tsiLogs().at(-1)!.migration, 'leaving');
    r = await lab.call<Answer>('h1', 'POST', '/v1/vms/vm1/resume', {});
    assert.equal(r.state, 'running');
    // stop: Init on the nNVE, the port parked on 4095
    r = await lab.call<Answer>('h1', 'POST', '/v1/vms/vm1/stop', {});
    assert.equal(r.state, 'shutoff');
    await lab.until(() => !n1.tsiStates().has(`${up.n1p1}|${vsi(1)}`), 'Init');
    await lab.until(() => ovs.vsctl('get', 'port', vnet, 'tag').trim() === '4095', 'parked');
    await lab.call('h1', 'DELETE', '/v1/vms/vm1');
  });

  it('migration h1 -> h2 on one nNVE: the nNVE hands the TSI over, never both Activated', async () => {
    await lab.call('h1', 'PUT', '/v1/vms/m1', def(2, 5001));
    await lab.call('h1', 'POST', '/v1/vms/m1/start', {});
    const r1 = await lab.call<Answer>('h2', 'POST', '/v1/vms/m1/migrate-in/begin', def(2, 5001));
    assert.equal(r1.state, 'incoming');
    await lab.call('h1', 'POST', '/v1/vms/m1/migrate-out/begin', {});
    const r2 = await lab.call<Answer>('h2', 'POST', '/v1/vms/m1/migrate-in/commit', {});
    assert.equal(r2.state, 'running');
    const r3 = await lab.call<Answer>('h1', 'POST', '/v1/vms/m1/migrate-out/commit', {});
    assert.equal(r3.state, null);
    await lab.until(
      () =>
        n1.tsiStates().get(`${up.n1p2}|${vsi(2)}`) === 'Activated' &&
        !n1.tsiStates().has(`${up.n1p1}|${vsi(2)}`),
      'the TSI only on p2',
    );
    const mine = n1.tsiLogs().filter((l) => l.vsi === vsi(2));
    assert.deepEqual(
      mine.map(
        (l) =>
          `${l.port === up.n1p1 ? 'src' : 'dst'}:${l.to}${l.migration ? `(${l.migration})` : ''}`,
      ),
      [
        'src:Activated',
        'dst:Associated(arriving)',
        'src:Associated',
        'dst:Activated(arriving)',
        'src:Init',
      ],
    );
    assert.deepEqual(n1.doubleActivations(), []);
  });

  it('migration h2 -> h3 across two nNVEs: switchover, commit, de-associate', async () => {
    await lab.call('h2', 'PUT', '/v1/vms/m2', def(3, 5002));
    await lab.call('h2', 'POST', '/v1/vms/m2/start', {});
    await lab.call('h3', 'POST', '/v1/vms/m2/migrate-in/begin', def(3, 5002));
    await lab.call('h2', 'POST', '/v1/vms/m2/migrate-out/begin', {});
    await lab.call('h2', 'POST', '/v1/vms/m2/migrate-out/switchover', {});
    const tSwitch = Date.now();
    await lab.call('h3', 'POST', '/v1/vms/m2/migrate-in/commit', {});
    await lab.call('h2', 'POST', '/v1/vms/m2/migrate-out/commit', {});
    await lab.until(
      () => n2.tsiStates().get(`${up.n2p1}|${vsi(3)}`) === 'Activated',
      'Activated on n2',
    );
    await lab.until(() => !n1.tsiStates().has(`${up.n1p2}|${vsi(3)}`), 'gone from n1');
    const deact = n1.tsiLogs().find((l) => l.vsi === vsi(3) && l.from === 'Activated')!;
    const act = n2.tsiLogs().find((l) => l.vsi === vsi(3) && l.to === 'Activated')!;
    assert.equal(deact.to, 'Associated', 'deactivated, not dropped, at the switchover');
    assert.equal(deact.migration, 'leaving');
    assert.ok(
      deact.time <= act.time,
      'the source was deactivated before the destination activated',
    );
    assert.ok(deact.time <= tSwitch);
  });

  it('aborted migration h1 -> h2: the source TSI never changes', async () => {
    const mark = await startOnH1('m3', 4, 5003);
    await lab.call('h2', 'POST', '/v1/vms/m3/migrate-in/begin', def(4, 5003));
    await lab.call('h1', 'POST', '/v1/vms/m3/migrate-out/begin', {});
    await lab.call('h2', 'POST', '/v1/vms/m3/migrate-in/abort', {});
    const r = await lab.call<Answer>('h1', 'POST', '/v1/vms/m3/migrate-out/abort', {});
    assert.equal(r.state, 'running');
    await lab.until(() => !n1.tsiStates().has(`${up.n1p2}|${vsi(4)}`), 'destination gone');
    const src = n1
      .tsiLogs()
      .slice(mark)
      .filter((l) => l.vsi === vsi(4) && l.port === up.n1p1);
    assert.deepEqual(src, []);
    assert.equal(n1.tsiStates().get(`${up.n1p1}|${vsi(4)}`), 'Activated');
  });

  it('libvirt hook on h3 (as libvirt runs it): prepare, start, release', async () => {
    const hook = (op: string, sub: string, extra = '-') =>
      spawnSync(
        'ip',
        ['netns', 'exec', ns.h3!, process.execPath, MAIN, 'libvirt-hook', 'web-01', op, sub, extra],
        {
          input: RUNNING_DOMAIN,
          encoding: 'utf8',
          env: { ...process.env, SPLITNVE_TNVE_API: lab.api('h3') },
        },
      );
    for (const op of ['prepare', 'start', 'started']) {
      const r = hook(op, 'begin');
      assert.equal(r.status, 0, r.stderr);
    }
    const v = await lab.call<VmView>('h3', 'GET', '/v1/vms/web-01');
    assert.equal(v.state, 'running');
    await lab.until(
      () => [...n2.tsiStates().values()].filter((s) => s === 'Activated').length === 3,
      'two more TSIs Activated on n2',
    );
    const r = hook('release', 'end', 'destroyed');
    assert.equal(r.status, 0, r.stderr);
    await lab.until(
      () => [...n2.tsiStates().values()].filter((s) => s === 'Activated').length === 1,
      'de-associated on n2',
    );
  });

  it('restart of h1: every association re-asserted, nothing changes on the nNVE; reconcile', async (t) => {
    const mark = await startOnH1('r1', 5, 5004);
    const outageMs = await restartH1('stop');
    const vms = await lab.call<{ name: string; state: string }[]>('h1', 'GET', '/v1/vms');
    assert.deepEqual(
      vms.map((v) => `${v.name}:${v.state}`),
      ['m3:running', 'r1:running'],
    );
    // keep-alives resume from the new process: both stay Activated on the nNVE
    await new Promise((r) => setTimeout(r, 1500));
    const changes = n1.tsiLogs().slice(mark);
    t.diagnostic(
      `TSI changes on the nNVE across the restart: ${changes.length} (agent down ${Math.round(outageMs)} ms)`,
    );
    // The nNVE expires a VSI 1.5·((2R+1)·ACK + RKA) after its last keep-alive: ~2.07 s with
    // these timers. A restart well inside that must change nothing; only a restart that took
    // about that long (a loaded machine) may show expiries, and then nothing else.
    if (outageMs < 1500) assert.deepEqual(changes, []);
    else
      assert.deepEqual(
        changes.filter((c) => c.cause !== 'keepalive-expired' && c.cause !== 'request'),
        [],
      );
    await lab.until(
      () =>
        n1.tsiStates().get(`${up.n1p1}|${vsi(4)}`) === 'Activated' &&
        n1.tsiStates().get(`${up.n1p1}|${vsi(5)}`) === 'Activated',
      'both Activated after the restart',
    );
    // the orchestrator: m3 was shut down meanwhile, r1 still runs
    const rec = await lab.call<{ ok: boolean; results: { name: string; state: string }[] }>(
      'h1',
      'POST',
      '/v1/reconcile',
      {
        vms: [
          { name: 'm3', state: 'shutoff' },
          { name: 'r1', state: 'running' },
        ],
      },
    );
    assert.equal(rec.ok, true);
    await lab.until(() => !n1.tsiStates().has(`${up.n1p1}|${vsi(4)}`), 'm3 de-associated');
    assert.equal(n1.tsiStates().get(`${up.n1p1}|${vsi(5)}`), 'Activated');
    assert.deepEqual(n1.doubleActivations(), []);
    void ip;
  });

  it('SIGKILL of h1 right after a start: the restarted agent has the VM running and keeps it Activated', async (t) => {
    const mark = await startOnH1('k1', 6, 5004);
    const outageMs = await restartH1('kill');
    const v = await lab.call<VmView>('h1', 'GET', '/v1/vms/k1');
    assert.equal(v.state, 'running', 'the start committed before the answer survived SIGKILL');
    await new Promise((r) => setTimeout(r, 1500));
    await lab.until(
      () => n1.tsiStates().get(`${up.n1p1}|${vsi(6)}`) === 'Activated',
      'k1 Activated after the restart',
    );
    const changes = n1.tsiLogs().slice(mark);
    t.diagnostic(
      `TSI changes after SIGKILL: ${changes.length} (agent down ${Math.round(outageMs)} ms)`,
    );
    // as in the restart above: within the nNVE's expiry time (2.07 s) nothing may change
    if (outageMs < 1500) assert.deepEqual(changes, []);
    else
      assert.deepEqual(
        changes.filter((c) => c.cause !== 'keepalive-expired' && c.cause !== 'request'),
        [],
      );
    await lab.call('h1', 'POST', '/v1/vms/k1/stop', {});
  });
});
