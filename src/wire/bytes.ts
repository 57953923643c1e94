/** Byte helpers shared by the codecs: hex, MAC, UUID, IP text forms and a bounds-checked writer. */
import { EncodeError } from './errors.js';

const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'));

/**
 * Hex of b[start, end). Built with join, not +=: a string grown by += is a rope of ~n/2 nodes
 * that lives as long as the string (VSI keys, MACs and ids are kept for every VSI).
 */
export function toHex(b: Uint8Array, start = 0, end = b.length): string {
  const parts = new Array<string>(Math.max(0, end - start));
  for (let i = start; i < end; i++) parts[i - start] = HEX[b[i]!]!;
  return parts.join('');
}

/** Parses hex, ignoring spaces, colons and dashes. Returns null on odd length or a bad digit. */
export function fromHex(text: string): Uint8Array | null {
  const clean = text.replace(/[\s:-]/g, '');
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) return null;
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function macToString(b: Uint8Array, offset = 0): string {
  const o = offset;
  return [
    HEX[b[o]!],
    HEX[b[o + 1]!],
    HEX[b[o + 2]!],
    HEX[b[o + 3]!],
    HEX[b[o + 4]!],
    HEX[b[o + 5]!],
  ].join(':');
}

const MAC_RE =
  /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i;

export function isMac(text: string): boolean {
  return MAC_RE.test(text);
}

/** Canonical lower-case colon form; throws EncodeError for a malformed MAC (our input, not a peer's). */
export function normalizeMac(text: string, field = 'mac'): string {
  const m = MAC_RE.exec(text);
  if (!m) throw new EncodeError(field, `not a MAC address: ${JSON.stringify(text)}`);
  return m.slice(1, 7).join(':').toLowerCase();
}

export function writeMac(out: Uint8Array, offset: number, mac: string, field = 'mac'): void {
  const m = MAC_RE.exec(mac);
  if (!m) throw new EncodeError(field, `not a MAC address: ${JSON.stringify(mac)}`);
  for (let i = 0; i < 6; i++) out[offset + i] = parseInt(m[i + 1]!, 16);
}

export function macBytes(mac: string, field = 'mac'): Uint8Array {
  const out = new Uint8Array(6);
  writeMac(out, 0, mac, field);
  return out;
}

export function isGroupMac(mac: string): boolean {
  return (parseInt(mac.slice(0, 2), 16) & 1) === 1;
}

export const ZERO_MAC = '00:00:00:00:00:00';

export function uuidToString(b: Uint8Array, offset = 0): string {
  const h = toHex(b, offset, offset + 16);
  return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join('-');
}

export function parseUuid(text: string): Uint8Array | null {
  if (!/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(text))
    return null;
  return fromHex(text);
}

export function ipv4ToString(b: Uint8Array, offset = 0): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}

export function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    out[i] = Number(p);
  }
  return out;
}

/** RFC 5952 canonical IPv6 text (lower case, longest zero run of 2+ groups compressed). */
export function ipv6ToString(b: Uint8Array, offset = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((b[offset + 2 * i]! << 8) | b[offset + 2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLen).join(':');
  return `${head}::${tail}`;
}

export function parseIpv6(text: string): Uint8Array | null {
  const t = text.toLowerCase();
  if (!/^[0-9a-f:.]+$/.test(t)) return null;
  const halves = t.split('::');
  if (halves.length > 2) return null;
  // A dotted IPv4 part may only end the address (the last 32 bits), never precede '::'.
  const parseGroups = (s: string, lastOfAddress: boolean): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (lastOfAddress && i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIpv4(p);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-f]{1,4}$/.test(p)) return null;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = parseGroups(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? parseGroups(halves[1]!, true) : [];
  if (!head || !tail) return null;
  let groups: number[];
  if (halves.length === 2) {
    if (head.length + tail.length > 7) return null;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    if (head.length !== 8) return null;
    groups = head;
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Checks that `value` is an integer in [min, max]; encoders call it on every field they write. */
export function checkInt(field: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new EncodeError(field, `${value} is not an integer in ${min}..${max}`);
  }
}

/** Growable big-endian writer used by every encoder. */
export class ByteWriter {
  private buf: Uint8Array;
  private len = 0;

  constructor(capacity = 64) {
    this.buf = new Uint8Array(capacity);
  }

  get length(): number {
    return this.len;
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.len++] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    this.ensure(2);
    this.buf[this.len++] = (v >>> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
    return this;
  }

  u24(v: number): this {
    this.ensure(3);
    this.buf[this.len++] = (v >>> 16) & 0xff;
    this.buf[this.len++] = (v >>> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.buf[this.len++] = (v >>> 24) & 0xff;
    this.buf[this.len++] = (v >>> 16) & 0xff;
    this.buf[this.len++] = (v >>> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
    return this;
  }

  u64(v: bigint): this {
    this.ensure(8);
    for (let i = 7; i >= 0; i--) this.buf[this.len++] = Number((v >> BigInt(8 * i)) & 0xffn);
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  mac(mac: string, field = 'mac'): this {
    this.ensure(6);
    writeMac(this.buf, this.len, mac, field);
    this.len += 6;
    return this;
  }

  zeros(n: number): this {
    this.ensure(n);
    this.buf.fill(0, this.len, this.len + n);
    this.len += n;
    return this;
  }

  /** Overwrites a big-endian u16 at an earlier position (for length fields). */
  patchU16(at: number, v: number): void {
    this.buf[at] = (v >>> 8) & 0xff;
    this.buf[at + 1] = v & 0xff;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

export function readU16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

export function readU24(b: Uint8Array, o: number): number {
  return (b[o]! << 16) | (b[o + 1]! << 8) | b[o + 2]!;
}

export function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) >>> 0) + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
}

export function readU64(b: Uint8Array, o: number): bigint {
  let v = 0n;
  for (let i = 0; i < 8; i++) v = (v << 8n) | BigInt(b[o + i]!);
  return v;
}
