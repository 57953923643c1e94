// The embedded (SQLite) NVA: VN CRUD and events, publish/withdraw of mapping and forwarding
// entries, persistence across close/reopen, and two processes' worth of instances sharing a file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { EmbeddedNva } from '../../src/nva/embedded.js';
import { NvaError } from '../../src/nva/common.js';
import { createNva } from '../../src/nva/index.js';
import type { NvaEntry, NvaEvent } from '../../src/nva/nva.js';

const A = { id: 'nve-a', vtep: '198.18.0.1' };
const B = { id: 'nve-b', vtep: '198.18.0.2' };
const MAC1 = '02:00:00:00:0a:01';
const MAC2 = '02:00:00:00:0a:02';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), `splitnve-nva-${process.pid}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function record(nva: { onEvent: (h: (e: NvaEvent) => void) => () => void }): NvaEvent[] {
  const events: NvaEvent[] = [];
  nva.onEvent((e) => events.push(e));
  return events;
}

async function until(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('single node: this NVE is the only live one; nve-up at start', async (t) => {
  const nva = createNva({ driver: 'embedded', path: ':memory:' });
  t.after(() => nva.close());
  const ev = record(nva);
  await nva.start(A);
  assert.deepEqual(nva.nves(), [A]);
  assert.deepEqual(ev, [{ type: 'nve-up', nve: A }]);
  assert.equal(nva.kind, 'embedded');
});

test('VN create, replace, create-if-absent and delete fire events', async (t) => {
  const nva = new EmbeddedNva({ path: ':memory:' });
  t.after(() => nva.close());
  await nva.start(A);
  const ev = record(nva);

  assert.equal(await nva.putVn({ vni: 5000, name: 'blue' }), true);
  assert.deepEqual(nva.getVn(5000), { vni: 5000, name: 'blue' });
  assert.deepEqual(ev.splice(0), [{ type: 'vn-set', vn: { vni: 5000, name: 'blue' } }]);

  // Same content again: nothing changed, no event.
  await nva.putVn({ vni: 5000, name: 'blue' });
  assert.deepEqual(ev.splice(0), []);

  // Create-if-absent must not overwrite an operator's VN.
  assert.equal(await nva.putVn({ vni: 5000 }, { ifAbsent: true }), false);
  assert.deepEqual(nva.getVn(5000), { vni: 5000, name: 'blue' });
  assert.deepEqual(ev.splice(0), []);
  assert.equal(await nva.putVn({ vni: 5001 }, { ifAbsent: true }), true);
  assert.deepEqual(ev.splice(0), [{ type: 'vn-set', vn: { vni: 5001 } }]);

  const full = {
    vni: 5000,
    name: 'blue',
    allowedStations: ['02:AA:BB:CC:DD:EE'],
    maxTsis: 4,
  };
  await nva.putVn(full);
  const stored = { ...full, allowedStations: ['02:aa:bb:cc:dd:ee'] };
  assert.deepEqual(nva.getVn(5000), stored);
  assert.deepEqual(ev.splice(0), [{ type: 'vn-set', vn: stored }]);
  assert.deepEqual(
    nva.listVns().map((v) => v.vni),
    [5000, 5001],
  );

  await nva.deleteVn(5000);
  assert.equal(nva.getVn(5000), undefined);
  assert.deepEqual(ev.splice(0), [{ type: 'vn-deleted', vni: 5000 }]);
  await nva.deleteVn(5000); // idempotent
  assert.deepEqual(ev.splice(0), []);
});

test('publish mapping, switch to forwarding, withdraw', async (t) => {
  const nva = new EmbeddedNva({ path: ':memory:' });
  t.after(() => nva.close());
  await nva.start(A);
  await nva.putVn({ vni: 7 });
  await nva.watchVn(7);
  const ev = record(nva);

  await nva.publish({ vni: 7, mac: MAC1.toUpperCase(), ips: ['10.0.0.1'], kind: 'mapping' });
  const mapping: NvaEntry = {
    vni: 7,
    mac: MAC1,
    ips: ['10.0.0.1'],
    nve: A.id,
    vtep: A.vtep,
    kind: 'mapping',
  };
  assert.deepEqual(ev.splice(0), [{ type: 'entry-set', entry: mapping }]);
  assert.deepEqual(nva.ownEntries(), [mapping]);
  assert.deepEqual(nva.remoteEntries(7), [], 'own entries are not remote');

  await nva.publish({ vni: 7, mac: MAC1, ips: ['10.0.0.1', 'fd00::1'], kind: 'forwarding' });
  const fwd: NvaEntry = { ...mapping, ips: ['10.0.0.1', 'fd00::1'], kind: 'forwarding' };
  assert.deepEqual(ev.splice(0), [{ type: 'entry-set', entry: fwd }]);
  assert.deepEqual(nva.ownEntries(), [fwd]);

  await nva.publish({ vni: 7, mac: MAC2, ips: [], kind: 'mapping' });
  assert.equal(nva.ownEntries().length, 2);
  await nva.withdraw(7, MAC1);
  assert.deepEqual(ev.splice(0), [
    { type: 'entry-set', entry: { ...mapping, mac: MAC2, ips: [] } },
    { type: 'entry-deleted', vni: 7, mac: MAC1, nve: A.id },
  ]);
  assert.deepEqual(
    nva.ownEntries().map((e) => e.mac),
    [MAC2],
  );
  await nva.withdraw(7, MAC1); // idempotent
  assert.deepEqual(ev.splice(0), []);

  // Deleting the VN takes its entries with it.
  await nva.deleteVn(7);
  assert.deepEqual(ev.splice(0), [
    { type: 'vn-deleted', vni: 7 },
    { type: 'entry-deleted', vni: 7, mac: MAC2, nve: A.id },
  ]);
  assert.deepEqual(nva.ownEntries(), []);
});

test('refusals name what is wrong', async (t) => {
  const nva = new EmbeddedNva({ path: ':memory:' });
  t.after(() => nva.close());
  await assert.rejects(nva.putVn({ vni: 1 }), /not started/);
  await nva.start(A);
  await assert.rejects(
    nva.publish({ vni: 99, mac: MAC1, ips: [], kind: 'mapping' }),
    (e: unknown) => e instanceof NvaError && /VN 99 does not exist/.test(e.message),
  );
  await nva.putVn({ vni: 99 });
  await assert.rejects(nva.publish({ vni: 99, mac: 'zz', ips: [], kind: 'mapping' }), /MAC "zz"/);
  await assert.rejects(
    nva.publish({ vni: 99, mac: MAC1, ips: ['10.0.0.300'], kind: 'mapping' }),
    /"10.0.0.300" is not an IP address/,
  );
  await assert.rejects(
    nva.publish({ vni: 99, mac: MAC1, ips: [], kind: 'bogus' as 'mapping' }),
    /kind "bogus"/,
  );
  await assert.rejects(
    nva.putVn({ vni: 1 << 24 }),
    /VNI 16777216 is not an integer in 0..16777215/,
  );
  assert.throws(() => new EmbeddedNva({ path: '' }), /path/);
  await assert.rejects(
    new EmbeddedNva({ path: ':memory:' }).start({ id: 'a/b', vtep: '1.2.3.4' }),
    /NVE id "a\/b"/,
  );
});

test('VNs and own entries survive close and reopen of the file', async (t) => {
  const file = join(tempDir(t), 'nva.db');
  const first = new EmbeddedNva({ path: file });
  await first.start(A);
  await first.putVn({ vni: 300, name: 'red', maxTsis: 2 });
  await first.putVn({ vni: 301 });
  await first.publish({ vni: 300, mac: MAC1, ips: ['192.0.2.10'], kind: 'forwarding' });
  await first.publish({ vni: 301, mac: MAC2, ips: [], kind: 'mapping' });
  await first.withdraw(301, MAC2);
  await first.close();
  await assert.rejects(first.putVn({ vni: 1 }), /closed/);

  // Restart with a new underlay address: our entries follow it.
  const moved = { id: A.id, vtep: '198.18.9.9' };
  const second = new EmbeddedNva({ path: file });
  t.after(() => second.close());
  const ev = record(second);
  await second.start(moved);
  assert.deepEqual(second.listVns(), [{ vni: 300, name: 'red', maxTsis: 2 }, { vni: 301 }]);
  const entry: NvaEntry = {
    vni: 300,
    mac: MAC1,
    ips: ['192.0.2.10'],
    nve: A.id,
    vtep: moved.vtep,
    kind: 'forwarding',
  };
  assert.deepEqual(second.ownEntries(), [entry]);
  ev.splice(0);
  await second.watchVn(300);
  assert.deepEqual(ev, [{ type: 'entry-set', entry }], 'watchVn reports existing entries');

  // Another NVE id on the same file does not own them.
  await second.close();
  const other = new EmbeddedNva({ path: file });
  t.after(() => other.close());
  await other.start(B);
  assert.deepEqual(other.ownEntries(), []);
  assert.equal(other.listVns().length, 2);
});

test('a newer schema version in the file is refused', async (t) => {
  const file = join(tempDir(t), 'future.db');
  const db = new Database(file);
  db.pragma('user_version = 99');
  db.close();
  const nva = new EmbeddedNva({ path: file });
  await assert.rejects(nva.start(A), /schema version 99 is newer/);
});

test('shared file: two instances see each other, a dead NVE disappears', async (t) => {
  const file = join(tempDir(t), 'shared.db');
  const opts = { path: file, shared: true, nveTtlMs: 600, pollMs: 20 };
  const a = new EmbeddedNva(opts);
  const b = new EmbeddedNva(opts);
  t.after(async () => {
    await a.close();
    await b.close();
  });
  await a.start(A);
  await b.start(B);
  const evB = record(b);
  await a.putVn({ vni: 42 });
  await a.watchVn(42);
  await b.watchVn(42);
  await until('B sees VN 42', () => b.getVn(42) !== undefined);
  await until('A sees B', () => a.nves().length === 2);

  await a.publish({ vni: 42, mac: MAC1, ips: [], kind: 'mapping' });
  await until('B sees the mapping', () => b.remoteEntries(42).length === 1);
  assert.equal(b.remoteEntries(42)[0]!.kind, 'mapping');
  await a.publish({ vni: 42, mac: MAC1, ips: [], kind: 'forwarding' });
  await until('B sees forwarding', () => b.remoteEntries(42)[0]?.kind === 'forwarding');
  await b.publish({ vni: 42, mac: MAC2, ips: [], kind: 'forwarding' });
  await until('A sees B entry', () => a.remoteEntries(42).some((e) => e.nve === B.id));

  // Heartbeats keep A alive well past its TTL.
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(b.remoteEntries(42).length, 1);

  // A process that died without closing: its row stops being refreshed and expires.
  const db = new Database(file);
  t.after(() => db.close());
  db.prepare('INSERT INTO nve (id, vtep, expires_at) VALUES (?, ?, ?)').run(
    'ghost',
    '198.18.0.66',
    Date.now() + 400,
  );
  db.prepare(
    "INSERT INTO entry (vni, nve, mac, ips, vtep, kind) VALUES (42, 'ghost', ?, '[]', '198.18.0.66', 'forwarding')",
  ).run('02:00:00:00:66:66');
  await until('B sees ghost', () => b.remoteEntries(42).some((e) => e.nve === 'ghost'));
  await until('ghost expires', () => !b.nves().some((n) => n.id === 'ghost'), 3000);
  assert.ok(!b.remoteEntries(42).some((e) => e.nve === 'ghost'));
  assert.ok(evB.some((e) => e.type === 'nve-down' && e.id === 'ghost'));
  assert.ok(
    evB.some(
      (e) => e.type === 'entry-deleted' && e.nve === 'ghost' && e.mac === '02:00:00:00:66:66',
    ),
  );

  // A closes: it is down for B at once; its entries stay in the file for its restart.
  await a.close();
  await until('B sees A down', () => !b.nves().some((n) => n.id === A.id), 1000);
  assert.deepEqual(b.remoteEntries(42), []);
  // B deletes the VN; that reaches nobody else here but is an event for B.
  await b.deleteVn(42);
  assert.ok(evB.some((e) => e.type === 'vn-deleted' && e.vni === 42));
});

test('property: own entries and the event stream follow any publish/withdraw sequence', async () => {
  const op = fc.record({
    mac: fc.constantFrom(MAC1, MAC2, '02:00:00:00:0a:03'),
    action: fc.constantFrom('mapping', 'forwarding', 'withdraw'),
    ip: fc.constantFrom([], ['10.1.1.1'], ['10.1.1.2', 'fd00::2']),
  });
  await fc.assert(
    fc.asyncProperty(fc.array(op, { maxLength: 25 }), async (ops) => {
      const nva = new EmbeddedNva({ path: ':memory:' });
      try {
        await nva.start(A);
        await nva.putVn({ vni: 1 });
        await nva.watchVn(1);
        const fromEvents = new Map<string, NvaEntry>();
        nva.onEvent((e) => {
          if (e.type === 'entry-set') fromEvents.set(e.entry.mac, e.entry);
          if (e.type === 'entry-deleted') fromEvents.delete(e.mac);
        });
        const model = new Map<string, NvaEntry>();
        for (const o of ops) {
          if (o.action === 'withdraw') {
            await nva.withdraw(1, o.mac);
            model.delete(o.mac);
          } else {
            await nva.publish({ vni: 1, mac: o.mac, ips: o.ip, kind: o.action });
            model.set(o.mac, {
              vni: 1,
              mac: o.mac,
              ips: o.ip,
              nve: A.id,
              vtep: A.vtep,
              kind: o.action,
            });
          }
        }
        const sorted = [...model.values()].sort((x, y) => x.mac.localeCompare(y.mac));
        assert.deepEqual(nva.ownEntries(), sorted);
        assert.deepEqual(
          [...fromEvents.values()].sort((x, y) => x.mac.localeCompare(y.mac)),
          sorted,
        );
      } finally {
        await nva.close();
      }
    }),
    { numRuns: 60 },
  );
});

test('writes never checkpoint the WAL themselves: a worker does, and close leaves no WAL', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'nva.sqlite');
  const nva = new EmbeddedNva({ path, checkpointIntervalMs: 3_600_000 });
  t.after(() => nva.close());
  await nva.start(A);
  await nva.putVn({ vni: 7000 });
  // 3000 publishes append ~6000 WAL frames: with SQLite's default (a checkpoint inside the commit
  // that passes 1000 frames, after which the WAL starts over) the file would stay near 1000.
  for (let i = 0; i < 3000; i++) {
    const mac = `02:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}:01`;
    await nva.publish({ vni: 7000, mac, ips: [], kind: 'mapping' });
  }
  const wal = `${path}-wal`;
  const frames = (statSync(wal).size - 32) / (4096 + 24);
  assert.ok(frames > 2500, `the WAL holds every write until a checkpoint (${frames} frames)`);
  await nva.close();
  assert.equal(existsSync(wal) ? statSync(wal).size : 0, 0, 'close checkpoints and truncates');
  const again = new EmbeddedNva({ path });
  t.after(() => again.close());
  await again.start(A);
  assert.equal(again.ownEntries().length, 3000);
});

test('entry writes of one turn are committed together; a refused one fails alone; order is kept', async (t) => {
  const nva = new EmbeddedNva({ path: join(tempDir(t), 'nva.sqlite') });
  t.after(() => nva.close());
  await nva.start(A);
  await nva.putVn({ vni: 7100 });
  await nva.putVn({ vni: 7101 });
  await nva.watchVn(7100);
  const ev = record(nva);
  const mac = (i: number): string => `02:00:00:00:71:${i.toString(16).padStart(2, '0')}`;
  const calls = [
    ...Array.from({ length: 50 }, (_, i) =>
      nva.publish({ vni: 7100, mac: mac(i), ips: [], kind: 'mapping' }),
    ),
    nva.publish({ vni: 99, mac: mac(99), ips: [], kind: 'mapping' }), // no such VN
    nva.withdraw(7100, mac(0)), // after its publish, in the same commit
  ];
  const settled = await Promise.allSettled(calls);
  assert.equal(settled.filter((s) => s.status === 'fulfilled').length, 51);
  const refused = settled[50] as PromiseRejectedResult;
  assert.ok(
    refused.reason instanceof NvaError && /VN 99 does not exist/.test(refused.reason.message),
  );
  assert.deepEqual(
    nva.ownEntries().map((e) => e.mac),
    Array.from({ length: 49 }, (_, i) => mac(i + 1)),
  );
  // Events of the watched VN, in call order: 50 entry-set, then the withdrawn one deleted.
  assert.equal(ev.length, 51);
  assert.deepEqual(ev.at(-1), { type: 'entry-deleted', vni: 7100, mac: mac(0), nve: A.id });
  // A write queued before a VN call takes effect before it: the VN's deletion removes it.
  const p = nva.publish({ vni: 7101, mac: mac(1), ips: [], kind: 'forwarding' });
  await nva.deleteVn(7101);
  await p;
  assert.equal(nva.ownEntries().filter((e) => e.vni === 7101).length, 0);
});
