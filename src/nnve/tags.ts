/**
 * Local tags (RFC 8394 Req-7): the VLAN id that carries one VN on one segment (a set of nNVE
 * ports that share one L2 domain). Rules:
 *
 * - A null VID (0) asks the nNVE to choose: the VN's current tag on the segment if it has one
 *   (also while the tag is held, below), else the lowest free VID of the segment's pool.
 * - Every station of a segment gets the same VID for one VN; an explicit VID must be in the pool,
 *   must not be another VN's, and must equal the VN's current tag if it has one.
 * - A tag is referenced by every VSI holding the VN on the segment. When the last reference goes
 *   the tag is *held* for `holdMs` (so a VM that comes back, or a restart of the station, gets the
 *   same VID) and then released. A held tag may be reclaimed earlier by another VN when the pool
 *   has nothing else left.
 * - Pool exhausted: reason 2 (insufficient resources), counted per segment.
 *
 * The allocator has no clock: callers pass `now` (wall-clock milliseconds, so that holds survive
 * a restart). Every change is recorded in a dirty set that the caller persists (`takeDirty`) in
 * the same transaction as the TSIs that caused it; `restore` loads what was persisted.
 */
import { Reason } from '../wire/status.js';
import type { VlanRange } from '../policy/vlan-pool.js';

export interface TagRecord {
  readonly segment: string;
  readonly vni: number;
  readonly vid: number;
  /** Wall-clock ms until which the tag is held for its VN; null while it is in use. */
  readonly heldUntil: number | null;
}

export interface TagView extends TagRecord {
  /** VSIs referencing the tag. */
  readonly refs: number;
}

export type TagPlan =
  | { readonly ok: true; readonly vid: number }
  | {
      readonly ok: false;
      readonly reason: number;
      readonly hard: boolean;
      readonly message: string;
    };

/** Something that happened to a tag (for logs and counters). */
export type TagEvent =
  | {
      readonly type: 'tag-allocated';
      readonly segment: string;
      readonly vni: number;
      readonly vid: number;
    }
  | {
      readonly type: 'tag-held';
      readonly segment: string;
      readonly vni: number;
      readonly vid: number;
      readonly until: number;
    }
  | {
      readonly type: 'tag-released';
      readonly segment: string;
      readonly vni: number;
      readonly vid: number;
    }
  | {
      readonly type: 'tag-reclaimed';
      readonly segment: string;
      readonly vni: number;
      readonly vid: number;
      /** The VN that gets it now. */
      readonly by: number;
    }
  | { readonly type: 'pool-exhausted'; readonly segment: string; readonly vni: number };

interface Assign {
  readonly vni: number;
  readonly vid: number;
  refs: number;
  heldUntil: number | null;
}

interface Segment {
  readonly byVni: Map<number, Assign>;
  readonly byVid: Map<number, number>;
}

export interface TagStats {
  allocated: number;
  released: number;
  reclaimed: number;
  /** Requests refused because the pool had no tag left (reason 2), per segment. */
  exhausted: Record<string, number>;
}

export interface TagAllocatorOptions {
  /** The VLAN pool of a segment. */
  readonly pool: (segment: string) => readonly VlanRange[];
  /** How long an unused tag stays reserved for its VN (ms; 0 releases at once). */
  readonly holdMs: number;
}

export class TagAllocator {
  readonly stats: TagStats = { allocated: 0, released: 0, reclaimed: 0, exhausted: {} };
  private readonly segs = new Map<string, Segment>();
  private dirty = new Map<string, TagRecord | null>();
  private events: TagEvent[] = [];

  constructor(private readonly opts: TagAllocatorOptions) {
    if (!(opts.holdMs >= 0)) throw new Error(`tag hold ${opts.holdMs} ms must be >= 0`);
  }

  private seg(segment: string): Segment {
    let s = this.segs.get(segment);
    if (!s) this.segs.set(segment, (s = { byVni: new Map(), byVid: new Map() }));
    return s;
  }

  inPool(segment: string, vid: number): boolean {
    return this.opts.pool(segment).some((r) => vid >= r.min && vid <= r.max);
  }

