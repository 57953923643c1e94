/**
 * VDP bridge machine for one station on one port: sans-IO.
 *
 * Each VSI TLV from the station is validated (reason 1 invalid format, 5 invalid
 * VID/GroupID/MAC), then — unless it is a keep-alive of the current state — handed to the
 * injected policy, which accepts it (and says which VIDs replace null VIDs) or refuses it with a
 * reason. The response copies the request's type, type id, version, VSI id and filter (with the
 * assigned VIDs). A VSI whose keep-alive has not come for 1.5·((2R+1)·ack + 10µs·2^RKA) is
 * dropped with an unsolicited De-Associate (status 0x00). The bridge may also de-associate, or
 * in the splitnve profile deactivate (unsolicited Pre-Associate-RR), a VSI on its own.
 */
import { TimerQueue } from '../core/timer-queue.js';
import { ByteWriter, bytesEqual, isGroupMac, readU24, ZERO_MAC } from '../wire/bytes.js';
import { filterLayout, isIpFormat, VID_MAX, type FilterEntry } from '../wire/filter.js';
import type { WireOptions } from '../wire/options.js';
import { decodeStatus, Reason, responseStatus, STATUS_RESPONSE } from '../wire/status.js';
import {
  encodeVsi,
  isVsiTlvType,
  vsiIdToString,
  vsiKey,
  VSI_FIXED_LEN,
  VSIID_UUID,
  type VdpTlv,
  type VsiTlv,
} from '../wire/vdp.js';
import { packPdu, type OutgoingTlv, type PackOptions, type ParsedVdpPdu } from './pdu.js';
import {
  keepAliveExpiryUs,
  MODE_ASSOCIATE,
  MODE_DE_ASSOCIATE,
  modeOfState,
  stateOfMode,
  type Hints,
  type Profile,
  type VdpTiming,
  type VsiMode,
  type VsiState,
} from './types.js';

/** A VSI as the bridge holds it. */
export interface BridgeVsi {
  readonly key: string;
  readonly vsiId: string;
  readonly managerId: Uint8Array;
  readonly typeId: number;
  readonly typeVersion: number;
  readonly idFormat: number;
  readonly id: Uint8Array;
  readonly filterFormat: number;
  /** Entries with the VIDs the bridge assigned. */
  readonly entries: readonly FilterEntry[];
  readonly state: VsiState;
  readonly hints: Hints;
  readonly orgTlvs: readonly VdpTlv[];
  /** When it entered its current state (µs). */
  readonly since: number;
}

export interface BridgeRequest {
  readonly port: string;
  readonly station: string;
  readonly key: string;
  readonly mode: 1 | 2 | 3;
  readonly tlv: VsiTlv;
  readonly managerId: Uint8Array;
  readonly orgTlvs: readonly VdpTlv[];
  readonly hints: Hints;
  readonly current: BridgeVsi | undefined;
  readonly profile: Profile;
}

export type BridgeDecision =
  | { readonly accept: true; readonly entries: readonly FilterEntry[] }
  | {
      readonly accept: false;
      readonly reason: number;
      readonly hard?: boolean;
      readonly message: string;
    };

/** Decides requests (VLAN allocation, VN resolution, quotas, authorization). Synchronous. */
export interface BridgePolicy {
  decide(req: BridgeRequest): BridgeDecision;
  /** A VSI left (went to Init) on `port`/`station`: release what `decide` reserved for it. */
  released?(port: string, station: string, vsi: BridgeVsi): void;
}

/** Accepts everything and echoes the entries (lldpad's release-build bridge). */
export const ECHO_POLICY: BridgePolicy = {
  decide: (req) => ({ accept: true, entries: req.tlv.entries }),
};

export type BridgeCause =
  'request' | 'update' | 'deassociate' | 'keepalive-expired' | 'admin' | 'takeover' | 'restored';

