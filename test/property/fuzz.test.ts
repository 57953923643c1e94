/**
 * Decoders never throw: random bytes, and lldpad vector frames (plus a few of our own with
 * every TLV kind) mutated by bit flips, truncation, extension, inserted/deleted octets and
 * corrupted TLV length fields. Each result is also checked for sanity (error offsets inside
 * the input, TLV items inside the payload, JSON printable).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { readU16 } from '../../src/wire/bytes.js';
import { encodeEcp } from '../../src/wire/ecp.js';
import { encodeEthernet } from '../../src/wire/ethernet.js';
import type { DecodeError } from '../../src/wire/errors.js';
import { decodeFrame } from '../../src/wire/frame.js';
import { frameJson } from '../../src/wire/json.js';
import { decodeLldp, encodeLldp } from '../../src/wire/lldp.js';
import { DEFAULT_WIRE_OPTIONS, type WireOptions } from '../../src/wire/options.js';
import { readCapture, writePcap } from '../../src/wire/pcap.js';
import { decodeVdp, encodeVdp, managerIdFromString, type VdpTlv } from '../../src/wire/vdp.js';
import { loadVectors, writePcapng } from '../harness/wire-vectors.js';
import { wireOptions } from './arb.js';

const MUTATED_FRAMES = 20_000;
fc.configureGlobal({ includeErrorInReport: true });

const vectors = loadVectors();
const vectorFrames = vectors.flatMap((v) => {
  const c = readCapture(v.pcap);
  assert.ok(c.ok);
  return c.value.map((r) => r.data);
});

/** Frames of ours that carry what lldpad never sends: tags, IP filters, Cisco, auth, profile. */
function ownFrames(): Uint8Array[] {
  const id = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
  const tlvs: VdpTlv[] = [
    { kind: 'manager-id', managerId: managerIdFromString('nvemgr1') },
    {
      kind: 'vsi',
      type: 3,
      status: 0x10,
      typeId: 42,
      typeVersion: 1,
      idFormat: 5,
      id,
      filterFormat: 0xf1,
      entries: [
        { groupId: 5001, mac: '02:00:00:00:00:01', ipv6: '2001:db8::1', ps: 1, pcp: 5, vid: 100 },
        { groupId: 5001, mac: '00:00:00:00:00:00', ipv6: '::', ps: 0, pcp: 0, vid: 0 },
      ],
    },
    {
      kind: 'cisco-vm-name',
      vsiIdFormat: 5,
      vsiId: id,
      vmIdFormat: 5,
      vmId: id,
      vmName: 'web-1',
    },
    { kind: 'cisco-l3-addr', vsiIdFormat: 5, vsiId: id, afi: 1, address: '192.0.2.7' },
    {
      kind: 'vsi',
      type: 1,
      status: 0,
      typeId: 7,
      typeVersion: 2,
      idFormat: 3,
      id,
      filterFormat: 0xf0,
      entries: [{ groupId: 1, mac: '02:00:00:00:00:02', ipv4: '10.0.0.1', ps: 0, pcp: 0, vid: 7 }],
    },
    { kind: 'org', oui: 0x123456, subtype: 9, data: Uint8Array.of(1, 2, 3) },
    { kind: 'splitnve-auth', keyId: 3, sequence: 2n ** 63n, hmac: new Uint8Array(32).fill(7) },
  ];
  const eth = { destination: '01:80:c2:00:00:00', source: '02:00:00:00:aa:01' };
  const ecp = encodeEcp({ version: 1, op: 0, subtype: 1, sequence: 77 }, encodeVdp(tlvs));
  const lldp = encodeLldp({
    chassisId: { subtype: 4, id: '02:00:00:00:aa:01' },
    portId: { subtype: 5, id: 'eth0' },
    ttl: 120,
    evb: {
      bgid: true,
      rrcap: true,
      rrctr: true,
      sgid: true,
      rrreq: true,
      rrstat: 1,
      r: 3,
      rte: 14,
      evbMode: 2,
      rolRwd: true,
      rwd: 20,
      rolRka: true,
      rka: 20,
    },
    splitnveProfile: { version: 1, auth: true, ipFilters: true, deactivate: true },
    extra: [{ type: 8, value: Uint8Array.of(1, 2) }],
  });
  return [
    encodeEthernet({ ...eth, ethertype: 0x8940 }, ecp),
    encodeEthernet({ ...eth, ethertype: 0x8940, vlan: { pcp: 7, dei: 1, vid: 4095 } }, ecp),
    encodeEthernet({ ...eth, ethertype: 0x88cc }, lldp),
    encodeEthernet({ ...eth, ethertype: 0x88cc, vlan: { pcp: 0, dei: 0, vid: 5 } }, lldp),
  ];
}

