/**
 * BridgeNode.reconfigureEvb (SIGHUP of the nNVE): the changed EVB TLV leaves at once, not at the
 * next periodic LLDPDU, and the station renegotiates; the node's sessions take the new values.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../src/core/random.js';
import { BridgeNode } from '../../src/node/bridge-node.js';
import { StationNode, type StationNodeEvent } from '../../src/node/station-node.js';
import { VlanPoolPolicy } from '../../src/policy/vlan-pool.js';
import { SimBridge, SimStation } from '../../src/sim/adapters.js';
import { Fabric } from '../../src/sim/fabric.js';

const ST = '02:00:00:00:aa:01';
const BR = '02:00:00:00:bb:01';
const values = { r: 3, rte: 8, rwd: 14, rka: 16 };

test('reconfigureEvb: the station renegotiates within a fast-transmit interval', () => {
  const fabric = new Fabric(1);
  const bridge = new BridgeNode({
    ports: [{ name: 'p1', mac: BR, evb: { values } }],
    profile: 'splitnve',
    policy: new VlanPoolPolicy([{ min: 100, max: 199 }]),
    random: seededRandom(2),
  });
  const station = new StationNode({
    uplinks: [{ name: 'eth0', mac: ST, evb: { values } }],
    profile: 'splitnve',
    random: seededRandom(3),
  });
  fabric.addNode(new SimBridge('br', bridge));
  fabric.addNode(new SimStation('st', station));
  fabric.addSegment({
    name: 'c',
    kind: 'link',
    attachments: [
      { node: 'st', port: 'eth0', mac: ST },
      { node: 'br', port: 'p1', mac: BR },
    ],
  });
  const sev: StationNodeEvent[] = [];
  fabric.onEvent((node, e) => {
    if (node === 'st') sev.push(e as StationNodeEvent);
  });
  fabric.deliverOutputs('br', SimBridge.outputs(bridge.start(0)));
  fabric.deliverOutputs('st', SimStation.outputs(station.start(0)));
  // Past the fast transmissions: from now on LLDPDUs are 30 s apart.
  fabric.runFor(10_000_000);
  const negotiated = (): number[] =>
    sev.flatMap((e) => (e.type === 'negotiated' ? [e.negotiated.rka] : []));
  assert.equal(negotiated().at(-1), 16);
  const cfg = bridge.evbAgent('p1')!.config;
  const out = bridge.reconfigureEvb('p1', { ...cfg, values: { ...values, rka: 18 } }, fabric.now);
  fabric.deliverOutputs('br', SimBridge.outputs(out));
  fabric.runFor(100_000); // 100 ms, far below the 30 s transmit interval
  assert.equal(negotiated().at(-1), 18, 'the station saw the new TLV at once');
  assert.equal(bridge.stations().length, 0);
  assert.equal(bridge.peers()[0]?.peers[0]?.negotiated?.rka, 18);
  assert.deepEqual(bridge.reconfigureEvb('nope', cfg, fabric.now), []);
});

test('StationNode.reconfigureEvb: the bridge renegotiates at once and the uplink takes the values', () => {
  const fabric = new Fabric(2);
  const bridge = new BridgeNode({
    ports: [{ name: 'p1', mac: BR, evb: { values } }],
    profile: 'splitnve',
    policy: new VlanPoolPolicy([{ min: 100, max: 199 }]),
    random: seededRandom(4),
  });
  const station = new StationNode({
    uplinks: [{ name: 'eth0', mac: ST, evb: { values } }],
    profile: 'splitnve',
    random: seededRandom(5),
  });
  fabric.addNode(new SimBridge('br', bridge));
  fabric.addNode(new SimStation('st', station));
  fabric.addSegment({
    name: 'c',
    kind: 'link',
    attachments: [
      { node: 'st', port: 'eth0', mac: ST },
      { node: 'br', port: 'p1', mac: BR },
    ],
  });
  fabric.deliverOutputs('br', SimBridge.outputs(bridge.start(0)));
  fabric.deliverOutputs('st', SimStation.outputs(station.start(0)));
  fabric.runFor(10_000_000);
  assert.equal(station.uplinkInfo('eth0')!.timing.rka, 16);
  const cfg = station.evbAgent('eth0')!.config;
  fabric.deliverOutputs(
    'st',
    SimStation.outputs(
      station.reconfigureEvb('eth0', { ...cfg, values: { ...values, rka: 19 } }, fabric.now),
    ),
  );
  fabric.runFor(100_000);
  assert.equal(
    bridge.peers()[0]?.peers[0]?.negotiated?.rka,
    19,
    'the bridge saw the new TLV at once',
  );
  assert.equal(station.uplinkInfo('eth0')!.timing.rka, 19);
  assert.deepEqual(station.reconfigureEvb('nope', cfg, fabric.now), []);
});
