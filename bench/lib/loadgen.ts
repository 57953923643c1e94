/**
 * Load generator: many VDP stations (the project's sans-IO StationNode, each with its own MAC)
 * driven through ONE raw socket on one veth end, so that the nNVE on the other end sees real
 * frames from N stations without any HTTP or per-station process overhead.
 *
 * Frames to a unicast MAC go to the station that owns it; group frames (the bridge's LLDPDUs) go
 * to every station. ECP goes unicast to the bridge (`bridgeMac`), so the bridge answers each
 * station at its own MAC. All timers of all stations share one TimerQueue and one setTimeout.
 */
import { TimerQueue } from '../../src/core/timer-queue.js';
import { seededRandom } from '../../src/core/random.js';
import { monotonicUs } from '../../src/daemon/clock.js';
import type { EvbValues } from '../../src/evb/agent.js';
import { RawLink } from '../../src/link/raw.js';
import {
  StationNode,
  type StationNodeEvent,
  type StationNodeOutput,
} from '../../src/node/station-node.js';
import type { StationRequest } from '../../src/vdp/station.js';
import type { Profile, VsiSpec } from '../../src/vdp/types.js';
import { FIF_GROUP_MAC_VID } from '../../src/wire/filter.js';
import { managerIdFromString, VSIID_UUID } from '../../src/wire/vdp.js';

export const UPLINK = 'eth0';

export interface LoadGenOptions {
  readonly netns: string;
  readonly ifname: string;
  readonly stations: number;
  /** The bridge port's MAC (ECP destination). */
  readonly bridgeMac: string;
  readonly profile: Profile;
  readonly evb: EvbValues;
  /** Default 0 (splitnve) / 5000 (802.1Qbg, lldpad Q4). */
  readonly ecpMinGapUs?: number;
  /** Default: as many as fit (splitnve) / 1 (802.1Qbg). */
  readonly maxTlvsPerPdu?: number;
  readonly maxAttempts?: number;
  readonly seed?: number;
}