const seeds = [...vectorFrames, ...ownFrames()];

/** Offsets of the TLV headers of a frame (VDP or LLDP), by walking the length fields. */
function tlvHeaders(f: Uint8Array): number[] {
  let off = 14;
  let type = readU16(f, 12);
  if (type === 0x8100) {
    type = readU16(f, 16);
    off = 18;
  }
  if (type === 0x8940) off += 4;
  else if (type !== 0x88cc) return [];
  const out: number[] = [];
  while (off + 2 <= f.length) {
    const h = readU16(f, off);
    if (h === 0) break;
    out.push(off);
    off += 2 + (h & 0x1ff);
  }
  return out;
}
const seedHeaders = seeds.map(tlvHeaders);

type Op =
  | { op: 'flip'; pos: number; bit: number }
  | { op: 'set'; pos: number; value: number }
  | { op: 'truncate'; len: number }
  | { op: 'extend'; bytes: Uint8Array }
  | { op: 'insert'; pos: number; bytes: Uint8Array }
  | { op: 'delete'; pos: number; n: number }
  | { op: 'length'; which: number; value: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('flip' as const), pos: fc.nat(), bit: fc.nat(7) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('set' as const), pos: fc.nat(), value: fc.nat(255) }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('truncate' as const), len: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('extend' as const),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('insert' as const),
      pos: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('delete' as const),
      pos: fc.nat(),
      n: fc.integer({ min: 1, max: 8 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('length' as const),
      which: fc.nat(),
      value: fc.oneof(fc.nat(511), fc.constantFrom(0, 1, 2, 15, 16, 17, 24, 25, 26, 511)),
    }),
  },
);

function mutate(seed: number, ops: readonly Op[]): Uint8Array {
  let b = seeds[seed]!.slice();
  const headers = seedHeaders[seed]!;
  for (const o of ops) {
    const at = (p: number): number => (b.length === 0 ? 0 : p % b.length);
    switch (o.op) {
      case 'flip':
        if (b.length > 0) b[at(o.pos)]! ^= 1 << o.bit;
        break;
      case 'set':
        if (b.length > 0) b[at(o.pos)] = o.value;
        break;
      case 'truncate':
        b = b.slice(0, o.len % (b.length + 1));
        break;
      case 'extend': {
        const n = new Uint8Array(b.length + o.bytes.length);
        n.set(b);
        n.set(o.bytes, b.length);
        b = n;
        break;
      }
      case 'insert': {
        const p = o.pos % (b.length + 1);
        b = Uint8Array.from([...b.subarray(0, p), ...o.bytes, ...b.subarray(p)]);
        break;
      }
      case 'delete': {
        const p = at(o.pos);
        b = Uint8Array.from([...b.subarray(0, p), ...b.subarray(p + o.n)]);
        break;
      }
      case 'length': {
        // Rewrite the 9-bit length of one of the seed's TLV headers (keeping its type bits).
        if (headers.length === 0) break;
        const p = headers[o.which % headers.length]!;
        if (p + 1 >= b.length) break;
        b[p] = (b[p]! & 0xfe) | (o.value >> 8);
        b[p + 1] = o.value & 0xff;
        break;
      }
    }
  }
  return b;
}

