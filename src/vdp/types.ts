/** Types shared by the VDP station and bridge machines. */
import type { FilterEntry } from '../wire/filter.js';
import type { VdpTlv, VsiTlvType } from '../wire/vdp.js';
import { evbTimeUs } from '../wire/evb-tlv.js';

export type Profile = '802.1Qbg' | 'splitnve';

/** VDP modes are the VSI TLV types 1..4. */
export type VsiMode = VsiTlvType;
export const MODE_PRE_ASSOCIATE = 1;
export const MODE_PRE_ASSOCIATE_RR = 2;
export const MODE_ASSOCIATE = 3;
export const MODE_DE_ASSOCIATE = 4;

/** VDP state of a VSI (on either side). */
export type VsiState = 'init' | 'pre-associated' | 'pre-associated-rr' | 'associated';

/** RFC 8394 TSI state (figure 6): what the nNVE's effects depend on. */
export type TsiState = 'Init' | 'Associated' | 'Activated';

export function stateOfMode(mode: VsiMode): VsiState {
  switch (mode) {
    case 1:
      return 'pre-associated';
    case 2:
      return 'pre-associated-rr';
    case 3:
      return 'associated';
    case 4:
      return 'init';
  }
}

export function modeOfState(state: VsiState): VsiMode | undefined {
  switch (state) {
    case 'pre-associated':
      return 1;
    case 'pre-associated-rr':
      return 2;
    case 'associated':
      return 3;
    case 'init':
      return undefined;
  }
}

export function tsiState(state: VsiState): TsiState {
  return state === 'init' ? 'Init' : state === 'associated' ? 'Activated' : 'Associated';
}

/** What identifies and describes a VSI in a request (everything of a VSI TLV but type and status). */
export interface VsiSpec {
  readonly managerId: Uint8Array;
  readonly typeId: number;
  readonly typeVersion: number;
  readonly idFormat: number;
  readonly id: Uint8Array;
  readonly filterFormat: number;
  readonly entries: readonly FilterEntry[];
  /** Organizationally specific TLVs sent after the VSI TLV (e.g. Cisco VM name). */
  readonly orgTlvs?: readonly VdpTlv[];
}

export interface Hints {
  /** Migrating to this bridge. */
  readonly m?: boolean;
  /** Suspended, or migrating away. */
  readonly s?: boolean;
}

/** Negotiated EVB values that drive the VDP and ECP timers. */
export interface VdpTiming {
  readonly r: number;
  readonly rte: number;
  readonly rwd: number;
  readonly rka: number;
}

export function ackTimeoutUs(t: VdpTiming): number {
  return evbTimeUs(t.rte);
}

/** Station: how long to wait for a response, lldpad's rule: 1.5·((2R+1)·ack + RWD). */
export function responseWaitUs(t: VdpTiming): number {
  return Math.round(1.5 * ((2 * t.r + 1) * evbTimeUs(t.rte) + evbTimeUs(t.rwd)));
}

/** Station: keep-alive period, 10µs·2^RKA. */
export function keepAliveUs(t: VdpTiming): number {
  return evbTimeUs(t.rka);
}

/** Bridge: a VSI whose keep-alive has not come for 1.5·((2R+1)·ack + 10µs·2^RKA) expires. */
export function keepAliveExpiryUs(t: VdpTiming): number {
  return Math.round(1.5 * ((2 * t.r + 1) * evbTimeUs(t.rte) + evbTimeUs(t.rka)));
}
