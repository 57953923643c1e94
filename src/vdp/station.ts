/**
 * VDP station machine for one peer bridge (one uplink): sans-IO.
 *
 * The orchestrator-facing side asks for a mode (pre-associate, pre-associate-RR, associate,
 * de-associate) for a VSI; the machine queues the VSI TLV, packs queued TLVs into PDUs when
 * the ECP endpoint can send, waits for the bridge's response (1.5·((2R+1)·ack + RWD)),
 * retries when ECP gave up or the response did not come, adopts the VIDs the bridge assigned
 * for null-VID entries, and keeps every confirmed association alive every 10µs·2^RKA.
 * Bridge-initiated De-Associate (and, in the splitnve profile, Pre-Associate-RR =
 * deactivate) change the state and are reported; they get only the ECP ACK.
 */
import { TimerQueue } from '../core/timer-queue.js';
import { ByteWriter } from '../wire/bytes.js';
import { ECP_MAX_ULPDU } from '../wire/ecp.js';
import { isGroupFormat, isIpFormat, type FilterEntry } from '../wire/filter.js';
import type { WireOptions } from '../wire/options.js';
import { decodeStatus, reasonName, requestStatus, STATUS_RESPONSE } from '../wire/status.js';
import {
  AUTH_TLV_LEN,
  encodeVdp,
  encodeVsi,
  vsiIdToString,
  vsiKey,
  type VsiTlv,
} from '../wire/vdp.js';
import {
  MANAGER_ID_TLV_LEN,
  packPdu,
  type OutgoingTlv,
  type PackOptions,
  type ParsedVdpPdu,
} from './pdu.js';
import {
  keepAliveUs,
  MODE_DE_ASSOCIATE,
  modeOfState,
  responseWaitUs,
  stateOfMode,
  type Hints,
  type Profile,
  type VdpTiming,
  type VsiMode,
  type VsiSpec,
  type VsiState,
} from './types.js';

export interface StationRequest {
  readonly mode: VsiMode;
  readonly spec: VsiSpec;
  readonly hints?: Hints;
  /** The caller's id, echoed in the result. */
  readonly requestId?: string;
}

export type StationFailure =
  /** The bridge answered with an error reason. */
  | 'refused'
  /** No response after every attempt (ECP gave up or the response wait expired). */
  | 'timeout'
  /** A newer request for the same VSI replaced this one before it was sent. */
  | 'superseded'
  /** The request itself is not valid (never sent). */
  | 'invalid'
  /** The peer does not support what the request needs (GroupID formats, IP formats, deactivate). */
  | 'unsupported';

export type StationCause =
  'response' | 'refused' | 'bridge-deassociate' | 'bridge-deactivate' | 'keepalive-refused';

export type StationEvent =
  | {
      readonly type: 'vsi-state';
      readonly key: string;
      readonly vsiId: string;
      readonly from: VsiState;
      readonly to: VsiState;
      readonly cause: StationCause;
      readonly spec: VsiSpec;
    }
  | {
      readonly type: 'request-result';
      readonly key: string;
      readonly requestId: string | undefined;
      readonly mode: VsiMode;
      readonly ok: true;
      readonly entries: readonly FilterEntry[];
      readonly attempts: number;
    }
  | {
      readonly type: 'request-result';
      readonly key: string;
      readonly requestId: string | undefined;
      readonly mode: VsiMode;
      readonly ok: false;
      readonly error: StationFailure;
      readonly reason?: number;
      readonly keep?: boolean;
      readonly hard?: boolean;
      readonly message: string;
      readonly attempts: number;
    }
  | {
      readonly type: 'keepalive-failed';
      readonly key: string;
      readonly error: 'timeout' | 'refused';
      readonly reason?: number;
    }
  /** The VIDs of a VSI changed (null VID adopted, or the bridge changed them). */
  | { readonly type: 'vids'; readonly key: string; readonly entries: readonly FilterEntry[] };

