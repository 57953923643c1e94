/**
 * `splitnve tnve`: the hypervisor agent. It runs the lifecycle agent (TnveAgent on a
 * StationNode: VDP station on every uplink) on real links, persists every VM and every VN's
 * active uplink in SQLite before the requests they cause leave, answers each lifecycle call
 * only when the nNVE did (or it failed), streams events (server-sent events), applies local
 * tags to the vswitch, and feeds link up/down into the agent's fail-over.
 */
import type { FastifyInstance } from 'fastify';
import type { ServerResponse } from 'node:http';
import { seededRandom } from '../core/random.js';
import { createApi, listenApi } from '../daemon/api.js';
import { NodeDriver } from '../daemon/driver.js';
import { createLogger, type Logger } from '../daemon/logger.js';
import type { Link } from '../link/link.js';
import { StationNode, type UplinkConfig } from '../node/station-node.js';
import type { StationEvent } from '../vdp/station.js';
import {
  stateOfMode,
  type Hints,
  type VsiMode,
  type VsiSpec,
  type VsiState,
} from '../vdp/types.js';
import { evbTimeUs } from '../wire/evb-tlv.js';
import { DEFAULT_WIRE_OPTIONS } from '../wire/options.js';
import { vsiKey } from '../wire/vdp.js';
import {
  AgentError,
  TnveAgent,
  type AgentEvent,
  type Command,
  type OpKind,
  type OpResult,
  type TnveEvent,
} from './agent.js';
import type { TnveConfig, UplinkSettings } from './config.js';
import { logAgentEvent, logStationEvent } from './events.js';
import { reconcilePlan, type ReconcileRequest } from './reconcile.js';
import { registerTnveRoutes } from './routes.js';
import { TnveStore, type StoredVsi } from './store.js';
import { StoreGuard } from '../daemon/store-guard.js';
import type { RememberedBridge } from '../node/station-node.js';
import { OvsVswitch } from './vswitch.js';
import { DaemonOps } from '../daemon/ops.js';
import { attachTnveOps, countAgentEvent } from './ops.js';
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

/** Station events worth streaming to orchestrators (not the per-frame noise). */
const STREAMED = new Set([
  'vsi-state',
  'vids',
  'keepalive-failed',
  'ecp-failed',
  'peer-up',
  'peer-down',
  'negotiated',
  'vm',
  'active-uplink',
  'uplink-health',
  'tag',
  'tsi-bridge',
  'op-result',
]);

