/**
 * Under auth `require` a tNVE uplink pins its nNVE only when a PDU from it passes
 * authentication: a spoofed LLDPDU or ECP frame from another source, heard first, pins nothing
 * (it is dropped, counted and reported) and the real nNVE is still served. A real station node
 * and a real bridge node run against each other, sans-IO, in virtual time.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryAuthHooks } from '../../src/auth/memory.js';
import { seededRandom } from '../../src/core/random.js';
import { vdpRequestFrame } from '../../src/fuzz/frames.js';
import { BridgeNode, type BridgeNodeOutput } from '../../src/node/bridge-node.js';
import {
  StationNode,
  type StationNodeEvent,
  type StationNodeOutput,
} from '../../src/node/station-node.js';
import type { AuthMode } from '../../src/vdp/auth.js';
import { ECHO_POLICY } from '../../src/vdp/bridge.js';
import type { VsiSpec } from '../../src/vdp/types.js';
import { managerIdFromString, VSIID_UUID } from '../../src/wire/vdp.js';

const ST = '02:00:00:00:aa:01';
const NNVE = '02:00:00:00:bb:01';
const EVIL = '02:00:00:00:ee:01';
const KEY = new Uint8Array(32).fill(7);
const keys = new Map([[ST, new Map([[1, KEY]])]]);

const SPEC: VsiSpec = {
  managerId: managerIdFromString('pin'),
  typeId: 7,
  typeVersion: 1,
  idFormat: VSIID_UUID,
  id: Uint8Array.from({ length: 16 }, (_, i) => (i === 15 ? 1 : 0x10)),
  filterFormat: 4,
  entries: [{ groupId: 10000, mac: '52:54:00:00:00:01', ps: 0, pcp: 0, vid: 0 }],
};

/** A station node and a bridge node on one cable, frames delivered at once. */
class Pair {
  readonly station: StationNode;
  readonly bridge: BridgeNode;
  readonly events: StationNodeEvent[] = [];
  /** Frames the station transmitted. */
  sent = 0;
  t = 1_000;
  private readonly toBridge: Uint8Array[] = [];
  private readonly toStation: Uint8Array[] = [];

  constructor(mode: AuthMode, uplink: { peer?: string } = {}) {
    this.station = new StationNode({
      uplinks: [{ name: 'eth0', mac: ST, ...uplink }],
      profile: 'splitnve',
      random: seededRandom(1),
      auth: new MemoryAuthHooks({ role: 'station', mode, keys, uplinkMac: () => ST }),
    });
    this.bridge = new BridgeNode({
      ports: [{ name: 'swp1', mac: NNVE }],
      profile: 'splitnve',
      policy: ECHO_POLICY,
      random: seededRandom(2),
      auth: new MemoryAuthHooks({ role: 'bridge', mode, keys }),
    });
  }

  fromStation(outs: StationNodeOutput[]): void {
    for (const o of outs) {
      if (o.type === 'transmit') {
        this.sent++;
        this.toBridge.push(o.frame);
      } else this.events.push(o.event);
    }
  }

  private fromBridge(outs: BridgeNodeOutput[]): void {
    for (const o of outs) if (o.type === 'transmit') this.toStation.push(o.frame);
  }

  /** Hands a frame to the station as if it arrived on its uplink. */
  inject(frame: Uint8Array): void {
    this.fromStation(this.station.handleFrame('eth0', frame, this.t));
  }

  /** The bridge's start (LLDP) is held back until `startBridge`: an attacker may speak first. */
  startStation(): void {
    this.fromStation(this.station.start(this.t));
  }

  startBridge(): void {
    this.fromBridge(this.bridge.start(this.t));
  }

  private flush(): void {
    while (this.toBridge.length || this.toStation.length) {
      const b = this.toBridge.shift();
      if (b) this.fromBridge(this.bridge.handleFrame('swp1', b, this.t));
      const s = this.toStation.shift();
      if (s) this.fromStation(this.station.handleFrame('eth0', s, this.t));
      this.station.transmitted(this.t, this.t);
      this.bridge.transmitted(this.t, this.t);
    }
  }

  run(forUs: number): void {
    const end = this.t + forUs;
    for (;;) {
      this.flush();
      const ds = [this.station.deadline(), this.bridge.deadline()].filter(
        (d): d is number => d !== undefined,
      );
      const next = Math.max(this.t, Math.min(...ds));
      if (ds.length === 0 || next > end) break;
      this.t = next;
      this.fromStation(this.station.handleTimeout(this.t));
      this.fromBridge(this.bridge.handleTimeout(this.t));
    }
    this.t = end;
  }

