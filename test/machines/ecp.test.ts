import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EcpEndpoint, nextSequence, type EcpOutput } from '../../src/ecp/endpoint.js';
import { decodeEcp, ECP_OP_ACK, ECP_OP_REQUEST, encodeEcp } from '../../src/wire/ecp.js';

const params = { maxRetries: 3, ackTimeoutUs: 2560, minGapUs: 0 };

function req(seq: number, body = Uint8Array.of(1, 2, 3)): Uint8Array {
  return encodeEcp({ version: 1, op: ECP_OP_REQUEST, subtype: 1, sequence: seq }, body);
}
function ack(seq: number): Uint8Array {
  return encodeEcp({ version: 1, op: ECP_OP_ACK, subtype: 1, sequence: seq });
}
function seqOf(o: EcpOutput<string>): number {
  assert.equal(o.type, 'transmit');
  const d = decodeEcp((o as { pdu: Uint8Array }).pdu);
  assert.ok(d.ok);
  return d.value.header.sequence;
}

test('sender: one outstanding PDU, sequence from the initial value, ACK matching', () => {
  const e = new EcpEndpoint<string>(params, 500, 1);
  const out: EcpOutput<string>[] = [];
  assert.ok(e.canSend(0));
  assert.equal(e.send(Uint8Array.of(9), 'a', 0, out), 500);
  assert.equal(seqOf(out[0]!), 500);
  assert.equal(e.canSend(1), false, 'stop-and-wait');
  assert.throws(() => e.send(Uint8Array.of(9), 'b', 1, []));
  // an ACK for another sequence is not ours
  const o2: EcpOutput<string>[] = [];
  e.receive(ack(499), 10, o2);
  assert.deepEqual(o2, []);
  assert.equal(e.stats.rxAcksUnmatched, 1);
  e.receive(ack(500), 20, o2);
  assert.deepEqual(o2, [{ type: 'acked', token: 'a', sequence: 500 }]);
  assert.ok(e.canSend(20));
  const o3: EcpOutput<string>[] = [];
  e.send(Uint8Array.of(9), 'b', 20, o3);
  assert.equal(seqOf(o3[0]!), 501);
});

test('sender: retransmits the same bytes R times every ACK timeout, then reports the failure', () => {
  const e = new EcpEndpoint<string>(params, 7, 1);
  const out: EcpOutput<string>[] = [];
  e.send(Uint8Array.of(1), 'tok', 1000, out);
  const first = (out[0] as { pdu: Uint8Array }).pdu;
  assert.equal(e.deadline(), 1000 + 2560);
  // not yet due
  e.timeout(1000 + 2559, out);
  assert.equal(out.length, 1);
  let t = 1000;
  for (let i = 1; i <= 3; i++) {
    t += 2560;
    e.timeout(t, out);
    assert.equal(out.length, 1 + i);
    assert.deepEqual((out[i] as { pdu: Uint8Array }).pdu, first);
  }
  t += 2560;
  e.timeout(t, out);
  assert.deepEqual(out[4], { type: 'failed', token: 'tok', sequence: 7, transmissions: 4 });
  assert.equal(e.stats.txRetransmissions, 3);
  assert.equal(e.stats.failures, 1);
  assert.ok(e.idle());
  // the next PDU uses the next sequence
  const o2: EcpOutput<string>[] = [];
  e.send(Uint8Array.of(1), 'n', t, o2);
  assert.equal(seqOf(o2[0]!), 8);
});

test('receiver: every request is ACKed; the same sequence again is a duplicate, any other is new', () => {
  const e = new EcpEndpoint<string>(params, 1, 1);
  const out: EcpOutput<string>[] = [];
  e.receive(req(40), 0, out);
  assert.equal(out.length, 2);
  assert.equal(out[0]!.type, 'transmit');
  assert.deepEqual(
    decodeEcp((out[0] as { pdu: Uint8Array }).pdu).ok && (out[0] as { ack: boolean }).ack,
    true,
  );
  assert.equal(seqOf(out[0]!), 40);
  assert.deepEqual(out[1], { type: 'deliver', ulpdu: Uint8Array.of(1, 2, 3), sequence: 40 });
  const o2: EcpOutput<string>[] = [];
  e.receive(req(40), 1, o2);
  assert.equal(o2.length, 1, 'duplicate: ACK only');
  assert.equal(e.stats.rxDuplicates, 1);
  const o3: EcpOutput<string>[] = [];
  e.receive(req(12), 2, o3);
  assert.equal(o3.length, 2, 'lldpad rule: any other sequence is new (no window)');
});

test('invalid frames are counted, not delivered', () => {
  const e = new EcpEndpoint<string>(params, 1, 1);
  const out: EcpOutput<string>[] = [];
  e.receive(Uint8Array.of(0x10), 0, out); // truncated
  e.receive(encodeEcp({ version: 2, op: 0, subtype: 1, sequence: 3 }), 0, out); // version 2
  e.receive(encodeEcp({ version: 1, op: 0, subtype: 2, sequence: 3 }), 0, out); // other subtype
  e.receive(encodeEcp({ version: 1, op: 3, subtype: 1, sequence: 3 }), 0, out); // reserved op
  assert.deepEqual(out, []);
  assert.equal(e.stats.rxInvalid, 4);
});

test('sequence wraps from 65535 to 1, skipping 0; initial sequence 0 is refused', () => {
  assert.equal(nextSequence(65535), 1);
  assert.equal(nextSequence(1), 2);
  assert.throws(() => new EcpEndpoint(params, 0, 1), /1\.\.65535/);
  const e = new EcpEndpoint<string>(params, 65535, 1);
  const out: EcpOutput<string>[] = [];
  e.send(Uint8Array.of(), 'a', 0, out);
  e.receive(ack(65535), 1, out);
  e.send(Uint8Array.of(), 'b', 2, out);
  assert.equal(seqOf(out[2]!), 1);
});

test('minimum gap between transmissions (lldpad needs >= 5 ms)', () => {
  const e = new EcpEndpoint<string>({ ...params, minGapUs: 5000 }, 100, 1);
  const out: EcpOutput<string>[] = [];
  e.send(Uint8Array.of(), 'a', 0, out);
  e.receive(ack(100), 300, out); // fast ACK
  assert.equal(e.canSend(300), false);
  assert.equal(e.sendableAt(), 5000);
  assert.ok(e.canSend(5000));
  // retransmissions respect the gap too, even with a shorter ACK timer
  e.send(Uint8Array.of(), 'b', 5000, out);
  assert.equal(e.deadline(), 10000);
  e.timeout(5000 + 2560, out);
  assert.equal(
    out.filter((o) => o.type === 'transmit').length,
    2,
    'no retransmission inside the gap',
  );
  e.timeout(10000, out);
  assert.equal(out.filter((o) => o.type === 'transmit').length, 3);
});
