/**
 * fast-check arbitraries for the wire codecs. Each TLV arbitrary yields the value to encode and
 * the value the decoder must give back (text forms canonicalised: MACs lower-case with colons,
 * IPv6 per RFC 5952 as computed by the WHATWG URL parser, an independent implementation).
 */
import fc from 'fast-check';
import { ipv4ToString, macToString, toHex } from '../../src/wire/bytes.js';
import type { EvbTlv } from '../../src/wire/evb-tlv.js';
import type { FilterEntry } from '../../src/wire/filter.js';
import type { LldpId, SplitnveProfileTlv } from '../../src/wire/lldp.js';
import { CISCO_OUI, DEFAULT_WIRE_OPTIONS, type WireOptions } from '../../src/wire/options.js';
import type { VdpTlv, VsiTlv, VsiTlvType } from '../../src/wire/vdp.js';

/** fc.record with ordinary objects (deepStrictEqual compares prototypes). */
export function rec<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<T>;
}

export const bytes = (min: number, max = min): fc.Arbitrary<Uint8Array> =>
  fc.uint8Array({ minLength: min, maxLength: max });

/** RFC 5952 text of an IPv6 address, from the WHATWG URL host parser (null when invalid). */
export function urlIpv6(text: string): string | null {
  try {
    return new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
}

export interface Case<T> {
  readonly input: T;
  readonly expected: T;
}

/** MAC text in any accepted spelling, with its canonical form. */
export const macCase: fc.Arbitrary<Case<string>> = fc
  .tuple(bytes(6), fc.boolean(), fc.constantFrom(':', '-'))
  .map(([b, upper, sep]) => {
    const canon = macToString(b);
    const t = canon.replaceAll(':', sep);
    return { input: upper ? t.toUpperCase() : t, expected: canon };
  });

/** 16 octets with long zero runs more likely than uniform bytes would give. */
export const ipv6Bytes: fc.Arbitrary<Uint8Array> = fc
  .array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
    minLength: 8,
    maxLength: 8,
  })
  .map((groups) => {
    const b = new Uint8Array(16);
    groups.forEach((g, i) => {
      b[2 * i] = g >> 8;
      b[2 * i + 1] = g & 0xff;
    });
    return b;
  });

/** IPv6 text in many spellings (fast-check's generator, full form, upper case). */
export const ipv6Case: fc.Arbitrary<Case<string>> = fc
  .oneof(
    fc.ipV6(),
    ipv6Bytes.map((b) => Array.from({ length: 8 }, (_, i) => toHex(b, 2 * i, 2 * i + 2)).join(':')),
    ipv6Bytes.map((b) =>
      Array.from({ length: 8 }, (_, i) => toHex(b, 2 * i, 2 * i + 2).toUpperCase()).join(':'),
    ),
  )
  .map((t) => ({ input: t, expected: urlIpv6(t)! }));

export const ipv4Case: fc.Arbitrary<Case<string>> = bytes(4).map((b) => ({
  input: ipv4ToString(b),
  expected: ipv4ToString(b),
}));

/** Options with other code points than the defaults (still distinct and not 1..4). */
export const wireOptions: fc.Arbitrary<WireOptions> = fc.oneof(
  fc.constant(DEFAULT_WIRE_OPTIONS),
  fc
    .tuple(
      fc.integer({ min: 0, max: 0xffffff }),
      fc.integer({ min: 5, max: 255 }),
      fc.integer({ min: 5, max: 255 }),
    )
    .filter(([oui, a, b]) => a !== b && oui !== CISCO_OUI && oui !== 0x0080c2)
    .map(([splitnveOui, ipv4FilterFormat, ipv6FilterFormat]) => ({
      splitnveOui,
      ipv4FilterFormat,
      ipv6FilterFormat,
    })),
);

const SIZES: Record<string, number> = { 1: 2, 2: 8, 3: 6, 4: 12, ip4: 16, ip6: 28 };

