/**
 * In-memory link: two ends joined like a cable, frames delivered asynchronously (next turn of
 * the event loop) in order. For running daemons in one process without raw sockets.
 */
import type { Link, LinkStats, LinkStatus } from './link.js';

class MemoryEnd implements Link {
  peer: MemoryEnd | undefined;
  private frameHandlers: ((frames: readonly Uint8Array[]) => void)[] = [];
  private statusHandlers: ((s: LinkStatus) => void)[] = [];
  private st: LinkStatus = { up: true };
  private counters = { rxFrames: 0, txFrames: 0, rxDropped: 0, txErrors: 0 };
  private closed = false;

  constructor(
    readonly name: string,
    readonly mac: string,
  ) {}

  send(frames: readonly Uint8Array[]): void {
    const peer = this.peer;
    if (this.closed || !this.st.up || !peer || peer.closed) {
      this.counters.txErrors += frames.length;
      return;
    }
    this.counters.txFrames += frames.length;
    const copy = frames.map((f) => f.slice());
    setImmediate(() => peer.deliver(copy));
  }

  private deliver(frames: Uint8Array[]): void {
    if (this.closed || !this.st.up) {
      this.counters.rxDropped += frames.length;
      return;
    }
    this.counters.rxFrames += frames.length;
    for (const h of this.frameHandlers) h(frames);
  }

  onFrames(handler: (frames: readonly Uint8Array[]) => void): void {
    this.frameHandlers.push(handler);
  }

  onStatus(handler: (status: LinkStatus) => void): void {
    this.statusHandlers.push(handler);
  }

  status(): LinkStatus {
    return this.st;
  }

  /** Cuts or restores the cable (both ends see it). */
  setUp(up: boolean): void {
    for (const end of [this, this.peer]) {
      if (!end) continue;
      end.st = up ? { up: true } : { up: false, reason: 'cable cut' };
      for (const h of end.statusHandlers) h(end.st);
    }
  }

  stats(): LinkStats {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Plugs a closed end back in (a restarted daemon on the same cable). */
  reopen(): this {
    this.closed = false;
    return this;
  }
}

export type MemoryLink = MemoryEnd;

export function memoryLinkPair(
  a: { name: string; mac: string },
  b: { name: string; mac: string },
): [MemoryLink, MemoryLink] {
  const x = new MemoryEnd(a.name, a.mac);
  const y = new MemoryEnd(b.name, b.mac);
  x.peer = y;
  y.peer = x;
  return [x, y];
}
