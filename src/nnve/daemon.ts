/**
 * `splitnve nnve`: the external-NVE daemon.
 *
 * It runs the BridgeNode (VDP bridge on every port) on real links with the nNVE model as its
 * policy (model.ts: VN resolution through the NVA, local tags, per-VN policy), and keeps the data
 * plane (`memory` or Open vSwitch) and the NVA (`embedded` or etcd) equal to what the TSIs' states
 * mean (SPLIT-NVE.md §4).
 *
 * One protocol step (a frame, a timer, an API call) runs to completion synchronously: the model
 * decides, the BridgeNode changes state, then `onEvents` commits TSIs, stations and tags to
 * SQLite in one transaction, and only then are the step's frames (the responses) sent. The
 * step's effects are handed to two queues (effects.ts) that apply them asynchronously and in
 * order: data-plane operations, and NVA writes of the entries whose desired value changed (the
 * two run side by side). Failures are counted, logged, and repaired by retries and a reconcile
 * against the full desired state.
 *
 * Start-up after a restart: tags, TSIs and stations are reloaded (VIDs never change), the NVA is
 * started and the VNs in use are watched (so remote entries are known), then the data plane is
 * reconciled against the full desired state (idempotent: flows that are right stay untouched,
 * so forwarding continues), own NVA entries are re-published (leftovers withdrawn), and only
 * then do the VDP machines start: every reloaded VSI gets a full keep-alive period to be heard
 * from again.
 */
import type { FastifyInstance } from 'fastify';
import { seededRandom } from '../core/random.js';
import { createApi, listenApi } from '../daemon/api.js';
import { NodeDriver } from '../daemon/driver.js';
import { createLogger, type Logger } from '../daemon/logger.js';
import type { DataPlane } from '../dataplane/dataplane.js';
import { MemoryDataPlane } from '../dataplane/memory.js';
import type { Link } from '../link/link.js';
import { BridgeNode, type BridgePortConfig, type BridgeNodeEvent } from '../node/bridge-node.js';
import { createNva, type Nva, type NvaEvent } from '../nva/index.js';
import { parseVlanRanges, type VlanRange } from '../policy/vlan-pool.js';
import { evbTimeUs } from '../wire/evb-tlv.js';
import { Reason } from '../wire/status.js';
import { StoreGuard } from '../daemon/store-guard.js';
import type { BridgePolicy } from '../vdp/bridge.js';
import { nveIdOf, type NnveConfig, type PortSettings } from './config.js';
import { DataPlaneSync, NvaSync } from './effects.js';
import { logBridgeEvent, logModelEvent } from './events.js';
import { NveModel, type Effects } from './model.js';
import { registerNnveRoutes } from './routes.js';
import { NnveStore } from './store.js';
import { DaemonOps } from '../daemon/ops.js';
import { StationDrains } from './drain.js';
import { attachNnveOps, countModelEvent } from './ops.js';
import {
  DaemonSecurity,
  openTlsPort,
  quotaPortSettings,
  registerAuthRoutes,
} from '../auth/daemon.js';
import { TagAllocator } from './tags.js';
import { join } from 'node:path';

export interface NnveOptions {
  /** Opens the link of a port (default: raw Ethernet on the interface of that name). */
  readonly openLink?: (port: PortSettings) => Promise<Link> | Link;
  readonly log?: Logger;
  /** Seed of the ECP initial sequences (default: random). */
  readonly seed?: number;
  /** Data plane to use instead of the configured one (tests). */
  readonly dataplane?: DataPlane;
  /** NVA to use instead of the configured one (tests; it must not be started yet). */
  readonly nva?: Nva;
  /** Wall clock in ms (tag holds; default Date.now). */
  readonly clock?: () => number;
  /** Network namespace to open raw ports in (default: the port's or the configuration's). */
  readonly netns?: string;
}

