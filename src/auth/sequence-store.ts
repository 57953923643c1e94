/**
 * Persistence for PDU authentication (Req-11): our outgoing sequence numbers and the last
 * sequence accepted from every peer, in `<stateDir>/auth.sqlite` (better-sqlite3, WAL).
 *
 * Outgoing: one counter for the whole daemon (it increases strictly in every direction, which
 * is all a receiver needs), never below `wall clock µs × 1024` (`sequenceAt`): it follows the
 * clock, so a sequence also tells when it was signed (a receiver may refuse old ones, see
 * `auth.maxSequenceAgeMs`), and even a lost state directory (a reinstall, or WAL commits lost
 * with the power) starts above anything sent before, as long as the clock did not go back;
 * 2^64 is reached in the year ~2540. It is reserved ahead: before the counter passes the
 * stored high-water mark, the mark moves `block` sequences or `reserveAheadMs` of clock ahead,
 * whichever is more, and is committed, so a crash skips numbers but never reuses one, and the
 * counter following the clock costs at most one write per `reserveAheadMs`.
 *
 * Incoming: the last accepted sequence per (scope, peer) is written through on every accepted
 * PDU (one prepared UPSERT), so a PDU captured before a restart of either side is still a
 * replay after it. The scope is what the caller makes it: the nNVE uses one scope for all its
 * ports (`collapseScopes`), the tNVE one per uplink.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const U64_MAX = (1n << 64n) - 1n;

export interface SequenceStoreOptions {
  /** Sequences reserved per write (default 4096). */
  readonly block?: number;
  /** Wall clock in ms (default Date.now); the counter never falls below clock µs × 1024. */
  readonly clockMs?: () => number;
  /** Clock time reserved per write too (default 1000 ms; 0: `block` sequences only). */
  readonly reserveAheadMs?: number;
}

/** The lowest sequence a sender following the clock signs at wall-clock time `ms`. */
export function sequenceAt(ms: number): bigint {
  return ms <= 0 ? 0n : BigInt(Math.floor(ms * 1000)) * 1024n;
}

export class SequenceStore {
  private readonly db: Database.Database;
  private readonly putMark: Database.Statement;
  private readonly putAccepted: Database.Statement;
  private readonly block: bigint;
  private readonly ahead: bigint;
  private readonly clock: () => number;
  private next: bigint;
  private mark: bigint;
  private readonly acceptedCache = new Map<string, bigint>();
  /** Writes of the high-water mark (for tests and metrics). */
  reservations = 0;

  constructor(stateDir: string, opts: SequenceStoreOptions = {}) {
    mkdirSync(stateDir, { recursive: true });
    this.db = new Database(join(stateDir, 'auth.sqlite'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS seq_mark (id INTEGER PRIMARY KEY CHECK (id = 1), mark TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS accepted (
        local TEXT NOT NULL, peer TEXT NOT NULL, seq TEXT NOT NULL, updated INTEGER NOT NULL,
        PRIMARY KEY (local, peer));
    `);
    this.putMark = this.db.prepare(
      'INSERT INTO seq_mark (id, mark) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET mark = excluded.mark',
    );
    this.putAccepted = this.db.prepare(
      'INSERT INTO accepted (local, peer, seq, updated) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (local, peer) DO UPDATE SET seq = excluded.seq, updated = excluded.updated',
    );
    this.block = BigInt(opts.block ?? 4096);
    this.clock = opts.clockMs ?? Date.now;
    this.ahead = sequenceAt(opts.reserveAheadMs ?? 1000);
    const row = this.db.prepare('SELECT mark FROM seq_mark WHERE id = 1').get() as
      { mark: string } | undefined;
    const stored = row ? BigInt(row.mark) : 0n;
    const floor = sequenceAt(this.clock());
    // Everything up to the stored mark may have been used before the restart.
    this.next = stored + 1n > floor ? stored + 1n : floor;
    this.mark = this.next - 1n;
    for (const r of this.db.prepare('SELECT local, peer, seq FROM accepted').all() as {
      local: string;
      peer: string;
      seq: string;
    }[]) {
      this.acceptedCache.set(`${r.local}|${r.peer}`, BigInt(r.seq));
    }
  }

  /** The next outgoing sequence (committing a new high-water mark first when needed). */
  nextSequence(): bigint {
    let s = this.next;
    const floor = sequenceAt(this.clock());
    if (floor > s) s = floor;
    if (s > U64_MAX) throw new Error('authentication sequence space exhausted');
    if (s > this.mark) {
      let m = s + (this.block > this.ahead ? this.block : this.ahead) - 1n;
      if (m > U64_MAX) m = U64_MAX;
      this.putMark.run(m.toString());
      this.mark = m;
      this.reservations++;
    }
    this.next = s + 1n;
    return s;
  }

  lastAccepted(local: string, peer: string): bigint | undefined {
    return this.acceptedCache.get(`${local}|${peer}`);
  }

  accepted(local: string, peer: string, seq: bigint): void {
    this.putAccepted.run(local, peer, seq.toString(), Date.now());
    this.acceptedCache.set(`${local}|${peer}`, seq);
  }

  /**
   * Folds every row into `scope`, keeping per peer the highest sequence of any scope (rows
   * written when the nNVE still kept one window per port). Returns the number of rows folded.
   */
  collapseScopes(scope: string): number {
    const rows = this.db
      .prepare('SELECT local, peer, seq FROM accepted WHERE local <> ?')
      .all(scope) as { local: string; peer: string; seq: string }[];
    if (rows.length === 0) return 0;
    const high = new Map<string, bigint>();
    const kept = this.db.prepare('SELECT peer, seq FROM accepted WHERE local = ?').all(scope) as {
      peer: string;
      seq: string;
    }[];
    for (const r of [...kept, ...rows]) {
      const v = BigInt(r.seq);
      const h = high.get(r.peer);
      if (h === undefined || v > h) high.set(r.peer, v);
    }
    const now = Date.now();
    this.db.transaction(() => {
      for (const [peer, seq] of high) this.putAccepted.run(scope, peer, seq.toString(), now);
      this.db.prepare('DELETE FROM accepted WHERE local <> ?').run(scope);
    })();
    this.acceptedCache.clear();
    for (const [peer, seq] of high) this.acceptedCache.set(`${scope}|${peer}`, seq);
    return rows.length;
  }

  /** Number of peers with a recorded sequence. */
  get peers(): number {
    return this.acceptedCache.size;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
