/**
 * VDP (802.1Q clause 41) TLVs as carried in an ECP request of subtype 1:
 * Manager ID, the four VSI TLVs, End and organizationally specific TLVs.
 * TLV header: type:7 | length:9.
 */
import {
  ByteWriter,
  checkInt,
  fromHex,
  ipv4ToString,
  ipv6ToString,
  macToString,
  parseIpv4,
  parseIpv6,
  readU16,
  readU24,
  readU64,
  toHex,
  uuidToString,
} from './bytes.js';
import { EncodeError, fail, ok, type Decoded, type DecodeError } from './errors.js';
import { decodeEntry, encodeEntry, filterLayout, type FilterEntry } from './filter.js';
import { CISCO_OUI, DEFAULT_WIRE_OPTIONS, ouiToString, type WireOptions } from './options.js';

export const VDP_TLV_END = 0;
export const VDP_TLV_PRE_ASSOCIATE = 1;
export const VDP_TLV_PRE_ASSOCIATE_RR = 2;
export const VDP_TLV_ASSOCIATE = 3;
export const VDP_TLV_DE_ASSOCIATE = 4;
export const VDP_TLV_MANAGER_ID = 5;
export const VDP_TLV_ORG = 127;

export type VsiTlvType = 1 | 2 | 3 | 4;

export const VSI_TLV_NAMES: Record<VsiTlvType, string> = {
  1: 'pre-associate',
  2: 'pre-associate-rr',
  3: 'associate',
  4: 'de-associate',
};

export function isVsiTlvType(t: number): t is VsiTlvType {
  return t >= 1 && t <= 4;
}

export const VSIID_IPV4 = 1;
export const VSIID_IPV6 = 2;
export const VSIID_MAC = 3;
export const VSIID_LOCAL = 4;
export const VSIID_UUID = 5;

export const MANAGER_ID_LEN = 16;
/** Fixed part of a VSI TLV body before the entries. */
export const VSI_FIXED_LEN = 25;
export const VDP_TLV_MAX_LEN = 511;

export const CISCO_SUBTYPE_VM_NAME = 0xf1;
export const CISCO_SUBTYPE_L3_ADDR = 0xf2;
export const SPLITNVE_SUBTYPE_AUTH = 0x01;
export const AUTH_HMAC_LEN = 32;
/** OUI(3) + subtype(1) + key id(2) + sequence(8) + HMAC(32). */
export const AUTH_TLV_VALUE_LEN = 46;
export const AUTH_TLV_LEN = 2 + AUTH_TLV_VALUE_LEN;

export interface VsiTlv {
  readonly kind: 'vsi';
  readonly type: VsiTlvType;
  readonly status: number;
  readonly typeId: number;
  readonly typeVersion: number;
  readonly idFormat: number;
  /** 16 octets; shorter ids are left-aligned. */
  readonly id: Uint8Array;
  readonly filterFormat: number;
  readonly entries: readonly FilterEntry[];
}

export interface ManagerIdTlv {
  readonly kind: 'manager-id';
  readonly managerId: Uint8Array;
}

export interface EndTlv {
  readonly kind: 'end';
}

export interface CiscoVmNameTlv {
  readonly kind: 'cisco-vm-name';
  readonly vsiIdFormat: number;
  readonly vsiId: Uint8Array;
  readonly vmIdFormat: number;
  readonly vmId: Uint8Array;
  readonly vmName: string;
}

export interface CiscoL3AddrTlv {
  readonly kind: 'cisco-l3-addr';
  readonly vsiIdFormat: number;
  readonly vsiId: Uint8Array;
  /** IANA address family: 1 IPv4, 2 IPv6. */
  readonly afi: number;
  readonly address: string;
}

export interface AuthTlv {
  readonly kind: 'splitnve-auth';
  readonly keyId: number;
  readonly sequence: bigint;
  readonly hmac: Uint8Array;
}

export interface OrgTlv {
  readonly kind: 'org';
  readonly oui: number;
  readonly subtype: number | undefined;
  readonly data: Uint8Array;
}

export interface UnknownTlv {
  readonly kind: 'unknown';
  readonly type: number;
  readonly value: Uint8Array;
}

