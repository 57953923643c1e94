/**
 * LLDPDU codec (ethertype 0x88CC): chassis id, port id, TTL, end, the EVB TLV, the splitnve
 * profile TLV, and any other TLV kept as raw.
 */
import {
  ByteWriter,
  checkInt,
  fromHex,
  isMac,
  macToString,
  readU16,
  readU24,
  toHex,
} from './bytes.js';
import { EncodeError, fail, ok, type Decoded, type DecodeError } from './errors.js';
import { decodeEvbBody, encodeEvbBody, EVB_BODY_LEN, EVB_SUBTYPE, type EvbTlv } from './evb-tlv.js';
import { DEFAULT_WIRE_OPTIONS, IEEE_8021_OUI, ouiToString, type WireOptions } from './options.js';

export const LLDP_TLV_END = 0;
export const LLDP_TLV_CHASSIS_ID = 1;
export const LLDP_TLV_PORT_ID = 2;
export const LLDP_TLV_TTL = 3;
export const LLDP_TLV_ORG = 127;

export const CHASSIS_SUBTYPE_MAC = 4;
export const PORT_SUBTYPE_MAC = 3;
export const PORT_SUBTYPE_IFNAME = 5;
export const PORT_SUBTYPE_LOCAL = 7;

/** splitnve profile announcement: org TLV under the splitnve identifier, sub-type 0x01. */
export const SPLITNVE_LLDP_PROFILE_SUBTYPE = 0x01;
export const SPLITNVE_PROFILE_VERSION = 1;

/** An id TLV (chassis or port): MAC subtypes are shown as MAC text, others as text or hex. */
export interface LldpId {
  readonly subtype: number;
  /** MAC text for MAC subtypes; the text for printable ids; otherwise the hex of the id. */
  readonly id: string;
  /** The id octets in hex (always present in decoded TLVs; used for encoding when given). */
  readonly hex?: string;
}

export interface SplitnveProfileTlv {
  readonly version: number;
  readonly auth: boolean;
  readonly ipFilters: boolean;
  readonly deactivate: boolean;
}

export type LldpTlv =
  | { readonly type: 1; readonly name: 'chassisId'; readonly value: LldpId }
  | { readonly type: 2; readonly name: 'portId'; readonly value: LldpId }
  | { readonly type: 3; readonly name: 'ttl'; readonly value: number }
  | { readonly type: 0; readonly name: 'end' }
  | { readonly type: 127; readonly name: 'evb'; readonly value: EvbTlv }
  | { readonly type: 127; readonly name: 'splitnveProfile'; readonly value: SplitnveProfileTlv }
  | {
      readonly type: 127;
      readonly name: 'org';
      readonly oui: string;
      readonly subtype: number;
      readonly data: string;
    }
  | { readonly type: number; readonly name: 'unknown'; readonly data: string };

export interface LldpPdu {
  readonly chassisId: LldpId;
  readonly portId: LldpId;
  readonly ttl: number;
  readonly evb?: EvbTlv;
  readonly splitnveProfile?: SplitnveProfileTlv;
  /** Every TLV in order, End included when present. */
  readonly tlvs: readonly LldpTlv[];
  /** Non-fatal problems (e.g. a malformed optional TLV that was skipped). */
  readonly warnings: readonly DecodeError[];
}

function isMacSubtype(tlvType: number, subtype: number): boolean {
  return (
    (tlvType === LLDP_TLV_CHASSIS_ID && subtype === CHASSIS_SUBTYPE_MAC) ||
    (tlvType === LLDP_TLV_PORT_ID && subtype === PORT_SUBTYPE_MAC)
  );
}

function decodeId(tlvType: number, v: Uint8Array): LldpId {
  const subtype = v[0]!;
  const idBytes = v.subarray(1);
  const hex = toHex(idBytes);
  if (isMacSubtype(tlvType, subtype) && idBytes.length === 6) {
    return { subtype, id: macToString(idBytes), hex };
  }
  const printable = idBytes.length > 0 && idBytes.every((c) => c >= 0x20 && c < 0x7f);
  return { subtype, id: printable ? String.fromCharCode(...idBytes) : hex, hex };
}

