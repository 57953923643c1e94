/**
 * The tNVE agent's decision part, sans-IO: VM lifecycle -> VDP (SPLIT-NVE.md §3), migration,
 * multi-homing and restart, on top of a StationNode. It is driven like a node (frames in,
 * time in, commands in; frames and events out), so the same code runs in the daemon on real
 * links and in the simulator.
 *
 * Model: every VM interface (TSI, one VSI) has one *slot* per uplink that serves its VN. A
 * slot's desired VDP mode follows from the VM's state and the uplink's role for that VN
 * (active or standby); the agent sends a request whenever a slot's confirmed state or spec
 * differs from the desired one, one request per slot at a time, and retries with back-off.
 * Lifecycle calls are *operations*: each changes the VM's state and completes (an `op-result`
 * event) when the nNVE confirmed what the call needs, fails with the nNVE's reason and the
 * uplink, or times out; an activation that fails rolls the VM back, so the orchestrator can
 * keep a VM from running unconnected.
 */
import { TimerQueue } from '../core/timer-queue.js';
import type {
  RememberedBridge,
  StationNode,
  StationNodeEvent,
  StationNodeOutput,
} from '../node/station-node.js';
import type { StationFailure, StationRequest } from '../vdp/station.js';
import {
  stateOfMode,
  tsiState,
  type Hints,
  type Profile,
  type TsiState,
  type VsiMode,
  type VsiSpec,
  type VsiState,
} from '../vdp/types.js';
import type { FilterEntry } from '../wire/filter.js';
import type { WireOptions } from '../wire/options.js';
import { reasonName } from '../wire/status.js';
import { vsiKey } from '../wire/vdp.js';
import {
  checkInterfaceSize,
  specHash,
  specOf,
  type AddressesUpdate,
  type Iface,
  type IfaceRecord,
  type InterfaceDef,
  type SlotRecord,
  type VmDefinition,
  type VmRecord,
  type VmState,
} from './model.js';
import { managerIdFromString, VSIID_UUID } from '../wire/vdp.js';
import { parseUuid } from '../wire/bytes.js';

export type MultiHoming = 'active-standby' | 'active-active';

export interface AgentVnConfig {
  readonly vni: number;
  readonly mode?: MultiHoming;
  /** Uplinks that serve this VN, in order of preference (default: all, in config order). */
  readonly uplinks?: readonly string[];
}

export interface AgentConfig {
  readonly profile: Profile;
  /** Uplink names in order of preference. */
  readonly uplinks: readonly string[];
  readonly multiHoming: MultiHoming;
  readonly vns: readonly AgentVnConfig[];
  /** VSI type id -> VN, for interfaces defined without a VNI (e.g. from libvirt XML). */
  readonly typeVn: Readonly<Record<string, number>>;
  readonly managerId: string;
  /** Pre-associate with resource reservation when a VM is defined (SPLIT-NVE.md §3, optional). */
  readonly preAssociateOnDefine: boolean;
  /**
   * Suspend in the plain 802.1Qbg profile, where an Activated VSI cannot be deactivated:
   * 'reassociate' de-associates and pre-associates with RR (same nNVE state as a splitnve
   * deactivate, the tag may be re-chosen); 'keep-associated' leaves it Activated.
   */
  readonly plainSuspend: 'reassociate' | 'keep-associated';
  /** Default time an operation may take. */
  readonly opTimeoutUs: number;
  /** First retry of a failed request; doubles up to maxRetryUs. */
  readonly retryUs: number;
  readonly maxRetryUs: number;
  readonly wire: WireOptions;
}

export type OpKind =
  | 'define'
  | 'start'
  | 'pause'
  | 'suspend'
  | 'resume'
  | 'stop'
  | 'destroy'
  | 'migrate-in-begin'
  | 'migrate-in-commit'
  | 'migrate-in-abort'
  | 'migrate-out-begin'
  | 'migrate-out-switchover'
  | 'migrate-out-commit'
  | 'migrate-out-abort'
  | 'set-addresses';

export type Command =
  | {
      readonly op: 'define' | 'migrate-in-begin';
      readonly name: string;
      readonly def: VmDefinition;
    }
  | {
      readonly op: 'set-addresses';
      readonly name: string;
      readonly vsiId: string;
      readonly update: AddressesUpdate;
    }
  | {
      readonly op: Exclude<OpKind, 'define' | 'migrate-in-begin' | 'set-addresses'>;
      readonly name: string;
    };

export type OpError =
  | 'conflict'
  | 'not-found'
  | 'invalid'
  | 'refused'
  | 'timeout'
  | 'no-uplink'
  | 'unsupported'
  | 'superseded'
  /** The agent's state store cannot be written (the daemon refuses what would add state). */
  | 'store';

export interface OpFailure {
  readonly uplink: string;
  readonly vsiId: string;
  readonly error: StationFailure;
  readonly reason?: number;
  readonly reasonName?: string;
  readonly message: string;
}

export interface OpResult {
  readonly opId: string;
  readonly op: OpKind;
  readonly vm: string;
  readonly ok: boolean;
  /** The VM's state after the operation (null: the VM is gone or was never there). */
  readonly state: VmState | null;
  readonly error?: OpError;
  readonly message?: string;
  readonly failures: readonly OpFailure[];
  /** Slots whose change the nNVE has not confirmed because their uplink is down. */
  readonly unconfirmed: readonly { uplink: string; vsiId: string }[];
  readonly tookUs: number;
}

export type AgentEvent =
  | {
      readonly type: 'vm';
      readonly name: string;
      readonly from: VmState | null;
      readonly to: VmState | null;
      readonly cause: string;
      readonly at: number;
    }
  | { readonly type: 'vm-record'; readonly name: string; readonly record: VmRecord | null }
  | {
      readonly type: 'active-uplink';
      readonly vni: number;
      readonly uplink: string | null;
      readonly from: string | null;
      readonly cause: string;
      readonly at: number;
    }
  | {
      readonly type: 'uplink-health';
      readonly uplink: string;
      readonly healthy: boolean;
      readonly cause: string;
      readonly at: number;
    }
  | {
      readonly type: 'tag';
      readonly vm: string;
      readonly vsiId: string;
      readonly port: string | undefined;
      readonly vni: number;
      readonly uplink: string | null;
      readonly vid: number | null;
      readonly at: number;
    }
  | {
      readonly type: 'tsi-bridge';
      readonly vm: string;
      readonly vsiId: string;
      readonly uplink: string;
      readonly from: VsiState;
      readonly to: VsiState;
      readonly cause: string;
      readonly at: number;
    }
  | ({ readonly type: 'op-result' } & OpResult);

export type TnveEvent = StationNodeEvent | AgentEvent;

export type AgentOutput =
  | { readonly type: 'transmit'; readonly port: string; readonly frame: Uint8Array }
  | { readonly type: 'event'; readonly event: TnveEvent };

type Goal = 'activate' | 'reserve' | 'settle' | 'none';

interface Op {
  readonly id: string;
  readonly kind: OpKind;
  readonly vm: string;
  readonly started: number;
  readonly deadline: number;
  readonly goal: Goal;
  readonly rollback: (() => void) | undefined;
  readonly failures: OpFailure[];
}

