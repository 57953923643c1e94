import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BridgeNode, type BridgeNodeEvent } from '../../src/node/bridge-node.js';
import { StationNode, type StationNodeEvent } from '../../src/node/station-node.js';
import { SimBridge, SimStation } from '../../src/sim/adapters.js';
import { Fabric, type SimNode, type SimOutput } from '../../src/sim/fabric.js';
import { ByteWriter } from '../../src/wire/bytes.js';
import { encodeEcp } from '../../src/wire/ecp.js';
import { encodeEthernet, ETHERTYPE_ECP } from '../../src/wire/ethernet.js';
import { decodeFrame } from '../../src/wire/frame.js';
import { DEFAULT_WIRE_OPTIONS } from '../../src/wire/options.js';
import { responseStatus } from '../../src/wire/status.js';
import {
  encodeManagerId,
  encodeVsi,
  managerIdFromString,
  type VsiTlv,
} from '../../src/wire/vdp.js';
import { VdpStation, type StationEvent } from '../../src/vdp/station.js';
import { parseVdpPdu } from '../../src/vdp/pdu.js';
import {
  ackTimeoutUs,
  keepAliveExpiryUs,
  responseWaitUs,
  type VsiMode,
  type VsiSpec,
} from '../../src/vdp/types.js';
import type { FilterEntry } from '../../src/wire/filter.js';
import { EVB_VALUES, simPair, ST, testEntry, testSpec } from '../harness/sim-pair.js';

const evbValues = EVB_VALUES;
type Result = Extract<StationNodeEvent, { type: 'request-result' }>;

const entry = testEntry;
const spec = (n: number, entries: FilterEntry[] = [entry(n)], filterFormat = 4): VsiSpec =>
  testSpec(n, entries, filterFormat, { tag: 0xe1 });

/**
 * The bridge with a switch: when `mute` is on, every ECP request it sends (VDP responses and
 * unsolicited TLVs) is dropped; LLDP and ECP ACKs still go out. A bridge that hears and
 * acknowledges but never answers.
 */
class MutableBridge implements SimNode {
  mute = false;
  dropped = 0;
  constructor(private readonly inner: SimBridge) {}
  get id(): string {
    return this.inner.id;
  }
  deadline(): number | undefined {
    return this.inner.deadline();
  }
  handleTimeout(now: number): SimOutput[] {
    return this.filter(this.inner.handleTimeout(now));
  }
  handleFrame(port: string, frame: Uint8Array, now: number): SimOutput[] {
    return this.filter(this.inner.handleFrame(port, frame, now));
  }
  private filter(outs: SimOutput[]): SimOutput[] {
    if (!this.mute) return outs;
    return outs.filter((o) => {
      const drop = o.type === 'transmit' && decodeFrame(o.frame).ecp?.op === 0;
      if (drop) this.dropped++;
      return !drop;
    });
  }
}

interface Rig {
  fabric: Fabric;
  bridge: BridgeNode;
  sim: MutableBridge;
  station: StationNode;
  bev: BridgeNodeEvent[];
  results: Map<string, { at: number; e: Result }>;
  send(mode: VsiMode, s: VsiSpec): { id: string; at: number };
}

function rig(
  opts: { maxAttempts?: number; pool?: [number, number]; stationGroupId?: boolean } = {},
): Rig {
  let sim: MutableBridge | undefined;
  const { fabric, bridge, station, bev } = simPair({
    seeds: [5, 6, 7],
    ...(opts.pool ? { pool: opts.pool } : {}),
    ...(opts.maxAttempts ? { maxAttempts: opts.maxAttempts } : {}),
    ...(opts.stationGroupId === false ? { stationGroupId: false } : {}),
    wrapBridge: (b) => (sim = new MutableBridge(b)),
  });
  const results = new Map<string, { at: number; e: Result }>();
  fabric.onEvent((node, ev, now) => {
    const e = ev as StationNodeEvent;
    if (node === 'st' && e.type === 'request-result' && e.requestId)
      results.set(e.requestId, { at: now, e });
  });
  let n = 0;
  return {
    fabric,
    bridge,
    sim: sim!,
    station,
    bev,
    results,
    send(mode, s) {
      const id = `q${++n}`;
      const at = fabric.now;
      fabric.deliverOutputs(
        'st',
        SimStation.outputs(station.request('eth0', { mode, spec: s, requestId: id }, at)),
      );
      return { id, at };
    },
  };
}

