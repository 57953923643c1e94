/**
 * BridgeNode.reconfigureEvb (SIGHUP of the nNVE): the changed EVB TLV leaves at once, not at the
 * next periodic LLDPDU, and the station renegotiates; the node's sessions take the new values.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SimBridge, SimStation } from '../../src/sim/adapters.js';
import { simPair, EVB_VALUES } from '../harness/sim-pair.js';

const values = EVB_VALUES;

test('reconfigureEvb: the station renegotiates within a fast-transmit interval', () => {
  const { fabric, bridge, sev } = simPair();
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
  const { fabric, bridge, station } = simPair({ seeds: [2, 4, 5] });
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