interface Slot {
  readonly id: string;
  readonly vm: Vm;
  readonly iface: IfaceRecord;
  readonly uplink: string;
  readonly key: string;
  readonly rec: SlotRecord;
  retired: boolean;
  inflight:
    { readonly requestId: string; readonly mode: VsiMode; readonly hash?: string } | undefined;
  retryAt: number | undefined;
  backoff: number;
  /** Why the slot is not retried until something changes (invalid/unsupported request). */
  blocked: string | undefined;
  /** The nNVE may hold this VSI from before a restart: de-associate it even if Init here. */
  mustDeassoc: boolean;
  lastError: OpFailure | undefined;
}

interface Vm {
  readonly rec: VmRecord;
  slots: Slot[];
  hints: Hints;
  op: Op | undefined;
}

interface Health {
  linkUp: boolean;
  suspect: string | undefined;
  /** The station's response count when the uplink became suspect. */
  responsesAt: number;
}

export interface SlotView {
  readonly uplink: string;
  readonly role: 'active' | 'standby';
  readonly vdpState: VsiState;
  readonly tsiState: TsiState;
  readonly vid: number | null;
  readonly pending: VsiMode | null;
  readonly override: VsiState | null;
  readonly lastError: OpFailure | null;
}

export interface InterfaceView extends Iface {
  readonly localTag: { readonly uplink: string; readonly vid: number } | null;
  readonly tsiState: TsiState;
  readonly uplinks: readonly SlotView[];
}

export interface VmView {
  readonly name: string;
  readonly state: VmState;
  readonly reserve: boolean;
  readonly note: string | null;
  readonly op: { readonly id: string; readonly op: OpKind } | null;
  readonly interfaces: readonly InterfaceView[];
}

export interface VnView {
  readonly vni: number;
  readonly mode: MultiHoming;
  readonly active: string | null;
  readonly tsis: number;
  readonly uplinks: readonly {
    readonly uplink: string;
    readonly role: 'active' | 'standby';
    readonly healthy: boolean;
    readonly vid: number | null;
  }[];
}

const BRIDGE_CAUSES = new Set(['bridge-deassociate', 'bridge-deactivate', 'keepalive-refused']);

function firstVid(entries: readonly FilterEntry[] | undefined): number | undefined {
  const e = entries?.find((x) => x.vid !== 0);
  return e?.vid;
}

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

export class AgentError extends Error {
  constructor(
    readonly error: OpError,
    message: string,
  ) {
    super(message);
  }
}

export class TnveAgent {
  private readonly vms = new Map<string, Vm>();
  private readonly slotsById = new Map<string, Slot>();
  /** VSI key -> VM name owning it. */
  private readonly owners = new Map<string, string>();
  private readonly active = new Map<number, string>();
  private readonly health = new Map<string, Health>();
  private readonly requests = new Map<string, string>();
  private readonly ops = new Map<string, Op>();
  private readonly timers = new TimerQueue();
  private readonly dirtySlots = new Set<Slot>();
  private readonly dirtyVms = new Set<string>();
  private readonly tagDirty = new Set<Slot['iface']>();
  private readonly tagState = new Map<IfaceRecord, string>();
  private readonly events: AgentEvent[] = [];
  private seq = 0;
  private now = 0;

  constructor(
    readonly cfg: AgentConfig,
    readonly node: StationNode,
  ) {
    for (const u of cfg.uplinks)
      this.health.set(u, { linkUp: true, suspect: undefined, responsesAt: 0 });
  }

  // ---------------------------------------------------------------------------------------
  // Driving (the NodeDriver / simulator interface)

  deadline(): number | undefined {
    const a = this.node.deadline();
    const b = this.timers.next();
    if (a === undefined) return b;
    if (b === undefined) return a;
    return Math.min(a, b);
  }

  handleFrame(port: string, frame: Uint8Array, now: number): AgentOutput[] {
    return this.step(now, this.node.handleFrame(port, frame, now));
  }

  handleTimeout(now: number): AgentOutput[] {
    const outs: StationNodeOutput[] = [];
    const nd = this.node.deadline();
    if (nd !== undefined && nd <= now) outs.push(...this.node.handleTimeout(now));
    for (const t of this.timers.popDue(now)) {
      if (t.startsWith('r|')) {
        const s = this.slotsById.get(t.slice(2));
        if (s) {
          s.retryAt = undefined;
          this.dirtySlots.add(s);
        }
      }
      // 'o|' op deadlines are checked in step()
    }
    return this.step(now, outs);
  }

  start(now: number): AgentOutput[] {
    return this.step(now, this.node.start(now));
  }

  stop(now: number): AgentOutput[] {
    return this.step(now, this.node.stop(now));
  }

  /** A request that bypasses the VM model (raw API); refused for VSIs a VM owns. */
  raw(uplink: string, req: StationRequest, now: number): AgentOutput[] {
    const owner = this.owners.get(vsiKey(req.spec.idFormat, req.spec.id));
    if (owner !== undefined) {
      throw new AgentError('conflict', `VSI belongs to VM ${owner}: use the VM lifecycle API`);
    }
    return this.step(now, this.node.request(uplink, req, now));
  }

  /** Passes outputs of a direct StationNode call (e.g. a raw restore) through the agent. */
  feed(now: number, outs: StationNodeOutput[]): AgentOutput[] {
    return this.step(now, outs);
  }

  ownerOf(key: string): string | undefined {
    return this.owners.get(key);
  }

  /** The link of an uplink went up or down (Link.onStatus). */
  linkStatus(uplink: string, up: boolean, reason: string | undefined, now: number): AgentOutput[] {
    this.now = now;
    const h = this.health.get(uplink);
    if (!h || h.linkUp === up) return this.step(now, []);
    const was = this.healthy(uplink);
    h.linkUp = up;
    if (up) h.suspect = undefined;
    // Only an answer after the link went down counts as the link being back (see step()).
    else h.responsesAt = this.node.uplinkInfo(uplink)?.vdp.responses ?? 0;
    const cause = up ? 'link up' : `link down${reason ? ` (${reason})` : ''}`;
    this.healthChanged(uplink, was, cause);
    if (up) {
      for (const s of this.slotsById.values()) {
        if (s.uplink !== uplink) continue;
        s.retryAt = undefined;
        s.backoff = 0;
        this.timers.cancel(`r|${s.id}`);
        this.dirtySlots.add(s);
      }
    }
    return this.step(now, []);
  }

  /**
   * Rebuilds the state saved before a restart and re-asserts every association: each slot is
   * requested again in its desired mode; a slot the nNVE may still hold but should not is
   * de-associated.
   */
  restore(
    records: readonly VmRecord[],
    actives: ReadonlyMap<number, string>,
    remembered: ReadonlyMap<string, RememberedBridge>,
    now: number,
  ): AgentOutput[] {
    this.now = now;
    const outs: StationNodeOutput[] = [];
    for (const u of this.cfg.uplinks) {
      const r = remembered.get(u);
      if (r) outs.push(...this.node.restore(u, [], now, r));
    }
    for (const [vni, u] of actives) if (this.cfg.uplinks.includes(u)) this.active.set(vni, u);
    for (const r of records) {
      const vm: Vm = { rec: clone(r), slots: [], hints: {}, op: undefined };
      this.vms.set(r.name, vm);
      for (const i of vm.rec.interfaces) this.owners.set(this.keyOf(i), r.name);
      this.buildSlots(vm);
      for (const s of vm.slots) {
        const was = s.rec.state;
        s.rec.state = 'init';
        if (was !== 'init') s.mustDeassoc = true;
        this.dirtySlots.add(s);
      }
    }
    return this.step(now, outs);
  }

