import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { TagAllocator, type TagPlan } from '../../src/nnve/tags.js';
import { parseVlanRanges } from '../../src/policy/vlan-pool.js';

function alloc(pool = '100-102', holdMs = 1000): TagAllocator {
  const p = parseVlanRanges(pool);
  return new TagAllocator({ pool: () => p, holdMs });
}

function ok(p: TagPlan): number {
  assert.ok(p.ok, `plan refused: ${p.ok ? '' : p.message}`);
  return p.vid;
}

test('null VID: lowest free tag; the same VN gets the same tag; segments are independent', () => {
  const t = alloc();
  const v1 = ok(t.plan('s1', 5000, 0));
  assert.equal(v1, 100);
  t.acquire('s1', 5000, v1, 0);
  assert.equal(ok(t.plan('s1', 5000, 0)), 100, 'same VN, same tag');
  assert.equal(ok(t.plan('s1', 5001, 0)), 101, 'other VN, next tag');
  assert.equal(ok(t.plan('s2', 5001, 0)), 100, 'another segment has its own pool use');
  // within one request: two VNs get two tags, one VN twice gets one tag
  const pending = new Map([[5001, 101]]);
  assert.equal(ok(t.plan('s1', 5002, 0, pending)), 102);
  assert.equal(ok(t.plan('s1', 5001, 0, pending)), 101);
});

test('explicit VIDs are checked against the pool, other VNs and the VN current tag', () => {
  const t = alloc();
  t.acquire('s', 5000, 100, 0);
  const out = t.plan('s', 5001, 4000);
  assert.equal(out.ok, false);
  assert.match(!out.ok ? out.message : '', /outside the VLAN pool/);
  const other = t.plan('s', 5001, 100);
  assert.equal(other.ok, false);
  assert.equal(!other.ok && other.reason, 5);
  assert.match(!other.ok ? other.message : '', /belongs to VN 5000/);
  const mismatch = t.plan('s', 5000, 101);
  assert.equal(mismatch.ok, false);
  assert.match(!mismatch.ok ? mismatch.message : '', /uses VID 100/);
  assert.equal(ok(t.plan('s', 5000, 100)), 100);
  assert.equal(ok(t.plan('s', 5001, 102)), 102);
  const twice = t.plan('s', 5002, 102, new Map([[5001, 102]]));
  assert.equal(twice.ok, false, 'one VID for two VNs of one request');
});

test('release holds the tag for its VN, then releases it; a held tag is reclaimed only when the pool is full', () => {
  const t = alloc('100-101', 1000);
  t.acquire('s', 5000, 100, 0);
  t.acquire('s', 5000, 100, 0);
  t.release('s', 5000, 10);
  assert.equal(t.list()[0]!.refs, 1);
  assert.equal(t.list()[0]!.heldUntil, null);
  t.release('s', 5000, 20);
  assert.deepEqual(t.list(), [{ segment: 's', vni: 5000, vid: 100, heldUntil: 1020, refs: 0 }]);
  assert.equal(t.nextExpiry(), 1020);
  assert.equal(ok(t.plan('s', 5000, 0)), 100, 'the VN comes back to its held tag');
  assert.equal(ok(t.plan('s', 5001, 0)), 101, 'another VN takes a free tag, not the held one');
  t.acquire('s', 5001, 101, 30);
  // pool full: the held tag is reclaimed
  assert.equal(ok(t.plan('s', 5002, 0)), 100);
  t.acquire('s', 5002, 100, 40);
  const ev = t.takeEvents().map((e) => e.type);
  assert.ok(ev.includes('tag-reclaimed'), ev.join());
  assert.equal(t.vidOf('s', 5000), undefined);
  assert.equal(t.stats.reclaimed, 1);
  // exhausted now
  const full = t.plan('s', 5003, 0);
  assert.equal(full.ok, false);
  assert.equal(!full.ok && full.reason, 2);
  assert.equal(t.stats.exhausted.s, 1);
  assert.ok(t.takeEvents().some((e) => e.type === 'pool-exhausted'));
  // hold ends
  t.release('s', 5001, 50);
  t.expire(1049);
  assert.equal(t.vidOf('s', 5001), 101);
  t.expire(1050);
  assert.equal(t.vidOf('s', 5001), undefined);
  assert.equal(t.stats.released, 1);
});

