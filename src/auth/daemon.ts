/**
 * What the nNVE and tNVE daemons need for Req-11 and flood safety, in one place so that the
 * daemons themselves only construct it, hand `hooks` to their node, feed it their events and
 * call `reload` on SIGHUP:
 * - the key store (AuthHooks), the auth monitor (counting + rate-limited logging),
 * - TLS links from configuration (logging their connection events),
 * - the nNVE's quota settings per port.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../daemon/logger.js';
import type { Link } from '../link/link.js';
import type { PriorityRawLink } from '../link/priority.js';
import type { RawLinkOptions } from '../link/raw.js';
import {
  parseTlsUrl,
  readTlsCredentials,
  TlsClientLink,
  TlsServerLink,
  type TlsLinkEvent,
} from '../link/tls.js';
import type { BridgePortConfig } from '../node/bridge-node.js';
import type { AuthHooks } from '../vdp/auth.js';
import type { AuthConfig, QuotaConfig, TlsClientConfig, TlsListenConfig } from './config.js';
import { KeyStore } from './keystore.js';
import { AuthMonitor } from './monitor.js';

export class DaemonSecurity {
  readonly monitor: AuthMonitor;
  readonly keystore: KeyStore | undefined;
  /** TLS links opened from configuration (views). */
  readonly tlsLinks = new Map<string, TlsServerLink | TlsClientLink>();
  /** nNVE ports whose keyed stations have a kernel queue of their own. */
  readonly priorityLinks = new Map<string, PriorityRawLink>();

  constructor(
    private readonly log: Logger,
    auth: AuthConfig | undefined,
    opts: {
      role: 'bridge' | 'station';
      stateDir: string;
      uplinkMac?: (uplink: string) => string | undefined;
    },
  ) {
    this.monitor = new AuthMonitor({ log });
    this.keystore = auth
      ? KeyStore.open(auth, {
          role: opts.role,
          stateDir: opts.stateDir,
          ...(opts.uplinkMac ? { uplinkMac: opts.uplinkMac } : {}),
        })
      : undefined;
    if (this.keystore) {
      const c = this.keystore.config;
      log.info(
        {
          event: 'auth.loaded',
          mode: c.mode,
          modes: c.modes,
          stations: this.keystore.stats.stations,
          keys: this.keystore.stats.keys,
        },
        `PDU authentication ${c.mode}: ${this.keystore.stats.keys} keys of ${this.keystore.stats.stations} stations`,
      );
    }
  }

  /** The hooks to give the node (undefined: authentication off entirely). */
  get hooks(): AuthHooks | undefined {
    return this.keystore;
  }

  /** Counts and logs an event of the node if it is about authentication. */
  record(e: { type: string }): void {
    this.monitor.record(e);
  }

  /**
   * Opens an nNVE raw port. With station keys, a PriorityRawLink: frames of the keyed
   * stations are sorted into a socket of their own by the kernel, so a flood of made-up
   * stations cannot delay or crowd them out (see src/link/priority.ts).
   */
  async openRawPort(
    ifname: string,
    options: RawLinkOptions,
    /** Frames per second read from unknown sources (default 20000). */
    unknownBudget = 20_000,
  ): Promise<Link> {
    const stations = this.keystore?.stations() ?? [];
    if (stations.length === 0 || stations.length > 512) {
      const { RawLink } = await import('../link/raw.js');
      return new RawLink(ifname, options);
    }
    const { PriorityRawLink } = await import('../link/priority.js');
    const l = new PriorityRawLink(ifname, options, stations, unknownBudget || undefined);
    this.priorityLinks.set(ifname, l);
    this.log.info(
      { event: 'port.priority', port: ifname, stations: stations.length, unknownBudget },
      `port ${ifname}: ${stations.length} keyed stations get a receive queue of their own; other sources at most ${unknownBudget || 'unlimited'} frames/s`,
    );
    return l;
  }

  /** SIGHUP: new keys (all or nothing). Returns what changed, for the reload log line. */
  reload(auth: AuthConfig | undefined): string[] {
    if (!auth && !this.keystore) return [];
    if (!auth || !this.keystore) {
      this.log.warn(
        { event: 'auth.reload', needRestart: true },
        'turning PDU authentication on or off needs a restart',
      );
      return [];
    }
    const r = this.keystore.reload(auth);
    if (!r.ok) {
      this.log.error(
        { event: 'auth.reload-failed', err: r.error },
        `keys not reloaded (the previous keys stay): ${r.error}`,
      );
      return [];
    }
    this.log.info(
      { event: 'auth.reloaded', stations: r.stations, keys: r.keys },
      `reloaded ${r.keys} keys of ${r.stations} stations`,
    );
    const stations = this.keystore.stations();
    for (const [port, l] of this.priorityLinks) {
      try {
        if (stations.length <= 512) l.setPrioritized(stations);
      } catch (e) {
        this.log.error(
          { event: 'port.priority-failed', port, err: (e as Error).message },
          `port ${port}: keyed stations' queue not updated: ${(e as Error).message}`,
        );
      }
    }
    return ['auth'];
  }

  view(): Record<string, unknown> {
    return {
      mode: this.keystore?.config.mode ?? 'off',
      modes: this.keystore?.config.modes ?? {},
      keys: this.keystore ? { ...this.keystore.stats } : undefined,
      peersWithSequence: this.keystore?.sequences.peers ?? 0,
      ...this.monitor.view(),
      tls: [...this.tlsLinks].map(([name, l]) => ({
        name,
        status: l.status(),
        stats: l.stats(),
        ...(l instanceof TlsServerLink
          ? { listen: l.address(), refused: l.refused, connections: l.connections() }
          : { connects: l.connects }),
      })),
    };
  }

  close(): void {
    this.keystore?.close();
  }
}

