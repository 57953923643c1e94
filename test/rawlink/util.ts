/** Helpers for the raw link tests: frame builders and a receiver that can be awaited. */
import type { LinkStatus } from '../../src/link/link.js';
import type { RawLink } from '../../src/link/raw.js';

export const PREFIX = 'snr';
export const NEAREST_CUSTOMER_BRIDGE = '01:80:c2:00:00:00';

export function macBytes(mac: string): Buffer {
  return Buffer.from(mac.replace(/:/g, ''), 'hex');
}

/** An Ethernet frame: destination, source, ethertype (or a tag + ethertype), payload. */
export function ethFrame(dst: string, src: string, ethertype: number, payload: Uint8Array): Buffer {
  const h = Buffer.alloc(14);
  macBytes(dst).copy(h, 0);
  macBytes(src).copy(h, 6);
  h.writeUInt16BE(ethertype, 12);
  return Buffer.concat([h, payload]);
}

export function taggedFrame(
  dst: string,
  src: string,
  vid: number,
  ethertype: number,
  payload: Uint8Array,
): Buffer {
  const h = Buffer.alloc(18);
  macBytes(dst).copy(h, 0);
  macBytes(src).copy(h, 6);
  h.writeUInt16BE(0x8100, 12);
  h.writeUInt16BE(vid & 0xfff, 14);
  h.writeUInt16BE(ethertype, 16);
  return Buffer.concat([h, payload]);
}

/** ECP frame: version 1, op (0 request, 1 ACK), subtype 1 (VDP), sequence, then `body`. */
export function ecpFrame(
  dst: string,
  src: string,
  op: 0 | 1,
  seq: number,
  body: Uint8Array = new Uint8Array(),
): Buffer {
  const hdr = Buffer.alloc(4);
  hdr.writeUInt16BE((1 << 12) | (op << 10) | 1, 0);
  hdr.writeUInt16BE(seq & 0xffff, 2);
  return ethFrame(dst, src, 0x8940, Buffer.concat([hdr, body]));
}

/** A minimal LLDPDU: chassis ID (MAC), port ID (MAC), TTL, End. */
export function lldpFrame(dst: string, src: string, ttl = 120): Buffer {
  const mac = macBytes(src);
  const tlv = (type: number, value: Uint8Array): Buffer => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE((type << 9) | value.length, 0);
    return Buffer.concat([b, value]);
  };
  const ttlv = Buffer.alloc(2);
  ttlv.writeUInt16BE(ttl, 0);
  return ethFrame(
    dst,
    src,
    0x88cc,
    Buffer.concat([
      tlv(1, Buffer.concat([Buffer.from([4]), mac])),
      tlv(2, Buffer.concat([Buffer.from([3]), mac])),
      tlv(3, ttlv),
      tlv(0, new Uint8Array()),
    ]),
  );
}

/** Collects what a link delivers and lets a test wait for a condition on it. */
export class Receiver {
  readonly frames: Buffer[] = [];
  readonly statuses: LinkStatus[] = [];
  private waiters: (() => void)[] = [];

  constructor(link: RawLink) {
    link.onFrames((fs) => {
      for (const f of fs) this.frames.push(Buffer.from(f.buffer, f.byteOffset, f.byteLength));
      this.wake();
    });
    link.onStatus((s) => {
      this.statuses.push(s);
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves when `cond()` holds; rejects after `ms` with `what` in the message. */
  async until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits until a frame equal to `f` has arrived. */
  async frame(f: Uint8Array, what = 'a frame'): Promise<void> {
    await this.until(() => this.frames.some((g) => g.equals(f)), what);
  }

  /** Waits for a status change (after those already seen) matching `pred`. */
  async status(pred: (s: LinkStatus) => boolean, what: string): Promise<LinkStatus> {
    const from = this.statuses.length;
    let found: LinkStatus | undefined;
    await this.until(() => {
      found = this.statuses.slice(from).find(pred);
      return found !== undefined;
    }, `status ${what}`);
    return found!;
  }
}
