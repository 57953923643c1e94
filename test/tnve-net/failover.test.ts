/**
 * Multi-homing with real daemons over veth: a hypervisor with two uplinks to two nNVEs,
 * active-standby. `ip link set down` on the active uplink fails over at once (link state from
 * rtnetlink); a hung nNVE (SIGSTOP) fails over on unanswered keep-alives. Both within two
 * keep-alive intervals, measured from the nNVE logs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ip, KA_MS, Lab, type Daemon } from './lab.js';

const VSI = '00000000-0000-4000-8000-0000000000f1';
const DEF = {
  interfaces: [{ vsiId: VSI, vni: 6000, macs: ['52:54:00:00:0f:01'], ips: ['10.6.0.1'] }],
};

describe('multi-homing over veth', () => {
  const lab = new Lab();
  let a: Daemon;
  let b: Daemon;
  let hv: Daemon;
  const ns: Record<string, string> = {};
  let u1: string;
  let u2: string;
  let pa: string;
  let pb: string;

  before(async () => {
    ({ a, b, hv, u1, u2, pa, pb } = await lab.dualHomed(ns));
  });

  after(() => lab.destroy());

  const stateOn = (d: Daemon, port: string): string | undefined =>
    d.tsiStates().get(`${port}|${VSI}`);

  it('active-standby: Activated on the first nNVE, pre-associated (RR) on the second', async () => {
    await lab.call('hv', 'PUT', '/v1/vms/vm', DEF);
    const r = await lab.call<{
      view: { interfaces: { uplinks: { uplink: string; role: string }[] }[] };
    }>('hv', 'POST', '/v1/vms/vm/start', {});
    assert.deepEqual(
      r.view.interfaces[0]!.uplinks.map((u) => `${u.uplink}:${u.role}`),
      [`${u1}:active`, `${u2}:standby`],
    );
    await lab.until(
      () => stateOn(a, pa) === 'Activated' && stateOn(b, pb) === 'Associated',
      'both',
    );
  });

  it('ip link set down on the active uplink: the standby is Activated within two keep-alive intervals', async (t) => {
    const t0 = Date.now();
    ip('-n', ns.hv!, 'link', 'set', u1, 'down');
    await lab.until(() => stateOn(b, pb) === 'Activated', 'Activated on the standby', 5000);
    const act = b.tsiLogs().find((l) => l.vsi === VSI && l.to === 'Activated')!;
    const took = act.time - t0;
    t.diagnostic(`failover after ip link set down: ${took} ms (keep-alive ${KA_MS} ms)`);
    assert.ok(took <= 2 * KA_MS, `failover took ${took} ms`);
    const fo = await hv.waitLog((l) => l.event === 'vn.failover', 'fail-over log');
    assert.equal(fo.from, u1);
    assert.equal(fo.to, u2);
    assert.match(String(fo.cause), /link down/);
    // the link comes back: the old active becomes the standby (deactivated), no fail-back
    ip('-n', ns.hv!, 'link', 'set', u1, 'up');
    await lab.until(() => stateOn(a, pa) === 'Associated', 'deactivated on the old active', 8000);
    assert.equal(stateOn(b, pb), 'Activated');
  });

  it('a hung nNVE (SIGSTOP): unanswered keep-alives fail over within two keep-alive intervals', async (t) => {
    const pid = b.child.pid!;
    const mark = a.tsiLogs().length;
    const t0 = Date.now();
    process.kill(pid, 'SIGSTOP');
    try {
      await lab.until(
        () =>
          a
            .tsiLogs()
            .slice(mark)
            .some((l) => l.vsi === VSI && l.to === 'Activated'),
        'Activated on the other nNVE',
        5000,
      );
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const act = a
      .tsiLogs()
      .slice(mark)
      .find((l) => l.vsi === VSI && l.to === 'Activated')!;
    const took = act.time - t0;
    if (took > 2 * KA_MS)
      for (const l of hv.lines.slice(-40))
        t.diagnostic(`${Date.parse(String(l.time)) - t0} ${JSON.stringify(l).slice(0, 250)}`);
    t.diagnostic(
      `failover after the active nNVE stopped answering: ${took} ms (keep-alive ${KA_MS} ms)`,
    );
    assert.ok(took <= 2 * KA_MS, `failover took ${took} ms`);
    const vns = await lab.call<{ vni: number; active: string }[]>('hv', 'GET', '/v1/vns');
    assert.equal(vns[0]!.active, u1);
    const view = await lab.call<{ interfaces: { localTag: { uplink: string } }[] }>(
      'hv',
      'GET',
      '/v1/vms/vm',
    );
    assert.equal(view.interfaces[0]!.localTag.uplink, u1);
  });
});