/** GET /v1/auth: policy, key counts, failures per reason and per station, TLS connections. */
export function registerAuthRoutes(app: FastifyInstance, sec: DaemonSecurity): void {
  app.get('/v1/auth', async () => sec.view());
}

/** Port settings from the nNVE's `quotas` section (a port's own maxStations wins). */
export function quotaPortSettings(
  q: QuotaConfig | undefined,
): Pick<BridgePortConfig, 'maxStations' | 'maxUnknownStations' | 'maxEvbPeers' | 'quota'> {
  if (!q) return {};
  const quota = {
    ...(q.maxVsisPerStation !== undefined ? { maxVsis: q.maxVsisPerStation } : {}),
    ...(q.requestsPerSecond !== undefined ? { requestsPerSecond: q.requestsPerSecond } : {}),
    ...(q.requestBurst !== undefined ? { requestBurst: q.requestBurst } : {}),
  };
  return {
    ...(q.maxStations !== undefined ? { maxStations: q.maxStations } : {}),
    ...(q.maxUnknownStations !== undefined ? { maxUnknownStations: q.maxUnknownStations } : {}),
    ...(q.maxEvbPeers !== undefined ? { maxEvbPeers: q.maxEvbPeers } : {}),
    ...(Object.keys(quota).length > 0 ? { quota } : {}),
  };
}

/** A locally administered unicast MAC derived from the listen address (stable across restarts). */
export function derivedTlsMac(listen: string): string {
  const h = createHash('sha256').update(`splitnve tls ${listen}`).digest();
  const b = [0x02, h[0]!, h[1]!, h[2]!, h[3]!, h[4]!];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function logTlsEvent(log: Logger, link: string, e: TlsLinkEvent): void {
  switch (e.type) {
    case 'listening':
      log.info(
        { event: 'tls.listening', link, ...e },
        `TLS port ${link} listening on ${e.address}:${e.port}`,
      );
      break;
    case 'connected':
      log.info(
        { event: 'tls.connected', link, ...e },
        `TLS ${link}: ${e.identity} connected from ${e.remote}`,
      );
      break;
    case 'refused':
      log.warn(
        { event: 'tls.refused', link, ...e },
        `TLS ${link}: refused ${e.remote}: ${e.reason}`,
      );
      break;
    case 'disconnected':
      log.info(
        { event: 'tls.disconnected', link, ...e },
        `TLS ${link}: ${e.remote} gone: ${e.reason}`,
      );
      break;
    case 'frame-dropped':
      log.warn({ event: 'tls.frame-dropped', link, ...e }, `TLS ${link}: ${e.remote}: ${e.why}`);
      break;
    case 'retry':
      log.debug({ event: 'tls.retry', link, ...e }, `TLS ${link}: reconnecting in ${e.inMs} ms`);
      break;
  }
}

function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}

/** Opens the nNVE's TLS port from its `tls` section. */
export async function openTlsPort(
  t: TlsListenConfig,
  log: Logger,
  sec?: DaemonSecurity,
): Promise<Link> {
  const { host, port } = splitHostPort(t.listen);
  const link = await TlsServerLink.listen({
    name: t.port,
    mac: t.mac ?? derivedTlsMac(t.listen),
    host,
    port,
    credentials: readTlsCredentials(t),
    peers: t.peers,
    ...(t.maxConnections !== undefined ? { maxConnections: t.maxConnections } : {}),
    ...(t.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: t.handshakeTimeoutMs } : {}),
    onEvent: (e) => logTlsEvent(log, t.port, e),
  });
  sec?.tlsLinks.set(t.port, link);
  return link;
}

/** Opens a tNVE uplink given as `tls://host:port`. */
export function openTlsUplink(
  u: { name: string; connect: string; mac?: string | undefined },
  t: TlsClientConfig | undefined,
  log: Logger,
  sec?: DaemonSecurity,
): Link {
  if (!t) throw new Error(`uplink ${u.name} (${u.connect}) needs the tls section (cert, key, ca)`);
  const mac = u.mac ?? t.mac;
  if (!mac)
    throw new Error(`uplink ${u.name} (${u.connect}) needs a station MAC (uplink mac or tls.mac)`);
  const { host, port } = parseTlsUrl(u.connect);
  const link = new TlsClientLink({
    name: u.name,
    mac,
    host,
    port,
    credentials: readTlsCredentials(t),
    ...(t.serverName !== undefined ? { serverName: t.serverName } : {}),
    backoff: { initialMs: t.backoffInitialMs, maxMs: t.backoffMaxMs },
    onEvent: (e) => logTlsEvent(log, u.name, e),
  });
  sec?.tlsLinks.set(u.name, link);
  return link;
}