  // ---------------------------------------------------------------------------------------
  // Commands

  /** Starts an operation; its result comes as an `op-result` event (maybe in these outputs). */
  command(cmd: Command, now: number, timeoutUs?: number): { opId: string; outputs: AgentOutput[] } {
    this.now = now;
    const opId = `op${++this.seq}`;
    try {
      this.begin(opId, cmd, now, timeoutUs ?? this.cfg.opTimeoutUs);
    } catch (e) {
      if (!(e instanceof AgentError)) throw e;
      const vm = this.vms.get(cmd.name);
      this.events.push({
        type: 'op-result',
        opId,
        op: cmd.op,
        vm: cmd.name,
        ok: false,
        state: vm?.rec.state ?? null,
        error: e.error,
        message: e.message,
        failures: [],
        unconfirmed: [],
        tookUs: 0,
      });
    }
    return { opId, outputs: this.step(now, []) };
  }

  private resolve(name: string, d: InterfaceDef): IfaceRecord {
    const vni = d.vni ?? this.cfg.typeVn[String(d.typeId)];
    if (vni === undefined) {
      throw new AgentError(
        'invalid',
        `interface ${d.vsiId} (${d.macs.join(', ')}) of VM ${name} has no VN: give vni, or map its VSI type ${d.typeId} in typeVn`,
      );
    }
    const managerId = d.managerId ?? this.cfg.managerId;
    try {
      managerIdFromString(managerId);
    } catch {
      throw new AgentError(
        'invalid',
        `interface ${d.vsiId}: manager id ${JSON.stringify(managerId)} is not a name of at most 16 printable characters or 0x + 32 hex`,
      );
    }
    const i: IfaceRecord = {
      vsiId: d.vsiId,
      vni,
      macs: d.macs,
      ips: d.ips,
      pairs: d.pairs,
      typeId: d.typeId,
      typeVersion: d.typeVersion,
      managerId,
      ...(d.port !== undefined ? { port: d.port } : {}),
      slots: {},
    };
    const big = checkInterfaceSize(i, this.cfg.wire);
    if (big) throw new AgentError('invalid', big);
    return i;
  }

  private resolveAll(name: string, def: VmDefinition): IfaceRecord[] {
    const out = def.interfaces.map((d) => this.resolve(name, d));
    const seen = new Set<string>();
    for (const i of out) {
      if (seen.has(i.vsiId))
        throw new AgentError('invalid', `VSI id ${i.vsiId} appears twice in VM ${name}`);
      seen.add(i.vsiId);
      const owner = this.owners.get(this.keyOf(i));
      if (owner !== undefined && owner !== name) {
        throw new AgentError('conflict', `VSI id ${i.vsiId} belongs to VM ${owner}`);
      }
    }
    return out;
  }

  private sameInterfaces(a: readonly IfaceRecord[], b: readonly IfaceRecord[]): boolean {
    const strip = (l: readonly IfaceRecord[]): string =>
      JSON.stringify(l.map(({ slots: _s, tag: _t, ...rest }) => rest));
    return strip(a) === strip(b);
  }

  private need(name: string, states: readonly VmState[], op: OpKind, hint?: string): Vm {
    const vm = this.vms.get(name);
    if (!vm) throw new AgentError('not-found', `no VM ${name}`);
    if (!states.includes(vm.rec.state)) {
      throw new AgentError(
        'conflict',
        `VM ${name} is ${vm.rec.state}: ${op} needs ${states.join(' or ')}${hint ? ` (${hint})` : ''}`,
      );
    }
    return vm;
  }