/** One filter entry for the layout of `kind` (a base format 1..4, or an IP format). */
function entryCase(kind: string): fc.Arbitrary<Case<FilterEntry>> {
  const group = kind === '3' || kind === '4' || kind.startsWith('ip');
  const mac = kind === '2' || kind === '4' || kind.startsWith('ip');
  return fc
    .record({
      groupId: fc.integer({ min: 0, max: 0xffffffff }),
      mac: macCase,
      ip4: ipv4Case,
      ip6: ipv6Case,
      ps: fc.integer({ min: 0, max: 1 }),
      pcp: fc.integer({ min: 0, max: 7 }),
      vid: fc.integer({ min: 0, max: 4095 }),
    })
    .map((r) => {
      const build = (m: string | undefined, ip: string | undefined): FilterEntry => ({
        ...(group ? { groupId: r.groupId } : {}),
        ...(mac ? { mac: m } : {}),
        ...(kind === 'ip4' ? { ipv4: ip } : {}),
        ...(kind === 'ip6' ? { ipv6: ip } : {}),
        ps: r.ps,
        pcp: r.pcp,
        vid: r.vid,
      });
      const ip = kind === 'ip4' ? r.ip4 : r.ip6;
      return {
        input: build(r.mac.input, ip.input),
        expected: build(r.mac.expected, ip.expected),
      };
    });
}

/** A VSI TLV of any type, status, id format and filter format (entries fit in 511 octets). */
export function vsiCase(opts: WireOptions, maxEntries = 6): fc.Arbitrary<Case<VsiTlv>> {
  return fc
    .constantFrom('1', '2', '3', '4', 'ip4', 'ip6')
    .chain((kind) =>
      rec({
        kind: fc.constant(kind),
        type: fc.integer({ min: 1, max: 4 }),
        status: fc.integer({ min: 0, max: 255 }),
        typeId: fc.integer({ min: 0, max: 0xffffff }),
        typeVersion: fc.integer({ min: 0, max: 255 }),
        idFormat: fc.integer({ min: 1, max: 5 }),
        id: bytes(16),
        entries: fc.array(entryCase(kind), {
          minLength: 1,
          maxLength: Math.min(maxEntries, Math.floor((511 - 25) / SIZES[kind]!)),
        }),
      }),
    )
    .map((r) => {
      const filterFormat =
        r.kind === 'ip4'
          ? opts.ipv4FilterFormat
          : r.kind === 'ip6'
            ? opts.ipv6FilterFormat
            : Number(r.kind);
      const base = {
        kind: 'vsi' as const,
        type: r.type as VsiTlvType,
        status: r.status,
        typeId: r.typeId,
        typeVersion: r.typeVersion,
        idFormat: r.idFormat,
        id: r.id,
        filterFormat,
      };
      return {
        input: { ...base, entries: r.entries.map((e) => e.input) },
        expected: { ...base, entries: r.entries.map((e) => e.expected) },
      };
    });
}

const same = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<Case<T>> =>
  a.map((v) => ({ input: v, expected: v }));

export const managerIdCase: fc.Arbitrary<Case<VdpTlv>> = same(
  bytes(16).map((managerId): VdpTlv => ({ kind: 'manager-id', managerId })),
);

/** UTF-8 VM names that fit the TLV (the fixed part takes 38 of 511 octets). */
const vmName = fc
  .string({ unit: 'grapheme', maxLength: 40 })
  .filter((s) => new TextEncoder().encode(s).length <= 473);

export const ciscoVmNameCase: fc.Arbitrary<Case<VdpTlv>> = same(
  rec({
    kind: fc.constant('cisco-vm-name' as const),
    vsiIdFormat: fc.integer({ min: 0, max: 255 }),
    vsiId: bytes(16),
    vmIdFormat: fc.integer({ min: 0, max: 255 }),
    vmId: bytes(16),
    vmName,
  }),
);

export const ciscoL3Case: fc.Arbitrary<Case<VdpTlv>> = fc
  .record({
    vsiIdFormat: fc.integer({ min: 0, max: 255 }),
    vsiId: bytes(16),
    v6: fc.boolean(),
    ip4: ipv4Case,
    ip6: ipv6Case,
  })
  .map((r) => {
    const base = { kind: 'cisco-l3-addr' as const, vsiIdFormat: r.vsiIdFormat, vsiId: r.vsiId };
    const ip = r.v6 ? r.ip6 : r.ip4;
    const afi = r.v6 ? 2 : 1;
    return {
      input: { ...base, afi, address: ip.input },
      expected: { ...base, afi, address: ip.expected },
    };
  });

export const authCase: fc.Arbitrary<Case<VdpTlv>> = same(
  rec({
    kind: fc.constant('splitnve-auth' as const),
    keyId: fc.integer({ min: 0, max: 0xffff }),
    sequence: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    hmac: bytes(32),
  }),
);

