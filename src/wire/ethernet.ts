/** Ethernet II header, with an optional 802.1Q tag. */
import { ByteWriter, checkInt, macToString, readU16 } from './bytes.js';
import { EncodeError, fail, ok, type Decoded } from './errors.js';

export const ETHERTYPE_LLDP = 0x88cc;
export const ETHERTYPE_ECP = 0x8940;
export const ETHERTYPE_VLAN = 0x8100;

/** Nearest-customer-bridge group address: LLDP, and ECP on a direct link. */
export const NEAREST_CUSTOMER_BRIDGE = '01:80:c2:00:00:00';
/** Nearest-bridge group address used by ordinary LLDP agents. */
export const NEAREST_BRIDGE = '01:80:c2:00:00:0e';

export const MIN_FRAME = 60; // without FCS
export const MAX_FRAME = 1514; // without FCS; never send an ECP frame longer than this (lldpad Q10)

export interface VlanTag {
  readonly pcp: number;
  readonly dei: number;
  readonly vid: number;
}

export interface EthernetHeader {
  readonly destination: string;
  readonly source: string;
  readonly vlan?: VlanTag;
  readonly ethertype: number;
}

export interface EthernetFrame {
  readonly header: EthernetHeader;
  /** Octet offset of the payload in the frame. */
  readonly payloadOffset: number;
  readonly payload: Uint8Array;
}

export function decodeEthernet(frame: Uint8Array): Decoded<EthernetFrame> {
  if (frame.length < 14) {
    return fail(
      'ethernet',
      0,
      `frame of ${frame.length} octets is shorter than an Ethernet header`,
    );
  }
  const destination = macToString(frame, 0);
  const source = macToString(frame, 6);
  let ethertype = readU16(frame, 12);
  let off = 14;
  let vlan: VlanTag | undefined;
  if (ethertype === ETHERTYPE_VLAN) {
    if (frame.length < 18) return fail('ethernet.vlan', 14, 'truncated 802.1Q tag');
    const tci = readU16(frame, 14);
    vlan = { pcp: tci >> 13, dei: (tci >> 12) & 1, vid: tci & 0xfff };
    ethertype = readU16(frame, 16);
    off = 18;
  }
  const header: EthernetHeader = vlan
    ? { destination, source, vlan, ethertype }
    : { destination, source, ethertype };
  return ok({ header, payloadOffset: off, payload: frame.subarray(off) });
}

/** Builds a frame, zero-padded to the 60-octet minimum; refuses frames over 1514 octets. */
export function encodeEthernet(header: EthernetHeader, payload: Uint8Array): Uint8Array {
  checkInt('ethertype', header.ethertype, 0x600, 0xffff);
  const w = new ByteWriter(Math.max(MIN_FRAME, payload.length + 18));
  w.mac(header.destination, 'destination').mac(header.source, 'source');
  if (header.vlan) {
    checkInt('vlan.pcp', header.vlan.pcp, 0, 7);
    checkInt('vlan.dei', header.vlan.dei, 0, 1);
    checkInt('vlan.vid', header.vlan.vid, 0, 4095);
    w.u16(ETHERTYPE_VLAN).u16((header.vlan.pcp << 13) | (header.vlan.dei << 12) | header.vlan.vid);
  }
  w.u16(header.ethertype).bytes(payload);
  if (w.length < MIN_FRAME) w.zeros(MIN_FRAME - w.length);
  if (w.length > MAX_FRAME + (header.vlan ? 4 : 0)) {
    throw new EncodeError('frame', `${w.length} octets exceeds the ${MAX_FRAME}-octet maximum`);
  }
  return w.finish();
}