export interface StationStats {
  requests: number;
  keepAlives: number;
  pdusBuilt: number;
  tlvsSent: number;
  retries: number;
  responses: number;
  responsesUnexpected: number;
  refusals: number;
  timeouts: number;
  unsolicitedDeassociate: number;
  unsolicitedDeactivate: number;
  unsolicitedIgnored: number;
  malformedTlvs: number;
}

export interface VdpStationConfig {
  readonly profile: Profile;
  readonly wire: WireOptions;
  /** Attempts per request before it fails (each attempt: ECP's own R retransmissions). */
  readonly maxAttempts: number;
  /** Most VSI TLVs per PDU (default: as many as fit). */
  readonly maxTlvsPerPdu?: number;
}

export interface PeerCaps {
  /** EVB negotiated GroupID support; undefined while unknown (no EVB peer heard yet). */
  readonly groupId?: boolean;
  /** Effective profile with this peer. */
  readonly profile: Profile;
}

interface Pending {
  readonly req: StationRequest;
  readonly mode: VsiMode;
  readonly spec: VsiSpec;
  readonly hints: Hints;
  readonly keepAlive: boolean;
  readonly gen: number;
  attempts: number;
  phase: 'queued' | 'sent';
}

interface StationVsi {
  readonly key: string;
  state: VsiState;
  /** Confirmed spec (with adopted VIDs) once the bridge accepted something. */
  spec: VsiSpec | undefined;
  pending: Pending | undefined;
  next: StationRequest | undefined;
  /** When the bridge last accepted a request or keep-alive of this VSI (its expiry restarts). */
  confirmedAt?: number;
}

export interface StationVsiView {
  readonly key: string;
  readonly vsiId: string;
  readonly state: VsiState;
  readonly spec: VsiSpec | undefined;
  readonly pendingMode: VsiMode | undefined;
  readonly keepAliveAt: number | undefined;
  /** What the orchestrator last asked for (queued or in flight), if not yet answered. */
  readonly wanted: { readonly mode: VsiMode; readonly spec: VsiSpec } | undefined;
}

export type StationToken = readonly { readonly key: string; readonly gen: number }[];

function newStats(): StationStats {
  return {
    requests: 0,
    keepAlives: 0,
    pdusBuilt: 0,
    tlvsSent: 0,
    retries: 0,
    responses: 0,
    responsesUnexpected: 0,
    refusals: 0,
    timeouts: 0,
    unsolicitedDeassociate: 0,
    unsolicitedDeactivate: 0,
    unsolicitedIgnored: 0,
    malformedTlvs: 0,
  };
}

/** Entries of the request with the bridge's VIDs (and PS/PCP) where the request had the null VID. */
export function adoptVids(
  requested: readonly FilterEntry[],
  answered: readonly FilterEntry[],
): FilterEntry[] {
  return requested.map((e, i) => {
    const a = answered[i];
    if (e.vid !== 0 || !a || a.vid === 0) return e;
    return { ...e, vid: a.vid, pcp: a.pcp, ps: a.ps };
  });
}

export function specOfTlv(tlv: VsiTlv, managerId: Uint8Array): VsiSpec {
  return {
    managerId,
    typeId: tlv.typeId,
    typeVersion: tlv.typeVersion,
    idFormat: tlv.idFormat,
    id: tlv.id,
    filterFormat: tlv.filterFormat,
    entries: tlv.entries,
  };
}

export class VdpStation {
  readonly stats: StationStats = newStats();
  private vsis = new Map<string, StationVsi>();
  /** VSI keys waiting to be sent, from `qHead` on (a deque; stale keys are skipped). */
  private queue: string[] = [];
  private qHead = 0;
  private timers = new TimerQueue();
  private timing: VdpTiming;
  private caps: PeerCaps;
  private gen = 0;

