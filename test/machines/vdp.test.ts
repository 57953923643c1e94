import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BridgeNode, BridgeNodeEvent, BridgeNodeOutput } from '../../src/node/bridge-node.js';
import type { StationNode, StationNodeEvent } from '../../src/node/station-node.js';
import { SimBridge, SimStation } from '../../src/sim/adapters.js';
import type { Fabric } from '../../src/sim/fabric.js';
import { simPair, ST, testSpec } from '../harness/sim-pair.js';
import { ByteWriter, fromHex, toHex } from '../../src/wire/bytes.js';
import { decodeFrame } from '../../src/wire/frame.js';
import { encodeEthernet, ETHERTYPE_ECP } from '../../src/wire/ethernet.js';
import { encodeEcp } from '../../src/wire/ecp.js';
import {
  encodeManagerId,
  encodeVsi,
  managerIdFromString,
  type VsiTlv,
} from '../../src/wire/vdp.js';
import type { Profile, VsiMode, VsiSpec } from '../../src/vdp/types.js';

const spec = testSpec;

interface Rig {
  fabric: Fabric;
  bridge: BridgeNode;
  station: StationNode;
  bev: BridgeNodeEvent[];
  sev: StationNodeEvent[];
  request(mode: VsiMode, s: VsiSpec, hints?: { m?: boolean; s?: boolean }): string;
  result(id: string): Extract<StationNodeEvent, { type: 'request-result' }> | undefined;
  bridgeDo(outs: BridgeNodeOutput[]): void;
}

function rig(
  profile: Profile = 'splitnve',
  opts: { groupId?: boolean; pool?: [number, number] } = {},
): Rig {
  const { fabric, bridge, station, bev, sev } = simPair({
    profile,
    ...(opts.pool ? { pool: opts.pool } : {}),
    ...(opts.groupId === false ? { bridgeGroupId: false } : {}),
  });
  let n = 0;
  return {
    fabric,
    bridge,
    station,
    bev,
    sev,
    request(mode, s, hints = {}) {
      const requestId = `q${++n}`;
      fabric.deliverOutputs(
        'st',
        SimStation.outputs(
          station.request('eth0', { mode, spec: s, hints, requestId }, fabric.now),
        ),
      );
      fabric.runFor(50_000);
      return requestId;
    },
    result(id) {
      return sev.find(
        (e): e is Extract<StationNodeEvent, { type: 'request-result' }> =>
          e.type === 'request-result' && e.requestId === id,
      );
    },
    bridgeDo(outs) {
      fabric.deliverOutputs('br', SimBridge.outputs(outs));
      fabric.runFor(50_000);
    },
  };
}

test('null VID: the bridge assigns one VID per VN from its pool and the station adopts it', () => {
  const r = rig();
  const a = r.result(r.request(3, spec(1)))!;
  assert.ok(a.ok);
  assert.equal(a.entries[0]!.vid, 100);
  const b = r.result(r.request(3, spec(2)))!;
  assert.ok(b.ok && b.entries[0]!.vid === 100, 'same VN, same VID');
  const c = r.result(
    r.request(2, spec(3, [{ groupId: 10001, mac: '52:54:00:00:00:03', ps: 0, pcp: 0, vid: 0 }])),
  )!;
  assert.ok(c.ok && c.entries[0]!.vid === 101);
  // keep-alives carry the adopted VID and keep the VSI (several expiry periods)
  r.fabric.runFor(5_000_000);
  assert.equal(r.bridge.vsis().length, 3);
  assert.equal(
    r.station.vsis('eth0').find((v) => v.spec?.entries[0]!.mac === '52:54:00:00:00:01')!.spec!
      .entries[0]!.vid,
    100,
  );
  assert.ok(r.station.uplinkInfo('eth0')!.vdp.keepAlives >= 3);
  assert.ok(!r.bev.some((e) => e.type === 'tsi' && e.cause === 'keepalive-expired'));
});

