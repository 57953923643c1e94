/**
 * Malformed input: each decoder returns an error that names the field and the exact octet
 * offset in the frame (or file), never throws, and keeps what it could decode.
 * The frames are lldpad vector frames (02-assoc #1, 01-lldp-evb22 #1) with one thing broken.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromHex, toHex } from '../../src/wire/bytes.js';
import { decodeEcp } from '../../src/wire/ecp.js';
import { decodeEthernet } from '../../src/wire/ethernet.js';
import { decodeEvbBody } from '../../src/wire/evb-tlv.js';
import { decodeFrame, type DecodedFrame } from '../../src/wire/frame.js';
import { frameJson } from '../../src/wire/json.js';
import { decodeLldp } from '../../src/wire/lldp.js';
import { DEFAULT_WIRE_OPTIONS } from '../../src/wire/options.js';
import { readCapture, writePcap } from '../../src/wire/pcap.js';
import { decodeVdp, type MalformedTlv } from '../../src/wire/vdp.js';
import { writePcapng } from '../harness/wire-vectors.js';

function hex(...parts: string[]): Uint8Array {
  const b = fromHex(parts.join(''));
  assert.ok(b, 'test hex');
  return b;
}

// 02-assoc #1, split by field. Frame offsets: ECP header 14, Manager ID TLV 18, VSI TLV 36
// (status 38, type id 39, version 42, id format 43, id 44, filter format 60, count 61,
// entries 63..74).
const ETH_ECP = '0180c200000002000000aa01' + '8940';
const ECP = '10010001';
const MGR = '0a10' + '6e76656d677231000000000000000000';
const VSI_HEAD = '0625' + '00' + '00002a' + '01' + '05' + 'a1b2c3d400014000800000000000000a';
const VSI_FIF = '04' + '0001';
const VSI_ENTRY = '000027100200000000010000';
const VSI = VSI_HEAD + VSI_FIF + VSI_ENTRY;
const ASSOC = ETH_ECP + ECP + MGR + VSI;
/** A second, valid VSI TLV (fif 1, one entry) to show decoding goes on after a bad one. */
const VSI2 =
  '041b' + '00' + '00002a' + '01' + '05' + 'a1b2c3d400044000800000000000000d' + '010001b064';

// 01-lldp-evb22 #1: chassis id TLV at 14, port id 23, TTL 32, EVB 36 (body 42), End 47.
const ETH_LLDP = '0180c200000002000000aa01' + '88cc';
const CHASSIS = '0207' + '04' + '02000000aa01';
const PORT = '0407' + '03' + '02000000aa01';
const TTL = '0602' + '0078';
const EVB = 'fe09' + '0080c20d' + '000f6e9412';
const END = '0000';

function errorOf(d: DecodedFrame): { field: string; offset: number } {
  assert.ok(d.error, 'expected a decode error');
  assert.equal(typeof d.error.message, 'string');
  assert.ok(d.error.message.length > 0);
  return { field: d.error.field, offset: d.error.offset };
}

test('the base frames decode cleanly (so each case below breaks exactly one thing)', () => {
  const a = decodeFrame(hex(ASSOC));
  assert.equal(a.error, undefined);
  assert.equal(a.vdp?.items.length, 2);
  const l = decodeFrame(hex(ETH_LLDP, CHASSIS, PORT, TTL, EVB, END));
  assert.equal(l.error, undefined);
  assert.equal(l.lldp?.evb?.rka, 18);
  assert.deepEqual(l.lldp?.warnings, []);
});

test('truncated Ethernet header and 802.1Q tag', () => {
  for (const n of [0, 1, 6, 13]) {
    const d = decodeFrame(hex(ASSOC).subarray(0, n));
    assert.deepEqual(errorOf(d), { field: 'ethernet', offset: 0 }, `${n} octets`);
    assert.equal(d.length, n);
    assert.equal(d.ethernet, undefined);
  }
  for (const tail of ['', '00', '0064', '006489']) {
    const d = decodeFrame(hex('0180c200000002000000aa01', '8100', tail));
    assert.deepEqual(errorOf(d), { field: 'ethernet.vlan', offset: 14 }, tail);
  }
  const e = decodeEthernet(hex('0180c200000002000000aa01', '8100'));
  assert.ok(!e.ok);
  assert.equal(e.error.field, 'ethernet.vlan');
});

