/** decode ∘ encode = identity (up to canonical text forms) for every wire structure. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  fromHex,
  ipv4ToString,
  ipv6ToString,
  macToString,
  parseIpv4,
  parseIpv6,
  parseUuid,
  toHex,
  uuidToString,
} from '../../src/wire/bytes.js';
import { decodeEcp, encodeEcp } from '../../src/wire/ecp.js';
import { decodeEthernet, encodeEthernet, MIN_FRAME } from '../../src/wire/ethernet.js';
import { decodeEvbBody, encodeEvbBody, evbTimeUs } from '../../src/wire/evb-tlv.js';
import { decodeFrame } from '../../src/wire/frame.js';
import { frameJson } from '../../src/wire/json.js';
import { decodeLldp, encodeLldp, type LldpTlv } from '../../src/wire/lldp.js';
import { DEFAULT_WIRE_OPTIONS, ouiToString } from '../../src/wire/options.js';
import {
  decodeStatus,
  isResponse,
  reasonName,
  requestStatus,
  responseReason,
  responseStatus,
} from '../../src/wire/status.js';
import {
  decodeVdp,
  encodeVdp,
  managerIdFromString,
  managerIdToString,
  vsiIdToString,
  vsiKey,
  type VdpTlv,
} from '../../src/wire/vdp.js';
import {
  authCase,
  bytes,
  ciscoL3Case,
  ciscoVmNameCase,
  evbTlv,
  ipv6Bytes,
  ipv6Case,
  lldpIdCase,
  macCase,
  managerIdCase,
  orgCase,
  rec,
  splitnveProfile,
  unknownCase,
  urlIpv6,
  vdpTlvCase,
  vsiCase,
  wireOptions,
  type Case,
} from './arb.js';

const RUNS = 500;
fc.configureGlobal({ includeErrorInReport: true });

/** encodeVdp then decodeVdp; the TLVs come back in order, then End, at the right offsets. */
function vdpRoundTrip(cases: readonly Case<VdpTlv>[], opts = DEFAULT_WIRE_OPTIONS): void {
  const wire = encodeVdp(
    cases.map((c) => c.input),
    opts,
  );
  const d = decodeVdp(wire, 0, opts);
  assert.ok(d.ok, d.ok ? '' : d.error.message);
  const items = d.value.items;
  assert.deepEqual(
    items.map((i) => i.tlv),
    [...cases.map((c) => c.expected), { kind: 'end' }],
  );
  assert.equal(d.value.end, true);
  let off = 0;
  for (const it of items) {
    assert.equal(it.offset, off);
    assert.equal(it.type, (wire[off]! >> 1) & 0x7f);
    off += it.length;
  }
  assert.equal(off, wire.length);
}

test('VSI TLVs: every type, status, VSI id format and filter format (1..4, IPv4, IPv6)', () => {
  fc.assert(
    fc.property(
      wireOptions.chain((o) => fc.tuple(fc.constant(o), vsiCase(o, 12))),
      ([opts, c]) => vdpRoundTrip([c], opts),
    ),
    { numRuns: 2000 },
  );
});

test('every filter format is exercised with the default and other code points', () => {
  const seen = new Set<string>();
  fc.assert(
    fc.property(
      wireOptions.chain((o) => fc.tuple(fc.constant(o), vsiCase(o))),
      ([opts, c]) => {
        const f = c.input.filterFormat;
        const name =
          f === opts.ipv4FilterFormat ? 'ipv4' : f === opts.ipv6FilterFormat ? 'ipv6' : String(f);
        seen.add(`${name}/${c.input.idFormat}`);
        vdpRoundTrip([c], opts);
      },
    ),
    { numRuns: 1500 },
  );
  // 6 filter formats x 5 VSI id formats.
  assert.equal(seen.size, 30, [...seen].sort().join(' '));
});

test('Manager ID, Cisco VM name and L3 address, splitnve auth, generic org, unknown TLVs', () => {
  for (const arb of [managerIdCase, ciscoVmNameCase, ciscoL3Case, authCase, unknownCase]) {
    fc.assert(
      fc.property(arb, (c) => vdpRoundTrip([c])),
      { numRuns: RUNS },
    );
  }
  fc.assert(
    fc.property(
      wireOptions.chain((o) => fc.tuple(fc.constant(o), orgCase(o), authCase)),
      ([opts, org, auth]) => vdpRoundTrip([org, auth], opts),
    ),
    { numRuns: RUNS },
  );
});

