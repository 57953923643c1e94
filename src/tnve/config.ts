/** tNVE agent configuration: a JSON file (--config) and command-line flags, validated by zod. */
import {
  applyCommonFlags,
  readConfigFile,
  validateConfig,
  type CommonFlags,
} from '../daemon/config-file.js';
import { z } from 'zod';
import { isMac } from '../wire/bytes.js';
import { EvbSettingsSchema } from '../nnve/config.js';
import { AuthConfigSchema, TlsClientSchema } from '../auth/config.js';
import { parseTlsUrl } from '../link/tls.js';

const mac = z.string().refine(isMac, 'not a MAC address');

export const UplinkSchema = z
  .object({
    name: z.string().min(1).max(15),
    mac: mac.optional(),
    /**
     * The nNVE's unicast MAC, or a group address bridges forward (default: direct link). A
     * unicast MAC also pins the nNVE from the start: ECP from any other source is dropped.
     */
    peer: mac.optional(),
    evb: EvbSettingsSchema.optional(),
    groupAddresses: z.array(mac).optional(),
    ecpMinGapUs: z.number().int().min(0).max(1_000_000).optional(),
    maxTlvsPerPdu: z.number().int().min(1).max(100).optional(),
    /** L3 transport: `tls://HOST:PORT` of the nNVE (credentials in the `tls` section). */
    connect: z
      .string()
      .refine((u) => {
        try {
          parseTlsUrl(u);
          return true;
        } catch {
          return false;
        }
      }, 'expected tls://HOST:PORT')
      .optional(),
  })
  .strict();

export const VnSchema = z
  .object({
    vni: z.number().int().min(1).max(0xffffff),
    /** Active-standby (one uplink Activated, the others pre-associated with RR) or active-active. */
    mode: z.enum(['active-standby', 'active-active']).optional(),
    /** Uplinks serving this VN, in order of preference (default: all). */
    uplinks: z.array(z.string().min(1)).min(1).optional(),
  })
  .strict();

/** Local tags applied to an Open vSwitch (access port `tag=`). */
export const VswitchSchema = z
  .object({
    type: z.literal('ovs').default('ovs'),
    /** OVS database, e.g. unix:/run/openvswitch/db.sock (default: ovs-vsctl's). */
    db: z.string().min(1).optional(),
    vsctl: z.string().min(1).optional(),
    /** VLAN of a port without a local tag (4095 is never forwarded). */
    parkVid: z.number().int().min(0).max(4095).default(4095),
    noWait: z.boolean().optional(),
    retryForMs: z.number().int().min(0).max(600_000).optional(),
  })
  .strict();

export const TnveConfigSchema = z
  .object({
    uplinks: z.array(UplinkSchema).min(1, 'at least one --uplink'),
    stateDir: z.string().min(1),
    api: z.string().default('127.0.0.1:8741'),
    profile: z.enum(['802.1Qbg', 'splitnve']).default('802.1Qbg'),
    evb: EvbSettingsSchema.optional(),
    /** How long an API call waits for the nNVE's answer before it fails. */
    requestTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
    /** Attempts per VDP request (each with ECP's own retransmissions). */
    maxAttempts: z.number().int().min(1).max(100).default(3),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
    /** Default multi-homing of a VN served by several uplinks. */
    multiHoming: z.enum(['active-standby', 'active-active']).default('active-standby'),
    vns: z.array(VnSchema).default([]),
    /** VSI type id -> VNI, for interfaces defined without a VNI (libvirt 802.1Qbg typeid). */
    typeVn: z
      .record(z.string().regex(/^\d+$/, 'a VSI type id'), z.number().int().min(1).max(0xffffff))
      .default({}),
    /** Default VSI Manager ID of interfaces. */
    managerId: z.string().min(1).max(34).default('splitnve'),
    /** Pre-associate with resource reservation when a VM is defined. */
    preAssociateOnDefine: z.boolean().default(false),
    /** Suspend in the plain profile: de-associate + pre-associate-RR, or keep Activated. */
    plainSuspend: z.enum(['reassociate', 'keep-associated']).default('reassociate'),
    /** First retry of a failed VDP request (default: the keep-alive period), ms. */
    retryMs: z.number().int().min(10).max(600_000).optional(),
    /** Longest retry interval, ms (default: 8 keep-alive periods, at most 60 s). */
    maxRetryMs: z.number().int().min(10).max(3_600_000).optional(),
    vswitch: VswitchSchema.optional(),
    /** PDU authentication (Req-11), see src/auth/config.ts. */
    auth: AuthConfigSchema.optional(),
    /** Credentials of tls:// uplinks. */
    tls: TlsClientSchema.optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const names = new Set(c.uplinks.map((u) => u.name));
    c.vns.forEach((v, i) => {
      for (const u of v.uplinks ?? []) {
        if (!names.has(u))
          ctx.addIssue({ code: 'custom', path: ['vns', i, 'uplinks'], message: `no uplink ${u}` });
      }
    });
  });

export type TnveConfig = z.output<typeof TnveConfigSchema>;
export type UplinkSettings = z.output<typeof UplinkSchema>;

export interface TnveFlags extends CommonFlags {
  uplink?: string[];
  multiHoming?: string;
  preAssociate?: boolean;
  ovsDb?: string;
  managerId?: string;
}

/** `IFNAME[@PEER_MAC]`, or `tls://HOST:PORT` (an uplink named tls0, tls1, ... by position). */
export function parseUplinkArg(
  text: string,
  index = 0,
): { name: string; peer?: string } | { name: string; connect: string } {
  if (text.startsWith('tls://')) {
    parseTlsUrl(text);
    return { name: `tls${index}`, connect: text };
  }
  const [name, peer] = text.split('@');
  if (!name) throw new Error(`--uplink: expected IFNAME[@PEER_MAC], got ${JSON.stringify(text)}`);
  return peer ? { name, peer } : { name };
}

export function loadTnveConfig(flags: TnveFlags): TnveConfig {
  const file = readConfigFile(flags.config);
  const merged: Record<string, unknown> = { ...file };
  if (flags.uplink && flags.uplink.length > 0) {
    const fileUplinks = (Array.isArray(file.uplinks) ? file.uplinks : []) as { name: string }[];
    merged.uplinks = flags.uplink.map((u, i) => {
      const a = parseUplinkArg(u, i);
      const same = fileUplinks.find(
        (x) =>
          x.name === a.name ||
          ('connect' in a && (x as { connect?: string }).connect === a.connect),
      );
      return { ...(same ?? {}), ...a, ...(same && 'connect' in a ? { name: same.name } : {}) };
    });
  }
  if (flags.multiHoming !== undefined) merged.multiHoming = flags.multiHoming;
  if (flags.preAssociate !== undefined) merged.preAssociateOnDefine = flags.preAssociate;
  if (flags.managerId !== undefined) merged.managerId = flags.managerId;
  if (flags.ovsDb !== undefined)
    merged.vswitch = { ...((file.vswitch as object) ?? {}), db: flags.ovsDb };
  applyCommonFlags(merged, file, flags);
  return validateConfig(TnveConfigSchema, merged);
}
