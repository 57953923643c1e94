/**
 * What a daemon's frames say, for counters: classifies each frame a driver receives or sends
 * (LLDP, ECP request/ACK, VDP TLVs with their status), recognises ECP retransmissions and
 * duplicates (the same ECPDU again), and pairs VDP requests with their responses to measure
 * request → response latency on the wire:
 *
 * - bridge: a request received → the response to it sent (processing inside the nNVE);
 * - station: a request sent → its response received (the round trip of one attempt, including
 *   ECP retransmissions and the nNVE's work; a new attempt restarts the clock).
 *
 * It reads only headers (TLV type, status octet, VSI id); it never throws on a malformed frame.
 */
import { readU16 } from '../wire/bytes.js';
import { ECP_OP_ACK, ECP_OP_REQUEST, ECP_SUBTYPE_VDP } from '../wire/ecp.js';
import { ETHERTYPE_ECP, ETHERTYPE_LLDP, ETHERTYPE_VLAN } from '../wire/ethernet.js';
import { STATUS_RESPONSE } from '../wire/status.js';

export type Direction = 'rx' | 'tx';
export type Role = 'bridge' | 'station';

export const TLV_NAMES: Record<number, string> = {
  1: 'pre-associate',
  2: 'pre-associate-rr',
  3: 'associate',
  4: 'de-associate',
  5: 'manager-id',
  127: 'org',
};

export interface TapSink {
  frame(direction: Direction, port: string, protocol: 'lldp' | 'ecp' | 'other' | 'malformed'): void;
  ecp(
    direction: Direction,
    port: string,
    op: 'request' | 'ack' | 'other',
    duplicate: boolean,
  ): void;
  tlv(
    direction: Direction,
    port: string,
    tlv: string,
    kind: 'request' | 'response' | 'unsolicited' | 'none',
  ): void;
  /** A request's response, `seconds` after the request (see the module comment). */
  latency(mode: string, seconds: number): void;
}

