/**
 * An nNVE and a tNVE daemon in this process, joined by an in-memory link (no root, no
 * namespaces), with quiet logs and fast EVB timers, for tests of the HTTP API, metrics, event
 * log, `splitnve ctl` and the dashboard.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { createLogger, type Logger } from '../../src/daemon/logger.js';
import { memoryLinkPair } from '../../src/link/memory.js';
import { NnveConfigSchema, type NnveConfig } from '../../src/nnve/config.js';
import { NnveDaemon } from '../../src/nnve/daemon.js';
import { TnveConfigSchema, type TnveConfig } from '../../src/tnve/config.js';
import { TnveDaemon } from '../../src/tnve/daemon.js';

export const quietLog = (): Logger => createLogger({ name: 'test', level: 'silent' as 'info' });

/**
 * RKA 16 (655 ms keep-alive; the bridge expires a VSI 1.2 s after its last one), RTE 11 (20 ms
 * ECP ACK timer): a cut link is noticed within about a second, and a busy CI machine that stalls
 * the event loop for a few hundred ms neither retransmits nor expires anything.
 */
export const FAST_EVB = { r: 3, rte: 11, rwd: 16, rka: 16 };

export const STATION_MAC = '02:00:00:00:aa:01';
export const PORT_MAC = '02:00:00:00:bb:01';

export interface OpsPair {
  nnve: NnveDaemon;
  tnve: TnveDaemon;
  nnveCfg: NnveConfig;
  tnveCfg: TnveConfig;
  /** http://127.0.0.1:PORT of each daemon. */
  nUrl: string;
  tUrl: string;
  /** HOST:PORT of each daemon (for `splitnve ctl --api`). */
  nApi: string;
  tApi: string;
  hv: ReturnType<typeof memoryLinkPair>[0];
  sw: ReturnType<typeof memoryLinkPair>[1];
  dir: string;
  /** Stops the nNVE and starts it again on the same state (new API port). */
  restartNnve(): Promise<void>;
  close(): Promise<void>;
}

function url(d: { api: { server: { address(): unknown } } }): string {
  return `127.0.0.1:${(d.api.server.address() as { port: number }).port}`;
}

export async function startOpsPair(
  o: {
    nnve?: Partial<Record<string, unknown>>;
    tnve?: Partial<Record<string, unknown>>;
    nnveLog?: Logger;
    tnveLog?: Logger;
  } = {},
): Promise<OpsPair> {
  const dir = mkdtempSync(join(tmpdir(), 'snve-ops-'));
  const [hv, sw] = memoryLinkPair(
    { name: 'eth0', mac: STATION_MAC },
    { name: 'swp1', mac: PORT_MAC },
  );
  const nnveCfg = NnveConfigSchema.parse({
    ports: [{ name: 'swp1' }],
    vlanPool: '300-399',
    stateDir: join(dir, 'nnve'),
    api: '127.0.0.1:0',
    profile: 'splitnve',
    evb: FAST_EVB,
    ...o.nnve,
  });
  const tnveCfg = TnveConfigSchema.parse({
    uplinks: [{ name: 'eth0' }],
    stateDir: join(dir, 'tnve'),
    api: '127.0.0.1:0',
    profile: 'splitnve',
    evb: FAST_EVB,
    requestTimeoutMs: 5000,
    retryMs: 100,
    maxRetryMs: 400,
    ...o.tnve,
  });
  let nnve = await NnveDaemon.start(nnveCfg, { log: o.nnveLog ?? quietLog(), openLink: () => sw });
  let tnve: TnveDaemon;
  try {
    tnve = await TnveDaemon.start(tnveCfg, { log: o.tnveLog ?? quietLog(), openLink: () => hv });
  } catch (e) {
    await nnve.stop();
    throw e;
  }
  const pair: OpsPair = {
    nnve,
    tnve,
    nnveCfg,
    tnveCfg,
    nUrl: `http://${url(nnve)}`,
    tUrl: `http://${url(tnve)}`,
    nApi: url(nnve),
    tApi: url(tnve),
    hv,
    sw,
    dir,
    async restartNnve() {
      await nnve.stop();
      nnve = await NnveDaemon.start(nnveCfg, { log: quietLog(), openLink: () => sw.reopen() });
      pair.nnve = nnve;
      pair.nApi = url(nnve);
      pair.nUrl = `http://${pair.nApi}`;
    },
    async close() {
      await Promise.allSettled([pair.tnve.stop(), pair.nnve.stop()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return pair;
}

export async function http(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; type: string; body: unknown; text: string }> {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: r.status, type: r.headers.get('content-type') ?? '', body: parsed, text };
}

/** A VSI spec for POST /v1/requests on the tNVE. */
export function vsiSpec(n: number, vni = 5000): Record<string, unknown> {
  return {
    managerId: 'test',
    typeId: 1,
    typeVersion: 1,
    idFormat: 5,
    id: uuid(n),
    filterFormat: 4,
    entries: [{ groupId: vni, mac: `52:54:00:00:01:${n.toString(16).padStart(2, '0')}`, vid: 0 }],
  };
}

export function uuid(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 5000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end)
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const CLI = join(fileURLToPath(import.meta.url), '..', '..', '..', 'src', 'cli', 'main.js');

/** Runs the built `splitnve` CLI; never rejects (exit code in `code`). */
export function cli(
  args: string[],
  timeoutMs = 20_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