  private begin(opId: string, cmd: Command, now: number, timeoutUs: number): void {
    const name = cmd.name;
    let vm = this.vms.get(name);
    let goal: Goal = 'none';
    let rollback: (() => void) | undefined;
    let hints: Hints = {};
    let to: VmState;
    switch (cmd.op) {
      case 'define': {
        const ifaces = this.resolveAll(name, cmd.def);
        const reserve = cmd.def.reserve ?? this.cfg.preAssociateOnDefine;
        if (vm && vm.rec.state !== 'shutoff') {
          if (this.sameInterfaces(vm.rec.interfaces, ifaces)) {
            to = vm.rec.state;
            break;
          }
          throw new AgentError(
            'conflict',
            `VM ${name} is ${vm.rec.state}: its interfaces change only while shut off (or with set-addresses)`,
          );
        }
        if (!vm) {
          vm = this.create(name, 'shutoff', reserve, ifaces);
          rollback = () => this.setState(vm!, 'removing', 'define failed');
        } else {
          const prev = { reserve: vm.rec.reserve, ifaces: vm.rec.interfaces };
          this.replaceInterfaces(vm, ifaces);
          vm.rec.reserve = reserve;
          const v = vm;
          rollback = () => {
            v.rec.reserve = prev.reserve;
            this.replaceInterfaces(v, prev.ifaces);
          };
        }
        to = 'shutoff';
        goal = reserve ? 'reserve' : 'settle';
        break;
      }
      case 'start':
      case 'resume': {
        vm = this.need(
          name,
          ['shutoff', 'paused', 'running', 'suspended'],
          cmd.op,
          'a migrating VM is started with migrate-in commit or migrate-out abort',
        );
        const prev = vm.rec.state;
        to = 'running';
        goal = 'activate';
        if (prev !== 'running' && prev !== 'paused') {
          const v = vm;
          rollback = () => this.setState(v, prev, `${cmd.op} failed`);
        }
        break;
      }
      case 'pause':
        vm = this.need(name, ['running', 'paused'], cmd.op);
        to = 'paused';
        break;
      case 'suspend':
        vm = this.need(name, ['running', 'paused', 'suspended', 'shutoff'], cmd.op);
        to = 'suspended';
        goal = 'settle';
        hints = { s: true };
        break;
      case 'stop':
        vm = this.need(
          name,
          ['shutoff', 'running', 'paused', 'suspended', 'outgoing', 'switched'],
          cmd.op,
          'an incoming VM is dropped with migrate-in abort',
        );
        vm.rec.reserve = false;
        to = 'shutoff';
        goal = 'settle';
        break;
      case 'destroy':
      case 'migrate-in-abort':
      case 'migrate-out-commit': {
        if (!vm) {
          // Idempotent: nothing to remove.
          this.events.push({
            type: 'op-result',
            opId,
            op: cmd.op,
            vm: name,
            ok: true,
            state: null,
            failures: [],
            unconfirmed: [],
            tookUs: 0,
          });
          return;
        }
        if (cmd.op === 'migrate-in-abort') vm = this.need(name, ['incoming', 'removing'], cmd.op);
        if (cmd.op === 'migrate-out-commit') {
          vm = this.need(name, ['outgoing', 'switched', 'running', 'paused', 'removing'], cmd.op);
          hints = { s: true };
        }
        to = 'removing';
        goal = 'settle';
        break;
      }
      case 'migrate-in-begin': {
        const ifaces = this.resolveAll(name, cmd.def);
        if (vm && vm.rec.state !== 'shutoff' && vm.rec.state !== 'incoming') {
          throw new AgentError(
            'conflict',
            `VM ${name} is ${vm.rec.state} here: it cannot migrate in`,
          );
        }
        if (!vm) {
          vm = this.create(name, 'incoming', false, ifaces);
          const v = vm;
          rollback = () => this.setState(v, 'removing', 'migrate-in begin failed');
        } else {
          const prev = { state: vm.rec.state, ifaces: vm.rec.interfaces };
          if (!this.sameInterfaces(vm.rec.interfaces, ifaces)) this.replaceInterfaces(vm, ifaces);
          const v = vm;
          rollback = () => {
            this.replaceInterfaces(v, prev.ifaces);
            this.setState(v, prev.state, 'migrate-in begin failed');
          };
        }
        to = 'incoming';
        goal = 'reserve';
        hints = { m: true };
        break;
      }
      case 'migrate-in-commit': {
        vm = this.need(name, ['incoming', 'running'], cmd.op);
        const v = vm;
        if (vm.rec.state === 'incoming')
          rollback = () => this.setState(v, 'incoming', 'migrate-in commit failed');
        to = 'running';
        goal = 'activate';
        hints = { m: true };
        break;
      }
      case 'migrate-out-begin':
        vm = this.need(name, ['running', 'paused', 'outgoing'], cmd.op);
        to = 'outgoing';
        break;
      case 'migrate-out-switchover':
        vm = this.need(name, ['outgoing', 'running', 'paused', 'switched'], cmd.op);
        to = 'switched';
        goal = 'settle';
        hints = { s: true };
        break;
      case 'migrate-out-abort': {
        vm = this.need(name, ['outgoing', 'switched', 'running'], cmd.op);
        const prev = vm.rec.state;
        const v = vm;
        if (prev !== 'running') rollback = () => this.setState(v, prev, 'migrate-out abort failed');
        to = 'running';
        goal = 'activate';
        // A VSI the nNVE handed to the destination is taken back with M=1.
        hints = { m: true };
        break;
      }
      case 'set-addresses': {
        vm = this.need(
          name,
          ['shutoff', 'running', 'paused', 'suspended', 'incoming', 'outgoing', 'switched'],
          cmd.op,
        );
        const idx = vm.rec.interfaces.findIndex((i) => i.vsiId === cmd.vsiId.toLowerCase());
        if (idx < 0) throw new AgentError('not-found', `VM ${name} has no interface ${cmd.vsiId}`);
        const old = vm.rec.interfaces[idx]!;
        const next: IfaceRecord = {
          ...old,
          ...(cmd.update.macs ? { macs: cmd.update.macs } : {}),
          ...(cmd.update.ips ? { ips: cmd.update.ips } : {}),
          ...(cmd.update.pairs ? { pairs: cmd.update.pairs } : {}),
        };
        const big = checkInterfaceSize(next, this.cfg.wire);
        if (big) throw new AgentError('invalid', big);
        const saved = { macs: old.macs, ips: old.ips, pairs: old.pairs };
        Object.assign(old, { macs: next.macs, ips: next.ips, pairs: next.pairs });
        rollback = () => {
          Object.assign(old, saved);
          for (const s of vm!.slots) if (s.iface === old) this.dirtySlots.add(s);
        };
        for (const s of vm.slots) if (s.iface === old) this.dirtySlots.add(s);
        to = vm.rec.state;
        goal = 'settle';
        break;
      }
    }
    // A newer call on the same VM replaces an open one.
    if (vm.op) this.finish(vm, vm.op, false, 'superseded', `replaced by ${cmd.op}`, false);
    const op: Op = {
      id: opId,
      kind: cmd.op,
      vm: name,
      started: now,
      deadline: now + timeoutUs,
      goal,
      rollback,
      failures: [],
    };
    vm.op = op;
    vm.hints = hints;
    this.ops.set(opId, op);
    this.timers.set(`o|${opId}`, op.deadline);
    // A lifecycle call re-asserts: forget bridge overrides and back-off.
    for (const s of vm.slots) {
      s.rec.override = undefined;
      s.blocked = undefined;
      s.lastError = undefined;
      if (s.retryAt !== undefined) {
        s.retryAt = undefined;
        this.timers.cancel(`r|${s.id}`);
      }
      s.backoff = 0;
      this.dirtySlots.add(s);
    }
    if (vm.rec.note !== undefined && goal !== 'none') vm.rec.note = undefined;
    this.setState(vm, to, cmd.op);
    this.dirtyVms.add(name);
  }

  private create(name: string, state: VmState, reserve: boolean, ifaces: IfaceRecord[]): Vm {
    const vm: Vm = {
      rec: { name, state, reserve, interfaces: ifaces, updatedAt: this.now },
      slots: [],
      hints: {},
      op: undefined,
    };
    this.vms.set(name, vm);
    for (const i of ifaces) this.owners.set(this.keyOf(i), name);
    this.buildSlots(vm);
    this.events.push({ type: 'vm', name, from: null, to: state, cause: 'created', at: this.now });
    this.dirtyVms.add(name);
    return vm;
  }

  private replaceInterfaces(vm: Vm, ifaces: IfaceRecord[]): void {
    const keep = new Set(ifaces.map((i) => i.vsiId));
    const retired = vm.rec.interfaces.filter((i) => !keep.has(i.vsiId));
    const byId = new Map(vm.rec.interfaces.map((i) => [i.vsiId, i]));
    vm.rec.interfaces = ifaces.map((i) => {
      const old = byId.get(i.vsiId);
      return old
        ? { ...i, slots: old.slots, ...(old.tag !== undefined ? { tag: old.tag } : {}) }
        : i;
    });
    vm.rec.retired = [...(vm.rec.retired ?? []), ...retired];
    for (const i of vm.rec.interfaces) this.owners.set(this.keyOf(i), vm.rec.name);
    for (const s of vm.slots) {
      this.slotsById.delete(s.id);
      this.timers.cancel(`r|${s.id}`);
    }
    const old = vm.slots;
    vm.slots = [];
    this.buildSlots(vm, old);
  }

  private keyOf(i: { vsiId: string }): string {
    return vsiKey(VSIID_UUID, parseUuid(i.vsiId)!);
  }

