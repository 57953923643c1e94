/** ECP (802.1Q clause 43) header: version:4 | op:2 | subtype:10 ; sequence:16. */
import { ByteWriter, checkInt, readU16 } from './bytes.js';
import { fail, ok, type Decoded } from './errors.js';

export const ECP_VERSION = 1;
export const ECP_OP_REQUEST = 0;
export const ECP_OP_ACK = 1;
export const ECP_SUBTYPE_VDP = 1;
export const ECP_SUBTYPE_PECSP = 2;
export const ECP_HEADER_LEN = 4;
/** Largest upper-layer PDU in one ECPDU (WIRE.md; lldpad qbg_ecp22.h uses the same bound). */
export const ECP_MAX_ULPDU = 1494;

export interface EcpHeader {
  readonly version: number;
  readonly op: number;
  readonly subtype: number;
  readonly sequence: number;
}

export interface EcpPdu {
  readonly header: EcpHeader;
  /** Upper-layer PDU (for VDP: the VDP TLVs, possibly followed by zero padding). */
  readonly ulpdu: Uint8Array;
}

/** `base` is the offset of the ECP header in the enclosing frame, for error reporting. */
export function decodeEcp(bytes: Uint8Array, base = 0): Decoded<EcpPdu> {
  if (bytes.length < ECP_HEADER_LEN) {
    return fail('ecp', base, `ECP header needs 4 octets, got ${bytes.length}`);
  }
  const w0 = readU16(bytes, 0);
  const header: EcpHeader = {
    version: w0 >> 12,
    op: (w0 >> 10) & 0x3,
    subtype: w0 & 0x3ff,
    sequence: readU16(bytes, 2),
  };
  return ok({ header, ulpdu: bytes.subarray(ECP_HEADER_LEN) });
}

export function encodeEcp(header: EcpHeader, ulpdu: Uint8Array = new Uint8Array(0)): Uint8Array {
  checkInt('ecp.version', header.version, 0, 15);
  checkInt('ecp.op', header.op, 0, 3);
  checkInt('ecp.subtype', header.subtype, 0, 0x3ff);
  checkInt('ecp.sequence', header.sequence, 0, 0xffff);
  checkInt('ecp.ulpdu length', ulpdu.length, 0, ECP_MAX_ULPDU);
  return new ByteWriter(ECP_HEADER_LEN + ulpdu.length)
    .u16((header.version << 12) | (header.op << 10) | header.subtype)
    .u16(header.sequence)
    .bytes(ulpdu)
    .finish();
}
