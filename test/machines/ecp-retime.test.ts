/**
 * EcpEndpoint.transmittedAt: a driver that commits state before transmitting sends a step's PDU
 * later than the step's time; the gap to the next PDU and the ACK timer must run from the real
 * transmission (else a slow step retransmits right after the first copy and shortens the gap
 * that lldpad needs, quirk Q4).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EcpEndpoint, type EcpOutput } from '../../src/ecp/endpoint.js';

const params = { maxRetries: 3, ackTimeoutUs: 2560, minGapUs: 5000 };

test('a late transmission moves the gap and the ACK timer', () => {
  const e = new EcpEndpoint<string>(params, 100, 1);
  const out: EcpOutput<string>[] = [];
  e.send(new Uint8Array(4), 'a', 1_000, out);
  assert.equal(e.deadline(), 1_000 + 5000);
  // The step stamped 1000 µs sent its frame at 7000 µs (events took 6 ms to commit).
  e.transmittedAt(1_000, 7_000);
  assert.equal(e.deadline(), 7_000 + 5000, 'nothing due before the gap after the real send');
  const early: EcpOutput<string>[] = [];
  e.timeout(7_400, early);
  assert.deepEqual(early, [], 'no retransmission 0.4 ms after the first copy');
  e.timeout(12_000, early);
  assert.equal(early.length, 1, 'retransmitted once the ACK timer ran from 7000');
  // An ACK frees the endpoint; a new PDU still waits for the gap after the real send.
  e.receiveDecoded({ version: 1, op: 1, subtype: 1, sequence: 100 }, new Uint8Array(), 12_100, []);
  e.transmittedAt(12_000, 12_050);
  assert.equal(e.canSend(16_000), false);
  assert.equal(e.canSend(17_050), true);
});

test('transmittedAt leaves an endpoint alone that did not send in that step', () => {
  const e = new EcpEndpoint<string>(params, 100, 1);
  e.send(new Uint8Array(4), 'a', 1_000, []);
  e.transmittedAt(2_000, 9_000); // another step
  assert.equal(e.deadline(), 6_000);
  e.transmittedAt(1_000, 900); // not later: nothing to do
  assert.equal(e.deadline(), 6_000);
});
