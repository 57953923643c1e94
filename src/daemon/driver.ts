/**
 * Runs a sans-IO node on real links and real time. Frames enter from the links, time from one
 * timer armed at the node's next deadline; every output goes through `handle`: events first
 * (synchronously: the daemon commits state before anything is sent), then frames, grouped per
 * link so that a burst leaves in one system call.
 */
import type { Link } from '../link/link.js';
import { monotonicUs } from './clock.js';

export type DriverOutput<E> =
  | { readonly type: 'transmit'; readonly port: string; readonly frame: Uint8Array }
  | { readonly type: 'event'; readonly event: E };

export interface FrameTapHook {
  rx(port: string, frames: readonly Uint8Array[]): void;
  tx(port: string, frames: readonly Uint8Array[]): void;
}

export interface DrivenNode<E> {
  deadline(): number | undefined;
  handleTimeout(now: number): DriverOutput<E>[];
  handleFrame(port: string, frame: Uint8Array, now: number): DriverOutput<E>[];
  /** The frames of the step stamped `stepNow` left at `sentAt` (later: events came first). */
  transmitted?(stepNow: number, sentAt: number): void;
}

export class NodeDriver<E> {
  private timer: NodeJS.Timeout | undefined;
  private timerAt: number | undefined;
  private running = false;
  /** Frames that could not be sent because the port has no link (counted). */
  unroutable = 0;
  /** Sees every frame received (before the node) and sent (once it left), for metrics. */
  tap: FrameTapHook | undefined;

  constructor(
    private readonly node: DrivenNode<E>,
    private readonly links: ReadonlyMap<string, Link>,
    /** Receives the events of one step, before the step's frames are sent. */
    private readonly onEvents: (events: E[], now: number) => void,
    private readonly clock: () => number = monotonicUs,
  ) {}

  start(): void {
    this.running = true;
    for (const [port, link] of this.links) {
      link.onFrames((frames) => {
        if (!this.running) return;
        this.tap?.rx(port, frames);
        const now = this.clock();
        const outs: DriverOutput<E>[] = [];
        for (const f of frames) {
          for (const o of this.node.handleFrame(port, f, now)) outs.push(o);
        }
        this.handle(outs, now);
      });
    }
    this.arm();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = undefined;
  }

  now(): number {
    return this.clock();
  }

  /** Runs `fn` (an API call into the node) and handles its outputs. */
  run<T>(fn: (now: number) => { outputs: DriverOutput<E>[]; result: T }): T {
    const now = this.clock();
    const r = fn(now);
    this.handle(r.outputs, now);
    return r.result;
  }

  /** Handles outputs obtained outside the driver (start/stop/restore of the node). */
  handle(outs: readonly DriverOutput<E>[], now: number = this.clock()): void {
    const events: E[] = [];
    for (const o of outs) if (o.type === 'event') events.push(o.event);
    if (events.length > 0) this.onEvents(events, now);
    const byPort = new Map<string, Uint8Array[]>();
    for (const o of outs) {
      if (o.type !== 'transmit') continue;
      let l = byPort.get(o.port);
      if (!l) byPort.set(o.port, (l = []));
      l.push(o.frame);
    }
    for (const [port, frames] of byPort) {
      const link = this.links.get(port);
      if (link) link.send(frames);
      else {
        this.unroutable += frames.length;
        byPort.delete(port);
      }
    }
    // Committing the events took time: ECP timers must run from when the frames really left.
    if (byPort.size > 0 && this.node.transmitted) this.node.transmitted(now, this.clock());
    if (this.tap) for (const [port, frames] of byPort) this.tap.tx(port, frames);
    this.arm();
  }

  private arm(): void {
    if (!this.running) return;
    const d = this.node.deadline();
    if (d === undefined) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = undefined;
      return;
    }
    if (this.timer && this.timerAt === d) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = d;
    const delayMs = Math.max(0, Math.ceil((d - this.clock()) / 1000));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = undefined;
      if (!this.running) return;
      const now = this.clock();
      this.handle(this.node.handleTimeout(now), now);
    }, delayMs);
  }
}
