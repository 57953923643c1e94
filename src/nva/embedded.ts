/**
 * The default NVA: one SQLite file (better-sqlite3), single node.
 *
 * Tables: `vn` (VN directory), `nve` (registered NVEs, with a liveness deadline) and `entry`
 * (published mappings, `ON DELETE CASCADE` from `vn`). Everything is synchronous SQLite under
 * the async interface; caches are refreshed right after each local write, so events for local
 * changes fire before the call resolves. Statements are prepared once; WAL checkpoints run in a
 * worker thread (../sqlite/wal-checkpointer.ts), not inside the nNVE's writes. Entry writes
 * (publish, withdraw) issued together (in one run of microtasks) are committed in one
 * transaction (a commit per entry was 27 % of the nNVE's CPU in P1); a refused one (its VN is
 * gone) fails alone. Any other call writes what is queued first, so calls keep their order.
 *
 * Single node (default): this NVE is the only live one and `remoteEntries` is empty; the file
 * keeps VNs and this NVE's entries across restarts.
 *
 * `shared: true`: several processes (each its own NVE id) may use one file. Each refreshes its
 * `nve.expires_at` every `nveTtlMs / 3` and polls `PRAGMA data_version` every `pollMs` to see
 * the others' commits; an NVE whose deadline passed counts as down and its entries are hidden
 * (they come back if it restarts). Meant for tests and demos on one machine, not as a cluster.
 */
import Database from 'better-sqlite3';
import { WalCheckpointer } from '../sqlite/wal-checkpointer.js';
import {
  EventHub,
  NvaError,
  checkNve,
  checkPublish,
  checkVn,
  checkVni,
  entryJson,
  normMac,
  vnJson,
} from './common.js';
import type { Nva, NvaEntry, NvaEvent, NvaLogger, NveInfo, PutVnOptions, VnInfo } from './nva.js';

export interface EmbeddedNvaOptions {
  /** SQLite file (created if missing), or ':memory:'. */
  readonly path: string;
  /** Share the file with other processes (see the module comment). Default false. */
  readonly shared?: boolean;
  /** Shared mode: how long an NVE stays live without refreshing its row. Default 5000 ms. */
  readonly nveTtlMs?: number;
  /** Shared mode: how often to look for other processes' commits. Default 250 ms. */
  readonly pollMs?: number;
  readonly logger?: NvaLogger;
  /** How often the worker checkpoints the WAL (ms, default 500). */
  readonly checkpointIntervalMs?: number;
}

const SCHEMA_VERSION = 1;
/** Liveness deadline of this NVE when the file is not shared (never expires while open). */
const FOREVER = Number.MAX_SAFE_INTEGER;

interface VnRow {
  vni: number;
  name: string | null;
  allowed_stations: string | null;
  max_tsis: number | null;
}
interface NveRow {
  id: string;
  vtep: string;
  expires_at: number;
}
interface EntryRow {
  vni: number;
  nve: string;
  mac: string;
  ips: string;
  vtep: string;
  kind: 'mapping' | 'forwarding';
}

function vnFromRow(r: VnRow): VnInfo {
  const v: { -readonly [K in keyof VnInfo]: VnInfo[K] } = { vni: r.vni };
  if (r.name !== null) v.name = r.name;
  if (r.allowed_stations !== null) v.allowedStations = JSON.parse(r.allowed_stations) as string[];
  if (r.max_tsis !== null) v.maxTsis = r.max_tsis;
  return v;
}

function entryFromRow(r: EntryRow): NvaEntry {
  return {
    vni: r.vni,
    mac: r.mac,
    ips: JSON.parse(r.ips) as string[],
    nve: r.nve,
    vtep: r.vtep,
    kind: r.kind,
  };
}

interface Cached<T> {
  readonly value: T;
  readonly json: string;
}

