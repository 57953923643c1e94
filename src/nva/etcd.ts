/**
 * NVA on etcd 3.4 (v3 gRPC API, npm `etcd3`).
 *
 * Key layout under `prefix` (default `/splitnve`), values JSON:
 *   <prefix>/vn/<vni>               VnInfo                                   (no lease)
 *   <prefix>/nve/<id>               NveInfo {id, vtep}                       (this NVE's lease)
 *   <prefix>/map/<vni>/<nve>/<mac>  NvaEntry {vni, mac, ips, nve, vtep, kind} (publisher's lease)
 * An NVE's registration and entries share its lease: when it dies (or is cut off longer than
 * the TTL) they vanish together. `deleteVn` removes the VN key and `map/<vni>/` in one txn;
 * `publish` is a txn that writes only while `vn/<vni>` exists.
 *
 * Caches: one prefix watch for `vn/`, one for `nve/`, one per watched VNI on `map/<vni>/`. Each
 * starts from a range read and watches from the next revision; every key remembers the
 * revision it was last changed at, so our own writes are applied at once (read-your-writes)
 * and a late or replayed watch event cannot undo a newer state. After a watch stream breaks
 * (member died), the cache is re-read once the stream is back, in case the client library
 * resumed past an event; a cancelled watch (e.g. compaction) is rebuilt from scratch.
 *
 * Failures: every unary call has a deadline (`callTimeoutMs`, default 250 ms) so a call stuck
 * on a dead or leaderless member fails fast and is retried on another member; one write is
 * retried for at most `writeTimeoutMs`. Own entries are also kept locally as the desired state:
 * a write that failed stays dirty and is retried in the background, and after a lost lease the
 * NVE registers again and re-publishes them all.
 */
import {
  ConsecutiveBreaker,
  ExponentialBackoff,
  circuitBreaker,
  handleWhen,
  noop,
  type IBackoff,
} from 'cockatiel';
import { Etcd3, EtcdLeaseInvalidError, type IKeyValue, type Lease, type Watcher } from 'etcd3';
import {
  EventHub,
  NvaError,
  checkNve,
  checkPublish,
  checkVn,
  checkVni,
  entryJson,
  normMac,
  parseEntry,
  parseNve,
  parseVn,
  vnJson,
  type PublishedEntry,
} from './common.js';
import type { Nva, NvaEntry, NvaEvent, NvaLogger, NveInfo, PutVnOptions, VnInfo } from './nva.js';

export interface EtcdNvaOptions {
  /** Client endpoints, e.g. `http://127.0.0.1:2379`. */
  readonly hosts: string | readonly string[];
  /** Key prefix (no trailing '/'). Default `/splitnve`. */
  readonly prefix?: string;
  /** TTL of this NVE's lease in seconds (its liveness). Default 10. */
  readonly leaseTtlSec?: number;
  /**
   * Deadline of one unary gRPC call (writes, lease grant). Default 250 ms: a write normally
   * takes milliseconds; one stuck on a member that lost its leader is abandoned and retried, so
   * a leader failover costs about the election time plus this.
   */
  readonly callTimeoutMs?: number;
  /** Deadline of one range read (cache loads; may be large). Default 2000 ms. */
  readonly readTimeoutMs?: number;
  /** Time one write (and `start`) may take, retries included. Default 5000 ms. */
  readonly writeTimeoutMs?: number;
  /** gRPC dial timeout. Default 1000 ms. */
  readonly dialTimeoutMs?: number;
  readonly logger?: NvaLogger;
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A member that refuses connections is down (as opposed to slow or without a leader). */
function isRefused(err: Error): boolean {
  return /ECONNREFUSED|No connection established/.test(err.message);
}

/** Raised when the bounded retries of one operation ran out. */
export class NvaUnavailableError extends Error {
  override readonly name = 'NvaUnavailableError';
}

interface Item<T> {
  value: T;
  raw: string;
  rev: bigint;
}

/**
 * A cache of every key under one prefix, kept current by a watch (see the module comment).
 * `onChange` gets (suffix, new value or undefined if deleted, old value or undefined).
 */
class PrefixMirror<T> {
  readonly items = new Map<string, Item<T>>();
  /** Revisions of deletions, so an older put delivered later is ignored. */
  private readonly tombs = new Map<string, bigint>();
  private watcher: Watcher | undefined;
  private stopped = false;
  private resyncing = false;
  private brokenSince = 0;

