/**
 * WAL checkpoints of a SQLite file off the event loop, for every store the daemons write on their
 * protocol path (the nNVE state store, the embedded NVA).
 *
 * A checkpoint inside a commit (SQLite's default: every ~1000 WAL pages) copies those pages into
 * the database file and fsyncs it on the committing thread: 5-10 ms during which nothing else
 * runs, several times a second at 1000 requests/s. So the main connection runs with
 * `wal_autocheckpoint = 0` (its commits only append to the WAL; with synchronous=NORMAL, no
 * fsync) and a worker thread with its own connection checkpoints (./checkpoint-worker.ts).
 *
 * If the worker dies, the main connection checkpoints inside its commits again, so the WAL never
 * grows without bound. `finish()` stops the worker and copies the rest on the main connection;
 * the owner then closes it.
 */
import type Database from 'better-sqlite3';
import { Worker } from 'node:worker_threads';
import type { CheckpointerData, CheckpointerMessage } from './checkpoint-worker.js';

export interface WalCheckpointerOptions {
  /** How often the worker checkpoints the WAL (ms, default 500). */
  checkpointIntervalMs?: number;
  /** WAL frames above which the worker forces a RESTART checkpoint (default 16384, 64 MiB). */
  maxWalPages?: number;
  /** A checkpoint failed or the worker died (the store goes on; the daemon logs it). */
  onError?: (err: Error) => void;
}

/** What the checkpoint worker did (for tests and stats). */
export interface CheckpointStats {
  checkpoints: number;
  /** RESTART checkpoints forced by a WAL over `maxWalPages`. */
  forced: number;
  errors: number;
  /** Frames in the WAL and frames copied at the last checkpoint. */
  lastLog: number;
  lastCheckpointed: number;
  /** Longest checkpoint so far (ms, in the worker). */
  maxMs: number;
  /** False once the worker died: the main connection checkpoints itself again. */
  workerAlive: boolean;
}

const WORKER_STOP_WAIT_MS = 5000;

export class WalCheckpointer {
  readonly stats: CheckpointStats = {
    checkpoints: 0,
    forced: 0,
    errors: 0,
    lastLog: 0,
    lastCheckpointed: 0,
    maxMs: 0,
    workerAlive: false,
  };
  private readonly worker: Worker;
  private readonly workerClosed = new Int32Array(new SharedArrayBuffer(4));
  private stopped = false;

  /**
   * Turns off the checkpoints of `db` (the main connection of `file`, in WAL mode) and starts the
   * worker that does them instead.
   */
  constructor(
    private readonly db: Database.Database,
    private readonly file: string,
    private readonly opts: WalCheckpointerOptions = {},
  ) {
    db.pragma('wal_autocheckpoint = 0');
    // When a commit starts the WAL over, a file grown past this is cut back.
    db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
    const data: CheckpointerData & { checkpointer: true } = {
      checkpointer: true,
      file,
      intervalMs: opts.checkpointIntervalMs ?? 500,
      maxWalPages: opts.maxWalPages ?? 16384,
      closed: this.workerClosed.buffer as SharedArrayBuffer,
    };
    // No node flags of the daemon's (--cpu-prof would write a second profile).
    const w = new Worker(new URL('./checkpoint-worker.js', import.meta.url), {
      workerData: data,
      execArgv: [],
    });
    w.unref();
    this.stats.workerAlive = true;
    w.on('message', (m: CheckpointerMessage) => {
      const st = this.stats;
      if (m.type === 'error') {
        st.errors++;
        this.opts.onError?.(new Error(m.message));
        return;
      }
      st.checkpoints++;
      if (m.mode === 'RESTART') st.forced++;
      st.lastLog = m.log;
      st.lastCheckpointed = m.checkpointed;
      st.maxMs = Math.max(st.maxMs, m.ms);
    });
    w.on('error', (e) => this.died(`${file}: WAL checkpoint worker failed: ${e.message}`));
    w.on('exit', (code) => {
      if (!this.stopped) this.died(`${file}: WAL checkpoint worker exited (code ${code})`);
    });
    this.worker = w;
  }

  /** Without its worker the main connection checkpoints inside commits again, as SQLite does. */
  private died(message: string): void {
    if (!this.stats.workerAlive) return;
    this.stats.workerAlive = false;
    this.stats.errors++;
    if (!this.stopped) this.db.pragma('wal_autocheckpoint = 1000');
    this.opts.onError?.(new Error(`${message}; checkpoints are done by commits again`));
  }

  /**
   * Stops the worker, then checkpoints what is left with the main connection: `TRUNCATE` (the
   * whole WAL, the file emptied) or `PASSIVE` (what can be copied without waiting for other
   * processes writing the same file). Throws if that last checkpoint fails (nothing is lost: the
   * next open reads the WAL).
   */
  finish(mode: 'TRUNCATE' | 'PASSIVE'): void {
    this.stop();
    this.db.pragma(`wal_checkpoint(${mode})`);
  }

  /**
   * Stops the worker and waits (at most 5 s) until it closed its connection; a checkpoint under
   * way finishes first.
   */
  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.stats.workerAlive) {
      this.worker.postMessage({ type: 'stop' });
      // Message delivery does not need this thread's event loop: the worker closes its
      // connection and wakes us.
      const r = Atomics.wait(this.workerClosed, 0, 0, WORKER_STOP_WAIT_MS);
      if (r === 'timed-out') {
        this.opts.onError?.(
          new Error(
            `${this.file}: WAL checkpoint worker did not stop within ${WORKER_STOP_WAIT_MS} ms`,
          ),
        );
      }
      void this.worker.terminate();
    }
    this.stats.workerAlive = false;
  }
}