test('truncated ECP header (untagged and tagged)', () => {
  for (const n of [14, 15, 17]) {
    const d = decodeFrame(hex(ASSOC).subarray(0, n));
    assert.deepEqual(errorOf(d), { field: 'ecp', offset: 14 }, `${n} octets`);
    assert.equal(d.ethernet?.ethertype, 0x8940);
  }
  const tagged = hex('0180c200000002000000aa01', '8100', '6064', '8940', '1001');
  const d = decodeFrame(tagged);
  assert.deepEqual(errorOf(d), { field: 'ecp', offset: 18 });
  assert.deepEqual(d.ethernet?.vlan, { pcp: 3, dei: 0, vid: 100 });
  const e = decodeEcp(hex('1001'), 7);
  assert.ok(!e.ok);
  assert.deepEqual({ field: e.error.field, offset: e.error.offset }, { field: 'ecp', offset: 7 });
});

test('a VDP TLV whose length runs past the PDU stops decoding with vdp.tlv.length', () => {
  // VSI TLV length 37 -> 38: one octet past the end.
  const longer = decodeFrame(hex(ETH_ECP, ECP, MGR, '0626', VSI.slice(4)));
  assert.deepEqual(errorOf(longer), { field: 'vdp.tlv.length', offset: 36 });
  assert.equal(longer.ecp?.sequence, 1, 'ECP header kept');
  assert.equal(longer.vdp, undefined);
  // The frame cut inside the VSI TLV.
  assert.deepEqual(errorOf(decodeFrame(hex(ASSOC).subarray(0, 70))), {
    field: 'vdp.tlv.length',
    offset: 36,
  });
  // The Manager ID TLV cut: its header is at 18.
  assert.deepEqual(errorOf(decodeFrame(hex(ASSOC).subarray(0, 30))), {
    field: 'vdp.tlv.length',
    offset: 18,
  });
  // Tagged frame: every offset moves by 4.
  const tagged = hex('0180c200000002000000aa01', '8100', '0064', '8940', ECP, MGR, '0626');
  assert.deepEqual(errorOf(decodeFrame(hex(toHex(tagged), VSI.slice(4)))), {
    field: 'vdp.tlv.length',
    offset: 40,
  });
  // One odd non-zero octet after the last TLV: a truncated TLV header at 75.
  assert.deepEqual(errorOf(decodeFrame(hex(ASSOC, '0a'))), { field: 'vdp.tlv', offset: 75 });
  // decodeVdp reports frame offsets from its base.
  const v = decodeVdp(hex(MGR, '0626', VSI.slice(4)), 100);
  assert.ok(!v.ok);
  assert.deepEqual(
    { field: v.error.field, offset: v.error.offset },
    { field: 'vdp.tlv.length', offset: 118 },
  );
});

test('zero padding after the last VDP TLV is accepted (even and odd number of octets)', () => {
  for (const pad of ['00', '0000', '000000']) {
    const d = decodeFrame(hex(ASSOC, pad));
    assert.equal(d.error, undefined, pad);
    assert.deepEqual(
      d.vdp?.items.map((i) => i.tlv.kind),
      pad.length >= 4 ? ['manager-id', 'vsi', 'end'] : ['manager-id', 'vsi'],
      pad,
    );
  }
});

function malformed(d: DecodedFrame, index: number): MalformedTlv {
  assert.equal(d.error, undefined);
  const t = d.vdp!.items[index]!.tlv;
  assert.equal(t.kind, 'malformed');
  return t as MalformedTlv;
}