  constructor(
    private readonly client: Etcd3,
    readonly prefix: string,
    private readonly parse: (suffix: string, raw: string) => T | undefined,
    private readonly onChange: (suffix: string, value: T | undefined, old: T | undefined) => void,
    private readonly retry: <R>(what: string, fn: () => Promise<R>) => Promise<R>,
    private readonly readTimeoutMs: number,
    private readonly log?: NvaLogger,
  ) {}

  async start(): Promise<void> {
    const rev = await this.retry(`read ${this.prefix}`, () => this.load());
    if (this.stopped) return;
    this.watch(rev + 1n);
  }

  /** Reads the whole prefix and makes the cache equal to it; returns the read's revision. */
  private async load(): Promise<bigint> {
    const res = await this.client
      .getAll()
      .prefix(this.prefix)
      .options({ deadline: Date.now() + this.readTimeoutMs })
      .exec();
    const rev = BigInt(res.header.revision);
    const seen = new Set<string>();
    for (const kv of res.kvs) {
      const suffix = kv.key.toString().slice(this.prefix.length);
      seen.add(suffix);
      this.apply(suffix, kv.value.toString(), BigInt(kv.mod_revision));
    }
    for (const [suffix, item] of [...this.items]) {
      if (!seen.has(suffix) && item.rev <= rev) this.apply(suffix, undefined, rev);
    }
    return rev;
  }

  private watch(fromRev: bigint): void {
    const w = this.client.watch().prefix(this.prefix).startRevision(fromRev.toString()).watcher();
    this.watcher = w;
    const key = (kv: IKeyValue): string => kv.key.toString().slice(this.prefix.length);
    w.on('put', (kv) => this.apply(key(kv), kv.value.toString(), BigInt(kv.mod_revision)));
    w.on('delete', (kv) => this.apply(key(kv), undefined, BigInt(kv.mod_revision)));
    w.on('disconnected', (err) => {
      if (this.brokenSince === 0) this.brokenSince = Date.now();
      this.log?.warn({ prefix: this.prefix, err: String(err) }, 'nva: etcd watch disconnected');
    });
    w.on('connected', () => {
      if (this.brokenSince === 0) return;
      this.log?.info(
        { prefix: this.prefix, brokenMs: Date.now() - this.brokenSince },
        'nva: etcd watch reconnected',
      );
      this.brokenSince = 0;
      void this.resync(false);
    });
    w.on('error', (err) => {
      this.log?.warn({ prefix: this.prefix, err: String(err) }, 'nva: etcd watch cancelled');
      void this.resync(true);
    });
  }

  /** Re-reads the prefix; with `rewatch`, also replaces the watcher (it was cancelled). */
  private async resync(rewatch: boolean): Promise<void> {
    if (this.stopped || this.resyncing) return;
    this.resyncing = true;
    try {
      if (rewatch) {
        const old = this.watcher;
        this.watcher = undefined;
        await old?.cancel().catch(() => undefined);
      }
      for (;;) {
        if (this.stopped) return;
        try {
          const rev = await this.load();
          if (rewatch && !this.stopped) this.watch(rev + 1n);
          return;
        } catch (err) {
          this.log?.warn({ prefix: this.prefix, err: String(err) }, 'nva: etcd re-read failed');
          await delay(250);
        }
      }
    } finally {
      this.resyncing = false;
    }
  }

