/**
 * The `auth` section of the nNVE and tNVE configuration (Req-11), shared by both daemons:
 *
 * ```json
 * "auth": {
 *   "mode": "require",                 // require | prefer | off (default require)
 *   "modes": { "swp2": "prefer" },     // per port (nNVE) or uplink (tNVE)
 *   "keyDir": "/etc/splitnve/keys",    // files <station MAC with dashes>.<key id>.key
 *   "keys": [{ "station": "02:00:00:00:aa:01", "keyId": 1, "keyFile": "/etc/.../hv1.key" }]
 * }
 * ```
 *
 * A key file holds the key as hex (at least 16 octets, at most 64), nothing else but
 * whitespace; it must belong to the daemon's user and must not be readable or writable by the
 * group or others (like an ssh private key). On the tNVE `station` is the uplink's own MAC and
 * may be left out (the key then serves every uplink). At most two key ids per station are valid
 * at once (rotation). Sequences and last-accepted sequences live in `<stateDir>/auth.sqlite`.
 */
import { z } from 'zod';
import { isMac } from '../wire/bytes.js';

const mac = z.string().refine(isMac, 'not a MAC address');

export const AuthModeSchema = z.enum(['require', 'prefer', 'off']);

export const AuthKeySchema = z
  .object({
    /** Station MAC the key belongs to (tNVE: the uplink MAC; omitted: every uplink). */
    station: mac.optional(),
    keyId: z.number().int().min(0).max(0xffff),
    keyFile: z.string().min(1),
  })
  .strict();

export const AuthConfigSchema = z
  .object({
    mode: AuthModeSchema.default('require'),
    /** Policy per port (nNVE) or uplink (tNVE); the others use `mode`. */
    modes: z.record(z.string(), AuthModeSchema).default({}),
    keyDir: z.string().min(1).optional(),
    keys: z.array(AuthKeySchema).default([]),
    /**
     * Which of two valid keys signs: `newest` (highest key id) or `peer` (the key id of the
     * last PDU accepted from that peer, else the newest). Default: nNVE `peer`, tNVE `newest`,
     * so a rotation is driven by the station once both sides hold the new key.
     */
    signWith: z.enum(['newest', 'peer']).optional(),
    /** Sequences reserved per SQLite write (a crash skips at most this many). */
    sequenceBlock: z.number().int().min(1).max(1_000_000).default(4096),
    /**
     * Refuse (as `replay`) PDUs signed longer ago than this, by the sequence (a splitnve sender
     * keeps its sequence at or above wall clock µs × 1024). Bounds how old a capture can be
     * replayed even after our sequence store was lost. Needs both ends' clocks in sync (NTP)
     * to well within it, and peers running a splitnve that follows the clock. Default: off.
     */
    maxSequenceAgeMs: z.number().int().min(10_000).optional(),
  })
  .strict();

export type AuthConfig = z.output<typeof AuthConfigSchema>;
export type AuthConfigInput = z.input<typeof AuthConfigSchema>;
export type AuthKeyConfig = z.output<typeof AuthKeySchema>;

/**
 * The nNVE's `quotas` section: per-station limits (reason 2 beyond them) and memory bounds of
 * every port (a port's own `maxStations` wins).
 */
export const QuotaConfigSchema = z
  .object({
    /** Most VSIs per station. */
    maxVsisPerStation: z.number().int().min(1).optional(),
    /** Sustained VDP requests per second per station (keep-alives and De-Associates are free). */
    requestsPerSecond: z.number().min(0.001).optional(),
    /** Requests at once per station (default max(1, requestsPerSecond)). */
    requestBurst: z.number().int().min(1).optional(),
    /** Most stations per port (default 4096). */
    maxStations: z.number().int().min(1).optional(),
    /** Most stations on probation per port: not authenticated, no VSI (default 1024). */
    maxUnknownStations: z.number().int().min(1).optional(),
    /** Most LLDP/EVB peers per port (default 4096). */
    maxEvbPeers: z.number().int().min(1).optional(),
    /**
     * With station keys, a raw port reads the keyed stations from a socket of their own and at
     * most this many frames per second from other sources (0: no limit; default 20000).
     */
    unknownFramesPerSecond: z.number().int().min(0).optional(),
  })
  .strict();

export type QuotaConfig = z.output<typeof QuotaConfigSchema>;

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'expected HOST:PORT');

/**
 * The nNVE's `tls` section: one port whose stations connect over TLS 1.3 (`--listen-tls`).
 * `peers` maps certificate identities (subject CN or DNS/URI subjectAltName) to station MACs.
 */
export const TlsListenSchema = z
  .object({
    /** Name of the port (it joins `ports` if not listed there). */
    port: z.string().min(1).max(15).default('tls'),
    listen: hostPort,
    /** Our MAC on that port (default: derived from `listen`, locally administered). */
    mac: mac.optional(),
    cert: z.string().min(1),
    key: z.string().min(1),
    ca: z.string().min(1),
    peers: z.array(z.object({ identity: z.string().min(1), station: mac }).strict()).default([]),
    maxConnections: z.number().int().min(1).optional(),
    handshakeTimeoutMs: z.number().int().min(100).optional(),
  })
  .strict();

export type TlsListenConfig = z.output<typeof TlsListenSchema>;

/** The tNVE's `tls` section: credentials for uplinks given as `tls://host:port`. */
export const TlsClientSchema = z
  .object({
    cert: z.string().min(1),
    key: z.string().min(1),
    ca: z.string().min(1),
    /** Name the nNVE certificate must carry (default: the host of the URL). */
    serverName: z.string().min(1).optional(),
    /** Station MAC of TLS uplinks that give none (the nNVE maps our certificate to it). */
    mac: mac.optional(),
    backoffInitialMs: z.number().int().min(10).default(250),
    backoffMaxMs: z.number().int().min(100).default(30_000),
  })
  .strict();

export type TlsClientConfig = z.output<typeof TlsClientSchema>;