test('VSI TLV length != 25 + n·size: a malformed item naming numberOfEntries; others decoded', () => {
  // Count 1 -> 2 with one entry's worth of octets; a good VSI TLV follows.
  const d = decodeFrame(hex(ETH_ECP, ECP, MGR, VSI_HEAD, '04', '0002', VSI_ENTRY, VSI2));
  const m = malformed(d, 1);
  assert.deepEqual(
    { field: m.error.field, offset: m.error.offset },
    { field: 'vdp.vsi.numberOfEntries', offset: 61 },
  );
  assert.equal(m.type, 3);
  assert.equal(toHex(m.value), VSI_HEAD.slice(4) + '04' + '0002' + VSI_ENTRY);
  const items = d.vdp!.items;
  assert.deepEqual(
    items.map((i) => [i.tlv.kind, i.offset, i.length]),
    [
      ['manager-id', 0, 18],
      ['malformed', 18, 39],
      ['vsi', 57, 29],
    ],
  );
  const vsi = items[2]!.tlv;
  assert.ok(vsi.kind === 'vsi');
  assert.deepEqual(vsi.entries, [{ ps: 1, pcp: 3, vid: 100 }]);
  // The JSON (what `splitnve decode` prints) names the error too.
  const j = frameJson(d) as { vdp: { name: string; error?: unknown }[] };
  assert.equal(j.vdp[1]!.name, 'malformed');
  assert.deepEqual(
    { ...(j.vdp[1]!.error as object), message: undefined },
    { field: 'vdp.vsi.numberOfEntries', offset: 61, message: undefined },
  );
  // An extra octet with the right count is as wrong; so is a body under 25 octets.
  const extra = decodeFrame(hex(ETH_ECP, ECP, MGR, '0626', VSI.slice(4), 'ff'));
  assert.deepEqual(malformed(extra, 1).error.field, 'vdp.vsi.numberOfEntries');
  assert.equal(malformed(extra, 1).error.offset, 61);
  const short = decodeFrame(hex(ETH_ECP, ECP, MGR, '0614', VSI.slice(4, 4 + 40), VSI2));
  assert.deepEqual(
    { field: malformed(short, 1).error.field, offset: malformed(short, 1).error.offset },
    { field: 'vdp.vsi.length', offset: 36 },
  );
  assert.equal(short.vdp!.items[2]!.tlv.kind, 'vsi');
});

test('unknown filter info format: vdp.vsi.filterInfoFormat at the format octet', () => {
  const d = decodeFrame(hex(ETH_ECP, ECP, MGR, VSI_HEAD, '09', '0001', VSI_ENTRY, VSI2));
  const m = malformed(d, 1);
  assert.deepEqual(
    { field: m.error.field, offset: m.error.offset },
    { field: 'vdp.vsi.filterInfoFormat', offset: 60 },
  );
  assert.equal(d.vdp!.items[2]!.tlv.kind, 'vsi');
  // 0xF0 is the IPv4 format only under the default options.
  const ip = hex(ETH_ECP, ECP, MGR, '0629', VSI_HEAD.slice(4), 'f0', '0001');
  const ipEntry = hex('00002710', '020000000001', 'c0000201', '0000');
  const frame = hex(toHex(ip), toHex(ipEntry));
  const dflt = decodeFrame(frame);
  const vsi = dflt.vdp!.items[1]!.tlv;
  assert.ok(vsi.kind === 'vsi', JSON.stringify(vsi));
  assert.equal(vsi.entries[0]!.ipv4, '192.0.2.1');
  const other = decodeFrame(frame, { ...DEFAULT_WIRE_OPTIONS, ipv4FilterFormat: 0xe0 });
  assert.equal(malformed(other, 1).error.field, 'vdp.vsi.filterInfoFormat');
  assert.equal(malformed(other, 1).error.offset, 60);
});

test('Manager ID length != 16: a malformed item at the TLV header; the VSI TLV still decoded', () => {
  for (const [len, body] of [
    ['0a0f', MGR.slice(4, 4 + 30)],
    ['0a11', MGR.slice(4) + '00'],
    ['0a00', ''],
  ] as const) {
    const d = decodeFrame(hex(ETH_ECP, ECP, len, body, VSI));
    const m = malformed(d, 0);
    assert.deepEqual(
      { field: m.error.field, offset: m.error.offset },
      { field: 'vdp.managerId.length', offset: 18 },
      len,
    );
    assert.equal(m.type, 5);
    const vsi = d.vdp!.items[1]!;
    assert.equal(vsi.tlv.kind, 'vsi');
    assert.equal(vsi.offset, 2 + body.length / 2);
  }
});

