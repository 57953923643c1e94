import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { World } from '../../src/sim/world.js';

function scenario(seed: number): { hash: string; lines: number } {
  const w = new World({
    seed,
    stations: 3,
    trace: true,
    impairments: { loss: 0.15, duplicate: 0.05, reorder: 0.2, delayUs: 100, jitterUs: 500 },
  });
  w.start();
  w.run(2_000_000);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 10; j++) w.request(i, 3, w.spec(i, j));
  w.run(10_000_000);
  w.request(0, 4, w.spec(0, 1));
  w.request(1, 3, w.spec(0, 2), { m: true });
  w.run(10_000_000);
  const h = createHash('sha256');
  for (const l of w.fabric.trace()) h.update(`${l.t} ${l.node} ${l.kind} ${l.text}\n`);
  return { hash: h.digest('hex'), lines: w.fabric.trace().length };
}

test('the same seed gives a byte-identical trace; another seed a different one', () => {
  const a = scenario(7);
  const b = scenario(7);
  const c = scenario(8);
  assert.ok(a.lines > 500, `trace has ${a.lines} lines`);
  assert.equal(a.hash, b.hash);
  assert.equal(a.lines, b.lines);
  assert.notEqual(a.hash, c.hash);
});
