/**
 * Applying the model's effects without blocking the protocol: the daemon commits state and
 * answers the station first; these queues then bring the data plane and the NVA to what the
 * model says, in order, and keep trying when they fail.
 *
 * DataPlaneSync: one ordered queue of data-plane operations. Everything queued while a batch is
 * being installed goes into the next batch (the OVS driver installs one batch as one atomic
 * OpenFlow bundle). A failed batch is counted and logged, and then the data plane is reconciled
 * against the model's full desired state (with backoff until it works); operations are absolute
 * ("this endpoint is X"), so a reconcile followed by ops queued meanwhile is still right.
 *
 * NvaSync: the desired own entries live in the model; this keeps a dirty set of keys and syncs
 * each key (publish its current desired value, or withdraw it) with one write per key in flight
 * (writes of different keys run concurrently, bounded), so the last value always wins. Failures
 * are counted, logged and retried with backoff. VNs the policy auto-creates are created before
 * entries are published in them; VN watches are started and stopped in order per VN.
 */
import type { DataPlane, DataPlaneOp, DataPlaneState } from '../dataplane/dataplane.js';
import { NvaError, type Nva } from '../nva/index.js';
import type { OwnEntry } from './model.js';

export interface EffectLogger {
  debug?(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Latency samples in ms: count, last, max, mean and percentiles over the last 512. */
export class LatencyStat {
  count = 0;
  last = 0;
  max = 0;
  private sum = 0;
  private ring: number[] = [];
  private i = 0;

  add(ms: number): void {
    this.count++;
    this.last = ms;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
    if (this.ring.length < 512) this.ring.push(ms);
    else this.ring[this.i++ % 512] = ms;
  }

  toJSON(): Record<string, number> {
    const s = [...this.ring].sort((a, b) => a - b);
    const p = (q: number): number =>
      s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : 0;
    const r = (x: number): number => Math.round(x * 100) / 100;
    return {
      count: this.count,
      lastMs: r(this.last),
      meanMs: r(this.count ? this.sum / this.count : 0),
      p50Ms: r(p(0.5)),
      p99Ms: r(p(0.99)),
      maxMs: r(this.max),
    };
  }
}

export class DataPlaneSync {
  readonly stats = {
    batches: 0,
    ops: 0,
    failures: 0,
    reconciles: 0,
    reconcileFailures: 0,
    lastError: null as string | null,
    /** From an op being queued to its batch being installed. */
    latency: new LatencyStat(),
  };
  private queue: { ops: readonly DataPlaneOp[]; at: number; done: () => void }[] = [];
  private running: Promise<void> | null = null;
  private needReconcile = false;
  private ready = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly dp: DataPlane,
    private readonly desired: () => DataPlaneState,
    private readonly log: EffectLogger,
    private readonly opts: { retryMs?: number; reconcileIntervalMs?: number } = {},
  ) {}

  /**
   * Installs the full desired state once (start-up, after the data plane started: idempotent,
   * what is already right stays untouched) and from then on applies queued operations.
   */
  async start(): Promise<void> {
    await this.dp.reconcile(this.desired());
    this.stats.reconciles++;
    this.ready = true;
    const every = this.opts.reconcileIntervalMs ?? 0;
    if (every > 0) {
      this.timer = setInterval(() => this.reconcileSoon(), every);
      this.timer.unref();
    }
  }

  get pending(): number {
    return this.queue.reduce((n, b) => n + b.ops.length, 0);
  }

  /**
   * Queues operations (dropped before `start`: the initial reconcile covers them). Resolves when
   * they are installed (or covered by a reconcile); undefined when there is nothing to wait for.
   */
  push(ops: readonly DataPlaneOp[]): Promise<void> | undefined {
    if (!this.ready || this.closed || ops.length === 0) return undefined;
    return new Promise<void>((done) => {
      this.queue.push({ ops, at: performance.now(), done });
      this.kick();
    });
  }

  /** Reconciles against the full desired state at the next opportunity. */
  reconcileSoon(): void {
    if (!this.ready || this.closed) return;
    this.needReconcile = true;
    this.kick();
  }

  private kick(): void {
    if (this.running) return;
    this.running = this.loop().finally(() => {
      this.running = null;
      if (!this.closed && (this.queue.length > 0 || this.needReconcile)) this.kick();
      else for (const w of this.idleWaiters.splice(0)) w();
    });
  }

  private async loop(): Promise<void> {
    let backoff = this.opts.retryMs ?? 200;
    while (!this.closed && (this.queue.length > 0 || this.needReconcile)) {
      if (this.needReconcile) {
        const t0 = performance.now();
        const covered = this.queue.splice(0);
        try {
          await this.dp.reconcile(this.desired());
          this.needReconcile = false;
          this.stats.reconciles++;
          for (const b of covered) {
            this.stats.latency.add(performance.now() - b.at);
            b.done();
          }
          backoff = this.opts.retryMs ?? 200;
        } catch (e) {
          this.queue.unshift(...covered);
          this.stats.reconcileFailures++;
          this.fail('dataplane.reconcile-failed', e, performance.now() - t0);
          await sleep(backoff);
          backoff = Math.min(backoff * 2, 5000);
        }
        continue;
      }
      const batch = this.queue.splice(0);
      const ops = batch.flatMap((b) => b.ops);
      try {
        const t0 = performance.now();
        await this.dp.apply(ops);
        const now = performance.now();
        this.stats.batches++;
        this.stats.ops += ops.length;
        this.log.debug?.(
          {
            event: 'dataplane.applied',
            ops: ops.length,
            applyMs: Math.round((now - t0) * 10) / 10,
            queuedMs: Math.round((t0 - batch[0]!.at) * 10) / 10,
          },
          `data plane: ${ops.length} op(s) applied`,
        );
        for (const b of batch) {
          this.stats.latency.add(now - b.at);
          b.done();
        }
      } catch (e) {
        this.stats.failures++;
        this.fail('dataplane.apply-failed', e, 0, ops.length);
        // The batch is lost (the driver rolled it back): rebuild from the desired state.
        this.queue.unshift(...batch);
        this.needReconcile = true;
      }
    }
  }

  private fail(event: string, e: unknown, ms: number, ops?: number): void {
    const err = (e as Error).message ?? String(e);
    const repeated = this.stats.lastError === err;
    this.stats.lastError = err;
    const line = { event, kind: this.dp.kind, err, ...(ops !== undefined ? { ops } : {}), ms };
    if (repeated) this.log.warn(line, `data plane still failing: ${err}`);
    else this.log.error(line, `data plane: ${err}`);
  }

  /** Resolves when nothing is queued or being installed. */
  idle(): Promise<void> {
    if (!this.running && this.queue.length === 0 && !this.needReconcile) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
    for (const b of this.queue.splice(0)) b.done();
    for (const w of this.idleWaiters.splice(0)) w();
  }
}

export class NvaSync {
  readonly stats = {
    published: 0,
    withdrawn: 0,
    failures: 0,
    refused: 0,
    vnsCreated: 0,
    watchFailures: 0,
    lastError: null as string | null,
    /** From a desired entry changing to the NVA confirming the write. */
    latency: new LatencyStat(),
  };
  /** Keys to write, with when they first changed, and the order to write them in. */
  private readonly dirty = new Map<string, number>();
  /**
   * A queue, not a walk of `dirty` from its start: a Map used first-in first-out keeps its
   * deleted entries until it is rehashed, and every walk stepped over them (P3's 100k keys:
   * 12 % of the nNVE's CPU in that walk).
   */
  private order: string[] = [];
  private head = 0;
  /** Keys changed while their write was in flight: written again when it ends. */
  private readonly again = new Map<string, number>();
  /** What a dirty key waits for before it is written (its step's data-plane batch). */
  private readonly gates = new Map<string, Promise<void>>();
  private readonly inflight = new Set<string>();
  /**
   * Keys whose write failed, until their retry time (kept out of `dirty`, so that neither a
   * pump nor the retry timer walks them per write: with 100k keys after a restart that walk
   * made every write O(keys)).
   */
  private readonly delayed = new Map<string, { since: number; at: number }>();
  /** Keys whose last write failed (the next retry waits longer). */
  private readonly failedBefore = new Set<string>();
  private retryTimerAt: number | undefined;
  private readonly creating = new Map<number, Promise<void>>();
  private readonly watchWanted = new Map<number, boolean>();
  private readonly watchChains = new Map<number, Promise<void>>();
  private readonly watchActive = new Set<number>();
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly nva: Nva,
    private readonly desired: (key: string) => OwnEntry | undefined,
    private readonly log: EffectLogger,
    private readonly opts: {
      concurrency?: number;
      retryMs?: number;
      /** Called around the initial load of a VN's watch (entries then count as old). */
      loading?: (vni: number, on: boolean) => void;
    } = {},
  ) {}