test('organizationally specific VDP TLVs that are too short or inconsistent', () => {
  const cases: [string, string, number][] = [
    // Shorter than an OUI: the error is at the value (frame offset 36 + 2).
    ['fe02' + '0000', 'vdp.org.oui', 38],
    // Cisco VM name (00-00-0c, f1) with 34 octets after the OUI instead of at least 35.
    ['fe25' + '00000c' + 'f1' + '00'.repeat(33), 'vdp.org.cisco.vmName', 38],
    // Cisco L3 address with AFI 1 and 16 address octets: at the AFI (value offset 21).
    [
      'fe27' + '00000c' + 'f2' + '05' + '11'.repeat(16) + '0001' + '22'.repeat(16),
      'vdp.org.cisco.l3Addr.afi',
      38 + 21,
    ],
    // splitnve authentication TLV of 45 octets instead of 46: at the TLV header.
    ['fe2d' + '02534e' + '01' + '00'.repeat(41), 'vdp.org.auth', 36],
  ];
  for (const [tlv, field, offset] of cases) {
    const d = decodeFrame(hex(ETH_ECP, ECP, MGR, tlv, VSI2));
    const m = malformed(d, 1);
    assert.deepEqual({ field: m.error.field, offset: m.error.offset }, { field, offset }, field);
    assert.equal(d.vdp!.items[2]!.tlv.kind, 'vsi', field);
  }
});

test('LLDP without chassis id, port id or TTL: the missing TLV named at its offset', () => {
  const cases: [string, string, number][] = [
    ['', 'lldp.chassisId', 14],
    [PORT + TTL + EVB + END, 'lldp.chassisId', 14],
    [END, 'lldp.chassisId', 14],
    [CHASSIS + TTL + EVB + END, 'lldp.portId', 23],
    [CHASSIS + END, 'lldp.portId', 23],
    [CHASSIS, 'lldp.portId', 23],
    [CHASSIS + PORT + EVB + END, 'lldp.ttl', 32],
    [CHASSIS + PORT + END + '00'.repeat(20), 'lldp.ttl', 32],
    [CHASSIS + PORT, 'lldp.ttl', 32],
    [CHASSIS + PORT + '0603007800' + EVB + END, 'lldp.ttl', 32],
    ['0201' + '04' + PORT + TTL + END, 'lldp.chassisId', 14],
    [CHASSIS + '0401' + '03' + TTL + END, 'lldp.portId', 23],
    // A TLV running past the end of the frame.
    [CHASSIS + PORT + TTL + 'fe20' + '0080c20d', 'lldp.tlv', 36],
    [CHASSIS + PORT + TTL + 'fe', 'lldp.tlv', 36],
  ];
  for (const [body, field, offset] of cases) {
    const d = decodeFrame(hex(ETH_LLDP, body));
    assert.deepEqual(errorOf(d), { field, offset }, body);
    assert.equal(d.lldp, undefined);
    assert.equal(d.ethernet?.ethertype, 0x88cc);
  }
  const l = decodeLldp(hex(CHASSIS, END), 1000);
  assert.ok(!l.ok);
  assert.deepEqual({ f: l.error.field, o: l.error.offset }, { f: 'lldp.portId', o: 1009 });
});

