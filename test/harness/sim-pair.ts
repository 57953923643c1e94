/**
 * One splitnve bridge node and one station node on a simulated cable (src/sim), both started
 * and past EVB negotiation: the rig of the machine tests. Plus the VSI specs they request.
 */
import { seededRandom } from '../../src/core/random.js';
import { BridgeNode, type BridgeNodeEvent } from '../../src/node/bridge-node.js';
import { StationNode, type StationNodeEvent } from '../../src/node/station-node.js';
import { VlanPoolPolicy } from '../../src/policy/vlan-pool.js';
import { SimBridge, SimStation } from '../../src/sim/adapters.js';
import { Fabric, type SimNode } from '../../src/sim/fabric.js';
import type { BridgePolicy } from '../../src/vdp/bridge.js';
import type { Profile, VsiSpec } from '../../src/vdp/types.js';
import type { FilterEntry } from '../../src/wire/filter.js';
import { managerIdFromString, VSIID_UUID } from '../../src/wire/vdp.js';

export const ST = '02:00:00:00:aa:01';
export const BR = '02:00:00:00:bb:01';
/** EVB values of both sides: ACK 2.56 ms, resource wait 164 ms, keep-alive 655 ms. */
export const EVB_VALUES = { r: 3, rte: 8, rwd: 14, rka: 16 } as const;

export interface SimPairOptions {
  readonly profile?: Profile;
  /** VLAN pool of the bridge's policy (default 100-199), unless `policy` is given. */
  readonly pool?: readonly [number, number];
  readonly policy?: BridgePolicy;
  /** false: that side does not announce GroupID support (BGID / SGID). */
  readonly bridgeGroupId?: boolean;
  readonly stationGroupId?: boolean;
  readonly maxAttempts?: number;
  /** Seeds of the fabric, the bridge and the station. */
  readonly seeds?: readonly [number, number, number];
  /** Wraps the bridge's simulation node (e.g. to drop some of its frames). */
  readonly wrapBridge?: (b: SimBridge) => SimNode;
}

export interface SimPair {
  readonly fabric: Fabric;
  readonly bridge: BridgeNode;
  readonly station: StationNode;
  /** Events of each side, in order (with the virtual time they came at). */
  readonly bev: BridgeNodeEvent[];
  readonly sev: StationNodeEvent[];
  readonly sevAt: number[];
}

/** Builds, starts and runs the pair for 100 ms (EVB negotiated). */
export function simPair(opts: SimPairOptions = {}): SimPair {
  const [fs, bs, ss] = opts.seeds ?? [1, 2, 3];
  const profile = opts.profile ?? 'splitnve';
  const fabric = new Fabric(fs);
  const bridge = new BridgeNode({
    ports: [
      {
        name: 'p1',
        mac: BR,
        evb: { values: EVB_VALUES, ...(opts.bridgeGroupId === false ? { groupId: false } : {}) },
      },
    ],
    profile,
    policy:
      opts.policy ??
      new VlanPoolPolicy([{ min: opts.pool?.[0] ?? 100, max: opts.pool?.[1] ?? 199 }]),
    random: seededRandom(bs),
  });
  const station = new StationNode({
    uplinks: [
      {
        name: 'eth0',
        mac: ST,
        evb: {
          values: EVB_VALUES,
          ...(opts.stationGroupId === false ? { groupId: false } : {}),
        },
      },
    ],
    profile,
    random: seededRandom(ss),
    ...(opts.maxAttempts ? { maxAttempts: opts.maxAttempts } : {}),
  });
  const sb = new SimBridge('br', bridge);
  fabric.addNode(opts.wrapBridge ? opts.wrapBridge(sb) : sb);
  fabric.addNode(new SimStation('st', station));
  fabric.addSegment({
    name: 'c',
    kind: 'link',
    attachments: [
      { node: 'st', port: 'eth0', mac: ST },
      { node: 'br', port: 'p1', mac: BR },
    ],
  });
  const bev: BridgeNodeEvent[] = [];
  const sev: StationNodeEvent[] = [];
  const sevAt: number[] = [];
  fabric.onEvent((node, e, now) => {
    if (node === 'br') bev.push(e as BridgeNodeEvent);
    else {
      sev.push(e as StationNodeEvent);
      sevAt.push(now);
    }
  });
  fabric.deliverOutputs('br', SimBridge.outputs(bridge.start(0)));
  fabric.deliverOutputs('st', SimStation.outputs(station.start(0)));
  fabric.runFor(100_000);
  return { fabric, bridge, station, bev, sev, sevAt };
}

/** A filter entry of VSI `n`: its own MAC, in VN `groupId` (none: MAC/VID formats). */
export function testEntry(n: number, groupId: number | undefined = 10000, vid = 0): FilterEntry {
  const mac = `52:54:00:00:00:${n.toString(16).padStart(2, '0')}`;
  return groupId === undefined ? { mac, ps: 0, pcp: 0, vid } : { groupId, mac, ps: 0, pcp: 0, vid };
}

/** VSI `n` (UUID id `<tag>00…00<n>`), type 42 v1, Manager ID "mgr", filter format 4. */
export function testSpec(
  n: number,
  entries: FilterEntry[] = [testEntry(n)],
  filterFormat = 4,
  opts: { tag?: number; typeId?: number } = {},
): VsiSpec {
  const id = new Uint8Array(16);
  id[0] = opts.tag ?? 0xa1;
  id[15] = n;
  return {
    managerId: managerIdFromString('mgr'),
    typeId: opts.typeId ?? 42,
    typeVersion: 1,
    idFormat: VSIID_UUID,
    id,
    filterFormat,
    entries,
  };
}