  private buildSlots(vm: Vm, previous: readonly Slot[] = []): void {
    const prev = new Map(previous.map((s) => [s.id, s]));
    const add = (iface: IfaceRecord, retired: boolean): void => {
      const key = this.keyOf(iface);
      for (const u of this.uplinksFor(iface.vni)) {
        const id = `${u}|${key}`;
        const rec = (iface.slots[u] ??= { state: 'init' });
        const p = prev.get(id);
        const s: Slot = {
          id,
          vm,
          iface,
          uplink: u,
          key,
          rec,
          retired,
          inflight: p?.inflight,
          retryAt: undefined,
          backoff: 0,
          blocked: undefined,
          mustDeassoc: p?.mustDeassoc ?? false,
          lastError: undefined,
        };
        if (p?.inflight) this.requests.set(p.inflight.requestId, id);
        vm.slots.push(s);
        this.slotsById.set(id, s);
        this.dirtySlots.add(s);
      }
    };
    for (const i of vm.rec.interfaces) add(i, false);
    for (const i of vm.rec.retired ?? []) add(i, true);
  }

  private setState(vm: Vm, to: VmState, cause: string): void {
    const from = vm.rec.state;
    if (from === to) return;
    vm.rec.state = to;
    vm.rec.updatedAt = this.now;
    this.events.push({ type: 'vm', name: vm.rec.name, from, to, cause, at: this.now });
    for (const s of vm.slots) this.dirtySlots.add(s);
    this.dirtyVms.add(vm.rec.name);
  }

  // ---------------------------------------------------------------------------------------
  // Multi-homing

  vnConfig(vni: number): AgentVnConfig | undefined {
    return this.cfg.vns.find((v) => v.vni === vni);
  }

  vnMode(vni: number): MultiHoming {
    return this.vnConfig(vni)?.mode ?? this.cfg.multiHoming;
  }

  uplinksFor(vni: number): readonly string[] {
    const c = this.vnConfig(vni)?.uplinks;
    return c ? c.filter((u) => this.cfg.uplinks.includes(u)) : this.cfg.uplinks;
  }

  healthy(uplink: string): boolean {
    const h = this.health.get(uplink);
    return h !== undefined && h.linkUp && h.suspect === undefined;
  }

  uplinkHealth(uplink: string): { linkUp: boolean; suspect: string | null; healthy: boolean } {
    const h = this.health.get(uplink) ?? {
      linkUp: false,
      suspect: 'unknown uplink',
      responsesAt: 0,
    };
    return { linkUp: h.linkUp, suspect: h.suspect ?? null, healthy: this.healthy(uplink) };
  }

  /** The active uplink of a VN (chosen on first use: the first healthy one in preference order). */
  activeOf(vni: number): string | undefined {
    const cur = this.active.get(vni);
    if (cur !== undefined) return cur;
    const list = this.uplinksFor(vni);
    const pick = list.find((u) => this.healthy(u)) ?? list[0];
    if (pick === undefined) return undefined;
    this.active.set(vni, pick);
    this.events.push({
      type: 'active-uplink',
      vni,
      uplink: pick,
      from: null,
      cause: 'first use',
      at: this.now,
    });
    return pick;
  }

  private role(vni: number, uplink: string): 'active' | 'standby' {
    if (this.vnMode(vni) === 'active-active') return 'active';
    return this.activeOf(vni) === uplink ? 'active' : 'standby';
  }

  private markSuspect(uplink: string, cause: string): void {
    const h = this.health.get(uplink);
    if (!h || h.suspect !== undefined) return;
    const was = this.healthy(uplink);
    h.suspect = cause;
    h.responsesAt = this.node.uplinkInfo(uplink)?.vdp.responses ?? 0;
    this.healthChanged(uplink, was, cause);
  }

  private markHealthy(uplink: string, cause: string): void {
    const h = this.health.get(uplink);
    if (!h || h.suspect === undefined) return;
    const was = this.healthy(uplink);
    h.suspect = undefined;
    this.healthChanged(uplink, was, cause);
  }

  private healthChanged(uplink: string, was: boolean, cause: string): void {
    const now = this.healthy(uplink);
    if (now === was) return;
    this.events.push({ type: 'uplink-health', uplink, healthy: now, cause, at: this.now });
    for (const [vni, cur] of [...this.active]) {
      if (this.vnMode(vni) !== 'active-standby') continue;
      if (!now && cur === uplink) this.failover(vni, cause);
      else if (now && cur !== uplink && !this.healthy(cur) && this.uplinksFor(vni).includes(uplink))
        this.failover(vni, `${uplink} recovered`);
    }
    if (now)
      for (const s of this.slotsById.values()) if (s.uplink === uplink) this.dirtySlots.add(s);
  }

  /** Moves a VN's active role to the first healthy uplink (sticky: no automatic fail-back). */
  private failover(vni: number, cause: string): void {
    const from = this.active.get(vni);
    const to = this.uplinksFor(vni).find((u) => u !== from && this.healthy(u));
    if (to === undefined) return;
    this.active.set(vni, to);
    this.events.push({
      type: 'active-uplink',
      vni,
      uplink: to,
      from: from ?? null,
      cause,
      at: this.now,
    });
    for (const s of this.slotsById.values()) {
      if (s.iface.vni !== vni) continue;
      this.dirtySlots.add(s);
      this.tagDirty.add(s.iface);
    }
  }

  // ---------------------------------------------------------------------------------------
  // The engine

  private plain(uplink: string): boolean {
    return this.node.uplinkInfo(uplink)?.caps.profile !== 'splitnve';
  }

  private specFor(s: Slot): VsiSpec {
    const ipFormats = this.cfg.profile === 'splitnve' && !this.plain(s.uplink);
    return specOf(s.iface, ipFormats, this.cfg.wire);
  }

  private desired(s: Slot): VsiMode {
    if (s.retired) return 4;
    const vm = s.vm.rec;
    const role = this.role(s.iface.vni, s.uplink);
    switch (vm.state) {
      case 'running':
      case 'paused':
      case 'outgoing':
        return role === 'active' ? 3 : 2;
      case 'suspended':
        return this.plain(s.uplink) &&
          this.cfg.plainSuspend === 'keep-associated' &&
          role === 'active'
          ? 3
          : 2;
      case 'incoming':
        return 2;
      case 'switched':
        return this.plain(s.uplink) ? 4 : 2;
      case 'shutoff':
        return vm.reserve ? 2 : 4;
      case 'removing':
        return 4;
    }
  }

  /** Slot confirmed in the state of `mode` with the current spec, nothing in flight. */
  private confirmed(s: Slot, mode: VsiMode): boolean {
    if (s.inflight) return false;
    if (mode === 4) return s.rec.state === 'init' && !s.mustDeassoc;
    return s.rec.state === stateOfMode(mode) && s.rec.hash === specHash(this.specFor(s));
  }

  private sync(s: Slot): void {
    const v = this.node.vsi(s.uplink, s.key);
    const state = v?.state ?? 'init';
    const vid = state === 'init' ? undefined : firstVid(v?.spec?.entries);
    if (state !== s.rec.state || vid !== s.rec.vid) {
      s.rec.state = state;
      if (vid === undefined) delete s.rec.vid;
      else s.rec.vid = vid;
      if (state === 'init') delete s.rec.hash;
      this.dirtyVms.add(s.vm.rec.name);
      this.tagDirty.add(s.iface);
    }
  }

