/**
 * A bridge policy that assigns local tags from a VLAN pool: one VID per (segment, VN), the
 * same for every station of the segment (Req-7); released when no VSI of that segment uses
 * the VN any more. This is the minimum the foundation needs; the nNVE's full model adds VN
 * resolution, holds, persistence and quotas on top.
 */
import type { FilterEntry } from '../wire/filter.js';
import { Reason } from '../wire/status.js';
import type { BridgeDecision, BridgePolicy, BridgeRequest, BridgeVsi } from '../vdp/bridge.js';

export interface VlanRange {
  readonly min: number;
  readonly max: number;
}

export function parseVlanRanges(text: string): VlanRange[] {
  const out: VlanRange[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+))?\s*$/.exec(part);
    if (!m)
      throw new Error(`VLAN pool: cannot read ${JSON.stringify(part)} (use e.g. 100-3999,4000)`);
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : Number(m[2]);
    if (min < 2 || max > 4094 || min > max)
      throw new Error(`VLAN pool: ${part} is not within 2..4094`);
    out.push({ min, max });
  }
  return out;
}

/** Key of a VSI's references (a flat string: one is kept per VSI). */
function heldKey(port: string, station: string, key: string): string {
  return [port, station, key].join('|');
}

export class VlanPoolPolicy implements BridgePolicy {
  /** segment -> VNI -> VID */
  private bySegment = new Map<string, Map<number, number>>();
  /** segment -> VID -> VNI */
  private used = new Map<string, Map<number, number>>();
  /** segment|vni -> number of VSIs using it */
  private refs = new Map<string, number>();
  /** port|station|vsi key -> the segment|vni references it holds (usually one: no Set per VSI) */
  private held = new Map<string, readonly string[]>();

  constructor(
    private readonly pool: readonly VlanRange[],
    private readonly segmentOf: (port: string) => string = (p) => p,
  ) {}

  vidOf(segment: string, vni: number): number | undefined {
    return this.bySegment.get(segment)?.get(vni);
  }

  assignments(): { segment: string; vni: number; vid: number; tsis: number }[] {
    const out = [];
    for (const [segment, m] of this.bySegment) {
      for (const [vni, vid] of m)
        out.push({ segment, vni, vid, tsis: this.refs.get(`${segment}|${vni}`) ?? 0 });
    }
    return out;
  }

  private inPool(vid: number): boolean {
    return this.pool.some((r) => vid >= r.min && vid <= r.max);
  }

  decide(req: BridgeRequest): BridgeDecision {
    const segment = this.segmentOf(req.port);
    const seg = this.bySegment.get(segment) ?? new Map<number, number>();
    const used = this.used.get(segment) ?? new Map<number, number>();
    const fresh = new Map<number, number>(); // vni -> vid chosen in this decision
    const entries: FilterEntry[] = [];
    for (const [i, e] of req.tlv.entries.entries()) {
      if (e.groupId === undefined) {
        if (e.vid === 0) {
          return {
            accept: false,
            reason: Reason.InvalidVidGroupMac,
            hard: true,
            message: `entry ${i}: a null VID needs a GroupID (VNI) to choose a local tag`,
          };
        }
        entries.push(e);
        continue;
      }
      const vni = e.groupId;
      let vid = seg.get(vni) ?? fresh.get(vni);
      if (e.vid !== 0) {
        if (vid !== undefined && vid !== e.vid) {
          return {
            accept: false,
            reason: Reason.InvalidVidGroupMac,
            hard: true,
            message: `entry ${i}: VN ${vni} uses VID ${vid} on this segment, not ${e.vid}`,
          };
        }
        const owner = used.get(e.vid);
        if (owner !== undefined && owner !== vni) {
          return {
            accept: false,
            reason: Reason.InvalidVidGroupMac,
            hard: true,
            message: `entry ${i}: VID ${e.vid} belongs to VN ${owner} on this segment`,
          };
        }
        if (!this.inPool(e.vid)) {
          return {
            accept: false,
            reason: Reason.InvalidVidGroupMac,
            hard: true,
            message: `entry ${i}: VID ${e.vid} is outside the VLAN pool`,
          };
        }
        vid = e.vid;
      }
      if (vid === undefined) {
        const taken = new Set([...used.keys(), ...fresh.values()]);
        vid = undefined;
        for (const r of this.pool) {
          for (let v = r.min; v <= r.max && vid === undefined; v++) if (!taken.has(v)) vid = v;
          if (vid !== undefined) break;
        }
        if (vid === undefined) {
          return {
            accept: false,
            reason: Reason.InsufficientResources,
            message: `VLAN pool of segment ${segment} is exhausted`,
          };
        }
      }
      fresh.set(vni, vid);
      entries.push({ ...e, vid });
    }
    // Commit: take references for this VSI, release those it no longer uses.
    const hk = heldKey(req.port, req.station, req.key);
    const before = this.held.get(hk) ?? [];
    const now = new Set<string>();
    for (const [vni, vid] of fresh) {
      seg.set(vni, vid);
      used.set(vid, vni);
      now.add(`${segment}|${vni}`);
    }
    this.bySegment.set(segment, seg);
    this.used.set(segment, used);
    for (const r of now) if (!before.includes(r)) this.refs.set(r, (this.refs.get(r) ?? 0) + 1);
    for (const r of before) if (!now.has(r)) this.unref(r);
    if (now.size > 0) this.held.set(hk, [...now]);
    else this.held.delete(hk);
    return { accept: true, entries };
  }

  /**
   * Re-registers a VSI reloaded after a restart with the VIDs it had, so that tags never
   * change across restarts. Returns false when its VIDs conflict with what is registered.
   */
  restore(port: string, station: string, vsi: BridgeVsi): boolean {
    const segment = this.segmentOf(port);
    const seg = this.bySegment.get(segment) ?? new Map<number, number>();
    const used = this.used.get(segment) ?? new Map<number, number>();
    const held = new Set<string>();
    for (const e of vsi.entries) {
      if (e.groupId === undefined || e.vid === 0) continue;
      const have = seg.get(e.groupId);
      const owner = used.get(e.vid);
      if ((have !== undefined && have !== e.vid) || (owner !== undefined && owner !== e.groupId))
        return false;
      seg.set(e.groupId, e.vid);
      used.set(e.vid, e.groupId);
      held.add(`${segment}|${e.groupId}`);
    }
    this.bySegment.set(segment, seg);
    this.used.set(segment, used);
    const hk = heldKey(port, station, vsi.key);
    for (const r of held) this.refs.set(r, (this.refs.get(r) ?? 0) + 1);
    if (held.size > 0) this.held.set(hk, [...held]);
    return true;
  }

  released(port: string, station: string, vsi: BridgeVsi): void {
    const hk = heldKey(port, station, vsi.key);
    for (const r of this.held.get(hk) ?? []) this.unref(r);
    this.held.delete(hk);
  }

  private unref(r: string): void {
    const n = (this.refs.get(r) ?? 0) - 1;
    if (n > 0) {
      this.refs.set(r, n);
      return;
    }
    this.refs.delete(r);
    const i = r.lastIndexOf('|');
    const segment = r.slice(0, i);
    const vni = Number(r.slice(i + 1));
    const vid = this.bySegment.get(segment)?.get(vni);
    this.bySegment.get(segment)?.delete(vni);
    if (vid !== undefined) this.used.get(segment)?.delete(vid);
  }
}
