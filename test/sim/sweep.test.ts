import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomInt, seededRandom } from '../../src/core/random.js';
import { World } from '../../src/sim/world.js';

const SEEDS = Number(process.env.SPLITNVE_SWEEP_SEEDS ?? 1000);

/**
 * One small random scenario: 3 hypervisors, 4 VMs, a random sequence of lifecycle operations
 * (start, suspend, resume, stop, live migration) and restarts of either side, on a lossy,
 * duplicating, reordering network. Returns what went wrong, if anything.
 */
function scenario(seed: number): string[] {
  const r = seededRandom(seed ^ 0x5eed);
  const profile = r() < 0.7 ? 'splitnve' : '802.1Qbg';
  const w = new World({
    seed,
    stations: 3,
    profile,
    shared: r() < 0.3,
    impairments: {
      loss: r() * 0.3,
      duplicate: r() * 0.1,
      reorder: r() * 0.3,
      delayUs: 50 + randomInt(r, 0, 500),
      jitterUs: randomInt(r, 0, 2000),
      reorderUs: 8000,
    },
    maxAttempts: 6,
  });
  w.start();
  w.run(2_000_000);
  // VM v lives on host[v]; state: 0 off, 1 running (Activated), 2 suspended (Associated).
  const host = [0, 1, 2, 0];
  const state = [0, 0, 0, 0];
  let gen = 1;
  for (let op = 0; op < 12; op++) {
    const v = randomInt(r, 0, 3);
    const h = host[v]!;
    const spec = w.spec(v, 0);
    const k = r();
    if (k < 0.08) {
      w.restartBridge();
    } else if (k < 0.14) {
      w.restartStation(randomInt(r, 0, 2), gen++);
    } else if (state[v] === 0) {
      w.request(h, 3, spec);
      state[v] = 1;
    } else if (state[v] === 1 && k < 0.35) {
      if (profile === 'splitnve') {
        w.request(h, 2, spec, { s: true });
        state[v] = 2;
      }
    } else if (state[v] === 2) {
      w.request(h, 3, spec);
      state[v] = 1;
    } else if (state[v] === 1 && k < 0.7) {
      // live migration to another host: prepare, run, leave
      const d = (h + 1 + randomInt(r, 0, 1)) % 3;
      w.request(d, 2, spec, { m: true });
      w.run(randomInt(r, 1_000, 400_000));
      w.request(d, 3, spec, { m: true });
      w.run(randomInt(r, 1_000, 400_000));
      w.request(h, 4, spec, { s: true });
      host[v] = d;
    } else {
      w.request(h, 4, spec);
      state[v] = 0;
    }
    w.run(randomInt(r, 0, 1_500_000));
  }
  // Quiesce: several keep-alive periods (RKA 18 = 2.6 s; expiry ~4 s).
  w.run(40_000_000);
  const problems = [...w.violations, ...w.disagreements()];
  // Every VM ends in the state its orchestrator wanted, on its host only.
  for (let v = 0; v < 4; v++) {
    const key = w.keyOf(w.spec(v, 0));
    const want = state[v] === 0 ? undefined : state[v] === 1 ? 'associated' : 'pre-associated-rr';
    for (let h = 0; h < 3; h++) {
      const got = w.stationView(h).get(key);
      const expect = h === host[v] ? want : undefined;
      if (got !== expect)
        problems.push(`VM ${v} on hv${h}: ${got ?? 'init'}, expected ${expect ?? 'init'}`);
    }
  }
  return problems;
}

test(`${SEEDS} seeds of a random lifecycle with restarts on a lossy network all converge`, () => {
  const bad: string[] = [];
  for (let seed = 1; seed <= SEEDS; seed++) {
    const p = scenario(seed);
    if (p.length > 0) bad.push(`seed ${seed}: ${p.slice(0, 3).join('; ')}`);
  }
  assert.deepEqual(bad.slice(0, 10), [], `${bad.length} of ${SEEDS} seeds failed`);
});