test('a bridge that acknowledges but never answers: timeout after the response wait, VSI not kept', () => {
  const r = rig({ maxAttempts: 1 });
  const timing = r.station.rememberable('eth0')!.timing;
  const { r: R, rte, rwd, rka } = timing;
  assert.deepEqual({ r: R, rte, rwd, rka }, evbValues, 'negotiated');
  const wait = responseWaitUs(timing); // 1.5·(7·2.56 ms + 163.84 ms) = 272.64 ms
  assert.equal(wait, 272_640);
  r.sim.mute = true;
  const q = r.send(3, spec(1));
  r.fabric.runFor(wait - 1);
  assert.equal(r.results.get(q.id), undefined, 'no result before the response wait');
  r.fabric.runFor(ackTimeoutUs(timing));
  const res = r.results.get(q.id);
  assert.ok(res, 'a result soon after the response wait');
  assert.ok(!res.e.ok && res.e.error === 'timeout', JSON.stringify(res.e));
  assert.equal(res.e.attempts, 1);
  const took = res.at - q.at;
  assert.ok(took >= wait && took <= wait + 1000, `took ${took} µs, wait ${wait} µs`);
  assert.ok(r.sim.dropped >= 1, 'the bridge did answer; its answer was dropped');
  const info = r.station.uplinkInfo('eth0')!;
  assert.equal(info.vdp.timeouts, 1);
  assert.equal(info.vdp.tlvsSent, 1, 'one attempt, no retry');
  // The orchestrator was told it failed: the station holds nothing and sends no keep-alive
  // (SPLIT-NVE §3: the VM must not run unless the Associate succeeded).
  assert.deepEqual(r.station.vsis('eth0'), []);
  // The bridge had accepted it; without keep-alives it expires and both sides agree again.
  assert.equal(r.bridge.vsis().length, 1);
  r.fabric.runFor(keepAliveExpiryUs(timing) + 100_000);
  assert.equal(r.bridge.vsis().length, 0);
  assert.ok(r.bev.some((e) => e.type === 'tsi' && e.cause === 'keepalive-expired'));
  assert.equal(r.station.uplinkInfo('eth0')!.vdp.keepAlives, 0);
});

test('each attempt waits the full response wait: 3 attempts fail after 3 waits', () => {
  const r = rig(); // default: 3 attempts
  const timing = r.station.rememberable('eth0')!.timing;
  const wait = responseWaitUs(timing);
  r.sim.mute = true;
  const q = r.send(3, spec(2));
  r.fabric.runFor(3 * wait - 1);
  assert.equal(r.results.get(q.id), undefined);
  r.fabric.runFor(3 * ackTimeoutUs(timing));
  const res = r.results.get(q.id)!;
  assert.ok(res && !res.e.ok && res.e.error === 'timeout');
  assert.equal(res.e.attempts, 3);
  assert.ok(res.at - q.at <= 3 * wait + 3000, `took ${res.at - q.at} µs`);
  const info = r.station.uplinkInfo('eth0')!.vdp;
  assert.equal(info.retries, 2);
  assert.equal(info.tlvsSent, 3);
});

test('an update of an associated VSI that times out keeps the confirmed state and its keep-alives', () => {
  const r = rig({ maxAttempts: 1 });
  const timing = r.station.rememberable('eth0')!.timing;
  const a = r.send(3, spec(3));
  r.fabric.runFor(50_000);
  assert.ok(r.results.get(a.id)!.e.ok);
  r.sim.mute = true;
  const u = r.send(3, spec(3, [entry(0x33)])); // new MAC
  r.fabric.runFor(responseWaitUs(timing) + 10_000);
  const res = r.results.get(u.id)!;
  assert.ok(res && !res.e.ok && res.e.error === 'timeout');
  const [v] = r.station.vsis('eth0');
  assert.equal(v!.state, 'associated', 'no change without a response');
  assert.equal(v!.spec!.entries[0]!.mac, '52:54:00:00:00:03', 'the confirmed filter');
  assert.equal(v!.spec!.entries[0]!.vid, 100);
  assert.ok(v!.keepAliveAt !== undefined, 'keep-alives go on');
  // The bridge took the update (its answer was lost); the next keep-alive carries the
  // confirmed filter and puts the bridge back in line with the station.
  assert.equal(r.bridge.vsis()[0]!.vsi.entries[0]!.mac, '52:54:00:00:00:33');
  r.sim.mute = false;
  r.fabric.runFor(2 * keepAliveExpiryUs(timing));
  assert.equal(r.bridge.vsis().length, 1);
  assert.equal(r.bridge.vsis()[0]!.vsi.state, 'associated');
  assert.equal(r.bridge.vsis()[0]!.vsi.entries[0]!.mac, '52:54:00:00:00:03');
});

