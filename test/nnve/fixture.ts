/**
 * In-process nNVE + tNVE daemons over in-memory links, with the memory data plane and the
 * embedded NVA, for the nnve suite.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { createLogger } from '../../src/daemon/logger.js';
import type { DataPlane } from '../../src/dataplane/dataplane.js';
import { memoryLinkPair, type MemoryLink } from '../../src/link/memory.js';
import { NnveConfigSchema, type NnveConfig } from '../../src/nnve/config.js';
import { NnveDaemon } from '../../src/nnve/daemon.js';
import type { Nva } from '../../src/nva/nva.js';
import { TnveConfigSchema } from '../../src/tnve/config.js';
import { TnveDaemon } from '../../src/tnve/daemon.js';
import type { VsiSpecJson } from '../../src/vdp/spec-json.js';

export const quiet = createLogger({ name: 'test', level: 'silent' as 'info' });
export const evb = { r: 3, rte: 8, rwd: 14, rka: 14 };

export function tmp(t: TestContext, name = 'snn-nnve-'): string {
  const dir = mkdtempSync(join(tmpdir(), name));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function apiPort(d: { api: { server: { address(): unknown } } }): number {
  return (d.api.server.address() as { port: number }).port;
}

export async function post(
  port: number,
  path: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

export async function get<T = unknown>(port: number, path: string): Promise<T> {
  return (await (await fetch(`http://127.0.0.1:${port}${path}`)).json()) as T;
}

/** A VSI of one VM: `n` picks its id and MAC; IPv4 filter format (splitnve profile). */
export function vm(
  n: number,
  vni: number,
  opts: { ip?: string; vid?: number; mac?: string } = {},
): VsiSpecJson {
  const mac = opts.mac ?? `52:54:00:00:00:${n.toString(16).padStart(2, '0')}`;
  return {
    managerId: 'test',
    typeId: 1,
    typeVersion: 1,
    idFormat: 5,
    id: `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`,
    filterFormat: opts.ip ? 0xf0 : 4,
    entries: [
      {
        groupId: vni,
        mac,
        vid: opts.vid ?? 0,
        ...(opts.ip ? { ipv4: opts.ip } : {}),
      },
    ],
  };
}

export interface Rig {
  nnve: NnveDaemon;
  tnve: TnveDaemon;
  cfg: NnveConfig;
  hv: MemoryLink;
  sw: MemoryLink;
  /** POST /v1/requests on the tNVE. */
  request(
    mode: 'pre-associate' | 'pre-associate-rr' | 'associate' | 'de-associate',
    vsi: VsiSpecJson,
    hints?: { m?: boolean; s?: boolean },
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  restartNnve(over?: Partial<NnveConfig>): Promise<NnveDaemon>;
  close(): Promise<void>;
}

let rigCounter = 0;

/** One tNVE (station) and one nNVE over a memory cable. */
export async function rig(
  t: TestContext,
  opts: {
    nnve?: Record<string, unknown>;
    /** tNVE settings over the defaults (e.g. its stateDir). */
    tnve?: Record<string, unknown>;
    dataplane?: () => DataPlane;
    nva?: () => Nva;
    stationMac?: string;
  } = {},
): Promise<Rig> {
  const dir = tmp(t);
  const n = ++rigCounter;
  const [hv, sw] = memoryLinkPair(
    { name: 'eth0', mac: opts.stationMac ?? `02:00:00:00:aa:${n.toString(16).padStart(2, '0')}` },
    { name: 'swp1', mac: `02:00:00:00:bb:${n.toString(16).padStart(2, '0')}` },
  );
  const cfg = NnveConfigSchema.parse({
    ports: [{ name: 'swp1' }],
    vlanPool: '100-199',
    stateDir: join(dir, 'nnve'),
    api: '127.0.0.1:0',
    profile: 'splitnve',
    evb,
    nveId: `nve${n}`,
    underlayIp: `198.18.0.${n}`,
    reconcileIntervalS: 0,
    ...opts.nnve,
  });
  const start = (c: NnveConfig, link: MemoryLink) =>
    NnveDaemon.start(c, {
      log: quiet,
      openLink: () => link,
      ...(opts.dataplane ? { dataplane: opts.dataplane() } : {}),
      ...(opts.nva ? { nva: opts.nva() } : {}),
    });
  const r: Rig = {
    nnve: await start(cfg, sw),
    tnve: await TnveDaemon.start(
      TnveConfigSchema.parse({
        uplinks: [{ name: 'eth0' }],
        stateDir: join(dir, 'tnve'),
        api: '127.0.0.1:0',
        profile: 'splitnve',
        evb,
        requestTimeoutMs: 5000,
        ...opts.tnve,
      }),
      { log: quiet, openLink: () => hv },
    ),
    cfg,
    hv,
    sw,
    request: (mode, vsi, hints) =>
      post(apiPort(r.tnve), '/v1/requests', { mode, vsi, ...(hints ? { hints } : {}) }),
    async restartNnve(over = {}) {
      await r.nnve.stop();
      r.nnve = await start({ ...cfg, ...over }, sw.reopen());
      return r.nnve;
    },
    async close() {
      await r.tnve.stop();
      await r.nnve.stop();
    },
  };
  t.after(() => r.close());
  return r;
}
