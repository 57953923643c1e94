/**
 * Simulated deployments for the tNVE agent: nNVEs (BridgeNode + VLAN pool) and hypervisors
 * (TnveAgent on a StationNode with one or more uplinks), joined by simulated cables on the
 * deterministic fabric. Records every event, and checks on every bridge event that no VSI is
 * Activated on two (nNVE, port, station) places at once.
 */
import { seededRandom } from '../../src/core/random.js';
import { BridgeNode, type BridgeNodeEvent } from '../../src/node/bridge-node.js';
import { StationNode } from '../../src/node/station-node.js';
import { VlanPoolPolicy } from '../../src/policy/vlan-pool.js';
import { Fabric, type SimNode, type SimOutput } from '../../src/sim/fabric.js';
import { SimBridge } from '../../src/sim/adapters.js';
import {
  TnveAgent,
  type AgentConfig,
  type AgentOutput,
  type Command,
  type OpResult,
  type TnveEvent,
} from '../../src/tnve/agent.js';
import type { VmDefinition, VmRecord } from '../../src/tnve/model.js';
import { VmDefinitionSchema } from '../../src/tnve/model.js';
import { DEFAULT_WIRE_OPTIONS } from '../../src/wire/options.js';
import type { Profile } from '../../src/vdp/types.js';
import type { EvbValues } from '../../src/evb/agent.js';
import { evbTimeUs } from '../../src/wire/evb-tlv.js';

export const EVB: EvbValues = { r: 3, rte: 8, rwd: 14, rka: 14 };
export const KA_US = evbTimeUs(EVB.rka);

class SimAgent implements SimNode {
  constructor(
    readonly id: string,
    public agent: TnveAgent,
  ) {}
  deadline(): number | undefined {
    return this.agent.deadline();
  }
  handleTimeout(now: number): SimOutput[] {
    return this.agent.handleTimeout(now) as SimOutput[];
  }
  handleFrame(port: string, frame: Uint8Array, now: number): SimOutput[] {
    return this.agent.handleFrame(port, frame, now) as SimOutput[];
  }
}

export interface HvUplink {
  readonly name: string;
  readonly bridge: string;
  readonly port: string;
}

let macSeq = 0;
function nextMac(kind: number): string {
  macSeq++;
  return `02:00:00:${kind.toString(16).padStart(2, '0')}:${((macSeq >> 8) & 0xff).toString(16).padStart(2, '0')}:${(macSeq & 0xff).toString(16).padStart(2, '0')}`;
}

export class TnveSim {
  readonly fabric: Fabric;
  readonly bridges = new Map<string, BridgeNode>();
  readonly policies = new Map<string, VlanPoolPolicy>();
  readonly agents = new Map<string, TnveAgent>();
  readonly results = new Map<string, OpResult>();
  readonly events: { hv: string; t: number; e: TnveEvent }[] = [];
  readonly bridgeEvents: { bridge: string; t: number; e: BridgeNodeEvent }[] = [];
  readonly violations: string[] = [];
  /** Latest persisted records per hypervisor (what the daemon writes to SQLite). */
  readonly records = new Map<string, Map<string, VmRecord>>();
  private readonly activeAt = new Map<string, Set<string>>();
  private readonly bridgePorts = new Map<string, { port: string; mac: string }[]>();
  private readonly agentCfg = new Map<string, AgentConfig>();
  private readonly hvUplinks = new Map<string, { name: string; mac: string }[]>();
  private seed: number;

  constructor(seed = 1) {
    this.seed = seed;
    this.fabric = new Fabric(seed);
    this.fabric.onEvent((node, ev, now) => this.onEvent(node, ev, now));
  }