  /** The VN's tag on a segment (in use or held). */
  vidOf(segment: string, vni: number): number | undefined {
    return this.segs.get(segment)?.byVni.get(vni)?.vid;
  }

  /** The VN a VID belongs to on a segment (in use or held). */
  vniOf(segment: string, vid: number): number | undefined {
    return this.segs.get(segment)?.byVid.get(vid);
  }

  /**
   * Chooses the VID of `vni` on `segment` for a request that asks for `wanted` (0: any), without
   * changing anything. `pending` holds the choices made earlier in the same request (vni -> vid).
   */
  plan(
    segment: string,
    vni: number,
    wanted: number,
    pending: ReadonlyMap<number, number> = new Map(),
  ): TagPlan {
    const s = this.segs.get(segment);
    const cur = s?.byVni.get(vni);
    const chosen = pending.get(vni) ?? cur?.vid;
    const takenInRequest = (vid: number): number | undefined => {
      for (const [n, v] of pending) if (v === vid && n !== vni) return n;
      return undefined;
    };
    if (wanted !== 0) {
      if (chosen !== undefined && chosen !== wanted) {
        return refuse(`VN ${vni} uses VID ${chosen} on segment ${segment}, not ${wanted}`);
      }
      if (!this.inPool(segment, wanted)) {
        return refuse(`VID ${wanted} is outside the VLAN pool of segment ${segment}`);
      }
      const other = takenInRequest(wanted);
      if (other !== undefined) return refuse(`VID ${wanted} is asked for VN ${other} too`);
      const owner = s?.byVid.get(wanted);
      if (owner !== undefined && owner !== vni) {
        const a = s!.byVni.get(owner)!;
        if (a.refs > 0) return refuse(`VID ${wanted} belongs to VN ${owner} on segment ${segment}`);
        // held by a VN nobody uses now: may be reclaimed
      }
      return { ok: true, vid: wanted };
    }
    if (chosen !== undefined) return { ok: true, vid: chosen };
    const taken = new Set<number>(pending.values());
    for (const r of this.opts.pool(segment)) {
      for (let v = r.min; v <= r.max; v++) {
        if (!taken.has(v) && !s?.byVid.has(v)) return { ok: true, vid: v };
      }
    }
    // Nothing free: the held tag whose hold ends first.
    let best: Assign | undefined;
    for (const a of s?.byVni.values() ?? []) {
      if (a.refs === 0 && !taken.has(a.vid) && this.inPool(segment, a.vid)) {
        if (!best || (a.heldUntil ?? 0) < (best.heldUntil ?? 0)) best = a;
      }
    }
    if (best) return { ok: true, vid: best.vid };
    this.stats.exhausted[segment] = (this.stats.exhausted[segment] ?? 0) + 1;
    this.events.push({ type: 'pool-exhausted', segment, vni });
    return {
      ok: false,
      reason: Reason.InsufficientResources,
      hard: false,
      message: `VLAN pool of segment ${segment} is exhausted (no tag for VN ${vni})`,
    };
  }

  /** Takes a reference on (segment, vni) with `vid` (as planned). */
  acquire(segment: string, vni: number, vid: number, now: number): void {
    const s = this.seg(segment);
    const cur = s.byVni.get(vni);
    if (cur) {
      if (cur.vid !== vid) {
        throw new Error(`tag of VN ${vni} on ${segment} is ${cur.vid}, not ${vid} (plan first)`);
      }
      cur.refs++;
      if (cur.heldUntil !== null) {
        cur.heldUntil = null;
        this.mark(segment, cur);
      }
      return;
    }
    const owner = s.byVid.get(vid);
    if (owner !== undefined) {
      const o = s.byVni.get(owner)!;
      if (o.refs > 0) throw new Error(`VID ${vid} on ${segment} is in use by VN ${owner}`);
      this.drop(segment, s, o);
      this.stats.reclaimed++;
      this.events.push({ type: 'tag-reclaimed', segment, vni: owner, vid, by: vni });
    }
    const a: Assign = { vni, vid, refs: 1, heldUntil: null };
    s.byVni.set(vni, a);
    s.byVid.set(vid, vni);
    this.stats.allocated++;
    this.mark(segment, a);
    this.events.push({ type: 'tag-allocated', segment, vni, vid });
    void now;
  }

