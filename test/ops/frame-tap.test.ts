import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../src/core/random.js';
import { FrameTap, type TapSink } from '../../src/daemon/frame-tap.js';
import { BridgeNode } from '../../src/node/bridge-node.js';
import { StationNode } from '../../src/node/station-node.js';
import { ECHO_POLICY } from '../../src/vdp/bridge.js';
import { specFromJson } from '../../src/vdp/spec-json.js';
import { uuid, vsiSpec } from '../harness/ops-pair.js';

/** One associate exchange between real sans-IO nodes: the station's request, the bridge's answer. */
function exchange(): { request: Uint8Array; response: Uint8Array; ackOfRequest: Uint8Array } {
  const evb = { values: { r: 3, rte: 8, rwd: 14, rka: 14 } };
  const bridge = new BridgeNode({
    ports: [{ name: 'p1', mac: '02:00:00:00:bb:01', evb }],
    profile: 'splitnve',
    policy: ECHO_POLICY,
    random: seededRandom(1),
  });
  const station = new StationNode({
    uplinks: [{ name: 'u1', mac: '02:00:00:00:aa:01', evb }],
    profile: 'splitnve',
    random: seededRandom(2),
  });
  const tx = (o: { type: string; frame?: Uint8Array }[]): Uint8Array[] =>
    o.filter((x) => x.type === 'transmit').map((x) => x.frame!);
  bridge.start(0);
  station.start(0);
  const out = tx(
    station.request('u1', { mode: 3, spec: specFromJson(vsiSpec(1)), requestId: 'r' }, 0),
  );
  const request = out.find((f) => f[12] === 0x89 && f[13] === 0x40)!;
  const answers = tx(bridge.handleFrame('p1', request, 0)).filter((f) => f[12] === 0x89);
  // the bridge ACKs the request (op 1) and sends its response (op 0)
  const ackOfRequest = answers.find((f) => ((f[14]! >> 2) & 3) === 1)!;
  const response = answers.find((f) => ((f[14]! >> 2) & 3) === 0)!;
  assert.ok(request && response && ackOfRequest);
  return { request, response, ackOfRequest };
}

function recorder(): TapSink & { log: string[]; latencies: number[] } {
  const log: string[] = [];
  const latencies: number[] = [];
  return {
    log,
    latencies,
    frame: (d, port, p) => log.push(`frame ${d} ${port} ${p}`),
    ecp: (d, port, op, dup) => log.push(`ecp ${d} ${port} ${op}${dup ? ' dup' : ''}`),
    tlv: (d, port, t, kind) => log.push(`tlv ${d} ${port} ${t} ${kind}`),
    latency: (mode, s) => {
      latencies.push(s);
      log.push(`latency ${mode}`);
    },
  };
}

test('frame tap: classifies, finds retransmissions, pairs request and response on both roles', () => {
  const { request, response, ackOfRequest } = exchange();
  let now = 0n;
  const clock = (): bigint => now;
  const b = recorder();
  const bridge = new FrameTap('bridge', b, { clock });
  bridge.frame('rx', 'p1', request);
  bridge.frame('tx', 'p1', ackOfRequest);
  now += 1_500_000n; // 1.5 ms later the response leaves
  bridge.frame('tx', 'p1', response);
  bridge.frame('tx', 'p1', response); // sent again: a retransmission
  assert.deepEqual(b.log, [
    'frame rx p1 ecp',
    'ecp rx p1 request',
    'tlv rx p1 manager-id none',
    'tlv rx p1 associate request',
    'frame tx p1 ecp',
    'ecp tx p1 ack',
    'frame tx p1 ecp',
    'ecp tx p1 request',
    'tlv tx p1 manager-id none',
    'tlv tx p1 associate response',
    'latency associate',
    'frame tx p1 ecp',
    'ecp tx p1 request dup',
  ]);
  assert.deepEqual(b.latencies, [0.0015]);
  assert.equal(bridge.waiting, 0);

  const s = recorder();
  const station = new FrameTap('station', s, { clock });
  station.frame('tx', 'u1', request);
  now += 20_000_000n;
  station.frame('rx', 'u1', response);
  station.frame('rx', 'u1', response); // a duplicate: no second latency
  assert.deepEqual(s.latencies, [0.02]);
  assert.equal(s.log.filter((l) => l === 'ecp rx u1 request dup').length, 1);
  // garbage never throws: too short, truncated VDP, not ECP
  const before = s.log.length;
  station.frame('rx', 'u1', new Uint8Array(3));
  station.frame('rx', 'u1', request.subarray(0, 40));
  station.frame('rx', 'u1', new Uint8Array(64));
  const tail = s.log.slice(before);
  assert.equal(tail[0], 'frame rx u1 malformed');
  assert.ok(tail.includes('frame rx u1 ecp'));
  assert.equal(tail.at(-1), 'frame rx u1 other');
});

test('frame tap: a flood of requests that are never answered keeps its memory bounded', () => {
  const { request } = exchange();
  const id = Buffer.from(uuid(1).replace(/-/g, ''), 'hex');
  const at = Buffer.from(request).indexOf(id);
  assert.ok(at > 0);
  const tap = new FrameTap('bridge', recorder(), { maxPending: 1000, maxSeen: 500 });
  const f = Uint8Array.from(request);
  const rnd = seededRandom(7);
  for (let i = 0; i < 20_000; i++) {
    for (let k = 0; k < 16; k++) f[at + k] = Math.floor(rnd() * 256);
    f[16] = i & 0xff; // ECP sequence
    f[17] = (i >> 8) & 0xff;
    tap.frame('rx', 'p1', f);
  }
  assert.equal(tap.waiting, 1000);
  const seen = (tap as unknown as { seen: { rx: Map<string, Map<number, true>> } }).seen.rx;
  assert.equal(seen.get('p1')!.size, 500);
});