function encodeId(tlvType: number, id: LldpId): Uint8Array {
  checkInt('lldp id subtype', id.subtype, 0, 255);
  let bytes: Uint8Array | null;
  if (id.hex !== undefined) bytes = fromHex(id.hex);
  else if (isMacSubtype(tlvType, id.subtype) && isMac(id.id)) bytes = fromHex(id.id);
  else bytes = new TextEncoder().encode(id.id);
  if (!bytes || bytes.length < 1 || bytes.length > 255) {
    throw new EncodeError('lldp id', `id must be 1..255 octets`);
  }
  const out = new Uint8Array(1 + bytes.length);
  out[0] = id.subtype;
  out.set(bytes, 1);
  return out;
}

/** Decodes an LLDPDU (the Ethernet payload). `base` is its offset in the frame. */
export function decodeLldp(
  b: Uint8Array,
  base = 0,
  opts: WireOptions = DEFAULT_WIRE_OPTIONS,
): Decoded<LldpPdu> {
  const tlvs: LldpTlv[] = [];
  const warnings: DecodeError[] = [];
  let off = 0;
  let chassisId: LldpId | undefined;
  let portId: LldpId | undefined;
  let ttl: number | undefined;
  let evb: EvbTlv | undefined;
  let splitnveProfile: SplitnveProfileTlv | undefined;
  let index = 0;
  while (off < b.length) {
    if (b.length - off < 2) return fail('lldp.tlv', base + off, 'truncated TLV header');
    const hdr = readU16(b, off);
    const type = hdr >> 9;
    const len = hdr & 0x1ff;
    const at = base + off;
    if (off + 2 + len > b.length) {
      return fail('lldp.tlv', at, `TLV type ${type} length ${len} runs past the end of the frame`);
    }
    const v = b.subarray(off + 2, off + 2 + len);
    off += 2 + len;
    // The first three TLVs are mandatory and in this order.
    const expect = [LLDP_TLV_CHASSIS_ID, LLDP_TLV_PORT_ID, LLDP_TLV_TTL][index];
    if (expect !== undefined && type !== expect) {
      const names = ['chassisId', 'portId', 'ttl'];
      return fail(`lldp.${names[index]}`, at, `expected TLV type ${expect}, got ${type}`);
    }
    index++;
    if (type === LLDP_TLV_END) {
      tlvs.push({ type: 0, name: 'end' });
      break;
    } else if (type === LLDP_TLV_CHASSIS_ID || type === LLDP_TLV_PORT_ID) {
      const field = type === LLDP_TLV_CHASSIS_ID ? 'lldp.chassisId' : 'lldp.portId';
      if (len < 2) return fail(field, at, `id TLV needs 2..256 octets, got ${len}`);
      const value = decodeId(type, v);
      if (type === LLDP_TLV_CHASSIS_ID) {
        chassisId = value;
        tlvs.push({ type: 1, name: 'chassisId', value });
      } else {
        portId = value;
        tlvs.push({ type: 2, name: 'portId', value });
      }
    } else if (type === LLDP_TLV_TTL) {
      if (len !== 2) return fail('lldp.ttl', at, `TTL TLV must be 2 octets, got ${len}`);
      ttl = readU16(v, 0);
      tlvs.push({ type: 3, name: 'ttl', value: ttl });
    } else if (type === LLDP_TLV_ORG && len >= 4) {
      const oui = readU24(v, 0);
      const subtype = v[3]!;
      if (oui === IEEE_8021_OUI && subtype === EVB_SUBTYPE) {
        const r = decodeEvbBody(v.subarray(4), at + 6);
        if (!r.ok) {
          warnings.push(r.error);
          tlvs.push({ type: 127, name: 'org', oui: ouiToString(oui), subtype, data: toHex(v, 4) });
        } else {
          evb = r.value;
          tlvs.push({ type: 127, name: 'evb', value: r.value });
        }
      } else if (
        oui === opts.splitnveOui &&
        subtype === SPLITNVE_LLDP_PROFILE_SUBTYPE &&
        len >= 6
      ) {
        const flags = v[5]!;
        splitnveProfile = {
          version: v[4]!,
          auth: (flags & 0x01) !== 0,
          ipFilters: (flags & 0x02) !== 0,
          deactivate: (flags & 0x04) !== 0,
        };
        tlvs.push({ type: 127, name: 'splitnveProfile', value: splitnveProfile });
      } else {
        tlvs.push({ type: 127, name: 'org', oui: ouiToString(oui), subtype, data: toHex(v, 4) });
      }
    } else {
      tlvs.push({ type, name: 'unknown', data: toHex(v) });
    }
  }
  if (chassisId === undefined) return fail('lldp.chassisId', base, 'missing chassis id TLV');
  if (portId === undefined) return fail('lldp.portId', base + off, 'missing port id TLV');
  if (ttl === undefined) return fail('lldp.ttl', base + off, 'missing TTL TLV');
  const pdu: LldpPdu = { chassisId, portId, ttl, tlvs, warnings };
  return ok({
    ...pdu,
    ...(evb ? { evb } : {}),
    ...(splitnveProfile ? { splitnveProfile } : {}),
  });
}

