/**
 * The fuzz target in CI: 200k mutated frames (seeded from the lldpad vectors and frames of our
 * own) through the decoders and the bridge and station machines, which must never throw, send
 * a frame that does not decode, or grow beyond their bounds. The inputs must also get deep:
 * associations, refusals, authentication successes and failures all happen during the run.
 * Longer runs: `node dist/bench/fuzz.js --seconds 600`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadCaptureCorpus, ownCorpus, runFuzz } from '../../src/fuzz/mutate.js';
import { VECTORS_DIR } from '../harness/wire-vectors.js';

const INPUTS = 200_000;

test(`fuzz: ${INPUTS} mutated frames into decode + bridge + station machines, no failure`, () => {
  const corpus = [...loadCaptureCorpus(VECTORS_DIR), ...ownCorpus()];
  assert.ok(corpus.length >= 30, `corpus of ${corpus.length} frames`);
  // Two seeds, half each; a fixed seed per CI run keeps failures reproducible.
  const results = [20_261, 20_262].map((seed) =>
    runFuzz({ seed, corpus, iterations: INPUTS / 2, deadlineMs: 50_000 }),
  );
  const total = results.reduce((n, r) => n + r.iterations, 0);
  for (const r of results) {
    process.stdout.write(
      `# fuzz seed ${r.seed}: ${r.iterations} inputs in ${r.elapsedMs} ms (${r.perSecond}/s)\n`,
    );
  }
  const crashes = results.flatMap((r) => r.crashes);
  assert.deepEqual(
    crashes.map(
      (c) =>
        `seed ${c.seed} #${c.iteration} ${c.where}: ${c.message.slice(0, 400)} input ${c.input}`,
    ),
    [],
  );
  assert.equal(total, INPUTS, 'all inputs ran within the time limit');
  const ev: Record<string, number> = {};
  for (const r of results)
    for (const [k, v] of Object.entries(r.stats.events)) ev[k] = (ev[k] ?? 0) + v;
  for (const k of [
    'bridge:tsi',
    'bridge:refused',
    'bridge:dropped',
    'bridge:auth',
    'bridge:auth-failed',
    'bridge:negotiated',
    'station:vsi-state',
    'station:request-result',
    'station:auth',
    'station:auth-failed',
  ]) {
    assert.ok((ev[k] ?? 0) > 0, `the run reached ${k}: ${JSON.stringify(ev)}`);
  }
});