test('Keep: an update refused for resources keeps the associated VSI as it was', () => {
  const r = rig({ pool: [100, 100] });
  const a = r.send(3, spec(4));
  r.fabric.runFor(50_000);
  assert.ok(r.results.get(a.id)!.e.ok);
  // move the VSI to a new VN: no VID left in the pool
  const u = r.send(3, spec(4, [entry(4, 20000)]));
  r.fabric.runFor(50_000);
  const res = r.results.get(u.id)!.e;
  assert.ok(!res.ok && res.error === 'refused', JSON.stringify(res));
  assert.equal(res.reason, 2);
  assert.equal(res.keep, true);
  assert.equal(res.hard, false);
  const [v] = r.station.vsis('eth0');
  assert.equal(v!.state, 'associated');
  assert.deepEqual(v!.spec!.entries, [entry(4, 10000, 100)], 'prior filter, adopted VID kept');
  assert.equal(r.bridge.vsis()[0]!.vsi.state, 'associated');
  assert.deepEqual(r.bridge.vsis()[0]!.vsi.entries, [entry(4, 10000, 100)]);
  // keep-alives with the kept filter are still accepted
  r.fabric.runFor(2 * keepAliveExpiryUs(evbValues));
  assert.equal(r.bridge.vsis().length, 1);
  assert.ok(!r.bev.some((e) => e.type === 'tsi' && e.to === 'init'));
});

test('Keep: a refusal late in the keep-alive period does not push the next keep-alive past the expiry', () => {
  const r = rig({ pool: [100, 100] });
  const a = r.send(3, spec(5));
  r.fabric.runFor(50_000);
  assert.ok(r.results.get(a.id)!.e.ok);
  // Just before the first keep-alive (655 ms after the answer) the update is refused: the
  // bridge's expiry still runs from the Associate it accepted, so must the next keep-alive.
  r.fabric.runFor(550_000);
  const u = r.send(3, spec(5, [entry(5, 20000)]));
  r.fabric.runFor(50_000);
  const res = r.results.get(u.id)!.e;
  assert.ok(!res.ok && res.keep, JSON.stringify(res));
  r.fabric.runFor(3 * keepAliveExpiryUs(evbValues));
  assert.ok(
    !r.bev.some((e) => e.type === 'tsi' && e.cause === 'keepalive-expired'),
    'the bridge did not expire the VSI it kept',
  );
  assert.equal(r.bridge.vsis()[0]?.vsi.state, 'associated');
});

test('Keep: the state kept is the one the response names (pre-associated-RR, not the Associate asked)', () => {
  const r = rig({ pool: [100, 100] });
  const p = r.send(2, spec(5));
  r.fabric.runFor(50_000);
  assert.ok(r.results.get(p.id)!.e.ok);
  const u = r.send(3, spec(5, [entry(5, 20000)]));
  r.fabric.runFor(50_000);
  const res = r.results.get(u.id)!.e;
  assert.ok(!res.ok && res.keep === true && res.reason === 2);
  assert.equal(r.station.vsis('eth0')[0]!.state, 'pre-associated-rr');
  assert.equal(r.bridge.vsis()[0]!.vsi.state, 'pre-associated-rr');
});

