/**
 * Flood safety of the nNVE daemon on real sockets (scenario: test/harness/flood-lab.ts). A
 * flooder in the station's namespace sends, at 150k frames/s (7x what the nNVE reads; the
 * line-rate run is bench/flood.ts: a flooder taking a whole core would starve the suites CI
 * runs beside this one), VDP requests from random
 * station MACs with random VSI ids (plus forged auth TLVs and LLDP from random MACs) into the
 * nNVE's port while the authenticated station associates VSIs one after another. Shown: the
 * nNVE keeps no state for the flood (one station known), its memory (RSS, heap) stays flat
 * while millions of frames arrive, failures are counted and their logging rate-limited, the
 * keyed station's kernel queue drops nothing, its requests all succeed with a median latency
 * within 10x of the latency without flood, and SIGHUP adds a key while flooded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FLOOD_HV, median, runFloodScenario, summary } from '../harness/flood-lab.js';

test('a flood of random stations into the nNVE port: bounded memory and state, the authenticated station still served within 10x', async () => {
  const r = await runFloodScenario({
    prefix: 'sns',
    requests: 25,
    extraSeconds: 3,
    sighup: true,
    rate: 150_000,
  });
  process.stdout.write(`# flood: ${JSON.stringify(summary(r))}\n`);

  assert.deepEqual(r.failed, [], 'every request succeeded, with and without the flood');
  // A real flood happened and was seen: most of what reached the nNVE counted as failures.
  assert.ok(r.floodSent > 100_000, `flood of ${r.floodSent} frames`);
  assert.ok(r.failuresTotal > 50_000 && r.failuresTotal <= r.floodSent);
  // No state for the flood: the one authenticated station is the only station known.
  assert.deepEqual(r.stations, [FLOOD_HV]);
  // Memory stays flat once the flood runs (a leak of 50 octets per frame would show).
  const [, earlyRss, lateRss] = r.rssKb as [number, number, number];
  const [, earlyHeap, lateHeap] = r.heapKb as [number, number, number];
  assert.ok(lateRss - earlyRss < 40_000, `RSS grew from ${earlyRss} to ${lateRss} kB`);
  assert.ok(lateHeap - earlyHeap < 4_000, `retained heap grew from ${earlyHeap} to ${lateHeap} kB`);
  // Logging is rate-limited: far fewer lines than failures, and the rest is accounted for.
  assert.ok(r.logLines < 500, `${r.logLines} log lines`);
  assert.ok(r.logSuppressed + r.logLines >= r.failuresTotal * 0.99);
  // The keyed station's own queue lost nothing, whatever the kernel dropped of the flood; the
  // nNVE read other sources only within its budget (20000 frames/s by default).
  assert.equal(r.keyedQueue?.rxDropped, 0);
  assert.ok(r.keyedQueue.rxFrames > 0);
  const floodSeconds = r.floodSent / r.floodRate;
  assert.ok(
    r.nnveReceived <= 20_000 * floodSeconds * 1.2 + 10_000,
    `${r.nnveReceived} frames read in ${floodSeconds.toFixed(1)} s`,
  );
  // The SIGHUP reload picked up the new key while flooded.
  assert.equal(r.keyedStationsAfterSighup, 2);
  // Served within 10x of the latency without flood (the calm median is floored at 2 ms:
  // below that, 10x is scheduler noise on a loaded 2-core machine).
  assert.ok(
    median(r.floodMs) <= 10 * Math.max(median(r.calmMs), 2),
    `median ${median(r.floodMs).toFixed(1)} ms under flood vs ${median(r.calmMs).toFixed(1)} ms without`,
  );
});