  associate(): void {
    this.fromStation(
      this.station.request('eth0', { mode: 3, spec: SPEC, hints: {}, requestId: 'r1' }, this.t),
    );
  }

  result(): Extract<StationNodeEvent, { type: 'request-result' }> | undefined {
    return this.events.find(
      (e): e is Extract<StationNodeEvent, { type: 'request-result' }> =>
        e.type === 'request-result',
    );
  }

  failures(): Extract<StationNodeEvent, { type: 'auth-failed' }>[] {
    return this.events.filter(
      (e): e is Extract<StationNodeEvent, { type: 'auth-failed' }> => e.type === 'auth-failed',
    );
  }
}

/** What another bridge (the attacker's, without the station's key) sends first: its LLDPDU. */
function evilLldp(): Uint8Array {
  const evil = new BridgeNode({
    ports: [{ name: 'x', mac: EVIL }],
    profile: 'splitnve',
    policy: ECHO_POLICY,
    random: seededRandom(9),
  });
  const f = evil.start(0).find((o) => o.type === 'transmit');
  assert.ok(f && f.type === 'transmit');
  return f.frame;
}

test('require: a spoofed LLDPDU and ECP frames heard first pin nothing; the real nNVE is served', () => {
  const p = new Pair('require');
  p.startStation();
  // The attacker speaks first: LLDP, an unsigned ECP request, one signed with a wrong key.
  p.inject(evilLldp());
  const sentBefore = p.sent;
  p.inject(vdpRequestFrame({ source: EVIL, destination: ST, ecpSequence: 1, vsiId: SPEC.id }));
  p.inject(
    vdpRequestFrame({
      source: EVIL,
      destination: ST,
      ecpSequence: 2,
      vsiId: SPEC.id,
      sign: { keyId: 1, key: new Uint8Array(32).fill(9), sequence: 5n },
    }),
  );
  assert.equal(p.station.uplinkInfo('eth0')!.bridge, undefined, 'nothing pinned');
  assert.equal(p.sent, sentBefore, 'the rejected requests were not even ACKed');
  assert.equal(p.station.stats.unpinnedRejected, 2);
  assert.deepEqual(
    p.failures().map((e) => [e.uplink, e.peer, e.reason]),
    [
      ['eth0', EVIL, 'unsigned'],
      ['eth0', EVIL, 'bad-hmac'],
    ],
    'each reported as auth-failed (the daemon logs and counts these)',
  );
  // The real nNVE comes up; the station associates through it.
  p.startBridge();
  p.run(200_000);
  p.associate();
  p.run(2_000_000);
  const r = p.result();
  assert.ok(r?.ok, JSON.stringify(p.events.filter((e) => e.type !== 'negotiated')));
  assert.equal(p.station.uplinkInfo('eth0')!.bridge, NNVE, 'pinned by its authenticated PDU');
  assert.equal(p.station.vsi('eth0', p.station.vsis('eth0')[0]!.key)!.state, 'associated');
  assert.equal(p.station.rememberable('eth0')?.bridge, NNVE);
  // Once pinned, the attacker's frames are dropped as from another source.
  const dropped = p.station.stats.framesDropped;
  p.inject(vdpRequestFrame({ source: EVIL, destination: ST, ecpSequence: 3, vsiId: SPEC.id }));
  assert.equal(p.station.stats.framesDropped, dropped + 1);
  assert.equal(p.station.uplinkInfo('eth0')!.bridge, NNVE);
});

test('require: a configured unicast nNVE MAC (uplink `peer`) is pinned from the start', () => {
  const p = new Pair('require', { peer: NNVE });
  p.startStation();
  assert.equal(p.station.uplinkInfo('eth0')!.bridge, NNVE);
  p.inject(evilLldp());
  p.inject(vdpRequestFrame({ source: EVIL, destination: ST, ecpSequence: 1, vsiId: SPEC.id }));
  assert.equal(p.station.uplinkInfo('eth0')!.bridge, NNVE);
  p.startBridge();
  p.run(200_000);
  p.associate();
  p.run(2_000_000);
  assert.ok(p.result()?.ok);
});

test('prefer: the nNVE is still pinned by LLDP (unchanged), and PDUs authenticate', () => {
  const p = new Pair('prefer');
  p.startStation();
  p.startBridge();
  p.run(200_000);
  assert.equal(p.station.uplinkInfo('eth0')!.bridge, NNVE, 'pinned on LLDP peer-up');
  p.associate();
  p.run(2_000_000);
  assert.ok(p.result()?.ok);
  assert.ok(p.events.some((e) => e.type === 'auth' && e.status === 'authenticated'));
});
