/**
 * An nNVE and a tNVE daemon in this process, joined by an in-memory cable with a tap on each
 * end (record, alter, inject frames), each logging into memory. For authentication tests.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLinkPair, type MemoryLink } from '../../src/link/memory.js';
import { NnveConfigSchema, type NnveConfig } from '../../src/nnve/config.js';
import { NnveDaemon } from '../../src/nnve/daemon.js';
import { TnveConfigSchema, type TnveConfig } from '../../src/tnve/config.js';
import { TnveDaemon } from '../../src/tnve/daemon.js';
import { parseVdpPdu, type ParsedVdpPdu } from '../../src/vdp/pdu.js';
import { decodeEcp } from '../../src/wire/ecp.js';
import { decodeEthernet, ETHERTYPE_ECP } from '../../src/wire/ethernet.js';
import { DEFAULT_WIRE_OPTIONS } from '../../src/wire/options.js';
import { captureLog, type CapturedLog } from './capture-log.js';
import { LinkTap } from './link-tap.js';

export const HV_MAC = '02:00:00:00:aa:01';
export const SW_MAC = '02:00:00:00:bb:01';
/** Keep-alive every 328 ms (expiry after ~0.5 s), ECP ACK timer 2.56 ms. */
export const FAST_EVB = { r: 3, rte: 8, rwd: 14, rka: 15 };

export function vsiBody(n: number, vni = 5000 + (n % 3)): Record<string, unknown> {
  return {
    managerId: 'test',
    typeId: 1,
    typeVersion: 1,
    idFormat: 5,
    id: `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`,
    filterFormat: 4,
    entries: [
      {
        groupId: vni,
        mac: `52:54:00:00:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`,
        vid: 0,
      },
    ],
  };
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

export function apiPort(d: { api: { server: { address(): unknown } } }): number {
  return (d.api.server.address() as { port: number }).port;
}

/** The VDP payload of an ECP request frame, decoded; undefined for anything else. */
export function vdpOf(frame: Uint8Array): ParsedVdpPdu | undefined {
  const e = decodeEthernet(frame);
  if (!e.ok || e.value.header.ethertype !== ETHERTYPE_ECP) return undefined;
  const c = decodeEcp(e.value.payload);
  if (!c.ok || c.value.header.op !== 0) return undefined;
  const p = parseVdpPdu(c.value.ulpdu, DEFAULT_WIRE_OPTIONS);
  return p.ok ? p.value : undefined;
}

export interface PairOptions {
  readonly nnve?: Record<string, unknown>;
  readonly tnve?: Record<string, unknown>;
}

export class DaemonPair {
  nnve!: NnveDaemon;
  tnve!: TnveDaemon;
  /** Tap on the nNVE end: `received` = station -> bridge, `sent` = bridge -> station. */
  swTap!: LinkTap;
  /** Tap on the tNVE end: `received` = bridge -> station. */
  hvTap!: LinkTap;
  nlog: CapturedLog = captureLog('nnve');
  tlog: CapturedLog = captureLog('tnve');
  readonly dir: string;
  readonly hvEnd: MemoryLink;
  readonly swEnd: MemoryLink;
  nnveCfg: NnveConfig;
  tnveCfg: TnveConfig;

  constructor(opts: PairOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'sns-pair-'));
    [this.hvEnd, this.swEnd] = memoryLinkPair(
      { name: 'eth0', mac: HV_MAC },
      { name: 'swp1', mac: SW_MAC },
    );
    this.nnveCfg = NnveConfigSchema.parse({
      ports: [{ name: 'swp1' }],
      vlanPool: '300-399',
      stateDir: join(this.dir, 'nnve'),
      api: '127.0.0.1:0',
      profile: 'splitnve',
      evb: FAST_EVB,
      ...opts.nnve,
    });
    this.tnveCfg = TnveConfigSchema.parse({
      uplinks: [{ name: 'eth0' }],
      stateDir: join(this.dir, 'tnve'),
      api: '127.0.0.1:0',
      profile: 'splitnve',
      evb: FAST_EVB,
      requestTimeoutMs: 3000,
      ...opts.tnve,
    });
  }

  async startNnve(reopen = false): Promise<NnveDaemon> {
    this.swTap = new LinkTap(reopen ? this.swEnd.reopen() : this.swEnd);
    this.nnve = await NnveDaemon.start(this.nnveCfg, {
      log: this.nlog.log,
      openLink: () => this.swTap,
    });
    return this.nnve;
  }

  async startTnve(reopen = false): Promise<TnveDaemon> {
    this.hvTap = new LinkTap(reopen ? this.hvEnd.reopen() : this.hvEnd);
    this.tnve = await TnveDaemon.start(this.tnveCfg, {
      log: this.tlog.log,
      openLink: () => this.hvTap,
    });
    return this.tnve;
  }

  async start(): Promise<this> {
    await this.startNnve();
    await this.startTnve();
    return this;
  }

  request(mode: string, n: number | Record<string, unknown>): ReturnType<typeof post> {
    return post(apiPort(this.tnve), '/v1/requests', {
      mode,
      vsi: typeof n === 'number' ? vsiBody(n) : n,
    });
  }

  async close(): Promise<void> {
    await this.tnve?.stop();
    await this.nnve?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