test('EVB TLV of the wrong length: a warning at the body offset, not a fatal error', () => {
  for (const [tlv, got] of [
    ['fe08' + '0080c20d' + '000f6e94', 4],
    ['fe0a' + '0080c20d' + '000f6e941200', 6],
    ['fe04' + '0080c20d', 0],
  ] as const) {
    const d = decodeFrame(hex(ETH_LLDP, CHASSIS, PORT, TTL, tlv, END));
    assert.equal(d.error, undefined);
    const l = d.lldp!;
    assert.equal(l.evb, undefined);
    assert.equal(l.ttl, 120);
    assert.deepEqual(
      l.warnings.map((w) => ({ field: w.field, offset: w.offset })),
      [{ field: 'evb', offset: 42 }],
    );
    assert.match(l.warnings[0]!.message, new RegExp(`got ${got}`));
    assert.deepEqual(
      l.tlvs.map((t) => t.name),
      ['chassisId', 'portId', 'ttl', 'org', 'end'],
    );
    const j = frameJson(d);
    assert.equal(j.evb, undefined);
    assert.deepEqual(
      (j.warnings as { field: string; offset: number }[]).map((w) => [w.field, w.offset]),
      [['evb', 42]],
    );
  }
  // Tagged: +4.
  const tagged = decodeFrame(
    hex('0180c200000002000000aa01', '8100', '0000', '88cc', CHASSIS, PORT, TTL, 'fe08'),
    DEFAULT_WIRE_OPTIONS,
  );
  assert.deepEqual(errorOf(tagged), { field: 'lldp.tlv', offset: 40 });
  const t2 = decodeFrame(
    hex('0180c200000002000000aa01', '8100', '0000', '88cc', CHASSIS, PORT, TTL),
  );
  assert.equal(t2.error, undefined, 'no End TLV is accepted');
  const t3 = decodeFrame(
    hex(
      '0180c200000002000000aa01',
      '8100',
      '0000',
      '88cc',
      CHASSIS,
      PORT,
      TTL,
      'fe08',
      '0080c20d000f6e94',
    ),
  );
  assert.deepEqual(
    t3.lldp!.warnings.map((w) => [w.field, w.offset]),
    [['evb', 46]],
  );
  const body = decodeEvbBody(hex('0102'), 9);
  assert.ok(!body.ok);
  assert.deepEqual([body.error.field, body.error.offset], ['evb', 9]);
});

test('capture files: pcap and pcapng errors name the field and the file offset', () => {
  const frame = hex(ASSOC);
  const pcap = writePcap([
    { time: 1, data: frame },
    { time: 2, data: frame },
  ]);
  const err = (b: Uint8Array): [string, number] => {
    const r = readCapture(b);
    assert.ok(!r.ok, 'expected an error');
    return [r.error.field, r.error.offset];
  };
  assert.deepEqual(err(new Uint8Array(3)), ['pcap', 0]);
  assert.deepEqual(err(pcap.subarray(0, 20)), ['pcap.header', 0]);
  assert.deepEqual(err(hex('00112233', '00'.repeat(20))), ['pcap.magic', 0]);
  // Second record starts at 24 + 16 + 75 = 115.
  assert.deepEqual(err(pcap.subarray(0, 115 + 10)), ['pcap.record', 115]);
  assert.deepEqual(err(pcap.subarray(0, pcap.length - 1)), ['pcap.record', 115]);
  const ok = readCapture(pcap);
  assert.ok(ok.ok);
  assert.equal(ok.value.length, 2);

  const ng = writePcapng([{ time: 1, data: frame }]);
  // SHB 28, IDB 20, EPB at 48 (length 32 + 76).
  assert.deepEqual(err(ng.subarray(0, 48 + 8)), ['pcapng.block', 48]);
  const badBom = ng.slice();
  badBom[8] = 0;
  assert.deepEqual(err(badBom), ['pcapng.byteOrder', 8]);
  const badLen = ng.slice();
  new DataView(badLen.buffer).setUint32(48 + 4, 110, true);
  assert.deepEqual(err(badLen), ['pcapng.blockLength', 52]);
  const badIf = ng.slice();
  new DataView(badIf.buffer).setUint32(48 + 8, 1, true);
  assert.deepEqual(err(badIf), ['pcapng.interfaceId', 56]);
  const badCap = ng.slice();
  new DataView(badCap.buffer).setUint32(48 + 20, 77, true);
  assert.deepEqual(err(badCap), ['pcapng.capturedLength', 68]);
  // An enhanced packet block too short for its own fixed fields (readCapture used to throw).
  const shortEpb = hex(toHex(ng.subarray(0, 48)), '06000000', '0c000000', '0c000000');
  assert.deepEqual(err(shortEpb), ['pcapng.blockLength', 52]);
  const ok2 = readCapture(ng);
  assert.ok(ok2.ok);
  assert.equal(toHex(ok2.value[0]!.data), ASSOC);
});