test('whole VDP PDUs of mixed TLVs, inside ECP and Ethernet, through decodeFrame', () => {
  fc.assert(
    fc.property(
      wireOptions.chain((o) =>
        fc.tuple(
          fc.constant(o),
          fc.array(vdpTlvCase(o), { maxLength: 6 }),
          fc.integer({ min: 0, max: 0xffff }),
          macCase,
          fc.option(rec({ pcp: fc.nat(7), dei: fc.nat(1), vid: fc.nat(4095) })),
        ),
      ),
      ([opts, cases, sequence, src, vlan]) => {
        vdpRoundTrip(cases, opts);
        const vdp = encodeVdp(
          cases.map((c) => c.input),
          opts,
        );
        fc.pre(vdp.length <= 1494);
        const ecp = { version: 1, op: 0, subtype: 1, sequence };
        const header = {
          destination: '01:80:c2:00:00:00',
          source: src.input,
          ethertype: 0x8940,
          ...(vlan ? { vlan } : {}),
        };
        const frame = encodeEthernet(header, encodeEcp(ecp, vdp));
        const d = decodeFrame(frame, opts);
        assert.equal(d.error, undefined);
        assert.deepEqual(d.ethernet, { ...header, source: src.expected });
        assert.deepEqual(d.ecp, ecp);
        const items = d.vdp!.items.map((i) => i.tlv);
        assert.deepEqual(items, [...cases.map((c) => c.expected), { kind: 'end' }]);
        // The JSON form is plain JSON (bigints made numbers or strings).
        const j = frameJson(d, opts);
        assert.deepEqual(JSON.parse(JSON.stringify(j)), j);
      },
    ),
    { numRuns: 1500 },
  );
});

test('LLDPDUs with EVB and splitnve profile TLVs, and other TLVs kept', () => {
  const extra = fc.oneof(
    rec({ type: fc.integer({ min: 4, max: 126 }), value: bytes(0, 40) }),
    fc
      .record({ oui: fc.integer({ min: 0, max: 0xffffff }), sub: fc.nat(255), data: bytes(0, 40) })
      .map(({ oui, sub, data }) => ({
        type: 127,
        value: fromHex(
          oui.toString(16).padStart(6, '0') + sub.toString(16).padStart(2, '0') + toHex(data),
        )!,
      })),
  );
  fc.assert(
    fc.property(
      wireOptions,
      lldpIdCase(1),
      lldpIdCase(2),
      fc.integer({ min: 0, max: 0xffff }),
      fc.option(evbTlv),
      fc.option(splitnveProfile),
      fc.array(extra, { maxLength: 4 }),
      (opts, chassis, port, ttl, evb, profile, extras) => {
        // An extra org TLV must not look like the EVB or profile TLV.
        const plain = extras.filter(
          (x) =>
            x.type !== 127 ||
            !(
              (x.value[0] === 0x00 &&
                x.value[1] === 0x80 &&
                x.value[2] === 0xc2 &&
                x.value[3] === 0x0d) ||
              (((x.value[0]! << 16) | (x.value[1]! << 8) | x.value[2]!) === opts.splitnveOui &&
                x.value[3] === 1 &&
                x.value.length >= 6)
            ),
        );
        const build = {
          chassisId: chassis.input,
          portId: port.input,
          ttl,
          ...(evb ? { evb } : {}),
          ...(profile ? { splitnveProfile: profile } : {}),
          extra: plain,
        };
        const wire = encodeLldp(build, opts);
        const d = decodeLldp(wire, 0, opts);
        assert.ok(d.ok, d.ok ? '' : d.error.message);
        const tlvs: LldpTlv[] = [
          { type: 1, name: 'chassisId', value: chassis.expected },
          { type: 2, name: 'portId', value: port.expected },
          { type: 3, name: 'ttl', value: ttl },
          ...(evb ? [{ type: 127 as const, name: 'evb' as const, value: evb }] : []),
          ...(profile
            ? [{ type: 127 as const, name: 'splitnveProfile' as const, value: profile }]
            : []),
          ...plain.map((x): LldpTlv => {
            if (x.type === 127 && x.value.length >= 4) {
              return {
                type: 127,
                name: 'org',
                oui: ouiToString((x.value[0]! << 16) | (x.value[1]! << 8) | x.value[2]!),
                subtype: x.value[3]!,
                data: toHex(x.value.subarray(4)),
              };
            }
            return { type: x.type, name: 'unknown', data: toHex(x.value) };
          }),
          { type: 0, name: 'end' },
        ];
        assert.deepEqual(d.value, {
          chassisId: chassis.expected,
          portId: port.expected,
          ttl,
          tlvs,
          warnings: [],
          ...(evb ? { evb } : {}),
          ...(profile ? { splitnveProfile: profile } : {}),
        });
        // And as a frame (padded to 60).
        const frame = encodeEthernet(
          { destination: '01:80:c2:00:00:00', source: '02:00:00:00:aa:01', ethertype: 0x88cc },
          wire,
        );
        assert.deepEqual(decodeFrame(frame, opts).lldp, d.value);
      },
    ),
    { numRuns: 1500 },
  );
});