export type BridgeEvent =
  | {
      readonly type: 'tsi';
      readonly port: string;
      readonly station: string;
      readonly key: string;
      readonly vsiId: string;
      readonly from: VsiState;
      readonly to: VsiState;
      readonly cause: BridgeCause;
      /** The VSI after the change (for `to: 'init'`, as it was before). */
      readonly vsi: BridgeVsi;
    }
  | {
      readonly type: 'refused';
      readonly port: string;
      readonly station: string;
      readonly key: string;
      readonly vsiId: string;
      readonly mode: VsiMode;
      readonly reason: number;
      readonly hard: boolean;
      readonly keep: boolean;
      readonly message: string;
    }
  | {
      readonly type: 'dropped';
      readonly port: string;
      readonly station: string;
      readonly why: string;
      readonly field?: string;
      readonly offset?: number;
    };

export interface BridgePeerStats {
  requests: number;
  keepAlives: number;
  accepted: number;
  refused: number;
  refusedByReason: number[];
  deassociations: number;
  expiries: number;
  unsolicitedSent: number;
  dropped: number;
  queueOverflow: number;
  ecpFailures: number;
  /** Requests refused by the station's VSI quota or request rate (reason 2). */
  quotaRefused: number;
  rateRefused: number;
}

export interface VdpBridgeConfig {
  readonly profile: Profile;
  readonly wire: WireOptions;
  readonly maxTlvsPerPdu?: number;
  /** Most TLVs waiting to be sent to one station; more are dropped (the station retries). */
  readonly maxQueue?: number;
  /** Per-station limits; a request beyond them is refused with reason 2 (insufficient resources). */
  readonly quota?: StationQuota;
}

/**
 * Per-station quotas. Keep-alives and De-Associates are never limited (they refresh or free
 * what the station already holds); every other request spends one token of the rate bucket.
 */
export interface StationQuota {
  /** Most VSIs one station may hold; a request for one more is refused. */
  readonly maxVsis?: number;
  /** Sustained requests per second (token bucket refill). */
  readonly requestsPerSecond?: number;
  /** Requests allowed at once (bucket size; default max(1, requestsPerSecond)). */
  readonly requestBurst?: number;
}

export interface PeerCapsBridge {
  /** GroupID formats negotiated (BGID && SGID). Undefined while no EVB peer was heard. */
  readonly groupId?: boolean;
  readonly profile: Profile;
}

export interface BridgeContext {
  readonly policy: BridgePolicy;
  /** Called when `key` is about to become Associated (Activated) on this peer. */
  activating?(peer: VdpBridgePeer, key: string, now: number, out: BridgeEvent[]): void;
}

/** What a queued TLV is: a response, or an unsolicited TLV that is retried if ECP gives up. */
export interface QueueRef {
  readonly key: string;
  readonly unsolicited?: 2 | 4;
  attempts: number;
}

/** Attempts of an unsolicited TLV (each with ECP's own R retransmissions). */
const UNSOLICITED_ATTEMPTS = 3;

