/**
 * `splitnve ctl` views whose table is more than the API's JSON laid out: `auth` (PDU
 * authentication, either daemon) and `dataplane` (nNVE; desired or, with --installed, read
 * back). `--json` prints the API's answer unchanged.
 */
import type { Command } from 'commander';
import { ctlFetch, renderTable } from './ctl.js';

interface Global {
  readonly api: string;
  readonly json?: boolean;
}

/** GET /v1/auth as the API answers it (AuthViewSchema in src/daemon/api-schemas.ts). */
export interface AuthView {
  mode: string;
  modes: Record<string, string>;
  keys?: Record<string, number>;
  peersWithSequence: number;
  totals: Record<string, number>;
  authenticated: number;
  logSuppressed: number;
  evictedStations: number;
  peers: {
    local: string;
    peer: string;
    status?: string;
    failures: Record<string, number>;
    lastFailureAt?: number;
  }[];
  tls: {
    name: string;
    status: { up: boolean; reason?: string };
    listen?: { host: string; port: number };
    refused?: number;
    connections?: { station: string; identity: string; remote: string }[];
    connects?: number;
  }[];
}

const pairs = (o: Record<string, unknown>): string =>
  Object.entries(o)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ') || '-';

/**
 * The policy (mode, per-port or per-uplink overrides), key counts, totals, then one line per
 * peer with its failures per reason, then the TLS links if any.
 */
export function renderAuth(v: AuthView): string {
  const lines = [
    `mode: ${v.mode}`,
    `modes: ${pairs(v.modes)}`,
    `keys: ${v.keys ? pairs(v.keys) : '-'}`,
    `authenticated: ${v.authenticated}`,
    `failures: ${pairs(v.totals)}`,
    `peers with sequence: ${v.peersWithSequence}`,
    `log lines suppressed: ${v.logSuppressed}`,
    `evicted peers: ${v.evictedStations}`,
    '',
  ];
  const reasons = Object.keys(v.totals);
  lines.push(
    renderTable(
      'authenticating peers',
      v.peers.map((p) => ({
        local: p.local,
        peer: p.peer,
        status: p.status,
        ...Object.fromEntries(reasons.map((r) => [r, p.failures[r] ?? 0])),
        lastFailure:
          p.lastFailureAt === undefined ? undefined : new Date(p.lastFailureAt).toISOString(),
      })),
    ),
  );
  if (v.tls.length > 0) {
    lines.push('');
    lines.push(
      renderTable(
        'tls links',
        v.tls.map((l) => ({
          tls: l.name,
          up: l.status.up ? 'up' : `down${l.status.reason ? ` (${l.status.reason})` : ''}`,
          listen: l.listen ? `${l.listen.host}:${l.listen.port}` : undefined,
          connections: l.connections?.map((c) => `${c.station} ${c.identity} ${c.remote}`),
          refused: l.refused,
          connects: l.connects,
        })),
      ),
    );
  }
  return lines.join('\n');
}

export function registerCtlViews(ctl: Command): void {
  const g = (): Global => ctl.opts<Global>();
  const run = async (fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      console.error(`splitnve ctl: ${(e as Error).message}`);
      process.exitCode = 1;
    }
  };

  ctl
    .command('auth')
    .description('show PDU authentication: mode, keys, failures per reason and per peer, TLS links')
    .action(() =>
      run(async () => {
        const v = (await ctlFetch(g().api, '/v1/auth')) as AuthView;
        console.log(g().json ? JSON.stringify(v, null, 2) : renderAuth(v));
      }),
    );

  ctl
    .command('dataplane')
    .description('show the data plane the nNVE wants: VAPs, local and remote endpoints, floods')
    .option('--installed', 'what is installed instead, read back from the data plane')
    .action((o: { installed?: boolean }) =>
      run(async () => {
        const v = await ctlFetch(g().api, `/v1/dataplane${o.installed ? '?installed=1' : ''}`);
        console.log(g().json ? JSON.stringify(v, null, 2) : renderTable('dataplane', v));
      }),
    );
}
