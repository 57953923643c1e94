/**
 * nNVE daemon configuration: a JSON file (--config) and command-line flags, validated by zod.
 *
 * Beyond the ports and the VDP settings: the local-tag policy (`vlanPool`, per-port pools for a
 * segment, `tagHoldS`), VN resolution (`vnAutoCreate`, initial `vns`), the data plane
 * (`dataplane: memory | ovs` with `ovs.bridge` and `underlayIp`) and the NVA (`nva: embedded |
 * etcd` with `etcd.endpoints`), and this NVE's identity in the NVA (`nveId`, `underlayIp`).
 */
import {
  applyCommonFlags,
  readConfigFile,
  validateConfig,
  type CommonFlags,
} from '../daemon/config-file.js';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
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
    /** Network namespace of the interface (default: the daemon's; see `netns`). */
    netns: z.string().min(1).optional(),
    /** VLAN pool of this port's segment (all ports of a segment must agree; default `vlanPool`). */
    vlanPool: z.string().refine(validPool, 'VLAN pool: ranges within 2..4094').optional(),
  })
  .strict();

function validPool(s: string): boolean {
  try {
    parseVlanRanges(s);
    return true;
  } catch {
    return false;
  }
}

const VnSchema = z
  .object({
    vni: z.number().int().min(1).max(0xffffff),
    name: z.string().optional(),
    allowedStations: z.array(mac).optional(),
    maxTsis: z.number().int().min(0).optional(),
  })
  .strict();

const ip = z.string().refine((s) => isIP(s) !== 0, 'not an IP address');