/** Checks a VSI TLV from a station; undefined when it is valid. */
export function validateVsiTlv(
  tlv: VsiTlv,
  caps: PeerCapsBridge,
  wire: WireOptions,
): { reason: number; hard: boolean; message: string } | undefined {
  const layout = filterLayout(tlv.filterFormat, wire);
  if (tlv.idFormat < 1 || tlv.idFormat > 5) {
    return {
      reason: Reason.InvalidFormat,
      hard: true,
      message: `VSI id format ${tlv.idFormat} is reserved`,
    };
  }
  if (!layout) {
    return {
      reason: Reason.InvalidFormat,
      hard: true,
      message: `unknown filter info format ${tlv.filterFormat}`,
    };
  }
  if (layout.group && caps.groupId !== true) {
    return {
      reason: Reason.InvalidFormat,
      hard: true,
      message: `filter format ${tlv.filterFormat} needs GroupID support, which EVB did not negotiate`,
    };
  }
  if (isIpFormat(tlv.filterFormat, wire) && caps.profile !== 'splitnve') {
    return {
      reason: Reason.InvalidFormat,
      hard: true,
      message: 'IP filter formats need the splitnve profile',
    };
  }
  if (tlv.entries.length === 0) {
    return { reason: Reason.InvalidFormat, hard: true, message: 'no filter entries' };
  }
  if (tlv.filterFormat === 1 && tlv.entries.length > 1 && tlv.entries.some((e) => e.vid === 0)) {
    return {
      reason: Reason.InvalidVidGroupMac,
      hard: true,
      message: 'a null VID must be the only VID entry',
    };
  }
  for (const [i, e] of tlv.entries.entries()) {
    if (e.vid === 1 || e.vid > VID_MAX) {
      return {
        reason: Reason.InvalidVidGroupMac,
        hard: true,
        message: `entry ${i}: VID ${e.vid} is invalid`,
      };
    }
    if (e.groupId !== undefined && (e.groupId === 0 || e.groupId > 0xffffff)) {
      return {
        reason: Reason.InvalidVidGroupMac,
        hard: true,
        message: `entry ${i}: GroupID ${e.groupId} is not a 24-bit VNI`,
      };
    }
    if (e.mac !== undefined) {
      const ipOnly = e.mac === ZERO_MAC && (e.ipv4 !== undefined || e.ipv6 !== undefined);
      if (!ipOnly && (e.mac === ZERO_MAC || isGroupMac(e.mac))) {
        return {
          reason: Reason.InvalidVidGroupMac,
          hard: true,
          message: `entry ${i}: MAC ${e.mac} is invalid`,
        };
      }
    }
  }
  return undefined;
}

/** A request that repeats the stored VSI (same mode, ids and filter; a null VID matches any). */
function isKeepAlive(cur: BridgeVsi, tlv: VsiTlv, managerId: Uint8Array): boolean {
  if (stateOfMode(tlv.type) !== cur.state) return false;
  if (tlv.typeId !== cur.typeId || tlv.typeVersion !== cur.typeVersion) return false;
  if (tlv.filterFormat !== cur.filterFormat || tlv.entries.length !== cur.entries.length)
    return false;
  if (!bytesEqual(managerId, cur.managerId)) return false;
  for (let i = 0; i < tlv.entries.length; i++) {
    const a = tlv.entries[i]!;
    const b = cur.entries[i]!;
    if (a.groupId !== b.groupId || a.mac !== b.mac || a.ipv4 !== b.ipv4 || a.ipv6 !== b.ipv6)
      return false;
    if (a.vid !== 0 && (a.vid !== b.vid || a.pcp !== b.pcp || a.ps !== b.ps)) return false;
  }
  return true;
}

export class VdpBridgePeer {
  readonly stats: BridgePeerStats = {
    requests: 0,
    keepAlives: 0,
    accepted: 0,
    refused: 0,
    refusedByReason: [0, 0, 0, 0, 0, 0],
    deassociations: 0,
    expiries: 0,
    unsolicitedSent: 0,
    dropped: 0,
    queueOverflow: 0,
    ecpFailures: 0,
    quotaRefused: 0,
    rateRefused: 0,
  };
  private vsis = new Map<string, BridgeVsi>();
  private queue: OutgoingTlv<QueueRef>[] = [];
  private timers = new TimerQueue();
  /** VSIs moved to another station by a takeover: key -> until when a stale Associate is refused. */
  private takenOver = new Map<string, number>();
  private timing: VdpTiming;
  private caps: PeerCapsBridge;
  /** Request-rate token bucket (see StationQuota). */
  private tokens: number | undefined;
  private tokensAt = 0;

  constructor(
    readonly port: string,
    readonly station: string,
    private readonly cfg: VdpBridgeConfig,
    private readonly ctx: BridgeContext,
    timing: VdpTiming,
    caps?: PeerCapsBridge,
  ) {
    this.timing = timing;
    this.caps = caps ?? { profile: cfg.profile };
  }

  setTiming(t: VdpTiming): void {
    this.timing = t;
  }

