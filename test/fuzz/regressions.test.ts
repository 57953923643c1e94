/**
 * Failures the fuzz target found, kept as regression tests, each as the smallest scenario
 * that shows it. (The runs that found them: `runFuzz` with seeds 3 and 6, inputs 210098 and
 * 214741, before the fix; a changed mutator changes those sequences, so the scenarios are
 * what is kept.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../src/core/random.js';
import { BridgeNode } from '../../src/node/bridge-node.js';
import { ECHO_POLICY } from '../../src/vdp/bridge.js';
import { encodeEcp } from '../../src/wire/ecp.js';
import { encodeEthernet, ETHERTYPE_ECP } from '../../src/wire/ethernet.js';
import { decodeFrame } from '../../src/wire/frame.js';
import { encodeVdp, managerIdFromString } from '../../src/wire/vdp.js';

const ST = '02:00:00:00:aa:01';
const PORT = '02:00:00:00:bb:00';

function request(seq: number, type: 1 | 2 | 3, filterFormat: number, entry: object): Uint8Array {
  return encodeEthernet(
    { destination: '01:80:c2:00:00:00', source: ST, ethertype: ETHERTYPE_ECP },
    encodeEcp(
      { version: 1, op: 0, subtype: 1, sequence: seq },
      encodeVdp([
        { kind: 'manager-id', managerId: managerIdFromString('nvemgr1') },
        {
          kind: 'vsi',
          type,
          status: 0,
          typeId: 42,
          typeVersion: 1,
          idFormat: 5,
          id: Uint8Array.from({ length: 16 }, (_, i) => i + 1),
          filterFormat,
          entries: [{ ps: 0, pcp: 0, vid: 0, ...entry }],
        },
      ]),
    ),
  );
}

test('fuzz #1 (seeds 3 and 6): a refusal with Keep echoes the kept VSI with its own filter format; the PDU decodes', () => {
  // Plain profile: IP filter formats are refused. The station holds VSI X (GroupID/MAC/VID);
  // an Associate of X with an IPv6 filter is refused with Keep, answered as Pre-Associate-RR
  // (the state kept). The response used to carry the kept entries under the request's IPv6
  // format: encoding failed half-way and the half-written TLV was sent, followed by another.
  const n = new BridgeNode({
    ports: [{ name: 'p', mac: PORT }],
    profile: '802.1Qbg',
    policy: ECHO_POLICY,
    random: seededRandom(1),
  });
  n.start(0);
  const ack = (seq: number): Uint8Array =>
    encodeEthernet(
      { destination: PORT, source: ST, ethertype: ETHERTYPE_ECP },
      encodeEcp({ version: 1, op: 1, subtype: 1, sequence: seq }),
    );
  const sent: Uint8Array[] = [];
  const feed = (f: Uint8Array, t: number): void => {
    for (const o of n.handleFrame('p', f, t)) {
      if (o.type !== 'transmit' || o.frame.length <= 60) continue;
      sent.push(o.frame);
      for (const p of n.handleFrame('p', ack((o.frame[16]! << 8) | o.frame[17]!), t))
        if (p.type === 'transmit' && p.frame.length > 60) sent.push(p.frame);
    }
  };
  feed(request(1, 2, 4, { groupId: 5000, mac: '02:00:00:00:00:01' }), 1000);
  feed(request(2, 3, 0xf1, { groupId: 5000, mac: '02:00:00:00:00:01', ipv6: '2001:db8::1' }), 2000);
  assert.equal(sent.length, 2);
  for (const f of sent) {
    const d = decodeFrame(f);
    assert.equal(d.error, undefined, d.error?.message);
  }
  const refusal = decodeFrame(sent[1]!).vdp!.items.find((x) => x.tlv.kind === 'vsi')!.tlv;
  assert.ok(refusal.kind === 'vsi');
  assert.equal(refusal.type, 2, 'the type of the state kept');
  assert.equal(refusal.status & 0x2f, 0x21, 'Keep, reason 1');
  assert.equal(refusal.filterFormat, 4, 'the kept filter format');
  assert.deepEqual(
    refusal.entries.map((e) => [e.groupId, e.mac]),
    [[5000, '02:00:00:00:00:01']],
  );
});