  /** Applies a state of `suffix` as of revision `rev` (undefined raw: deleted). */
  apply(suffix: string, raw: string | undefined, rev: bigint): void {
    const cur = this.items.get(suffix);
    const known = cur?.rev ?? this.tombs.get(suffix) ?? 0n;
    if (rev <= known) return;
    if (raw === undefined) {
      this.tombs.set(suffix, rev);
      if (!cur) return;
      this.items.delete(suffix);
      this.onChange(suffix, undefined, cur.value);
      return;
    }
    this.tombs.delete(suffix);
    if (this.tombs.size > 1024) this.pruneTombs(rev);
    if (cur && cur.raw === raw) {
      cur.rev = rev;
      return;
    }
    const value = this.parse(suffix, raw);
    if (value === undefined) {
      // Not ours to understand: treat as absent.
      if (cur) {
        this.items.delete(suffix);
        this.onChange(suffix, undefined, cur.value);
      }
      this.tombs.set(suffix, rev);
      return;
    }
    this.items.set(suffix, { value, raw, rev });
    this.onChange(suffix, value, cur?.value);
  }

  private pruneTombs(upTo: bigint): void {
    for (const [k, r] of this.tombs) if (r < upTo) this.tombs.delete(k);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const w = this.watcher;
    this.watcher = undefined;
    await w?.cancel().catch(() => undefined);
  }
}

export class EtcdNva implements Nva {
  readonly kind = 'etcd';
  readonly prefix: string;
  private readonly hub: EventHub;
  private readonly log: NvaLogger | undefined;
  private readonly ttlSec: number;
  private readonly callTimeoutMs: number;
  private readonly writeTimeoutMs: number;
  private readonly readTimeoutMs: number;
  private client: Etcd3 | undefined;
  private self: NveInfo | undefined;
  private closed = false;

  private vnMirror: PrefixMirror<VnInfo> | undefined;
  private nveMirror: PrefixMirror<NveInfo> | undefined;
  private readonly mapMirrors = new Map<number, PrefixMirror<NvaEntry>>();

  private lease: Lease | undefined;
  private leaseIdValue: string | undefined;
  private leaseWaiters: ((id: string) => void)[] = [];
  private registering = false;

  /** This NVE's entries as it wants them, keyed `${vni}/${mac}`. */
  private readonly desired = new Map<string, PublishedEntry>();
  private readonly dirty = new Set<string>();
  private readonly chains = new Map<string, Promise<void>>();
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: EtcdNvaOptions) {
    const prefix = opts.prefix ?? '/splitnve';
    if (prefix === '' || prefix.endsWith('/')) {
      throw new NvaError(
        `etcd NVA: prefix ${JSON.stringify(prefix)} must be non-empty, no trailing '/'`,
      );
    }
    const hosts = typeof opts.hosts === 'string' ? [opts.hosts] : opts.hosts;
    if (hosts.length === 0) throw new NvaError('etcd NVA: no etcd endpoint given');
    this.prefix = prefix;
    this.log = opts.logger;
    this.hub = new EventHub(opts.logger);
    this.ttlSec = opts.leaseTtlSec ?? 10;
    this.callTimeoutMs = opts.callTimeoutMs ?? 250;
    this.readTimeoutMs = opts.readTimeoutMs ?? 2000;
    this.writeTimeoutMs = opts.writeTimeoutMs ?? 5000;
    if (!Number.isInteger(this.ttlSec) || this.ttlSec < 1) {
      throw new NvaError(`etcd NVA: leaseTtlSec ${this.ttlSec} must be an integer >= 1`);
    }
  }

  // --- keys ----------------------------------------------------------------------------------

  vnKey(vni: number): string {
    return `${this.prefix}/vn/${vni}`;
  }
  nveKey(id: string): string {
    return `${this.prefix}/nve/${id}`;
  }
  mapPrefix(vni: number): string {
    return `${this.prefix}/map/${vni}/`;
  }
  mapKey(vni: number, nve: string, mac: string): string {
    return `${this.mapPrefix(vni)}${nve}/${mac}`;
  }

  /** Id of this NVE's current lease (decimal), for diagnostics. */
  get leaseId(): string | undefined {
    return this.leaseIdValue;
  }

  // --- lifecycle -----------------------------------------------------------------------------