  getTiming(): VdpTiming {
    return this.timing;
  }

  setCaps(c: PeerCapsBridge): void {
    this.caps = c;
  }

  getCaps(): PeerCapsBridge {
    return this.caps;
  }

  get size(): number {
    return this.vsis.size;
  }

  list(): BridgeVsi[] {
    return [...this.vsis.values()];
  }

  get(key: string): BridgeVsi | undefined {
    return this.vsis.get(key);
  }

  expiresAt(key: string): number | undefined {
    return this.timers.get(key);
  }

  deadline(): number | undefined {
    return this.timers.next();
  }

  hasQueued(): boolean {
    return this.queue.length > 0;
  }

  /** Handles the VSI TLVs of a PDU from the station. */
  receive(pdu: ParsedVdpPdu, now: number, out: BridgeEvent[]): void {
    for (const m of pdu.malformed) {
      if (isVsiTlvType(m.type) && m.value.length >= VSI_FIXED_LEN) {
        // The fixed part names the VSI: answer "invalid format" instead of leaving it hanging.
        const v = m.value;
        const tlv: VsiTlv = {
          kind: 'vsi',
          type: m.type,
          status: v[0]!,
          typeId: readU24(v, 1),
          typeVersion: v[4]!,
          idFormat: v[5]!,
          id: v.slice(6, 22),
          filterFormat: v[22]!,
          entries: [],
        };
        if (!(tlv.status & STATUS_RESPONSE)) {
          const key = vsiKey(tlv.idFormat, tlv.id);
          this.stats.requests++;
          this.refuse(
            key,
            tlv,
            pdu.managerId,
            Reason.InvalidFormat,
            true,
            this.vsis.get(key),
            m.error.message,
            out,
          );
          continue;
        }
      }
      this.stats.dropped++;
      out.push({
        type: 'dropped',
        port: this.port,
        station: this.station,
        why: m.error.message,
        field: m.error.field,
        offset: m.error.offset,
      });
    }
    for (const pv of pdu.vsis) {
      if (pv.tlv.status & STATUS_RESPONSE) {
        this.stats.dropped++;
        out.push({
          type: 'dropped',
          port: this.port,
          station: this.station,
          why: 'response flag set in a station TLV',
        });
        continue;
      }
      this.request(pv.key, pv.tlv, pv.managerId, pv.orgTlvs, now, out);
    }
  }

