/**
 * A Link wrapper for tests: records every frame sent and received, can alter or drop frames in
 * either direction, and can inject frames as if they had arrived (replays).
 */
import type { Link, LinkStats, LinkStatus } from '../../src/link/link.js';

export type TapDirection = 'in' | 'out';

export class LinkTap implements Link {
  readonly sent: Uint8Array[] = [];
  readonly received: Uint8Array[] = [];
  /** Returns the frame to pass on (possibly changed) or null to drop it. */
  alter: ((frame: Uint8Array, dir: TapDirection) => Uint8Array | null) | undefined;
  private handlers: ((frames: readonly Uint8Array[]) => void)[] = [];

  constructor(readonly inner: Link) {
    inner.onFrames((frames) => {
      const pass: Uint8Array[] = [];
      for (const f of frames) {
        this.received.push(f.slice());
        const g = this.alter ? this.alter(f, 'in') : f;
        if (g) pass.push(g);
      }
      if (pass.length > 0) for (const h of this.handlers) h(pass);
    });
  }

  get name(): string {
    return this.inner.name;
  }

  get mac(): string {
    return this.inner.mac;
  }

  send(frames: readonly Uint8Array[]): void {
    const pass: Uint8Array[] = [];
    for (const f of frames) {
      this.sent.push(f.slice());
      const g = this.alter ? this.alter(f, 'out') : f;
      if (g) pass.push(g);
    }
    if (pass.length > 0) this.inner.send(pass);
  }

  /** Delivers frames to the daemon as if they had come from the wire. */
  inject(frames: readonly Uint8Array[]): void {
    for (const h of this.handlers) h(frames.map((f) => f.slice()));
  }

  onFrames(handler: (frames: readonly Uint8Array[]) => void): void {
    this.handlers.push(handler);
  }

  onStatus(handler: (status: LinkStatus) => void): void {
    this.inner.onStatus(handler);
  }

  status(): LinkStatus {
    return this.inner.status();
  }

  stats(): LinkStats {
    return this.inner.stats();
  }

  async close(): Promise<void> {
    this.handlers = [];
    await this.inner.close();
  }
}
