/**
 * The JSON form of a VSI (API bodies, stores, logs): ids as text in their format, the Manager
 * ID as its name (or 0x + 32 hex), filter entries as in `splitnve decode`.
 */
import { z } from 'zod';
import { fromHex, isMac, parseIpv4, parseIpv6, parseUuid, toHex } from '../wire/bytes.js';
import {
  managerIdFromString,
  managerIdToString,
  vsiIdToString,
  VSIID_IPV4,
  VSIID_IPV6,
  VSIID_LOCAL,
  VSIID_MAC,
  VSIID_UUID,
} from '../wire/vdp.js';
import type { FilterEntry } from '../wire/filter.js';
import type { VsiSpec } from './types.js';

export const FilterEntrySchema = z
  .object({
    groupId: z.number().int().min(0).max(0xffffffff).optional(),
    mac: z.string().refine(isMac, 'not a MAC address').optional(),
    ipv4: z
      .string()
      .refine((s) => parseIpv4(s) !== null, 'not an IPv4 address')
      .optional(),
    ipv6: z
      .string()
      .refine((s) => parseIpv6(s) !== null, 'not an IPv6 address')
      .optional(),
    ps: z.number().int().min(0).max(1).default(0),
    pcp: z.number().int().min(0).max(7).default(0),
    vid: z.number().int().min(0).max(4095).default(0),
  })
  .strict();

export const VsiSpecSchema = z
  .object({
    managerId: z.string().min(1),
    typeId: z.number().int().min(0).max(0xffffff),
    typeVersion: z.number().int().min(0).max(255),
    idFormat: z.number().int().min(1).max(5).default(VSIID_UUID),
    id: z.string().min(1),
    filterFormat: z.number().int().min(1).max(255),
    entries: z.array(FilterEntrySchema).min(1).max(40),
  })
  .strict();

export type VsiSpecJson = z.input<typeof VsiSpecSchema>;

/** The 16 octets of a VSI id given as text in its format; throws with a clear message. */
export function vsiIdFromString(format: number, text: string): Uint8Array {
  const out = new Uint8Array(16);
  let b: Uint8Array | null;
  switch (format) {
    case VSIID_UUID:
      b = parseUuid(text);
      break;
    case VSIID_MAC:
      b = isMac(text) ? fromHex(text) : null;
      break;
    case VSIID_IPV4:
      b = parseIpv4(text);
      break;
    case VSIID_IPV6:
      b = parseIpv6(text);
      break;
    case VSIID_LOCAL:
      b = fromHex(text);
      break;
    default:
      b = null;
  }
  if (!b || b.length > 16)
    throw new Error(`VSI id ${JSON.stringify(text)} is not valid in format ${format}`);
  out.set(b, 0);
  return out;
}

export function specFromJson(j: unknown): VsiSpec {
  const s = VsiSpecSchema.parse(j);
  return {
    managerId: managerIdFromString(s.managerId),
    typeId: s.typeId,
    typeVersion: s.typeVersion,
    idFormat: s.idFormat,
    id: vsiIdFromString(s.idFormat, s.id),
    filterFormat: s.filterFormat,
    entries: s.entries.map((e) => ({
      ...e,
      ...(e.mac ? { mac: e.mac.toLowerCase().replace(/-/g, ':') } : {}),
    })),
  };
}

export function entriesJson(entries: readonly FilterEntry[]): FilterEntry[] {
  return entries.map((e) => ({ ...e }));
}

export function specToJson(s: VsiSpec): z.output<typeof VsiSpecSchema> {
  return {
    managerId: managerIdToString(s.managerId),
    typeId: s.typeId,
    typeVersion: s.typeVersion,
    idFormat: s.idFormat,
    id: s.idFormat === VSIID_LOCAL ? toHex(s.id) : vsiIdToString(s.idFormat, s.id),
    filterFormat: s.filterFormat,
    entries: entriesJson(s.entries),
  };
}
