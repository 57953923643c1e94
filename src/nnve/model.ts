/**
 * The nNVE model (RFC 8394 §5, SPLIT-NVE.md §4), sans-IO: it decides VDP requests (it is the
 * BridgeNode's policy), follows every TSI through Init / Associated / Activated, and derives from
 * them what the data plane and the NVA must hold. It does no I/O itself: it returns *effects*
 * (data-plane operations, NVA entry keys whose desired value changed, VNs to watch or create)
 * that the daemon applies asynchronously, in order, while the protocol goes on.
 *
 * Objects:
 * - port, segment (ports sharing one L2 domain; a local tag is unique per segment), station
 *   (port, MAC) — the BridgeNode keeps these;
 * - VAP per (segment, VN): its local tag (tags.ts), the VSIs holding it, its TSIs and stations.
 *   A VSI whose filter names a VN (GroupID) but no MAC (format 3, GroupID/VID) is an *explicit*
 *   VN connect (Req-5); the first TSI associate of a VN connects *implicitly*; the VAP is
 *   disconnected when nothing holds it any more (the tag is then held, then released);
 * - TSI per (port, station, VSI id): state, VN(s), addresses (MAC and IPs per VN). Two TSIs with
 *   one VSI id on two stations (a migration inside this nNVE) are distinct.
 *
 * State effects:
 * - Associated: tag reserved and provisioned on the port (data-plane VAP), addresses published
 *   to the NVA as *mapping* entries, local endpoint built with filters disabled (`active: false`:
 *   its traffic is dropped);
 * - Activated: *forwarding* entries, filters enabled and static MACs (`active: true`);
 * - Init: everything withdrawn; the VAP on that port goes when its last TSI leaves.
 * Address updates keep the state and change each effect. Effects are aggregated over owners: one
 * (port, VLAN, MAC) endpoint or one (VN, MAC) NVA entry may be held by two TSIs at once (a VM
 * moving between two stations behind one port) and stays until the last owner lets go; it is
 * active / forwarding while any owner is Activated.
 *
 * Remote side (from the NVA, VNs with a local VAP only): the other NVEs' *forwarding* entries
 * become remote endpoints; a VN's flood list is every other NVE with a forwarding entry in it.
 * Ordering: every activation here and every remote forwarding entry that appears gets a number
 * from one counter. For one (VN, MAC) the newest forwarding entry wins everywhere: the remote
 * endpoint is the newest remote entry, and a local Activated TSI older than a remote forwarding
 * entry for its MAC is *superseded*: it is programmed inactive (no static MAC, traffic from it
 * dropped) until it is activated again (e.g. Associate with M=1) or the remote entry goes. So
 * after a live migration to another nNVE the destination wins at once, before the source's
 * De-Associate arrives. A TSI reloaded after a restart counts as older than anything.
 */
import type {
  DataPlaneOp,
  DataPlaneState,
  FloodList,
  LocalEndpoint,
  RemoteEndpoint,
  Vap,
} from '../dataplane/dataplane.js';
import type { BridgeNodeEvent } from '../node/bridge-node.js';
import type { NvaEntry, NvaEvent, VnInfo } from '../nva/nva.js';
import type { BridgeDecision, BridgePolicy, BridgeRequest, BridgeVsi } from '../vdp/bridge.js';
import { tsiState, type TsiState, type VsiState } from '../vdp/types.js';
import { ZERO_MAC } from '../wire/bytes.js';
import type { FilterEntry } from '../wire/filter.js';
import { Reason } from '../wire/status.js';
import { isIPv6 } from 'node:net';
import type { TagAllocator, TagEvent } from './tags.js';

/** The NVA's VN directory as the model needs it (a synchronous cache). */
export interface VnDirectory {
  getVn(vni: number): VnInfo | undefined;
}

export interface ModelOptions {
  readonly segmentOf: (port: string) => string;
  readonly tags: TagAllocator;
  readonly vns: VnDirectory;
  /** Accept an unknown GroupID and create the VN in the NVA (else: reason 5). */
  readonly autoCreateVn: boolean;
  /** This NVE's id in the NVA (its own entries are not remote). */
  readonly self: string;
  /** This NVE's underlay address (remote VTEPs of the other address family are ignored). */
  readonly vtep: string;
  /** Wall-clock milliseconds (tag holds survive restarts). */
  readonly clock: () => number;
}

/** An NVA entry this NVE wants published (no `nve`/`vtep`: the driver adds them). */
export type OwnEntry = Omit<NvaEntry, 'nve' | 'vtep'>;