  async start(self: NveInfo): Promise<void> {
    if (this.client) throw new NvaError('etcd NVA: already started');
    if (this.closed) throw new NvaError('etcd NVA: closed');
    const me = checkNve(self);
    this.self = me;
    const hosts = typeof this.opts.hosts === 'string' ? [this.opts.hosts] : [...this.opts.hosts];
    const callTimeoutMs = this.callTimeoutMs;
    const client = new Etcd3({
      hosts,
      dialTimeout: this.opts.dialTimeoutMs ?? 1000,
      // Streams (watch, keep-alive) live long; every unary call gets a deadline so one that
      // hangs on a dead or leaderless member fails over quickly.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
      faultHandling: {
        // etcd3's default per-member circuit breaker (3 failures of any kind -> member skipped
        // for 5 s) trips on every member during an election (calls time out on leaderless
        // followers) and then fails everything for 5 s, long enough to lose a short lease.
        // Ours skips a member only after its port refused a connection (it is down), for 1 s.
        host: () =>
          circuitBreaker(handleWhen(isRefused), {
            halfOpenAfter: 1000,
            breaker: new ConsecutiveBreaker(1),
          }),
        // One layer of retries, ours (`retry`): etcd3's global retry would re-send a call with
        // the deadline of the first attempt, already spent.
        global: noop,
        // Re-open a broken watch stream within 50 ms..1 s (default: up to 30 s). etcd3 declares
        // this option as an IBackoff but uses it as the backoff factory it passes to its
        // WatchManager (`initialBackoff.next()`), which ExponentialBackoff is.
        watchBackoff: new ExponentialBackoff({
          initialDelay: 50,
          maxDelay: 1000,
        }) as unknown as IBackoff<unknown>,
      },
    });
    this.client = client;
    const retry = <R>(what: string, fn: () => Promise<R>): Promise<R> => this.retry(what, fn);

    try {
      this.vnMirror = new PrefixMirror<VnInfo>(
        client,
        `${this.prefix}/vn/`,
        (suffix, raw) => {
          const v = parseVn(raw, `${this.prefix}/vn/${suffix}`, this.log);
          return v && String(v.vni) === suffix ? v : undefined;
        },
        (suffix, v) => this.onVnChange(Number(suffix), v),
        retry,
        this.readTimeoutMs,
        this.log,
      );
      this.nveMirror = new PrefixMirror<NveInfo>(
        client,
        `${this.prefix}/nve/`,
        (suffix, raw) => {
          const n = parseNve(raw, `${this.prefix}/nve/${suffix}`, this.log);
          return n && n.id === suffix ? n : undefined;
        },
        (suffix, n) =>
          this.hub.emit(n ? { type: 'nve-up', nve: n } : { type: 'nve-down', id: suffix }),
        retry,
        this.readTimeoutMs,
        this.log,
      );
      await this.vnMirror.start();
      await this.nveMirror.start();
      const registered = this.leaseIdWithin(Date.now() + this.writeTimeoutMs);
      this.startRegistration();
      await registered;
    } catch (err) {
      await this.shutdown(false);
      throw new NvaUnavailableError(
        `etcd NVA: could not start NVE ${me.id} on ${hosts.join(',')}: ${String(err)}`,
      );
    }
    this.flushTimer = setInterval(() => this.flushDirty(), 1000);
    this.flushTimer.unref();
  }

  async close(): Promise<void> {
    await this.shutdown(true);
  }

  /**
   * Stops without revoking the lease, as if the process had died: other NVEs see this NVE and
   * its entries vanish when the lease TTL runs out.
   */
  async abandon(): Promise<void> {
    await this.shutdown(false);
  }