/** A TLV whose header was readable but whose body was not: other TLVs of the PDU still count. */
export interface MalformedTlv {
  readonly kind: 'malformed';
  readonly type: number;
  readonly value: Uint8Array;
  readonly error: DecodeError;
}

export type VdpTlv =
  | VsiTlv
  | ManagerIdTlv
  | EndTlv
  | CiscoVmNameTlv
  | CiscoL3AddrTlv
  | AuthTlv
  | OrgTlv
  | UnknownTlv
  | MalformedTlv;

/** A TLV with where it was found: offset of its header in the VDP payload, and total length. */
export interface VdpItem {
  readonly tlv: VdpTlv;
  readonly type: number;
  readonly offset: number;
  readonly length: number;
}

export interface VdpPdu {
  readonly items: readonly VdpItem[];
  /** True when an End TLV terminated the PDU (lldpad sends none; zero padding reads as End). */
  readonly end: boolean;
}

// ---------------------------------------------------------------------------------------------
// Manager ID helpers

/** A name of up to 16 ASCII characters, NUL-padded; or exactly 32 hex digits prefixed by 0x. */
export function managerIdFromString(text: string): Uint8Array {
  if (/^0x[0-9a-fA-F]{32}$/.test(text)) return fromHex(text.slice(2))!;
  if (text.length > MANAGER_ID_LEN || !/^[\x20-\x7e]*$/.test(text)) {
    throw new EncodeError(
      'managerId',
      'a name of at most 16 printable ASCII characters, or 0x + 32 hex',
    );
  }
  const out = new Uint8Array(MANAGER_ID_LEN);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** The name when the id is printable ASCII followed by NULs, else 0x + hex. */
export function managerIdToString(id: Uint8Array): string {
  let end = id.length;
  while (end > 0 && id[end - 1] === 0) end--;
  let printable = end > 0;
  for (let i = 0; i < end; i++) if (id[i]! < 0x20 || id[i]! > 0x7e) printable = false;
  return printable ? String.fromCharCode(...id.subarray(0, end)) : '0x' + toHex(id);
}

// ---------------------------------------------------------------------------------------------
// VSI id helpers

/** Canonical text of a VSI id in its format (UUID, MAC, IPv4, IPv6; local ids as hex). */
export function vsiIdToString(format: number, id: Uint8Array): string {
  switch (format) {
    case VSIID_UUID:
      return uuidToString(id);
    case VSIID_MAC:
      return macToString(id);
    case VSIID_IPV4:
      return ipv4ToString(id);
    case VSIID_IPV6:
      return ipv6ToString(id);
    default:
      return toHex(id);
  }
}

/** Lossless key of a VSI id (format + all 16 octets), for maps (a flat string: it is kept). */
export function vsiKey(format: number, id: Uint8Array): string {
  return [format, toHex(id)].join(':');
}

// ---------------------------------------------------------------------------------------------
// Decoding

function decodeVsi(
  type: VsiTlvType,
  v: Uint8Array,
  at: number,
  opts: WireOptions,
): Decoded<VsiTlv> {
  if (v.length < VSI_FIXED_LEN) {
    return fail(
      'vdp.vsi.length',
      at,
      `VSI TLV needs at least ${VSI_FIXED_LEN} octets, got ${v.length}`,
    );
  }
  const filterFormat = v[22]!;
  const count = readU16(v, 23);
  const layout = filterLayout(filterFormat, opts);
  if (!layout) {
    return fail(
      'vdp.vsi.filterInfoFormat',
      at + 2 + 22,
      `unknown filter info format ${filterFormat}`,
    );
  }
  const want = VSI_FIXED_LEN + count * layout.size;
  if (v.length !== want) {
    return fail(
      'vdp.vsi.numberOfEntries',
      at + 2 + 23,
      `length ${v.length} does not equal 25 + ${count}·${layout.size} = ${want}`,
    );
  }
  const entries: FilterEntry[] = [];
  for (let i = 0; i < count; i++)
    entries.push(decodeEntry(v, VSI_FIXED_LEN + i * layout.size, layout));
  return ok({
    kind: 'vsi',
    type,
    status: v[0]!,
    typeId: readU24(v, 1),
    typeVersion: v[4]!,
    idFormat: v[5]!,
    id: v.slice(6, 22),
    filterFormat,
    entries,
  });
}

function decodeOrg(v: Uint8Array, at: number, opts: WireOptions): Decoded<VdpTlv> {
  if (v.length < 3)
    return fail('vdp.org.oui', at + 2, `org TLV needs an OUI, got ${v.length} octets`);
  const oui = readU24(v, 0);
  const subtype = v.length >= 4 ? v[3]! : undefined;
  if (oui === CISCO_OUI && subtype === CISCO_SUBTYPE_VM_NAME) {
    // subtype | VSI id format | VSI id(16) | VM id format | VM id(16) | VM name
    if (v.length < 3 + 35)
      return fail('vdp.org.cisco.vmName', at + 2, 'Cisco VM name TLV too short');
    return ok({
      kind: 'cisco-vm-name',
      vsiIdFormat: v[4]!,
      vsiId: v.slice(5, 21),
      vmIdFormat: v[21]!,
      vmId: v.slice(22, 38),
      vmName: new TextDecoder('utf-8', { fatal: false }).decode(v.subarray(38)),
    });
  }
  if (oui === CISCO_OUI && subtype === CISCO_SUBTYPE_L3_ADDR) {
    // subtype | VSI id format | VSI id(16) | AFI(2) | address
    if (v.length < 3 + 20)
      return fail('vdp.org.cisco.l3Addr', at + 2, 'Cisco L3 address TLV too short');
    const afi = readU16(v, 21);
    const a = v.subarray(23);
    let address: string;
    if (afi === 1 && a.length === 4) address = ipv4ToString(a);
    else if (afi === 2 && a.length === 16) address = ipv6ToString(a);
    else
      return fail(
        'vdp.org.cisco.l3Addr.afi',
        at + 2 + 21,
        `AFI ${afi} with ${a.length} address octets`,
      );
    return ok({ kind: 'cisco-l3-addr', vsiIdFormat: v[4]!, vsiId: v.slice(5, 21), afi, address });
  }
  if (oui === opts.splitnveOui && subtype === SPLITNVE_SUBTYPE_AUTH) {
    if (v.length !== AUTH_TLV_VALUE_LEN) {
      return fail(
        'vdp.org.auth',
        at,
        `authentication TLV must be ${AUTH_TLV_VALUE_LEN} octets, got ${v.length}`,
      );
    }
    return ok({
      kind: 'splitnve-auth',
      keyId: readU16(v, 4),
      sequence: readU64(v, 6),
      hmac: v.slice(14, 14 + AUTH_HMAC_LEN),
    });
  }
  return ok({ kind: 'org', oui, subtype, data: v.slice(subtype === undefined ? 3 : 4) });
}

/**
 * Decodes a VDP payload. `base` is its offset in the frame (error offsets are frame offsets).
 * A TLV whose body is bad becomes a `malformed` item; only a header that runs past the end
 * stops decoding, and then the error is returned with no items.
 */
export function decodeVdp(
  b: Uint8Array,
  base = 0,
  opts: WireOptions = DEFAULT_WIRE_OPTIONS,
): Decoded<VdpPdu> {
  const items: VdpItem[] = [];
  let off = 0;
  let end = false;
  while (off < b.length) {
    if (b.length - off < 2) {
      // A single zero octet after the last TLV is padding (a frame padded to an odd length).
      if (b[off] === 0) break;
      return fail('vdp.tlv', base + off, 'truncated TLV header');
    }
    const hdr = readU16(b, off);
    const type = hdr >> 9;
    const len = hdr & 0x1ff;
    const at = base + off;
    if (type === VDP_TLV_END) {
      items.push({ tlv: { kind: 'end' }, type, offset: off, length: 2 });
      end = true;
      break;
    }
    if (off + 2 + len > b.length) {
      return fail(
        'vdp.tlv.length',
        at,
        `TLV type ${type} length ${len} runs past the end of the PDU`,
      );
    }
    const v = b.subarray(off + 2, off + 2 + len);
    let r: Decoded<VdpTlv>;
    if (isVsiTlvType(type)) r = decodeVsi(type, v, at, opts);
    else if (type === VDP_TLV_MANAGER_ID) {
      r =
        len === MANAGER_ID_LEN
          ? ok({ kind: 'manager-id', managerId: v.slice() })
          : fail('vdp.managerId.length', at, `Manager ID must be 16 octets, got ${len}`);
    } else if (type === VDP_TLV_ORG) r = decodeOrg(v, at, opts);
    else r = ok({ kind: 'unknown', type, value: v.slice() });
    const tlv: VdpTlv = r.ok
      ? r.value
      : { kind: 'malformed', type, value: v.slice(), error: r.error };
    items.push({ tlv, type, offset: off, length: 2 + len });
    off += 2 + len;
  }
  return ok({ items, end });
}

// ---------------------------------------------------------------------------------------------
// Encoding

function header(w: ByteWriter, type: number, len: number): void {
  checkInt('vdp tlv type', type, 0, 127);
  if (len > VDP_TLV_MAX_LEN)
    throw new EncodeError('vdp tlv length', `${len} exceeds ${VDP_TLV_MAX_LEN}`);
  w.u16((type << 9) | len);
}

export function encodeManagerId(w: ByteWriter, managerId: Uint8Array): void {
  if (managerId.length !== MANAGER_ID_LEN) throw new EncodeError('managerId', 'must be 16 octets');
  header(w, VDP_TLV_MANAGER_ID, MANAGER_ID_LEN);
  w.bytes(managerId);
}

export function vsiTlvLength(
  t: Pick<VsiTlv, 'filterFormat' | 'entries'>,
  opts: WireOptions,
): number {
  const layout = filterLayout(t.filterFormat, opts);
  return 2 + VSI_FIXED_LEN + t.entries.length * (layout?.size ?? 0);
}

export function encodeVsi(
  w: ByteWriter,
  t: Omit<VsiTlv, 'kind'>,
  opts: WireOptions = DEFAULT_WIRE_OPTIONS,
): void {
  if (!isVsiTlvType(t.type)) throw new EncodeError('vsi.type', `${t.type} is not a VSI TLV type`);
  checkInt('vsi.status', t.status, 0, 255);
  checkInt('vsi.typeId', t.typeId, 0, 0xffffff);
  checkInt('vsi.typeVersion', t.typeVersion, 0, 255);
  checkInt('vsi.idFormat', t.idFormat, 1, 5);
  if (t.id.length !== 16) throw new EncodeError('vsi.id', 'must be 16 octets');
  const layout = filterLayout(t.filterFormat, opts);
  if (!layout)
    throw new EncodeError('vsi.filterFormat', `unknown filter info format ${t.filterFormat}`);
  if (t.entries.length < 1) throw new EncodeError('vsi.entries', 'at least one entry is required');
  const len = VSI_FIXED_LEN + t.entries.length * layout.size;
  header(w, t.type, len);
  w.u8(t.status).u24(t.typeId).u8(t.typeVersion).u8(t.idFormat).bytes(t.id);
  w.u8(t.filterFormat).u16(t.entries.length);
  t.entries.forEach((e, i) => encodeEntry(w, e, layout, i));
}

export function encodeCiscoVmName(w: ByteWriter, t: Omit<CiscoVmNameTlv, 'kind'>): void {
  const name = new TextEncoder().encode(t.vmName);
  if (t.vsiId.length !== 16 || t.vmId.length !== 16)
    throw new EncodeError('cisco.vmName', 'ids are 16 octets');
  checkInt('cisco.vmName.vsiIdFormat', t.vsiIdFormat, 0, 255);
  checkInt('cisco.vmName.vmIdFormat', t.vmIdFormat, 0, 255);
  header(w, VDP_TLV_ORG, 3 + 35 + name.length);
  w.u24(CISCO_OUI).u8(CISCO_SUBTYPE_VM_NAME).u8(t.vsiIdFormat).bytes(t.vsiId);
  w.u8(t.vmIdFormat).bytes(t.vmId).bytes(name);
}

export function encodeCiscoL3Addr(
  w: ByteWriter,
  t: Omit<CiscoL3AddrTlv, 'kind'>,
  addr: Uint8Array,
): void {
  if (t.vsiId.length !== 16) throw new EncodeError('cisco.l3Addr', 'VSI id is 16 octets');
  checkInt('cisco.l3Addr.vsiIdFormat', t.vsiIdFormat, 0, 255);
  checkInt('cisco.l3Addr.afi', t.afi, 1, 2);
  if (addr.length !== (t.afi === 1 ? 4 : 16))
    throw new EncodeError('cisco.l3Addr.address', `${addr.length} octets for AFI ${t.afi}`);
  header(w, VDP_TLV_ORG, 3 + 20 + addr.length);
  w.u24(CISCO_OUI)
    .u8(CISCO_SUBTYPE_L3_ADDR)
    .u8(t.vsiIdFormat)
    .bytes(t.vsiId)
    .u16(t.afi)
    .bytes(addr);
}

export function encodeAuth(
  w: ByteWriter,
  t: Omit<AuthTlv, 'kind'>,
  opts: WireOptions = DEFAULT_WIRE_OPTIONS,
): void {
  checkInt('auth.keyId', t.keyId, 0, 0xffff);
  if (t.sequence < 0n || t.sequence > 0xffffffffffffffffn)
    throw new EncodeError('auth.sequence', 'out of range');
  if (t.hmac.length !== AUTH_HMAC_LEN) throw new EncodeError('auth.hmac', 'must be 32 octets');
  header(w, VDP_TLV_ORG, AUTH_TLV_VALUE_LEN);
  w.u24(opts.splitnveOui).u8(SPLITNVE_SUBTYPE_AUTH).u16(t.keyId).u64(t.sequence).bytes(t.hmac);
}

export function encodeOrg(w: ByteWriter, t: Omit<OrgTlv, 'kind'>): void {
  checkInt('org.oui', t.oui, 0, 0xffffff);
  if (t.subtype !== undefined) checkInt('org.subtype', t.subtype, 0, 255);
  const len = 3 + (t.subtype === undefined ? 0 : 1) + t.data.length;
  header(w, VDP_TLV_ORG, len);
  w.u24(t.oui);
  if (t.subtype !== undefined) w.u8(t.subtype);
  w.bytes(t.data);
}

export function encodeEnd(w: ByteWriter): void {
  w.u16(0);
}

/** Encodes a whole VDP payload from TLVs (End is appended unless the list already ends with it). */
export function encodeVdp(
  tlvs: readonly VdpTlv[],
  opts: WireOptions = DEFAULT_WIRE_OPTIONS,
): Uint8Array {
  const w = new ByteWriter(128);
  for (const t of tlvs) {
    switch (t.kind) {
      case 'manager-id':
        encodeManagerId(w, t.managerId);
        break;
      case 'vsi':
        encodeVsi(w, t, opts);
        break;
      case 'cisco-vm-name':
        encodeCiscoVmName(w, t);
        break;
      case 'cisco-l3-addr': {
        const addr = t.afi === 1 ? ipv4Bytes(t.address) : ipv6Bytes(t.address);
        encodeCiscoL3Addr(w, t, addr);
        break;
      }
      case 'splitnve-auth':
        encodeAuth(w, t, opts);
        break;
      case 'org':
        encodeOrg(w, t);
        break;
      case 'unknown':
        header(w, t.type, t.value.length);
        w.bytes(t.value);
        break;
      case 'malformed':
        header(w, t.type, t.value.length);
        w.bytes(t.value);
        break;
      case 'end':
        break;
    }
  }
  encodeEnd(w);
  return w.finish();
}

function ipv4Bytes(text: string): Uint8Array {
  const b = parseIpv4(text);
  if (!b) throw new EncodeError('address', `not an IPv4 address: ${text}`);
  return b;
}

function ipv6Bytes(text: string): Uint8Array {
  const b = parseIpv6(text);
  if (!b) throw new EncodeError('address', `not an IPv6 address: ${text}`);
  return b;
}

/** Text of an org TLV's OUI, for logs and JSON. */
export { ouiToString };