export type ModelEvent =
  | TagEvent
  | {
      readonly type: 'superseded';
      readonly port: string;
      readonly vlan: number;
      readonly vni: number;
      readonly mac: string;
      /** True: a newer forwarding entry of another NVE wins; false: this NVE's endpoint is back. */
      readonly superseded: boolean;
      readonly by?: string;
    }
  | { readonly type: 'vn-auto-create'; readonly vni: number }
  | {
      readonly type: 'remote-ignored';
      readonly vni: number;
      readonly mac: string;
      readonly nve: string;
      readonly why: string;
    };

export interface Effects {
  /** Data-plane operations, in the order to apply them. */
  readonly dp: DataPlaneOp[];
  /** Keys (`vni|mac`) of own NVA entries whose desired value changed (see `ownEntry`). */
  readonly entries: Set<string>;
  /** VNs that got their first / lost their last local VAP. */
  readonly watch: Set<number>;
  readonly unwatch: Set<number>;
  /** VNs to create in the NVA (auto-create policy) before entries are published in them. */
  readonly createVn: Set<number>;
  readonly events: ModelEvent[];
}

/** One address set of a TSI in one VN. */
export interface Endpoint {
  readonly vni: number;
  readonly vid: number;
  readonly mac: string;
  readonly ips: readonly string[];
}

export interface TsiView {
  readonly port: string;
  readonly segment: string;
  readonly station: string;
  readonly key: string;
  readonly vsiId: string;
  readonly state: TsiState;
  readonly vdpState: VsiState;
  /** Wall-clock ms when it entered this state (undefined for a TSI reloaded after a restart). */
  readonly since: number | undefined;
  readonly endpoints: readonly Endpoint[];
  /** VNs this VSI holds without an address (explicit VN connect), with their tags. */
  readonly connects: readonly { vni: number; vid: number }[];
  readonly migration: 'arriving' | 'leaving' | undefined;
  /** (VN, MAC) of its endpoints that a newer forwarding entry of another NVE supersedes. */
  readonly superseded: readonly string[];
}

export interface VapView {
  readonly segment: string;
  readonly vni: number;
  readonly vid: number;
  readonly state: 'connected' | 'held';
  readonly heldUntil: number | null;
  /** VSIs holding the tag (TSIs and explicit connects). */
  readonly refs: number;
  readonly tsis: number;
  readonly explicit: number;
  readonly stations: number;
  readonly ports: readonly string[];
  /** The VN's context from the NVA (name, policy); null once the NVA no longer has it. */
  readonly vn: {
    readonly name?: string;
    readonly allowedStations?: readonly string[];
    readonly maxTsis?: number;
  } | null;
}

interface TsiRec {
  readonly id: string;
  readonly port: string;
  readonly station: string;
  readonly key: string;
  vsi: BridgeVsi;
  state: VsiState;
  since: number | undefined;
  /** Activation order (0: reloaded after a restart, older than anything). */
  seq: number;
  endpoints: Endpoint[];
  /** VN -> tag of every VN the VSI names. */
  vnis: Map<number, number>;
}

interface LocalOwner {
  readonly vni: number;
  readonly ips: readonly string[];
  readonly active: boolean;
  readonly seq: number;
}

interface EntryOwner {
  readonly ips: readonly string[];
  readonly forwarding: boolean;
}

interface Cand {
  readonly vtep: string;
  readonly forwarding: boolean;
  readonly seq: number;
}

/** key -> owner -> value, with the set of keys touched since the last flush. */
class Owners<V> {
  /**
   * One owner inline, a Map only while a key has several: nearly every key has one owner, and a
   * Map per key cost ~200 bytes per VSI and index (P3's heap snapshot).
   */
  private readonly map = new Map<string, { owner: string; v: V } | Map<string, V>>();
  readonly touched = new Set<string>();

  set(key: string, owner: string, v: V | undefined): void {
    const cur = this.map.get(key);
    if (v === undefined) {
      if (!cur) return;
      if (cur instanceof Map) {
        if (!cur.delete(owner)) return;
        if (cur.size === 1) {
          const [o, x] = cur.entries().next().value as [string, V];
          this.map.set(key, { owner: o, v: x });
        }
      } else {
        if (cur.owner !== owner) return;
        this.map.delete(key);
      }
    } else if (!cur) {
      this.map.set(key, { owner, v });
    } else if (cur instanceof Map) {
      cur.set(owner, v);
    } else if (cur.owner === owner) {
      cur.v = v;
    } else {
      this.map.set(
        key,
        new Map([
          [cur.owner, cur.v],
          [owner, v],
        ]),
      );
    }
    this.touched.add(key);
  }