function checkError(e: DecodeError | undefined, len: number, what: string): void {
  if (!e) return;
  assert.equal(typeof e.field, 'string', what);
  assert.ok(e.field.length > 0, what);
  assert.ok(e.message.length > 0, what);
  assert.ok(Number.isInteger(e.offset) && e.offset >= 0 && e.offset <= len, `${what}: ${e.offset}`);
}

/** decodeFrame and the lower decoders on `b`: no throw, sane results. */
function decodeAll(b: Uint8Array, opts: WireOptions): void {
  const d = decodeFrame(b, opts);
  assert.equal(d.length, b.length);
  checkError(d.error, b.length, 'frame');
  if (d.vdp) {
    const base = d.ethernet!.vlan ? 22 : 18;
    let prev = -1;
    for (const it of d.vdp.items) {
      assert.ok(it.offset > prev);
      prev = it.offset;
      assert.ok(base + it.offset + Math.min(it.length, 2) <= b.length);
      if (it.tlv.kind !== 'end') assert.ok(base + it.offset + it.length <= b.length);
      if (it.tlv.kind === 'malformed') checkError(it.tlv.error, b.length, 'malformed TLV');
    }
  }
  for (const w of d.lldp?.warnings ?? []) checkError(w, b.length, 'warning');
  JSON.stringify(frameJson(d, opts));
  // The lower decoders, on whatever follows an untagged Ethernet (+ ECP) header.
  if (b.length >= 18) {
    const v = decodeVdp(b.subarray(18), 18, opts);
    if (!v.ok) checkError(v.error, b.length, 'decodeVdp');
  }
  if (b.length >= 14) {
    const l = decodeLldp(b.subarray(14), 14, opts);
    if (!l.ok) checkError(l.error, b.length, 'decodeLldp');
  }
}

test(`${MUTATED_FRAMES} mutated vector frames: decodeFrame, decodeVdp, decodeLldp never throw`, (t) => {
  assert.equal(vectorFrames.length, 61);
  const outcome = { ok: 0, error: 0, malformedTlv: 0, warning: 0 };
  fc.assert(
    fc.property(
      fc.nat(seeds.length - 1),
      fc.array(opArb, { minLength: 1, maxLength: 4 }),
      fc.oneof({ weight: 4, arbitrary: fc.constant(DEFAULT_WIRE_OPTIONS) }, wireOptions),
      (seed, ops, opts) => {
        const b = mutate(seed, ops);
        decodeAll(b, opts);
        const d = decodeFrame(b, opts);
        if (d.error) outcome.error++;
        else outcome.ok++;
        if (d.vdp?.items.some((i) => i.tlv.kind === 'malformed')) outcome.malformedTlv++;
        if ((d.lldp?.warnings.length ?? 0) > 0) outcome.warning++;
      },
    ),
    { numRuns: MUTATED_FRAMES },
  );
  t.diagnostic(JSON.stringify(outcome));
  // The mutations reach every outcome, so the error paths really run.
  for (const [k, n] of Object.entries(outcome)) assert.ok(n > 20, `${k}: ${n}`);
});

test('random bytes, bare and behind valid Ethernet/ECP/LLDP headers, never throw', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), wireOptions, (b, opts) => decodeAll(b, opts)),
    { numRuns: 5000 },
  );
  const prefix = fc.constantFrom(
    '0180c200000002000000aa0189401001abcd',
    '0180c200000002000000aa01810000648940100100ff',
    '0180c200000002000000aa0188cc',
    '0180c200000002000000aa0188cc02070402000000aa0104070302000000aa0106020078',
    '0180c200000002000000aa0189401001abcd0a106e76656d677231000000000000000000',
  );
  fc.assert(
    fc.property(prefix, fc.uint8Array({ maxLength: 300 }), wireOptions, (p, tail, opts) => {
      const head = Uint8Array.from(p.match(/../g)!.map((x) => parseInt(x, 16)));
      const b = new Uint8Array(head.length + tail.length);
      b.set(head);
      b.set(tail, head.length);
      decodeAll(b, opts);
    }),
    { numRuns: 10_000 },
  );
});

