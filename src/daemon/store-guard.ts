/**
 * What a daemon does when its SQLite state store cannot be written (disk full, I/O error).
 * The first failure is logged (`store.failed`) and counted; from then on the daemon refuses
 * what would add state (it asks `failing`), and instead of the incremental writes the whole
 * state is rewritten, at the next write and every second, until that works
 * (`store.recovered`). Whatever was answered meanwhile is in memory and reaches the store with
 * that rewrite.
 */
export interface StoreGuardLogger {
  error(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
}

export class StoreGuard {
  /** Set while writes fail: since when (wall-clock ms) and the last error. */
  failure: { since: number; error: string } | undefined;
  /** Writes (and rewrites) that failed. */
  errors = 0;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly opts: {
      readonly log: StoreGuardLogger;
      /** Writes the daemon's whole state, replacing what the store holds. */
      readonly rewrite: () => void;
      /** Counts `store-failed` / `store-recovered` (the daemon's event counters). */
      readonly count?: (type: 'store-failed' | 'store-recovered') => void;
      /** What is refused while the store fails, for the log line. */
      readonly refusing: string;
      readonly retryMs?: number;
    },
  ) {}

  /** One incremental write; while the store fails, a rewrite of everything instead. */
  write(fn: () => void): void {
    if (this.failure) {
      this.rewrite();
      return;
    }
    try {
      fn();
    } catch (e) {
      this.failed(e);
    }
  }

  /** Rewrites the whole state now (after failures); true when the store is fine again. */
  rewrite(): boolean {
    try {
      this.opts.rewrite();
    } catch (e) {
      this.failed(e);
      return false;
    }
    const f = this.failure;
    this.failure = undefined;
    if (f) {
      this.opts.count?.('store-recovered');
      this.opts.log.info(
        { event: 'store.recovered', failedMs: Date.now() - f.since },
        'state store written again: requests are accepted',
      );
    }
    return true;
  }

  /** Stops retrying; one last rewrite if the store was failing. */
  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    if (this.failure) this.rewrite();
  }

  private failed(e: unknown): void {
    const error = (e as Error).message ?? String(e);
    this.errors++;
    if (!this.failure) {
      this.failure = { since: Date.now(), error };
      this.opts.count?.('store-failed');
      this.opts.log.error(
        { event: 'store.failed', err: error },
        `state store write failed (${error}): ${this.opts.refusing} until the state is written again`,
      );
    } else {
      this.failure.error = error;
    }
    if (!this.retry && !this.closed) {
      this.retry = setTimeout(() => {
        this.retry = undefined;
        if (this.failure && !this.closed) this.rewrite();
      }, this.opts.retryMs ?? 1000);
      this.retry.unref();
    }
  }
}

/** The `store` part of a daemon's health view. */
export function storeHealth(g: StoreGuard): { ok: boolean; since?: string; error?: string } {
  const f = g.failure;
  return f ? { ok: false, since: new Date(f.since).toISOString(), error: f.error } : { ok: true };
}
