import assert from 'node:assert/strict';
import { test } from 'node:test';
import { World } from '../../src/sim/world.js';

test('50 stations x 200 VSIs converge under 20% loss, 5% duplication and reordering', () => {
  const stations = 50;
  const perStation = 200;
  const w = new World({
    seed: 42,
    stations,
    impairments: {
      loss: 0.2,
      duplicate: 0.05,
      reorder: 0.1,
      delayUs: 100,
      jitterUs: 200,
      reorderUs: 3000,
    },
    maxAttempts: 8,
  });
  w.start();
  w.run(3_000_000);
  const ids: string[] = [];
  for (let i = 0; i < stations; i++) {
    for (let j = 0; j < perStation; j++) ids.push(w.request(i, j % 3 === 0 ? 2 : 3, w.spec(i, j)));
  }
  w.run(30_000_000);
  const failed = ids.filter((id) => !w.results.get(id)?.ok);
  assert.deepEqual(
    failed.slice(0, 5).map((id) => w.results.get(id) ?? id),
    [],
    `${failed.length} requests failed`,
  );
  assert.deepEqual(w.disagreements().slice(0, 5), []);
  assert.equal(w.bridge.vsis().length, stations * perStation);
  // De-associate every other VSI; run through several keep-alive periods.
  const ids2: string[] = [];
  for (let i = 0; i < stations; i++)
    for (let j = 0; j < perStation; j += 2) ids2.push(w.request(i, 4, w.spec(i, j)));
  w.run(40_000_000);
  assert.equal(ids2.filter((id) => !w.results.get(id)?.ok).length, 0);
  assert.deepEqual(w.disagreements().slice(0, 5), []);
  assert.equal(w.bridge.vsis().length, (stations * perStation) / 2);
  assert.deepEqual(w.violations, []);
  // Counters agree with what happened.
  let stationRequests = 0;
  let rxFrames = 0;
  const dups = w.fabric.stats.framesDuplicated;
  for (let i = 0; i < stations; i++) {
    const info = w.stations[i]!.uplinkInfo('eth0')!;
    stationRequests += info.vdp.requests;
    const b = w.bridge.stations().find((s) => s.port === `p${i}`)!;
    // Every request received was ACKed, duplicate or not; nothing arrives that was not sent
    // (the fabric's duplicates aside); every ECP failure led to a VDP retry or a failure.
    assert.equal(b.ecp.txAcks, b.ecp.rxRequests);
    assert.equal(info.ecp.txAcks, info.ecp.rxRequests);
    assert.ok(b.ecp.rxRequests <= info.ecp.txRequests + info.ecp.txRetransmissions + dups);
    assert.ok(info.ecp.rxAcks <= b.ecp.txAcks + dups);
    const failedEvents = w.stationEvents.filter(
      (e) => e.station === i && e.type === 'ecp-failed',
    ).length;
    assert.equal(info.ecp.failures, failedEvents);
    assert.ok(
      info.ecp.rxDuplicates + b.ecp.rxDuplicates <=
        dups + info.ecp.txRetransmissions + b.ecp.txRetransmissions,
    );
    rxFrames += w.stations[i]!.stats.framesIn;
    assert.ok(info.vdp.keepAlives > 0, 'keep-alives ran');
    assert.equal(b.vsis, perStation / 2);
  }
  assert.equal(stationRequests, stations * perStation * 1.5);
  // Every frame the fabric delivered was handled by exactly one node.
  assert.equal(rxFrames + w.bridge.stats.framesIn, w.fabric.stats.framesDelivered);
  const tsi = w.bridgeEvents.filter((e) => e.type === 'tsi');
  assert.equal(
    tsi.filter((e) => e.to === 'init' && e.cause === 'deassociate').length,
    (stations * perStation) / 2,
  );
  assert.equal(tsi.filter((e) => e.cause === 'keepalive-expired').length, 0);
  assert.ok(
    w.fabric.stats.framesLost > 0 &&
      w.fabric.stats.framesDuplicated > 0 &&
      w.fabric.stats.framesReordered > 0,
  );
});