  /** Drops a reference; the last one starts the hold (or releases at once with no hold). */
  release(segment: string, vni: number, now: number): void {
    const s = this.segs.get(segment);
    const a = s?.byVni.get(vni);
    if (!s || !a || a.refs === 0) return;
    a.refs--;
    if (a.refs > 0) return;
    if (this.opts.holdMs > 0) {
      a.heldUntil = now + this.opts.holdMs;
      this.mark(segment, a);
      this.events.push({ type: 'tag-held', segment, vni, vid: a.vid, until: a.heldUntil });
    } else {
      this.drop(segment, s, a);
      this.stats.released++;
      this.events.push({ type: 'tag-released', segment, vni, vid: a.vid });
    }
  }

  /** Releases the tags whose hold has ended. */
  expire(now: number): void {
    for (const [segment, s] of this.segs) {
      for (const a of [...s.byVni.values()]) {
        if (a.refs === 0 && a.heldUntil !== null && a.heldUntil <= now) {
          this.drop(segment, s, a);
          this.stats.released++;
          this.events.push({ type: 'tag-released', segment, vni: a.vni, vid: a.vid });
        }
      }
    }
  }

  /** When the next hold ends (wall-clock ms). */
  nextExpiry(): number | undefined {
    let t: number | undefined;
    for (const s of this.segs.values()) {
      for (const a of s.byVni.values()) {
        if (a.refs === 0 && a.heldUntil !== null && (t === undefined || a.heldUntil < t)) {
          t = a.heldUntil;
        }
      }
    }
    return t;
  }

  /**
   * Loads persisted tags (before any reference is restored): every tag starts held (until its
   * persisted hold, or `now + holdMs` for one that was in use); restored VSIs then `acquire`.
   * Returns records that conflict with an earlier one (same VID or VN twice on a segment).
   */
  restore(records: readonly TagRecord[], now: number): TagRecord[] {
    const conflicts: TagRecord[] = [];
    for (const r of records) {
      const s = this.seg(r.segment);
      if (s.byVni.has(r.vni) || s.byVid.has(r.vid)) {
        conflicts.push(r);
        continue;
      }
      const a: Assign = {
        vni: r.vni,
        vid: r.vid,
        refs: 0,
        heldUntil: r.heldUntil ?? now + this.opts.holdMs,
      };
      s.byVni.set(r.vni, a);
      s.byVid.set(r.vid, r.vni);
      if (r.heldUntil === null) this.mark(r.segment, a);
    }
    return conflicts;
  }

  list(): TagView[] {
    const out: TagView[] = [];
    for (const [segment, s] of this.segs) {
      for (const a of s.byVni.values()) {
        out.push({ segment, vni: a.vni, vid: a.vid, heldUntil: a.heldUntil, refs: a.refs });
      }
    }
    return out.sort((a, b) =>
      a.segment < b.segment ? -1 : a.segment > b.segment ? 1 : a.vid - b.vid,
    );
  }

  /** Changes since the last call: records to write, or null for a deleted (segment, vni). */
  takeDirty(): Map<string, TagRecord | null> {
    const d = this.dirty;
    this.dirty = new Map();
    return d;
  }

  takeEvents(): TagEvent[] {
    const e = this.events;
    this.events = [];
    return e;
  }

  private mark(segment: string, a: Assign): void {
    this.dirty.set(tagKey(segment, a.vni), {
      segment,
      vni: a.vni,
      vid: a.vid,
      heldUntil: a.heldUntil,
    });
  }

  private drop(segment: string, s: Segment, a: Assign): void {
    s.byVni.delete(a.vni);
    if (s.byVid.get(a.vid) === a.vni) s.byVid.delete(a.vid);
    this.dirty.set(tagKey(segment, a.vni), null);
  }
}

export function tagKey(segment: string, vni: number): string {
  return `${segment}|${vni}`;
}

function refuse(message: string): TagPlan {
  return { ok: false, reason: Reason.InvalidVidGroupMac, hard: true, message };
}
