/**
 * VDP filter info formats and their entries. Every entry ends with the 2-octet field
 * PS:1 | PCP:3 | VID:12. The splitnve IP formats have configurable codes (WIRE.md).
 */
import {
  ByteWriter,
  checkInt,
  ipv4ToString,
  ipv6ToString,
  macToString,
  parseIpv4,
  parseIpv6,
  readU16,
  readU32,
} from './bytes.js';
import { EncodeError } from './errors.js';
import type { WireOptions } from './options.js';

export const FIF_VID = 1;
export const FIF_MAC_VID = 2;
export const FIF_GROUP_VID = 3;
export const FIF_GROUP_MAC_VID = 4;

export const VID_NULL = 0;
export const VID_MAX = 4094;

export interface FilterEntry {
  readonly groupId?: number;
  readonly mac?: string;
  readonly ipv4?: string;
  readonly ipv6?: string;
  /** Priority significant: 0 or 1. */
  readonly ps: number;
  readonly pcp: number;
  readonly vid: number;
}

export interface FilterLayout {
  readonly format: number;
  readonly name: string;
  readonly size: number;
  readonly group: boolean;
  readonly mac: boolean;
  readonly ip: 0 | 4 | 6;
}

const BASE_LAYOUTS: readonly FilterLayout[] = [
  { format: FIF_VID, name: 'VID', size: 2, group: false, mac: false, ip: 0 },
  { format: FIF_MAC_VID, name: 'MAC/VID', size: 8, group: false, mac: true, ip: 0 },
  { format: FIF_GROUP_VID, name: 'GroupID/VID', size: 6, group: true, mac: false, ip: 0 },
  { format: FIF_GROUP_MAC_VID, name: 'GroupID/MAC/VID', size: 12, group: true, mac: true, ip: 0 },
];

/** Layout of a filter info format, or undefined for an unknown code. */
export function filterLayout(format: number, opts: WireOptions): FilterLayout | undefined {
  if (format >= 1 && format <= 4) return BASE_LAYOUTS[format - 1];
  if (format === opts.ipv4FilterFormat) {
    return { format, name: 'GroupID/MAC/IPv4/VID', size: 16, group: true, mac: true, ip: 4 };
  }
  if (format === opts.ipv6FilterFormat) {
    return { format, name: 'GroupID/MAC/IPv6/VID', size: 28, group: true, mac: true, ip: 6 };
  }
  return undefined;
}

export function isGroupFormat(format: number, opts: WireOptions): boolean {
  return filterLayout(format, opts)?.group ?? false;
}

export function isIpFormat(format: number, opts: WireOptions): boolean {
  return (filterLayout(format, opts)?.ip ?? 0) !== 0;
}

/** Decodes one entry at `o`; the caller has checked that `layout.size` octets are there. */
export function decodeEntry(b: Uint8Array, o: number, layout: FilterLayout): FilterEntry {
  let p = o;
  let groupId: number | undefined;
  let mac: string | undefined;
  let ipv4: string | undefined;
  let ipv6: string | undefined;
  if (layout.group) {
    groupId = readU32(b, p);
    p += 4;
  }
  if (layout.mac) {
    mac = macToString(b, p);
    p += 6;
  }
  if (layout.ip === 4) {
    ipv4 = ipv4ToString(b, p);
    p += 4;
  } else if (layout.ip === 6) {
    ipv6 = ipv6ToString(b, p);
    p += 16;
  }
  const field = readU16(b, p);
  const e: { -readonly [K in keyof FilterEntry]: FilterEntry[K] } = {
    ps: field >> 15,
    pcp: (field >> 12) & 7,
    vid: field & 0xfff,
  };
  if (groupId !== undefined) e.groupId = groupId;
  if (mac !== undefined) e.mac = mac;
  if (ipv4 !== undefined) e.ipv4 = ipv4;
  if (ipv6 !== undefined) e.ipv6 = ipv6;
  return e;
}

export function encodeEntry(w: ByteWriter, e: FilterEntry, layout: FilterLayout, i: number): void {
  const f = `entries[${i}]`;
  if (layout.group) {
    if (e.groupId === undefined) throw new EncodeError(`${f}.groupId`, 'required by this format');
    checkInt(`${f}.groupId`, e.groupId, 0, 0xffffffff);
    w.u32(e.groupId);
  }
  if (layout.mac) {
    if (e.mac === undefined) throw new EncodeError(`${f}.mac`, 'required by this format');
    w.mac(e.mac, `${f}.mac`);
  }
  if (layout.ip === 4) {
    const ip = e.ipv4 === undefined ? null : parseIpv4(e.ipv4);
    if (!ip) throw new EncodeError(`${f}.ipv4`, `not an IPv4 address: ${e.ipv4}`);
    w.bytes(ip);
  } else if (layout.ip === 6) {
    const ip = e.ipv6 === undefined ? null : parseIpv6(e.ipv6);
    if (!ip) throw new EncodeError(`${f}.ipv6`, `not an IPv6 address: ${e.ipv6}`);
    w.bytes(ip);
  }
  checkInt(`${f}.ps`, e.ps, 0, 1);
  checkInt(`${f}.pcp`, e.pcp, 0, 7);
  checkInt(`${f}.vid`, e.vid, 0, 0xfff);
  w.u16((e.ps << 15) | (e.pcp << 12) | e.vid);
}

/** Same entry contents (used to match responses and keep-alives to stored VSIs). */
export function entriesEqual(a: readonly FilterEntry[], b: readonly FilterEntry[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (
      x.groupId !== y.groupId ||
      x.mac !== y.mac ||
      x.ipv4 !== y.ipv4 ||
      x.ipv6 !== y.ipv6 ||
      x.ps !== y.ps ||
      x.pcp !== y.pcp ||
      x.vid !== y.vid
    ) {
      return false;
    }
  }
  return true;
}