  /** The values of a key's owners, in the order the owners came; undefined if it has none. */
  values(key: string): V[] | undefined {
    const cur = this.map.get(key);
    if (!cur) return undefined;
    return cur instanceof Map ? [...cur.values()] : [cur.v];
  }

  take(): string[] {
    const t = [...this.touched];
    this.touched.clear();
    return t;
  }
}

const vmKey = (vni: number, mac: string): string => `${vni}|${mac}`;
const lKey = (port: string, vlan: number, mac: string): string => `${port}|${vlan}|${mac}`;
const vKey = (port: string, vlan: number): string => `${port}|${vlan}`;

function sortedUnion(lists: Iterable<readonly string[]>): string[] {
  const s = new Set<string>();
  for (const l of lists) for (const x of l) s.add(x);
  return [...s].sort();
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Endpoints and VNs named by a VSI's filter (entries without GroupID name no VN). */
export function analyseEntries(entries: readonly FilterEntry[]): {
  endpoints: Endpoint[];
  vnis: Map<number, number>;
} {
  const vnis = new Map<number, number>();
  const eps = new Map<string, { vni: number; vid: number; mac: string; ips: Set<string> }>();
  for (const e of entries) {
    if (e.groupId === undefined || e.vid === 0) continue;
    vnis.set(e.groupId, e.vid);
    if (e.mac === undefined || e.mac === ZERO_MAC) continue;
    const k = vmKey(e.groupId, e.mac);
    let ep = eps.get(k);
    if (!ep) eps.set(k, (ep = { vni: e.groupId, vid: e.vid, mac: e.mac, ips: new Set() }));
    if (e.ipv4) ep.ips.add(e.ipv4);
    if (e.ipv6) ep.ips.add(e.ipv6);
  }
  const endpoints = [...eps.values()].map((x) => ({
    vni: x.vni,
    vid: x.vid,
    mac: x.mac,
    ips: [...x.ips].sort(),
  }));
  return { endpoints, vnis };
}

export class NveModel implements BridgePolicy {
  readonly stats = {
    decided: 0,
    refusedUnknownVn: 0,
    refusedStation: 0,
    refusedMaxTsis: 0,
    refusedTag: 0,
    supersessions: 0,
    restoreConflicts: 0,
  };
  private readonly tsis = new Map<string, TsiRec>();
  /** VSI (port|station|key) -> VN -> tag it holds (what decide reserved). */
  private readonly holdings = new Map<string, { segment: string; vnis: Map<number, number> }>();
  /** VN -> VSIs with an address in it (its TSIs, for max-TSI checks and views). */
  private readonly members = new Map<number, Set<string>>();
  /** The same, the other way: VSI -> the VNs it is a member of (an array: a Set per VSI costs). */
  private readonly memberOf = new Map<string, number[]>();
  private seq = 0;

  private readonly vaps = new Owners<number>();
  private readonly locals = new Owners<LocalOwner>();
  private readonly entries = new Owners<EntryOwner>();
  /** Remote candidates per (vni, mac): NVE id -> entry. */
  private readonly cands = new Map<string, Map<string, Cand>>();
  private readonly remoteTouched = new Set<string>();
  private readonly floodTouched = new Set<number>();

  // What was last emitted (the desired state).
  private readonly curVaps = new Map<string, Vap>();
  private readonly curLocals = new Map<string, LocalEndpoint>();
  private readonly curEntries = new Map<string, OwnEntry>();
  private readonly curRemotes = new Map<string, RemoteEndpoint>();
  private readonly curFloods = new Map<number, FloodList>();
  /** VN -> number of data-plane VAPs (watch while > 0). */
  private readonly vniVaps = new Map<number, number>();
  private readonly localsByVm = new Map<string, Set<string>>();
  private readonly superseded = new Set<string>();

  private fx: Effects = NveModel.emptyEffects();

  constructor(private readonly opts: ModelOptions) {}

  static emptyEffects(): Effects {
    return {
      dp: [],
      entries: new Set(),
      watch: new Set(),
      unwatch: new Set(),
      createVn: new Set(),
      events: [],
    };
  }

  /** Effects accumulated since the last call. */
  takeEffects(): Effects {
    this.flush();
    const fx = this.fx;
    for (const e of this.opts.tags.takeEvents()) fx.events.push(e);
    this.fx = NveModel.emptyEffects();
    return fx;
  }

  // ------------------------------------------------------------------------------------------
  // Policy (called by the VDP bridge machines, synchronously)

  decide(req: BridgeRequest): BridgeDecision {
    this.stats.decided++;
    const segment = this.opts.segmentOf(req.port);
    const hk = `${req.port}|${req.station}|${req.key}`;
    const tags = this.opts.tags;
    const pending = new Map<number, number>();
    const unknown = new Set<number>();
    const entries: FilterEntry[] = [];
    for (const [i, e] of req.tlv.entries.entries()) {
      if (e.groupId === undefined) {
        if (e.vid === 0) {
          return refuse(
            Reason.InvalidVidGroupMac,
            true,
            `entry ${i}: a null VID needs a GroupID (VNI) to choose a local tag`,
          );
        }
        const owner = tags.vniOf(segment, e.vid);
        if (owner !== undefined) {
          this.stats.refusedTag++;
          return refuse(
            Reason.InvalidVidGroupMac,
            true,
            `entry ${i}: VID ${e.vid} carries VN ${owner} on segment ${segment}`,
          );
        }
        entries.push(e);
        continue;
      }
      const vni = e.groupId;
      const vn = this.opts.vns.getVn(vni);
      if (!vn) {
        if (!this.opts.autoCreateVn) {
          this.stats.refusedUnknownVn++;
          return refuse(
            Reason.InvalidVidGroupMac,
            false,
            `entry ${i}: GroupID ${vni} is not a VN known to the NVA`,
          );
        }
        unknown.add(vni);
      } else if (
        vn.allowedStations &&
        vn.allowedStations.length > 0 &&
        !vn.allowedStations.includes(req.station)
      ) {
        this.stats.refusedStation++;
        return refuse(
          Reason.InvalidVidGroupMac,
          false,
          `entry ${i}: station ${req.station} may not attach to VN ${vni}`,
        );
      }
      const plan = tags.plan(segment, vni, e.vid, pending);
      if (!plan.ok) {
        this.stats.refusedTag++;
        return refuse(plan.reason, plan.hard, `entry ${i}: ${plan.message}`);
      }
      pending.set(vni, plan.vid);
      entries.push({ ...e, vid: plan.vid });
    }
    const { endpoints } = analyseEntries(entries);
    const inVns = new Set(endpoints.map((x) => x.vni));
    for (const vni of inVns) {
      const max = this.opts.vns.getVn(vni)?.maxTsis;
      if (max === undefined) continue;
      // One VSI id counts once (a VM moving between two stations of this nNVE is one TSI).
      const ids = new Set(
        [...(this.members.get(vni) ?? [])].map((x) => x.slice(x.lastIndexOf('|') + 1)),
      );
      if (!ids.has(req.key) && ids.size >= max) {
        this.stats.refusedMaxTsis++;
        return refuse(
          Reason.InsufficientResources,
          false,
          `VN ${vni} has its maximum of ${max} TSIs on this nNVE`,
        );
      }
    }
    // Commit: references on tags, VN membership.
    const now = this.opts.clock();
    const old = this.holdings.get(hk);
    for (const [vni, vid] of pending) if (!old?.vnis.has(vni)) tags.acquire(segment, vni, vid, now);
    for (const vni of old?.vnis.keys() ?? [])
      if (!pending.has(vni)) tags.release(segment, vni, now);
    if (pending.size > 0) this.holdings.set(hk, { segment, vnis: pending });
    else this.holdings.delete(hk);
    this.setMembership(hk, inVns);
    for (const vni of unknown) {
      if (!this.fx.createVn.has(vni)) this.fx.events.push({ type: 'vn-auto-create', vni });
      this.fx.createVn.add(vni);
    }
    return { accept: true, entries };
  }

  released(port: string, station: string, vsi: BridgeVsi): void {
    const hk = `${port}|${station}|${vsi.key}`;
    const h = this.holdings.get(hk);
    const now = this.opts.clock();
    if (h) for (const vni of h.vnis.keys()) this.opts.tags.release(h.segment, vni, now);
    this.holdings.delete(hk);
    this.setMembership(hk, new Set());
  }

  private setMembership(hk: string, vnis: ReadonlySet<number>): void {
    const was = this.memberOf.get(hk);
    if (was) {
      for (const vni of was) {
        const m = this.members.get(vni);
        if (!vnis.has(vni) && m?.delete(hk) && m.size === 0) this.members.delete(vni);
      }
    }
    for (const vni of vnis) {
      let m = this.members.get(vni);
      if (!m) this.members.set(vni, (m = new Set()));
      m.add(hk);
    }
    if (vnis.size > 0) this.memberOf.set(hk, [...vnis]);
    else this.memberOf.delete(hk);
  }

  // ------------------------------------------------------------------------------------------
  // TSI state (from the BridgeNode's events)

  /** Follows the TSI events of one protocol step. */
  applyEvents(events: readonly BridgeNodeEvent[]): void {
    for (const e of events)
      if (e.type === 'tsi') this.onTsi(e.port, e.station, e.key, e.to, e.vsi, e.from);
  }

  private onTsi(
    port: string,
    station: string,
    key: string,
    to: VsiState,
    vsi: BridgeVsi,
    from: VsiState,
  ): void {
    const id = `${port}|${station}|${key}`;
    const old = this.tsis.get(id);
    if (old) this.contribute(old, false);
    if (to === 'init') {
      this.tsis.delete(id);
      return;
    }
    const { endpoints, vnis } = analyseEntries(vsi.entries);
    const activation = to === 'associated' && (from !== 'associated' || vsi.hints.m === true);
    const rec: TsiRec = {
      id,
      port,
      station,
      key,
      vsi,
      state: to,
      since: old && old.state === to ? old.since : this.opts.clock(),
      seq: activation ? ++this.seq : (old?.seq ?? 0),
      endpoints,
      vnis,
    };
    this.tsis.set(id, rec);
    this.contribute(rec, true);
  }

  /** Adds (or removes) what one TSI contributes to the VAPs, endpoints and NVA entries. */
  private contribute(t: TsiRec, add: boolean): void {
    for (const [vni, vid] of t.vnis) this.vaps.set(vKey(t.port, vid), t.id, add ? vni : undefined);
    const active = t.state === 'associated';
    for (const ep of t.endpoints) {
      this.locals.set(
        lKey(t.port, ep.vid, ep.mac),
        t.id,
        add ? { vni: ep.vni, ips: ep.ips, active, seq: t.seq } : undefined,
      );
      this.entries.set(
        vmKey(ep.vni, ep.mac),
        t.id,
        add ? { ips: ep.ips, forwarding: active } : undefined,
      );
    }
  }

  /**
   * Reloads TSIs after a restart (before the BridgeNode restores them): their tag references,
   * VN membership and effects. Returns the items whose tags conflict (they keep what they had).
   */
  restore(items: readonly { port: string; station: string; vsi: BridgeVsi }[]): number {
    const tags = this.opts.tags;
    const now = this.opts.clock();
    let conflicts = 0;
    for (const it of items) {
      const segment = this.opts.segmentOf(it.port);
      const hk = `${it.port}|${it.station}|${it.vsi.key}`;
      const { endpoints, vnis } = analyseEntries(it.vsi.entries);
      const held = new Map<number, number>();
      for (const [vni, vid] of vnis) {
        const cur = tags.vidOf(segment, vni);
        const owner = tags.vniOf(segment, vid);
        if ((cur !== undefined && cur !== vid) || (owner !== undefined && owner !== vni)) {
          // Only if the store was edited: the VSI keeps its VID, the VN its tag.
          conflicts++;
          this.stats.restoreConflicts++;
          continue;
        }
        tags.acquire(segment, vni, vid, now);
        held.set(vni, vid);
      }
      if (held.size > 0) this.holdings.set(hk, { segment, vnis: held });
      this.setMembership(hk, new Set(endpoints.map((x) => x.vni)));
      this.onTsi(it.port, it.station, it.vsi.key, it.vsi.state, it.vsi, it.vsi.state);
      const rec = this.tsis.get(hk);
      if (rec) {
        rec.since = undefined;
        rec.seq = 0;
        this.contribute(rec, false);
        this.contribute(rec, true);
      }
    }
    return conflicts;
  }

  // ------------------------------------------------------------------------------------------
  // NVA (remote entries, VNs)

  /**
   * Follows an NVA event; for `vn-deleted` the caller also de-associates (`stationsOfVn`).
   * `initial`: the entry was already there when the VN's watch started; it counts as older than
   * every activation here.
   */
  onNvaEvent(e: NvaEvent, initial = false): void {
    switch (e.type) {
      case 'entry-set':
        this.remoteSet(e.entry, initial);
        break;
      case 'entry-deleted':
        this.remoteDel(e.vni, e.mac, e.nve);
        break;
      case 'nve-down':
        for (const [k, m] of this.cands)
          if (m.has(e.id))
            this.remoteDel(Number(k.split('|')[0]), k.slice(k.indexOf('|') + 1), e.id);
        break;
      case 'vn-deleted':
        this.dropRemoteVn(e.vni);
        break;
      case 'vn-set':
      case 'nve-up':
        break;
    }
  }

  private remoteSet(entry: NvaEntry, initial: boolean): void {
    if (entry.nve === this.opts.self) return;
    if (!this.vniVaps.has(entry.vni)) return; // not a VN with a local VAP (late event)
    if (isIPv6(entry.vtep) !== isIPv6(this.opts.vtep)) {
      this.fx.events.push({
        type: 'remote-ignored',
        vni: entry.vni,
        mac: entry.mac,
        nve: entry.nve,
        why: `VTEP ${entry.vtep} is not of the address family of ${this.opts.vtep}`,
      });
      return;
    }
    const k = vmKey(entry.vni, entry.mac);
    let m = this.cands.get(k);
    if (!m) this.cands.set(k, (m = new Map()));
    const prev = m.get(entry.nve);
    const forwarding = entry.kind === 'forwarding';
    const fresh = forwarding && (!prev || !prev.forwarding || prev.vtep !== entry.vtep);
    const seq = fresh && !initial ? ++this.seq : (prev?.seq ?? 0);
    m.set(entry.nve, { vtep: entry.vtep, forwarding, seq });
    this.remoteTouched.add(k);
    this.floodTouched.add(entry.vni);
  }

  private remoteDel(vni: number, mac: string, nve: string): void {
    const k = vmKey(vni, mac);
    const m = this.cands.get(k);
    if (!m || !m.delete(nve)) return;
    if (m.size === 0) this.cands.delete(k);
    this.remoteTouched.add(k);
    this.floodTouched.add(vni);
  }

  private dropRemoteVn(vni: number): void {
    for (const k of [...this.cands.keys()]) {
      if (Number(k.slice(0, k.indexOf('|'))) !== vni) continue;
      this.cands.delete(k);
      this.remoteTouched.add(k);
    }
    this.floodTouched.add(vni);
  }

  /** Every (port, station) with a VSI in `vni` (to de-associate when the VN is deleted). */
  stationsOfVn(vni: number): { port: string; station: string }[] {
    const out = new Map<string, { port: string; station: string }>();
    for (const t of this.tsis.values()) {
      if (t.vnis.has(vni)) out.set(`${t.port}|${t.station}`, { port: t.port, station: t.station });
    }
    return [...out.values()];
  }

  /** VNs with at least one local VAP (the ones to watch in the NVA). */
  watchedVnis(): number[] {
    return [...this.vniVaps.keys()].sort((a, b) => a - b);
  }

  /** VNs named by some TSI. */
  vnisInUse(): number[] {
    const s = new Set<number>();
    for (const t of this.tsis.values()) for (const v of t.vnis.keys()) s.add(v);
    return [...s].sort((a, b) => a - b);
  }

  // ------------------------------------------------------------------------------------------
  // Desired state

  /** The desired value of an own NVA entry (`vni|mac`), undefined: withdrawn. */
  ownEntry(key: string): OwnEntry | undefined {
    this.flush();
    return this.curEntries.get(key);
  }

  ownEntries(): OwnEntry[] {
    this.flush();
    return [...this.curEntries.values()];
  }

  desiredDataPlane(): DataPlaneState {
    this.flush();
    return {
      vaps: [...this.curVaps.values()],
      locals: [...this.curLocals.values()],
      remotes: [...this.curRemotes.values()],
      floods: [...this.curFloods.values()],
    };
  }

  /** Recomputes every touched key and records the resulting effects. */
  private flush(): void {
    const fx = this.fx;
    const sets: DataPlaneOp[] = [];
    const dels: DataPlaneOp[] = [];
    // VAPs
    for (const k of this.vaps.take()) {
      const owners = this.vaps.values(k);
      const old = this.curVaps.get(k);
      const i = k.lastIndexOf('|');
      const port = k.slice(0, i);
      const vlan = Number(k.slice(i + 1));
      const vni = owners ? owners[0] : undefined;
      if (old?.vni === vni) continue;
      if (old) this.countVni(old.vni, -1);
      if (vni !== undefined) {
        const vap = { port, vlan, vni };
        this.curVaps.set(k, vap);
        this.countVni(vni, 1);
        sets.push({ op: 'vap-set', vap });
      } else {
        this.curVaps.delete(k);
        dels.push({ op: 'vap-del', port, vlan });
      }
    }
    // Remote candidates -> remote endpoints (and the locals they may supersede)
    const localKeys = new Set(this.locals.take());
    for (const k of this.remoteTouched) {
      const winner = this.remoteWinner(k);
      const old = this.curRemotes.get(k);
      const i = k.indexOf('|');
      const vni = Number(k.slice(0, i));
      const mac = k.slice(i + 1);
      if (winner && this.vniVaps.has(vni)) {
        if (old?.vtep !== winner.vtep) {
          const r = { vni, mac, vtep: winner.vtep };
          this.curRemotes.set(k, r);
          sets.push({ op: 'remote-set', remote: r });
        }
      } else if (old) {
        this.curRemotes.delete(k);
        dels.push({ op: 'remote-del', vni, mac });
      }
      for (const lk of this.localsByVm.get(k) ?? []) localKeys.add(lk);
    }
    this.remoteTouched.clear();
    // Local endpoints
    for (const k of localKeys) {
      const owners = this.locals.values(k);
      const old = this.curLocals.get(k);
      const [port, vlanText] = k.split('|', 2) as [string, string];
      const vlan = Number(vlanText);
      const mac = k.slice(port.length + vlanText.length + 2);
      if (!owners) {
        if (old) {
          this.curLocals.delete(k);
          this.indexLocal(vmKey(old.vni, mac), k, false);
          dels.push({ op: 'local-del', port, vlan, mac });
        }
        this.setSuperseded(k, port, vlan, old?.vni ?? 0, mac, false);
        continue;
      }
      const list = owners;
      const vni = list[0]!.vni;
      const remote = this.remoteWinner(vmKey(vni, mac));
      const anyActive = list.some((o) => o.active);
      // Ties (a reloaded TSI against an entry that was there before the watch) go to the local.
      const active = list.some((o) => o.active && (!remote || o.seq >= remote.seq));
      const local: LocalEndpoint = {
        port,
        vlan,
        vni,
        mac,
        ips: sortedUnion(list.map((o) => o.ips)),
        active,
      };
      this.setSuperseded(k, port, vlan, vni, mac, anyActive && !active, remote?.nve);
      if (old && old.vni !== vni) this.indexLocal(vmKey(old.vni, mac), k, false);
      this.indexLocal(vmKey(vni, mac), k, true);
      if (old && old.vni === vni && old.active === active && sameList(old.ips, local.ips)) continue;
      this.curLocals.set(k, local);
      sets.push({ op: 'local-set', local });
    }
    // Flood lists
    for (const vni of this.floodTouched) {
      const vteps = this.vniVaps.has(vni) ? this.floodVteps(vni) : [];
      const old = this.curFloods.get(vni)?.vteps ?? [];
      if (sameList(old, vteps)) continue;
      if (vteps.length > 0) this.curFloods.set(vni, { vni, vteps });
      else this.curFloods.delete(vni);
      (vteps.length > 0 ? sets : dels).push({ op: 'flood-set', flood: { vni, vteps } });
    }
    this.floodTouched.clear();
    // NVA entries
    for (const k of this.entries.take()) {
      const owners = this.entries.values(k);
      const old = this.curEntries.get(k);
      const i = k.indexOf('|');
      const vni = Number(k.slice(0, i));
      const mac = k.slice(i + 1);
      let next: OwnEntry | undefined;
      if (owners) {
        const list = owners;
        next = {
          vni,
          mac,
          ips: sortedUnion(list.map((o) => o.ips)),
          kind: list.some((o) => o.forwarding) ? 'forwarding' : 'mapping',
        };
      }
      if (old && next && old.kind === next.kind && sameList(old.ips, next.ips)) continue;
      if (!old && !next) continue;
      if (next) this.curEntries.set(k, next);
      else this.curEntries.delete(k);
      fx.entries.add(k);
    }
    // Order: add VAPs before what uses them, remove them after.
    const rank = (op: DataPlaneOp): number =>
      op.op === 'vap-set' ? 0 : op.op === 'vap-del' ? 9 : op.op.endsWith('-del') ? 5 : 1;
    fx.dp.push(...[...sets, ...dels].sort((a, b) => rank(a) - rank(b)));
  }

  private countVni(vni: number, d: number): void {
    const n = (this.vniVaps.get(vni) ?? 0) + d;
    if (n > 0) {
      if (!this.vniVaps.has(vni)) {
        this.fx.watch.add(vni);
        this.fx.unwatch.delete(vni);
      }
      this.vniVaps.set(vni, n);
      return;
    }
    this.vniVaps.delete(vni);
    this.fx.unwatch.add(vni);
    this.fx.watch.delete(vni);
    // No local VAP of this VN: its remote state goes.
    this.dropRemoteVn(vni);
  }

  private indexLocal(vm: string, lk: string, add: boolean): void {
    let s = this.localsByVm.get(vm);
    if (add) {
      if (!s) this.localsByVm.set(vm, (s = new Set()));
      s.add(lk);
    } else if (s) {
      s.delete(lk);
      if (s.size === 0) this.localsByVm.delete(vm);
    }
  }

  private setSuperseded(
    k: string,
    port: string,
    vlan: number,
    vni: number,
    mac: string,
    on: boolean,
    by?: string,
  ): void {
    if (on === this.superseded.has(k)) return;
    if (on) {
      this.superseded.add(k);
      this.stats.supersessions++;
    } else this.superseded.delete(k);
    this.fx.events.push({
      type: 'superseded',
      port,
      vlan,
      vni,
      mac,
      superseded: on,
      ...(by ? { by } : {}),
    });
  }

  private remoteWinner(k: string): (Cand & { nve: string }) | undefined {
    let best: (Cand & { nve: string }) | undefined;
    for (const [nve, c] of this.cands.get(k) ?? []) {
      if (!c.forwarding) continue;
      if (!best || c.seq > best.seq || (c.seq === best.seq && nve < best.nve)) best = { ...c, nve };
    }
    return best;
  }

  private floodVteps(vni: number): string[] {
    const s = new Set<string>();
    const prefix = `${vni}|`;
    for (const [k, m] of this.cands) {
      if (!k.startsWith(prefix)) continue;
      for (const c of m.values()) if (c.forwarding) s.add(c.vtep);
    }
    return [...s].sort();
  }

  // ------------------------------------------------------------------------------------------
  // Views

  tsiViews(): TsiView[] {
    this.flush();
    return [...this.tsis.values()].map((t) => {
      const connects = [...t.vnis]
        .filter(([vni]) => !t.endpoints.some((e) => e.vni === vni))
        .map(([vni, vid]) => ({ vni, vid }));
      return {
        port: t.port,
        segment: this.opts.segmentOf(t.port),
        station: t.station,
        key: t.key,
        vsiId: t.vsi.vsiId,
        state: tsiState(t.state),
        vdpState: t.state,
        since: t.since,
        endpoints: t.endpoints,
        connects,
        migration: t.vsi.hints.m ? 'arriving' : t.vsi.hints.s ? 'leaving' : undefined,
        superseded: t.endpoints
          .filter((e) => this.superseded.has(lKey(t.port, e.vid, e.mac)))
          .map((e) => vmKey(e.vni, e.mac)),
      };
    });
  }

  vapViews(): VapView[] {
    const per = new Map<
      string,
      { tsis: number; explicit: number; stations: Set<string>; ports: Set<string> }
    >();
    for (const t of this.tsis.values()) {
      const segment = this.opts.segmentOf(t.port);
      for (const vni of t.vnis.keys()) {
        const k = `${segment}|${vni}`;
        let c = per.get(k);
        if (!c) per.set(k, (c = { tsis: 0, explicit: 0, stations: new Set(), ports: new Set() }));
        if (t.endpoints.some((e) => e.vni === vni)) c.tsis++;
        else c.explicit++;
        c.stations.add(`${t.port}|${t.station}`);
        c.ports.add(t.port);
      }
    }
    return this.opts.tags.list().map((a) => {
      const c = per.get(`${a.segment}|${a.vni}`);
      return {
        segment: a.segment,
        vni: a.vni,
        vid: a.vid,
        state: a.refs > 0 ? 'connected' : 'held',
        heldUntil: a.heldUntil,
        refs: a.refs,
        tsis: c?.tsis ?? 0,
        explicit: c?.explicit ?? 0,
        stations: c?.stations.size ?? 0,
        ports: c ? [...c.ports].sort() : [],
        vn: vnContext(this.opts.vns.getVn(a.vni)),
      };
    });
  }

  /** Remote candidates of watched VNs, for views. */
  remoteViews(): {
    vni: number;
    mac: string;
    nve: string;
    vtep: string;
    kind: string;
    programmed: boolean;
  }[] {
    this.flush();
    const out = [];
    for (const [k, m] of this.cands) {
      const i = k.indexOf('|');
      const vni = Number(k.slice(0, i));
      const mac = k.slice(i + 1);
      const prog = this.curRemotes.get(k);
      for (const [nve, c] of m) {
        out.push({
          vni,
          mac,
          nve,
          vtep: c.vtep,
          kind: c.forwarding ? 'forwarding' : 'mapping',
          programmed: prog?.vtep === c.vtep && c.forwarding,
        });
      }
    }
    return out.sort((a, b) => a.vni - b.vni || (a.mac < b.mac ? -1 : 1));
  }

  get tsiCount(): number {
    return this.tsis.size;
  }
}

function vnContext(vn: VnInfo | undefined): VapView['vn'] {
  if (!vn) return null;
  return {
    ...(vn.name !== undefined ? { name: vn.name } : {}),
    ...(vn.allowedStations?.length ? { allowedStations: vn.allowedStations } : {}),
    ...(vn.maxTsis !== undefined ? { maxTsis: vn.maxTsis } : {}),
  };
}

function refuse(reason: number, hard: boolean, message: string): BridgeDecision {
  return { accept: false, reason, hard, message };
}