  private async shutdown(revoke: boolean): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.flushTimer) clearInterval(this.flushTimer);
    const mirrors = [this.vnMirror, this.nveMirror, ...this.mapMirrors.values()];
    this.mapMirrors.clear();
    await Promise.all(mirrors.map((m) => m?.stop()));
    const lease = this.lease;
    this.lease = undefined;
    this.leaseIdValue = undefined;
    if (lease) {
      if (revoke) {
        await lease
          .revoke()
          .catch((err: unknown) =>
            this.log?.warn({ err: String(err) }, 'nva: lease revoke failed; it will expire'),
          );
      } else lease.release();
    }
    this.client?.close();
  }

  // --- registration / lease ------------------------------------------------------------------

  private leaseIdWithin(deadline: number): Promise<string> {
    if (this.leaseIdValue !== undefined) return Promise.resolve(this.leaseIdValue);
    return new Promise<string>((resolve, reject) => {
      const t = setTimeout(
        () => {
          this.leaseWaiters = this.leaseWaiters.filter((w) => w !== waiter);
          reject(new NvaUnavailableError('no etcd lease (registration has not succeeded yet)'));
        },
        Math.max(0, deadline - Date.now()),
      );
      const waiter = (id: string): void => {
        clearTimeout(t);
        resolve(id);
      };
      this.leaseWaiters.push(waiter);
    });
  }

  private startRegistration(): void {
    if (this.registering || this.closed) return;
    this.registering = true;
    void this.registerLoop().finally(() => {
      this.registering = false;
    });
  }

  private async registerLoop(): Promise<void> {
    const client = this.client!;
    const me = this.self!;
    let backoff = 100;
    while (!this.closed) {
      const lease = client.lease(this.ttlSec, { autoKeepAlive: true });
      lease.on('lost', (err) => this.onLeaseLost(lease, err));
      try {
        const id = await lease.grant();
        const raw = JSON.stringify({ id: me.id, vtep: me.vtep });
        const res = await client.put(this.nveKey(me.id)).value(raw).lease(id).exec();
        if (this.closed) {
          await lease.revoke().catch(() => undefined);
          return;
        }
        // Lost between grant and now? Its 'lost' event was ignored (not current yet): go again.
        if (lease.revoked()) throw new Error(`lease ${id} was lost while registering`);
        this.lease = lease;
        this.leaseIdValue = id;
        this.nveMirror?.apply(me.id, raw, BigInt(res.header.revision));
        this.log?.info({ nve: me.id, lease: id, ttl: this.ttlSec }, 'nva: registered in etcd');
        const waiters = this.leaseWaiters;
        this.leaseWaiters = [];
        for (const w of waiters) w(id);
        // Everything we own lived on the previous lease (if any): write it again.
        for (const k of this.desired.keys()) {
          this.dirty.add(k);
          this.syncOwn(k).catch((err: unknown) =>
            this.log?.warn({ key: k, err: String(err) }, 'nva: re-publish failed; will retry'),
          );
        }
        return;
      } catch (err) {
        lease.release();
        this.log?.warn({ nve: me.id, err: String(err) }, 'nva: etcd registration failed');
        await delay(backoff);
        backoff = Math.min(backoff * 2, 1000);
      }
    }
  }

  private onLeaseLost(lease: Lease, err: unknown): void {
    if (lease !== this.lease || this.closed) return;
    this.log?.warn(
      { nve: this.self?.id, err: String(err) },
      'nva: etcd lease lost; re-registering',
    );
    this.lease = undefined;
    this.leaseIdValue = undefined;
    lease.release();
    this.startRegistration();
  }

  // --- retries -------------------------------------------------------------------------------

  /** Runs `fn` until it succeeds, a refusal (NvaError) or `writeTimeoutMs` has passed. */
  private async retry<R>(what: string, fn: () => Promise<R>): Promise<R> {
    const t0 = Date.now();
    let backoff = 50;
    let attempts = 0;
    for (;;) {
      if (this.closed) throw new NvaError(`etcd NVA: closed (while trying to ${what})`);
      attempts++;
      const ta = Date.now();
      try {
        return await fn();
      } catch (err) {
        if (err instanceof NvaError) throw err;
        if (err instanceof EtcdLeaseInvalidError && this.lease) this.onLeaseLost(this.lease, err);
        // A call that timed out has waited already; one refused by a dead member has not.
        const pause = Math.max(10, backoff - (Date.now() - ta));
        const elapsed = Date.now() - t0;
        if (elapsed + pause >= this.writeTimeoutMs) {
          throw new NvaUnavailableError(
            `etcd NVA: could not ${what} in ${elapsed} ms (${attempts} attempts): ${String(err)}`,
          );
        }
        this.log?.warn({ what, attempts, err: String(err) }, 'nva: etcd call failed; retrying');
        await delay(pause);
        backoff = Math.min(backoff * 2, 250);
      }
    }
  }

  private need(): { client: Etcd3; self: NveInfo } {
    if (this.closed) throw new NvaError('etcd NVA: closed');
    if (!this.client || !this.self) throw new NvaError('etcd NVA: not started');
    return { client: this.client, self: this.self };
  }

  // --- VNs -----------------------------------------------------------------------------------

  getVn(vni: number): VnInfo | undefined {
    return this.vnMirror?.items.get(String(vni))?.value;
  }

  listVns(): readonly VnInfo[] {
    if (!this.vnMirror) return [];
    return [...this.vnMirror.items.values()].map((i) => i.value).sort((a, b) => a.vni - b.vni);
  }

  async putVn(vn: VnInfo, opts?: PutVnOptions): Promise<boolean> {
    const { client } = this.need();
    const v = checkVn(vn);
    const key = this.vnKey(v.vni);
    const raw = vnJson(v);
    if (!opts?.ifAbsent) {
      const res = await this.retry(`put VN ${v.vni}`, () => client.put(key).value(raw).exec());
      this.vnMirror?.apply(String(v.vni), raw, BigInt(res.header.revision));
      return true;
    }
    const res = await this.retry(`create VN ${v.vni}`, () =>
      client
        .if(key, 'Create', '==', 0)
        .then(client.put(key).value(raw))
        .else(client.get(key))
        .commit(),
    );
    if (res.succeeded) {
      this.vnMirror?.apply(String(v.vni), raw, BigInt(res.header.revision));
      return true;
    }
    // Exists. If it holds exactly our value, an earlier attempt whose reply was lost wrote it.
    const kv = res.responses[0]?.response_range?.kvs[0];
    if (kv) this.vnMirror?.apply(String(v.vni), kv.value.toString(), BigInt(kv.mod_revision));
    return kv !== undefined && kv.value.toString() === raw && kv.version === '1';
  }

  async deleteVn(vni: number): Promise<void> {
    const { client } = this.need();
    checkVni(vni);
    const res = await this.retry(`delete VN ${vni}`, () =>
      client
        // Always true (a missing key has version 0): a txn only to delete both atomically.
        .if(this.vnKey(vni), 'Version', '>', -1)
        .then(client.delete().key(this.vnKey(vni)), client.delete().prefix(this.mapPrefix(vni)))
        .commit(),
    );
    const rev = BigInt(res.header.revision);
    this.vnMirror?.apply(String(vni), undefined, rev);
    const m = this.mapMirrors.get(vni);
    if (m) for (const suffix of [...m.items.keys()]) m.apply(suffix, undefined, rev);
  }

  private onVnChange(vni: number, v: VnInfo | undefined): void {
    if (v) {
      this.hub.emit({ type: 'vn-set', vn: v });
      return;
    }
    // Our entries in a deleted VN are gone for good: forget them (and make sure of it in etcd).
    for (const [k, e] of [...this.desired]) {
      if (e.vni !== vni) continue;
      this.desired.delete(k);
      this.dirty.add(k);
      this.syncOwn(k).catch((err: unknown) =>
        this.log?.warn({ key: k, err: String(err) }, 'nva: cleanup of deleted VN failed'),
      );
    }
    this.hub.emit({ type: 'vn-deleted', vni });
  }

  // --- entries -------------------------------------------------------------------------------

  async publish(entry: Omit<NvaEntry, 'nve' | 'vtep'>): Promise<void> {
    this.need();
    const e = checkPublish(entry);
    const k = `${e.vni}/${e.mac}`;
    this.desired.set(k, e);
    this.dirty.add(k);
    await this.syncOwn(k);
  }

  async withdraw(vni: number, mac: string): Promise<void> {
    this.need();
    checkVni(vni);
    const k = `${vni}/${normMac(mac)}`;
    this.desired.delete(k);
    this.dirty.add(k);
    await this.syncOwn(k);
  }

  ownEntries(): readonly NvaEntry[] {
    const me = this.self;
    if (!me) return [];
    return [...this.desired.values()]
      .map((e) => ({ ...e, nve: me.id, vtep: me.vtep }))
      .sort((a, b) => a.vni - b.vni || a.mac.localeCompare(b.mac));
  }

  /** Writes key `k` as `desired` says, after any write of `k` already under way. */
  private syncOwn(k: string): Promise<void> {
    const prev = this.chains.get(k) ?? Promise.resolve();
    const next = prev
      .catch(() => undefined)
      .then(() => this.retry(`write ${k}`, () => this.writeOwn(k)));
    this.chains.set(k, next);
    const done = (): void => {
      if (this.chains.get(k) === next) this.chains.delete(k);
    };
    next.then(done, done);
    return next;
  }

  private async writeOwn(k: string): Promise<void> {
    const { client, self } = this.need();
    const slash = k.indexOf('/');
    const vni = Number(k.slice(0, slash));
    const mac = k.slice(slash + 1);
    const key = this.mapKey(vni, self.id, mac);
    const suffix = `${self.id}/${mac}`;
    const want = this.desired.get(k);
    this.dirty.delete(k);
    try {
      if (want) {
        const leaseId = await this.leaseIdWithin(Date.now() + this.writeTimeoutMs);
        const full: NvaEntry = { ...want, nve: self.id, vtep: self.vtep };
        const raw = entryJson(full);
        const res = await client
          .if(this.vnKey(vni), 'Version', '>', 0)
          .then(client.put(key).value(raw).lease(leaseId))
          .commit();
        if (!res.succeeded) {
          if (this.desired.get(k) === want) this.desired.delete(k);
          throw new NvaError(`cannot publish ${mac}: VN ${vni} does not exist`);
        }
        this.mapMirrors.get(vni)?.apply(suffix, raw, BigInt(res.header.revision));
      } else {
        const res = await client.delete().key(key).exec();
        this.mapMirrors.get(vni)?.apply(suffix, undefined, BigInt(res.header.revision));
      }
    } catch (err) {
      if (!(err instanceof NvaError)) this.dirty.add(k);
      throw err;
    }
  }

  private flushDirty(): void {
    if (this.closed || this.leaseIdValue === undefined) return;
    for (const k of this.dirty) {
      if (this.chains.has(k)) continue;
      this.syncOwn(k).catch((err: unknown) =>
        this.log?.warn({ key: k, err: String(err) }, 'nva: background write failed; will retry'),
      );
    }
  }

  remoteEntries(vni: number): readonly NvaEntry[] {
    const m = this.mapMirrors.get(vni);
    if (!m) return [];
    const me = this.self?.id;
    const out: NvaEntry[] = [];
    for (const i of m.items.values()) if (i.value.nve !== me) out.push(i.value);
    return out;
  }

  nves(): readonly NveInfo[] {
    if (!this.nveMirror) return [];
    return [...this.nveMirror.items.values()].map((i) => i.value);
  }

  async watchVn(vni: number): Promise<void> {
    const { client } = this.need();
    checkVni(vni);
    if (this.mapMirrors.has(vni)) return;
    const prefix = this.mapPrefix(vni);
    const m = new PrefixMirror<NvaEntry>(
      client,
      prefix,
      (suffix, raw) => {
        const e = parseEntry(raw, prefix + suffix, this.log);
        return e && e.vni === vni && `${e.nve}/${e.mac}` === suffix ? e : undefined;
      },
      (suffix, e, old) => {
        if (e) {
          this.hub.emit({ type: 'entry-set', entry: e });
        } else if (old) {
          this.hub.emit({ type: 'entry-deleted', vni, mac: old.mac, nve: old.nve });
        }
      },
      (what, fn) => this.retry(what, fn),
      this.readTimeoutMs,
      this.log,
    );
    this.mapMirrors.set(vni, m);
    try {
      await m.start();
    } catch (err) {
      if (this.mapMirrors.get(vni) === m) this.mapMirrors.delete(vni);
      await m.stop();
      throw err;
    }
  }

  async unwatchVn(vni: number): Promise<void> {
    const m = this.mapMirrors.get(vni);
    if (!m) return;
    this.mapMirrors.delete(vni);
    await m.stop();
  }

  onEvent(handler: (e: NvaEvent) => void): () => void {
    return this.hub.on(handler);
  }
}
