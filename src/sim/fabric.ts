/**
 * Deterministic network simulator: sans-IO nodes joined by in-memory segments with loss,
 * duplication, reordering and delay, on a virtual clock. One seed reproduces a run exactly:
 * all randomness comes from one seeded generator and events are ordered by (time, sequence).
 */
import { MinHeap } from '../core/heap.js';
import { seededRandom, type Random } from '../core/random.js';
import { decodeEthernet } from '../wire/ethernet.js';
import { isGroupMac } from '../wire/bytes.js';

export interface Impairments {
  /** Probability that a frame is lost. */
  readonly loss?: number;
  /** Probability that a frame is delivered twice. */
  readonly duplicate?: number;
  /** Probability that a frame gets an extra random delay (and so may overtake or be overtaken). */
  readonly reorder?: number;
  /** Base one-way delay, µs. */
  readonly delayUs?: number;
  /** Uniform extra delay, µs. */
  readonly jitterUs?: number;
  /** Extra delay of a reordered frame, up to this many µs. */
  readonly reorderUs?: number;
}

/** What the fabric needs from a node: the shape shared by StationNode and BridgeNode adapters. */
export interface SimNode {
  readonly id: string;
  deadline(): number | undefined;
  handleTimeout(now: number): SimOutput[];
  handleFrame(port: string, frame: Uint8Array, now: number): SimOutput[];
}

export type SimOutput =
  | { readonly type: 'transmit'; readonly port: string; readonly frame: Uint8Array }
  | { readonly type: 'event'; readonly event: unknown };

export interface Attachment {
  readonly node: string;
  readonly port: string;
  readonly mac: string;
}

export interface SegmentConfig {
  readonly name: string;
  /**
   * 'link': a cable between two ports, delivers everything.
   * 'bridge': an 802.1D bridge between several ports: unicast to the matching MAC only,
   * group addresses to all others, except 01-80-C2-00-00-0x which bridges never forward.
   */
  readonly kind: 'link' | 'bridge';
  readonly attachments: readonly Attachment[];
  readonly impairments?: Impairments;
}

interface Scheduled {
  readonly at: number;
  readonly seq: number;
  readonly run: () => void;
}

export interface TraceLine {
  readonly t: number;
  readonly node: string;
  readonly kind: 'rx' | 'tx' | 'drop' | 'event';
  readonly text: string;
}

export interface FabricStats {
  framesSent: number;
  framesDelivered: number;
  framesLost: number;
  framesDuplicated: number;
  framesReordered: number;
}

export class Fabric {
  readonly random: Random;
  readonly stats: FabricStats = {
    framesSent: 0,
    framesDelivered: 0,
    framesLost: 0,
    framesDuplicated: 0,
    framesReordered: 0,
  };
  now = 0;
  private seq = 0;
  private queue = new MinHeap<Scheduled>(before);
  private nodes = new Map<string, SimNode>();
  private nodeTimerAt = new Map<string, number>();
  private segments: SegmentConfig[] = [];
  private byPort = new Map<string, SegmentConfig>();
  private readonly traceLines: TraceLine[] = [];
  private readonly listeners: ((node: string, event: unknown, now: number) => void)[] = [];
  tracing: boolean;

  constructor(seed: number, opts: { trace?: boolean } = {}) {
    this.random = seededRandom(seed);
    this.tracing = opts.trace ?? false;
  }

  addNode(n: SimNode): void {
    this.nodes.set(n.id, n);
    this.armNode(n);
  }

  /** Replaces a node (a restart): frames and timers of the old instance are forgotten. */
  replaceNode(n: SimNode): void {
    this.nodes.set(n.id, n);
    this.nodeTimerAt.delete(n.id);
    this.armNode(n);
  }

  node<T extends SimNode>(id: string): T {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n as T;
  }

  addSegment(s: SegmentConfig): void {
    this.segments.push(s);
    for (const a of s.attachments) this.byPort.set(`${a.node}|${a.port}`, s);
  }

  setImpairments(segment: string, imp: Impairments): void {
    const i = this.segments.findIndex((s) => s.name === segment);
    if (i < 0) throw new Error(`no segment ${segment}`);
    const s = { ...this.segments[i]!, impairments: imp };
    this.segments[i] = s;
    for (const a of s.attachments) this.byPort.set(`${a.node}|${a.port}`, s);
  }

  onEvent(l: (node: string, event: unknown, now: number) => void): void {
    this.listeners.push(l);
  }

  trace(): readonly TraceLine[] {
    return this.traceLines;
  }

