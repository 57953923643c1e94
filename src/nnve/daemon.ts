/**
 * `splitnve nnve`: the external-NVE daemon. It runs the BridgeNode (VDP bridge on every port)
 * on real links, decides with the VLAN pool policy, commits every state change to SQLite
 * before answering, logs every event, and serves the HTTP API.
 */
import type { FastifyInstance } from 'fastify';
import { seededRandom } from '../core/random.js';
import { createApi, listenApi } from '../daemon/api.js';
import { NodeDriver } from '../daemon/driver.js';
import { createLogger, type Logger } from '../daemon/logger.js';
import type { Link } from '../link/link.js';
import { BridgeNode, type BridgePortConfig, type BridgeNodeEvent } from '../node/bridge-node.js';
import { parseVlanRanges, VlanPoolPolicy } from '../policy/vlan-pool.js';
import { evbTimeUs } from '../wire/evb-tlv.js';
import type { NnveConfig, PortSettings } from './config.js';
import { registerNnveRoutes } from './routes.js';
import { NnveStore } from './store.js';
import { logBridgeEvent } from './events.js';
import { DaemonOps } from '../daemon/ops.js';
import { StationDrains } from './drain.js';
import { attachNnveOps } from './ops.js';
import {
  DaemonSecurity,
  openTlsPort,
  quotaPortSettings,
  registerAuthRoutes,
} from '../auth/daemon.js';

export interface NnveOptions {
  /** Opens the link of a port (default: raw Ethernet on the interface of that name). */
  readonly openLink?: (port: PortSettings) => Promise<Link> | Link;
  readonly log?: Logger;
  /** Seed of the ECP initial sequences (default: random). */
  readonly seed?: number;
  /** Network namespace to open raw ports in (a path or a name under /var/run/netns). */
  readonly netns?: string;
}

async function openRaw(
  cfg: NnveConfig,
  port: PortSettings,
  security: DaemonSecurity,
  netns?: string,
): Promise<Link> {
  return security.openRawPort(
    port.name,
    {
      allowDown: true,
      groups: [
        ...(port.groupAddresses ?? []),
        ...(port.evb?.destination ? [port.evb.destination] : []),
      ],
      ...(netns !== undefined ? { netns } : {}),
    },
    cfg.quotas?.unknownFramesPerSecond,
  );
}

export function bridgePortConfig(cfg: NnveConfig, p: PortSettings, mac: string): BridgePortConfig {
  const evb = { ...cfg.evb, ...p.evb };
  const plain = cfg.profile === '802.1Qbg';
  const maxTlvs = p.maxTlvsPerPdu ?? (plain ? 1 : undefined);
  return {
    name: p.name,
    mac: p.mac ?? mac,
    evb: {
      values: {
        r: evb.r ?? 3,
        rte: evb.rte ?? 8,
        rwd: evb.rwd ?? 20,
        rka: evb.rka ?? 20,
      },
      ...(evb.groupId !== undefined ? { groupId: evb.groupId } : {}),
      ...(evb.rr !== undefined ? { rr: evb.rr } : {}),
      ...(evb.destination ? { destination: evb.destination } : {}),
      ...(evb.txIntervalS ? { txIntervalUs: Math.round(evb.txIntervalS * 1e6) } : {}),
    },
    groupAddresses: p.groupAddresses ?? [],
    // lldpad processes a second ECPDU within 2 ms wrongly and one VSI TLV per PDU (Q4).
    ecpMinGapUs: p.ecpMinGapUs ?? (plain ? 5000 : 0),
    ...(maxTlvs ? { maxTlvsPerPdu: maxTlvs } : {}),
    ...(p.maxStations ? { maxStations: p.maxStations } : {}),
  };
}

export class NnveDaemon {
  readonly log: Logger;
  readonly node: BridgeNode;
  readonly policy: VlanPoolPolicy;
  readonly driver: NodeDriver<BridgeNodeEvent>;
  readonly api: FastifyInstance;
  readonly startedAt = Date.now();
  readonly counters = { events: new Map<string, number>(), storeErrors: 0 };
  /** Event log, metrics, OpenAPI, dashboard (src/daemon/ops.ts). */
  readonly ops: DaemonOps;
  readonly drains: StationDrains;
  private stopped = false;

  private constructor(
    public cfg: NnveConfig,
    readonly links: Map<string, Link>,
    readonly store: NnveStore,
    log: Logger,
    seed: number,
    /** Authentication (key store, counters), TLS links. */
    readonly security: DaemonSecurity,
  ) {
    this.log = log;
    this.ops = DaemonOps.of(log);
    this.drains = StationDrains.inStateDir(cfg.stateDir);
    const segments = new Map(cfg.ports.map((p) => [p.name, p.segment ?? p.name]));
    this.policy = new VlanPoolPolicy(
      parseVlanRanges(cfg.vlanPool),
      (port) => segments.get(port) ?? port,
    );
    this.node = new BridgeNode({
      ports: cfg.ports.map((p) => ({
        ...bridgePortConfig(cfg, p, links.get(p.name)!.mac),
        ...quotaPortSettings(cfg.quotas),
        ...(p.maxStations ? { maxStations: p.maxStations } : {}),
      })),
      profile: cfg.profile,
      policy: this.drains.wrap(this.policy),
      random: seededRandom(seed),
      ...(security.hooks ? { auth: security.hooks } : {}),
    });
    this.driver = new NodeDriver<BridgeNodeEvent>(this.node, links, (events, now) =>
      this.onEvents(events, now),
    );
    this.ops.tapDriver(this.driver);
    this.api = createApi();
    registerNnveRoutes(this.api, this);
    registerAuthRoutes(this.api, security);
    attachNnveOps(this);
  }