  private request(
    key: string,
    tlv: VsiTlv,
    managerId: Uint8Array,
    orgTlvs: readonly VdpTlv[],
    now: number,
    out: BridgeEvent[],
  ): void {
    this.stats.requests++;
    const cur = this.vsis.get(key);
    const bad = validateVsiTlv(tlv, this.caps, this.cfg.wire);
    if (bad) {
      this.refuse(key, tlv, managerId, bad.reason, bad.hard, cur, bad.message, out);
      return;
    }
    if (tlv.type === MODE_DE_ASSOCIATE) {
      this.takenOver.delete(key);
      if (cur) this.remove(cur, 'deassociate', now, out);
      this.respond(tlv, managerId, responseStatus(Reason.Success), cur?.entries ?? tlv.entries);
      this.stats.deassociations++;
      return;
    }
    const mode = tlv.type as 1 | 2 | 3;
    if (cur && isKeepAlive(cur, tlv, managerId)) {
      this.stats.keepAlives++;
      this.takenOver.delete(key); // the station has learned its new state
      this.timers.set(key, now + keepAliveExpiryUs(this.timing));
      this.respond(tlv, managerId, responseStatus(Reason.Success), cur.entries);
      return;
    }
    if (
      cur &&
      cur.state === 'associated' &&
      mode !== MODE_ASSOCIATE &&
      this.caps.profile !== 'splitnve'
    ) {
      this.refuse(
        key,
        tlv,
        managerId,
        Reason.Other,
        false,
        cur,
        'deactivate needs the splitnve profile',
        out,
      );
      return;
    }
    const st = decodeStatus(tlv.status);
    const hints: Hints = st.response ? {} : { m: st.m, s: st.s };
    const tomb = this.takenOver.get(key);
    if (tomb !== undefined && (tomb <= now || hints.m)) this.takenOver.delete(key);
    else if (tomb !== undefined && mode === MODE_ASSOCIATE) {
      // A keep-alive that has not heard of the takeover must not take the VSI back.
      this.refuse(
        key,
        tlv,
        managerId,
        Reason.Other,
        false,
        cur,
        'this VSI was taken over by another station (send Associate with M=1 to take it back)',
        out,
      );
      return;
    }
    const q = this.quotaCheck(cur, now);
    if (q) {
      this.refuse(key, tlv, managerId, Reason.InsufficientResources, false, cur, q, out);
      return;
    }
    const d = this.ctx.policy.decide({
      port: this.port,
      station: this.station,
      key,
      mode,
      tlv,
      managerId,
      orgTlvs,
      hints,
      current: cur,
      profile: this.caps.profile,
    });
    if (!d.accept) {
      this.refuse(key, tlv, managerId, d.reason, d.hard ?? false, cur, d.message, out);
      return;
    }
    if (mode === MODE_ASSOCIATE && cur?.state !== 'associated')
      this.ctx.activating?.(this, key, now, out);
    const to = stateOfMode(mode);
    const from = cur?.state ?? 'init';
    const vsi: BridgeVsi = {
      key,
      vsiId: vsiIdToString(tlv.idFormat, tlv.id),
      managerId,
      typeId: tlv.typeId,
      typeVersion: tlv.typeVersion,
      idFormat: tlv.idFormat,
      id: tlv.id,
      filterFormat: tlv.filterFormat,
      entries: d.entries,
      state: to,
      hints,
      orgTlvs,
      since: from === to && cur ? cur.since : now,
    };
    this.vsis.set(key, vsi);
    this.stats.accepted++;
    this.timers.set(key, now + keepAliveExpiryUs(this.timing));
    out.push({
      type: 'tsi',
      port: this.port,
      station: this.station,
      key,
      vsiId: vsi.vsiId,
      from,
      to,
      cause: from === to ? 'update' : 'request',
      vsi,
    });
    this.respond(tlv, managerId, responseStatus(Reason.Success), d.entries);
  }

  /**
   * Why a request goes beyond this station's quota, or undefined when it does not. Every
   * request that gets here spends a token, also one then refused for the VSI count: a station
   * that keeps asking for more than its quota is throttled as well.
   */
  private quotaCheck(cur: BridgeVsi | undefined, now: number): string | undefined {
    const q = this.cfg.quota;
    if (!q) return undefined;
    const rate = q.requestsPerSecond;
    if (rate !== undefined) {
      const burst = q.requestBurst ?? Math.max(1, rate);
      const t =
        this.tokens === undefined
          ? burst
          : Math.min(burst, this.tokens + ((now - this.tokensAt) * rate) / 1e6);
      this.tokensAt = now;
      if (t < 1) {
        this.tokens = t;
        this.stats.rateRefused++;
        return `more than ${rate} requests per second (burst ${burst}) from this station`;
      }
      this.tokens = t - 1;
    }
    if (!cur && q.maxVsis !== undefined && this.vsis.size >= q.maxVsis) {
      this.stats.quotaRefused++;
      return `station holds ${this.vsis.size} VSIs, its quota is ${q.maxVsis}`;
    }
    return undefined;
  }

