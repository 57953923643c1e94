/**
 * What the station node and the bridge node do alike: reading a received frame up to the
 * point where the roles differ, the EVB agent's profile announcement, the authentication gate
 * on PDUs in and out, and when a peer session next needs to run.
 */
import type { EcpEndpoint } from '../ecp/endpoint.js';
import { isGroupMac } from '../wire/bytes.js';
import { decodeEcp, ECP_SUBTYPE_VDP, ECP_VERSION, type EcpHeader } from '../wire/ecp.js';
import { decodeEthernet, ETHERTYPE_ECP, ETHERTYPE_LLDP } from '../wire/ethernet.js';
import { SPLITNVE_PROFILE_VERSION, type SplitnveProfileTlv } from '../wire/lldp.js';
import type { WireOptions } from '../wire/options.js';
import { authTlvBytes, verifyPdu, type AuthFailure, type AuthHooks } from '../vdp/auth.js';
import type { PackOptions, ParsedVdpPdu } from '../vdp/pdu.js';
import type { Profile } from '../vdp/types.js';

/** Why a frame was not processed, for a `frame-dropped` event (field and offset when malformed). */
export interface Dropped {
  readonly source?: string;
  readonly why: string;
  readonly field?: string;
  readonly offset?: number;
}

export type Intake =
  /** Our own frame, looped back: ignored silently. */
  | { readonly kind: 'own' }
  | ({ readonly kind: 'drop' } & Dropped)
  | {
      readonly kind: 'lldp';
      readonly source: string;
      readonly payload: Uint8Array;
      /** Offset of the LLDPDU in the frame. */
      readonly offset: number;
    }
  | {
      readonly kind: 'ecp';
      readonly source: string;
      readonly destination: string;
      readonly header: EcpHeader;
      readonly ulpdu: Uint8Array;
      /** Offset of the ULPDU (the VDP TLVs) in the frame. */
      readonly base: number;
    };

/** Reads a frame received on a port whose MAC is `own` and which accepts `accept` destinations. */
export function intake(frame: Uint8Array, own: string, accept: ReadonlySet<string>): Intake {
  const eth = decodeEthernet(frame);
  if (!eth.ok) return { kind: 'drop', ...eth.error, why: eth.error.message };
  const h = eth.value.header;
  if (h.source === own) return { kind: 'own' };
  if (!accept.has(h.destination)) {
    return { kind: 'drop', source: h.source, why: `not addressed to us (${h.destination})` };
  }
  if (isGroupMac(h.source)) return { kind: 'drop', source: h.source, why: 'group source address' };
  if (h.ethertype === ETHERTYPE_LLDP) {
    return {
      kind: 'lldp',
      source: h.source,
      payload: eth.value.payload,
      offset: eth.value.payloadOffset,
    };
  }
  if (h.ethertype !== ETHERTYPE_ECP) {
    return { kind: 'drop', source: h.source, why: `ethertype 0x${h.ethertype.toString(16)}` };
  }
  const e = decodeEcp(eth.value.payload, eth.value.payloadOffset);
  if (!e.ok) return { kind: 'drop', source: h.source, ...e.error, why: e.error.message };
  const eh = e.value.header;
  if (eh.version !== ECP_VERSION || eh.subtype !== ECP_SUBTYPE_VDP) {
    return {
      kind: 'drop',
      source: h.source,
      why: `ECP version ${eh.version} subtype ${eh.subtype}`,
      field: 'ecp',
      offset: eth.value.payloadOffset,
    };
  }
  return {
    kind: 'ecp',
    source: h.source,
    destination: h.destination,
    header: eh,
    ulpdu: e.value.ulpdu,
    base: eth.value.payloadOffset + 4,
  };
}

/** The splitnve profile TLV a node announces (none in the plain profile). */
export function profileAnnouncement(
  profile: Profile,
  authConfigured: boolean,
): { profile?: SplitnveProfileTlv } {
  if (profile !== 'splitnve') return {};
  return {
    profile: {
      version: SPLITNVE_PROFILE_VERSION,
      auth: authConfigured,
      ipFilters: true,
      deactivate: true,
    },
  };
}

/** Whether PDUs with a peer are signed and checked: `require` always, `prefer` with splitnve peers. */
export function authApplies(
  hooks: AuthHooks | undefined,
  local: string,
  peer: string,
  peerProfile: Profile,
): hooks is AuthHooks {
  if (!hooks) return false;
  const mode = hooks.mode(local, peer);
  return mode === 'require' || (mode === 'prefer' && peerProfile === 'splitnve');
}

/** Pack options that sign every PDU sent from `source` to `destination` (when auth applies). */
export function signing(
  hooks: AuthHooks | undefined,
  local: string,
  peer: string,
  peerProfile: Profile,
  source: string,
  destination: string,
  wire: WireOptions,
): PackOptions {
  if (!authApplies(hooks, local, peer, peerProfile)) return {};
  return {
    sign: (unsigned) => {
      const k = hooks.signer(local, peer);
      return k
        ? authTlvBytes(k, source, destination, ECP_SUBTYPE_VDP, unsigned, wire)
        : new Uint8Array(0);
    },
  };
}

export type AuthStatus = 'authenticated' | 'unsigned' | 'failed';

export type AuthVerdict =
  | {
      readonly pass: false;
      readonly reason: AuthFailure;
      readonly keyId?: number;
      readonly sequence?: string;
    }
  | { readonly pass: true; readonly status: 'authenticated' | 'unsigned' | undefined };

/** Checks a received PDU from `peer` (its frame sent to `destination`). `status` undefined: auth does not apply. */
export function gate(
  hooks: AuthHooks | undefined,
  local: string,
  peer: string,
  peerProfile: Profile,
  destination: string,
  payload: Uint8Array,
  auth: ParsedVdpPdu['auth'],
  /** Record the accepted sequence (false: only check; the PDU is recorded when processed). */
  record = true,
): AuthVerdict {
  if (!authApplies(hooks, local, peer, peerProfile)) return { pass: true, status: undefined };
  const r = verifyPdu(
    hooks,
    local,
    peer,
    peer,
    destination,
    ECP_SUBTYPE_VDP,
    payload,
    auth,
    record,
  );
  if (!r.ok) {
    return {
      pass: false,
      reason: r.reason,
      ...(r.keyId !== undefined ? { keyId: r.keyId } : {}),
      ...(r.sequence !== undefined ? { sequence: r.sequence.toString() } : {}),
    };
  }
  return { pass: true, status: r.signed ? 'authenticated' : 'unsigned' };
}

/**
 * When a peer session next needs to run: its ECP timer, its VDP timers, or — when something is
 * queued and nothing is outstanding — the end of the ECP gap.
 */
export function sessionDeadline(
  ecp: EcpEndpoint<unknown>,
  vdp: { deadline(): number | undefined; hasQueued(): boolean },
): number | undefined {
  let d = ecp.deadline();
  const v = vdp.deadline();
  if (v !== undefined && (d === undefined || v < d)) d = v;
  if (vdp.hasQueued() && ecp.idle()) {
    const at = ecp.sendableAt();
    if (d === undefined || at < d) d = at;
  }
  return d;
}