  get pending(): number {
    return this.dirty.size + this.inflight.size + this.delayed.size + this.again.size;
  }

  /** Keys (`vni|mac`) whose desired value changed; written once `gate` (if any) resolved. */
  changed(keys: Iterable<string>, gate?: Promise<void>): void {
    if (this.closed) return;
    const now = performance.now();
    for (const k of keys) {
      // A key waiting for its retry is written then, with its value at that time.
      if (this.inflight.has(k)) {
        if (!this.again.has(k)) this.again.set(k, now);
      } else if (!this.delayed.has(k)) this.enqueue(k, now);
      if (gate) this.gates.set(k, gate);
    }
    this.pump();
  }

  /** Creates a VN (if absent) before entries of it are published. */
  createVn(vni: number): void {
    if (this.closed || this.creating.has(vni)) return;
    const p = this.nva
      .putVn({ vni, name: `auto-${vni}` }, { ifAbsent: true })
      .then(
        (wrote) => {
          if (wrote) this.stats.vnsCreated++;
          this.log.info(
            { event: 'vn.created', vni, created: wrote },
            wrote ? `VN ${vni} created (auto-create policy)` : `VN ${vni} exists`,
          );
        },
        (e: unknown) => {
          this.stats.failures++;
          this.stats.lastError = String((e as Error).message ?? e);
          this.log.error(
            { event: 'vn.create-failed', vni, err: this.stats.lastError },
            `cannot create VN ${vni}: ${this.stats.lastError}`,
          );
        },
      )
      .finally(() => {
        if (this.creating.get(vni) === p) this.creating.delete(vni);
      });
    this.creating.set(vni, p);
  }

