/**
 * State effects of the nNVE (SPLIT-NVE.md §4) with the memory data plane and the embedded NVA,
 * driven by a real tNVE over an in-memory link.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { test } from 'node:test';
import type { DataPlaneState } from '../../src/dataplane/dataplane.js';
import { MemoryDataPlane } from '../../src/dataplane/memory.js';
import { sortState } from '../../src/dataplane/state.js';
import { NvaSync } from '../../src/nnve/effects.js';
import { EmbeddedNva } from '../../src/nva/embedded.js';
import type { NvaEntry } from '../../src/nva/nva.js';
import { apiPort, get, post, rig, vm } from './fixture.js';

const VNI = 5000;

async function installed(r: {
  nnve: { settled(): Promise<void>; dp: { dump(): Promise<DataPlaneState> } };
}): Promise<DataPlaneState> {
  await r.nnve.settled();
  return r.nnve.dp.dump();
}

test('Associated: VAP, mapping entry, filters built but off; Activated: forwarding, filters on; update keeps the state; Init releases all', async (t) => {
  const r = await rig(t, { nnve: { tagHoldS: 60 } });
  const np = apiPort(r.nnve);
  const a = await r.request('pre-associate-rr', vm(1, VNI, { ip: '192.0.2.1' }));
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal(a.body.state, 'Associated');
  const vid = (a.body.entries as { vid: number }[])[0]!.vid;
  assert.equal(vid, 100);
  assert.deepEqual(await installed(r), {
    vaps: [{ port: 'swp1', vlan: 100, vni: VNI }],
    locals: [
      {
        port: 'swp1',
        vlan: 100,
        vni: VNI,
        mac: '52:54:00:00:00:01',
        ips: ['192.0.2.1'],
        active: false,
      },
    ],
    remotes: [],
    floods: [],
  });
  assert.deepEqual(
    r.nnve.nva.ownEntries().map((e) => [e.vni, e.mac, e.kind, e.ips, e.vtep]),
    [[VNI, '52:54:00:00:00:01', 'mapping', ['192.0.2.1'], r.nnve.vtep]],
  );

  const b = await r.request('associate', vm(1, VNI, { ip: '192.0.2.1' }));
  assert.equal(b.body.state, 'Activated');
  let dp = await installed(r);
  assert.equal(dp.locals[0]!.active, true);
  assert.equal(r.nnve.nva.ownEntries()[0]!.kind, 'forwarding');

  // address update: a second IP; state and tag unchanged, every effect follows
  const spec = vm(1, VNI, { ip: '192.0.2.1' });
  spec.entries.push({ groupId: VNI, mac: '52:54:00:00:00:01', ipv4: '192.0.2.77', vid: 0 });
  const c = await r.request('associate', spec);
  assert.equal(c.status, 200, JSON.stringify(c.body));
  assert.equal(c.body.state, 'Activated');
  dp = await installed(r);
  assert.deepEqual(dp.locals[0]!.ips, ['192.0.2.1', '192.0.2.77']);
  assert.equal(dp.locals[0]!.active, true);
  assert.deepEqual(r.nnve.nva.ownEntries()[0]!.ips, ['192.0.2.1', '192.0.2.77']);
  const tsis = await get<{ state: string; endpoints: unknown[] }[]>(np, '/v1/tsis');
  assert.equal(tsis.length, 1);
  assert.equal(tsis[0]!.state, 'Activated');

  // deactivate (suspend): Activated -> Associated keeps the tag, filters off, mapping again
  const s = await r.request('pre-associate-rr', spec, { s: true });
  assert.equal(s.body.state, 'Associated');
  dp = await installed(r);
  assert.equal(dp.locals[0]!.active, false);
  assert.equal(dp.vaps.length, 1);
  assert.equal(r.nnve.nva.ownEntries()[0]!.kind, 'mapping');

  // Init: everything released, the tag held for the VN
  const d = await r.request('de-associate', spec);
  assert.equal(d.status, 200);
  assert.deepEqual(await installed(r), { vaps: [], locals: [], remotes: [], floods: [] });
  assert.deepEqual(r.nnve.nva.ownEntries(), []);
  assert.deepEqual(await get(np, '/v1/vaps'), []);
  const held = await get<{ vni: number; vid: number; state: string }[]>(np, '/v1/vaps?all=1');
  assert.deepEqual(
    held.map((v) => [v.vni, v.vid, v.state]),
    [[VNI, 100, 'held']],
  );
  // another VN does not get the held tag; the VN itself does
  const other = await r.request('associate', vm(2, VNI + 1));
  assert.equal((other.body.entries as { vid: number }[])[0]!.vid, 101);
  const back = await r.request('associate', vm(3, VNI));
  assert.equal((back.body.entries as { vid: number }[])[0]!.vid, 100);
});

test('explicit VN connect (GroupID/VID filter, no MAC) provisions the VAP alone; disconnect removes it', async (t) => {
  const r = await rig(t, { nnve: { tagHoldS: 0 } });
  const connect = {
    managerId: 'test',
    typeId: 1,
    typeVersion: 1,
    idFormat: 5,
    id: '00000000-0000-4000-8000-0000000000c0',
    filterFormat: 3,
    entries: [{ groupId: 6000, vid: 0 }],
  };
  const c = await r.request('associate', connect);
  assert.equal(c.status, 200, JSON.stringify(c.body));
  const vid = (c.body.entries as { vid: number }[])[0]!.vid;
  assert.deepEqual(await installed(r), {
    vaps: [{ port: 'swp1', vlan: vid, vni: 6000 }],
    locals: [],
    remotes: [],
    floods: [],
  });
  const vaps = await get<{ vni: number; explicit: number; tsis: number }[]>(
    apiPort(r.nnve),
    '/v1/vaps',
  );
  assert.deepEqual(
    vaps.map((v) => [v.vni, v.explicit, v.tsis]),
    [[6000, 1, 0]],
  );
  assert.deepEqual(r.nnve.model.watchedVnis(), [6000]);
  // a VM of that VN on the same segment gets the same tag
  const m = await r.request('associate', vm(7, 6000));
  assert.equal((m.body.entries as { vid: number }[])[0]!.vid, vid);
  await r.request('de-associate', vm(7, 6000));
  assert.equal((await installed(r)).vaps.length, 1, 'the explicit connection still holds the VAP');
  await r.request('de-associate', connect);
  assert.deepEqual(await installed(r), { vaps: [], locals: [], remotes: [], floods: [] });
  assert.deepEqual(r.nnve.model.watchedVnis(), []);
  assert.deepEqual(await get(apiPort(r.nnve), '/v1/tags'), [], 'hold 0: released at once');
});

test('VN resolution: unknown GroupID is reason 5 without auto-create; per-VN allowed stations and max TSIs', async (t) => {
  const r = await rig(t, { nnve: { vnAutoCreate: false }, stationMac: '02:00:00:00:aa:77' });
  const np = apiPort(r.nnve);
  const u = await r.request('associate', vm(1, 7000));
  assert.equal(u.status, 409);
  assert.equal(u.body.reason, 5);
  assert.equal((await post(np, '/v1/vns', { vni: 7000, name: 'web', maxTsis: 1 })).status, 200);
  assert.equal((await r.request('associate', vm(1, 7000))).status, 200);
  const vap = (await get<{ vni: number; vn: unknown }[]>(np, '/v1/vaps')).find(
    (v) => v.vni === 7000,
  );
  assert.deepEqual(vap?.vn, { name: 'web', maxTsis: 1 }, "the VAP carries the VN's context");
  const full = await r.request('associate', vm(2, 7000));
  assert.equal(full.status, 409);
  assert.equal(full.body.reason, 2, 'max TSIs: insufficient resources');
  assert.equal(
    (await r.request('associate', vm(1, 7000))).status,
    200,
    'a keep-alive of a member is fine',
  );
  await post(np, '/v1/vns', { vni: 7001, allowedStations: ['02:00:00:00:ee:ee'] });
  const denied = await r.request('associate', vm(3, 7001));
  assert.equal(denied.status, 409);
  assert.equal(denied.body.reason, 5);
  await post(np, '/v1/vns', { vni: 7001, allowedStations: ['02:00:00:00:aa:77'] });
  assert.equal((await r.request('associate', vm(3, 7001))).status, 200);
  const stats = await get<{ model: Record<string, number> }>(np, '/v1/stats');
  assert.equal(stats.model.refusedUnknownVn, 1);
  assert.equal(stats.model.refusedMaxTsis, 1);
  assert.equal(stats.model.refusedStation, 1);
});

test('auto-create: an unknown VN is created in the NVA and entries are published in it', async (t) => {
  const r = await rig(t);
  assert.equal((await r.request('associate', vm(1, 8000))).status, 200);
  await r.nnve.settled();
  assert.deepEqual(r.nnve.nva.getVn(8000), { vni: 8000, name: 'auto-8000' });
  assert.equal(r.nnve.nva.ownEntries().length, 1);
});

test('a VN deleted in the NVA de-associates its TSIs (the station is told)', async (t) => {
  const r = await rig(t, { nnve: { vnAutoCreate: false, vns: [{ vni: 9000 }, { vni: 9001 }] } });
  await r.request('associate', vm(1, 9000));
  await r.request('associate', vm(2, 9000));
  await r.request('associate', vm(3, 9001));
  const del = await post(apiPort(r.nnve), '/v1/vns/delete', { vni: 9000 });
  assert.equal(del.status, 200, JSON.stringify(del.body));
  await r.nnve.settled();
  const left = r.nnve.model.tsiViews().map((x) => x.endpoints[0]!.vni);
  assert.deepEqual(left, [9001]);
  // the tNVE heard the unsolicited De-Associate
  const deadline = Date.now() + 3000;
  let states: string[] = [];
  while (Date.now() < deadline) {
    states = (await get<{ state: string }[]>(apiPort(r.tnve), '/v1/vsis'))
      .map((v) => v.state)
      .sort();
    if (states.length === 1) break;
    await new Promise((res) => setTimeout(res, 20));
  }
  assert.deepEqual(states, ['Activated']);
  assert.deepEqual(
    (await installed(r)).locals.map((l) => l.vni),
    [9001],
  );
});

test('bridge-initiated: de-associate one VSI, a VN on a station, the whole station; deactivate', async (t) => {
  const r = await rig(t);
  const np = apiPort(r.nnve);
  const station = r.hv.mac;
  for (const [n, vni] of [
    [1, 100],
    [2, 100],
    [3, 101],
    [4, 102],
  ] as const) {
    assert.equal((await r.request('associate', vm(n, vni))).status, 200);
  }
  const id = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
  const deact = await post(np, '/v1/deactivate', { port: 'swp1', station, vsi: id(4) });
  assert.deepEqual(deact.body, { result: 'deactivated' });
  await r.nnve.settled();
  assert.equal((await installed(r)).locals.find((l) => l.vni === 102)!.active, false);
  const one = await post(np, '/v1/deassociate', { port: 'swp1', station, vsi: id(1) });
  assert.deepEqual(one.body, { deassociated: 1 });
  const vn = await post(np, '/v1/deassociate', { port: 'swp1', station, vni: 100 });
  assert.deepEqual(vn.body, { deassociated: 1 });
  assert.deepEqual(
    r.nnve.model
      .tsiViews()
      .map((x) => x.endpoints[0]!.vni)
      .sort(),
    [101, 102],
  );
  const all = await post(np, '/v1/deassociate', { port: 'swp1', station });
  assert.deepEqual(all.body, { deassociated: 2 });
  assert.deepEqual(await installed(r), { vaps: [], locals: [], remotes: [], floods: [] });
});

test('restart: TSIs, tags (held ones too) and the data plane come back unchanged; reconcile is idempotent', async (t) => {
  const dp = new MemoryDataPlane();
  const r = await rig(t, { nnve: { tagHoldS: 600 }, dataplane: () => dp });
  await r.request('associate', vm(1, 100, { ip: '192.0.2.1' }));
  await r.request('pre-associate-rr', vm(2, 101));
  await r.request('associate', vm(3, 102));
  await r.request('de-associate', vm(3, 102));
  const before = await installed(r);
  const tagsBefore = await get(apiPort(r.nnve), '/v1/tags');
  const changes = dp.changes;
  await r.restartNnve();
  assert.deepEqual(await installed(r), before);
  assert.equal(dp.changes, changes, 'the restart changed nothing in the data plane');
  const tagsAfter = await get<{ vni: number; vid: number; heldUntil: number | null }[]>(
    apiPort(r.nnve),
    '/v1/tags',
  );
  assert.deepEqual(tagsAfter, tagsBefore);
  assert.equal(tagsAfter.find((x) => x.vni === 102)!.vid, 102, 'held tag survives');
  // keep-alives from the station keep the TSIs; a new VM of VN 101 gets 101
  const n = await r.request('associate', vm(4, 101));
  assert.equal((n.body.entries as { vid: number }[])[0]!.vid, 101);
  assert.deepEqual(
    sortState(await installed(r)).vaps.map((v) => v.vlan),
    [100, 101],
  );
});

test('restart with a silent station: reloaded TSIs expire after one keep-alive period and take every effect with them', async (t) => {
  const dp = new MemoryDataPlane();
  const r = await rig(t, { nnve: { tagHoldS: 600 }, dataplane: () => dp });
  assert.equal((await r.request('associate', vm(1, VNI, { ip: '192.0.2.1' }))).status, 200);
  assert.equal((await installed(r)).locals.length, 1);
  // The hypervisor goes quiet for good (its agent stops; no De-Associate is sent), and the
  // nNVE restarts: it reloads the TSI and gives it one keep-alive period to be refreshed.
  await r.tnve.stop();
  await r.restartNnve();
  const restored = await get<{ state: string }[]>(apiPort(r.nnve), '/v1/tsis');
  assert.deepEqual(
    restored.map((x) => x.state),
    ['Activated'],
  );
  // RKA 14 (164 ms), R 3, RTE 8: expiry 1.5·(7·2.56 + 163.84) ms ≈ 273 ms from the restart
  const t0 = Date.now();
  for (;;) {
    const tsis = await get<unknown[]>(apiPort(r.nnve), '/v1/tsis');
    if (tsis.length === 0) break;
    assert.ok(Date.now() - t0 < 5000, 'the reloaded TSI expired');
    await new Promise((res) => setTimeout(res, 50));
  }
  const after = await installed(r);
  assert.deepEqual([after.vaps, after.locals], [[], []], 'no VAP, no endpoint left');
  assert.deepEqual(r.nnve.nva.ownEntries(), [], 'its NVA entry withdrawn');
  const tags = await get<{ vni: number; vid: number; heldUntil: number | null }[]>(
    apiPort(r.nnve),
    '/v1/tags',
  );
  assert.equal(tags.length, 1);
  assert.ok(tags[0]!.heldUntil !== null, 'its tag is held for the VN, not in use');
});

test('a data plane that fails is retried and reconciled; failures are counted', async (t) => {
  class Flaky extends MemoryDataPlane {
    failures = 0;
    override async apply(ops: Parameters<MemoryDataPlane['apply']>[0]): Promise<void> {
      if (this.failures > 0) {
        this.failures--;
        throw new Error('switch unavailable');
      }
      return super.apply(ops);
    }
    override async reconcile(s: DataPlaneState): Promise<void> {
      if (this.failures > 0) {
        this.failures--;
        throw new Error('switch unavailable');
      }
      return super.reconcile(s);
    }
  }
  const dp = new Flaky();
  const r = await rig(t, { dataplane: () => dp });
  dp.failures = 3;
  const a = await r.request('associate', vm(1, 100));
  assert.equal(a.status, 200, 'the protocol does not wait for the data plane');
  const dump = await installed(r);
  assert.equal(dump.locals.length, 1);
  assert.equal(dump.locals[0]!.active, true);
  const st = await get<{
    dataplane: { failures: number; reconcileFailures: number; reconciles: number };
  }>(apiPort(r.nnve), '/v1/stats');
  assert.equal(st.dataplane.failures + st.dataplane.reconcileFailures, 3);
  assert.ok(st.dataplane.reconciles >= 2);
  assert.deepEqual(await dp.dump(), sortState(r.nnve.model.desiredDataPlane()));
});

test('NVA writes that fail are retried and counted; the protocol does not wait for them', async (t) => {
  class FlakyNva extends EmbeddedNva {
    failures = 0;
    override async publish(e: Parameters<EmbeddedNva['publish']>[0]): Promise<void> {
      if (this.failures > 0) {
        this.failures--;
        throw new Error('NVA unreachable');
      }
      return super.publish(e);
    }
  }
  const nva = new FlakyNva({ path: ':memory:' });
  const r = await rig(t, { nva: () => nva });
  nva.failures = 2;
  const a = await r.request('associate', vm(1, 100));
  assert.equal(a.status, 200);
  await r.nnve.settled();
  assert.deepEqual(
    nva.ownEntries().map((e) => [e.mac, e.kind]),
    [['52:54:00:00:00:01', 'forwarding']],
  );
  const st = await get<{ nva: { failures: number; published: number } }>(
    apiPort(r.nnve),
    '/v1/stats',
  );
  assert.equal(st.nva.failures, 2);
  assert.equal(st.nva.published, 1);
});

test('NVA sync: every key is written once per change, a key changed during its write is written again, failures wait for their retry', async (t) => {
  class CountingNva extends EmbeddedNva {
    writes = new Map<string, string[]>();
    failOnce = new Set<string>();
    override async publish(e: Parameters<EmbeddedNva['publish']>[0]): Promise<void> {
      const k = `${e.vni}|${e.mac}`;
      this.writes.set(k, [...(this.writes.get(k) ?? []), e.kind]);
      if (this.failOnce.delete(k)) throw new Error('NVA unreachable');
      await new Promise((r) => setImmediate(r));
      return super.publish(e);
    }
  }
  const nva = new CountingNva({ path: ':memory:' });
  await nva.start({ id: 'nve-t', vtep: '192.0.2.1' });
  t.after(() => nva.close());
  await nva.putVn({ vni: VNI });
  const want = new Map<string, 'mapping' | 'forwarding'>();
  const sync = new NvaSync(
    nva,
    (k) => {
      const kind = want.get(k);
      if (!kind) return undefined;
      return { vni: VNI, mac: k.slice(k.indexOf('|') + 1), ips: [], kind };
    },
    { info: () => undefined, warn: () => undefined, error: () => undefined },
    { retryMs: 20 },
  );
  t.after(() => sync.close());
  const mac = (i: number): string =>
    `02:00:00:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
  // 5000 keys at once (more than the queue compacts at), one of which fails once.
  const keys = Array.from({ length: 5000 }, (_, i) => `${VNI}|${mac(i)}`);
  for (const k of keys) want.set(k, 'mapping');
  nva.failOnce.add(keys[7]!);
  sync.changed(keys);
  // Key 0 changes while its write is in flight: written again with the new value.
  while (!nva.writes.has(keys[0]!)) await new Promise((r) => setImmediate(r));
  want.set(keys[0]!, 'forwarding');
  sync.changed([keys[0]!]);
  await sync.idle();
  assert.equal(sync.pending, 0);
  assert.deepEqual(nva.writes.get(keys[0]!), ['mapping', 'forwarding']);
  assert.deepEqual(nva.writes.get(keys[7]!), ['mapping', 'mapping'], 'failed once, retried');
  assert.ok(keys.slice(1).every((k, i) => nva.writes.get(k)!.length === (i === 6 ? 2 : 1)));
  assert.equal(nva.ownEntries().length, 5000);
  assert.equal(nva.ownEntries().find((e) => e.mac === mac(0))!.kind, 'forwarding');
  assert.equal(sync.stats.failures, 1);
  assert.equal(sync.stats.published, 5001);
});

test('restart on the embedded NVA: only entries the NVA does not hold as the TSIs say are written again', async (t) => {
  class CountingNva extends EmbeddedNva {
    published: string[] = [];
    withdrawn: string[] = [];
    override async publish(e: Parameters<EmbeddedNva['publish']>[0]): Promise<void> {
      this.published.push(e.mac);
      return super.publish(e);
    }
    override async withdraw(vni: number, mac: string): Promise<void> {
      this.withdrawn.push(mac);
      return super.withdraw(vni, mac);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'snp-nva-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'nva.sqlite');
  let starts = 0;
  let nva: CountingNva | undefined;
  let before: NvaEntry[] = [];
  const r = await rig(t, {
    nva: () => {
      if (++starts === 2) {
        // While the nNVE is down: one entry lost, one changed, one left over from an old TSI.
        const db = new Database(path);
        const [lost, changed] = before;
        db.prepare('DELETE FROM entry WHERE mac = ?').run(lost!.mac);
        db.prepare("UPDATE entry SET kind = 'mapping' WHERE mac = ?").run(changed!.mac);
        db.prepare(
          "INSERT INTO entry (vni, nve, mac, ips, vtep, kind) VALUES (?, ?, '02:99:00:00:00:01', '[]', ?, 'mapping')",
        ).run(changed!.vni, changed!.nve, changed!.vtep);
        db.close();
      }
      return (nva = new CountingNva({ path }));
    },
  });
  for (const i of [1, 2, 3, 4]) await r.request('associate', vm(i, 100));
  await r.nnve.settled();
  before = [...nva!.ownEntries()];
  assert.equal(before.length, 4);
  assert.ok(before.every((e) => e.kind === 'forwarding'));
  await r.restartNnve();
  await r.nnve.settled();
  assert.deepEqual(nva!.ownEntries(), before);
  assert.deepEqual(nva!.published.sort(), [before[0]!.mac, before[1]!.mac].sort());
  assert.deepEqual(nva!.withdrawn, ['02:99:00:00:00:01']);
});