/** FNV-1a over `b[from, to)`, continuing from `h`: retransmissions are byte-identical. */
function fnv(b: Uint8Array, from: number, to: number, h = 0x811c9dc5): number {
  for (let i = from; i < to; i++) {
    h ^= b[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function fnvText(t: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < t.length; i++) {
    h ^= t.charCodeAt(i) & 0xff;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Memory is bounded whatever arrives (a flood of requests from random stations, which the node
 * drops unanswered, must not grow the daemon): at most `maxSeen` remembered ECPDUs per direction
 * and port, `maxPending` unanswered requests (the oldest are forgotten). A bridge answers within
 * the step that received the request, so a flood cannot push a real request out before its
 * response; latencies of forgotten requests are simply not observed.
 */
export class FrameTap {
  /**
   * Recently seen ECP requests (LRU, bounded) per direction and port, keyed by a hash of the
   * whole frame and its length: no string is built per frame.
   */
  private readonly seen = {
    rx: new Map<string, Map<number, true>>(),
    tx: new Map<string, Map<number, true>>(),
  };
  /** Requests waiting for their response: hash of (port, VSI id, mode) -> when. */
  private readonly pending = new Map<number, bigint>();
  private readonly portHash = new Map<string, number>();

  constructor(
    readonly role: Role,
    private readonly sink: TapSink,
    private readonly opts: {
      readonly maxSeen?: number;
      readonly maxPending?: number;
      /** Pairs older than this are dropped (seconds). */
      readonly maxAgeS?: number;
      readonly clock?: () => bigint;
    } = {},
  ) {}

  private now(): bigint {
    return (this.opts.clock ?? process.hrtime.bigint)();
  }

  frames(direction: Direction, port: string, frames: readonly Uint8Array[]): void {
    for (const f of frames) this.frame(direction, port, f);
  }

  frame(direction: Direction, port: string, f: Uint8Array): void {
    if (f.length < 14) return this.sink.frame(direction, port, 'malformed');
    let off = 12;
    let ethertype = readU16(f, off);
    if (ethertype === ETHERTYPE_VLAN) {
      if (f.length < 18) return this.sink.frame(direction, port, 'malformed');
      off = 16;
      ethertype = readU16(f, off);
    }
    off += 2;
    if (ethertype === ETHERTYPE_LLDP) return this.sink.frame(direction, port, 'lldp');
    if (ethertype !== ETHERTYPE_ECP) return this.sink.frame(direction, port, 'other');
    if (f.length < off + 4) return this.sink.frame(direction, port, 'malformed');
    this.sink.frame(direction, port, 'ecp');
    const w0 = readU16(f, off);
    const op = (w0 >> 10) & 0x3;
    const subtype = w0 & 0x3ff;
    if (op === ECP_OP_ACK) return this.sink.ecp(direction, port, 'ack', false);
    if (op !== ECP_OP_REQUEST) return this.sink.ecp(direction, port, 'other', false);
    // The same ECPDU again (same addresses, sequence and payload): a retransmission (tx) or a
    // duplicate (rx). Frames are zero-padded to 60 octets, so the hash covers the padding too.
    const dup = this.remember(direction, port, fnv(f, 0, f.length) * 2048 + (f.length & 0x7ff));
    this.sink.ecp(direction, port, 'request', dup);
    if (dup || subtype !== ECP_SUBTYPE_VDP) return;
    this.vdp(direction, port, f, off + 4);
  }

  private remember(direction: Direction, port: string, key: number): boolean {
    const scopes = this.seen[direction];
    let m = scopes.get(port);
    if (!m) scopes.set(port, (m = new Map()));
    if (m.has(key)) {
      m.delete(key);
      m.set(key, true);
      return true;
    }
    m.set(key, true);
    const max = this.opts.maxSeen ?? 2048;
    if (m.size > max) m.delete(m.keys().next().value!);
    return false;
  }

  private vdp(direction: Direction, port: string, f: Uint8Array, start: number): void {
    let off = start;
    while (off + 2 <= f.length) {
      const hdr = readU16(f, off);
      const type = hdr >> 9;
      const len = hdr & 0x1ff;
      if (type === 0 || off + 2 + len > f.length) break;
      const name = TLV_NAMES[type] ?? 'other';
      if (type >= 1 && type <= 4 && len >= 23) {
        const v = off + 2;
        const status = f[v]!;
        const response = (status & STATUS_RESPONSE) !== 0;
        const fromStation = (this.role === 'bridge') === (direction === 'rx');
        const kind = response ? 'response' : fromStation ? 'request' : 'unsolicited';
        this.sink.tlv(direction, port, name, kind);
        let ph = this.portHash.get(port);
        if (ph === undefined) this.portHash.set(port, (ph = fnvText(port)));
        // (port, VSI id format and id, mode): 32 bits of hash, the mode in the low bits.
        const pairKey = fnv(f, v + 5, v + 22, ph) * 8 + type;
        const opens =
          kind === 'request' && (this.role === 'bridge' ? direction === 'rx' : direction === 'tx');
        const closes =
          kind === 'response' && (this.role === 'bridge' ? direction === 'tx' : direction === 'rx');
        if (opens) {
          // Each attempt (a new ECPDU; ECP retransmissions were skipped above) restarts the
          // clock: a lost keep-alive must not count until the next one is answered.
          this.open(pairKey);
        } else if (closes) {
          const at = this.pending.get(pairKey);
          if (at !== undefined) {
            this.pending.delete(pairKey);
            const s = Number(this.now() - at) / 1e9;
            if (s <= (this.opts.maxAgeS ?? 600)) this.sink.latency(name, s);
          }
        }
      } else {
        this.sink.tlv(direction, port, name, 'none');
      }
      off += 2 + len;
    }
  }

  private open(key: number): void {
    this.pending.delete(key);
    this.pending.set(key, this.now());
    const max = this.opts.maxPending ?? 4096;
    if (this.pending.size > max) this.pending.delete(this.pending.keys().next().value!);
  }

  /** Requests still waiting for a response (for tests and the info gauge). */
  get waiting(): number {
    return this.pending.size;
  }
}