test('invalid requests get their reason code and do not disturb other VSIs', () => {
  const r = rig('splitnve', { pool: [100, 100] });
  assert.ok(r.result(r.request(3, spec(1)))!.ok);
  const vid1 = r.result(
    r.request(3, spec(2, [{ groupId: 10000, mac: '52:54:00:00:00:02', ps: 0, pcp: 0, vid: 1 }])),
  )!;
  assert.equal(vid1.ok, false);
  assert.equal(!vid1.ok && vid1.reason, 5);
  assert.equal(!vid1.ok && vid1.hard, true);
  const zeroGroup = r.result(
    r.request(3, spec(3, [{ groupId: 0, mac: '52:54:00:00:00:03', ps: 0, pcp: 0, vid: 0 }])),
  )!;
  assert.equal(!zeroGroup.ok && zeroGroup.reason, 5);
  const mcast = r.result(
    r.request(3, spec(4, [{ groupId: 10000, mac: '01:00:5e:00:00:01', ps: 0, pcp: 0, vid: 0 }])),
  )!;
  assert.equal(!mcast.ok && mcast.reason, 5);
  const exhausted = r.result(
    r.request(3, spec(5, [{ groupId: 20000, mac: '52:54:00:00:00:05', ps: 0, pcp: 0, vid: 0 }])),
  )!;
  assert.equal(!exhausted.ok && exhausted.reason, 2, 'pool exhausted: insufficient resources');
  assert.equal(!exhausted.ok && exhausted.hard, false);
  // the first VSI is untouched
  assert.equal(r.bridge.vsis().length, 1);
  assert.equal(r.bridge.vsis()[0]!.vsi.state, 'associated');
  const refusedEvents = r.bev
    .filter((e) => e.type === 'refused')
    .map((e) => (e as { reason: number }).reason);
  assert.deepEqual(refusedEvents, [5, 5, 5, 2]);
});

test('GroupID formats without GroupID support are refused with reason 1', () => {
  const r = rig('802.1Qbg', { groupId: false });
  const x = r.result(r.request(3, spec(1)))!;
  assert.equal(x.ok, false);
  assert.equal(
    !x.ok && x.error,
    'unsupported',
    'the station knows from EVB and does not even send it',
  );
  // force it on the wire: a raw PDU with fif 4 from the station's MAC
  const w = new ByteWriter(64);
  encodeManagerId(w, managerIdFromString('mgr'));
  encodeVsi(w, { type: 3, status: 0, ...spec(2) });
  w.u16(0);
  const frame = encodeEthernet(
    { destination: '01:80:c2:00:00:00', source: ST, ethertype: ETHERTYPE_ECP },
    encodeEcp({ version: 1, op: 0, subtype: 1, sequence: 999 }, w.finish()),
  );
  const outs = r.bridge.handleFrame('p1', frame, r.fabric.now);
  const resp = outs
    .filter((o) => o.type === 'transmit')
    .map((o) => decodeFrame((o as { frame: Uint8Array }).frame))
    .find((f) => f.vdp);
  assert.ok(resp, 'a response was sent');
  const tlv = resp.vdp!.items.find((i) => i.tlv.kind === 'vsi')!.tlv as VsiTlv;
  assert.equal(tlv.status, 0x40 | 0x10 | 1, 'response, hard, invalid format');
});

