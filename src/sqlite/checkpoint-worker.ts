/**
 * The worker of ./wal-checkpointer.ts: WAL checkpoints of one SQLite file, off the event loop.
 *
 * The main connection runs with `wal_autocheckpoint = 0`: its commits only append to the WAL
 * (synchronous=NORMAL: no fsync). This worker has its own connection to the same file and every
 * `intervalMs` runs `wal_checkpoint(PASSIVE)`, which copies committed pages into the database
 * file and fsyncs it without taking the write lock, so the daemon's commits go on meanwhile. The
 * main connection starts the WAL over at its next commit once a checkpoint has copied all of it.
 *
 * Under commits with no pause the WAL is never found wholly copied when a commit starts, so it is
 * never started over and keeps growing: once it holds more than `maxWalPages` frames the worker
 * runs one `wal_checkpoint(RESTART)`, which holds the write lock until the WAL can start over (the
 * daemon's commits wait for it, within their busy timeout: the rest of the WAL was just copied).
 *
 * Messages to the parent: `{ type: 'checkpoint', mode, busy, log, checkpointed, ms }` after each
 * checkpoint, `{ type: 'error', message }` when one fails (the worker goes on). On `{ type:
 * 'stop' }` it closes its connection, sets the shared flag to 1 and wakes the parent.
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';

export interface CheckpointerData {
  file: string;
  intervalMs: number;
  maxWalPages: number;
  /** Int32Array(1) over a SharedArrayBuffer: 1 once the worker's connection is closed. */
  closed: SharedArrayBuffer;
}

export type CheckpointerMessage =
  | {
      type: 'checkpoint';
      mode: 'PASSIVE' | 'RESTART';
      busy: number;
      log: number;
      checkpointed: number;
      ms: number;
    }
  | { type: 'error'; message: string };

interface CheckpointRow {
  busy: number;
  log: number;
  checkpointed: number;
}

function run(data: CheckpointerData): void {
  const port = parentPort!;
  const closed = new Int32Array(data.closed);
  let db: Database.Database | undefined;
  let timer: NodeJS.Timeout | undefined;
  const post = (m: CheckpointerMessage): void => port.postMessage(m);

  const checkpoint = (mode: 'PASSIVE' | 'RESTART'): CheckpointRow => {
    const t0 = performance.now();
    const row = db!.pragma(`wal_checkpoint(${mode})`, { simple: false }) as CheckpointRow[];
    const r = row[0]!;
    post({ type: 'checkpoint', mode, ...r, ms: performance.now() - t0 });
    return r;
  };

  const tick = (): void => {
    try {
      db ??= new Database(data.file, { fileMustExist: true, timeout: 5000 });
      const r = checkpoint('PASSIVE');
      if (r.log > data.maxWalPages) checkpoint('RESTART');
    } catch (e) {
      post({ type: 'error', message: `${data.file}: WAL checkpoint: ${(e as Error).message}` });
      try {
        db?.close();
      } catch {
        // The next tick opens a new connection.
      }
      db = undefined;
    }
  };

  timer = setInterval(tick, data.intervalMs);
  port.on('message', (m: { type: string }) => {
    if (m.type !== 'stop') return;
    clearInterval(timer);
    timer = undefined;
    try {
      db?.close();
    } catch {
      // Closing a connection that failed: nothing left to release.
    }
    db = undefined;
    Atomics.store(closed, 0, 1);
    Atomics.notify(closed, 0);
    port.close();
  });
}

if (parentPort && workerData && (workerData as { checkpointer?: boolean }).checkpointer) {
  run(workerData as CheckpointerData);
}
