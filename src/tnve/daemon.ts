/**
 * `splitnve tnve`: the hypervisor agent. It runs the StationNode (VDP station on every uplink)
 * on real links, persists what the orchestrator asked for before asking the nNVE, and answers
 * each request only when the nNVE did (or it failed), so an orchestrator can refuse to run a
 * VM whose association failed.
 */
import type { FastifyInstance } from 'fastify';
import { seededRandom } from '../core/random.js';
import { createApi, parseListen } from '../daemon/api.js';
import { NodeDriver } from '../daemon/driver.js';
import { createLogger, type Logger } from '../daemon/logger.js';
import type { Link } from '../link/link.js';
import { StationNode, type StationNodeEvent, type UplinkConfig } from '../node/station-node.js';
import type { StationEvent } from '../vdp/station.js';
import {
  stateOfMode,
  type Hints,
  type VsiMode,
  type VsiSpec,
  type VsiState,
} from '../vdp/types.js';
import { vsiKey } from '../wire/vdp.js';
import type { TnveConfig, UplinkSettings } from './config.js';
import { logStationEvent } from './events.js';
import { registerTnveRoutes } from './routes.js';
import { TnveStore } from './store.js';
import { DaemonSecurity, openTlsUplink, registerAuthRoutes } from '../auth/daemon.js';

export interface TnveOptions {
  readonly openLink?: (uplink: UplinkSettings) => Promise<Link> | Link;
  readonly log?: Logger;
  readonly seed?: number;
}

export type RequestResult = Extract<StationEvent, { type: 'request-result' }> & { uplink: string };

async function openRaw(u: UplinkSettings): Promise<Link> {
  const { openRawLink } = await import('../link/raw.js');
  const groups = [...(u.groupAddresses ?? [])];
  if (u.peer && (parseInt(u.peer.slice(0, 2), 16) & 1) === 1) groups.push(u.peer);
  if (u.evb?.destination) groups.push(u.evb.destination);
  return openRawLink(u.name, { allowDown: true, groups });
}

export function uplinkConfig(cfg: TnveConfig, u: UplinkSettings, mac: string): UplinkConfig {
  const evb = { ...cfg.evb, ...u.evb };
  const plain = cfg.profile === '802.1Qbg';
  const maxTlvs = u.maxTlvsPerPdu ?? (plain ? 1 : undefined);
  return {
    name: u.name,
    mac: u.mac ?? mac,
    ...(u.peer ? { peer: u.peer } : {}),
    evb: {
      values: { r: evb.r ?? 3, rte: evb.rte ?? 8, rwd: evb.rwd ?? 20, rka: evb.rka ?? 20 },
      ...(evb.groupId !== undefined ? { groupId: evb.groupId } : {}),
      ...(evb.rr !== undefined ? { rr: evb.rr } : {}),
      ...(evb.destination ? { destination: evb.destination } : {}),
      ...(evb.txIntervalS ? { txIntervalUs: Math.round(evb.txIntervalS * 1e6) } : {}),
    },
    groupAddresses: u.groupAddresses ?? [],
    ecpMinGapUs: u.ecpMinGapUs ?? (plain ? 5000 : 0),
    ...(maxTlvs ? { maxTlvsPerPdu: maxTlvs } : {}),
  };
}

export class TnveDaemon {
  readonly log: Logger;
  readonly node: StationNode;
  readonly driver: NodeDriver<StationNodeEvent>;
  readonly api: FastifyInstance;
  readonly startedAt = Date.now();
  readonly counters = { events: new Map<string, number>(), storeErrors: 0 };
  private readonly waiters = new Map<string, (r: RequestResult) => void>();
  private nextId = 0;
  private stopped = false;

  private constructor(
    public cfg: TnveConfig,
    readonly links: Map<string, Link>,
    readonly store: TnveStore,
    log: Logger,
    seed: number,
    /** Authentication (key store, counters), TLS links. */
    readonly security: DaemonSecurity,
  ) {
    this.log = log;
    this.node = new StationNode({
      uplinks: cfg.uplinks.map((u) => uplinkConfig(cfg, u, links.get(u.name)!.mac)),
      profile: cfg.profile,
      random: seededRandom(seed),
      maxAttempts: cfg.maxAttempts,
      ...(security.hooks ? { auth: security.hooks } : {}),
    });
    this.driver = new NodeDriver<StationNodeEvent>(this.node, links, (events) =>
      this.onEvents(events),
    );
    this.api = createApi();
    registerTnveRoutes(this.api, this);
    registerAuthRoutes(this.api, security);
  }