async function openRaw(
  cfg: NnveConfig,
  port: PortSettings,
  security: DaemonSecurity,
  netnsOverride?: string,
): Promise<Link> {
  const netns = netnsOverride ?? port.netns ?? cfg.netns;
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

/** Refuses new associations (reason 2, not hard) while the state store cannot be written. */
function refuseWhileStoreFails(
  inner: BridgePolicy,
  failure: () => { error: string } | undefined,
): BridgePolicy {
  return {
    decide(req) {
      const f = failure();
      if (!f) return inner.decide(req);
      return {
        accept: false,
        reason: Reason.InsufficientResources,
        hard: false,
        message: `the nNVE cannot write its state store (${f.error}): no new association until it can`,
      };
    },
    released: (port, station, vsi) => inner.released?.(port, station, vsi),
  };
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

async function createDataPlane(cfg: NnveConfig): Promise<DataPlane> {
  if (cfg.dataplane === 'memory') return new MemoryDataPlane();
  const { OvsDataPlane } = await import('../dataplane/ovs.js');
  const o = cfg.ovs!;
  return new OvsDataPlane({
    bridge: o.bridge,
    localIp: cfg.underlayIp!,
    ports: cfg.ports.map((p) => p.name),
    ...(o.rundir ? { rundir: o.rundir } : {}),
    ...(o.dbSocket ? { dbSocket: o.dbSocket } : {}),
    ...(o.tunnelPort ? { tunnelPort: o.tunnelPort } : {}),
    ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
  });
}

function configuredNva(cfg: NnveConfig, log: Logger): Nva {
  if (cfg.nva === 'etcd') {
    const e = cfg.etcd!;
    return createNva({
      driver: 'etcd',
      hosts: e.endpoints,
      ...(e.prefix ? { prefix: e.prefix } : {}),
      ...(e.leaseTtlS ? { leaseTtlSec: e.leaseTtlS } : {}),
      ...(e.callTimeoutMs ? { callTimeoutMs: e.callTimeoutMs } : {}),
      ...(e.writeTimeoutMs ? { writeTimeoutMs: e.writeTimeoutMs } : {}),
      logger: log,
    });
  }
  return createNva({
    driver: 'embedded',
    path: cfg.embedded?.path ?? join(cfg.stateDir, 'nva.sqlite'),
    ...(cfg.embedded?.shared !== undefined ? { shared: cfg.embedded.shared } : {}),
    logger: log,
  });
}

export class NnveDaemon {
  readonly log: Logger;
  readonly node: BridgeNode;
  readonly model: NveModel;
  readonly tags: TagAllocator;
  readonly driver: NodeDriver<BridgeNodeEvent>;
  readonly dpSync: DataPlaneSync;
  readonly nvaSync: NvaSync;
  readonly api: FastifyInstance;
  readonly nveId: string;
  readonly vtep: string;
  readonly startedAt = Date.now();
  readonly counters = { events: new Map<string, number>() };
  /** Event log, metrics, OpenAPI, dashboard (src/daemon/ops.ts). */
  readonly ops: DaemonOps;
  readonly drains: StationDrains;
  readonly clock: () => number;
  /** VNs whose watch is loading (their entries count as older than local activations). */
  private readonly loading = new Set<number>();
  private holdTimer: NodeJS.Timeout | undefined;
  private holdAt: number | undefined;
  /** State store failures: new associations are refused while it is failing. */
  readonly storeGuard: StoreGuard;
  private stopped = false;
  private ready = false;
  private unsubscribe: (() => void) | undefined;

  private constructor(
    public cfg: NnveConfig,
    readonly links: Map<string, Link>,
    readonly store: NnveStore,
    readonly dp: DataPlane,
    readonly nva: Nva,
    log: Logger,
    seed: number,
    /** Authentication (key store, counters), TLS links. */
    readonly security: DaemonSecurity,
    clock: () => number,
  ) {
    this.log = log;
    this.ops = DaemonOps.of(log);
    this.storeGuard = new StoreGuard({
      log,
      rewrite: () => this.rewriteStore(),
      count: (type) => this.counters.events.set(type, (this.counters.events.get(type) ?? 0) + 1),
      refusing: 'new associations are refused (reason 2)',
    });
    this.drains = StationDrains.inStateDir(cfg.stateDir);
    this.clock = clock;
    this.nveId = nveIdOf(cfg);
    this.vtep = cfg.underlayIp ?? '127.0.0.1';
    const segments = new Map(cfg.ports.map((p) => [p.name, p.segment ?? p.name]));
    const pools = new Map<string, VlanRange[]>();
    for (const p of cfg.ports) {
      const seg = p.segment ?? p.name;
      if (!pools.has(seg)) pools.set(seg, parseVlanRanges(p.vlanPool ?? cfg.vlanPool));
    }
    const global = parseVlanRanges(cfg.vlanPool);
    this.tags = new TagAllocator({
      pool: (seg) => pools.get(seg) ?? global,
      holdMs: Math.round(cfg.tagHoldS * 1000),
    });
    this.model = new NveModel({
      segmentOf: (port) => segments.get(port) ?? port,
      tags: this.tags,
      vns: nva,
      autoCreateVn: cfg.vnAutoCreate,
      self: this.nveId,
      vtep: this.vtep,
      clock,
    });
    this.node = new BridgeNode({
      ports: cfg.ports.map((p) => ({
        ...bridgePortConfig(cfg, p, links.get(p.name)!.mac),
        ...quotaPortSettings(cfg.quotas),
        ...(p.maxStations ? { maxStations: p.maxStations } : {}),
      })),
      profile: cfg.profile,
      policy: refuseWhileStoreFails(this.drains.wrap(this.model), () => this.storeGuard.failure),
      random: seededRandom(seed),
      ...(security.hooks ? { auth: security.hooks } : {}),
    });
    this.driver = new NodeDriver<BridgeNodeEvent>(this.node, links, (events, now) =>
      this.onEvents(events, now),
    );
    this.ops.tapDriver(this.driver);
    const elog = {
      debug: (o: object, m?: string) => log.debug(o, m),
      info: (o: object, m?: string) => log.info(o, m),
      warn: (o: object, m?: string) => log.warn(o, m),
      error: (o: object, m?: string) => log.error(o, m),
    };
    this.dpSync = new DataPlaneSync(dp, () => this.model.desiredDataPlane(), elog, {
      reconcileIntervalMs: Math.round(cfg.reconcileIntervalS * 1000),
    });
    this.nvaSync = new NvaSync(nva, (k) => this.model.ownEntry(k), elog, {
      loading: (vni, on) => (on ? this.loading.add(vni) : this.loading.delete(vni)),
    });
    this.api = createApi();
    registerNnveRoutes(this.api, this);
    registerAuthRoutes(this.api, security);
    attachNnveOps(this);
  }

  static async start(cfg: NnveConfig, opts: NnveOptions = {}): Promise<NnveDaemon> {
    const log = new DaemonOps('nnve', 'bridge').wrap(
      opts.log ?? createLogger({ name: 'nnve', level: cfg.logLevel }),
    );
    const t0 = performance.now();
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
    // Checkpoint failures (a worker thread) are counted as store errors once the daemon exists.
    const made: { daemon?: NnveDaemon } = {};
    const store = new NnveStore(cfg.stateDir, {
      onError: (e) => {
        if (made.daemon) made.daemon.storeGuard.errors++;
        log.error(
          { event: 'store.checkpoint-error', err: e.message },
          'state store checkpoint failed',
        );
      },
    });
    const dp = opts.dataplane ?? (await createDataPlane(cfg));
    const nva = opts.nva ?? configuredNva(cfg, log);
    const clock = opts.clock ?? Date.now;
    const d = new NnveDaemon(
      cfg,
      links,
      store,
      dp,
      nva,
      log,
      opts.seed ?? Math.floor(Math.random() * 2 ** 31),
      security,
      clock,
    );
    made.daemon = d;
    try {
      await d.boot(t0);
    } catch (e) {
      await d.abort();
      throw e;
    }
    return d;
  }

  private async boot(t0: number): Promise<void> {
    const { cfg, log, store, links } = this;
    for (const [name, link] of links) {
      link.onStatus((s) =>
        log.info(
          { event: s.up ? 'port.up' : 'port.down', port: name, reason: s.reason },
          `port ${name} ${s.up ? 'up' : 'down'}`,
        ),
      );
    }
    // 1. Reload what was committed before a restart: tags first, then the TSIs holding them.
    const tsis = store.loadTsis().filter((t) => links.has(t.port));
    const stations = store.loadStations();
    const tagConflicts = this.tags.restore(store.loadTags(), this.clock());
    const conflicts = this.model.restore(tsis) + tagConflicts.length;
    this.tags.expire(this.clock());
    store.applyTags(this.tags.takeDirty());
    const restored = this.model.takeEffects();
    for (const ev of restored.events) logModelEvent(log, ev);
    log.info(
      {
        event: 'state.restored',
        tsis: tsis.length,
        stations: stations.length,
        tags: this.tags.list().length,
        conflicts,
      },
      `restored ${tsis.length} TSIs, ${stations.length} stations, ${this.tags.list().length} tags`,
    );

    // 2. The NVA: register, create configured VNs, watch the VNs in use.
    this.unsubscribe = this.nva.onEvent((e) => this.onNvaEvent(e));
    await this.nva.start({ id: this.nveId, vtep: this.vtep });
    for (const vn of cfg.vns) await this.nva.putVn(vn, { ifAbsent: true });
    const orphans: number[] = [];
    for (const vni of this.model.vnisInUse()) {
      if (this.nva.getVn(vni)) continue;
      if (cfg.vnAutoCreate) this.nvaSync.createVn(vni);
      else orphans.push(vni);
    }
    await Promise.all([...restored.watch].map((vni) => this.nvaSync.watch(vni, true)));
    const tNva = performance.now();

    // 3. The data plane: adopt what is installed, then make it exactly the desired state.
    await this.dp.start();
    await this.dpSync.start();
    const tDp = performance.now();

    // 4. Own NVA entries: publish what the TSIs mean and the NVA does not hold as such (after
    //    a restart on the embedded NVA, nothing: re-writing 100k unchanged entries delayed the
    //    restarted nNVE's answers by seconds), withdraw leftovers.
    const entryText = (e: { kind: string; ips: readonly string[] }): string =>
      `${e.kind} ${[...e.ips].sort().join(' ')}`;
    const held = new Map(this.nva.ownEntries().map((e) => [`${e.vni}|${e.mac}`, entryText(e)]));
    const changed: string[] = [];
    for (const e of this.model.ownEntries()) {
      const k = `${e.vni}|${e.mac}`;
      if (held.get(k) !== entryText(e)) changed.push(k);
      held.delete(k);
    }
    this.nvaSync.changed([...held.keys(), ...changed]);
    this.ready = true;

    // 5. The protocol.
    const now = this.driver.now();
    const outs = [...this.node.restore(tsis, now, stations), ...this.node.start(now)];
    this.driver.start();
    this.driver.handle(outs, now);
    for (const vni of orphans) this.deassociateVn(vni, 'vn-unknown');
    this.armHold();

    await listenApi(this.api, cfg.api);
    const addr = this.api.server.address();
    log.info(
      {
        event: 'daemon.started',
        api: cfg.api,
        apiPort: typeof addr === 'object' && addr ? addr.port : undefined,
        ports: cfg.ports.map((p) => p.name),
        profile: cfg.profile,
        nve: this.nveId,
        vtep: this.vtep,
        dataplane: this.dp.kind,
        nva: this.nva.kind,
        startMs: Math.round(performance.now() - t0),
        nvaReadyMs: Math.round(tNva - t0),
        dataplaneReadyMs: Math.round(tDp - t0),
      },
      'nnve started',
    );
  }

  /** Undoes a failed start. */
  private async abort(): Promise<void> {
    this.stopped = true;
    this.driver.stop();
    this.unsubscribe?.();
    this.nvaSync.close();
    await this.dpSync.close().catch(() => undefined);
    await this.nva.close().catch(() => undefined);
    await this.dp.close().catch(() => undefined);
    await this.api.close().catch(() => undefined);
    for (const l of this.links.values()) await l.close();
    this.store.close();
    this.security.close();
  }

  private onEvents(events: BridgeNodeEvent[], _now: number): void {
    this.model.applyEvents(events);
    const fx = this.model.takeEffects();
    this.commit(() =>
      this.store.apply(events, () => this.node.rememberable(), this.tags.takeDirty()),
    );
    for (const e of events) {
      this.counters.events.set(e.type, (this.counters.events.get(e.type) ?? 0) + 1);
      logBridgeEvent(this.log, e);
      this.ops.metrics.bridgeEvent(e);
      this.security.record(e);
    }
    this.applyEffects(fx);
  }

  private onNvaEvent(e: NvaEvent): void {
    const initial = e.type === 'entry-set' && this.loading.has(e.entry.vni);
    this.model.onNvaEvent(e, initial);
    if (e.type === 'vn-deleted' && this.ready && !this.stopped) {
      this.log.info({ event: 'vn.deleted', vni: e.vni }, `VN ${e.vni} deleted in the NVA`);
      this.deassociateVn(e.vni, 'vn-deleted');
    }
    const fx = this.model.takeEffects();
    this.commit(() => this.store.applyTags(this.tags.takeDirty()));
    this.applyEffects(fx);
  }

  /** Bridge-initiated De-Associate of every VSI of a VN, on every station. */
  deassociateVn(vni: number, why: string): number {
    let count = 0;
    for (const s of this.model.stationsOfVn(vni)) {
      count += this.driver.run((now) => {
        const r = this.node.deassociate({ port: s.port, station: s.station, vni }, now);
        return { outputs: r.outputs, result: r.count };
      });
    }
    this.log.info(
      { event: 'admin.deassociate-vn', vni, why, count },
      `de-associated ${count} VSI(s) of VN ${vni}`,
    );
    return count;
  }

  private applyEffects(fx: Effects): void {
    for (const ev of fx.events) {
      this.counters.events.set(ev.type, (this.counters.events.get(ev.type) ?? 0) + 1);
      logModelEvent(this.log, ev);
      countModelEvent(this, ev);
    }
    if (this.stopped) return;
    for (const vni of fx.createVn) this.nvaSync.createVn(vni);
    for (const vni of fx.watch) void this.nvaSync.watch(vni, true);
    for (const vni of fx.unwatch) void this.nvaSync.watch(vni, false);
    // Data plane and NVA in parallel: an NVE that sends here before this data plane has the
    // endpoint floods it to the VN's ports (delivered); a migration converges sooner.
    void this.dpSync.push(fx.dp);
    if (fx.entries.size > 0) this.nvaSync.changed(fx.entries);
    this.armHold();
  }

  /** Releases tags whose hold ended, at the next such moment. */
  private armHold(): void {
    if (this.stopped) return;
    const at = this.tags.nextExpiry();
    if (at === this.holdAt) return;
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    this.holdAt = at;
    if (at === undefined) return;
    this.holdTimer = setTimeout(
      () => {
        this.holdTimer = undefined;
        this.holdAt = undefined;
        this.tags.expire(this.clock());
        this.commit(() => this.store.applyTags(this.tags.takeDirty()));
        this.applyEffects(this.model.takeEffects());
      },
      Math.min(2 ** 31 - 1, Math.max(0, at - this.clock())),
    );
    this.holdTimer.unref();
  }

  /**
   * One state store write. The step's state is committed before its frames leave; when the
   * write fails, this step's answers still go (the state is already in memory), but from then
   * on the policy refuses every new association (reason 2) and the whole state is rewritten
   * until that works (src/daemon/store-guard.ts).
   */
  private commit(write: () => void): void {
    if (this.storeGuard.failure) this.tags.takeDirty(); // the rewrite covers them
    this.storeGuard.write(write);
  }

  /** Writes the whole state (the store guard's rewrite after failed writes). */
  private rewriteStore(): void {
    this.tags.takeDirty();
    this.store.rewrite(
      this.node.vsis().map((v) => ({ port: v.port, station: v.station, vsi: v.vsi })),
      this.node.rememberable(),
      this.tags.list().map((t) => ({
        segment: t.segment,
        vni: t.vni,
        vid: t.vid,
        heldUntil: t.heldUntil,
      })),
    );
  }

  /** Keep-alive expiry of a VSI, from negotiated values (for views). */
  expiryUs(rka: number, r: number, rte: number): number {
    return Math.round(1.5 * ((2 * r + 1) * evbTimeUs(rte) + evbTimeUs(rka)));
  }

  /** Resolves when every queued effect has been applied (tests, `ctl`). */
  async settled(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      await this.dpSync.idle();
      await this.nvaSync.idle();
    }
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
    const fixed = [
      'vlanPool',
      'stateDir',
      'api',
      'profile',
      'dataplane',
      'ovs',
      'nva',
      'etcd',
      'embedded',
      'underlayIp',
      'nveId',
      'tagHoldS',
      'vnAutoCreate',
    ] as const;
    const unchangeable: string[] = fixed.filter(
      (k) => JSON.stringify(cfg[k]) !== JSON.stringify(this.cfg[k]),
    );
    if (
      JSON.stringify(cfg.ports.map((p) => p.name)) !==
      JSON.stringify(this.cfg.ports.map((p) => p.name))
    ) {
      unchangeable.push('ports');
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
    const now = this.driver.now();
    this.driver.handle(this.node.stop(now), now);
    this.stopped = true;
    this.driver.stop();
    if (this.holdTimer) clearTimeout(this.holdTimer);
    // A last try to leave the store with what was answered.
    this.storeGuard.close();
    await this.api.close();
    for (const l of this.links.values()) await l.close();
    // Let queued effects finish (bounded), then leave the data plane as it is.
    await Promise.race([this.settled(), new Promise((r) => setTimeout(r, 2000).unref())]);
    this.unsubscribe?.();
    this.nvaSync.close();
    await this.dpSync.close();
    await this.nva
      .close()
      .catch((e: Error) =>
        this.log.warn({ event: 'nva.close-failed', err: e.message }, 'NVA close failed'),
      );
    await this.dp
      .close()
      .catch((e: Error) =>
        this.log.warn(
          { event: 'dataplane.close-failed', err: e.message },
          'data plane close failed',
        ),
      );
    this.store.close();
    this.security.close();
    this.log.info({ event: 'daemon.stopped' }, 'nnve stopped');
  }
}