/** Org TLVs that are neither Cisco's two nor the splitnve authentication TLV. */
export function orgCase(opts: WireOptions): fc.Arbitrary<Case<VdpTlv>> {
  return same(
    fc
      .oneof(
        rec({
          kind: fc.constant('org' as const),
          oui: fc.integer({ min: 0, max: 0xffffff }),
          subtype: fc.integer({ min: 0, max: 255 }),
          data: bytes(0, 80),
        }),
        rec({
          kind: fc.constant('org' as const),
          oui: fc.integer({ min: 0, max: 0xffffff }),
          subtype: fc.constant(undefined),
          data: fc.constant(new Uint8Array(0)),
        }),
      )
      .filter(
        (t) =>
          !(t.oui === CISCO_OUI && (t.subtype === 0xf1 || t.subtype === 0xf2)) &&
          !(t.oui === opts.splitnveOui && t.subtype === 1),
      ),
  );
}

export const unknownCase: fc.Arbitrary<Case<VdpTlv>> = same(
  rec({
    kind: fc.constant('unknown' as const),
    type: fc.integer({ min: 6, max: 126 }),
    value: bytes(0, 60),
  }),
);

/** Any VDP TLV but End. */
export function vdpTlvCase(opts: WireOptions): fc.Arbitrary<Case<VdpTlv>> {
  return fc.oneof(
    managerIdCase,
    vsiCase(opts),
    ciscoVmNameCase,
    ciscoL3Case,
    authCase,
    orgCase(opts),
    unknownCase,
  );
}

export const evbTlv: fc.Arbitrary<EvbTlv> = rec({
  bgid: fc.boolean(),
  rrcap: fc.boolean(),
  rrctr: fc.boolean(),
  sgid: fc.boolean(),
  rrreq: fc.boolean(),
  rrstat: fc.integer({ min: 0, max: 3 }),
  r: fc.integer({ min: 0, max: 7 }),
  rte: fc.integer({ min: 0, max: 31 }),
  evbMode: fc.integer({ min: 0, max: 3 }),
  rolRwd: fc.boolean(),
  rwd: fc.integer({ min: 0, max: 31 }),
  rolRka: fc.boolean(),
  rka: fc.integer({ min: 0, max: 31 }),
});

export const splitnveProfile: fc.Arbitrary<SplitnveProfileTlv> = rec({
  version: fc.integer({ min: 0, max: 255 }),
  auth: fc.boolean(),
  ipFilters: fc.boolean(),
  deactivate: fc.boolean(),
});

/** The decoder's text for id octets of an LLDP id TLV (WIRE.md: MAC, printable text, or hex). */
function idText(macSubtype: boolean, b: Uint8Array): string {
  if (macSubtype && b.length === 6) return macToString(b);
  if (b.every((c) => c >= 0x20 && c < 0x7f)) return String.fromCharCode(...b);
  return toHex(b);
}

/** An LLDP chassis (tlvType 1) or port (2) id: given as hex, as text, or as MAC text. */
export function lldpIdCase(tlvType: 1 | 2): fc.Arbitrary<Case<LldpId>> {
  const macSub = tlvType === 1 ? 4 : 3;
  const printable = fc
    .string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 40 })
    .filter((s) => /^[\x20-\x7e]+$/.test(s));
  return fc.oneof(
    // Raw octets with any subtype.
    fc
      .record({ subtype: fc.integer({ min: 0, max: 255 }), id: bytes(1, 255) })
      .map(({ subtype, id }) => {
        const hex = toHex(id);
        return {
          input: { subtype, id: 'ignored when hex is given', hex },
          expected: { subtype, id: idText(subtype === macSub, id), hex },
        };
      }),
    // A MAC id given as text.
    macCase.map((m) => {
      const hex = m.expected.replaceAll(':', '');
      return {
        input: { subtype: macSub, id: m.input },
        expected: { subtype: macSub, id: m.expected, hex },
      };
    }),
    // An interface name or local text id.
    rec({ subtype: fc.constantFrom(5, 7, 6, 1), id: printable }).map(({ subtype, id }) => {
      const hex = toHex(new TextEncoder().encode(id));
      return { input: { subtype, id }, expected: { subtype, id, hex } };
    }),
  );
}