  constructor(
    private readonly cfg: VdpStationConfig,
    timing: VdpTiming,
    caps?: PeerCaps,
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

  setCaps(c: PeerCaps): void {
    this.caps = c;
  }

  getCaps(): PeerCaps {
    return this.caps;
  }

  deadline(): number | undefined {
    return this.timers.next();
  }

  hasQueued(): boolean {
    return this.qHead < this.queue.length;
  }

  list(): StationVsiView[] {
    return [...this.vsis.values()].map((v) => this.view(v));
  }

  get(key: string): StationVsiView | undefined {
    const v = this.vsis.get(key);
    return v ? this.view(v) : undefined;
  }

  private view(v: StationVsi): StationVsiView {
    const spec = v.spec ?? v.pending?.spec;
    return {
      key: v.key,
      vsiId: spec ? vsiIdToString(spec.idFormat, spec.id) : v.key,
      state: v.state,
      spec: v.spec,
      pendingMode: v.pending?.mode,
      keepAliveAt: this.timers.get(`ka|${v.key}`),
      wanted: v.next
        ? { mode: v.next.mode, spec: v.next.spec }
        : v.pending && !v.pending.keepAlive
          ? { mode: v.pending.mode, spec: v.pending.spec }
          : undefined,
    };
  }

  /** Checks a request against the peer's capabilities; returns why it cannot be sent. */
  private check(
    req: StationRequest,
    cur: StationVsi | undefined,
  ): { error: StationFailure; message: string } | undefined {
    const s = req.spec;
    if (s.managerId.length !== 16 || s.id.length !== 16) {
      return { error: 'invalid', message: 'Manager ID and VSI id are 16 octets' };
    }
    if (s.entries.length === 0)
      return { error: 'invalid', message: 'at least one filter entry is needed' };
    if (isIpFormat(s.filterFormat, this.cfg.wire) && this.caps.profile !== 'splitnve') {
      return {
        error: 'unsupported',
        message: 'IP filter formats need the splitnve profile on both sides',
      };
    }
    if (isGroupFormat(s.filterFormat, this.cfg.wire) && this.caps.groupId === false) {
      return {
        error: 'unsupported',
        message: 'GroupID filter formats were not negotiated (BGID/SGID)',
      };
    }
    if (
      cur &&
      cur.state === 'associated' &&
      (req.mode === 1 || req.mode === 2) &&
      this.caps.profile !== 'splitnve'
    ) {
      return {
        error: 'unsupported',
        message: 'deactivate (associate -> pre-associate) needs the splitnve profile',
      };
    }
    let size: number;
    try {
      size = this.tlvBytes(req.mode, req.hints ?? {}, s).length;
    } catch (e) {
      return { error: 'invalid', message: (e as Error).message };
    }
    // One VSI TLV (with its org TLVs) must fit in one ECPDU with the Manager ID, the
    // authentication TLV (whether or not this peer signs: it may later) and End; a bigger one
    // could never be sent (the ECP encoder refused it by throwing, leaving the VSI stuck).
    const room = ECP_MAX_ULPDU - MANAGER_ID_TLV_LEN - AUTH_TLV_LEN - 2;
    if (size > room) {
      return {
        error: 'invalid',
        message: `VSI TLV with its org-specific TLVs is ${size} octets, more than the ${room} that fit in one ECPDU`,
      };
    }
    return undefined;
  }

  /** An orchestrator request. Results come as `request-result` events. */
  request(req: StationRequest, now: number, out: StationEvent[]): void {
    const key = vsiKey(req.spec.idFormat, req.spec.id);
    const cur = this.vsis.get(key);
    const bad = this.check(req, cur);
    if (bad) {
      out.push({
        type: 'request-result',
        key,
        requestId: req.requestId,
        mode: req.mode,
        ok: false,
        ...bad,
        attempts: 0,
      });
      return;
    }
    this.stats.requests++;
    let v = cur;
    if (!v) {
      v = { key, state: 'init', spec: undefined, pending: undefined, next: undefined };
      this.vsis.set(key, v);
    }
    const p = v.pending;
    if (p && p.phase === 'queued') {
      if (!p.keepAlive) this.supersede(v.key, p.req, out);
      v.pending = this.newPending(req, false);
      return; // already in the queue
    }
    if (p && p.phase === 'sent') {
      if (v.next) this.supersede(v.key, v.next, out);
      v.next = req;
      return;
    }
    this.timers.cancel(`ka|${key}`);
    v.pending = this.newPending(req, false);
    this.queue.push(key);
    void now;
  }

  private supersede(key: string, req: StationRequest, out: StationEvent[]): void {
    out.push({
      type: 'request-result',
      key,
      requestId: req.requestId,
      mode: req.mode,
      ok: false,
      error: 'superseded',
      message: 'a newer request for this VSI replaced it',
      attempts: 0,
    });
  }

  private newPending(req: StationRequest, keepAlive: boolean): Pending {
    return {
      req,
      mode: req.mode,
      spec: req.spec,
      hints: keepAlive ? {} : (req.hints ?? {}),
      keepAlive,
      gen: ++this.gen,
      attempts: 0,
      phase: 'queued',
    };
  }

  /** Builds the next PDU payload from the queue, or undefined when nothing waits. */
  pull(
    now: number,
    pack: PackOptions = {},
  ): { payload: Uint8Array; token: StationToken } | undefined {
    // Candidates from the head, skipping keys whose VSI no longer has a queued request.
    const items: OutgoingTlv<{ key: string; gen: number }>[] = [];
    const at: number[] = [];
    let size = 0;
    let i = this.qHead;
    for (; i < this.queue.length; i++) {
      const key = this.queue[i]!;
      const p = this.vsis.get(key)?.pending;
      if (!p || p.phase !== 'queued') continue;
      const bytes = this.tlvBytes(p.mode, p.hints, p.spec);
      items.push({ managerId: p.spec.managerId, bytes, ref: { key, gen: p.gen } });
      at.push(i);
      size += bytes.length;
      if (size > ECP_MAX_ULPDU || items.length >= (this.cfg.maxTlvsPerPdu ?? Infinity)) {
        i++;
        break;
      }
    }
    const packed = packPdu(items, { maxTlvs: this.cfg.maxTlvsPerPdu, ...pack });
    // Everything before the first candidate not taken is consumed (taken or stale).
    this.qHead = packed && packed.count < items.length ? at[packed.count]! : i;
    if (this.qHead > 1024 && this.qHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.qHead);
      this.qHead = 0;
    }
    if (!packed) return undefined;
    const token = items.slice(0, packed.count).map((it) => it.ref);
    const wait = responseWaitUs(this.timing);
    for (const t of token) {
      const p = this.vsis.get(t.key)!.pending!;
      p.phase = 'sent';
      p.attempts++;
      this.timers.set(`rw|${t.key}`, now + wait);
    }
    this.stats.pdusBuilt++;
    this.stats.tlvsSent += token.length;
    return { payload: packed.payload, token };
  }

