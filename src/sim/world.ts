/**
 * A ready-made simulated deployment for tests and benchmarks: one nNVE (BridgeNode with a VLAN
 * pool policy) and N hypervisors (StationNodes), each on its own port (direct links) or all
 * behind one bridged segment on a single port (Req-1/2). It records every event, checks the
 * invariant "a VSI id is never Activated on two stations at once" on every event, and can
 * compare the station and bridge views.
 */
import { seededRandom } from '../core/random.js';
import { BridgeNode, type BridgeNodeEvent } from '../node/bridge-node.js';
import { StationNode, type StationNodeEvent } from '../node/station-node.js';
import { VlanPoolPolicy } from '../policy/vlan-pool.js';
import { FIF_GROUP_MAC_VID } from '../wire/filter.js';
import { managerIdFromString, VSIID_UUID, vsiKey } from '../wire/vdp.js';
import type { EvbValues } from '../evb/agent.js';
import type { StationEvent } from '../vdp/station.js';
import {
  stateOfMode,
  type Hints,
  type Profile,
  type VsiMode,
  type VsiSpec,
  type VsiState,
} from '../vdp/types.js';
import { SimBridge, SimStation } from './adapters.js';
import { Fabric, type Impairments } from './fabric.js';

export interface WorldOptions {
  readonly seed: number;
  readonly stations: number;
  readonly profile?: Profile;
  readonly impairments?: Impairments;
  /** All stations behind one bridged segment on one nNVE port. */
  readonly shared?: boolean;
  readonly evb?: EvbValues;
  readonly pool?: { min: number; max: number };
  readonly trace?: boolean;
  readonly maxAttempts?: number;
}

export type RequestResult = Extract<StationEvent, { type: 'request-result' }>;

export function stationMac(i: number): string {
  return `02:00:00:01:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
}

export function portMac(i: number): string {
  return `02:00:00:0b:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
}

export class World {
  readonly fabric: Fabric;
  readonly policy: VlanPoolPolicy;
  bridge: BridgeNode;
  readonly stations: StationNode[] = [];
  readonly results = new Map<string, RequestResult>();
  readonly violations: string[] = [];
  readonly bridgeEvents: BridgeNodeEvent[] = [];
  readonly stationEvents: (StationNodeEvent & { station: number })[] = [];
  /**
   * The same invariant as the stations' `vsi-state` events tell it. A takeover can make two
   * stations believe it for a moment (the bridge moves it at once and tells the old holder
   * with an unsolicited message still in flight), so these are transient overlaps; see
   * `stationsActivatedTwice` for what must hold once the network is quiet.
   */
  readonly stationOverlaps: string[] = [];
  /** VSI key -> station index where the bridge has it Activated. */
  private activeAt = new Map<string, string>();
  /** VSI key -> indexes of the stations that hold it Activated. */
  private stationActive = new Map<string, Set<number>>();
  private nextReq = 0;
  private readonly opts: WorldOptions;

  constructor(opts: WorldOptions) {
    this.opts = opts;
    this.fabric = new Fabric(opts.seed, { trace: opts.trace ?? false });
    this.policy = new VlanPoolPolicy([opts.pool ?? { min: 100, max: 3999 }], () => 'segment');
    this.bridge = this.newBridge();
    this.fabric.addNode(new SimBridge('nnve', this.bridge));
    for (let i = 0; i < opts.stations; i++) {
      const s = this.newStation(i);
      this.stations.push(s);
      this.fabric.addNode(new SimStation(`hv${i}`, s));
    }
    if (opts.shared) {
      this.fabric.addSegment({
        name: 'lan',
        kind: 'bridge',
        attachments: [
          { node: 'nnve', port: 'p0', mac: portMac(0) },
          ...this.stations.map((_, i) => ({ node: `hv${i}`, port: 'eth0', mac: stationMac(i) })),
        ],
        ...(opts.impairments ? { impairments: opts.impairments } : {}),
      });
    } else {
      this.stations.forEach((_, i) =>
        this.fabric.addSegment({
          name: `cable${i}`,
          kind: 'link',
          attachments: [
            { node: `hv${i}`, port: 'eth0', mac: stationMac(i) },
            { node: 'nnve', port: `p${i}`, mac: portMac(i) },
          ],
          ...(opts.impairments ? { impairments: opts.impairments } : {}),
        }),
      );
    }
    this.fabric.onEvent((node, ev) => this.onEvent(node, ev));
  }

