/**
 * Flood safety of the bridge core (sans-IO, fast): floods of made-up station MACs and VSI ids,
 * as ECP/VDP and as LLDP, never grow the bridge's state beyond its bounds, never displace an
 * established station, and never stop it from being answered.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryAuthHooks } from '../../src/auth/memory.js';
import { seededRandom } from '../../src/core/random.js';
import {
  lldpStationFrame,
  randomBytes,
  randomMac,
  vdpRequestFrame,
} from '../../src/fuzz/frames.js';
import { BridgeNode, type BridgeNodeOutput } from '../../src/node/bridge-node.js';
import { ECHO_POLICY, type BridgePolicy } from '../../src/vdp/bridge.js';
import type { AuthMode } from '../../src/vdp/auth.js';
import { encodeEcp } from '../../src/wire/ecp.js';
import { encodeEthernet, ETHERTYPE_ECP } from '../../src/wire/ethernet.js';
import { vdpOf } from '../harness/daemon-pair.js';

const PORT_MAC = '02:00:00:00:bb:01';
const GOOD = '02:00:00:00:aa:01';
const KEY = new Uint8Array(32).fill(7);

function node(mode: AuthMode | undefined, policy: BridgePolicy, limits = {}): BridgeNode {
  const auth = mode
    ? new MemoryAuthHooks({ role: 'bridge', mode, keys: new Map([[GOOD, new Map([[1, KEY]])]]) })
    : undefined;
  const n = new BridgeNode({
    ports: [{ name: 'p', mac: PORT_MAC, ...limits }],
    profile: 'splitnve',
    policy,
    random: seededRandom(1),
    ...(auth ? { auth } : {}),
  });
  n.start(0);
  return n;
}

/** Accepts the good station only: every other station stays unknown (on probation). */
const ONLY_GOOD: BridgePolicy = {
  decide: (req) =>
    req.station === GOOD
      ? { accept: true, entries: req.tlv.entries.map((e) => ({ ...e, vid: 100 })) }
      : { accept: false, reason: 4, message: 'not this one' },
};

/**
 * Counts VDP PDUs to the good station among `outs`, ACKing each at once (as a station does,
 * so that the next one can leave: ECP is stop-and-wait).
 */
function responsesTo(n: BridgeNode, outs: BridgeNodeOutput[], t: number): number {
  let count = 0;
  for (const o of outs) {
    if (o.type !== 'transmit') continue;
    const f = o.frame;
    const dst = Array.from(f.subarray(0, 6), (x) => x.toString(16).padStart(2, '0')).join(':');
    if (dst !== GOOD && dst !== '01:80:c2:00:00:00') continue;
    const pdu = vdpOf(f);
    if (!pdu?.vsis.length) continue;
    count++;
    const ack = encodeEthernet(
      { destination: PORT_MAC, source: GOOD, ethertype: ETHERTYPE_ECP },
      encodeEcp({ version: 1, op: 1, subtype: 1, sequence: (f[16]! << 8) | f[17]! }),
    );
    count += responsesTo(n, n.handleFrame('p', ack, t), t);
  }
  return count;
}

let goodSeq = 1;
let goodAuth = 1n;
function goodFrame(id: number, signed: boolean): Uint8Array {
  const vsiId = new Uint8Array(16);
  vsiId[15] = id;
  return vdpRequestFrame({
    source: GOOD,
    ecpSequence: goodSeq++,
    vsiId,
    ...(signed ? { sign: { keyId: 1, key: KEY, sequence: goodAuth++ } } : {}),
  });
}

for (const mode of [undefined, 'prefer', 'require'] as const) {
  test(`flood of random stations (auth ${mode ?? 'not configured'}): bounded state, the established station keeps being answered`, () => {
    const n = node(mode, ONLY_GOOD, { maxStations: 512, maxUnknownStations: 128 });
    const rnd = seededRandom(42);
    const signed = mode === 'require' || mode === 'prefer';
    let t = 1000;
    // The good station associates VSI 1 before the flood.
    assert.equal(responsesTo(n, n.handleFrame('p', goodFrame(1, signed), t), t), 1);
    const FLOOD = 60_000;
    let answered = 0;
    let sentToFlood = 0;
    for (let i = 0; i < FLOOD; i++) {
      t += 5; // 200k frames/s
      const src = randomMac(rnd);
      for (const o of n.handleFrame(
        'p',
        vdpRequestFrame({ source: src, ecpSequence: i, vsiId: randomBytes(rnd, 16) }),
        t,
      ))
        if (o.type === 'transmit') sentToFlood++;
      if (i % 10_000 === 5_000) {
        // A keep-alive of the good station mid-flood: answered at once.
        answered += responsesTo(n, n.handleFrame('p', goodFrame(1, signed), t), t);
        // A new VSI too.
        answered += responsesTo(n, n.handleFrame('p', goodFrame(2 + (i % 7), signed), t), t);
      }
      // The state never grows beyond the bounds.
      if (i % 1000 === 0) assert.ok(n.stations().length <= 129, `${n.stations().length} stations`);
    }
    assert.equal(answered, 12);
    const st = n.stations();
    const good = st.find((s) => s.station === GOOD);
    assert.ok(good && good.established && good.vsis >= 2, JSON.stringify(good));
    if (mode === 'require') {
      // Unauthenticated stations never get any state; every request was still ACKed.
      assert.equal(st.length, 1);
      assert.equal(n.stats.statelessRejected, FLOOD);
      assert.equal(n.stats.authFailed.unsigned, FLOOD);
      // Stations without any key are not even ACKed: no reflection of a spoofed flood.
      assert.equal(sentToFlood, 0);
    } else {
      assert.equal(st.length, 129, 'the good station + 128 on probation');
      assert.equal(n.stats.unknownEvicted, FLOOD - 128);
      assert.ok(sentToFlood >= FLOOD, 'without require every request is ACKed (and refused)');
    }
  });
}

