/**
 * `splitnve demo` (what `npm start` runs): an in-memory fabric — one nNVE (bridge) with two
 * ports, two hypervisors (stations) — walking one VM through create, start, suspend, resume,
 * live migration to the other hypervisor and stop, printing every state change on both sides.
 */
import { seededRandom } from '../core/random.js';
import { BridgeNode, type BridgeNodeEvent } from '../node/bridge-node.js';
import { StationNode, type StationNodeEvent } from '../node/station-node.js';
import { VlanPoolPolicy } from '../policy/vlan-pool.js';
import { SimBridge, SimStation } from '../sim/adapters.js';
import { Fabric } from '../sim/fabric.js';
import { parseUuid } from '../wire/bytes.js';
import { FIF_GROUP_MAC_VID } from '../wire/filter.js';
import { managerIdFromString, VSIID_UUID } from '../wire/vdp.js';
import { tsiState, type Hints, type Profile, type VsiMode, type VsiSpec } from '../vdp/types.js';
import { VSI_TLV_NAMES } from '../wire/vdp.js';

export interface DemoOptions {
  readonly profile?: Profile;
  readonly seed?: number;
  readonly write?: (line: string) => void;
}

const MODE_NAMES = VSI_TLV_NAMES;

export function runDemo(opts: DemoOptions = {}): { lines: string[]; ok: boolean } {
  const lines: string[] = [];
  const write = (l: string): void => {
    lines.push(l);
    opts.write?.(l);
  };
  const profile = opts.profile ?? 'splitnve';
  const fabric = new Fabric(opts.seed ?? 1);
  const evb = { values: { r: 3, rte: 8, rwd: 14, rka: 20 } };
  const policy = new VlanPoolPolicy([{ min: 100, max: 199 }], () => 'tor1');
  const bridge = new BridgeNode({
    ports: [
      { name: 'swp1', mac: '02:00:00:00:bb:01', evb },
      { name: 'swp2', mac: '02:00:00:00:bb:02', evb },
    ],
    profile,
    policy,
    random: seededRandom(11),
  });
  const mkStation = (id: string, mac: string, seed: number): StationNode =>
    new StationNode({ uplinks: [{ name: 'eth0', mac, evb }], profile, random: seededRandom(seed) });
  const hv1 = mkStation('hv1', '02:00:00:00:aa:01', 21);
  const hv2 = mkStation('hv2', '02:00:00:00:aa:02', 22);
  fabric.addNode(new SimBridge('nnve', bridge));
  fabric.addNode(new SimStation('hv1', hv1));
  fabric.addNode(new SimStation('hv2', hv2));
  fabric.addSegment({
    name: 'cable1',
    kind: 'link',
    attachments: [
      { node: 'hv1', port: 'eth0', mac: '02:00:00:00:aa:01' },
      { node: 'nnve', port: 'swp1', mac: '02:00:00:00:bb:01' },
    ],
  });
  fabric.addSegment({
    name: 'cable2',
    kind: 'link',
    attachments: [
      { node: 'hv2', port: 'eth0', mac: '02:00:00:00:aa:02' },
      { node: 'nnve', port: 'swp2', mac: '02:00:00:00:bb:02' },
    ],
  });

  const t = (): string => `t=${(fabric.now / 1e6).toFixed(3)}s`;
  let failures = 0;
  fabric.onEvent((node, ev) => {
    const line = describe(node, ev as BridgeNodeEvent | StationNodeEvent);
    if (line) write(`${t()}  ${node.padEnd(5)} ${line}`);
    const e = ev as StationNodeEvent;
    if (e.type === 'request-result' && !e.ok) failures++;
  });

  write(`splitnve demo: one nNVE (ports swp1, swp2), hypervisors hv1 and hv2, profile ${profile}`);
  write(
    `VM 6f1c2d3e-0000-4000-8000-00000000a001, MAC 52:54:00:00:a0:01, VN 10000 (null VID: the nNVE picks the local tag)`,
  );
  fabric.deliverOutputs('nnve', SimBridge.outputs(bridge.start(0)));
  fabric.deliverOutputs('hv1', SimStation.outputs(hv1.start(0)));
  fabric.deliverOutputs('hv2', SimStation.outputs(hv2.start(0)));
  fabric.runFor(2_000_000);

  const spec: VsiSpec = {
    managerId: managerIdFromString('splitnve-demo'),
    typeId: 1,
    typeVersion: 1,
    idFormat: VSIID_UUID,
    id: parseUuid('6f1c2d3e-0000-4000-8000-00000000a001')!,
    filterFormat: FIF_GROUP_MAC_VID,
    entries: [{ groupId: 10000, mac: '52:54:00:00:a0:01', ps: 0, pcp: 0, vid: 0 }],
  };
  const step = (title: string, who: 'hv1' | 'hv2', mode: VsiMode, hints: Hints = {}): void => {
    write('');
    write(
      `== ${title}: ${who} sends ${MODE_NAMES[mode]}${hints.m ? ' M=1' : ''}${hints.s ? ' S=1' : ''}`,
    );
    const node = who === 'hv1' ? hv1 : hv2;
    fabric.deliverOutputs(
      who,
      SimStation.outputs(node.request('eth0', { mode, spec, hints, requestId: title }, fabric.now)),
    );
    fabric.runFor(500_000);
  };

  step('create (defined, shut down)', 'hv1', 2);
  step('start', 'hv1', 3);
  step('suspend', 'hv1', 2, { s: true });
  step('resume', 'hv1', 3);
  step('migrate: destination prepares', 'hv2', 2, { m: true });
  step('migrate: destination runs', 'hv2', 3, { m: true });
  step('migrate: source leaves', 'hv1', 4, { s: true });
  step('stop', 'hv2', 4);
  write('');
  const left = bridge.vsis().length;
  write(
    `done: nNVE holds ${left} TSI(s); VLAN assignments left: ${policy.assignments().length}; failed requests: ${failures}`,
  );
  return { lines, ok: failures === 0 && left === 0 };
}

function describe(node: string, e: BridgeNodeEvent | StationNodeEvent): string | undefined {
  switch (e.type) {
    case 'tsi':
      return `TSI ${e.vsiId} on ${e.port} from ${e.station}: ${tsiState(e.from)} -> ${tsiState(e.to)} (${e.from} -> ${e.to}, ${e.cause}) VID ${e.vsi.entries.map((x) => x.vid).join(',')}`;
    case 'vsi-state':
      return `VSI ${e.vsiId}: ${e.from} -> ${e.to} (${e.cause})`;
    case 'request-result':
      return e.ok
        ? `${MODE_NAMES[e.mode]} accepted, local tag VID ${e.entries.map((x) => x.vid).join(',')}`
        : `${MODE_NAMES[e.mode]} FAILED: ${e.error} ${e.message}`;
    case 'negotiated':
      return `EVB with ${e.peer}: R=${e.negotiated.r} RTE=${e.negotiated.rte} RWD=${e.negotiated.rwd} RKA=${e.negotiated.rka} GroupID=${e.negotiated.groupId} profile ${e.profile}`;
    case 'refused':
      return `refused ${e.vsiId}: reason ${e.reason} ${e.message}`;
    default:
      void node;
      return undefined;
  }
}
