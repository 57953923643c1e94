import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { TimerQueue } from '../../src/core/timer-queue.js';

/** The obvious model: a map of key -> (deadline, order of the last set that moved it). */
class Model {
  private m = new Map<string, { at: number; gen: number }>();
  private gen = 0;
  set(key: string, at: number | undefined): void {
    if (at === undefined) {
      this.m.delete(key);
      return;
    }
    const cur = this.m.get(key);
    if (cur && cur.at === at) return;
    this.m.set(key, { at, gen: ++this.gen });
  }
  cancel(key: string): void {
    this.m.delete(key);
  }
  get(key: string): number | undefined {
    return this.m.get(key)?.at;
  }
  sorted(): [string, { at: number; gen: number }][] {
    return [...this.m.entries()].sort((a, b) => a[1].at - b[1].at || a[1].gen - b[1].gen);
  }
  next(): number | undefined {
    return this.sorted()[0]?.[1].at;
  }
  popDue(now: number): string[] {
    const out = this.sorted()
      .filter(([, v]) => v.at <= now)
      .map(([k]) => k);
    for (const k of out) this.m.delete(k);
    return out;
  }
  get size(): number {
    return this.m.size;
  }
}

const op = fc.oneof(
  fc.record({
    t: fc.constant('set' as const),
    k: fc.integer({ min: 0, max: 12 }),
    at: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
  }),
  fc.record({ t: fc.constant('cancel' as const), k: fc.integer({ min: 0, max: 12 }) }),
  fc.record({ t: fc.constant('pop' as const), now: fc.integer({ min: 0, max: 40 }) }),
);

test('TimerQueue behaves like a sorted map of deadlines (ties: in the order of the last set)', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const q = new TimerQueue();
      const m = new Model();
      for (const o of ops) {
        if (o.t === 'set') {
          q.set(`k${o.k}`, o.at);
          m.set(`k${o.k}`, o.at);
        } else if (o.t === 'cancel') {
          q.cancel(`k${o.k}`);
          m.cancel(`k${o.k}`);
        } else {
          assert.deepEqual(q.popDue(o.now), m.popDue(o.now));
        }
        assert.equal(q.size, m.size);
        assert.equal(q.next(), m.next());
        for (let k = 0; k <= 12; k++) assert.equal(q.get(`k${k}`), m.get(`k${k}`));
      }
      assert.deepEqual(q.popDue(Infinity), m.popDue(Infinity));
    }),
    { numRuns: 500 },
  );
});