  addBridge(
    name: string,
    ports: readonly string[],
    opts: { profile?: Profile; pool?: { min: number; max: number } } = {},
  ): BridgeNode {
    const policy = new VlanPoolPolicy([opts.pool ?? { min: 100, max: 3999 }]);
    const portCfg = ports.map((p) => ({ port: p, mac: nextMac(0x0b) }));
    const b = new BridgeNode({
      ports: portCfg.map((p) => ({ name: p.port, mac: p.mac, evb: { values: EVB } })),
      profile: opts.profile ?? 'splitnve',
      policy,
      random: seededRandom(this.seed * 31 + this.bridges.size),
    });
    this.bridges.set(name, b);
    this.policies.set(name, policy);
    this.bridgePorts.set(name, portCfg);
    this.fabric.addNode(new SimBridge(name, b));
    this.fabric.deliverOutputs(name, b.start(this.fabric.now) as SimOutput[]);
    return b;
  }

  addHypervisor(
    name: string,
    uplinks: readonly HvUplink[],
    cfg: Partial<AgentConfig> = {},
  ): TnveAgent {
    const ups = uplinks.map((u) => ({ name: u.name, mac: nextMac(0x01) }));
    this.hvUplinks.set(name, ups);
    const full: AgentConfig = {
      profile: 'splitnve',
      uplinks: uplinks.map((u) => u.name),
      multiHoming: 'active-standby',
      vns: [],
      typeVn: {},
      managerId: 'sim',
      preAssociateOnDefine: false,
      plainSuspend: 'reassociate',
      opTimeoutUs: 5_000_000,
      retryUs: KA_US,
      maxRetryUs: 8 * KA_US,
      wire: DEFAULT_WIRE_OPTIONS,
      ...cfg,
    };
    this.agentCfg.set(name, full);
    const agent = this.newAgent(name, full);
    for (const u of uplinks) {
      const bp = this.bridgePorts.get(u.bridge)!.find((p) => p.port === u.port)!;
      this.fabric.addSegment({
        name: `${name}-${u.name}`,
        kind: 'link',
        attachments: [
          { node: name, port: u.name, mac: ups.find((x) => x.name === u.name)!.mac },
          { node: u.bridge, port: u.port, mac: bp.mac },
        ],
      });
    }
    this.fabric.addNode(new SimAgent(name, agent));
    this.deliver(name, agent.start(this.fabric.now));
    return agent;
  }

  private newAgent(name: string, cfg: AgentConfig, gen = 0): TnveAgent {
    const node = new StationNode({
      uplinks: this.hvUplinks
        .get(name)!
        .map((u) => ({ name: u.name, mac: u.mac, evb: { values: EVB } })),
      profile: cfg.profile,
      random: seededRandom(this.seed * 1000 + this.agents.size * 10 + gen + 7),
      maxAttempts: 3,
    });
    const a = new TnveAgent(cfg, node);
    this.agents.set(name, a);
    return a;
  }

  /** Restarts a hypervisor's agent from its persisted records (a daemon restart). */
  restartAgent(name: string, gen: number): TnveAgent {
    const old = this.agents.get(name)!;
    const remembered = new Map(
      this.agentCfg
        .get(name)!
        .uplinks.map((u) => [u, old.node.rememberable(u)] as const)
        .filter((x): x is [string, NonNullable<(typeof x)[1]>] => x[1] !== undefined),
    );
    const actives = old.actives();
    const records = [...(this.records.get(name)?.values() ?? [])];
    const a = this.newAgent(name, this.agentCfg.get(name)!, gen);
    this.fabric.replaceNode(new SimAgent(name, a));
    this.deliver(name, [
      ...a.start(this.fabric.now),
      ...a.restore(records, actives, remembered, this.fabric.now),
    ]);
    return a;
  }

  deliver(hv: string, outs: readonly AgentOutput[]): void {
    this.fabric.deliverOutputs(hv, outs as SimOutput[]);
  }

  agent(hv: string): TnveAgent {
    return this.agents.get(hv)!;
  }

  cmd(hv: string, c: Command, timeoutUs?: number): string {
    const { opId, outputs } = this.agent(hv).command(c, this.fabric.now, timeoutUs);
    this.deliver(hv, outputs);
    return `${hv}/${opId}`;
  }

