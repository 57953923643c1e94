/** Whole-frame decoding: Ethernet, then LLDP or ECP (+ VDP for ECP subtype 1 requests). */
import { decodeEcp, ECP_OP_REQUEST, ECP_SUBTYPE_VDP, type EcpHeader } from './ecp.js';
import { decodeEthernet, ETHERTYPE_ECP, ETHERTYPE_LLDP, type EthernetHeader } from './ethernet.js';
import type { DecodeError } from './errors.js';
import { decodeLldp, type LldpPdu } from './lldp.js';
import { DEFAULT_WIRE_OPTIONS, type WireOptions } from './options.js';
import { decodeVdp, type VdpPdu } from './vdp.js';

export interface DecodedFrame {
  readonly length: number;
  readonly ethernet?: EthernetHeader;
  readonly lldp?: LldpPdu;
  readonly ecp?: EcpHeader;
  /** Octets after the ECP header (VDP TLVs and padding for a request; padding for an ACK). */
  readonly ecpPayloadLength?: number;
  readonly vdp?: VdpPdu;
  /** Set when the frame is malformed; the fields decoded before the error are kept. */
  readonly error?: DecodeError;
}

export function decodeFrame(
  frame: Uint8Array,
  opts: WireOptions = DEFAULT_WIRE_OPTIONS,
): DecodedFrame {
  const length = frame.length;
  const eth = decodeEthernet(frame);
  if (!eth.ok) return { length, error: eth.error };
  const ethernet = eth.value.header;
  const base = eth.value.payloadOffset;
  const payload = eth.value.payload;
  if (ethernet.ethertype === ETHERTYPE_LLDP) {
    const l = decodeLldp(payload, base, opts);
    return l.ok ? { length, ethernet, lldp: l.value } : { length, ethernet, error: l.error };
  }
  if (ethernet.ethertype === ETHERTYPE_ECP) {
    const e = decodeEcp(payload, base);
    if (!e.ok) return { length, ethernet, error: e.error };
    const ecp = e.value.header;
    const ecpPayloadLength = e.value.ulpdu.length;
    if (ecp.op === ECP_OP_REQUEST && ecp.subtype === ECP_SUBTYPE_VDP) {
      const v = decodeVdp(e.value.ulpdu, base + 4, opts);
      return v.ok
        ? { length, ethernet, ecp, ecpPayloadLength, vdp: v.value }
        : { length, ethernet, ecp, ecpPayloadLength, error: v.error };
    }
    return { length, ethernet, ecp, ecpPayloadLength };
  }
  return { length, ethernet };
}