test('hold 0 releases at once; dirty records say what to persist; restore keeps every VID', () => {
  const t = alloc('100-110', 0);
  t.acquire('s', 1, 105, 0);
  t.acquire('s', 2, 100, 0);
  const d1 = t.takeDirty();
  assert.deepEqual(
    [...d1.values()],
    [
      { segment: 's', vni: 1, vid: 105, heldUntil: null },
      { segment: 's', vni: 2, vid: 100, heldUntil: null },
    ],
  );
  t.release('s', 2, 5);
  assert.deepEqual([...t.takeDirty()], [['s|2', null]]);
  const u = alloc('100-110', 500);
  const conflicts = u.restore(
    [
      { segment: 's', vni: 1, vid: 105, heldUntil: null },
      { segment: 's', vni: 3, vid: 107, heldUntil: 900 },
      { segment: 's', vni: 4, vid: 105, heldUntil: null },
    ],
    100,
  );
  assert.deepEqual(conflicts, [{ segment: 's', vni: 4, vid: 105, heldUntil: null }]);
  assert.equal(u.vidOf('s', 1), 105);
  assert.equal(
    u.list().find((x) => x.vni === 1)!.heldUntil,
    600,
    'in use before: held until re-acquired',
  );
  u.acquire('s', 1, 105, 100);
  assert.equal(u.list().find((x) => x.vni === 1)!.heldUntil, null);
  assert.equal(ok(u.plan('s', 3, 0)), 107, 'a tag held across the restart comes back');
  assert.equal(ok(u.plan('s', 9, 0)), 100);
});

test('property: tags stay unique per segment and never change while referenced or held', () => {
  const op = fc.oneof(
    fc.record({
      k: fc.constant('acq' as const),
      seg: fc.constantFrom('a', 'b'),
      vni: fc.integer({ min: 1, max: 6 }),
      vid: fc.constantFrom(0, 0, 0, 10, 11, 12, 99),
    }),
    fc.record({
      k: fc.constant('rel' as const),
      seg: fc.constantFrom('a', 'b'),
      vni: fc.integer({ min: 1, max: 6 }),
    }),
    fc.record({ k: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 400 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const t = alloc('10-13', 300);
      let now = 0;
      const refs = new Map<string, number>();
      for (const o of ops) {
        if (o.k === 'tick') {
          now += o.ms;
          t.expire(now);
          continue;
        }
        const key = `${o.seg}|${o.vni}`;
        const before = t.vidOf(o.seg, o.vni);
        if (o.k === 'acq') {
          const p = t.plan(o.seg, o.vni, o.vid);
          if (!p.ok) {
            assert.ok(p.reason === 2 || p.reason === 5);
            continue;
          }
          if (before !== undefined) assert.equal(p.vid, before, 'a VN keeps its tag');
          t.acquire(o.seg, o.vni, p.vid, now);
          refs.set(key, (refs.get(key) ?? 0) + 1);
        } else if ((refs.get(key) ?? 0) > 0) {
          t.release(o.seg, o.vni, now);
          refs.set(key, refs.get(key)! - 1);
        }
        for (const seg of ['a', 'b']) {
          const list = t.list().filter((x) => x.segment === seg);
          assert.equal(new Set(list.map((x) => x.vid)).size, list.length, 'unique VIDs');
          for (const x of list) {
            assert.equal(x.refs, refs.get(`${seg}|${x.vni}`) ?? 0);
            assert.ok(x.vid >= 10 && x.vid <= 13);
          }
        }
      }
    }),
    { numRuns: 300 },
  );
});