  /** Runs until the operation completed (or `maxUs` passed) and returns its result. */
  op(hv: string, c: Command, maxUs = 10_000_000, timeoutUs?: number): OpResult {
    const id = this.cmd(hv, c, timeoutUs);
    return this.wait(id, maxUs);
  }

  wait(id: string, maxUs = 10_000_000): OpResult {
    const end = this.fabric.now + maxUs;
    while (!this.results.has(id) && this.fabric.now < end) this.fabric.runFor(1000);
    const r = this.results.get(id);
    if (!r) throw new Error(`operation ${id} did not complete within ${maxUs} µs`);
    return r;
  }

  run(us: number): void {
    this.fabric.runFor(us);
  }

  /** Cuts (or restores) a cable: frames are lost and both ends see the link state. */
  cable(hv: string, uplink: string, up: boolean): void {
    this.fabric.setImpairments(`${hv}-${uplink}`, up ? {} : { loss: 1 });
    this.deliver(
      hv,
      this.agent(hv).linkStatus(uplink, up, up ? undefined : 'cable cut', this.fabric.now),
    );
  }

  /** Silently loses every frame on a cable (no link-state change: keep-alives must notice). */
  blackhole(hv: string, uplink: string, on: boolean): void {
    this.fabric.setImpairments(`${hv}-${uplink}`, on ? { loss: 1 } : {});
  }

  def(
    vsi: number,
    vni: number,
    extra: Partial<{ macs: string[]; ips: string[]; port: string }> = {},
  ): VmDefinition {
    return VmDefinitionSchema.parse({
      interfaces: [
        {
          vsiId: `00000000-0000-4000-8000-${vsi.toString(16).padStart(12, '0')}`,
          vni,
          macs: extra.macs ?? [
            `52:54:00:00:${((vsi >> 8) & 0xff).toString(16).padStart(2, '0')}:${(vsi & 0xff).toString(16).padStart(2, '0')}`,
          ],
          ips: extra.ips ?? [],
          ...(extra.port ? { port: extra.port } : {}),
        },
      ],
    });
  }

  /** The bridge's state of every VSI by id: [bridge, port, state]. */
  bridgeStates(
    vsiId: string,
  ): { bridge: string; port: string; station: string; state: string; hints: object }[] {
    const out = [];
    for (const [name, b] of this.bridges) {
      for (const v of b.vsis()) {
        if (v.vsi.vsiId === vsiId)
          out.push({
            bridge: name,
            port: v.port,
            station: v.station,
            state: v.vsi.state,
            hints: v.vsi.hints,
          });
      }
    }
    return out;
  }

  eventsOf<T extends TnveEvent['type']>(
    hv: string,
    type: T,
  ): (Extract<TnveEvent, { type: T }> & { t: number })[] {
    return this.events
      .filter((x) => x.hv === hv && x.e.type === type)
      .map((x) => ({ ...(x.e as Extract<TnveEvent, { type: T }>), t: x.t }));
  }

  private onEvent(node: string, ev: unknown, now: number): void {
    if (this.bridges.has(node)) {
      const e = ev as BridgeNodeEvent;
      this.bridgeEvents.push({ bridge: node, t: now, e });
      if (e.type === 'tsi') {
        const where = `${node}|${e.port}|${e.station}`;
        const set = this.activeAt.get(e.key) ?? new Set<string>();
        if (e.to === 'associated') {
          set.add(where);
          if (set.size > 1)
            this.violations.push(`t=${now} VSI ${e.vsiId} Activated at ${[...set].join(' and ')}`);
        } else set.delete(where);
        this.activeAt.set(e.key, set);
      }
      return;
    }
    const e = ev as TnveEvent;
    this.events.push({ hv: node, t: now, e });
    if (e.type === 'op-result') this.results.set(`${node}/${e.opId}`, e);
    if (e.type === 'vm-record') {
      const m = this.records.get(node) ?? new Map<string, VmRecord>();
      if (e.record) m.set(e.name, e.record);
      else m.delete(e.name);
      this.records.set(node, m);
    }
  }
}