  private tlvBytes(mode: VsiMode, hints: Hints, spec: VsiSpec): Uint8Array {
    const w = new ByteWriter(64);
    encodeVsi(w, { type: mode, status: requestStatus(hints), ...spec }, this.cfg.wire);
    if (spec.orgTlvs && spec.orgTlvs.length > 0) {
      const org = encodeVdp(spec.orgTlvs, this.cfg.wire);
      w.bytes(org.subarray(0, org.length - 2)); // without its End
    }
    return w.finish();
  }

  /** ECP gave up on the PDU that carried `token`: retry each request or fail it. */
  ecpFailed(token: StationToken, now: number, out: StationEvent[]): void {
    for (const t of token) this.noResponse(t.key, t.gen, now, out);
  }

  private noResponse(key: string, gen: number, now: number, out: StationEvent[]): void {
    const v = this.vsis.get(key);
    const p = v?.pending;
    if (!v || !p || p.gen !== gen || p.phase !== 'sent') return;
    this.timers.cancel(`rw|${key}`);
    if (p.attempts < this.cfg.maxAttempts) {
      this.stats.retries++;
      p.phase = 'queued';
      this.queue.push(key);
      return;
    }
    this.stats.timeouts++;
    v.pending = undefined;
    if (p.keepAlive) {
      out.push({ type: 'keepalive-failed', key, error: 'timeout' });
      this.scheduleKeepAlive(v, now);
    } else {
      out.push({
        type: 'request-result',
        key,
        requestId: p.req.requestId,
        mode: p.mode,
        ok: false,
        error: 'timeout',
        message: `no response from the bridge after ${p.attempts} attempt(s)`,
        attempts: p.attempts,
      });
      if (v.state !== 'init') this.scheduleKeepAlive(v, now);
    }
    this.afterCompletion(v, now, out);
  }