  private evb(): { values: EvbValues; groupAddresses?: string[] } {
    return { values: this.opts.evb ?? { r: 3, rte: 10, rwd: 14, rka: 18 } };
  }

  private newBridge(): BridgeNode {
    const n = this.opts.shared ? 1 : this.opts.stations;
    return new BridgeNode({
      ports: Array.from({ length: n }, (_, i) => ({
        name: `p${i}`,
        mac: portMac(i),
        evb: this.opts.shared ? { ...this.evb(), destination: '03:53:4e:00:00:01' } : this.evb(),
        groupAddresses: this.opts.shared ? ['03:53:4e:00:00:01'] : [],
      })),
      profile: this.opts.profile ?? 'splitnve',
      policy: this.policy,
      random: seededRandom(this.opts.seed * 7 + 1),
    });
  }

  private newStation(i: number, generation = 0): StationNode {
    return new StationNode({
      uplinks: [
        {
          name: 'eth0',
          mac: stationMac(i),
          ...(this.opts.shared ? { peer: portMac(0), groupAddresses: ['03:53:4e:00:00:01'] } : {}),
          evb: this.opts.shared
            ? { values: this.evb().values, destination: '03:53:4e:00:00:01' }
            : this.evb(),
        },
      ],
      profile: this.opts.profile ?? 'splitnve',
      random: seededRandom(this.opts.seed * 1000 + i * 10 + generation + 3),
      maxAttempts: this.opts.maxAttempts ?? 4,
    });
  }

  start(): void {
    this.fabric.deliverOutputs('nnve', SimBridge.outputs(this.bridge.start(this.fabric.now)));
    this.stations.forEach((s, i) =>
      this.fabric.deliverOutputs(`hv${i}`, SimStation.outputs(s.start(this.fabric.now))),
    );
  }

  /** A deterministic VSI of station `i`, number `j`, in VN `vni`. */
  spec(i: number, j: number, vni = 10000 + (j % 8)): VsiSpec {
    const id = new Uint8Array(16);
    id.set([0x5e, 0x11, (i >> 8) & 0xff, i & 0xff, (j >> 8) & 0xff, j & 0xff], 0);
    id[6] = 0x40;
    id[8] = 0x80;
    return {
      managerId: managerIdFromString('sim'),
      typeId: 7,
      typeVersion: 1,
      idFormat: VSIID_UUID,
      id,
      filterFormat: FIF_GROUP_MAC_VID,
      entries: [
        {
          groupId: vni,
          mac: `52:54:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}:${(j >> 8).toString(16).padStart(2, '0')}:${(j & 0xff).toString(16).padStart(2, '0')}`,
          ps: 0,
          pcp: 0,
          vid: 0,
        },
      ],
    };
  }

  /** Issues a request now; returns its id (the result appears in `results`). */
  request(i: number, mode: VsiMode, spec: VsiSpec, hints: Hints = {}): string {
    const requestId = `r${++this.nextReq}`;
    const outs = this.stations[i]!.request(
      'eth0',
      { mode, spec, hints, requestId },
      this.fabric.now,
    );
    this.fabric.deliverOutputs(`hv${i}`, SimStation.outputs(outs));
    return requestId;
  }

  run(us: number): void {
    this.fabric.runFor(us);
  }

  private onEvent(node: string, ev: unknown): void {
    if (node === 'nnve') {
      const e = ev as BridgeNodeEvent;
      this.bridgeEvents.push(e);
      if (e.type === 'tsi') {
        const where = `${e.port}|${e.station}`;
        if (e.to === 'associated') {
          const other = this.activeAt.get(e.key);
          if (other !== undefined && other !== where) {
            this.violations.push(
              `t=${this.fabric.now} VSI ${e.vsiId} Activated at ${where} while Activated at ${other}`,
            );
          }
          this.activeAt.set(e.key, where);
        } else if (e.from === 'associated' && this.activeAt.get(e.key) === where) {
          this.activeAt.delete(e.key);
        }
      }
      return;
    }
    const idx = Number(node.slice(2));
    const e = ev as StationNodeEvent;
    this.stationEvents.push({ ...e, station: idx });
    if (e.type === 'vsi-state') {
      const at = this.stationActive.get(e.key) ?? new Set<number>();
      if (e.to === 'associated') {
        const others = [...at].filter((j) => j !== idx);
        if (others.length > 0) {
          this.stationOverlaps.push(
            `t=${this.fabric.now} VSI ${e.vsiId} Activated at hv${idx} while Activated at ${others.map((j) => `hv${j}`).join(', ')}`,
          );
        }
        at.add(idx);
        this.stationActive.set(e.key, at);
      } else at.delete(idx);
    }
    if (e.type === 'request-result' && e.requestId) this.results.set(e.requestId, e);
  }