  static async start(cfg: TnveConfig, opts: TnveOptions = {}): Promise<TnveDaemon> {
    const log = opts.log ?? createLogger({ name: 'tnve', level: cfg.logLevel });
    const links = new Map<string, Link>();
    const security = new DaemonSecurity(log, cfg.auth, {
      role: 'station',
      stateDir: cfg.stateDir,
      uplinkMac: (name) => {
        const u = cfg.uplinks.find((x) => x.name === name);
        return u?.mac?.toLowerCase().replace(/-/g, ':') ?? links.get(name)?.mac;
      },
    });
    try {
      for (const u of cfg.uplinks) {
        const link = u.connect
          ? openTlsUplink({ name: u.name, connect: u.connect, mac: u.mac }, cfg.tls, log, security)
          : await (opts.openLink ?? openRaw)(u);
        links.set(u.name, link);
        log.info(
          { event: 'uplink.opened', uplink: u.name, mac: link.mac, up: link.status().up },
          `uplink ${u.name} opened`,
        );
      }
    } catch (e) {
      for (const l of links.values()) await l.close();
      security.close();
      throw e;
    }
    const store = new TnveStore(cfg.stateDir);
    const d = new TnveDaemon(
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
          { event: s.up ? 'uplink.up' : 'uplink.down', uplink: name, reason: s.reason },
          `uplink ${name} ${s.up ? 'up' : 'down'}`,
        ),
      );
    }
    const now = d.driver.now();
    d.driver.start();
    d.driver.handle(d.node.start(now), now);
    // Re-assert every association held before a restart.
    const saved = store.load();
    const bridges = store.loadBridges();
    for (const name of links.keys()) {
      const items = saved
        .filter((s) => s.uplink === name)
        .map((s) => ({ spec: s.spec, state: s.state }));
      if (items.length === 0) continue;
      d.driver.handle(d.node.restore(name, items, now, bridges.get(name)), now);
    }
    log.info({ event: 'state.restored', vsis: saved.length }, `re-asserting ${saved.length} VSIs`);
    const listen = parseListen(cfg.api);
    await d.api.listen({ host: listen.host, port: listen.port });
    log.info(
      {
        event: 'daemon.started',
        api: cfg.api,
        uplinks: cfg.uplinks.map((u) => u.name),
        profile: cfg.profile,
      },
      'tnve started',
    );
    return d;
  }

  /**
   * Asks the nNVE for `mode` for a VSI on an uplink and resolves with the answer (or a timeout
   * failure). What the orchestrator wants is stored before the request leaves.
   */
  request(
    uplink: string,
    mode: VsiMode,
    spec: VsiSpec,
    hints: Hints = {},
    timeoutMs = this.cfg.requestTimeoutMs,
  ): Promise<RequestResult> {
    if (!this.links.has(uplink)) throw new Error(`no uplink ${uplink}`);
    const requestId = `api-${++this.nextId}`;
    const key = vsiKey(spec.idFormat, spec.id);
    this.store.set(uplink, key, spec, stateOfMode(mode));
    return new Promise<RequestResult>((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(requestId);
        resolve({
          type: 'request-result',
          uplink,
          key,
          requestId,
          mode,
          ok: false,
          error: 'timeout',
          message: `no answer from the nNVE on ${uplink} within ${timeoutMs} ms`,
          attempts: 0,
        });
      }, timeoutMs);
      this.waiters.set(requestId, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.driver.run((now) => ({
        outputs: this.node.request(uplink, { mode, spec, hints, requestId }, now),
        result: undefined,
      }));
    });
  }

  private onEvents(events: StationNodeEvent[]): void {
    try {
      this.store.transaction(() => {
        for (const e of events) this.persist(e);
      });
    } catch (err) {
      this.counters.storeErrors++;
      this.log.error(
        { event: 'store.error', err: (err as Error).message },
        'state store write failed',
      );
    }
    for (const e of events) {
      this.counters.events.set(e.type, (this.counters.events.get(e.type) ?? 0) + 1);
      logStationEvent(this.log, e);
      this.security.record(e);
      if (e.type === 'request-result' && e.requestId) {
        const w = this.waiters.get(e.requestId);
        if (w) {
          this.waiters.delete(e.requestId);
          w(e);
        }
      }
    }
  }

  /** Keeps the store equal to what each VSI should be after this event. */
  private persist(e: StationNodeEvent): void {
    if (e.type === 'negotiated') {
      const b = this.node.rememberable(e.uplink);
      if (b) this.store.setBridge(e.uplink, b);
      return;
    }
    if (e.type === 'request-result') {
      if (e.ok) {
        const v = this.node.vsi(e.uplink, e.key);
        if (v?.spec) this.store.set(e.uplink, e.key, v.spec, v.state);
        else if (e.mode === 4) this.store.forget(e.uplink, e.key);
      } else if (e.error !== 'superseded') {
        // The request failed: what holds is what the nNVE last confirmed.
        const v = this.node.vsi(e.uplink, e.key);
        if (v && v.state !== 'init' && v.spec) this.store.set(e.uplink, e.key, v.spec, v.state);
        else if (!v?.wanted) this.store.forget(e.uplink, e.key);
      }
      return;
    }
    if (e.type === 'vsi-state' && e.cause !== 'response') {
      this.store.set(e.uplink, e.key, e.spec, e.to);
    }
  }

  vsiState(uplink: string, key: string): VsiState {
    return this.node.vsi(uplink, key)?.state ?? 'init';
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const now = this.driver.now();
    this.driver.handle(this.node.stop(now), now);
    this.driver.stop();
    for (const [id, w] of this.waiters) {
      w({
        type: 'request-result',
        uplink: '',
        key: '',
        requestId: id,
        mode: 3,
        ok: false,
        error: 'timeout',
        message: 'agent stopping',
        attempts: 0,
      });
    }
    this.waiters.clear();
    await this.api.close();
    for (const l of this.links.values()) await l.close();
    this.store.close();
    this.security.close();
    this.log.info({ event: 'daemon.stopped' }, 'tnve stopped');
  }

  reload(cfg: TnveConfig): string[] {
    const changed: string[] = [];
    if (cfg.logLevel !== this.cfg.logLevel) {
      this.log.level = cfg.logLevel;
      changed.push('logLevel');
    }
    if (cfg.requestTimeoutMs !== this.cfg.requestTimeoutMs) changed.push('requestTimeoutMs');
    changed.push(...this.security.reload(cfg.auth));
    this.cfg = {
      ...this.cfg,
      logLevel: cfg.logLevel,
      requestTimeoutMs: cfg.requestTimeoutMs,
      ...(cfg.auth ? { auth: cfg.auth } : {}),
    };
    this.log.info({ event: 'config.reloaded', changed }, 'configuration reloaded');
    return changed;
  }
}