test('Keep: a station that believed otherwise takes the type from the response', () => {
  // Sans-IO: the station holds the VSI associated, the bridge (having deactivated it in a
  // message the station missed) refuses an update with Keep and type Pre-Associate-RR.
  const st = new VdpStation(
    { profile: 'splitnve', wire: DEFAULT_WIRE_OPTIONS, maxAttempts: 3 },
    evbValues,
    { profile: 'splitnve', groupId: true },
  );
  const s = spec(6);
  const out: StationEvent[] = [];
  const answer = (type: VsiMode, status: number, entries: FilterEntry[]) => {
    const w = new ByteWriter(128);
    encodeManagerId(w, s.managerId);
    encodeVsi(w, { type, status, ...s, entries }, DEFAULT_WIRE_OPTIONS);
    w.u16(0);
    const pdu = parseVdpPdu(w.finish(), DEFAULT_WIRE_OPTIONS);
    assert.ok(pdu.ok);
    return pdu.value;
  };
  st.request({ mode: 3, spec: s, requestId: 'a' }, 0, out);
  assert.ok(st.pull(0));
  st.receive(answer(3, responseStatus(0), [entry(6, 10000, 100)]), 1000, out);
  const key = st.list()[0]!.key;
  assert.equal(st.get(key)!.state, 'associated');
  out.length = 0;
  st.request({ mode: 3, spec: spec(6, [entry(6, 20000)]), requestId: 'u' }, 2000, out);
  assert.ok(st.pull(2000));
  st.receive(
    answer(2, responseStatus(2, { keep: true, hard: false }), [entry(6, 10000, 100)]),
    3000,
    out,
  );
  const res = out.find((e) => e.type === 'request-result');
  assert.ok(res && !res.ok && res.keep === true && res.reason === 2);
  const change = out.find((e) => e.type === 'vsi-state');
  assert.ok(change && change.type === 'vsi-state');
  assert.deepEqual(
    [change.from, change.to, change.cause],
    ['associated', 'pre-associated-rr', 'refused'],
  );
  const v = st.get(key)!;
  assert.equal(v.state, 'pre-associated-rr');
  assert.deepEqual(v.spec!.entries, [entry(6, 10000, 100)], 'the confirmed filter is kept');
  assert.ok(v.keepAliveAt !== undefined, 'and kept alive in the state the bridge holds');
});

test('a station without SGID: GroupID formats are not sent, and refused with reason 1 if forced', () => {
  const r = rig({ stationGroupId: false });
  // the station knows from EVB (it does not announce SGID) and does not send GroupID formats
  for (const [fif, entries] of [
    [4, [entry(7)]],
    [3, [{ groupId: 10000, ps: 0, pcp: 0, vid: 0 }]],
  ] as const) {
    const q = r.send(3, spec(7, [...entries], fif));
    r.fabric.runFor(50_000);
    const res = r.results.get(q.id)!.e;
    assert.ok(!res.ok && res.error === 'unsupported', `fif ${fif}: ${JSON.stringify(res)}`);
    assert.match(res.message, /BGID\/SGID/);
  }
  assert.equal(r.station.uplinkInfo('eth0')!.vdp.tlvsSent, 0);
  // formats without a GroupID work with this peer
  const ok = r.send(3, spec(8, [entry(8, undefined, 100)], 2));
  r.fabric.runFor(50_000);
  assert.ok(r.results.get(ok.id)!.e.ok, JSON.stringify(r.results.get(ok.id)));
  // the bridge, having seen no SGID, refuses a GroupID format put on the wire anyway
  for (const fif of [3, 4]) {
    const w = new ByteWriter(64);
    encodeManagerId(w, managerIdFromString('mgr'));
    encodeVsi(w, {
      type: 3,
      status: 0,
      ...spec(9, [fif === 4 ? entry(9) : { groupId: 10000, ps: 0, pcp: 0, vid: 0 }], fif),
    });
    w.u16(0);
    const frame = encodeEthernet(
      { destination: '01:80:c2:00:00:00', source: ST, ethertype: ETHERTYPE_ECP },
      encodeEcp({ version: 1, op: 0, subtype: 1, sequence: 900 + fif }, w.finish()),
    );
    const outs = r.bridge.handleFrame('p1', frame, r.fabric.now);
    const resp = outs
      .filter((o) => o.type === 'transmit')
      .map((o) => decodeFrame((o as { frame: Uint8Array }).frame))
      .find((f) => f.vdp);
    assert.ok(resp, `fif ${fif}: a response`);
    const tlv = resp.vdp!.items.find((i) => i.tlv.kind === 'vsi')!.tlv as VsiTlv;
    assert.equal(tlv.status, 0x40 | 0x10 | 1, `fif ${fif}: response, hard, invalid format`);
    assert.ok(
      outs.some((o) => o.type === 'event' && o.event.type === 'refused' && o.event.reason === 1),
      'reported as a refusal with reason 1',
    );
    // let the station ACK it, so the bridge's ECP is free for the next response
    r.fabric.deliverOutputs('br', SimBridge.outputs(outs));
    r.fabric.runFor(50_000);
  }
  assert.equal(r.bridge.vsis().length, 1, 'only the MAC/VID VSI');
});