test('readCapture never throws on mutated pcap/pcapng files or random bytes', () => {
  const records = vectorFrames.slice(0, 12).map((data, i) => ({ time: 1e9 + i / 8, data }));
  const files = [
    ...vectors.map((v) => v.pcap),
    writePcap(records),
    writePcapng(records),
    writePcapng(records, { littleEndian: false, tsresol: 9 }),
    writePcapng(records, { simple: true }),
  ];
  // Where each file's blocks (pcapng) or records (pcap) start, and its byte order.
  const isPcapng = files.map((f) => f[0] === 0x0a && f[1] === 0x0d);
  const units = files.map((f, i) => {
    const dv = new DataView(f.buffer, f.byteOffset, f.byteLength);
    if (isPcapng[i]) {
      const le = dv.getUint32(8, true) === 0x1a2b3c4d;
      const at: number[] = [];
      for (let off = 0; off + 8 <= f.length; off += dv.getUint32(off + 4, le)) at.push(off);
      return { at, le };
    }
    const le = dv.getUint32(0, true) === 0xa1b2c3d4;
    const at: number[] = [];
    for (let off = 24; off + 16 <= f.length; off += 16 + dv.getUint32(off + 8, le)) at.push(off);
    return { at, le };
  });
  assert.ok(units.every((u) => u.at.length >= 3));
  const fileOps = fc.array(
    fc.oneof(
      // A block's (pcapng) or record's (pcap) length field set small, the file cut after it.
      fc.record({
        kind: fc.constant('block' as const),
        which: fc.nat(),
        value: fc.constantFrom(0, 4, 8, 12, 16, 20, 24, 28, 32, 36),
        cut: fc.boolean(),
      }),
      fc.record({ kind: fc.constant('flip' as const), pos: fc.nat(), bit: fc.nat(7) }),
      fc.record({ kind: fc.constant('truncate' as const), len: fc.nat() }),
      fc.record({ kind: fc.constant('u32' as const), pos: fc.nat(), value: fc.nat(0xffffffff) }),
      fc.record({
        kind: fc.constant('small' as const),
        pos: fc.nat(),
        value: fc.constantFrom(0, 4, 8, 12, 16, 20, 24, 28, 32, 0xffffffff),
      }),
    ),
    { minLength: 1, maxLength: 3 },
  );
  fc.assert(
    fc.property(fc.nat(files.length - 1), fileOps, (i, ops) => {
      let b = files[i]!.slice();
      for (const o of ops) {
        if (b.length === 0) break;
        if (o.kind === 'block') {
          const { at, le } = units[i]!;
          const start = at[o.which % at.length]!;
          const field = isPcapng[i] ? start + 4 : start + 8;
          if (field + 4 > b.length) continue;
          new DataView(b.buffer, b.byteOffset).setUint32(field, o.value, le);
          if (o.cut) b = b.slice(0, Math.min(b.length, start + o.value));
        } else if (o.kind === 'flip') b[o.pos % b.length]! ^= 1 << o.bit;
        else if (o.kind === 'truncate') b = b.slice(0, o.len % (b.length + 1));
        else {
          // Overwrite a 32-bit word on a 4-octet boundary: block/record lengths live there.
          const p = (o.pos % Math.max(1, b.length >> 2)) << 2;
          if (p + 4 <= b.length) new DataView(b.buffer).setUint32(p, o.value, (o.pos & 1) === 0);
        }
      }
      const r = readCapture(b);
      if (r.ok) {
        for (const rec of r.value) assert.ok(rec.data.length <= b.length);
      } else {
        checkError(r.error, b.length, 'readCapture');
      }
    }),
    { numRuns: 10_000 },
  );
  const magic = fc.constantFrom(
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0x0a, 0x0d, 0x0d, 0x0a],
    [],
  );
  fc.assert(
    fc.property(magic, fc.uint8Array({ maxLength: 200 }), (m, tail) => {
      const b = Uint8Array.from([...m, ...tail]);
      const r = readCapture(b);
      if (!r.ok) checkError(r.error, b.length, 'readCapture');
    }),
    { numRuns: 5000 },
  );
});