  /** Runs `fn` at virtual time `at`, after everything already scheduled for that time. */
  at(at: number, fn: () => void): void {
    this.push({ at: Math.max(at, this.now), seq: ++this.seq, run: fn });
  }

  /** Hands outputs of a node (from a call made outside the fabric, e.g. a request). */
  deliverOutputs(nodeId: string, outs: readonly SimOutput[]): void {
    this.outputs(nodeId, outs);
    const n = this.nodes.get(nodeId);
    if (n) this.armNode(n);
  }

  /** Runs until the virtual clock reaches `until` (µs). */
  runUntil(until: number): void {
    for (;;) {
      const top = this.queue.peek();
      if (!top || top.at > until) break;
      this.queue.pop();
      this.now = top.at;
      top.run();
    }
    this.now = Math.max(this.now, until);
  }

  /** Runs for `us` more microseconds. */
  runFor(us: number): void {
    this.runUntil(this.now + us);
  }

  private armNode(n: SimNode): void {
    const d = n.deadline();
    if (d === undefined) {
      this.nodeTimerAt.delete(n.id);
      return;
    }
    const at = Math.max(d, this.now);
    if (this.nodeTimerAt.get(n.id) === at) return;
    this.nodeTimerAt.set(n.id, at);
    this.push({
      at,
      seq: ++this.seq,
      run: () => {
        if (this.nodes.get(n.id) !== n || this.nodeTimerAt.get(n.id) !== at) return;
        this.nodeTimerAt.delete(n.id);
        this.outputs(n.id, n.handleTimeout(this.now));
        this.armNode(n);
      },
    });
  }

  private outputs(nodeId: string, outs: readonly SimOutput[]): void {
    for (const o of outs) {
      if (o.type === 'transmit') this.transmit(nodeId, o.port, o.frame);
      else {
        if (this.tracing) this.log(nodeId, 'event', JSON.stringify(o.event, jsonBytes));
        for (const l of this.listeners) l(nodeId, o.event, this.now);
      }
    }
  }

  private log(node: string, kind: TraceLine['kind'], text: string): void {
    this.traceLines.push({ t: this.now, node, kind, text });
  }

  private transmit(nodeId: string, port: string, frame: Uint8Array): void {
    this.stats.framesSent++;
    const seg = this.byPort.get(`${nodeId}|${port}`);
    if (this.tracing) this.log(nodeId, 'tx', `${port} ${hex(frame)}`);
    if (!seg) return;
    const eth = decodeEthernet(frame);
    const dst = eth.ok ? eth.value.header.destination : '';
    for (const a of seg.attachments) {
      if (a.node === nodeId && a.port === port) continue;
      if (seg.kind === 'bridge') {
        if (/^01:80:c2:00:00:0[0-9a-f]$/.test(dst)) continue;
        if (!isGroupMac(dst) && dst !== a.mac) continue;
      }
      this.carry(seg, a, frame);
    }
  }

  private carry(seg: SegmentConfig, to: Attachment, frame: Uint8Array): void {
    const imp = seg.impairments ?? {};
    const r = this.random;
    if ((imp.loss ?? 0) > 0 && r() < imp.loss!) {
      this.stats.framesLost++;
      if (this.tracing) this.log(to.node, 'drop', `${to.port} lost ${hex(frame)}`);
      return;
    }
    const copies = (imp.duplicate ?? 0) > 0 && r() < imp.duplicate! ? 2 : 1;
    if (copies === 2) this.stats.framesDuplicated++;
    for (let i = 0; i < copies; i++) {
      let delay = (imp.delayUs ?? 50) + Math.floor(r() * ((imp.jitterUs ?? 0) + 1));
      if ((imp.reorder ?? 0) > 0 && r() < imp.reorder!) {
        this.stats.framesReordered++;
        delay += Math.floor(r() * ((imp.reorderUs ?? 5000) + 1));
      }
      const copy = frame.slice();
      this.push({
        at: this.now + delay,
        seq: ++this.seq,
        run: () => {
          const n = this.nodes.get(to.node);
          if (!n) return;
          this.stats.framesDelivered++;
          if (this.tracing) this.log(to.node, 'rx', `${to.port} ${hex(copy)}`);
          this.outputs(to.node, n.handleFrame(to.port, copy, this.now));
          this.armNode(n);
        },
      });
    }
  }

  private push(e: Scheduled): void {
    this.queue.push(e);
  }
}

function before(a: Scheduled, b: Scheduled): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function jsonBytes(_k: string, v: unknown): unknown {
  if (v instanceof Uint8Array) return hex(v);
  if (typeof v === 'bigint') return v.toString();
  return v;
}
