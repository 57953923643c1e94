/**
 * Flood benchmark (root): the scenario of test/flood (test/harness/flood-lab.ts) for longer,
 * at a chosen rate, with or without the keyed stations' own kernel queue. Prints one JSON line.
 *
 *   node dist/bench/flood.js [--rate 0] [--requests 50] [--seconds 10] [--plain]
 */
import { runFloodScenario, summary } from '../test/harness/flood-lab.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
}

const r = await runFloodScenario({
  prefix: 'snsb',
  requests: arg('requests', 50),
  extraSeconds: arg('seconds', 10),
  rate: arg('rate', 0),
  plain: process.argv.includes('--plain'),
});
console.log(
  JSON.stringify({
    plain: process.argv.includes('--plain'),
    rateTarget: arg('rate', 0),
    ...summary(r),
  }),
);
