/**
 * The VM model of the tNVE agent: what an orchestrator defines (VMs with one or more
 * interfaces = TSIs), its JSON schema, and how an interface becomes a VSI spec on an uplink:
 * GroupID/MAC/VID entries (fif 4) in the plain profile, the splitnve IP formats (0xF0 IPv4,
 * 0xF1 IPv6) when both sides run the splitnve profile and the interface has IP addresses.
 */
import { z } from 'zod';
import {
  ipv4ToString,
  ipv6ToString,
  isMac,
  normalizeMac,
  parseIpv4,
  parseIpv6,
  parseUuid,
  uuidToString,
} from '../wire/bytes.js';
import { FIF_GROUP_MAC_VID, type FilterEntry } from '../wire/filter.js';
import type { WireOptions } from '../wire/options.js';
import { managerIdFromString, VSIID_UUID } from '../wire/vdp.js';
import type { VsiSpec, VsiState } from '../vdp/types.js';

/** Lifecycle state of a VM on this hypervisor (RFC 7666 states, plus migration phases). */
export type VmState =
  /** Shut off (defined, not running): Init, or pre-associated with RR when `reserve`. */
  | 'shutoff'
  | 'running'
  /** Paused in memory: nothing changes on the nNVE. */
  | 'paused'
  /** State saved to disk: pre-associated with RR (deactivated), S=1. */
  | 'suspended'
  /** Migration destination, before the switchover: pre-associated with RR, M=1. */
  | 'incoming'
  /** Migration source, still running: Activated. */
  | 'outgoing'
  /** Migration source after the switchover: deactivated (splitnve) or de-associated (plain). */
  | 'switched'
  /** Being removed (destroy, migrate-out commit, migrate-in abort): De-Associate everywhere. */
  | 'removing';

export const VM_STATES: readonly VmState[] = [
  'shutoff',
  'running',
  'paused',
  'suspended',
  'incoming',
  'outgoing',
  'switched',
  'removing',
];

const mac = z
  .string()
  .refine(isMac, 'not a MAC address')
  .transform((m) => normalizeMac(m));

/** An IPv4 or IPv6 address, canonical text. */
export const IpSchema = z.string().transform((s, ctx) => {
  const c = canonicalIp(s);
  if (c === null) {
    ctx.addIssue({ code: 'custom', message: `not an IPv4 or IPv6 address: ${s}` });
    return z.NEVER;
  }
  return c;
});

export const UuidSchema = z.string().transform((s, ctx) => {
  const b = parseUuid(s);
  if (!b) {
    ctx.addIssue({ code: 'custom', message: `not a UUID: ${s}` });
    return z.NEVER;
  }
  return uuidToString(b);
});

export const VmNameSchema = z
  .string()
  .min(1)
  .max(200)
  // libvirt allows almost anything in a domain name; '/' would break the API's paths.
  .refine(
    (n) => !n.includes('/') && ![...n].some((c) => c.charCodeAt(0) < 0x20 || c === '\u007f'),
    {
      message: 'printable characters, no "/"',
    },
  );

export const InterfaceSchema = z
  .object({
    /** The TSI's VSI id (VSI instance id), a UUID. */
    vsiId: UuidSchema,
    /** The VN (VNI, the GroupID); default from the agent's typeId -> VN map. */
    vni: z.number().int().min(1).max(0xffffff).optional(),
    macs: z.array(mac).min(1).max(16),
    /** IP addresses of the TSI (paired with its MAC when it has exactly one). */
    ips: z.array(IpSchema).max(32).default([]),
    /** Explicit IP-MAC pairs. */
    pairs: z
      .array(z.object({ mac, ip: IpSchema }).strict())
      .max(32)
      .default([]),
    typeId: z.number().int().min(0).max(0xffffff).default(0),
    typeVersion: z.number().int().min(0).max(255).default(0),
    /** VSI Manager ID (name of at most 16 characters, or 0x + 32 hex); default from config. */
    managerId: z.string().min(1).optional(),
    /** The vswitch port of this interface (Open vSwitch port name) to tag with the local tag. */
    port: z.string().min(1).max(15).optional(),
  })
  .strict();

export type InterfaceInput = z.input<typeof InterfaceSchema>;
export type InterfaceDef = z.output<typeof InterfaceSchema>;

export const VmDefinitionSchema = z
  .object({
    interfaces: z.array(InterfaceSchema).min(1).max(32),
    /** Pre-associate with resource reservation while shut off (default: agent config). */
    reserve: z.boolean().optional(),
  })
  .strict();

export type VmDefinition = z.output<typeof VmDefinitionSchema>;

export const AddressesSchema = z
  .object({
    macs: z.array(mac).min(1).max(16).optional(),
    ips: z.array(IpSchema).max(32).optional(),
    pairs: z
      .array(z.object({ mac, ip: IpSchema }).strict())
      .max(32)
      .optional(),
  })
  .strict();

export type AddressesUpdate = z.output<typeof AddressesSchema>;

/** Canonical text of an IP address, or null. IPv4-mapped IPv6 stays IPv6. */
export function canonicalIp(s: string): string | null {
  const v4 = parseIpv4(s);
  if (v4) return ipv4ToString(v4);
  const v6 = s.includes(':') ? parseIpv6(s) : null;
  return v6 ? ipv6ToString(v6) : null;
}

export function isIpv4(s: string): boolean {
  return parseIpv4(s) !== null;
}

/** A resolved interface: VN and Manager ID known. */
export interface Iface extends Omit<InterfaceDef, 'vni' | 'managerId'> {
  readonly vni: number;
  readonly managerId: string;
}

