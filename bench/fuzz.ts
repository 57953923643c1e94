/**
 * Long fuzz run: mutated frames into the decoders and the bridge and station machines (the
 * target of test/fuzz, run for longer, over many seeds). Prints one JSON line per seed and a
 * summary; every failure is written to --out (one JSON file per failure: seed, iteration,
 * input hex, where, message) so it can become a regression test. Exit status 1 on failures.
 *
 *   node dist/bench/fuzz.js [--seconds 300] [--seed 1] [--per-seed 500000] [--out fuzz-crashes]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCaptureCorpus, ownCorpus, runFuzz, type FuzzCrash } from '../src/fuzz/mutate.js';
import { VECTORS_DIR } from '../test/harness/wire-vectors.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1]!;
}

const seconds = Number(arg('seconds', '300'));
const firstSeed = Number(arg('seed', String(Date.now() % 1_000_000)));
const perSeed = Number(arg('per-seed', '500000'));
const out = arg('out', 'fuzz-crashes');
const corpus = [...loadCaptureCorpus(VECTORS_DIR), ...ownCorpus()];
const end = performance.now() + seconds * 1000;
const crashes: FuzzCrash[] = [];
let inputs = 0;
let seeds = 0;
const t0 = performance.now();
for (let seed = firstSeed; performance.now() < end; seed++) {
  const r = runFuzz({
    seed,
    corpus,
    iterations: perSeed,
    deadlineMs: end - performance.now(),
    onCrash: (c) => {
      crashes.push(c);
      mkdirSync(out, { recursive: true });
      writeFileSync(join(out, `seed${c.seed}-${c.iteration}.json`), JSON.stringify(c, null, 2));
    },
  });
  inputs += r.iterations;
  seeds++;
  console.log(
    JSON.stringify({
      seed,
      inputs: r.iterations,
      perSecond: r.perSecond,
      crashes: r.crashes.length,
      events: r.stats.events,
    }),
  );
}
const s = (performance.now() - t0) / 1000;
console.log(
  JSON.stringify({
    summary: true,
    seeds,
    inputs,
    seconds: Math.round(s),
    perSecond: Math.round(inputs / s),
    crashes: crashes.length,
    corpus: corpus.length,
    ...(crashes.length ? { crashDir: out } : {}),
  }),
);
process.exitCode = crashes.length ? 1 : 0;
