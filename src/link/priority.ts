/**
 * A raw Ethernet link whose known stations have a receive queue of their own.
 *
 * Two AF_PACKET sockets on one interface: `fast` takes only frames from the listed source
 * MACs (the stations the nNVE holds keys for), `main` every other frame. The kernel filters
 * (see native/rawlink.c, setSources) sort the frames before they are queued, so a flood from
 * made-up MACs fills only the main socket's buffer: it can be dropped there by the kernel
 * while the known stations' frames still arrive, at most one bounded read batch (256 frames)
 * of the flood later. Frames are sent on `main`. The set of sources can change at run time
 * (keys reloaded on SIGHUP); during a change a frame may be taken by both sockets (ECP drops
 * the duplicate) but never by neither.
 *
 * A station spoofing a known MAC lands in the fast queue and competes only with that
 * station; that is what port security on the access switch is for.
 *
 * `unknownBudget` caps the frames per second taken from the main socket (other sources): past
 * it, reading pauses until the next tenth of a second and the kernel drops the excess for
 * free. A flood then costs the nNVE a bounded share of its CPU, whatever its rate, and the
 * known stations keep the rest (frames from unknown sources carry no state anyway).
 */
import type { Link, LinkStats, LinkStatus } from './link.js';
import { RawLink, type RawLinkOptions, type RawLinkStats } from './raw.js';

export class PriorityRawLink implements Link {
  readonly main: RawLink;
  readonly fast: RawLink;
  private sources: readonly string[];
  private readonly perWindow: number;
  private windowStart = 0;
  private windowFrames = 0;
  private resumeTimer: NodeJS.Timeout | undefined;
  /** Times reading from other sources was paused for the budget. */
  pauses = 0;

  constructor(
    ifname: string,
    options: RawLinkOptions,
    sources: readonly string[],
    /** Most frames per second read from other sources (default unlimited). */
    unknownBudget?: number,
  ) {
    this.perWindow = unknownBudget ? Math.max(1, Math.round(unknownBudget / 10)) : Infinity;
    this.sources = [...sources];
    this.fast = new RawLink(ifname, {
      ...options,
      sources: { mode: 'include', macs: this.sources },
    });
    try {
      this.main = new RawLink(ifname, {
        ...options,
        sources: { mode: 'exclude', macs: this.sources },
      });
    } catch (e) {
      void this.fast.close();
      throw e;
    }
  }

  get name(): string {
    return this.main.name;
  }

  get mac(): string {
    return this.main.mac;
  }

  /** The sources with a queue of their own. */
  prioritized(): readonly string[] {
    return this.sources;
  }

  /** Changes the prioritized sources: the fast socket widens first, so nothing falls between. */
  setPrioritized(macs: readonly string[]): void {
    const next = [...macs];
    const union = [...new Set([...this.sources, ...next])];
    this.fast.setSources({ mode: 'include', macs: union });
    this.main.setSources({ mode: 'exclude', macs: next });
    this.fast.setSources({ mode: 'include', macs: next });
    this.sources = next;
  }

  send(frames: readonly Uint8Array[]): void {
    this.main.send(frames);
  }

  onFrames(handler: (frames: readonly Uint8Array[]) => void): void {
    this.fast.onFrames(handler);
    this.main.onFrames((frames) => {
      this.spend(frames.length);
      handler(frames);
    });
  }

  /** Counts frames from other sources against the budget of this tenth of a second. */
  private spend(n: number): void {
    if (this.perWindow === Infinity) return;
    const now = performance.now();
    if (now - this.windowStart >= 100) {
      this.windowStart = now;
      this.windowFrames = 0;
    }
    this.windowFrames += n;
    if (this.windowFrames < this.perWindow || this.resumeTimer) return;
    this.pauses++;
    this.main.setPaused(true);
    this.resumeTimer = setTimeout(
      () => {
        this.resumeTimer = undefined;
        this.main.setPaused(false);
      },
      Math.max(1, 100 - (now - this.windowStart)),
    );
  }

  onStatus(handler: (status: LinkStatus) => void): void {
    this.main.onStatus(handler);
  }

  status(): LinkStatus {
    return this.main.status();
  }

  stats(): LinkStats & { fast: RawLinkStats; main: RawLinkStats; budgetPauses: number } {
    const f = this.fast.stats();
    const m = this.main.stats();
    return {
      rxFrames: f.rxFrames + m.rxFrames,
      txFrames: m.txFrames,
      rxDropped: f.rxDropped + m.rxDropped,
      txErrors: m.txErrors,
      fast: f,
      main: m,
      budgetPauses: this.pauses,
    };
  }

  async close(): Promise<void> {
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
    await Promise.all([this.fast.close(), this.main.close()]);
  }
}