  static async start(cfg: NnveConfig, opts: NnveOptions = {}): Promise<NnveDaemon> {
    const log = new DaemonOps('nnve', 'bridge').wrap(
      opts.log ?? createLogger({ name: 'nnve', level: cfg.logLevel }),
    );
    const links = new Map<string, Link>();
    const security = new DaemonSecurity(log, cfg.auth, { role: 'bridge', stateDir: cfg.stateDir });
    try {
      for (const p of cfg.ports) {
        const link =
          cfg.tls && p.name === cfg.tls.port
            ? await openTlsPort(cfg.tls, log, security)
            : opts.openLink
              ? await opts.openLink(p)
              : await openRaw(cfg, p, security, opts.netns);
        links.set(p.name, link);
        log.info(
          { event: 'port.opened', port: p.name, mac: link.mac, up: link.status().up },
          `port ${p.name} opened`,
        );
      }
    } catch (e) {
      for (const l of links.values()) await l.close();
      security.close();
      throw e;
    }
    const store = new NnveStore(cfg.stateDir);
    const d = new NnveDaemon(
      cfg,
      links,
      store,
      log,
      opts.seed ?? Math.floor(Math.random() * 2 ** 31),
      security,
    );
    for (const [name, link] of links) {
      link.onStatus((s) =>
        log.info(
          { event: s.up ? 'port.up' : 'port.down', port: name, reason: s.reason },
          `port ${name} ${s.up ? 'up' : 'down'}`,
        ),
      );
    }
    // Reload what was committed before a restart: TSIs keep their VIDs.
    const tsis = store.loadTsis().filter((t) => links.has(t.port));
    const stations = store.loadStations();
    let conflicts = 0;
    for (const t of tsis) if (!d.policy.restore(t.port, t.station, t.vsi)) conflicts++;
    const now = d.driver.now();
    const outs = [...d.node.restore(tsis, now, stations), ...d.node.start(now)];
    log.info(
      { event: 'state.restored', tsis: tsis.length, stations: stations.length, conflicts },
      `restored ${tsis.length} TSIs and ${stations.length} stations`,
    );
    d.driver.start();
    d.driver.handle(outs, now);
    await listenApi(d.api, cfg.api);
    log.info(
      {
        event: 'daemon.started',
        api: cfg.api,
        ports: cfg.ports.map((p) => p.name),
        profile: cfg.profile,
      },
      'nnve started',
    );
    return d;
  }

  private onEvents(events: BridgeNodeEvent[], _now: number): void {
    try {
      this.store.apply(events, () => this.node.rememberable());
    } catch (e) {
      this.counters.storeErrors++;
      this.log.error(
        { event: 'store.error', err: (e as Error).message },
        'state store write failed',
      );
    }
    for (const e of events) {
      this.counters.events.set(e.type, (this.counters.events.get(e.type) ?? 0) + 1);
      logBridgeEvent(this.log, e);
      this.ops.metrics.bridgeEvent(e);
      this.security.record(e);
    }
  }

  /** Keep-alive expiry of a VSI, from negotiated values (for views). */
  expiryUs(rka: number, r: number, rte: number): number {
    return Math.round(1.5 * ((2 * r + 1) * evbTimeUs(rte) + evbTimeUs(rka)));
  }

  /** SIGHUP: the parts of the configuration that can change live. */
  reload(cfg: NnveConfig): string[] {
    const changed: string[] = [];
    if (cfg.logLevel !== this.cfg.logLevel) {
      this.log.level = cfg.logLevel;
      changed.push('logLevel');
    }
    const now = this.driver.now();
    for (const p of cfg.ports) {
      const agent = this.node.evbAgent(p.name);
      const link = this.links.get(p.name);
      if (!agent || !link) continue;
      const want = bridgePortConfig(cfg, p, link.mac).evb!;
      const cur = agent.config;
      const next = { ...cur, ...want, values: want.values ?? cur.values };
      if (JSON.stringify(next) !== JSON.stringify(cur)) {
        // Through the node: it re-arms the port's LLDP timer (the new TLV leaves now) and
        // applies the renegotiated values to the port's stations.
        this.driver.handle(this.node.reconfigureEvb(p.name, next, now), now);
        changed.push(`ports.${p.name}.evb`);
      }
    }
    changed.push(...this.security.reload(cfg.auth));
    const unchangeable = (['vlanPool', 'stateDir', 'api', 'profile'] as const).filter(
      (k) => JSON.stringify(cfg[k]) !== JSON.stringify(this.cfg[k]),
    );
    if (
      JSON.stringify(cfg.ports.map((p) => p.name)) !==
      JSON.stringify(this.cfg.ports.map((p) => p.name))
    ) {
      unchangeable.push('ports' as never);
    }
    this.cfg = {
      ...this.cfg,
      logLevel: cfg.logLevel,
      evb: cfg.evb,
      ...(cfg.auth ? { auth: cfg.auth } : {}),
      ports: this.cfg.ports.map((p) => cfg.ports.find((q) => q.name === p.name) ?? p),
    };
    this.log.info(
      { event: 'config.reloaded', changed, needRestart: unchangeable },
      'configuration reloaded',
    );
    return changed;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const now = this.driver.now();
    this.driver.handle(this.node.stop(now), now);
    this.driver.stop();
    await this.api.close();
    for (const l of this.links.values()) await l.close();
    this.store.close();
    this.security.close();
    this.log.info({ event: 'daemon.stopped' }, 'nnve stopped');
  }
}