export const NnveConfigSchema = z
  .object({
    ports: z.array(PortSchema).min(1, 'at least one --port'),
    vlanPool: z
      .string()
      .default('100-3999')
      .refine(validPool, 'VLAN pool: ranges within 2..4094, e.g. 100-3999'),
    /** Seconds an unused local tag stays reserved for its VN before it is released. */
    tagHoldS: z.number().min(0).max(86_400).default(30),
    /** Accept an unknown GroupID and create the VN in the NVA (else reason 5). */
    vnAutoCreate: z.boolean().default(true),
    /** VNs created in the NVA at start if absent. */
    vns: z.array(VnSchema).default([]),
    /** Default network namespace of the ports (the daemon itself stays where it runs). */
    netns: z.string().min(1).optional(),
    /** This NVE's id in the NVA (default: the host name). */
    nveId: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, 'NVE id: 1-128 of [A-Za-z0-9._:@-]')
      .optional(),
    /** Underlay (VTEP) address of this nNVE: where the other NVEs send VXLAN. */
    underlayIp: ip.optional(),
    dataplane: z.enum(['memory', 'ovs']).default('memory'),
    ovs: z
      .object({
        /** The nNVE's OVS bridge (created if missing; it belongs to the daemon). */
        bridge: z.string().min(1).max(15),
        /** OVS run directory with db.sock and <bridge>.mgmt (default /var/run/openvswitch). */
        rundir: z.string().min(1).optional(),
        dbSocket: z.string().min(1).optional(),
        tunnelPort: z.string().min(1).max(15).optional(),
        timeoutMs: z.number().int().min(100).max(120_000).optional(),
      })
      .strict()
      .optional(),
    /** Full data-plane reconcile every so many seconds (0: only at start and after failures). */
    reconcileIntervalS: z.number().min(0).max(86_400).default(30),
    nva: z.enum(['embedded', 'etcd']).default('embedded'),
    /** Embedded NVA: its SQLite file (default <stateDir>/nva.sqlite); `shared` across processes. */
    embedded: z
      .object({ path: z.string().min(1).optional(), shared: z.boolean().optional() })
      .strict()
      .optional(),
    etcd: z
      .object({
        endpoints: z.array(z.string().min(1)).min(1),
        prefix: z.string().min(1).optional(),
        leaseTtlS: z.number().int().min(1).max(3600).optional(),
        callTimeoutMs: z.number().int().min(20).max(60_000).optional(),
        writeTimeoutMs: z.number().int().min(100).max(600_000).optional(),
      })
      .strict()
      .optional(),
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
  .strict()
  .superRefine((c, ctx) => {
    if (c.dataplane === 'ovs' && !c.ovs) {
      ctx.addIssue({
        code: 'custom',
        path: ['ovs', 'bridge'],
        message: 'the ovs data plane needs an OVS bridge (--ovs-bridge)',
      });
    }
    if (c.dataplane === 'ovs' && !c.underlayIp) {
      ctx.addIssue({
        code: 'custom',
        path: ['underlayIp'],
        message: 'the ovs data plane needs the underlay (VTEP) address (--underlay-ip)',
      });
    }
    if (c.nva === 'etcd' && !c.etcd) {
      ctx.addIssue({
        code: 'custom',
        path: ['etcd', 'endpoints'],
        message: 'the etcd NVA needs endpoints (--etcd)',
      });
    }
    const pools = new Map<string, string>();
    for (const [i, p] of c.ports.entries()) {
      const seg = p.segment ?? p.name;
      const pool = p.vlanPool ?? c.vlanPool;
      const other = pools.get(seg);
      if (other !== undefined && other !== pool) {
        ctx.addIssue({
          code: 'custom',
          path: ['ports', i, 'vlanPool'],
          message: `segment ${seg} has two VLAN pools (${other} and ${pool})`,
        });
      }
      pools.set(seg, pool);
    }
  });

/** This NVE's id in the NVA. */
export function nveIdOf(c: NnveConfig): string {
  if (c.nveId) return c.nveId;
  const h = hostname().replace(/[^A-Za-z0-9._:@-]/g, '-');
  return /^[A-Za-z0-9]/.test(h) ? h.slice(0, 128) : `nve-${h}`.slice(0, 128);
}

export type NnveConfig = z.output<typeof NnveConfigSchema>;
export type PortSettings = z.output<typeof PortSchema>;

export interface NnveFlags extends CommonFlags {
  port?: string[];
  vlanPool?: string;
  /** --listen-tls HOST:PORT */
  listenTls?: string;
  netns?: string;
  dataplane?: string;
  ovsBridge?: string;
  ovsRundir?: string;
  ovsDb?: string;
  underlayIp?: string;
  nveId?: string;
  nva?: string;
  etcd?: string[];
  etcdPrefix?: string;
  nvaLeaseTtl?: number;
  nvaFile?: string;
  vnAutoCreate?: boolean;
  tagHold?: number;
}

/** Reads the file (if any), lays the flags over it and validates; errors name the field. */
export function loadNnveConfig(flags: NnveFlags): NnveConfig {
  const file = readConfigFile(flags.config);
  const merged: Record<string, unknown> = { ...file };
  if (flags.port && flags.port.length > 0) {
    const filePorts = (Array.isArray(file.ports) ? file.ports : []) as { name: string }[];
    merged.ports = flags.port.map((name) => filePorts.find((p) => p.name === name) ?? { name });
  }
  if (flags.vlanPool !== undefined) merged.vlanPool = flags.vlanPool;
  if (flags.listenTls !== undefined)
    merged.tls = { ...((file.tls as object) ?? {}), listen: flags.listenTls };
  if (merged.tls && typeof merged.tls === 'object') {
    // The TLS port is a port like the others: add it when not listed.
    const name = (merged.tls as { port?: string }).port ?? 'tls';
    const ports = (Array.isArray(merged.ports) ? merged.ports : []) as { name: string }[];
    if (!ports.some((p) => p.name === name)) merged.ports = [...ports, { name }];
  }
  if (flags.netns !== undefined) merged.netns = flags.netns;
  if (flags.dataplane !== undefined) merged.dataplane = flags.dataplane;
  if (flags.ovsBridge !== undefined || flags.ovsRundir !== undefined || flags.ovsDb !== undefined) {
    const o = { ...((file.ovs as object) ?? {}) } as Record<string, unknown>;
    if (flags.ovsBridge !== undefined) o.bridge = flags.ovsBridge;
    if (flags.ovsRundir !== undefined) o.rundir = flags.ovsRundir;
    if (flags.ovsDb !== undefined) o.dbSocket = flags.ovsDb;
    merged.ovs = o;
  }
  if (flags.underlayIp !== undefined) merged.underlayIp = flags.underlayIp;
  if (flags.nveId !== undefined) merged.nveId = flags.nveId;
  if (flags.nva !== undefined) merged.nva = flags.nva;
  if (
    flags.etcd !== undefined ||
    flags.etcdPrefix !== undefined ||
    flags.nvaLeaseTtl !== undefined
  ) {
    const e = { ...((file.etcd as object) ?? {}) } as Record<string, unknown>;
    if (flags.etcd !== undefined)
      e.endpoints = flags.etcd.flatMap((x) => x.split(',')).filter(Boolean);
    if (flags.etcdPrefix !== undefined) e.prefix = flags.etcdPrefix;
    if (flags.nvaLeaseTtl !== undefined) e.leaseTtlS = flags.nvaLeaseTtl;
    merged.etcd = e;
  }
  if (flags.nvaFile !== undefined) {
    merged.embedded = { ...((file.embedded as object) ?? {}), path: flags.nvaFile };
  }
  if (flags.vnAutoCreate !== undefined) merged.vnAutoCreate = flags.vnAutoCreate;
  if (flags.tagHold !== undefined) merged.tagHoldS = flags.tagHold;
  applyCommonFlags(merged, file, flags);
  return validateConfig(NnveConfigSchema, merged);
}
