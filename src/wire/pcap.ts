/** Capture files: classic pcap (both byte orders, µs and ns) and pcapng (SHB, IDB, EPB, SPB). */
import { fail, ok, type Decoded } from './errors.js';

export const LINKTYPE_ETHERNET = 1;

export interface CaptureRecord {
  /** Seconds since the epoch (fractional), when the file has it. */
  readonly time: number | undefined;
  readonly linktype: number;
  /** Captured octets. */
  readonly data: Uint8Array;
  /** Length on the wire. */
  readonly originalLength: number;
}

export function readCapture(file: Uint8Array): Decoded<CaptureRecord[]> {
  if (file.length < 4) return fail('pcap', 0, 'file shorter than a magic number');
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const magicBE = dv.getUint32(0, false);
  if (magicBE === 0x0a0d0d0a) return readPcapng(file, dv);
  return readPcap(file, dv);
}

function readPcap(file: Uint8Array, dv: DataView): Decoded<CaptureRecord[]> {
  if (file.length < 24) return fail('pcap.header', 0, 'truncated global header');
  const m = dv.getUint32(0, true);
  let le: boolean;
  let nano: boolean;
  if (m === 0xa1b2c3d4) [le, nano] = [true, false];
  else if (m === 0xa1b23c4d) [le, nano] = [true, true];
  else if (m === 0xd4c3b2a1) [le, nano] = [false, false];
  else if (m === 0x4d3cb2a1) [le, nano] = [false, true];
  else return fail('pcap.magic', 0, `unknown magic 0x${m.toString(16)}`);
  const linktype = dv.getUint32(20, le) & 0x0fffffff;
  const out: CaptureRecord[] = [];
  let off = 24;
  while (off < file.length) {
    if (file.length - off < 16) return fail('pcap.record', off, 'truncated record header');
    const sec = dv.getUint32(off, le);
    const frac = dv.getUint32(off + 4, le);
    const incl = dv.getUint32(off + 8, le);
    const orig = dv.getUint32(off + 12, le);
    if (off + 16 + incl > file.length)
      return fail('pcap.record', off, 'record runs past the end of the file');
    out.push({
      time: sec + frac / (nano ? 1e9 : 1e6),
      linktype,
      data: file.slice(off + 16, off + 16 + incl),
      originalLength: orig,
    });
    off += 16 + incl;
  }
  return ok(out);
}

function readPcapng(file: Uint8Array, dv: DataView): Decoded<CaptureRecord[]> {
  const out: CaptureRecord[] = [];
  let le = true;
  let ifaces: { linktype: number; tsDiv: number }[] = [];
  let off = 0;
  while (off < file.length) {
    if (file.length - off < 12) return fail('pcapng.block', off, 'truncated block');
    const type = dv.getUint32(off, le);
    if (type === 0x0a0d0d0a) {
      const bom = dv.getUint32(off + 8, true);
      if (bom === 0x1a2b3c4d) le = true;
      else if (bom === 0x4d3c2b1a) le = false;
      else return fail('pcapng.byteOrder', off + 8, 'bad byte-order magic');
      ifaces = [];
    }
    const len = dv.getUint32(off + 4, le);
    if (len < 12 || len % 4 !== 0 || off + len > file.length) {
      return fail('pcapng.blockLength', off + 4, `bad block length ${len}`);
    }
    if (type === 1) {
      const linktype = dv.getUint16(off + 8, le);
      let tsDiv = 1e6;
      // options: if_tsresol (code 9)
      let o = off + 16;
      while (o + 4 <= off + len - 4) {
        const code = dv.getUint16(o, le);
        const olen = dv.getUint16(o + 2, le);
        if (code === 0) break;
        if (code === 9 && olen >= 1) {
          const v = file[o + 4]!;
          tsDiv = v & 0x80 ? 2 ** (v & 0x7f) : 10 ** v;
        }
        o += 4 + Math.ceil(olen / 4) * 4;
      }
      ifaces.push({ linktype, tsDiv });
    } else if (type === 6) {
      // 28 octets of fixed fields before the data and the trailing 4-octet length after it.
      if (len < 32)
        return fail(
          'pcapng.blockLength',
          off + 4,
          `enhanced packet block length ${len} is under 32`,
        );
      const ifid = dv.getUint32(off + 8, le);
      const hi = dv.getUint32(off + 12, le);
      const lo = dv.getUint32(off + 16, le);
      const cap = dv.getUint32(off + 20, le);
      const orig = dv.getUint32(off + 24, le);
      const iface = ifaces[ifid];
      if (!iface) return fail('pcapng.interfaceId', off + 8, `unknown interface ${ifid}`);
      if (28 + cap + 4 > len)
        return fail('pcapng.capturedLength', off + 20, 'packet runs past its block');
      out.push({
        time: (hi * 2 ** 32 + lo) / iface.tsDiv,
        linktype: iface.linktype,
        data: file.slice(off + 28, off + 28 + cap),
        originalLength: orig,
      });
    } else if (type === 3) {
      const orig = dv.getUint32(off + 8, le);
      const cap = Math.min(orig, len - 16);
      out.push({
        time: undefined,
        linktype: ifaces[0]?.linktype ?? LINKTYPE_ETHERNET,
        data: file.slice(off + 12, off + 12 + cap),
        originalLength: orig,
      });
    }
    off += len;
  }
  return ok(out);
}

/** Writes a classic little-endian microsecond pcap of Ethernet frames. */
export function writePcap(records: readonly { time: number; data: Uint8Array }[]): Uint8Array {
  const size = 24 + records.reduce((n, r) => n + 16 + r.data.length, 0);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0xa1b2c3d4, true);
  dv.setUint16(4, 2, true);
  dv.setUint16(6, 4, true);
  dv.setUint32(16, 65535, true);
  dv.setUint32(20, LINKTYPE_ETHERNET, true);
  let off = 24;
  for (const r of records) {
    const sec = Math.floor(r.time);
    const usec = Math.round((r.time - sec) * 1e6);
    dv.setUint32(off, sec, true);
    dv.setUint32(off + 4, usec, true);
    dv.setUint32(off + 8, r.data.length, true);
    dv.setUint32(off + 12, r.data.length, true);
    out.set(r.data, off + 16);
    off += 16 + r.data.length;
  }
  return out;
}
