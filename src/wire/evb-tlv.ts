/** The LLDP EVB TLV body (802.1Q-2014 D.2.12): 5 octets after OUI 00-80-C2 subtype 0x0D. */
import { checkInt } from './bytes.js';
import { fail, ok, type Decoded } from './errors.js';

export const EVB_SUBTYPE = 0x0d;
export const EVB_BODY_LEN = 5;

export const EVB_MODE_BRIDGE = 1;
export const EVB_MODE_STATION = 2;

/** RRSTAT values. */
export const RRSTAT_NO = 0;
export const RRSTAT_YES = 1;
export const RRSTAT_UNKNOWN = 3;

export interface EvbTlv {
  // octet 1, bridge status
  readonly bgid: boolean;
  readonly rrcap: boolean;
  readonly rrctr: boolean;
  // octet 2, station status
  readonly sgid: boolean;
  readonly rrreq: boolean;
  readonly rrstat: number;
  // octet 3
  readonly r: number;
  readonly rte: number;
  // octet 4
  readonly evbMode: number;
  readonly rolRwd: boolean;
  readonly rwd: number;
  // octet 5
  readonly rolRka: boolean;
  readonly rka: number;
}

/** Decodes the 5 body octets; `base` is their offset in the frame. Reserved bits are ignored. */
export function decodeEvbBody(b: Uint8Array, base = 0): Decoded<EvbTlv> {
  if (b.length !== EVB_BODY_LEN) {
    return fail('evb', base, `EVB TLV body must be ${EVB_BODY_LEN} octets, got ${b.length}`);
  }
  const o1 = b[0]!;
  const o2 = b[1]!;
  const o3 = b[2]!;
  const o4 = b[3]!;
  const o5 = b[4]!;
  return ok({
    bgid: (o1 & 0x04) !== 0,
    rrcap: (o1 & 0x02) !== 0,
    rrctr: (o1 & 0x01) !== 0,
    sgid: (o2 & 0x08) !== 0,
    rrreq: (o2 & 0x04) !== 0,
    rrstat: o2 & 0x03,
    r: o3 >> 5,
    rte: o3 & 0x1f,
    evbMode: o4 >> 6,
    rolRwd: (o4 & 0x20) !== 0,
    rwd: o4 & 0x1f,
    rolRka: (o5 & 0x20) !== 0,
    rka: o5 & 0x1f,
  });
}

export function encodeEvbBody(t: EvbTlv): Uint8Array {
  checkInt('evb.rrstat', t.rrstat, 0, 3);
  checkInt('evb.r', t.r, 0, 7);
  checkInt('evb.rte', t.rte, 0, 31);
  checkInt('evb.evbMode', t.evbMode, 0, 3);
  checkInt('evb.rwd', t.rwd, 0, 31);
  checkInt('evb.rka', t.rka, 0, 31);
  return Uint8Array.of(
    (t.bgid ? 0x04 : 0) | (t.rrcap ? 0x02 : 0) | (t.rrctr ? 0x01 : 0),
    (t.sgid ? 0x08 : 0) | (t.rrreq ? 0x04 : 0) | t.rrstat,
    (t.r << 5) | t.rte,
    (t.evbMode << 6) | (t.rolRwd ? 0x20 : 0) | t.rwd,
    (t.rolRka ? 0x20 : 0) | t.rka,
  );
}

/** EVB time unit: exponent x means 10 µs · 2^x. Returned in microseconds. */
export function evbTimeUs(exponent: number): number {
  return 10 * 2 ** exponent;
}