/** A queued entry write: the statement, then (once committed) the cache update. */
interface EntryWrite {
  readonly run: () => void;
  readonly after: () => void;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

export class EmbeddedNva implements Nva {
  readonly kind = 'embedded';
  private readonly hub: EventHub;
  private readonly shared: boolean;
  private readonly ttlMs: number;
  private readonly pollMs: number;
  private db: Database.Database | undefined;
  private checkpointer: WalCheckpointer | undefined;
  private readonly statements = new Map<string, Database.Statement>();
  private batch: EntryWrite[] = [];
  private batchScheduled = false;
  private self: NveInfo | undefined;
  private closed = false;
  private readonly vns = new Map<number, Cached<VnInfo>>();
  private readonly live = new Map<string, { info: NveInfo; json: string; expiresAt: number }>();
  /** Watched VNIs -> visible entries keyed `${nve}/${mac}`. */
  private readonly watched = new Map<number, Map<string, Cached<NvaEntry>>>();
  private dataVersion = -1;
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly opts: EmbeddedNvaOptions) {
    if (typeof opts.path !== 'string' || opts.path === '') {
      throw new NvaError('embedded NVA: path of the SQLite file is missing');
    }
    this.hub = new EventHub(opts.logger);
    this.shared = opts.shared ?? false;
    this.ttlMs = opts.nveTtlMs ?? 5000;
    this.pollMs = opts.pollMs ?? 250;
    if (this.shared && (this.ttlMs < 300 || this.pollMs < 10)) {
      throw new NvaError(`embedded NVA ${opts.path}: nveTtlMs must be >= 300 and pollMs >= 10`);
    }
  }

  async start(self: NveInfo): Promise<void> {
    if (this.db) throw new NvaError(`embedded NVA ${this.opts.path}: already started`);
    if (this.closed) throw new NvaError(`embedded NVA ${this.opts.path}: closed`);
    const me = checkNve(self);
    let db: Database.Database;
    try {
      db = new Database(this.opts.path, { timeout: 5000 });
    } catch (err) {
      throw new NvaError(`embedded NVA: cannot open ${this.opts.path}: ${String(err)}`);
    }
    try {
      this.migrate(db);
    } catch (err) {
      db.close();
      throw err;
    }
    this.db = db;
    this.self = me;
    if (this.opts.path !== ':memory:') {
      this.checkpointer = new WalCheckpointer(db, this.opts.path, {
        ...(this.opts.checkpointIntervalMs !== undefined
          ? { checkpointIntervalMs: this.opts.checkpointIntervalMs }
          : {}),
        onError: (e) =>
          this.opts.logger?.error(
            { event: 'nva.checkpoint-error', err: e.message, path: this.opts.path },
            'embedded NVA: WAL checkpoint failed',
          ),
      });
    }
    db.transaction(() => {
      this.stmt(
        `INSERT INTO nve (id, vtep, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET vtep = excluded.vtep, expires_at = excluded.expires_at`,
      ).run(me.id, me.vtep, this.shared ? Date.now() + this.ttlMs : FOREVER);
      // Our underlay address may have changed since the last run: our entries follow it.
      this.stmt('UPDATE entry SET vtep = ? WHERE nve = ?').run(me.vtep, me.id);
    })();
    this.refreshAll();
    if (this.shared) {
      const hb = setInterval(() => this.heartbeat(), Math.max(100, Math.floor(this.ttlMs / 3)));
      const poll = setInterval(() => this.poll(), this.pollMs);
      hb.unref();
      poll.unref();
      this.timers.push(hb, poll);
    }
  }

