/** nNVE daemon configuration: a JSON file (--config) and command-line flags, validated by zod. */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { isMac } from '../wire/bytes.js';
import { parseVlanRanges } from '../policy/vlan-pool.js';
import { AuthConfigSchema, QuotaConfigSchema, TlsListenSchema } from '../auth/config.js';

const mac = z.string().refine(isMac, 'not a MAC address');

export const EvbSettingsSchema = z
  .object({
    r: z.number().int().min(0).max(7),
    rte: z.number().int().min(0).max(31),
    rwd: z.number().int().min(0).max(31),
    rka: z.number().int().min(0).max(31),
    groupId: z.boolean(),
    rr: z.boolean(),
    /** Seconds between LLDPDUs once settled. */
    txIntervalS: z.number().min(0.1).max(3600),
    /** Destination of LLDPDUs (a group address bridges forward, across a bridged network). */
    destination: mac,
  })
  .partial()
  .strict();

export const PortSchema = z
  .object({
    name: z.string().min(1).max(15),
    /** Default: the interface's own MAC. */
    mac: mac.optional(),
    /** Ports that share one L2 domain share local tags (default: each port is its own). */
    segment: z.string().min(1).optional(),
    evb: EvbSettingsSchema.optional(),
    groupAddresses: z.array(mac).optional(),
    /** Minimum µs between two ECP PDUs to one station (default 5000 in the 802.1Qbg profile for lldpad, else 0). */
    ecpMinGapUs: z.number().int().min(0).max(1_000_000).optional(),
    /** Most VSI TLVs per PDU (default 1 in the 802.1Qbg profile, as lldpad sends, else as many as fit). */
    maxTlvsPerPdu: z.number().int().min(1).max(100).optional(),
    maxStations: z.number().int().min(1).optional(),
  })
  .strict();

export const NnveConfigSchema = z
  .object({
    ports: z.array(PortSchema).min(1, 'at least one --port'),
    vlanPool: z
      .string()
      .default('100-3999')
      .refine((s) => {
        try {
          parseVlanRanges(s);
          return true;
        } catch {
          return false;
        }
      }, 'VLAN pool: ranges within 2..4094, e.g. 100-3999'),
    stateDir: z.string().min(1),
    api: z.string().default('127.0.0.1:8740'),
    profile: z.enum(['802.1Qbg', 'splitnve']).default('802.1Qbg'),
    /** EVB defaults of every port (a port's own `evb` wins). */
    evb: EvbSettingsSchema.optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
    /** PDU authentication (Req-11), see src/auth/config.ts. */
    auth: AuthConfigSchema.optional(),
    /** Per-station limits and per-port memory bounds. */
    quotas: QuotaConfigSchema.optional(),
    /** A port whose stations connect over TLS (L3 transport). */
    tls: TlsListenSchema.optional(),
  })
  .strict();

export type NnveConfig = z.output<typeof NnveConfigSchema>;
export type PortSettings = z.output<typeof PortSchema>;

export interface NnveFlags {
  config?: string;
  port?: string[];
  vlanPool?: string;
  stateDir?: string;
  api?: string;
  profile?: string;
  logLevel?: string;
  evb?: Record<string, number>;
  /** --auth MODE, --key-dir DIR */
  auth?: string;
  keyDir?: string;
  /** --listen-tls HOST:PORT */
  listenTls?: string;
}

/** Reads the file (if any), lays the flags over it and validates; errors name the field. */
export function loadNnveConfig(flags: NnveFlags): NnveConfig {
  let file: Record<string, unknown> = {};
  if (flags.config) {
    let text: string;
    try {
      text = readFileSync(flags.config, 'utf8');
    } catch (e) {
      throw new Error(`config ${flags.config}: ${(e as Error).message}`, { cause: e });
    }
    try {
      file = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`config ${flags.config}: not valid JSON: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }
  const merged: Record<string, unknown> = { ...file };
  if (flags.port && flags.port.length > 0) {
    const filePorts = (Array.isArray(file.ports) ? file.ports : []) as { name: string }[];
    merged.ports = flags.port.map((name) => filePorts.find((p) => p.name === name) ?? { name });
  }
  if (flags.vlanPool !== undefined) merged.vlanPool = flags.vlanPool;
  if (flags.stateDir !== undefined) merged.stateDir = flags.stateDir;
  if (flags.api !== undefined) merged.api = flags.api;
  if (flags.profile !== undefined) merged.profile = flags.profile;
  if (flags.logLevel !== undefined) merged.logLevel = flags.logLevel;
  if (flags.evb) merged.evb = { ...((file.evb as object) ?? {}), ...flags.evb };
  if (flags.auth !== undefined || flags.keyDir !== undefined) {
    merged.auth = {
      ...((file.auth as object) ?? {}),
      ...(flags.auth !== undefined ? { mode: flags.auth } : {}),
      ...(flags.keyDir !== undefined ? { keyDir: flags.keyDir } : {}),
    };
  }
  if (flags.listenTls !== undefined)
    merged.tls = { ...((file.tls as object) ?? {}), listen: flags.listenTls };
  if (merged.tls && typeof merged.tls === 'object') {
    // The TLS port is a port like the others: add it when not listed.
    const name = (merged.tls as { port?: string }).port ?? 'tls';
    const ports = (Array.isArray(merged.ports) ? merged.ports : []) as { name: string }[];
    if (!ports.some((p) => p.name === name)) merged.ports = [...ports, { name }];
  }
  const r = NnveConfigSchema.safeParse(merged);
  if (!r.success) {
    throw new Error(
      `invalid configuration: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  return r.data;
}