test('malformed TLVs: wrong length answered with reason 1, unknown TLVs skipped, the rest processed', () => {
  const r = rig();
  const mgr = managerIdFromString('mgr');
  const good = new ByteWriter(64);
  encodeVsi(good, { type: 3, status: 0, ...spec(7) });
  const bad = new ByteWriter(64);
  encodeVsi(bad, { type: 3, status: 0, ...spec(8) });
  const badBytes = bad.finish();
  badBytes[1] = badBytes[1]! - 3; // length no longer 25 + n·12
  const w = new ByteWriter(128);
  encodeManagerId(w, mgr);
  w.u16((9 << 9) | 3).bytes(Uint8Array.of(1, 2, 3)); // unknown TLV type 9
  w.bytes(badBytes.subarray(0, badBytes.length - 3));
  w.bytes(good.finish());
  w.u16(0);
  const frame = encodeEthernet(
    { destination: '01:80:c2:00:00:00', source: ST, ethertype: ETHERTYPE_ECP },
    encodeEcp({ version: 1, op: 0, subtype: 1, sequence: 77 }, w.finish()),
  );
  const outs = r.bridge.handleFrame('p1', frame, r.fabric.now);
  const frames = outs
    .filter((o) => o.type === 'transmit')
    .map((o) => decodeFrame((o as { frame: Uint8Array }).frame));
  assert.ok(
    frames.some((f) => f.ecp?.op === 1 && f.ecp.sequence === 77),
    'ECP ACK',
  );
  const tlvs = frames
    .flatMap((f) => f.vdp?.items ?? [])
    .filter((i) => i.tlv.kind === 'vsi')
    .map((i) => i.tlv as VsiTlv);
  assert.deepEqual(
    tlvs.map((t) => [t.id[15], t.status]),
    [
      [8, 0x40 | 0x10 | 1],
      [7, 0x40],
    ],
  );
  assert.equal(r.bridge.vsis().length, 1);
  // a PDU that does not start with a Manager ID is dropped whole
  const w2 = new ByteWriter(64);
  encodeVsi(w2, { type: 3, status: 0, ...spec(9) });
  const f2 = encodeEthernet(
    { destination: '01:80:c2:00:00:00', source: ST, ethertype: ETHERTYPE_ECP },
    encodeEcp({ version: 1, op: 0, subtype: 1, sequence: 78 }, w2.finish()),
  );
  const o2 = r.bridge.handleFrame('p1', f2, r.fabric.now);
  assert.ok(
    o2.some(
      (o) =>
        o.type === 'event' && o.event.type === 'frame-dropped' && o.event.field === 'vdp.managerId',
    ),
  );
  assert.equal(r.bridge.vsis().length, 1);
});

test('keep-alive expiry: the bridge de-associates with status 0x00 and the station learns it', () => {
  const r = rig();
  assert.ok(r.result(r.request(3, spec(1)))!.ok);
  r.fabric.setImpairments('c', { loss: 1 });
  r.fabric.runFor(3_000_000); // expiry = 1.5·(7·2.56 ms + 655 ms) ≈ 1.01 s
  const exp = r.bev.filter((e) => e.type === 'tsi' && e.cause === 'keepalive-expired');
  assert.equal(exp.length, 1);
  assert.equal(r.bridge.vsis().length, 0);
  r.fabric.setImpairments('c', {});
  r.fabric.runFor(2_000_000);
  // the unsolicited De-Associate (retried after ECP failures) reached the station, or its
  // next keep-alive re-associated it: either way both sides agree
  const st = r.station.vsis('eth0').filter((v) => v.state !== 'init').length;
  assert.equal(st, r.bridge.vsis().length);
});

test('unsolicited De-Associate frame matches lldpad (type 4, status 0x00, stored filter)', () => {
  const r = rig('802.1Qbg');
  assert.ok(r.result(r.request(3, spec(1)))!.ok);
  const key = r.bridge.vsis()[0]!.vsi.key;
  const { outputs, count } = r.bridge.deassociate({ port: 'p1', station: ST, key }, r.fabric.now);
  assert.equal(count, 1);
  const f = outputs
    .filter((o) => o.type === 'transmit')
    .map((o) => decodeFrame((o as { frame: Uint8Array }).frame))
    .find((x) => x.vdp)!;
  const t = f.vdp!.items.find((i) => i.tlv.kind === 'vsi')!.tlv as VsiTlv;
  assert.equal(t.type, 4);
  assert.equal(t.status, 0);
  assert.equal(t.entries[0]!.vid, 100);
  r.bridgeDo(outputs);
  assert.ok(
    r.sev.some(
      (e) => e.type === 'vsi-state' && e.cause === 'bridge-deassociate' && e.to === 'init',
    ),
  );
  assert.equal(r.station.vsis('eth0').length, 0);
});

test('deactivate: splitnve sends Pre-Associate-RR (status 0), the plain profile de-associates', () => {
  const s = rig('splitnve');
  assert.ok(s.result(s.request(3, spec(1)))!.ok);
  const key = s.bridge.vsis()[0]!.vsi.key;
  const d = s.bridge.deactivate({ port: 'p1', station: ST, key }, s.fabric.now);
  assert.equal(d.result, 'deactivated');
  s.bridgeDo(d.outputs);
  assert.equal(s.station.vsis('eth0')[0]!.state, 'pre-associated-rr');
  assert.equal(s.bridge.vsis()[0]!.vsi.state, 'pre-associated-rr');
  s.fabric.runFor(3_000_000);
  assert.equal(
    s.bridge.vsis()[0]!.vsi.state,
    'pre-associated-rr',
    'keep-alives now carry Pre-Associate-RR',
  );
  const p = rig('802.1Qbg');
  assert.ok(p.result(p.request(3, spec(1)))!.ok);
  const d2 = p.bridge.deactivate({ port: 'p1', station: ST, key }, p.fabric.now);
  assert.equal(d2.result, 'deassociated');
  // and a station in the plain profile may not deactivate itself
  const x = p.result(p.request(3, spec(2)))!;
  assert.ok(x.ok);
  const y = p.result(p.request(2, spec(2)))!;
  assert.equal(!y.ok && y.error, 'unsupported');
});