  private pumpSlot(s: Slot, out: StationNodeOutput[]): void {
    if (!this.slotsById.has(s.id)) return;
    this.sync(s);
    if (s.inflight || s.rec.override !== undefined || s.retryAt !== undefined || s.blocked) return;
    const want = this.desired(s);
    let mode: VsiMode;
    let spec: VsiSpec;
    let hash: string | undefined;
    if (want === 4) {
      if (s.rec.state === 'init' && !s.mustDeassoc) return;
      mode = 4;
      spec = this.node.vsi(s.uplink, s.key)?.spec ?? this.specFor(s);
    } else {
      spec = this.specFor(s);
      hash = specHash(spec);
      if (s.rec.state === stateOfMode(want) && s.rec.hash === hash) return;
      if (s.rec.state === 'associated' && want !== 3 && this.plain(s.uplink)) {
        // The plain profile cannot deactivate: leave Activated through Init.
        mode = 4;
        spec = this.node.vsi(s.uplink, s.key)?.spec ?? spec;
        hash = undefined;
      } else {
        mode = want;
      }
    }
    // Nothing that adds state goes into a link known to be down: it would wait in ECP's
    // retransmissions and reach the nNVE when the link returns, after the operation that
    // wanted it may have failed (`no-uplink`). The link coming back pumps the slot again.
    if (mode !== 4 && this.health.get(s.uplink)?.linkUp === false) return;
    const h = s.vm.hints;
    const hints: Hints = {
      ...(h.m && (mode === 2 || mode === 3) ? { m: true } : {}),
      ...(h.s && (mode === 2 || mode === 4) ? { s: true } : {}),
    };
    const requestId = `a${++this.seq}`;
    s.inflight = { requestId, mode, ...(hash !== undefined ? { hash } : {}) };
    this.requests.set(requestId, s.id);
    out.push(...this.node.request(s.uplink, { mode, spec, hints, requestId }, this.now));
  }

  private onStationEvent(e: StationNodeEvent): void {
    switch (e.type) {
      case 'request-result': {
        const id = e.requestId ? this.requests.get(e.requestId) : undefined;
        if (id === undefined) return;
        this.requests.delete(e.requestId!);
        const s = this.slotsById.get(id);
        const sent = s?.inflight;
        if (!s || !sent || sent.requestId !== e.requestId) return;
        s.inflight = undefined;
        this.dirtySlots.add(s);
        this.dirtyVms.add(s.vm.rec.name);
        if (e.ok) {
          s.backoff = 0;
          s.lastError = undefined;
          if (sent.mode === 4) {
            s.mustDeassoc = false;
            delete s.rec.hash;
          } else if (sent.hash !== undefined) s.rec.hash = sent.hash;
          this.markHealthy(e.uplink, 'request accepted');
          return;
        }
        if (e.error === 'superseded') return;
        const f: OpFailure = {
          uplink: e.uplink,
          vsiId: s.iface.vsiId,
          error: e.error,
          ...(e.reason !== undefined ? { reason: e.reason, reasonName: reasonName(e.reason) } : {}),
          message: e.message,
        };
        s.lastError = f;
        s.vm.op?.failures.push(f);
        if (e.error === 'timeout') {
          // The nNVE may have acted on it (hung, or the answer lost): once no longer wanted,
          // it is de-associated rather than left to the nNVE's keep-alive expiry.
          if (sent.mode !== 4) s.mustDeassoc = true;
          this.markSuspect(e.uplink, 'no answer to a request');
          this.retryLater(s);
        } else if (e.error === 'refused') {
          s.backoff = this.cfg.maxRetryUs;
          this.retryLater(s);
        } else {
          s.blocked = e.message;
        }
        return;
      }
      case 'vsi-state': {
        const s = this.slotsById.get(`${e.uplink}|${e.key}`);
        if (!s) return;
        this.dirtySlots.add(s);
        this.tagDirty.add(s.iface);
        if (!BRIDGE_CAUSES.has(e.cause)) return;
        s.rec.override = e.to;
        const vm = s.vm;
        this.events.push({
          type: 'tsi-bridge',
          vm: vm.rec.name,
          vsiId: s.iface.vsiId,
          uplink: e.uplink,
          from: e.from,
          to: e.to,
          cause: e.cause,
          at: this.now,
        });
        if (vm.rec.state === 'outgoing' && e.from === 'associated') {
          // The destination took the TSI over on this nNVE: the switchover happened.
          this.setState(vm, 'switched', 'nNVE takeover');
        } else if (vm.rec.state !== 'removing' && vm.rec.state !== 'switched') {
          vm.rec.note = `nNVE on ${e.uplink}: ${e.cause} of ${s.iface.vsiId} (${e.from} -> ${e.to})`;
        }
        this.dirtyVms.add(vm.rec.name);
        return;
      }
      case 'vids': {
        const s = this.slotsById.get(`${e.uplink}|${e.key}`);
        if (s) {
          this.dirtySlots.add(s);
          this.tagDirty.add(s.iface);
        }
        return;
      }
      case 'keepalive-failed':
        if (e.error === 'timeout') this.markSuspect(e.uplink, 'keep-alive unanswered');
        return;
      case 'ecp-failed':
        this.markSuspect(e.uplink, 'ECP retransmissions exhausted');
        return;
      case 'peer-down':
        this.markSuspect(e.uplink, `nNVE LLDP ${e.reason}`);
        return;
      case 'peer-up':
        if (this.health.get(e.uplink)?.linkUp) this.markHealthy(e.uplink, 'nNVE heard again');
        return;
      case 'negotiated':
        for (const s of this.slotsById.values()) if (s.uplink === e.uplink) this.dirtySlots.add(s);
        return;
      default:
        return;
    }
  }

  private retryLater(s: Slot): void {
    s.backoff = Math.min(
      this.cfg.maxRetryUs,
      s.backoff === 0 ? this.cfg.retryUs : Math.max(s.backoff * 2, this.cfg.retryUs),
    );
    s.retryAt = this.now + s.backoff;
    this.timers.set(`r|${s.id}`, s.retryAt);
  }

  // ---------------------------------------------------------------------------------------
  // Operations

  private slotsOf(vm: Vm, iface: IfaceRecord): Slot[] {
    return vm.slots.filter((s) => s.iface === iface);
  }