  /** Bridge state of every VSI of station `i`, by VSI key. */
  bridgeView(i: number): Map<string, VsiState> {
    const port = this.opts.shared ? 'p0' : `p${i}`;
    const m = new Map<string, VsiState>();
    for (const v of this.bridge.vsis()) {
      if (v.port === port && v.station === stationMac(i)) m.set(v.vsi.key, v.vsi.state);
    }
    return m;
  }

  stationView(i: number): Map<string, VsiState> {
    const m = new Map<string, VsiState>();
    for (const v of this.stations[i]!.vsis('eth0')) if (v.state !== 'init') m.set(v.key, v.state);
    return m;
  }

  /**
   * VSI ids Activated on more than one station now, by the stations' views, and stations
   * whose `vsi-state` events do not add up to their view (what an orchestrator following
   * the events would believe differs from the station's state).
   */
  stationsActivatedTwice(): string[] {
    const out: string[] = [];
    const at = new Map<string, number[]>();
    this.stations.forEach((_, i) => {
      for (const [k, s] of this.stationView(i)) {
        if (s === 'associated') at.set(k, [...(at.get(k) ?? []), i]);
        const byEvents = this.stationActive.get(k)?.has(i) ?? false;
        if (byEvents !== (s === 'associated'))
          out.push(`hv${i} ${k}: view ${s}, events say ${byEvents ? '' : 'not '}Activated`);
      }
    });
    for (const [k, set] of this.stationActive)
      for (const i of set)
        if (this.stationView(i).get(k) !== 'associated')
          out.push(
            `hv${i} ${k}: events say Activated, view ${this.stationView(i).get(k) ?? 'init'}`,
          );
    for (const [k, is] of at)
      if (is.length > 1) out.push(`${k} Activated on ${is.map((i) => `hv${i}`).join(' and ')}`);
    return out;
  }

  /** Differences between what each station believes and what the bridge holds. */
  disagreements(): string[] {
    const out: string[] = [];
    this.stations.forEach((_, i) => {
      const sv = this.stationView(i);
      const bv = this.bridgeView(i);
      for (const [k, s] of sv)
        if (bv.get(k) !== s) out.push(`hv${i} ${k}: station ${s}, bridge ${bv.get(k) ?? 'init'}`);
      for (const [k, s] of bv) if (!sv.has(k)) out.push(`hv${i} ${k}: station init, bridge ${s}`);
    });
    return out;
  }

  /** Restarts the nNVE: a new BridgeNode restored from the old one's VSIs (as persisted). */
  restartBridge(): void {
    const saved = this.bridge.vsis().map((v) => ({ port: v.port, station: v.station, vsi: v.vsi }));
    const stations = this.bridge.rememberable();
    this.bridge = this.newBridge();
    this.fabric.replaceNode(new SimBridge('nnve', this.bridge));
    const outs = this.bridge.restore(saved, this.fabric.now, stations);
    this.fabric.deliverOutputs(
      'nnve',
      SimBridge.outputs([...outs, ...this.bridge.start(this.fabric.now)]),
    );
  }

  /** Restarts hypervisor `i`: a new StationNode that re-asserts what the old one held. */
  restartStation(i: number, generation: number): void {
    // What a tNVE persists: the state the orchestrator wants (its last request), else the
    // confirmed one.
    const saved: { spec: VsiSpec; state: VsiState }[] = [];
    for (const v of this.stations[i]!.vsis('eth0')) {
      if (v.wanted) saved.push({ spec: v.wanted.spec, state: stateOfMode(v.wanted.mode) });
      else if (v.state !== 'init' && v.spec) saved.push({ spec: v.spec, state: v.state });
    }
    const remembered = this.stations[i]!.rememberable('eth0');
    // the new instance holds nothing until its re-assertions are answered
    for (const at of this.stationActive.values()) at.delete(i);
    const s = this.newStation(i, generation);
    this.stations[i] = s;
    this.fabric.replaceNode(new SimStation(`hv${i}`, s));
    this.fabric.deliverOutputs(
      `hv${i}`,
      SimStation.outputs([
        ...s.start(this.fabric.now),
        ...s.restore('eth0', saved, this.fabric.now, remembered),
      ]),
    );
  }

  keyOf(spec: VsiSpec): string {
    return vsiKey(spec.idFormat, spec.id);
  }
}