test('EVB TLV body: encode∘decode and decode∘encode (reserved bits dropped)', () => {
  fc.assert(
    fc.property(evbTlv, (t) => {
      const d = decodeEvbBody(encodeEvbBody(t));
      assert.ok(d.ok);
      assert.deepEqual(d.value, t);
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(bytes(5), (b) => {
      const d = decodeEvbBody(b);
      assert.ok(d.ok);
      const masked = [b[0]! & 0x07, b[1]! & 0x0f, b[2]!, b[3]!, b[4]! & 0x3f];
      assert.deepEqual([...encodeEvbBody(d.value)], masked);
    }),
    { numRuns: RUNS },
  );
  assert.equal(evbTimeUs(14), 163840);
  assert.equal(evbTimeUs(20), 10485760);
});

test('ECP header: every version, op, subtype and sequence', () => {
  fc.assert(
    fc.property(
      rec({
        version: fc.nat(15),
        op: fc.nat(3),
        subtype: fc.nat(0x3ff),
        sequence: fc.nat(0xffff),
      }),
      fc.oneof(bytes(0, 64), bytes(1494)),
      (h, ulpdu) => {
        const wire = encodeEcp(h, ulpdu);
        assert.equal(wire.length, 4 + ulpdu.length);
        const d = decodeEcp(wire);
        assert.ok(d.ok);
        assert.deepEqual(d.value, { header: h, ulpdu });
      },
    ),
    { numRuns: RUNS },
  );
});

test('Ethernet header with and without an 802.1Q tag; short frames zero-padded to 60', () => {
  fc.assert(
    fc.property(
      macCase,
      macCase,
      fc.integer({ min: 0x600, max: 0xffff }),
      fc.option(rec({ pcp: fc.nat(7), dei: fc.nat(1), vid: fc.nat(4095) })),
      fc.oneof(bytes(0, 80), bytes(1400, 1500)),
      (dst, src, ethertype, vlan, payload) => {
        fc.pre(vlan !== null || ethertype !== 0x8100);
        const h = {
          destination: dst.input,
          source: src.input,
          ethertype,
          ...(vlan ? { vlan } : {}),
        };
        const frame = encodeEthernet(h, payload);
        const hdr = vlan ? 18 : 14;
        assert.equal(frame.length, Math.max(MIN_FRAME, hdr + payload.length));
        const d = decodeEthernet(frame);
        assert.ok(d.ok);
        assert.deepEqual(d.value.header, { ...h, destination: dst.expected, source: src.expected });
        assert.equal(d.value.payloadOffset, hdr);
        const padded = new Uint8Array(Math.max(payload.length, MIN_FRAME - hdr));
        padded.set(payload);
        assert.deepEqual(d.value.payload, padded);
      },
    ),
    { numRuns: RUNS },
  );
});

test('status octet helpers', () => {
  for (let raw = 0; raw < 256; raw++) {
    const s = decodeStatus(raw);
    assert.equal(s.raw, raw);
    assert.equal(s.response, (raw & 0x40) !== 0);
    assert.equal(isResponse(raw), s.response);
    assert.equal(responseReason(raw), raw & 0x0f);
    if (s.response) {
      assert.equal(responseStatus(s.reason, { keep: s.keep, hard: s.hard }), raw & 0x7f);
    } else {
      assert.equal(requestStatus({ m: s.m, s: s.s }), raw & 0x30);
    }
  }
  fc.assert(
    fc.property(fc.nat(15), fc.boolean(), fc.boolean(), (reason, keep, hard) => {
      const raw = responseStatus(reason, { keep, hard });
      assert.deepEqual(decodeStatus(raw), { raw, response: true, keep, hard, reason });
    }),
  );
  fc.assert(
    fc.property(fc.boolean(), fc.boolean(), (m, s) => {
      const raw = requestStatus({ m, s });
      assert.deepEqual(decodeStatus(raw), { raw, response: false, m, s });
    }),
  );
  assert.equal(responseStatus(0x13), 0x43, 'reason is masked to the low nibble');
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map(reasonName), [
    'success',
    'invalid format',
    'insufficient resources',
    'VSI manager unreachable',
    'other failure',
    'invalid VID, GroupID or MAC',
    'reserved reason 6',
  ]);
});

test('text forms: MAC, UUID, IPv4, IPv6 (RFC 5952, checked against the WHATWG URL parser)', () => {
  fc.assert(
    fc.property(bytes(6), (b) => {
      const t = macToString(b);
      assert.match(t, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      assert.deepEqual(fromHex(t), b);
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.uuid(), (u) => {
      const b = parseUuid(u)!;
      assert.equal(uuidToString(b), u.toLowerCase());
      assert.deepEqual(parseUuid(u.replaceAll('-', '').toUpperCase()), b);
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.ipV4(), (t) => {
      const b = parseIpv4(t);
      assert.ok(b);
      assert.equal(ipv4ToString(b), t);
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(ipv6Bytes, (b) => {
      const t = ipv6ToString(b);
      assert.equal(t, urlIpv6(t), 'canonical');
      assert.deepEqual(parseIpv6(t), b);
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(ipv6Case, (c) => {
      const b = parseIpv6(c.input);
      assert.ok(b, c.input);
      assert.equal(ipv6ToString(b), c.expected);
    }),
    { numRuns: 2000 },
  );
  // Any string over the IPv6 alphabet: we accept exactly what the URL parser accepts, and read
  // it the same. (Only difference: dotted parts with leading zeros, which we read as decimal.)
  const piece = fc.oneof(
    fc.constantFrom(':', '::', '.', '0', '1', 'ff', 'ffff', '255', '1.2.3.4', '00'),
    fc.nat(0xffff).map((n) => n.toString(16)),
  );
  fc.assert(
    fc.property(
      fc.array(piece, { maxLength: 14 }).map((a) => a.join('')),
      (t) => {
        const last = t.split(':').pop() ?? '';
        fc.pre(!(last.includes('.') && /(^|\.)0\d/.test(last)));
        const ours = parseIpv6(t);
        assert.equal(ours ? ipv6ToString(ours) : null, urlIpv6(t), JSON.stringify(t));
      },
    ),
    { numRuns: 5000 },
  );
  for (const bad of ['1.2.3.4::', '1.2.3.4::1', '::1.2.3', '1::2::3', ':1::', '12345::', '']) {
    assert.equal(parseIpv6(bad), null, bad);
  }
});

test('Manager ID and VSI id text helpers', () => {
  fc.assert(
    fc.property(bytes(16), (b) => {
      assert.deepEqual(managerIdFromString(managerIdToString(b)), b);
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(
      fc
        .string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 16 })
        .filter((s) => /^[\x20-\x7e]+$/.test(s)),
      (name) => {
        const b = managerIdFromString(name);
        // Trailing spaces are kept; only NUL padding is dropped.
        assert.equal(managerIdToString(b), name);
      },
    ),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 255 }), bytes(16), (format, id) => {
      const t = vsiIdToString(format, id);
      if (format === 5) assert.deepEqual(parseUuid(t), id);
      else if (format === 3) assert.equal(t, macToString(id));
      else if (format === 1) assert.equal(t, ipv4ToString(id));
      else if (format === 2) assert.equal(t, urlIpv6(ipv6ToString(id)));
      else assert.equal(t, toHex(id));
      assert.equal(vsiKey(format, id), `${format}:${toHex(id)}`);
    }),
    { numRuns: RUNS },
  );
});