export class TnveDaemon {
  readonly log: Logger;
  readonly agent: TnveAgent;
  readonly node: StationNode;
  readonly driver: NodeDriver<TnveEvent>;
  readonly api: FastifyInstance;
  readonly vswitch: OvsVswitch | undefined;
  readonly startedAt = Date.now();
  readonly counters = {
    events: new Map<string, number>(),
    tagsApplied: 0,
    tagErrors: 0,
  };
  /** Event log, metrics, OpenAPI, dashboard (src/daemon/ops.ts). */
  readonly ops: DaemonOps;
  private readonly waiters = new Map<string, (r: RequestResult) => void>();
  private readonly opWaiters = new Map<string, (r: OpResult) => void>();
  private readonly sse = new Set<ServerResponse>();
  private sseSeq = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  private nextId = 0;
  private stopped = false;
  /** State store failures: while failing, calls that would add state are refused (503). */
  readonly storeGuard: StoreGuard;

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
    this.ops = DaemonOps.of(log);
    this.storeGuard = new StoreGuard({
      log,
      rewrite: () => this.rewriteStore(),
      count: (type) => this.counters.events.set(type, (this.counters.events.get(type) ?? 0) + 1),
      refusing: 'VM starts, resumes, definitions, incoming migrations and associations are refused',
    });
    this.node = new StationNode({
      uplinks: cfg.uplinks.map((u) => uplinkConfig(cfg, u, links.get(u.name)!.mac)),
      profile: cfg.profile,
      random: seededRandom(seed),
      maxAttempts: cfg.maxAttempts,
      ...(security.hooks ? { auth: security.hooks } : {}),
    });
    const kaUs = evbTimeUs(cfg.evb?.rka ?? 20);
    this.agent = new TnveAgent(
      {
        profile: cfg.profile,
        uplinks: cfg.uplinks.map((u) => u.name),
        multiHoming: cfg.multiHoming,
        vns: cfg.vns,
        typeVn: cfg.typeVn,
        managerId: cfg.managerId,
        preAssociateOnDefine: cfg.preAssociateOnDefine,
        plainSuspend: cfg.plainSuspend,
        opTimeoutUs: cfg.requestTimeoutMs * 1000,
        retryUs: cfg.retryMs !== undefined ? cfg.retryMs * 1000 : kaUs,
        maxRetryUs:
          cfg.maxRetryMs !== undefined ? cfg.maxRetryMs * 1000 : Math.min(8 * kaUs, 60_000_000),
        wire: DEFAULT_WIRE_OPTIONS,
      },
      this.node,
    );
    this.driver = new NodeDriver<TnveEvent>(this.agent, links, (events) => this.onEvents(events));
    this.ops.tapDriver(this.driver);
    this.vswitch = cfg.vswitch
      ? new OvsVswitch({
          ...(cfg.vswitch.db ? { db: cfg.vswitch.db } : {}),
          ...(cfg.vswitch.vsctl ? { vsctl: cfg.vswitch.vsctl } : {}),
          parkVid: cfg.vswitch.parkVid,
          ...(cfg.vswitch.noWait !== undefined ? { noWait: cfg.vswitch.noWait } : {}),
          ...(cfg.vswitch.retryForMs !== undefined ? { retryForMs: cfg.vswitch.retryForMs } : {}),
        })
      : undefined;
    this.api = createApi();
    registerTnveRoutes(this.api, this);
    registerAuthRoutes(this.api, security);
    attachTnveOps(this);
  }

  static async start(cfg: TnveConfig, opts: TnveOptions = {}): Promise<TnveDaemon> {
    const log = new DaemonOps('tnve', 'station').wrap(
      opts.log ?? createLogger({ name: 'tnve', level: cfg.logLevel }),
    );
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
    const now = d.driver.now();
    d.driver.start();
    d.driver.handle(d.agent.start(now), now);
    // Re-assert every association held before a restart.
    const vms = store.loadVms();
    const bridges = store.loadBridges();
    d.driver.handle(d.agent.restore(vms, store.loadActives(), bridges, now), now);
    const saved = store.load().filter((s) => d.agent.ownerOf(s.key) === undefined);
    for (const name of links.keys()) {
      const items = saved
        .filter((s) => s.uplink === name)
        .map((s) => ({ spec: s.spec, state: s.state }));
      if (items.length === 0) continue;
      d.driver.handle(d.agent.feed(now, d.node.restore(name, items, now, bridges.get(name))), now);
    }
    log.info(
      { event: 'state.restored', vms: vms.length, vsis: saved.length },
      `re-asserting ${vms.length} VMs and ${saved.length} other VSIs`,
    );
    for (const [name, link] of links) {
      link.onStatus((s) => {
        log.info(
          { event: s.up ? 'uplink.up' : 'uplink.down', uplink: name, reason: s.reason },
          `uplink ${name} ${s.up ? 'up' : 'down'}`,
        );
        if (d.stopped) return;
        d.driver.run((t) => ({
          outputs: d.agent.linkStatus(name, s.up, s.reason, t),
          result: undefined,
        }));
      });
      const st = link.status();
      if (!st.up)
        d.driver.run((t) => ({
          outputs: d.agent.linkStatus(name, false, st.reason, t),
          result: undefined,
        }));
    }
    await listenApi(d.api, cfg.api);
    d.heartbeat = setInterval(() => {
      for (const res of d.sse) res.write(': keep-alive\n\n');
    }, 15000);
    d.heartbeat.unref();
    log.info(
      {
        event: 'daemon.started',
        api: cfg.api,
        uplinks: cfg.uplinks.map((u) => u.name),
        profile: cfg.profile,
        multiHoming: cfg.multiHoming,
        vswitch: cfg.vswitch ? 'ovs' : 'none',
      },
      'tnve started',
    );
    return d;
  }

  /** Runs a lifecycle call; resolves with its result when the agent completed it. */
  op(cmd: Command, timeoutMs?: number): Promise<OpResult> {
    if (this.stopped) return Promise.reject(new Error('agent stopping'));
    if (this.storeGuard.failure && ADDS_STATE.has(cmd.op)) {
      return Promise.resolve({
        opId: '',
        op: cmd.op,
        vm: cmd.name,
        ok: false,
        state: this.agent.vmView(cmd.name)?.state ?? null,
        error: 'store',
        message: this.storeRefusal(),
        failures: [],
        unconfirmed: [],
        tookUs: 0,
      });
    }
    return new Promise<OpResult>((resolve) => {
      let opId = '';
      // The agent completes every operation by its own deadline; this is a safety net.
      const limit = (timeoutMs ?? this.cfg.requestTimeoutMs) + 5000;
      const timer = setTimeout(() => {
        this.opWaiters.delete(opId);
        resolve({
          opId,
          op: cmd.op,
          vm: cmd.name,
          ok: false,
          state: null,
          error: 'timeout',
          message: `the agent did not complete ${cmd.op} within ${limit} ms`,
          failures: [],
          unconfirmed: [],
          tookUs: limit * 1000,
        });
      }, limit);
      const early: OpResult[] = [];
      this.earlyResults = early;
      try {
        opId = this.driver.run((now) => {
          const r = this.agent.command(
            cmd,
            now,
            timeoutMs !== undefined ? timeoutMs * 1000 : undefined,
          );
          return { outputs: r.outputs, result: r.opId };
        });
      } finally {
        this.earlyResults = undefined;
      }
      const done = early.find((r) => r.opId === opId);
      if (done) {
        clearTimeout(timer);
        resolve(done);
        return;
      }
      this.opWaiters.set(opId, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  }

  private storeRefusal(): string {
    return `the agent cannot write its state store (${this.storeGuard.failure?.error}): it would not re-assert this after a restart; stops and releases still work`;
  }

  /** Writes the agent's whole state (the store guard's rewrite after failed writes). */
  private rewriteStore(): void {
    const vsis: StoredVsi[] = [];
    const bridges = new Map<string, RememberedBridge>();
    for (const u of this.cfg.uplinks) {
      const b = this.node.rememberable(u.name);
      if (b) bridges.set(u.name, b);
      for (const v of this.node.vsis(u.name)) {
        if (this.agent.ownerOf(v.key) !== undefined) continue;
        // What the orchestrator wants: its pending request, else the confirmed state.
        const want = v.wanted
          ? { spec: v.wanted.spec, state: stateOfMode(v.wanted.mode) }
          : v.spec
            ? { spec: v.spec, state: v.state }
            : undefined;
        if (want && want.state !== 'init') vsis.push({ uplink: u.name, key: v.key, ...want });
      }
    }
    this.store.rewrite({
      vsis,
      bridges,
      vms: this.agent.records(),
      actives: this.agent.actives(),
    });
  }

  /** Results of the operation being started (they may complete within the call). */
  private earlyResults: OpResult[] | undefined;

  /** Reconciles the VMs with the orchestrator's view: runs the difference as lifecycle calls. */
  async reconcile(
    req: ReconcileRequest,
    timeoutMs?: number,
  ): Promise<{ name: string; ok: boolean; steps: OpResult[]; error?: string }[]> {
    const current = new Map(
      this.agent.vmNames().map((n) => [n, this.agent.vmView(n)!.state] as const),
    );
    const plan = reconcilePlan(current, req);
    return Promise.all(
      plan.map(async (p) => {
        if (p.error) return { name: p.name, ok: false, steps: [], error: p.error };
        const steps: OpResult[] = [];
        for (const c of p.commands) {
          const r = await this.op(c, timeoutMs);
          steps.push(r);
          if (!r.ok) return { name: p.name, ok: false, steps, error: r.message ?? r.error };
        }
        return { name: p.name, ok: true, steps };
      }),
    );
  }

  /**
   * Asks the nNVE for `mode` for a VSI on an uplink and resolves with the answer (or a timeout
   * failure). What the orchestrator wants is stored before the request leaves. VSIs that belong
   * to a VM are refused (use the lifecycle calls).
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
    const owner = this.agent.ownerOf(key);
    if (owner !== undefined)
      throw new AgentError('conflict', `VSI belongs to VM ${owner}: use the VM lifecycle API`);
    if (this.storeGuard.failure && mode !== 4) {
      throw new AgentError('store', this.storeRefusal());
    }
    this.storeGuard.write(() => this.store.set(uplink, key, spec, stateOfMode(mode)));
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
        outputs: this.agent.raw(uplink, { mode, spec, hints, requestId }, now),
        result: undefined,
      }));
    });
  }

  private onEvents(events: TnveEvent[]): void {
    this.storeGuard.write(() =>
      this.store.transaction(() => {
        for (const e of events) this.persist(e);
      }),
    );
    for (const e of events) {
      this.counters.events.set(e.type, (this.counters.events.get(e.type) ?? 0) + 1);
      if (isAgentEvent(e)) {
        logAgentEvent(this.log, e);
        countAgentEvent(this, e);
      } else {
        logStationEvent(this.log, e);
        this.ops.metrics.stationEvent(e);
      }
      if (STREAMED.has(e.type)) this.broadcast(e.type, e);
      this.security.record(e);
      if (e.type === 'request-result' && e.requestId) {
        const w = this.waiters.get(e.requestId);
        if (w) {
          this.waiters.delete(e.requestId);
          w(e);
        }
      } else if (e.type === 'op-result') {
        const w = this.opWaiters.get(e.opId);
        if (w) {
          this.opWaiters.delete(e.opId);
          w(e);
        } else this.earlyResults?.push(e);
      } else if (e.type === 'tag' && e.port !== undefined && this.vswitch) {
        this.applyTag(e.port, e.vid, e.vm);
      }
    }
  }

  private applyTag(port: string, vid: number | null, vm: string): void {
    void this.vswitch!.setTag(port, vid).then((o) => {
      if (o.ok) this.counters.tagsApplied++;
      else this.counters.tagErrors++;
      const level = o.ok ? 'info' : 'warn';
      this.log[level](
        {
          event: o.ok ? 'vswitch.tag' : 'vswitch.tag-failed',
          vm,
          port,
          vid: o.vid,
          attempts: o.attempts,
          ...(o.ok ? {} : { err: o.error }),
        },
        o.ok ? `port ${port} tag=${o.vid}` : `port ${port} tag=${o.vid} failed: ${o.error}`,
      );
      this.broadcast(o.ok ? 'tag-applied' : 'tag-failed', { vm, ...o });
    });
  }

  /** Keeps the store equal to what each VM and each other VSI should be after this event. */
  private persist(e: TnveEvent): void {
    switch (e.type) {
      case 'vm-record':
        if (e.record) this.store.putVm(e.record);
        else this.store.deleteVm(e.name);
        return;
      case 'active-uplink':
        this.store.setActive(e.vni, e.uplink);
        return;
      case 'negotiated':
      case 'auth': {
        // Under auth `require` the nNVE is pinned by its first authenticated PDU (after LLDP).
        if (e.type === 'auth' && e.status !== 'authenticated') return;
        const b = this.node.rememberable(e.uplink);
        if (b) this.store.setBridge(e.uplink, b);
        return;
      }
      case 'request-result': {
        if (this.agent.ownerOf(e.key) !== undefined) return;
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
      case 'vsi-state':
        if (this.agent.ownerOf(e.key) !== undefined) return;
        // Every state change, responses included: a keep-alive answered after an unsolicited
        // De-Associate brings a VSI back with no request-result to persist it.
        this.store.set(e.uplink, e.key, e.spec, e.to);
        return;
      default:
        return;
    }
  }

  /** Opens a server-sent event stream on a hijacked response. */
  addEventClient(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.write('retry: 1000\n\n');
    this.sse.add(res);
    res.on('close', () => this.sse.delete(res));
    const snapshot = { vns: this.agent.vnsView(), vms: this.agent.vmNames().length };
    res.write(`event: hello\ndata: ${JSON.stringify(snapshot)}\n\n`);
  }

  private broadcast(type: string, data: unknown): void {
    if (this.sse.size === 0) return;
    const id = ++this.sseSeq;
    const line = `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify({ ...(data as object), time: new Date().toISOString() }, jsonBytes)}\n\n`;
    for (const res of this.sse) res.write(line);
  }

  vsiState(uplink: string, key: string): VsiState {
    return this.node.vsi(uplink, key)?.state ?? 'init';
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const now = this.driver.now();
    this.driver.handle(this.agent.stop(now), now);
    this.driver.stop();
    if (this.heartbeat) clearInterval(this.heartbeat);
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
    for (const [id, w] of this.opWaiters) {
      w({
        opId: id,
        op: 'start',
        vm: '',
        ok: false,
        state: null,
        error: 'timeout',
        message: 'agent stopping',
        failures: [],
        unconfirmed: [],
        tookUs: 0,
      });
    }
    this.opWaiters.clear();
    for (const res of this.sse) res.end();
    this.sse.clear();
    this.vswitch?.close();
    await this.api.close();
    for (const l of this.links.values()) await l.close();
    this.storeGuard.close();
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
    const now = this.driver.now();
    for (const u of cfg.uplinks) {
      const agent = this.node.evbAgent(u.name);
      const link = this.links.get(u.name);
      if (!agent || !link) continue;
      const want = uplinkConfig(cfg, u, link.mac).evb!;
      const cur = agent.config;
      const next = { ...cur, ...want, values: want.values ?? cur.values };
      if (JSON.stringify(next) !== JSON.stringify(cur)) {
        this.driver.handle(this.node.reconfigureEvb(u.name, next, now), now);
        changed.push(`uplinks.${u.name}.evb`);
      }
    }
    changed.push(...this.security.reload(cfg.auth));
    this.cfg = {
      ...this.cfg,
      logLevel: cfg.logLevel,
      requestTimeoutMs: cfg.requestTimeoutMs,
      evb: cfg.evb,
      uplinks: this.cfg.uplinks.map((u) => cfg.uplinks.find((q) => q.name === u.name) ?? u),
      ...(cfg.auth ? { auth: cfg.auth } : {}),
    };
    this.log.info({ event: 'config.reloaded', changed }, 'configuration reloaded');
    return changed;
  }
}

/**
 * Lifecycle calls refused while the state store fails: what the agent would have to re-assert
 * after a restart. Stops, releases, pauses, suspends and aborts still run.
 */
const ADDS_STATE: ReadonlySet<OpKind> = new Set<OpKind>([
  'define',
  'start',
  'resume',
  'migrate-in-begin',
  'migrate-in-commit',
  'set-addresses',
]);

const AGENT_EVENTS = new Set([
  'vm',
  'vm-record',
  'active-uplink',
  'uplink-health',
  'tag',
  'tsi-bridge',
  'op-result',
]);

function isAgentEvent(e: TnveEvent): e is AgentEvent {
  return AGENT_EVENTS.has(e.type);
}

function jsonBytes(_k: string, v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  return v;
}