  private checkOp(vm: Vm, op: Op): void {
    if (op.goal === 'none') {
      this.finish(vm, op, true);
      return;
    }
    if (op.goal === 'activate' || op.goal === 'reserve') {
      const mode: VsiMode = op.goal === 'activate' ? 3 : 2;
      let pending = false;
      for (const iface of vm.rec.interfaces) {
        const slots = this.slotsOf(vm, iface);
        if (slots.length === 0) {
          this.finish(vm, op, false, 'no-uplink', `no uplink serves VN ${iface.vni}`);
          return;
        }
        if (this.vnMode(iface.vni) === 'active-standby') {
          const a = this.activeOf(iface.vni)!;
          const s = slots.find((x) => x.uplink === a);
          if (!s) {
            this.finish(vm, op, false, 'no-uplink', `uplink ${a} does not serve VN ${iface.vni}`);
            return;
          }
          if (this.confirmed(s, mode)) continue;
          const fails = op.failures.filter((f) => f.uplink === a && f.vsiId === iface.vsiId);
          const refused = fails.find((f) => f.error !== 'timeout');
          if (refused || (fails.length > 0 && !this.healthy(a))) {
            this.finish(
              vm,
              op,
              false,
              refused ? this.errorOf(refused) : 'timeout',
              this.failText(op, iface, a),
            );
            return;
          }
          if (!this.health.get(a)!.linkUp) {
            this.finish(
              vm,
              op,
              false,
              'no-uplink',
              `no uplink of VN ${iface.vni} is up (${this.uplinksFor(iface.vni).join(', ')})`,
            );
            return;
          }
          pending = true;
        } else {
          const live = slots.filter((x) => this.health.get(x.uplink)!.linkUp);
          if (live.length === 0) {
            this.finish(vm, op, false, 'no-uplink', `no uplink of VN ${iface.vni} is up`);
            return;
          }
          const ok = live.filter((x) => this.confirmed(x, mode));
          const failed = live.filter(
            (x) =>
              !ok.includes(x) &&
              op.failures.some((f) => f.uplink === x.uplink && f.vsiId === iface.vsiId),
          );
          if (ok.length + failed.length < live.length) pending = true;
          else if (ok.length === 0) {
            const f = op.failures.find((x) => x.vsiId === iface.vsiId)!;
            this.finish(vm, op, false, this.errorOf(f), this.failText(op, iface));
            return;
          }
        }
      }
      if (!pending) this.finish(vm, op, true);
      return;
    }
    // settle: every slot on a live uplink confirmed in its desired mode
    for (const s of vm.slots) {
      if (!this.healthy(s.uplink) && !s.inflight) continue;
      const refused = op.failures.find(
        (f) => f.uplink === s.uplink && f.vsiId === s.iface.vsiId && f.error !== 'timeout',
      );
      if (refused && !this.confirmed(s, this.desired(s))) {
        this.finish(vm, op, false, this.errorOf(refused), this.failText(op, s.iface, s.uplink));
        return;
      }
      if (!this.healthy(s.uplink)) continue;
      if (!this.confirmed(s, this.desired(s))) return;
    }
    this.finish(vm, op, true);
  }

  private errorOf(f: OpFailure): OpError {
    return f.error === 'refused'
      ? 'refused'
      : f.error === 'timeout'
        ? 'timeout'
        : f.error === 'unsupported'
          ? 'unsupported'
          : 'invalid';
  }

  private failText(op: Op, iface: IfaceRecord, uplink?: string): string {
    const fs = op.failures.filter(
      (f) => f.vsiId === iface.vsiId && (uplink === undefined || f.uplink === uplink),
    );
    const parts = fs.map(
      (f) =>
        `uplink ${f.uplink}: ${f.error}${f.reason !== undefined ? ` reason ${f.reason} (${reasonName(f.reason)})` : ''}: ${f.message}`,
    );
    return `${op.kind} of VM ${op.vm} failed for interface ${iface.vsiId} (VN ${iface.vni}): ${parts.join('; ') || 'no confirmation'}`;
  }

  private finish(
    vm: Vm,
    op: Op,
    ok: boolean,
    error?: OpError,
    message?: string,
    rollback = true,
  ): void {
    if (vm.op !== op) return;
    vm.op = undefined;
    vm.hints = {};
    this.ops.delete(op.id);
    this.timers.cancel(`o|${op.id}`);
    if (!ok && rollback && op.rollback) op.rollback();
    if (ok) this.reap(vm);
    const unconfirmed = vm.slots
      .filter((s) => !this.healthy(s.uplink) && !this.confirmed(s, this.desired(s)))
      .map((s) => ({ uplink: s.uplink, vsiId: s.iface.vsiId }));
    this.events.push({
      type: 'op-result',
      opId: op.id,
      op: op.kind,
      vm: op.vm,
      ok,
      state: this.vms.has(vm.rec.name) ? vm.rec.state : null,
      ...(error ? { error } : {}),
      ...(message ? { message } : {}),
      failures: op.failures,
      unconfirmed,
      tookUs: this.now - op.started,
    });
    for (const s of vm.slots) this.dirtySlots.add(s);
    this.dirtyVms.add(vm.rec.name);
  }

  private timeoutOp(vm: Vm, op: Op): void {
    const waiting = vm.slots
      .filter((s) => this.healthy(s.uplink) && !this.confirmed(s, this.desired(s)))
      .map((s) => `${s.iface.vsiId} on ${s.uplink}`);
    const fails = op.failures.map(
      (f) =>
        `uplink ${f.uplink}: ${f.error}${f.reason !== undefined ? ` reason ${f.reason} (${reasonName(f.reason)})` : ''}`,
    );
    this.finish(
      vm,
      op,
      false,
      'timeout',
      `${op.kind} of VM ${op.vm}: the nNVE did not confirm within ${Math.round((op.deadline - op.started) / 1000)} ms` +
        (waiting.length ? `; waiting for ${waiting.join(', ')}` : '') +
        (fails.length ? `; ${fails.join('; ')}` : ''),
    );
  }

  /** Forgets a VM in 'removing' (and retired interfaces) once every slot is Init. */
  private reap(vm: Vm): void {
    const done = (s: Slot): boolean => !s.inflight && s.rec.state === 'init' && !s.mustDeassoc;
    const retired = vm.rec.retired ?? [];
    if (retired.length > 0) {
      const keep = retired.filter((i) => !this.slotsOf(vm, i).every(done));
      if (keep.length !== retired.length) {
        for (const i of retired) {
          if (keep.includes(i)) continue;
          this.owners.delete(this.keyOf(i));
          for (const s of this.slotsOf(vm, i)) this.slotsById.delete(s.id);
          vm.slots = vm.slots.filter((s) => s.iface !== i);
        }
        if (keep.length) vm.rec.retired = keep;
        else delete vm.rec.retired;
        for (const i of vm.rec.interfaces) this.owners.set(this.keyOf(i), vm.rec.name);
        this.dirtyVms.add(vm.rec.name);
      }
    }
    if (vm.rec.state !== 'removing' || vm.op) return;
    if (!vm.slots.every(done)) return;
    this.vms.delete(vm.rec.name);
    for (const s of vm.slots) {
      this.slotsById.delete(s.id);
      this.timers.cancel(`r|${s.id}`);
    }
    for (const i of vm.rec.interfaces) {
      if (this.owners.get(this.keyOf(i)) === vm.rec.name) this.owners.delete(this.keyOf(i));
      if (i.port !== undefined && i.tag !== null && i.tag !== undefined) {
        this.events.push({
          type: 'tag',
          vm: vm.rec.name,
          vsiId: i.vsiId,
          port: i.port,
          vni: i.vni,
          uplink: null,
          vid: null,
          at: this.now,
        });
      }
    }
    this.events.push({
      type: 'vm',
      name: vm.rec.name,
      from: 'removing',
      to: null,
      cause: 'removed',
      at: this.now,
    });
    this.dirtyVms.add(vm.rec.name);
  }

  // ---------------------------------------------------------------------------------------
  // Local tags

