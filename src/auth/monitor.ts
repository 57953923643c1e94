/**
 * Counts and logs authentication results of a daemon (Req-11: every PDU dropped for failing
 * authentication is counted per station and logged with the reason).
 *
 * Counting is exact. Logging of failures is rate-limited per reason (a token bucket, default
 * 20 lines at once then 10 per second): a flood of forged PDUs must not turn into a flood of
 * log lines that slows the daemon down; each line that follows suppressed ones carries how
 * many were suppressed, so the log still adds up. Per-station counters are bounded too (the
 * least recently failing station's counters fold into `evictedStations` totals).
 */
import type { Logger } from '../daemon/logger.js';
import type { AuthFailure } from '../vdp/auth.js';

export const AUTH_FAILURES: readonly AuthFailure[] = [
  'unsigned',
  'unknown-key',
  'bad-hmac',
  'replay',
];

export type AuthEvent =
  | {
      readonly type: 'auth-failed';
      /** nNVE: port and station; tNVE: uplink and peer (the nNVE). */
      readonly port?: string;
      readonly station?: string;
      readonly uplink?: string;
      readonly peer?: string;
      readonly reason: AuthFailure;
      readonly keyId?: number;
      readonly sequence?: string;
    }
  | {
      readonly type: 'auth';
      readonly port?: string;
      readonly station?: string;
      readonly uplink?: string;
      readonly peer?: string;
      readonly status: 'authenticated' | 'unsigned';
    };

export interface StationAuthCounters {
  readonly local: string;
  readonly peer: string;
  status: 'authenticated' | 'unsigned' | 'failed' | undefined;
  failures: Record<AuthFailure, number>;
  lastFailureAt: number | undefined;
}

export interface AuthMonitorOptions {
  readonly log: Logger;
  /** Most peers with their own counters (default 4096). */
  readonly maxPeers?: number;
  /** Log lines per reason at once (default 20) and per second after that (default 10). */
  readonly burst?: number;
  readonly perSecond?: number;
  readonly clockMs?: () => number;
}

function zero(): Record<AuthFailure, number> {
  return { unsigned: 0, 'unknown-key': 0, 'bad-hmac': 0, replay: 0 };
}

export class AuthMonitor {
  readonly totals: Record<AuthFailure, number> = zero();
  authenticated = 0;
  logSuppressed = 0;
  evictedStations = 0;
  private readonly peers = new Map<string, StationAuthCounters>();
  private readonly buckets = new Map<
    AuthFailure,
    { tokens: number; at: number; suppressed: number }
  >();
  private readonly clock: () => number;

  constructor(private readonly o: AuthMonitorOptions) {
    this.clock = o.clockMs ?? Date.now;
  }

  /** Handles one node event; returns false for events that are not about authentication. */
  record(e: { type: string }): boolean {
    if (e.type !== 'auth-failed' && e.type !== 'auth') return false;
    const a = e as AuthEvent;
    const local = a.port ?? a.uplink ?? '';
    const peer = a.station ?? a.peer ?? '';
    const c = this.counters(local, peer);
    if (a.type === 'auth') {
      c.status = a.status;
      if (a.status === 'authenticated') this.authenticated++;
      this.o.log.info(
        { event: 'auth.status', local, peer, status: a.status },
        `authentication with ${peer} on ${local}: ${a.status}`,
      );
      return true;
    }
    this.totals[a.reason]++;
    c.failures[a.reason]++;
    c.status = 'failed';
    c.lastFailureAt = this.clock();
    const suppressed = this.allow(a.reason);
    if (suppressed !== undefined) {
      this.o.log.warn(
        {
          event: 'auth.failed',
          local,
          peer,
          reason: a.reason,
          keyId: a.keyId,
          sequence: a.sequence,
          count: c.failures[a.reason],
          ...(suppressed > 0 ? { suppressed } : {}),
        },
        `dropped a PDU from ${peer} on ${local}: ${a.reason}` +
          (suppressed > 0 ? ` (${suppressed} similar lines suppressed)` : ''),
      );
    }
    return true;
  }

  /** Token bucket per reason: the number of suppressed lines to report, or undefined to stay quiet. */
  private allow(reason: AuthFailure): number | undefined {
    const burst = this.o.burst ?? 20;
    const rate = this.o.perSecond ?? 10;
    const now = this.clock();
    let b = this.buckets.get(reason);
    if (!b) this.buckets.set(reason, (b = { tokens: burst, at: now, suppressed: 0 }));
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    if (b.tokens < 1) {
      b.suppressed++;
      this.logSuppressed++;
      return undefined;
    }
    b.tokens -= 1;
    const s = b.suppressed;
    b.suppressed = 0;
    return s;
  }

  private counters(local: string, peer: string): StationAuthCounters {
    const id = `${local}|${peer}`;
    let c = this.peers.get(id);
    if (c) {
      // Most recently touched last: the first entry is the one to fold away.
      this.peers.delete(id);
      this.peers.set(id, c);
      return c;
    }
    if (this.peers.size >= (this.o.maxPeers ?? 4096)) {
      const oldest = this.peers.keys().next().value as string;
      this.peers.delete(oldest);
      this.evictedStations++;
    }
    c = { local, peer, status: undefined, failures: zero(), lastFailureAt: undefined };
    this.peers.set(id, c);
    return c;
  }

  /** A peer's counters, if it has any. */
  peer(local: string, peer: string): StationAuthCounters | undefined {
    return this.peers.get(`${local}|${peer}`);
  }

  /** Everything, for the API. */
  view(): {
    totals: Record<AuthFailure, number>;
    authenticated: number;
    logSuppressed: number;
    evictedStations: number;
    peers: StationAuthCounters[];
  } {
    return {
      totals: { ...this.totals },
      authenticated: this.authenticated,
      logSuppressed: this.logSuppressed,
      evictedStations: this.evictedStations,
      peers: [...this.peers.values()].map((c) => ({ ...c, failures: { ...c.failures } })),
    };
  }
}