  private refuse(
    key: string,
    tlv: VsiTlv,
    managerId: Uint8Array,
    reason: number,
    hard: boolean,
    cur: BridgeVsi | undefined,
    message: string,
    out: BridgeEvent[],
  ): void {
    const keep = cur !== undefined;
    this.stats.refused++;
    this.stats.refusedByReason[reason] = (this.stats.refusedByReason[reason] ?? 0) + 1;
    out.push({
      type: 'refused',
      port: this.port,
      station: this.station,
      key,
      vsiId: tlv.idFormat >= 1 && tlv.idFormat <= 5 ? vsiIdToString(tlv.idFormat, tlv.id) : key,
      mode: tlv.type,
      reason,
      hard,
      keep,
      message,
    });
    // With Keep the response carries the type of the state kept, so the station learns it;
    // then the filter is the kept one too (its entries with their own format: found by fuzzing,
    // the request's format with the kept entries did not encode).
    const type = cur ? (modeOfState(cur.state) ?? tlv.type) : tlv.type;
    const kept = cur !== undefined && type !== tlv.type;
    this.respond(
      { ...tlv, type, ...(kept ? { filterFormat: cur.filterFormat } : {}) },
      managerId,
      responseStatus(reason, { keep, hard }),
      kept ? cur.entries : tlv.entries,
      true,
    );
  }

  /** Queues a response TLV that copies the request with `entries` and `status`. */
  private respond(
    tlv: VsiTlv,
    managerId: Uint8Array,
    status: number,
    entries: readonly FilterEntry[],
    raw = false,
  ): void {
    const w = new ByteWriter(64);
    const t = { ...tlv, status, entries };
    if (raw) {
      // A refused TLV may carry formats we do not accept; echo it as it came.
      encodeRawVsi(w, t, this.cfg.wire);
    } else {
      encodeVsi(w, t, this.cfg.wire);
    }
    this.enqueue({
      managerId,
      bytes: w.finish(),
      ref: { key: tlv.idFormat >= 1 ? vsiKey(tlv.idFormat, tlv.id) : '', attempts: 1 },
    });
  }

  private enqueue(item: OutgoingTlv<QueueRef>): void {
    if (this.queue.length >= (this.cfg.maxQueue ?? 4096)) {
      this.stats.queueOverflow++;
      return;
    }
    this.queue.push(item);
  }

  private unsolicited(vsi: BridgeVsi, type: 2 | 4): void {
    const w = new ByteWriter(64);
    encodeVsi(
      w,
      {
        type,
        status: 0,
        typeId: vsi.typeId,
        typeVersion: vsi.typeVersion,
        idFormat: vsi.idFormat,
        id: vsi.id,
        filterFormat: vsi.filterFormat,
        entries: vsi.entries,
      },
      this.cfg.wire,
    );
    this.stats.unsolicitedSent++;
    this.enqueue({
      managerId: vsi.managerId,
      bytes: w.finish(),
      ref: { key: vsi.key, unsolicited: type, attempts: 1 },
    });
  }

  private remove(vsi: BridgeVsi, cause: BridgeCause, now: number, out: BridgeEvent[]): void {
    if (cause === 'takeover') this.takenOver.set(vsi.key, now + keepAliveExpiryUs(this.timing));
    this.vsis.delete(vsi.key);
    this.timers.cancel(vsi.key);
    this.ctx.policy.released?.(this.port, this.station, vsi);
    out.push({
      type: 'tsi',
      port: this.port,
      station: this.station,
      key: vsi.key,
      vsiId: vsi.vsiId,
      from: vsi.state,
      to: 'init',
      cause,
      vsi,
    });
  }

  /** Bridge-initiated De-Associate (Req-6/9): tells the station, releases everything. */
  deassociate(key: string, cause: BridgeCause, now: number, out: BridgeEvent[]): boolean {
    const v = this.vsis.get(key);
    if (!v) return false;
    this.remove(v, cause, now, out);
    this.unsolicited(v, MODE_DE_ASSOCIATE);
    return true;
  }