export interface LldpBuild {
  readonly chassisId: LldpId;
  readonly portId: LldpId;
  readonly ttl: number;
  readonly evb?: EvbTlv;
  readonly splitnveProfile?: SplitnveProfileTlv;
  /** Extra raw TLVs placed before End. */
  readonly extra?: readonly { type: number; value: Uint8Array }[];
}

function tlvHeader(w: ByteWriter, type: number, len: number): void {
  checkInt('lldp tlv length', len, 0, 511);
  w.u16((type << 9) | len);
}

export function encodeLldp(p: LldpBuild, opts: WireOptions = DEFAULT_WIRE_OPTIONS): Uint8Array {
  checkInt('lldp.ttl', p.ttl, 0, 0xffff);
  const w = new ByteWriter(64);
  const chassis = encodeId(LLDP_TLV_CHASSIS_ID, p.chassisId);
  tlvHeader(w, LLDP_TLV_CHASSIS_ID, chassis.length);
  w.bytes(chassis);
  const port = encodeId(LLDP_TLV_PORT_ID, p.portId);
  tlvHeader(w, LLDP_TLV_PORT_ID, port.length);
  w.bytes(port);
  tlvHeader(w, LLDP_TLV_TTL, 2);
  w.u16(p.ttl);
  if (p.evb) {
    // Exactly 9 octets: lldpad copies the received TLV into a 9-octet struct without a bound.
    tlvHeader(w, LLDP_TLV_ORG, 4 + EVB_BODY_LEN);
    w.u24(IEEE_8021_OUI).u8(EVB_SUBTYPE).bytes(encodeEvbBody(p.evb));
  }
  if (p.splitnveProfile) {
    const s = p.splitnveProfile;
    checkInt('splitnveProfile.version', s.version, 0, 255);
    tlvHeader(w, LLDP_TLV_ORG, 6);
    w.u24(opts.splitnveOui)
      .u8(SPLITNVE_LLDP_PROFILE_SUBTYPE)
      .u8(s.version)
      .u8((s.auth ? 1 : 0) | (s.ipFilters ? 2 : 0) | (s.deactivate ? 4 : 0));
  }
  for (const x of p.extra ?? []) {
    checkInt('lldp extra type', x.type, 4, 127);
    tlvHeader(w, x.type, x.value.length);
    w.bytes(x.value);
  }
  tlvHeader(w, LLDP_TLV_END, 0);
  return w.finish();
}
