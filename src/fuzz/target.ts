/**
 * Fuzz target: one input is one frame, fed to the decoders and to long-lived protocol machines
 * (a BridgeNode with a `prefer` port and a `require` port, and a StationNode talking to the
 * first port through a real conversation of requests, responses, ACKs and keep-alives). Inputs
 * are mutated frames (see `mutate.ts`), some re-signed with the right key so that mutated
 * content also gets past authentication into the VDP machines, some made to look as if they
 * came from the station's own nNVE.
 *
 * What counts as a failure (thrown as `FuzzFailure`):
 * - any exception out of a decoder or a machine;
 * - a transmitted frame shorter than 14 or longer than 1514 octets, or that does not decode;
 * - state beyond its bounds (stations, stations on probation, EVB peers);
 * - a timer that does not move on (deadline still due after repeated timeouts at that time);
 * - a deadline that is not a finite number.
 */
import { seededRandom, type Random } from '../core/random.js';
import { MemoryAuthHooks } from '../auth/memory.js';
import { BridgeNode, type BridgeNodeOutput } from '../node/bridge-node.js';
import { StationNode, type StationNodeOutput } from '../node/station-node.js';
import { VlanPoolPolicy } from '../policy/vlan-pool.js';
import { authTlvBytes, type AuthHooks } from '../vdp/auth.js';
import type { VsiMode } from '../vdp/types.js';
import { readU16 } from '../wire/bytes.js';
import { ECP_SUBTYPE_VDP } from '../wire/ecp.js';
import { decodeFrame } from '../wire/frame.js';
import { DEFAULT_WIRE_OPTIONS } from '../wire/options.js';
import { managerIdFromString } from '../wire/vdp.js';

export const FUZZ_STATION = '02:00:00:00:aa:01';
export const FUZZ_PORT0 = '02:00:00:00:bb:00';
export const FUZZ_PORT1 = '02:00:00:00:bb:01';
const KEY = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);
const MAX_STATIONS = 64;
const MAX_UNKNOWN = 16;
const MAX_EVB_PEERS = 32;