/** MAC of generated station `i` (02:5b:00:ss:ss:ss). */
export function stationMac(i: number): string {
  const b = [0x02, 0x5b, 0x00, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

function macNumber(f: Uint8Array, o: number): number {
  return (
    ((f[o]! * 256 + f[o + 1]!) * 256 + f[o + 2]!) * 0x1000000 +
    ((f[o + 3]! << 16) | (f[o + 4]! << 8) | f[o + 5]!)
  );
}

function macTextNumber(mac: string): number {
  const b = Uint8Array.from(mac.split(':').map((h) => parseInt(h, 16)));
  return macNumber(b, 0);
}

const MANAGER = managerIdFromString('bench');

/**
 * VSI `j` of station `i`: UUID id, GroupID/MAC/VID filter with the null VID (the nNVE assigns the
 * local tag) in VN `vni`.
 */
export function benchSpec(i: number, j: number, vni: number): VsiSpec {
  const id = new Uint8Array(16);
  id.set([0x5b, 0xe0, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff], 0);
  id[6] = 0x40; // version 4
  id[8] = 0x80; // variant
  id.set([(j >> 16) & 0xff, (j >> 8) & 0xff, j & 0xff], 10);
  const hex = (x: number): string => x.toString(16).padStart(2, '0');
  return {
    managerId: MANAGER,
    typeId: 7,
    typeVersion: 1,
    idFormat: VSIID_UUID,
    id,
    filterFormat: FIF_GROUP_MAC_VID,
    entries: [
      {
        groupId: vni,
        mac: `52:54:${hex(i >> 8)}:${hex(i & 0xff)}:${hex((j >> 8) & 0xff)}:${hex(j & 0xff)}`,
        ps: 0,
        pcp: 0,
        vid: 0,
      },
    ],
  };
}

export interface RequestRecord {
  readonly station: number;
  /** performance.now() when the request was handed to the station machine. */
  readonly t0: number;
  t1?: number;
  ok?: boolean;
  error?: string;
}

export interface LoadGenCounters {
  framesIn: number;
  framesOut: number;
  /** ECP PDUs (requests, not ACKs) received from the bridge. */
  bridgePdus: number;
  lastBridgePduAt: number;
  keepAliveFailures: number;
  /** Of those: no response in time / refused by the bridge (last reason code seen). */
  keepAliveTimeouts: number;
  keepAliveRefused: number;
  lastRefusalReason: number | undefined;
  /** VSIs that went to Init without being asked (bridge de-associate, refused keep-alive). */
  lost: number;
  vidChanges: number;
  ecpFailures: number;
  negotiated: number;
}

export class LoadGen {
  readonly link: RawLink;
  readonly nodes: StationNode[] = [];
  readonly requests = new Map<string, RequestRecord>();
  readonly counters: LoadGenCounters = {
    framesIn: 0,
    framesOut: 0,
    bridgePdus: 0,
    lastBridgePduAt: 0,
    keepAliveFailures: 0,
    keepAliveTimeouts: 0,
    keepAliveRefused: 0,
    lastRefusalReason: undefined,
    lost: 0,
    vidChanges: 0,
    ecpFailures: 0,
    negotiated: 0,
  };
  /** Per station: VSI key -> time (µs, driver clock) of its last failed keep-alive. */
  readonly kaFailedAt: Map<string, number>[] = [];
  private readonly listeners = new Set<
    (station: number, e: StationNodeEvent, now: number) => void
  >();
  private readonly pduListeners = new Set<(now: number) => void>();
  private readonly byMac = new Map<number, number>();
  private readonly timers = new TimerQueue();
  private timer: NodeJS.Timeout | undefined;
  private timerAt: number | undefined;
  private tx: Uint8Array[] = [];
  private running = false;
  private readonly negotiatedSet = new Set<number>();
  private readonly bridgeMacNum: number;

  constructor(readonly opts: LoadGenOptions) {
    const plain = opts.profile === '802.1Qbg';
    this.bridgeMacNum = macTextNumber(opts.bridgeMac);
    this.link = new RawLink(opts.ifname, {
      netns: opts.netns,
      rcvBufBytes: 32 << 20,
      sndBufBytes: 16 << 20,
    });
    const maxTlvs = opts.maxTlvsPerPdu ?? (plain ? 1 : undefined);
    for (let i = 0; i < opts.stations; i++) {
      const mac = stationMac(i);
      this.nodes.push(
        new StationNode({
          uplinks: [
            {
              name: UPLINK,
              mac,
              peer: opts.bridgeMac,
              evb: { values: opts.evb },
              ecpMinGapUs: opts.ecpMinGapUs ?? (plain ? 5000 : 0),
              ...(maxTlvs ? { maxTlvsPerPdu: maxTlvs } : {}),
            },
          ],
          profile: opts.profile,
          random: seededRandom((opts.seed ?? 1) * 100_003 + i),
          maxAttempts: opts.maxAttempts ?? 3,
        }),
      );
      this.byMac.set(macTextNumber(mac), i);
      this.kaFailedAt.push(new Map());
    }
    this.link.onFrames((frames) => this.onFrames(frames));
  }

  start(): void {
    this.running = true;
    const now = monotonicUs();
    this.nodes.forEach((n, i) => this.outputs(i, n.start(now), now));
    this.flush();
  }

  /** Observes every station event; returns the function that stops observing. */
  on(listener: (station: number, e: StationNodeEvent, now: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Observes every VDP PDU (ECP request, not ACK) received from the bridge. */
  onBridgePdu(listener: (now: number) => void): () => void {
    this.pduListeners.add(listener);
    return () => this.pduListeners.delete(listener);
  }

  /** Stations that have negotiated EVB with the bridge. */
  get negotiated(): number {
    return this.negotiatedSet.size;
  }

  /** Hands a request to station `i` now; returns the record that completes with its result. */
  request(i: number, req: StationRequest & { requestId: string }): RequestRecord {
    const rec: RequestRecord = { station: i, t0: performance.now() };
    this.requests.set(req.requestId, rec);
    const now = monotonicUs();
    this.outputs(i, this.nodes[i]!.request(UPLINK, req, now), now);
    this.flush();
    return rec;
  }

  /** Many requests in one step (one send batch). */
  requestMany(
    reqs: readonly { station: number; req: StationRequest & { requestId: string } }[],
  ): void {
    const t0 = performance.now();
    const now = monotonicUs();
    for (const { station, req } of reqs) {
      this.requests.set(req.requestId, { station, t0 });
      this.outputs(station, this.nodes[station]!.request(UPLINK, req, now), now);
      if (this.tx.length >= 256) this.flush();
    }
    this.flush();
  }

  /** Sum of a numeric VDP station counter over all stations. */
  vdpStat(name: 'keepAlives' | 'responses' | 'retries' | 'timeouts' | 'refusals'): number {
    let n = 0;
    for (const node of this.nodes) n += node.uplinkInfo(UPLINK)!.vdp[name];
    return n;
  }

  ecpStat(name: 'txRetransmissions' | 'failures' | 'rxDuplicates'): number {
    let n = 0;
    for (const node of this.nodes) n += node.uplinkInfo(UPLINK)!.ecp[name];
    return n;
  }

  async close(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.link.close();
  }

  private onFrames(frames: readonly Uint8Array[]): void {
    if (!this.running) return;
    const now = monotonicUs();
    for (const f of frames) {
      this.counters.framesIn++;
      if (f.length < 18) continue;
      // ECP request (not ACK) from the bridge: a PDU of responses or unsolicited TLVs.
      if (f[12] === 0x89 && f[13] === 0x40 && (f[14]! & 0x0c) === 0) {
        if (macNumber(f, 6) === this.bridgeMacNum) {
          this.counters.bridgePdus++;
          this.counters.lastBridgePduAt = now;
          for (const l of this.pduListeners) l(now);
        }
      }
      if ((f[0]! & 1) !== 0) {
        for (let i = 0; i < this.nodes.length; i++) {
          this.outputs(i, this.nodes[i]!.handleFrame(UPLINK, f, now), now);
        }
      } else {
        const i = this.byMac.get(macNumber(f, 0));
        if (i !== undefined) this.outputs(i, this.nodes[i]!.handleFrame(UPLINK, f, now), now);
      }
      if (this.tx.length >= 256) this.flush();
    }
    this.flush();
  }

  private outputs(i: number, outs: readonly StationNodeOutput[], now: number): void {
    for (const o of outs) {
      if (o.type === 'transmit') this.tx.push(o.frame);
      else this.event(i, o.event, now);
    }
    this.timers.set(String(i), this.nodes[i]!.deadline());
  }

  private event(i: number, e: StationNodeEvent, now: number): void {
    switch (e.type) {
      case 'request-result': {
        const rec = e.requestId !== undefined ? this.requests.get(e.requestId) : undefined;
        if (rec && rec.t1 === undefined) {
          rec.t1 = performance.now();
          rec.ok = e.ok;
          if (!e.ok) rec.error = `${e.error}: ${e.message}`;
        }
        break;
      }
      case 'keepalive-failed':
        this.counters.keepAliveFailures++;
        if (e.error === 'timeout') this.counters.keepAliveTimeouts++;
        else {
          this.counters.keepAliveRefused++;
          this.counters.lastRefusalReason = e.reason;
        }
        this.kaFailedAt[i]!.set(e.key, now);
        break;
      case 'vsi-state':
        if (e.to === 'init' && e.cause !== 'response') this.counters.lost++;
        break;
      case 'vids':
        this.counters.vidChanges++;
        break;
      case 'ecp-failed':
        this.counters.ecpFailures++;
        break;
      case 'negotiated':
        if (!this.negotiatedSet.has(i)) {
          this.negotiatedSet.add(i);
          this.counters.negotiated++;
        }
        break;
      default:
        break;
    }
    for (const l of this.listeners) l(i, e, now);
  }

  private flush(): void {
    if (this.tx.length > 0) {
      this.counters.framesOut += this.tx.length;
      this.link.send(this.tx);
      this.tx = [];
    }
    this.arm();
  }

  private arm(): void {
    if (!this.running) return;
    const d = this.timers.next();
    if (d === undefined) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = undefined;
      return;
    }
    if (this.timer && this.timerAt === d) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = d;
    this.timer = setTimeout(
      () =>
        // Frames that arrived meanwhile first (poll phase), then the timeouts (check phase):
        // after a pause of this process an ACK already received must not count as missing.
        setImmediate(() => {
          this.timer = undefined;
          this.timerAt = undefined;
          if (!this.running) return;
          const now = monotonicUs();
          for (const key of this.timers.popDue(now)) {
            const i = Number(key);
            this.outputs(i, this.nodes[i]!.handleTimeout(now), now);
            if (this.tx.length >= 256) this.flush();
          }
          this.flush();
        }),
      Math.max(0, Math.ceil((d - monotonicUs()) / 1000)),
    );
  }
}