  private scheduleKeepAlive(v: StationVsi, now: number): void {
    if (v.state === 'init') this.timers.cancel(`ka|${v.key}`);
    else this.timers.set(`ka|${v.key}`, now + keepAliveUs(this.timing));
  }

  /** Starts the request queued behind the one that just completed, or forgets an idle Init VSI. */
  private afterCompletion(v: StationVsi, now: number, out: StationEvent[]): void {
    const next = v.next;
    v.next = undefined;
    if (next) {
      this.request(next, now, out);
      return;
    }
    if (v.state === 'init' && !v.pending) {
      this.vsis.delete(v.key);
      this.timers.cancel(`ka|${v.key}`);
      this.timers.cancel(`rw|${v.key}`);
    }
  }

  timeout(now: number, out: StationEvent[]): void {
    for (const t of this.timers.popDue(now)) {
      const sep = t.indexOf('|');
      const kind = t.slice(0, sep);
      const key = t.slice(sep + 1);
      const v = this.vsis.get(key);
      if (!v) continue;
      if (kind === 'rw') {
        if (v.pending) this.noResponse(key, v.pending.gen, now, out);
      } else if (kind === 'ka') {
        const mode = modeOfState(v.state);
        if (v.pending || mode === undefined || !v.spec) continue;
        this.stats.keepAlives++;
        v.pending = this.newPending({ mode, spec: v.spec }, true);
        this.queue.push(key);
      }
    }
  }

  /** Handles the VSI TLVs of a PDU from the bridge. */
  receive(pdu: ParsedVdpPdu, now: number, out: StationEvent[]): void {
    this.stats.malformedTlvs += pdu.malformed.length;
    for (const pv of pdu.vsis) {
      const tlv = pv.tlv;
      if (tlv.status & STATUS_RESPONSE) this.response(pv.key, tlv, pv.managerId, now, out);
      else this.unsolicited(pv.key, tlv, now, out);
    }
  }

