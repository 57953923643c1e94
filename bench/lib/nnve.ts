/**
 * The real nNVE daemon (`splitnve nnve`) as a separate process inside a network namespace, with
 * its HTTP API reached through a unix-socket proxy in that namespace, and its CPU time and memory
 * read from /proc.
 */
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EvbValues } from '../../src/evb/agent.js';
import type { Lab } from '../../test/harness/netns.js';
import type { ManagedProcess } from '../../test/harness/proc.js';
import { waitUntil } from '../../test/harness/proc.js';
import { cpuTimes, memory, type CpuTimes, type Memory } from './procstat.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const MAIN_JS = join(HERE, '..', '..', 'src', 'cli', 'main.js');
const PROXY_JS = join(HERE, 'uds-proxy.js');
const API_PORT = 8740;

export interface NnveOptions {
  readonly netns: string;
  readonly ifname: string;
  readonly stateDir: string;
  readonly profile: '802.1Qbg' | 'splitnve';
  readonly evb: EvbValues;
  readonly vlanPool?: string;
  /** Write a V8 CPU profile (node --cpu-prof) into this directory when the daemon exits. */
  readonly cpuProfDir?: string;
  readonly logLevel?: string;
}

/** GET/POST on a unix socket; resolves with the parsed JSON body. */
export async function apiCall(
  socketPath: string,
  path: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<unknown> {
  const text = await apiText(socketPath, path, body, timeoutMs);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`${path}: not JSON: ${(e as Error).message}`, { cause: e });
  }
}

/** The body of an API call as text (e.g. GET /metrics); rejects on an HTTP error. */
export function apiText(
  socketPath: string,
  path: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath,
        path,
        method: data === undefined ? 'GET' : 'POST',
        headers: data === undefined ? {} : { 'content-type': 'application/json' },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if ((res.statusCode ?? 500) >= 400) {
            reject(new Error(`${path}: HTTP ${res.statusCode}: ${text}`));
            return;
          }
          resolve(text);
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

let starts = 0;

export class NnveProcess {
  private constructor(
    readonly proc: ManagedProcess,
    readonly socketPath: string,
    readonly opts: NnveOptions,
  ) {}

  get pid(): number {
    return this.proc.pid;
  }

  /** Starts the proxy for a namespace's API (once per namespace); returns its socket path. */
  static startProxy(lab: Lab, netns: string): string {
    const socketPath = lab.file(`${netns}-api.sock`);
    lab.spawn({
      name: `api-proxy-${netns}`,
      netns,
      cmd: process.execPath,
      args: [PROXY_JS, socketPath, `127.0.0.1:${API_PORT}`],
    });
    return socketPath;
  }

  /** Spawns the daemon and waits until its API answers. */
  static async start(lab: Lab, socketPath: string, opts: NnveOptions): Promise<NnveProcess> {
    const e = opts.evb;
    const args = [
      // Extra node flags for the daemon, for investigations (e.g. --trace-gc).
      ...(process.env.BENCH_NNVE_NODE_FLAGS ?? '').split(' ').filter(Boolean),
      ...(opts.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', opts.cpuProfDir] : []),
      MAIN_JS,
      'nnve',
      '--port',
      opts.ifname,
      '--vlan-pool',
      opts.vlanPool ?? '100-3999',
      '--state-dir',
      opts.stateDir,
      '--api',
      `127.0.0.1:${API_PORT}`,
      '--profile',
      opts.profile,
      '--r',
      String(e.r),
      '--rte',
      String(e.rte),
      '--rwd',
      String(e.rwd),
      '--rka',
      String(e.rka),
      ...(opts.logLevel || process.env.BENCH_NNVE_LOG_LEVEL
        ? ['--log-level', opts.logLevel ?? process.env.BENCH_NNVE_LOG_LEVEL!]
        : []),
    ];
    const proc = lab.spawn({
      name: `nnve-${++starts}`,
      netns: opts.netns,
      cmd: process.execPath,
      args,
    });
    const d = new NnveProcess(proc, socketPath, opts);
    await d.waitUp();
    return d;
  }

  /** Waits until GET /v1/health answers (fails early if the process exits). */
  async waitUp(timeoutMs = 120_000): Promise<void> {
    await this.proc.waitFor(
      'nnve API health',
      async () => {
        const h = (await apiCall(this.socketPath, '/v1/health', undefined, 2000)) as {
          ok?: boolean;
        };
        return h.ok === true;
      },
      { timeoutMs, intervalMs: 10 },
    );
  }

  get(path: string, timeoutMs?: number): Promise<unknown> {
    return apiCall(this.socketPath, path, undefined, timeoutMs);
  }

  /** The Prometheus exposition of GET /metrics. */
  metrics(): Promise<string> {
    return apiText(this.socketPath, '/metrics');
  }

  async stats(): Promise<NnveStats> {
    return (await this.get('/v1/stats')) as NnveStats;
  }

  async vaps(): Promise<{ segment: string; vni: number; vid: number; tsis: number }[]> {
    return (await this.get('/v1/vaps')) as {
      segment: string;
      vni: number;
      vid: number;
      tsis: number;
    }[];
  }

  cpu(): CpuTimes {
    return cpuTimes(this.pid);
  }

  memory(): Memory {
    return memory(this.pid);
  }

  /** SIGKILL; resolves once the process is gone. */
  async kill(): Promise<void> {
    this.proc.signal('SIGKILL');
    await this.proc.exited;
  }

  /** SIGTERM (clean stop: a CPU profile is written), SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    await this.proc.stop(graceMs);
  }
}

export interface NnveStats {
  stations: number;
  tsis: Record<string, number>;
  vaps: number;
  node: { framesIn: number; framesOut: number; framesDropped: number };
  ecp: Record<string, number>;
  vdp: Record<string, number>;
  events: Record<string, number>;
  storeErrors: number;
}

/** Waits until the daemon holds `n` TSIs (Associated + Activated). */
export async function waitTsis(d: NnveProcess, n: number, timeoutMs: number): Promise<NnveStats> {
  let last: NnveStats | undefined;
  try {
    return await waitUntil(
      `nnve to hold ${n} TSIs`,
      async () => {
        last = await d.stats();
        const total = Object.values(last.tsis).reduce((a, b) => a + b, 0);
        return total >= n ? last : undefined;
      },
      { timeoutMs, intervalMs: 200 },
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}; last stats: ${JSON.stringify(last)}`, { cause: e });
  }
}
