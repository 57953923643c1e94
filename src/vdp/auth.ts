/**
 * splitnve authentication of VDP PDUs (Req-11; WIRE.md "splitnve profile extensions"):
 * an organizationally specific TLV, last before End, carrying key id(2) | sequence(8) |
 * HMAC-SHA-256(32) computed with the per-station key over: source MAC, destination MAC, ECP
 * subtype (2 octets), every VDP TLV octet before the authentication TLV, key id, sequence.
 *
 * The protocol core stays sans-IO: keys, sequence numbers and their persistence come from an
 * injected `AuthHooks` object (the daemon's key store). Computing an HMAC is not I/O.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ByteWriter } from '../wire/bytes.js';
import type { WireOptions } from '../wire/options.js';
import { AUTH_HMAC_LEN, encodeAuth, type AuthTlv } from '../wire/vdp.js';

export type AuthMode = 'require' | 'prefer' | 'off';

export type AuthFailure =
  /** No authentication TLV where one is required. */
  | 'unsigned'
  /** A key id we have no key for (from this peer). */
  | 'unknown-key'
  /** The HMAC does not match: forged, altered, or signed with another key. */
  | 'bad-hmac'
  /** A sequence not above the last one accepted from this peer. */
  | 'replay';

export interface AuthHooks {
  /** Policy for one peer (port or uplink, peer MAC). */
  mode(local: string, peer: string): AuthMode;
  /** Key and sequence to sign the next PDU to this peer; the sequence must increase strictly, across restarts too. */
  signer(
    local: string,
    peer: string,
  ): { keyId: number; key: Uint8Array; sequence: bigint } | undefined;
  /** The key of `keyId` for PDUs from this peer (two may be valid at once, for rotation). */
  key(local: string, peer: string, keyId: number): Uint8Array | undefined;
  /**
   * The last sequence accepted from this peer (persisted across restarts), if any. A bridge
   * must answer per station across all its ports, not per (port, station): the HMAC does not
   * cover the receiving port, so a PDU captured on one port would verify on another.
   */
  lastAccepted(local: string, peer: string): bigint | undefined;
  /** Records an accepted sequence from this peer. */
  accepted(local: string, peer: string, sequence: bigint): void;
  /**
   * Whether any key exists for this peer. Optional: under `require` a bridge keeps no state
   * for, and ignores the LLDP of, a station for which this says false (flood safety).
   */
  knows?(local: string, peer: string): boolean;
}

export function authInput(
  source: string,
  destination: string,
  subtype: number,
  unsigned: Uint8Array,
  keyId: number,
  sequence: bigint,
): Uint8Array {
  return new ByteWriter(unsigned.length + 32)
    .mac(source)
    .mac(destination)
    .u16(subtype)
    .bytes(unsigned)
    .u16(keyId)
    .u64(sequence)
    .finish();
}

export function hmacOf(key: Uint8Array, input: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(input).digest());
}

/** The authentication TLV octets for a PDU whose TLVs so far are `unsigned`. */
export function authTlvBytes(
  a: { keyId: number; key: Uint8Array; sequence: bigint },
  source: string,
  destination: string,
  subtype: number,
  unsigned: Uint8Array,
  wire: WireOptions,
): Uint8Array {
  const hmac = hmacOf(
    a.key,
    authInput(source, destination, subtype, unsigned, a.keyId, a.sequence),
  );
  const w = new ByteWriter(48);
  encodeAuth(w, { keyId: a.keyId, sequence: a.sequence, hmac }, wire);
  return w.finish();
}

/**
 * Checks a received PDU. `payload` is the whole VDP payload; `auth` the authentication TLV and
 * how many payload octets it signs. Records the sequence when the PDU is accepted, unless
 * `record` is false (a pre-check before any state is created for the peer).
 */
export function verifyPdu(
  hooks: AuthHooks,
  local: string,
  peer: string,
  source: string,
  destination: string,
  subtype: number,
  payload: Uint8Array,
  auth: { tlv: AuthTlv; signedLength: number } | undefined,
  record = true,
):
  | { ok: true; signed: boolean }
  | { ok: false; reason: AuthFailure; keyId?: number; sequence?: bigint } {
  const mode = hooks.mode(local, peer);
  if (mode === 'off') return { ok: true, signed: false };
  if (!auth)
    return mode === 'require' ? { ok: false, reason: 'unsigned' } : { ok: true, signed: false };
  const { keyId, sequence, hmac } = auth.tlv;
  const key = hooks.key(local, peer, keyId);
  if (!key) return { ok: false, reason: 'unknown-key', keyId, sequence };
  const want = hmacOf(
    key,
    authInput(
      source,
      destination,
      subtype,
      payload.subarray(0, auth.signedLength),
      keyId,
      sequence,
    ),
  );
  if (hmac.length !== AUTH_HMAC_LEN || !timingSafeEqual(want, hmac)) {
    return { ok: false, reason: 'bad-hmac', keyId, sequence };
  }
  const last = hooks.lastAccepted(local, peer);
  if (last !== undefined && sequence <= last)
    return { ok: false, reason: 'replay', keyId, sequence };
  if (record) hooks.accepted(local, peer, sequence);
  return { ok: true, signed: true };
}
