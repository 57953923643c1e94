/**
 * VDP PDUs inside ECP: packing outgoing TLVs into as few PDUs as fit, and reading incoming
 * ones into VSI TLVs with their Manager ID and org-specific TLVs.
 *
 * Layout sent: Manager ID TLV, one or more VSI TLVs (each followed by its org TLVs), then,
 * in the splitnve profile, the authentication TLV, then End (always: lldpad parses until End
 * in a buffer it does not clear, LLDPAD-NOTES Q2).
 */
import { ByteWriter, bytesEqual } from '../wire/bytes.js';
import { ECP_MAX_ULPDU } from '../wire/ecp.js';
import { fail, ok, type Decoded, type DecodeError } from '../wire/errors.js';
import type { WireOptions } from '../wire/options.js';
import {
  AUTH_TLV_LEN,
  decodeVdp,
  encodeManagerId,
  MANAGER_ID_LEN,
  vsiKey,
  type AuthTlv,
  type VdpTlv,
  type VsiTlv,
} from '../wire/vdp.js';

export interface ParsedVsi {
  readonly tlv: VsiTlv;
  readonly managerId: Uint8Array;
  readonly key: string;
  /** Org-specific TLVs that followed this VSI TLV (Cisco TLVs name their VSI and are matched by id). */
  readonly orgTlvs: VdpTlv[];
}

export interface ParsedVdpPdu {
  /** The first Manager ID of the PDU. */
  readonly managerId: Uint8Array;
  readonly vsis: ParsedVsi[];
  /** TLVs that could not be read; the others still count. */
  readonly malformed: {
    readonly type: number;
    readonly value: Uint8Array;
    readonly error: DecodeError;
  }[];
  /** TLVs of unknown type, skipped. */
  readonly unknown: number;
  /** The authentication TLV and the number of payload octets before it (what it signs). */
  readonly auth?: { readonly tlv: AuthTlv; readonly signedLength: number };
}

/**
 * Reads a VDP payload. The first TLV must be a Manager ID (lldpad drops the PDU otherwise);
 * a later Manager ID applies to the VSI TLVs after it.
 */
export function parseVdpPdu(ulpdu: Uint8Array, opts: WireOptions, base = 0): Decoded<ParsedVdpPdu> {
  const d = decodeVdp(ulpdu, base, opts);
  if (!d.ok) return d;
  const items = d.value.items;
  const first = items[0];
  if (!first || first.tlv.kind !== 'manager-id') {
    return fail(
      'vdp.managerId',
      base + (first?.offset ?? 0),
      'a VDP PDU must start with a Manager ID TLV',
    );
  }
  const vsis: ParsedVsi[] = [];
  const malformed: { type: number; value: Uint8Array; error: DecodeError }[] = [];
  let unknown = 0;
  let managerId = first.tlv.managerId;
  let auth: { tlv: AuthTlv; signedLength: number } | undefined;
  for (const item of items) {
    const t = item.tlv;
    switch (t.kind) {
      case 'manager-id':
        managerId = t.managerId;
        break;
      case 'vsi':
        vsis.push({ tlv: t, managerId, key: vsiKey(t.idFormat, t.id), orgTlvs: [] });
        break;
      case 'cisco-vm-name':
      case 'cisco-l3-addr': {
        const k = vsiKey(t.vsiIdFormat, t.vsiId);
        const owner = [...vsis].reverse().find((v) => v.key === k) ?? vsis[vsis.length - 1];
        owner?.orgTlvs.push(t);
        break;
      }
      case 'org':
        vsis[vsis.length - 1]?.orgTlvs.push(t);
        break;
      case 'splitnve-auth':
        auth = { tlv: t, signedLength: item.offset };
        break;
      case 'malformed':
        malformed.push({ type: item.type, value: t.value, error: t.error });
        break;
      case 'unknown':
        unknown++;
        break;
      case 'end':
        break;
    }
  }
  return ok({
    managerId: first.tlv.managerId,
    vsis,
    malformed,
    unknown,
    ...(auth ? { auth } : {}),
  });
}

/** One VSI TLV (with its org TLVs) waiting to be sent, and who is waiting for it. */
export interface OutgoingTlv<K> {
  readonly managerId: Uint8Array;
  readonly bytes: Uint8Array;
  readonly ref: K;
}

export interface PackOptions {
  /** Largest payload, End included (1494 by default). */
  readonly maxPayload?: number;
  /** Most VSI TLVs per PDU (lldpad peers are happiest with 1); default: as many as fit. */
  readonly maxTlvs?: number;
  /** Appends the authentication TLV over the payload so far (splitnve profile). */
  readonly sign?: (unsigned: Uint8Array) => Uint8Array;
}

/**
 * Takes TLVs from the front of `queue` that share the first one's Manager ID and fit, and
 * builds the payload. Returns the payload and how many queue entries it carries.
 */
export function packPdu<K>(
  queue: readonly OutgoingTlv<K>[],
  opts: PackOptions = {},
): { payload: Uint8Array; count: number } | undefined {
  const head = queue[0];
  if (!head) return undefined;
  const max = opts.maxPayload ?? ECP_MAX_ULPDU;
  const maxTlvs = opts.maxTlvs ?? Infinity;
  const reserve = 2 + (opts.sign ? AUTH_TLV_LEN : 0);
  const w = new ByteWriter(256);
  encodeManagerId(w, head.managerId);
  let count = 0;
  for (const t of queue) {
    if (count >= maxTlvs) break;
    if (count > 0 && !bytesEqual(t.managerId, head.managerId)) break;
    if (count > 0 && w.length + t.bytes.length + reserve > max) break;
    w.bytes(t.bytes);
    count++;
  }
  if (opts.sign) w.bytes(opts.sign(w.finish()));
  w.u16(0); // End
  return { payload: w.finish(), count };
}

export const MANAGER_ID_TLV_LEN = 2 + MANAGER_ID_LEN;
