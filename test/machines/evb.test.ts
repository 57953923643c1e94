import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EvbAgent, evbConfig, type EvbOutput } from '../../src/evb/agent.js';
import { fromHex, toHex } from '../../src/wire/bytes.js';
import { decodeEthernet } from '../../src/wire/ethernet.js';
import { decodeEvbBody } from '../../src/wire/evb-tlv.js';
import { decodeLldp, encodeLldp, type LldpPdu } from '../../src/wire/lldp.js';

const ST = '02:00:00:00:aa:01';
const BR = '02:00:00:00:bb:01';

/** An LLDPDU carrying the given 5 EVB body octets (as in the lldpad vectors). */
function lldpWith(mac: string, evbHex: string, ttl = 120): LldpPdu {
  const evb = decodeEvbBody(fromHex(evbHex)!);
  assert.ok(evb.ok);
  const bytes = encodeLldp({
    chassisId: { subtype: 4, id: mac },
    portId: { subtype: 3, id: mac },
    ttl,
    evb: evb.value,
  });
  const d = decodeLldp(bytes);
  assert.ok(d.ok);
  return d.value;
}

/** The EVB body octets of the last LLDPDU transmitted. */
function sentEvb(out: EvbOutput[]): string {
  const tx = out.filter((o) => o.type === 'transmit').at(-1);
  assert.ok(tx, 'an LLDPDU was sent');
  const eth = decodeEthernet((tx as { frame: Uint8Array }).frame);
  assert.ok(eth.ok);
  const l = decodeLldp(eth.value.payload);
  assert.ok(l.ok && l.value.evb);
  const tlv = l.value.tlvs.find((t) => t.name === 'evb');
  assert.ok(tlv);
  // re-encode the body from the frame bytes: find the org TLV header fe09 0080c20d
  const hex = toHex((tx as { frame: Uint8Array }).frame);
  const at = hex.indexOf('fe090080c20d');
  return hex.slice(at + 12, at + 22);
}

test("station agent reproduces lldpad's captured negotiation (vector 01)", () => {
  // lldpad station config: R 3, RTE 14, RWD 20, RKA 18, SGID, RRREQ.
  const a = new EvbAgent(
    evbConfig({ role: 'station', mac: ST, values: { r: 3, rte: 14, rwd: 20, rka: 18 } }),
  );
  const out: EvbOutput[] = [];
  a.start(0, out);
  assert.equal(sentEvb(out), '000f6e9412', 'alone: RRSTAT unknown, own values, ROL 0');
  // bridge's first TLV
  a.receive(BR, lldpWith(BR, '06006e5414'), 1_000_000, out);
  a.timeout(1_000_000, out);
  assert.equal(
    sentEvb(out),
    '060c6eb434',
    'copies the bridge octet, RRSTAT 0, adopts RKA 20 with ROL',
  );
  a.receive(BR, lldpWith(BR, '070c6e7434'), 2_000_000, out);
  a.timeout(2_000_000, out);
  assert.equal(sentEvb(out), '070d6eb434', 'RRCTR seen: RRSTAT yes');
  const n = a.negotiated(BR)!;
  assert.deepEqual(
    { r: n.r, rte: n.rte, rwd: n.rwd, rka: n.rka, groupId: n.groupId, rr: n.rr },
    { r: 3, rte: 14, rwd: 20, rka: 20, groupId: true, rr: true },
  );
});

test("bridge agent reproduces lldpad's bridge octets", () => {
  const a = new EvbAgent(
    evbConfig({ role: 'bridge', mac: BR, values: { r: 3, rte: 14, rwd: 20, rka: 20 } }),
  );
  const out: EvbOutput[] = [];
  a.start(0, out);
  assert.equal(sentEvb(out), '06006e5414', 'first: BGID+RRCAP, no station information');
  // earlier run: the bridge saw the station's RKA=18 first
  a.receive(ST, lldpWith(ST, '000f6e9412'), 1000, out);
  a.timeout(1000, out);
  assert.equal(sentEvb(out), '070f6e7414');
  a.receive(ST, lldpWith(ST, '060c6eb434'), 2000, out);
  a.timeout(2000, out);
  assert.equal(sentEvb(out), '070c6e7434', 'equal values: ROL 1');
  assert.equal(a.negotiated(ST)!.rka, 20);
});

test('GroupID formats only when both BGID and SGID; RR only when agreed', () => {
  const s = new EvbAgent(evbConfig({ role: 'station', mac: ST, groupId: true }));
  const out: EvbOutput[] = [];
  s.start(0, out);
  s.receive(BR, lldpWith(BR, '02006e5414'), 10, out); // RRCAP only, no BGID
  assert.equal(s.negotiated(BR)!.groupId, false);
  assert.equal(s.negotiated(BR)!.rr, false);
  const b = new EvbAgent(evbConfig({ role: 'bridge', mac: BR, groupId: true, rr: false }));
  b.start(0, out);
  b.receive(ST, lldpWith(ST, '000f6e9412'), 10, out);
  assert.equal(b.negotiated(ST)!.groupId, true);
  assert.equal(b.negotiated(ST)!.rr, false, 'no RRCAP: no RRCTR');
});