test('flood of random stations that get VSIs (no authentication): stations capped, nothing scanned per frame', () => {
  const n = node(undefined, ECHO_POLICY, { maxStations: 300, maxUnknownStations: 100 });
  const rnd = seededRandom(5);
  for (let i = 0; i < 20_000; i++) {
    n.handleFrame(
      'p',
      vdpRequestFrame({ source: randomMac(rnd), ecpSequence: i, vsiId: randomBytes(rnd, 16) }),
      1000 + i,
    );
  }
  assert.equal(n.stations().length, 300);
  assert.ok(n.stats.stationsRefused >= 19_000);
  assert.equal(n.vsis().length, 300, 'one VSI per admitted station');
});

test('per-station quotas: VSI count and request rate refused with reason 2, keep-alives never limited', () => {
  const n = node(undefined, ECHO_POLICY, {
    quota: { maxVsis: 3, requestsPerSecond: 2, requestBurst: 5 },
  });
  /** Reason codes of the responses to the good station (ACKing each so the next can leave). */
  const reasons = (outs: BridgeNodeOutput[]): number[] => {
    const r: number[] = [];
    for (const o of outs) {
      if (o.type !== 'transmit') continue;
      const pdu = vdpOf(o.frame);
      if (!pdu?.vsis.length) continue;
      r.push(...pdu.vsis.map((v) => v.tlv.status & 0x0f));
      const ack = encodeEthernet(
        { destination: PORT_MAC, source: GOOD, ethertype: ETHERTYPE_ECP },
        encodeEcp({ version: 1, op: 1, subtype: 1, sequence: (o.frame[16]! << 8) | o.frame[17]! }),
      );
      r.push(...reasons(n.handleFrame('p', ack, t)));
    }
    return r;
  };
  let t = 1_000_000;
  const r: number[] = [];
  for (let id = 1; id <= 5; id++) r.push(...reasons(n.handleFrame('p', goodFrame(id, false), t)));
  assert.deepEqual(r, [0, 0, 0, 2, 2], 'three VSIs, then the quota');
  // The burst (5) is spent; keep-alives of held VSIs still pass.
  assert.deepEqual(reasons(n.handleFrame('p', goodFrame(1, false), t)), [0]);
  // A changed request (new VSI after freeing one) needs a token: none left now.
  const deassoc = vdpRequestFrame({
    source: GOOD,
    ecpSequence: goodSeq++,
    type: 4,
    vsiId: Uint8Array.from({ length: 16 }, (_, i) => (i === 15 ? 3 : 0)),
  });
  assert.deepEqual(reasons(n.handleFrame('p', deassoc, t)), [0], 'De-Associate is never limited');
  assert.deepEqual(reasons(n.handleFrame('p', goodFrame(6, false), t)), [2], 'rate');
  t += 600_000; // 0.6 s: 1.2 tokens
  assert.deepEqual(reasons(n.handleFrame('p', goodFrame(6, false), t)), [0]);
  const s = n.stations()[0]!;
  assert.equal(s.vdp.quotaRefused, 2);
  assert.equal(s.vdp.rateRefused, 1);
  assert.equal(s.vsis, 3);
});

test('LLDP flood: EVB peers capped; under require, keyless stations are not even tracked', () => {
  const rnd = seededRandom(9);
  const open = node(undefined, ECHO_POLICY, { maxEvbPeers: 50 });
  for (let i = 0; i < 5000; i++) open.handleFrame('p', lldpStationFrame(randomMac(rnd)), 1000 + i);
  assert.equal(open.peers()[0]!.peers.length, 50);
  assert.equal(open.stats.lldpDropped, 4950);

  const strict = node('require', ECHO_POLICY, { maxEvbPeers: 50 });
  for (let i = 0; i < 5000; i++)
    strict.handleFrame('p', lldpStationFrame(randomMac(rnd)), 1000 + i);
  assert.equal(strict.peers()[0]!.peers.length, 0);
  strict.handleFrame('p', lldpStationFrame(GOOD, { splitnve: true }), 10_000);
  assert.deepEqual(
    strict.peers()[0]!.peers.map((p) => p.mac),
    [GOOD],
  );
});

test('require: a keyed station failing authentication is ACKed (ECP acknowledges what it drops), a keyless one is not', () => {
  const n = node('require', ECHO_POLICY);
  const id = new Uint8Array(16);
  const wrongKey = vdpRequestFrame({
    source: GOOD,
    ecpSequence: 500,
    vsiId: id,
    sign: { keyId: 1, key: new Uint8Array(32).fill(9), sequence: 99n },
  });
  const acks = (outs: BridgeNodeOutput[]): number[] =>
    outs.flatMap((o) =>
      o.type === 'transmit' && (o.frame[14]! & 0x0c) === 0x04
        ? [(o.frame[16]! << 8) | o.frame[17]!]
        : [],
    );
  assert.deepEqual(acks(n.handleFrame('p', wrongKey, 1000)), [500]);
  assert.equal(n.stats.authFailed['bad-hmac'], 1);
  const stranger = vdpRequestFrame({ source: '02:00:00:00:cc:01', ecpSequence: 501, vsiId: id });
  assert.deepEqual(acks(n.handleFrame('p', stranger, 1001)), []);
  assert.equal(n.stats.authFailed.unsigned, 1);
  assert.equal(n.stations().length, 0, 'neither got any state');
});
