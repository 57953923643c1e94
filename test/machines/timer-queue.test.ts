import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { TimerQueue } from '../../src/core/timer-queue.js';

test('TimerQueue matches a plain model under any set/cancel/popDue sequence', () => {
  const op = fc.oneof(
    fc.record({
      k: fc.constant('set' as const),
      key: fc.integer({ min: 0, max: 20 }),
      at: fc.integer({ min: 0, max: 1000 }),
    }),
    fc.record({ k: fc.constant('cancel' as const), key: fc.integer({ min: 0, max: 20 }) }),
    fc.record({ k: fc.constant('pop' as const), now: fc.integer({ min: 0, max: 1000 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const q = new TimerQueue();
      const model = new Map<string, { at: number; seq: number }>();
      let seq = 0;
      for (const o of ops) {
        if (o.k === 'set') {
          const key = `k${o.key}`;
          const cur = model.get(key);
          if (!cur || cur.at !== o.at) model.set(key, { at: o.at, seq: ++seq });
          q.set(key, o.at);
        } else if (o.k === 'cancel') {
          model.delete(`k${o.key}`);
          q.cancel(`k${o.key}`);
        } else {
          const due = [...model.entries()]
            .filter(([, v]) => v.at <= o.now)
            .sort((a, b) => a[1].at - b[1].at || a[1].seq - b[1].seq)
            .map(([k]) => k);
          for (const k of due) model.delete(k);
          assert.deepEqual(q.popDue(o.now), due);
        }
        const next = [...model.values()].reduce<number | undefined>(
          (m, v) => (m === undefined || v.at < m ? v.at : m),
          undefined,
        );
        assert.equal(q.next(), next);
        assert.equal(q.size, model.size);
      }
    }),
    { numRuns: 300 },
  );
});