  /** Starts (true) or stops (false) watching a VN; calls for one VN run in order. */
  watch(vni: number, on: boolean): Promise<void> {
    this.watchWanted.set(vni, on);
    const prev = this.watchChains.get(vni) ?? Promise.resolve();
    const next = prev.then(() => this.settleWatch(vni));
    this.watchChains.set(vni, next);
    void next.finally(() => {
      if (this.watchChains.get(vni) === next) this.watchChains.delete(vni);
    });
    return next;
  }

  private async settleWatch(vni: number): Promise<void> {
    let backoff = this.opts.retryMs ?? 200;
    while (!this.closed) {
      const want = this.watchWanted.get(vni) ?? false;
      if (want === this.watchActive.has(vni)) return;
      try {
        if (want) {
          this.opts.loading?.(vni, true);
          try {
            await this.nva.watchVn(vni);
          } finally {
            this.opts.loading?.(vni, false);
          }
          this.watchActive.add(vni);
        } else {
          await this.nva.unwatchVn(vni);
          this.watchActive.delete(vni);
        }
      } catch (e) {
        this.stats.watchFailures++;
        this.stats.lastError = String((e as Error).message ?? e);
        this.log.warn(
          { event: 'nva.watch-failed', vni, want, err: this.stats.lastError },
          `NVA watch of VN ${vni} failed; retrying`,
        );
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }

  private enqueue(k: string, since: number): void {
    if (this.dirty.has(k)) return;
    this.dirty.set(k, since);
    this.order.push(k);
  }

  private pump(): void {
    const limit = this.opts.concurrency ?? 64;
    while (this.inflight.size < limit && this.head < this.order.length) {
      const k = this.order[this.head++]!;
      const since = this.dirty.get(k);
      if (since === undefined) continue;
      this.dirty.delete(k);
      this.inflight.add(k);
      void this.run(k, since);
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
    if (this.isIdle()) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Has the retry timer fire at `at` at the latest. */
  private armRetry(at: number): void {
    if (this.closed) return;
    if (this.retryTimer && this.retryTimerAt !== undefined && this.retryTimerAt <= at) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimerAt = at;
    this.retryTimer = setTimeout(() => this.retryDue(), Math.max(0, at - performance.now()));
  }

  /** Moves the keys whose retry time came back to `dirty` (one walk per timer). */
  private retryDue(): void {
    this.retryTimer = undefined;
    this.retryTimerAt = undefined;
    const now = performance.now();
    let next: number | undefined;
    for (const [k, d] of this.delayed) {
      if (d.at <= now) {
        this.delayed.delete(k);
        this.enqueue(k, d.since);
      } else if (next === undefined || d.at < next) next = d.at;
    }
    if (next !== undefined) this.armRetry(next);
    this.pump();
  }

  private async run(k: string, since: number): Promise<void> {
    const i = k.indexOf('|');
    const vni = Number(k.slice(0, i));
    const mac = k.slice(i + 1);
    const gate = this.gates.get(k);
    this.gates.delete(k);
    let want: OwnEntry | undefined;
    try {
      await gate;
      await this.creating.get(vni);
      want = this.desired(k);
      if (want) {
        await this.nva.publish(want);
        this.stats.published++;
      } else {
        await this.nva.withdraw(vni, mac);
        this.stats.withdrawn++;
      }
      this.failedBefore.delete(k);
      const ms = performance.now() - since;
      this.stats.latency.add(ms);
      this.log.debug?.(
        {
          event: 'nva.written',
          vni,
          mac,
          kind: want?.kind ?? 'withdrawn',
          ms: Math.round(ms * 10) / 10,
        },
        `NVA: ${mac} in VN ${vni} ${want ? want.kind : 'withdrawn'}`,
      );
    } catch (e) {
      const err = String((e as Error).message ?? e);
      this.stats.lastError = err;
      if (e instanceof NvaError) {
        // Refused (e.g. the VN does not exist): retrying will not help.
        this.stats.refused++;
        this.failedBefore.delete(k);
        this.log.warn(
          { event: 'nva.refused', vni, mac, err },
          `NVA refused a write of ${mac} in VN ${vni}: ${err}`,
        );
      } else {
        this.stats.failures++;
        const delay = this.failedBefore.has(k) ? 1000 : (this.opts.retryMs ?? 200);
        this.failedBefore.add(k);
        const at = performance.now() + delay;
        // Changed again meanwhile: the retry writes its value then.
        this.again.delete(k);
        this.delayed.set(k, { since, at });
        this.armRetry(at);
        this.log.warn(
          { event: 'nva.write-failed', vni, mac, err },
          `NVA write of ${mac} in VN ${vni} failed; retrying`,
        );
      }
    } finally {
      this.inflight.delete(k);
      const again = this.again.get(k);
      if (again !== undefined) {
        this.again.delete(k);
        this.enqueue(k, again);
      }
      if (!this.closed) this.pump();
    }
  }

  /** No entry write queued, in flight or waiting for its retry. */
  private isIdle(): boolean {
    return this.dirty.size === 0 && this.inflight.size === 0 && this.delayed.size === 0;
  }

  /** Resolves when no entry write is queued or in flight. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