export class FuzzFailure extends Error {
  constructor(
    readonly where: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${where}: ${message}`, options);
  }
}

export interface FuzzTargetStats {
  inputs: number;
  toBridge: number;
  toStation: number;
  resigned: number;
  framesOut: number;
  requests: number;
  timeouts: number;
  /** Events of the machines by type (`bridge:tsi`, `station:vsi-state`, ...): how deep inputs got. */
  events: Record<string, number>;
}

function macBytes(mac: string): number[] {
  return mac.split(':').map((h) => parseInt(h, 16));
}

/** Per-port modes: p0 prefer, p1 require. */
class PortModes implements AuthHooks {
  constructor(private readonly inner: MemoryAuthHooks) {}
  mode(local: string): 'require' | 'prefer' {
    return local === 'p1' ? 'require' : 'prefer';
  }
  knows(local: string, peer: string): boolean {
    return this.inner.knows(local, peer);
  }
  signer(local: string, peer: string) {
    return this.inner.signer(local, peer);
  }
  key(local: string, peer: string, keyId: number) {
    return this.inner.key(local, peer, keyId);
  }
  lastAccepted(local: string, peer: string) {
    return this.inner.lastAccepted(local, peer);
  }
  accepted(local: string, peer: string, s: bigint) {
    this.inner.accepted(local, peer, s);
  }
}

/** End of the TLVs that parse (before End, or before the first TLV that does not fit). */
function tlvEnd(ulpdu: Uint8Array): number {
  let off = 0;
  while (off + 2 <= ulpdu.length) {
    const h = readU16(ulpdu, off);
    const type = h >> 9;
    const len = h & 0x1ff;
    if (type === 0 || off + 2 + len > ulpdu.length) break;
    off += 2 + len;
  }
  return off;
}

export class FuzzTarget {
  readonly stats: FuzzTargetStats = {
    inputs: 0,
    toBridge: 0,
    toStation: 0,
    resigned: 0,
    framesOut: 0,
    requests: 0,
    timeouts: 0,
    events: {},
  };
  private bridge!: BridgeNode;
  private station!: StationNode;
  private now = 1_000_000;
  private readonly rnd: Random;
  private signSeq = 1n << 40n;

  constructor(readonly seed: number) {
    this.rnd = seededRandom(seed ^ 0x5eed);
    this.reset();
  }

  /** Fresh machines (after a failure their state is not trusted). */
  reset(): void {
    const keys = new Map([[FUZZ_STATION, new Map([[1, KEY]])]]);
    const bridgeAuth = new PortModes(new MemoryAuthHooks({ role: 'bridge', mode: 'prefer', keys }));
    const limits = {
      maxStations: MAX_STATIONS,
      maxUnknownStations: MAX_UNKNOWN,
      maxEvbPeers: MAX_EVB_PEERS,
      quota: { maxVsis: 32, requestsPerSecond: 1000, requestBurst: 200 },
    };
    const evb = { values: { r: 2, rte: 6, rwd: 12, rka: 13 } };
    this.bridge = new BridgeNode({
      ports: [
        { name: 'p0', mac: FUZZ_PORT0, evb, ...limits },
        { name: 'p1', mac: FUZZ_PORT1, evb, ...limits },
      ],
      profile: 'splitnve',
      policy: new VlanPoolPolicy([{ min: 100, max: 140 }], (p) => p),
      random: seededRandom(this.seed),
      auth: bridgeAuth,
    });
    this.station = new StationNode({
      uplinks: [{ name: 'eth0', mac: FUZZ_STATION, evb }],
      profile: 'splitnve',
      random: seededRandom(this.seed + 1),
      maxAttempts: 2,
      auth: new MemoryAuthHooks({
        role: 'station',
        mode: 'prefer',
        keys,
        uplinkMac: () => FUZZ_STATION,
        firstSequence: 1n << 41n,
      }),
    });
    this.exchange(this.bridge.start(this.now), this.station.start(this.now));
  }

  /** Feeds one input; throws FuzzFailure when something breaks. */
  run(input: Uint8Array): void {
    this.stats.inputs++;
    this.guard('decodeFrame', () => decodeFrame(input, DEFAULT_WIRE_OPTIONS));
    this.now += 1 + Math.floor(this.rnd() * 3000);
    const pick = this.rnd();
    if (pick < 0.3) {
      this.toBridge('p0', input);
    } else if (pick < 0.45) {
      this.toBridge('p1', input);
    } else if (pick < 0.65) {
      // As if from the keyed station, signed with its key: mutated content past authentication.
      this.toBridge(this.rnd() < 0.5 ? 'p0' : 'p1', this.resign(input, FUZZ_STATION, true));
    } else if (pick < 0.85) {
      this.toStation(this.resign(input, FUZZ_PORT0, this.rnd() < 0.6));
    } else {
      this.toStation(input);
    }
    if (this.stats.inputs % 16 === 0) this.stationRequest();
    if (this.stats.inputs % 4 === 0) this.timeouts();
    this.checkBounds();
  }

  private guard<T>(where: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof FuzzFailure) throw e;
      throw new FuzzFailure(where, (e as Error)?.stack ?? String(e), { cause: e });
    }
  }

  /** Rewrites source (and destination) MACs and, if asked, appends a valid auth TLV. */
  private resign(input: Uint8Array, source: string, sign: boolean): Uint8Array {
    if (input.length < 18) return input;
    const f = input.slice();
    f.set(macBytes(source), 6);
    const toStation = source === FUZZ_PORT0;
    if (toStation && this.rnd() < 0.5) f.set(macBytes(FUZZ_STATION), 0);
    const isEcpRequest = f[12] === 0x89 && f[13] === 0x40 && (f[14]! & 0x0c) === 0;
    if (!sign || !isEcpRequest) return f;
    this.stats.resigned++;
    const ulpdu = f.subarray(18, 18 + tlvEnd(f.subarray(18)));
    const dst = Array.from(f.subarray(0, 6), (x) => x.toString(16).padStart(2, '0')).join(':');
    const auth = authTlvBytes(
      { keyId: 1, key: KEY, sequence: this.signSeq++ },
      source,
      dst,
      ECP_SUBTYPE_VDP,
      ulpdu,
      DEFAULT_WIRE_OPTIONS,
    );
    const out = new Uint8Array(Math.min(1514, 18 + ulpdu.length + auth.length + 2));
    out.set(f.subarray(0, 18 + ulpdu.length), 0);
    if (18 + ulpdu.length + auth.length + 2 <= 1514) out.set(auth, 18 + ulpdu.length);
    return out;
  }

  private toBridge(port: string, frame: Uint8Array): void {
    this.stats.toBridge++;
    const outs = this.guard(`bridge.handleFrame(${port})`, () =>
      this.bridge.handleFrame(port, frame, this.now),
    );
    this.exchange(outs, []);
  }

  private toStation(frame: Uint8Array): void {
    this.stats.toStation++;
    const outs = this.guard('station.handleFrame', () =>
      this.station.handleFrame('eth0', frame, this.now),
    );
    this.exchange([], outs);
  }

  /** The station asks for something about one of a few VSIs. */
  private stationRequest(): void {
    this.stats.requests++;
    const n = Math.floor(this.rnd() * 6);
    const modes: VsiMode[] = [1, 2, 3, 3, 4];
    const mode = modes[Math.floor(this.rnd() * modes.length)]!;
    const id = new Uint8Array(16);
    id[15] = n;
    const outs = this.guard('station.request', () =>
      this.station.request(
        'eth0',
        {
          mode,
          spec: {
            managerId: managerIdFromString('fuzz'),
            typeId: 1,
            typeVersion: 1,
            idFormat: 5,
            id,
            filterFormat: 4,
            entries: [
              {
                groupId: 7000 + (n % 3),
                mac: `52:54:00:00:00:${n.toString(16).padStart(2, '0')}`,
                vid: 0,
                ps: 0,
                pcp: 0,
              },
            ],
          },
          requestId: `r${this.stats.requests}`,
        },
        this.now,
      ),
    );
    this.exchange([], outs);
  }

  private timeouts(): void {
    this.stats.timeouts++;
    for (let round = 0; round < 3; round++) {
      const bd = this.bridge.deadline();
      const sd = this.station.deadline();
      for (const [name, d] of [
        ['bridge', bd],
        ['station', sd],
      ] as const) {
        if (d !== undefined && !Number.isFinite(d))
          throw new FuzzFailure(`${name}.deadline`, `not a finite number: ${d}`);
      }
      const next = Math.min(bd ?? Infinity, sd ?? Infinity);
      if (next === Infinity || next > this.now + 200_000) return;
      this.now = Math.max(this.now, next);
      let spins = 0;
      while ((this.bridge.deadline() ?? Infinity) <= this.now) {
        if (++spins > 20)
          throw new FuzzFailure('bridge.handleTimeout', 'deadline does not move on');
        this.exchange(
          this.guard('bridge.handleTimeout', () => this.bridge.handleTimeout(this.now)),
          [],
        );
      }
      spins = 0;
      while ((this.station.deadline() ?? Infinity) <= this.now) {
        if (++spins > 20)
          throw new FuzzFailure('station.handleTimeout', 'deadline does not move on');
        this.exchange(
          [],
          this.guard('station.handleTimeout', () => this.station.handleTimeout(this.now)),
        );
      }
    }
  }

  /** Delivers frames between the station and port p0 until quiet (bounded). */
  private exchange(fromBridge: BridgeNodeOutput[], fromStation: StationNodeOutput[]): void {
    let b = fromBridge;
    let s = fromStation;
    for (let round = 0; round < 50 && (b.length > 0 || s.length > 0); round++) {
      const toStation: Uint8Array[] = [];
      const toBridge: Uint8Array[] = [];
      for (const o of b) {
        if (o.type === 'event') this.count(`bridge:${o.event.type}`);
        if (o.type !== 'transmit') continue;
        this.checkFrame('bridge', o.port, o.frame);
        if (o.port === 'p0') toStation.push(o.frame);
      }
      for (const o of s) {
        if (o.type === 'event') this.count(`station:${o.event.type}`);
        if (o.type !== 'transmit') continue;
        this.checkFrame('station', o.port, o.frame);
        toBridge.push(o.frame);
      }
      const nb: BridgeNodeOutput[] = [];
      const ns: StationNodeOutput[] = [];
      for (const f of toBridge) {
        const outs = this.guard('bridge.handleFrame(conversation)', () =>
          this.bridge.handleFrame('p0', f, this.now),
        );
        for (const o of outs) nb.push(o);
      }
      for (const f of toStation) {
        const outs = this.guard('station.handleFrame(conversation)', () =>
          this.station.handleFrame('eth0', f, this.now),
        );
        for (const o of outs) ns.push(o);
      }
      b = nb;
      s = ns;
    }
  }

  private count(k: string): void {
    this.stats.events[k] = (this.stats.events[k] ?? 0) + 1;
  }

  private checkFrame(who: string, port: string, frame: Uint8Array): void {
    this.stats.framesOut++;
    if (frame.length < 14 || frame.length > 1514)
      throw new FuzzFailure(`${who} transmit on ${port}`, `frame of ${frame.length} octets`);
    const d = decodeFrame(frame, DEFAULT_WIRE_OPTIONS);
    if (d.error)
      throw new FuzzFailure(
        `${who} transmit on ${port}`,
        `our own frame does not decode: ${d.error.message} (${Buffer.from(frame).toString('hex')})`,
      );
  }

  private checkBounds(): void {
    const st = this.bridge.stations();
    for (const port of ['p0', 'p1']) {
      const mine = st.filter((s) => s.port === port);
      if (mine.length > MAX_STATIONS)
        throw new FuzzFailure('bounds', `${mine.length} stations on ${port} (max ${MAX_STATIONS})`);
      const unknown = mine.filter((s) => !s.established).length;
      if (unknown > MAX_UNKNOWN)
        throw new FuzzFailure('bounds', `${unknown} stations on probation on ${port}`);
    }
    for (const p of this.bridge.peers()) {
      if (p.peers.length > MAX_EVB_PEERS)
        throw new FuzzFailure('bounds', `${p.peers.length} EVB peers on ${p.port}`);
    }
  }
}