  /**
   * Bridge-initiated deactivate: Activated -> Associated keeping resources and tag. In the
   * splitnve profile the station is told with an unsolicited Pre-Associate-RR; in the plain
   * profile there is no such message, so the VSI is de-associated instead.
   */
  deactivate(
    key: string,
    cause: BridgeCause,
    now: number,
    out: BridgeEvent[],
  ): 'deactivated' | 'deassociated' | 'none' {
    const v = this.vsis.get(key);
    if (!v || v.state !== 'associated') return 'none';
    if (this.caps.profile !== 'splitnve') {
      this.deassociate(key, cause, now, out);
      return 'deassociated';
    }
    const nv: BridgeVsi = { ...v, state: 'pre-associated-rr', since: now };
    this.vsis.set(key, nv);
    if (cause === 'takeover') this.takenOver.set(key, now + keepAliveExpiryUs(this.timing));
    out.push({
      type: 'tsi',
      port: this.port,
      station: this.station,
      key,
      vsiId: v.vsiId,
      from: 'associated',
      to: 'pre-associated-rr',
      cause,
      vsi: nv,
    });
    this.unsolicited(nv, 2);
    return 'deactivated';
  }

  /** Reloads VSIs after a restart: each gets a full keep-alive period to be refreshed. */
  restore(vsis: readonly BridgeVsi[], now: number): void {
    for (const v of vsis) {
      this.vsis.set(v.key, v);
      this.timers.set(v.key, now + keepAliveExpiryUs(this.timing));
    }
  }

  timeout(now: number, out: BridgeEvent[]): void {
    for (const key of this.timers.popDue(now)) {
      const v = this.vsis.get(key);
      if (!v) continue;
      this.stats.expiries++;
      this.remove(v, 'keepalive-expired', now, out);
      this.unsolicited(v, MODE_DE_ASSOCIATE);
    }
  }

  pull(
    _now: number,
    pack: PackOptions = {},
  ): { payload: Uint8Array; items: OutgoingTlv<QueueRef>[] } | undefined {
    const packed = packPdu(this.queue, { maxTlvs: this.cfg.maxTlvsPerPdu, ...pack });
    if (!packed) return undefined;
    return { payload: packed.payload, items: this.queue.splice(0, packed.count) };
  }

  /** ECP gave up on a PDU: unsolicited TLVs still true are sent again; responses are not. */
  ecpFailed(items: readonly OutgoingTlv<QueueRef>[]): void {
    this.stats.ecpFailures++;
    const again: OutgoingTlv<QueueRef>[] = [];
    for (const it of items) {
      const u = it.ref.unsolicited;
      if (u === undefined || it.ref.attempts >= UNSOLICITED_ATTEMPTS) continue;
      const v = this.vsis.get(it.ref.key);
      const stillTrue =
        u === MODE_DE_ASSOCIATE ? v === undefined : v?.state === 'pre-associated-rr';
      if (!stillTrue) continue;
      it.ref.attempts++;
      again.push(it);
    }
    this.queue.unshift(...again);
  }

  /** Mode the station last confirmed for a VSI (for views). */
  modeOf(key: string): VsiMode | undefined {
    const v = this.vsis.get(key);
    return v ? modeOfState(v.state) : undefined;
  }
}

/** Encodes a VSI TLV without format validation (to echo a refused request as it came). */
function encodeRawVsi(w: ByteWriter, t: Omit<VsiTlv, 'kind'>, wire: WireOptions): void {
  const layout = filterLayout(t.filterFormat, wire);
  const idFormat = t.idFormat >= 1 && t.idFormat <= 5 ? t.idFormat : VSIID_UUID;
  if (layout && t.entries.length > 0) {
    // Into a scratch writer: a failure half-way must leave nothing behind in `w` (found by
    // fuzzing: a half-written TLV followed by the bare form made a PDU that did not decode).
    const scratch = new ByteWriter(64);
    try {
      encodeVsi(scratch, { ...t, idFormat }, wire);
      w.bytes(scratch.finish());
      return;
    } catch {
      // fall through to the bare form
    }
  }
  // Unknown filter format: echo the fixed part with no entries.
  w.u16((t.type << 9) | 25)
    .u8(t.status)
    .u24(t.typeId)
    .u8(t.typeVersion)
    .u8(t.idFormat)
    .bytes(t.id)
    .u8(t.filterFormat)
    .u16(0);
}