export const ZERO_MAC = '00:00:00:00:00:00';

/** The (MAC, IP) addresses of an interface; IP undefined for a MAC without an address. */
export function addressesOf(i: {
  macs: readonly string[];
  ips: readonly string[];
  pairs: readonly { mac: string; ip: string }[];
}): { mac: string; ip: string | undefined }[] {
  const out: { mac: string; ip: string | undefined }[] = [];
  const seen = new Set<string>();
  const add = (m: string, ip: string | undefined): void => {
    const k = `${m}|${ip ?? ''}`;
    if (seen.has(k)) return;
    seen.add(k);
    out.push({ mac: m, ip });
  };
  for (const p of i.pairs) add(p.mac, p.ip);
  for (const ip of i.ips) add(i.macs.length === 1 ? i.macs[0]! : ZERO_MAC, ip);
  for (const m of i.macs) if (!out.some((a) => a.mac === m)) add(m, undefined);
  return out;
}

/** The most entries a VSI TLV holds (9-bit length: 25 + n·size <= 511). */
export function maxEntries(entrySize: number): number {
  return Math.floor((511 - 25) / entrySize);
}

/**
 * Filter format and entries of an interface. With `ipFormats` (splitnve on both sides) and
 * any IP address: 0xF0 when every address is IPv4, else 0xF1 with IPv4 addresses as
 * IPv4-mapped IPv6; a MAC without an address gets the unspecified address, an IP without a
 * MAC the all-zero MAC. Otherwise GroupID/MAC/VID, one entry per MAC (IPs stay local).
 * Every entry carries the VN as GroupID and the null VID: the nNVE chooses the local tag.
 */
export function filterOf(
  iface: Iface,
  ipFormats: boolean,
  wire: WireOptions,
): { filterFormat: number; entries: FilterEntry[] } {
  const addrs = addressesOf(iface);
  const hasIp = addrs.some((a) => a.ip !== undefined);
  const base = { groupId: iface.vni, ps: 0, pcp: 0, vid: 0 };
  if (!ipFormats || !hasIp) {
    const macs: string[] = [];
    for (const a of addrs) if (a.mac !== ZERO_MAC && !macs.includes(a.mac)) macs.push(a.mac);
    return { filterFormat: FIF_GROUP_MAC_VID, entries: macs.map((m) => ({ ...base, mac: m })) };
  }
  const allV4 = addrs.every((a) => a.ip === undefined || isIpv4(a.ip));
  if (allV4) {
    return {
      filterFormat: wire.ipv4FilterFormat,
      entries: addrs.map((a) => ({ ...base, mac: a.mac, ipv4: a.ip ?? '0.0.0.0' })),
    };
  }
  return {
    filterFormat: wire.ipv6FilterFormat,
    entries: addrs.map((a) => ({
      ...base,
      mac: a.mac,
      ipv6: a.ip === undefined ? '::' : isIpv4(a.ip) ? `::ffff:${a.ip}` : a.ip,
    })),
  };
}

/** Checks that an interface fits a VSI TLV in every format it may be sent in. */
export function checkInterfaceSize(iface: Iface, wire: WireOptions): string | undefined {
  for (const ip of [false, true]) {
    const f = filterOf(iface, ip, wire);
    const size =
      f.filterFormat === FIF_GROUP_MAC_VID
        ? 12
        : f.filterFormat === wire.ipv4FilterFormat
          ? 16
          : 28;
    if (f.entries.length > maxEntries(size)) {
      return `interface ${iface.vsiId}: ${f.entries.length} addresses do not fit one VSI TLV (at most ${maxEntries(size)} in this filter format)`;
    }
  }
  return undefined;
}

export function specOf(iface: Iface, ipFormats: boolean, wire: WireOptions): VsiSpec {
  const f = filterOf(iface, ipFormats, wire);
  return {
    managerId: managerIdFromString(iface.managerId),
    typeId: iface.typeId,
    typeVersion: iface.typeVersion,
    idFormat: VSIID_UUID,
    id: parseUuid(iface.vsiId)!,
    filterFormat: f.filterFormat,
    entries: f.entries,
  };
}

/** A stable text of what a spec asks for (not the VIDs the bridge assigned). */
export function specHash(s: VsiSpec): string {
  return JSON.stringify([
    Buffer.from(s.managerId).toString('hex'),
    s.typeId,
    s.typeVersion,
    s.filterFormat,
    s.entries.map((e) => [e.groupId, e.mac, e.ipv4, e.ipv6]),
  ]);
}

/** What is persisted and shown per (interface, uplink). */
export interface SlotRecord {
  /** VDP state the station last had confirmed. */
  state: VsiState;
  /** Hash of the spec the nNVE last accepted. */
  hash?: string;
  /** The local tag the nNVE assigned (while not Init). */
  vid?: number;
  /** A bridge-initiated change the agent does not fight until the next lifecycle call. */
  override?: VsiState;
}

export interface IfaceRecord extends Iface {
  slots: Record<string, SlotRecord>;
  /** The local tag last applied to the vswitch (null: parked). */
  tag?: number | null;
}

export interface VmRecord {
  name: string;
  state: VmState;
  reserve: boolean;
  interfaces: IfaceRecord[];
  /** Interfaces removed by a redefinition, de-associated before they are forgotten. */
  retired?: IfaceRecord[];
  /** Set when the nNVE changed a TSI on its own (takeover, admin) and why. */
  note?: string;
  updatedAt: number;
}