  /** The local tag of an interface: its VN's VID on the active uplink (else any uplink holding it). */
  localTag(vm: Vm | VmRecord, iface: IfaceRecord): { uplink: string; vid: number } | null {
    void vm;
    const order = [...this.uplinksFor(iface.vni)];
    const a = this.vnMode(iface.vni) === 'active-standby' ? this.active.get(iface.vni) : undefined;
    if (a !== undefined) order.sort((x, y) => (x === a ? -1 : y === a ? 1 : 0));
    for (const u of order) {
      const r = iface.slots[u];
      if (r && r.state !== 'init' && r.vid !== undefined) return { uplink: u, vid: r.vid };
    }
    return null;
  }

  /**
   * Emits a `tag` event when an interface's local tag (uplink, VID) changes. A tag is only
   * withdrawn (null: park the port) when the VM no longer holds its VN (shut off without
   * reservation, switched away, removed), never while associations are being re-asserted.
   */
  private updateTag(vm: Vm, iface: IfaceRecord): void {
    const t = this.localTag(vm, iface);
    const last = this.tagState.get(iface);
    if (t) {
      const k = `${t.uplink}|${t.vid}`;
      if (k === last && iface.tag === t.vid) return;
      this.tagState.set(iface, k);
      iface.tag = t.vid;
    } else {
      const st = vm.rec.state;
      const gone = st === 'removing' || st === 'switched' || (st === 'shutoff' && !vm.rec.reserve);
      if (!gone || iface.tag === null || iface.tag === undefined) return;
      this.tagState.set(iface, '');
      iface.tag = null;
    }
    this.dirtyVms.add(vm.rec.name);
    this.events.push({
      type: 'tag',
      vm: vm.rec.name,
      vsiId: iface.vsiId,
      port: iface.port,
      vni: iface.vni,
      uplink: t?.uplink ?? null,
      vid: t?.vid ?? null,
      at: this.now,
    });
  }

  // ---------------------------------------------------------------------------------------
  // One step: station events -> agent decisions -> requests, until quiet

  private step(now: number, initial: StationNodeOutput[]): AgentOutput[] {
    this.now = now;
    const out: AgentOutput[] = [];
    let pending: StationNodeOutput[] = initial;
    for (let round = 0; ; round++) {
      if (round > 10000) throw new Error('tnve agent: no quiescence after 10000 rounds');
      for (const o of pending) {
        out.push(o);
        if (o.type === 'event') this.onStationEvent(o.event);
      }
      pending = [];
      const dirty = [...this.dirtySlots];
      this.dirtySlots.clear();
      for (const s of dirty) this.pumpSlot(s, pending);
      if (pending.length > 0) continue;
      for (const vm of [...this.vms.values()]) {
        const op = vm.op;
        if (!op) continue;
        if (now >= op.deadline) this.timeoutOp(vm, op);
        else this.checkOp(vm, op);
      }
      for (const vm of [...this.vms.values()]) this.reap(vm);
      // Any answer from the nNVE (a keep-alive's too) since it became suspect clears it, and
      // since a link-down: the kernel reports a veth or NIC up again up to a second late.
      for (const [u, h] of this.health) {
        if (h.suspect === undefined && h.linkUp) continue;
        if ((this.node.uplinkInfo(u)?.vdp.responses ?? 0) <= h.responsesAt) continue;
        const was = this.healthy(u);
        h.linkUp = true;
        h.suspect = undefined;
        this.healthChanged(u, was, 'the nNVE answers');
      }
      if (this.dirtySlots.size === 0) break;
    }
    for (const iface of this.tagDirty) {
      const vm = this.vmOfIface(iface);
      if (vm) this.updateTag(vm, iface);
    }
    this.tagDirty.clear();
    for (const name of this.dirtyVms) {
      const vm = this.vms.get(name);
      this.events.push({ type: 'vm-record', name, record: vm ? clone(vm.rec) : null });
    }
    this.dirtyVms.clear();
    for (const e of this.events) out.push({ type: 'event', event: e });
    this.events.length = 0;
    return out;
  }

  private vmOfIface(iface: IfaceRecord): Vm | undefined {
    for (const vm of this.vms.values()) if (vm.rec.interfaces.includes(iface)) return vm;
    return undefined;
  }

  // ---------------------------------------------------------------------------------------
  // Views

  vmNames(): string[] {
    return [...this.vms.keys()].sort();
  }

  hasVm(name: string): boolean {
    return this.vms.has(name);
  }

  vmView(name: string): VmView | undefined {
    const vm = this.vms.get(name);
    if (!vm) return undefined;
    return {
      name,
      state: vm.rec.state,
      reserve: vm.rec.reserve,
      note: vm.rec.note ?? null,
      op: vm.op ? { id: vm.op.id, op: vm.op.kind } : null,
      interfaces: vm.rec.interfaces.map((i) => {
        const slots = this.slotsOf(vm, i);
        const { slots: _s, tag: _t, ...base } = i;
        const views: SlotView[] = slots.map((s) => ({
          uplink: s.uplink,
          role:
            this.vnMode(i.vni) === 'active-active'
              ? 'active'
              : this.active.get(i.vni) === s.uplink
                ? 'active'
                : 'standby',
          vdpState: s.rec.state,
          tsiState: tsiState(s.rec.state),
          vid: s.rec.vid ?? null,
          pending: s.inflight?.mode ?? null,
          override: s.rec.override ?? null,
          lastError: s.lastError ?? null,
        }));
        const best: TsiState = views.some((v) => v.tsiState === 'Activated')
          ? 'Activated'
          : views.some((v) => v.tsiState === 'Associated')
            ? 'Associated'
            : 'Init';
        return { ...base, localTag: this.localTag(vm, i), tsiState: best, uplinks: views };
      }),
    };
  }

  vnsView(): VnView[] {
    const vnis = new Map<number, number>();
    for (const vm of this.vms.values())
      for (const i of vm.rec.interfaces) vnis.set(i.vni, (vnis.get(i.vni) ?? 0) + 1);
    return [...vnis.keys()]
      .sort((a, b) => a - b)
      .map((vni) => {
        const mode = this.vnMode(vni);
        const active = mode === 'active-standby' ? (this.active.get(vni) ?? null) : null;
        return {
          vni,
          mode,
          active,
          tsis: vnis.get(vni)!,
          uplinks: this.uplinksFor(vni).map((u) => {
            let vid: number | null = null;
            for (const vm of this.vms.values())
              for (const i of vm.rec.interfaces) {
                const r = i.vni === vni ? i.slots[u] : undefined;
                if (vid === null && r && r.state !== 'init' && r.vid !== undefined) vid = r.vid;
              }
            return {
              uplink: u,
              role:
                mode === 'active-active' || active === u
                  ? ('active' as const)
                  : ('standby' as const),
              healthy: this.healthy(u),
              vid,
            };
          }),
        };
      });
  }

  actives(): Map<number, string> {
    return new Map(this.active);
  }

  /** Every VM's record (what the store holds of it). */
  records(): VmRecord[] {
    return [...this.vms.values()].map((v) => clone(v.rec));
  }

  openOps(): number {
    return this.ops.size;
  }
}
