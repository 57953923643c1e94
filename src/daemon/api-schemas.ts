/**
 * Zod schemas of what both daemons' APIs answer (OpenAPI document and response checks in the
 * tests). Objects the API builds itself are strict (an undocumented field fails the tests);
 * counters of the protocol machines are open records of numbers.
 */
import { z } from 'zod';

export const MacText = z.string().regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, 'a MAC address');

export const CountersSchema = z
  .record(z.string(), z.union([z.number(), z.array(z.number()), z.record(z.string(), z.number())]))
  .describe('counters of a protocol machine (names as in the code)');

export const TimingSchema = z
  .object({
    r: z.number().int(),
    rte: z.number().int(),
    rwd: z.number().int(),
    rka: z.number().int(),
  })
  .catchall(z.unknown())
  .describe('EVB values: R (ECP retries), RTE, RWD, RKA exponents (10 µs·2^x)');

export const NegotiatedSchema = z
  .object({
    r: z.number().int(),
    rte: z.number().int(),
    rwd: z.number().int(),
    rka: z.number().int(),
    groupId: z.boolean(),
    rr: z.boolean(),
    peerProfile: z
      .object({
        version: z.number().int(),
        auth: z.boolean(),
        ipFilters: z.boolean(),
        deactivate: z.boolean(),
      })
      .optional(),
  })
  .strict()
  .describe('EVB values agreed with the peer (max of both sides), GroupID and RR support');

export const EvbTlvSchema = z
  .object({
    bgid: z.boolean(),
    rrcap: z.boolean(),
    rrctr: z.boolean(),
    sgid: z.boolean(),
    rrreq: z.boolean(),
    rrstat: z.number().int(),
    r: z.number().int(),
    rte: z.number().int(),
    evbMode: z.number().int(),
    rolRwd: z.boolean(),
    rwd: z.number().int(),
    rolRka: z.boolean(),
    rka: z.number().int(),
  })
  .strict()
  .describe('the EVB TLV last received from the peer');

export const FilterEntrySchema = z
  .object({
    groupId: z.number().int().optional(),
    mac: z.string().optional(),
    ipv4: z.string().optional(),
    ipv6: z.string().optional(),
    ps: z.number().int(),
    pcp: z.number().int(),
    vid: z.number().int(),
  })
  .strict()
  .describe('a filter entry: GroupID (VNI), MAC, IP, and the VID the bridge assigned');

export const HintsSchema = z.object({ m: z.boolean().optional(), s: z.boolean().optional() });

export const LinkStatusSchema = z.object({ up: z.boolean(), reason: z.string().optional() });

export const LinkStatsSchema = z
  .object({
    rxFrames: z.number(),
    txFrames: z.number(),
    rxDropped: z.number(),
    txErrors: z.number(),
  })
  .catchall(z.unknown());

export const TsiStateSchema = z.enum(['Init', 'Associated', 'Activated']);

export const VdpStateSchema = z.enum(['init', 'pre-associated', 'pre-associated-rr', 'associated']);

/** The `store` part of health (src/daemon/store-guard.ts). */
const StoreHealthSchema = z
  .object({
    ok: z.boolean(),
    since: z.string().optional().describe('when writes began to fail (ISO 8601)'),
    error: z.string().optional(),
  })
  .strict()
  .describe('false while state store writes fail: what would add state is refused');

/** Health of either daemon: alive, and whether its state store can be written. */
export const HealthSchema = z.object({
  ok: z.literal(true),
  uptimeS: z.number().int(),
  store: StoreHealthSchema,
});

const AuthFailuresSchema = z.record(z.string(), z.number().int());

/** GET /v1/auth (src/auth/daemon.ts): policy, keys, failures, TLS links. */
export const AuthViewSchema = z
  .object({
    mode: z.enum(['require', 'prefer', 'off']),
    modes: z.record(z.string(), z.string()),
    keys: z.record(z.string(), z.number()).optional(),
    peersWithSequence: z.number().int(),
    totals: AuthFailuresSchema,
    authenticated: z.number().int(),
    logSuppressed: z.number().int(),
    evictedStations: z.number().int(),
    peers: z.array(
      z
        .object({
          local: z.string(),
          peer: z.string(),
          status: z.enum(['authenticated', 'unsigned', 'failed']).optional(),
          failures: AuthFailuresSchema,
          lastFailureAt: z.number().optional(),
        })
        .strict(),
    ),
    tls: z.array(
      z
        .object({
          name: z.string(),
          status: LinkStatusSchema,
          stats: LinkStatsSchema,
          listen: z.object({ host: z.string(), port: z.number().int() }).optional(),
          refused: z.number().int().optional(),
          connections: z
            .array(z.object({ station: z.string(), identity: z.string(), remote: z.string() }))
            .optional(),
          connects: z.number().int().optional(),
        })
        .strict(),
    ),
  })
  .strict()
  .describe('PDU authentication (docs/SECURITY.md): mode, keys, failures by reason and peer, TLS');
