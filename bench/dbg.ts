import { createPair } from './lib/pair.js';
import { startOurs, stationSpecs } from './figures/common.js';
import { associateAll } from './lib/drive.js';
import { sleep } from '../test/harness/proc.js';
import { EVB } from './lib/config.js';
const pair = await createPair();
try {
  const o = await startOurs(pair, { stations: 1000, profile: 'splitnve', evb: EVB });
  const specs = Array.from({ length: 1000 }, (_, i) => stationSpecs(i, 100, 1000, i * 100));
  const r = await associateAll(o.gen, specs, { concurrency: 4, timeoutMs: 600000, rounds: 3 });
  console.log('setup', r.ok, Math.round(r.ms));
  const out: string[] = [];
  for (let k = 0; k < 25; k++) {
    out.push(`${k * 2}s:${Math.round(o.nnve.memory().rss / 1e6)}`);
    await sleep(2000);
  }
  console.log(out.join(' '));
  await o.gen.close();
  await o.nnve.stop();
} finally {
  await pair.lab.close();
}