test('peer TTL expiry and TTL 0 report the peer gone', () => {
  const a = new EvbAgent(evbConfig({ role: 'bridge', mac: BR }));
  const out: EvbOutput[] = [];
  a.start(0, out);
  a.receive(ST, lldpWith(ST, '000f6e9412', 5), 0, out);
  assert.ok(out.some((o) => o.type === 'peer-up' && o.peer === ST));
  assert.ok(a.deadline()! <= 5_000_000);
  a.timeout(4_999_999, out);
  assert.ok(!out.some((o) => o.type === 'peer-down'));
  a.timeout(5_000_000, out);
  assert.deepEqual(
    out.filter((o) => o.type === 'peer-down'),
    [{ type: 'peer-down', peer: ST, reason: 'ttl-expired' }],
  );
  const o2: EvbOutput[] = [];
  a.receive(ST, lldpWith(ST, '000f6e9412'), 6_000_000, o2);
  a.receive(ST, lldpWith(ST, '000f6e9412', 0), 6_500_000, o2);
  assert.deepEqual(
    o2.filter((o) => o.type === 'peer-down'),
    [{ type: 'peer-down', peer: ST, reason: 'ttl-zero' }],
  );
  assert.equal(a.peerList().length, 0);
});

test('stop sends TTL 0; LLDPDUs without EVB or from the same role are ignored', () => {
  const a = new EvbAgent(evbConfig({ role: 'station', mac: ST }));
  const out: EvbOutput[] = [];
  a.start(0, out);
  a.receive(ST.replace('aa', 'ac'), lldpWith(ST, '000f6e9412'), 1, out); // a station, not a bridge
  assert.ok(out.some((o) => o.type === 'ignored'));
  const plain = decodeLldp(
    encodeLldp({ chassisId: { subtype: 4, id: BR }, portId: { subtype: 3, id: BR }, ttl: 120 }),
  );
  assert.ok(plain.ok);
  a.receive(BR, plain.value, 2, out);
  assert.equal(a.peerList().length, 0);
  const o2: EvbOutput[] = [];
  a.stop(3, o2);
  const eth = decodeEthernet((o2[0] as { frame: Uint8Array }).frame);
  assert.ok(eth.ok);
  const l = decodeLldp(eth.value.payload);
  assert.ok(l.ok);
  assert.equal(l.value.ttl, 0);
  assert.equal(a.deadline(), undefined);
});

test('several stations on one port: advertised max, per-station max(advertised, station)', () => {
  const a = new EvbAgent(
    evbConfig({ role: 'bridge', mac: BR, values: { r: 3, rte: 8, rwd: 20, rka: 18 } }),
  );
  const out: EvbOutput[] = [];
  a.start(0, out);
  a.receive('02:00:00:00:aa:01', lldpWith(ST, '000f6e9412'), 1, out); // rte 14 rka 18
  a.receive('02:00:00:00:aa:02', lldpWith(ST, '000f689416'), 2, out); // r 3 rte 8 rka 22
  a.timeout(2, out);
  const body = decodeEvbBody(fromHex(sentEvb(out))!);
  assert.ok(body.ok);
  assert.equal(body.value.rte, 14);
  assert.equal(body.value.rka, 22);
  assert.equal(a.negotiated('02:00:00:00:aa:01')!.rka, 22);
  assert.equal(a.negotiated('02:00:00:00:aa:02')!.rte, 14);
});

test('a station that does not raise what we advertise renegotiates alone; one that does, all', () => {
  const a = new EvbAgent(
    evbConfig({ role: 'bridge', mac: BR, values: { r: 3, rte: 8, rwd: 20, rka: 18 } }),
  );
  const out: EvbOutput[] = [];
  a.start(0, out);
  a.receive('02:00:00:00:aa:01', lldpWith(ST, '000f6e9412'), 1, out); // rte 14 rka 18
  a.receive('02:00:00:00:aa:02', lldpWith(ST, '000f6e9412'), 2, out);
  const o2: EvbOutput[] = [];
  a.receive('02:00:00:00:aa:03', lldpWith(ST, '000f6e9412'), 3, o2); // same values
  a.receive('02:00:00:00:aa:01', lldpWith(ST, '000f6e9412'), 4, o2); // a repeat
  assert.deepEqual(
    o2.filter((o) => o.type === 'negotiated').map((o) => (o as { peer: string }).peer),
    ['02:00:00:00:aa:03'],
  );
  const o3: EvbOutput[] = [];
  a.receive('02:00:00:00:aa:02', lldpWith(ST, '000f689416'), 5, o3); // rka 22: we now send 22
  assert.deepEqual(
    o3
      .filter((o) => o.type === 'negotiated')
      .map((o) => (o as { peer: string }).peer)
      .sort(),
    ['02:00:00:00:aa:01', '02:00:00:00:aa:02', '02:00:00:00:aa:03'],
  );
  for (const p of ['01', '02', '03']) assert.equal(a.negotiated(`02:00:00:00:aa:${p}`)!.rka, 22);
});

test('a peer that does not echo our status octet (restarted) gets an LLDPDU at once', () => {
  const a = new EvbAgent(
    evbConfig({ role: 'station', mac: ST, txIntervalUs: 30_000_000, fastTxCount: 0 }),
  );
  const out: EvbOutput[] = [];
  a.start(0, out);
  a.receive(BR, lldpWith(BR, '070d6e7434'), 10, out);
  a.timeout(10, out);
  const before = out.filter((o) => o.type === 'transmit').length;
  // the bridge restarted: its TLV has no station information
  a.receive(BR, lldpWith(BR, '06006e5414'), 20_000_000, out);
  assert.equal(a.deadline(), 20_000_000);
  a.timeout(20_000_000, out);
  assert.equal(out.filter((o) => o.type === 'transmit').length, before + 1);
});