  private response(
    key: string,
    tlv: VsiTlv,
    managerId: Uint8Array,
    now: number,
    out: StationEvent[],
  ): void {
    const v = this.vsis.get(key);
    const p = v?.pending;
    const st = decodeStatus(tlv.status);
    if (!st.response) return;
    const isError = st.reason !== 0;
    // A request queued again after ECP gave up on its PDU (attempts > 0) may still get the
    // answer to that PDU: the bridge did receive it, only late. That answer is the answer to
    // the same request; dropping it made a slow bridge get every request again and again.
    const answerable = p !== undefined && (p.phase === 'sent' || p.attempts > 0);
    if (!v || !p || !answerable || (!isError && tlv.type !== p.mode)) {
      this.stats.responsesUnexpected++;
      return;
    }
    void managerId;
    this.stats.responses++;
    this.timers.cancel(`rw|${key}`);
    v.pending = undefined;
    const from = v.state;
    if (!isError) {
      const entries = adoptVids(p.spec.entries, tlv.entries);
      const vidsChanged = entries.some((e, i) => e !== p.spec.entries[i]);
      const spec: VsiSpec = { ...p.spec, entries };
      const to = stateOfMode(tlv.type as VsiMode);
      v.state = to;
      v.spec = to === 'init' ? undefined : spec;
      if (from !== to)
        out.push({
          type: 'vsi-state',
          key,
          vsiId: vsiIdToString(spec.idFormat, spec.id),
          from,
          to,
          cause: 'response',
          spec,
        });
      if (vidsChanged) out.push({ type: 'vids', key, entries });
      v.confirmedAt = now;
      if (!p.keepAlive) {
        out.push({
          type: 'request-result',
          key,
          requestId: p.req.requestId,
          mode: p.mode,
          ok: true,
          entries,
          attempts: p.attempts,
        });
      }
      this.scheduleKeepAlive(v, now);
      this.afterCompletion(v, now, out);
      return;
    }
    this.stats.refusals++;
    if (p.keepAlive) {
      out.push({ type: 'keepalive-failed', key, error: 'refused', reason: st.reason });
    } else {
      out.push({
        type: 'request-result',
        key,
        requestId: p.req.requestId,
        mode: p.mode,
        ok: false,
        error: 'refused',
        reason: st.reason,
        keep: st.keep,
        hard: st.hard,
        message: `bridge refused: ${reasonName(st.reason)}${st.keep ? ' (prior state kept)' : ''}${st.hard ? ' (hard error)' : ''}`,
        attempts: p.attempts,
      });
    }
    // Keep: the bridge kept its prior state, and says which in the response's type (lldpad:
    // the response type becomes the confirmed mode). No Keep: the bridge holds nothing.
    const to: VsiState = st.keep ? stateOfMode(tlv.type as VsiMode) : 'init';
    if (to !== from) {
      const spec = v.spec ?? p.spec;
      v.state = to;
      if (to === 'init') v.spec = undefined;
      else if (!v.spec) v.spec = { ...p.spec, entries: adoptVids(p.spec.entries, tlv.entries) };
      out.push({
        type: 'vsi-state',
        key,
        vsiId: vsiIdToString(spec.idFormat, spec.id),
        from,
        to,
        cause: p.keepAlive ? 'keepalive-refused' : 'refused',
        spec,
      });
    }
    this.scheduleKeepAlive(v, now);
    // A refused request does not restart the bridge's keep-alive expiry of the state it kept:
    // the next keep-alive is due one period after the last accepted exchange, not after the
    // refusal (else the bridge expired a VSI it had just kept, seen over veth). Not for a
    // refused keep-alive: that would repeat it at once, again and again.
    if (!p.keepAlive && v.state !== 'init' && v.confirmedAt !== undefined) {
      const due = v.confirmedAt + keepAliveUs(this.timing);
      if (due < now + keepAliveUs(this.timing)) this.timers.set(`ka|${key}`, Math.max(due, now));
    }
    this.afterCompletion(v, now, out);
  }

  private unsolicited(key: string, tlv: VsiTlv, now: number, out: StationEvent[]): void {
    const v = this.vsis.get(key);
    if (!v || v.state === 'init') {
      this.stats.unsolicitedIgnored++;
      return;
    }
    const spec = v.spec!;
    const vsiId = vsiIdToString(spec.idFormat, spec.id);
    if (tlv.type === MODE_DE_ASSOCIATE) {
      this.stats.unsolicitedDeassociate++;
      const from = v.state;
      v.state = 'init';
      v.spec = undefined;
      this.timers.cancel(`ka|${key}`);
      out.push({
        type: 'vsi-state',
        key,
        vsiId,
        from,
        to: 'init',
        cause: 'bridge-deassociate',
        spec,
      });
      if (!v.pending) this.afterCompletion(v, now, out);
      return;
    }
    if (tlv.type === 2 && this.caps.profile === 'splitnve' && v.state === 'associated') {
      this.stats.unsolicitedDeactivate++;
      v.state = 'pre-associated-rr';
      out.push({
        type: 'vsi-state',
        key,
        vsiId,
        from: 'associated',
        to: 'pre-associated-rr',
        cause: 'bridge-deactivate',
        spec,
      });
      return;
    }
    this.stats.unsolicitedIgnored++;
  }

  /** Re-asserts VSIs after a restart: each is requested again in the mode it should be in. */
  restore(
    items: readonly { spec: VsiSpec; state: VsiState }[],
    now: number,
    out: StationEvent[],
  ): void {
    for (const it of items) {
      // Init means the orchestrator wanted it gone: make sure the bridge forgets it too.
      const mode = modeOfState(it.state) ?? MODE_DE_ASSOCIATE;
      this.request({ mode, spec: it.spec, requestId: 'restore' }, now, out);
    }
  }
}