test('requests are packed: 60 VSIs leave in a few PDUs (splitnve), one per PDU in the plain profile', () => {
  const r = rig('splitnve');
  const ids = [];
  for (let i = 1; i <= 60; i++) {
    const s = spec(i);
    r.fabric.deliverOutputs(
      'st',
      SimStation.outputs(
        r.station.request('eth0', { mode: 3, spec: s, requestId: `p${i}` }, r.fabric.now),
      ),
    );
    ids.push(`p${i}`);
  }
  r.fabric.runFor(500_000);
  assert.ok(ids.every((id) => r.result(id)?.ok));
  const pdus = r.station.uplinkInfo('eth0')!.vdp.pdusBuilt;
  assert.ok(pdus <= 4, `${pdus} PDUs`);
});

test('lldpad station frames (vector 02) get a response our way: VID assigned, End TLV, same VSI', () => {
  const r = rig('802.1Qbg');
  // lldpad's ASSOC request, fif 4, GID 10000, VID 0, from 02:00:00:00:aa:01
  const req = fromHex(
    '0180c200000002000000aa018940100100010a106e76656d67723100000000000000000006250000002a0105a1b2c3d400014000800000000000000a040001000027100200000000010000',
  )!;
  const outs = r.bridge.handleFrame('p1', req, r.fabric.now);
  const tx = outs
    .filter((o) => o.type === 'transmit')
    .map((o) => (o as { frame: Uint8Array }).frame);
  assert.equal(tx.length, 2);
  // The response first, then the ECP ACK of the request (answers are not held behind the ACK).
  assert.equal(
    toHex(tx[1]!).slice(0, 36),
    '0180c200000002000000bb01894014010001',
    'ACK seq 1 from the port MAC to the group',
  );
  const resp = toHex(tx[0]!);
  // lldpad's own response would be ...06254000002a0105<uuid>040001000027100200000000010000 (VID 0);
  // ours carries VID 100 and an End TLV
  assert.ok(
    resp.includes(
      '0a106e76656d677231000000000000000000' +
        '06254000002a0105a1b2c3d400014000800000000000000a04000100002710020000000001' +
        '0064' +
        '0000',
    ),
    resp,
  );
});

test('lldpad bridge response (vector 07, fif 1 PS=1 PCP=3 VID=100) is accepted by our station', () => {
  const r = rig('802.1Qbg');
  const s: VsiSpec = {
    ...spec(0),
    id: fromHex('a1b2c3d4000440008000000000000000d'.slice(0, 32))!,
    managerId: managerIdFromString('nvemgr1'),
    filterFormat: 1,
    entries: [{ ps: 1, pcp: 3, vid: 100 }],
  };
  s.id.set(fromHex('a1b2c3d400044000800000000000000d')!);
  r.fabric.setImpairments('c', { loss: 1 }); // keep our bridge out of it
  const id = `raw`;
  r.station.request('eth0', { mode: 2, spec: s, requestId: id }, r.fabric.now);
  // lldpad bridge's PreAssoc-RR response, sent to the group from bb:01 with its own sequence
  const resp = fromHex(
    '0180c200000002000000bb0189401001000a0a106e76656d677231000000000000000000041b4000002a0105a1b2c3d400044000800000000000000d010001b064',
  )!;
  const outs = r.station.handleFrame('eth0', resp, r.fabric.now + 1000);
  const res = outs.find((o) => o.type === 'event' && o.event.type === 'request-result');
  assert.ok(res && res.type === 'event' && res.event.type === 'request-result' && res.event.ok);
  assert.equal(r.station.vsis('eth0')[0]!.state, 'pre-associated-rr');
});