  private migrate(db: Database.Database): void {
    db.pragma('foreign_keys = ON');
    if (this.opts.path !== ':memory:') {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
    }
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new NvaError(
        `embedded NVA ${this.opts.path}: schema version ${version} is newer than this program's (${SCHEMA_VERSION})`,
      );
    }
    if (version === SCHEMA_VERSION) return;
    db.exec(`
      CREATE TABLE IF NOT EXISTS vn (
        vni INTEGER PRIMARY KEY CHECK (vni BETWEEN 0 AND 16777215),
        name TEXT,
        allowed_stations TEXT,
        max_tsis INTEGER
      );
      CREATE TABLE IF NOT EXISTS nve (
        id TEXT PRIMARY KEY,
        vtep TEXT NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS entry (
        vni INTEGER NOT NULL REFERENCES vn (vni) ON DELETE CASCADE,
        nve TEXT NOT NULL,
        mac TEXT NOT NULL,
        ips TEXT NOT NULL,
        vtep TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('mapping', 'forwarding')),
        PRIMARY KEY (vni, nve, mac)
      );
      CREATE INDEX IF NOT EXISTS entry_by_nve ON entry (nve);
      PRAGMA user_version = ${SCHEMA_VERSION};
    `);
  }

  /** A statement of the open database, prepared once. */
  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db!.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  private need(): { db: Database.Database; self: NveInfo } {
    if (this.closed) throw new NvaError(`embedded NVA ${this.opts.path}: closed`);
    if (!this.db || !this.self) throw new NvaError(`embedded NVA ${this.opts.path}: not started`);
    return { db: this.db, self: this.self };
  }

  getVn(vni: number): VnInfo | undefined {
    return this.vns.get(vni)?.value;
  }

  listVns(): readonly VnInfo[] {
    return [...this.vns.values()].map((c) => c.value).sort((a, b) => a.vni - b.vni);
  }

  async putVn(vn: VnInfo, opts?: PutVnOptions): Promise<boolean> {
    this.need();
    this.flushBatch();
    const v = checkVn(vn);
    const args = [
      v.vni,
      v.name ?? null,
      v.allowedStations ? JSON.stringify(v.allowedStations) : null,
      v.maxTsis ?? null,
    ];
    let wrote: boolean;
    if (opts?.ifAbsent) {
      wrote =
        this.stmt(
          'INSERT OR IGNORE INTO vn (vni, name, allowed_stations, max_tsis) VALUES (?, ?, ?, ?)',
        ).run(...args).changes > 0;
    } else {
      this.stmt(
        `INSERT INTO vn (vni, name, allowed_stations, max_tsis) VALUES (?, ?, ?, ?)
         ON CONFLICT (vni) DO UPDATE SET name = excluded.name,
           allowed_stations = excluded.allowed_stations, max_tsis = excluded.max_tsis`,
      ).run(...args);
      wrote = true;
    }
    this.refreshVns(v.vni);
    return wrote;
  }

  async deleteVn(vni: number): Promise<void> {
    this.need();
    checkVni(vni);
    this.flushBatch();
    this.stmt('DELETE FROM vn WHERE vni = ?').run(vni); // entries: ON DELETE CASCADE
    this.refreshVns(vni);
    this.refreshEntries(vni);
  }

  async publish(entry: Omit<NvaEntry, 'nve' | 'vtep'>): Promise<void> {
    const { self } = this.need();
    const e = checkPublish(entry);
    return this.queue(
      () => {
        try {
          // The VN's existence is the foreign key's check.
          this.stmt(
            `INSERT INTO entry (vni, nve, mac, ips, vtep, kind) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (vni, nve, mac) DO UPDATE SET ips = excluded.ips, vtep = excluded.vtep,
               kind = excluded.kind`,
          ).run(e.vni, self.id, e.mac, JSON.stringify(e.ips), self.vtep, e.kind);
        } catch (err) {
          if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
            throw new NvaError(`cannot publish ${e.mac}: VN ${e.vni} does not exist`);
          }
          throw err;
        }
      },
      // The row is now exactly what was written.
      () => this.cacheOne(e.vni, self.id, e.mac, { ...e, nve: self.id, vtep: self.vtep }),
    );
  }

  async withdraw(vni: number, mac: string): Promise<void> {
    const { self } = this.need();
    checkVni(vni);
    const m = normMac(mac);
    return this.queue(
      () =>
        void this.stmt('DELETE FROM entry WHERE vni = ? AND nve = ? AND mac = ?').run(
          vni,
          self.id,
          m,
        ),
      () => this.cacheOne(vni, self.id, m, undefined),
    );
  }

  /** Queues an entry write for the commit after the microtasks queued now. */
  private queue(run: () => void, after: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.batch.push({ run, after, resolve, reject });
      if (!this.batchScheduled) {
        this.batchScheduled = true;
        // After the microtasks already queued: the other writes a step's effects released
        // together (they resume one after another) join this commit.
        queueMicrotask(() => this.commitBatch());
      }
    });
  }

  /** Writes what is queued now (before another write, a read of the file, or close). */
  private flushBatch(): void {
    if (this.batch.length > 0) this.commitBatch();
  }

  /**
   * Commits the queued entry writes in one transaction. A statement that fails (a refused
   * entry) is undone alone and the transaction goes on; if the commit fails, none is written.
   */
  private commitBatch(): void {
    this.batchScheduled = false;
    const b = this.batch;
    this.batch = [];
    if (b.length === 0) return;
    if (this.closed || !this.db) {
      const err = new NvaError(`embedded NVA ${this.opts.path}: closed`);
      for (const w of b) w.reject(err);
      return;
    }
    const failed = new Map<EntryWrite, unknown>();
    const runAll = (): void => {
      for (const w of b) {
        try {
          w.run();
        } catch (e) {
          failed.set(w, e);
        }
      }
    };
    try {
      // One write is its own implicit transaction (BEGIN and COMMIT would be two statements more).
      if (b.length === 1) runAll();
      else this.db.transaction(runAll)();
    } catch (e) {
      for (const w of b) w.reject(e);
      return;
    }
    for (const w of b) {
      if (failed.has(w)) {
        w.reject(failed.get(w));
        continue;
      }
      w.after();
      w.resolve();
    }
  }

  ownEntries(): readonly NvaEntry[] {
    if (!this.db || !this.self || this.closed) return [];
    this.flushBatch();
    return (
      this.stmt('SELECT * FROM entry WHERE nve = ? ORDER BY vni, mac').all(
        this.self.id,
      ) as EntryRow[]
    ).map(entryFromRow);
  }

  remoteEntries(vni: number): readonly NvaEntry[] {
    const m = this.watched.get(vni);
    if (!m) return [];
    const out: NvaEntry[] = [];
    for (const c of m.values()) if (c.value.nve !== this.self?.id) out.push(c.value);
    return out;
  }

  nves(): readonly NveInfo[] {
    return [...this.live.values()].map((n) => n.info);
  }

  async watchVn(vni: number): Promise<void> {
    this.need();
    checkVni(vni);
    if (this.watched.has(vni)) return;
    this.flushBatch();
    this.watched.set(vni, new Map());
    this.refreshEntries(vni);
  }

  async unwatchVn(vni: number): Promise<void> {
    this.watched.delete(vni);
  }

  onEvent(handler: (e: NvaEvent) => void): () => void {
    return this.hub.on(handler);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.db) this.flushBatch();
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    const db = this.db;
    if (!db) return;
    try {
      // Leave our entries in the file (they return when we restart) but stop being live.
      if (this.self) {
        this.stmt('UPDATE nve SET expires_at = 0 WHERE id = ?').run(this.self.id);
      }
      // Shared: other processes may be writing; copy what can be copied without waiting.
      this.checkpointer?.finish(this.shared ? 'PASSIVE' : 'TRUNCATE');
    } finally {
      this.statements.clear();
      db.close();
    }
  }

  // --- cache maintenance -------------------------------------------------------------------

  private heartbeat(): void {
    if (this.closed || !this.db || !this.self) return;
    try {
      this.stmt('UPDATE nve SET expires_at = ?, vtep = ? WHERE id = ?').run(
        Date.now() + this.ttlMs,
        this.self.vtep,
        this.self.id,
      );
    } catch (err) {
      this.opts.logger?.warn({ err: String(err), path: this.opts.path }, 'nva: heartbeat failed');
    }
  }

  private poll(): void {
    if (this.closed || !this.db) return;
    try {
      const v = this.db.pragma('data_version', { simple: true }) as number;
      const now = Date.now();
      let expired = false;
      for (const [id, n] of this.live)
        if (id !== this.self?.id && n.expiresAt <= now) expired = true;
      if (v !== this.dataVersion || expired) {
        this.dataVersion = v;
        this.refreshAll();
      }
    } catch (err) {
      this.opts.logger?.warn({ err: String(err), path: this.opts.path }, 'nva: poll failed');
    }
  }

  private refreshAll(): void {
    if (this.db) this.dataVersion = this.db.pragma('data_version', { simple: true }) as number;
    this.refreshVns();
    this.refreshNves();
    for (const vni of this.watched.keys()) this.refreshEntries(vni);
  }

  /** Re-reads one VN (or all) and fires vn-set / vn-deleted for differences. */
  private refreshVns(only?: number): void {
    const rows = (
      only === undefined
        ? this.stmt('SELECT * FROM vn').all()
        : this.stmt('SELECT * FROM vn WHERE vni = ?').all(only)
    ) as VnRow[];
    const fresh = new Map<number, Cached<VnInfo>>();
    for (const r of rows) {
      const value = vnFromRow(r);
      fresh.set(r.vni, { value, json: vnJson(value) });
    }
    const oldKeys = only === undefined ? [...this.vns.keys()] : this.vns.has(only) ? [only] : [];
    for (const vni of oldKeys) {
      if (!fresh.has(vni)) {
        this.vns.delete(vni);
        this.hub.emit({ type: 'vn-deleted', vni });
      }
    }
    for (const [vni, c] of fresh) {
      if (this.vns.get(vni)?.json !== c.json) {
        this.vns.set(vni, c);
        this.hub.emit({ type: 'vn-set', vn: c.value });
      }
    }
  }

  private refreshNves(): void {
    const now = Date.now();
    const fresh = new Map<string, { info: NveInfo; json: string; expiresAt: number }>();
    if (this.shared) {
      const rows = this.stmt('SELECT * FROM nve WHERE expires_at > ?').all(now) as NveRow[];
      for (const r of rows) {
        const info = { id: r.id, vtep: r.vtep };
        fresh.set(r.id, { info, json: JSON.stringify(info), expiresAt: r.expires_at });
      }
    }
    // This NVE is live while it is open, whatever its row says.
    const me = this.self!;
    fresh.set(me.id, { info: me, json: JSON.stringify(me), expiresAt: FOREVER });
    for (const id of [...this.live.keys()]) {
      if (!fresh.has(id)) {
        this.live.delete(id);
        this.hub.emit({ type: 'nve-down', id });
      }
    }
    for (const [id, n] of fresh) {
      const old = this.live.get(id);
      this.live.set(id, n);
      if (old?.json !== n.json) this.hub.emit({ type: 'nve-up', nve: n.info });
    }
  }

  /**
   * After a local write of one entry: brings that entry alone into the cache, with the value just
   * written (re-reading the whole VN made each publish cost O(entries in the VN): 21 % of the
   * nNVE's CPU at 1000 associations/s in one VN). Other processes' commits are seen by `poll`.
   */
  private cacheOne(vni: number, nve: string, mac: string, value: NvaEntry | undefined): void {
    const cache = this.watched.get(vni);
    if (!cache) return;
    const k = `${nve}/${mac}`;
    const old = cache.get(k);
    if (!value || !this.live.has(nve)) {
      if (old) {
        cache.delete(k);
        this.hub.emit({ type: 'entry-deleted', vni, mac: old.value.mac, nve: old.value.nve });
      }
      return;
    }
    const c = { value, json: entryJson(value) };
    if (old?.json !== c.json) {
      cache.set(k, c);
      this.hub.emit({ type: 'entry-set', entry: c.value });
    }
  }

  /** Re-reads a watched VN's entries (of live NVEs) and fires entry events for differences. */
  private refreshEntries(vni: number): void {
    const cache = this.watched.get(vni);
    if (!cache) return;
    const rows = this.stmt('SELECT * FROM entry WHERE vni = ?').all(vni) as EntryRow[];
    const fresh = new Map<string, Cached<NvaEntry>>();
    for (const r of rows) {
      if (!this.live.has(r.nve)) continue;
      const value = entryFromRow(r);
      fresh.set(`${r.nve}/${r.mac}`, { value, json: entryJson(value) });
    }
    for (const [k, c] of [...cache]) {
      if (!fresh.has(k)) {
        cache.delete(k);
        this.hub.emit({ type: 'entry-deleted', vni, mac: c.value.mac, nve: c.value.nve });
      }
    }
    for (const [k, c] of fresh) {
      if (cache.get(k)?.json !== c.json) {
        cache.set(k, c);
        this.hub.emit({ type: 'entry-set', entry: c.value });
      }
    }
  }
}
