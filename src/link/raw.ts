/**
 * Raw Ethernet link: an AF_PACKET socket bound to one interface (native addon in native/rawlink.c,
 * built by node-gyp during `npm ci`).
 *
 * - Only ECP (0x8940) and LLDP (0x88CC) frames are delivered, untagged or behind one 802.1Q/802.1ad
 *   tag: a BPF filter in the kernel drops everything else and our own outgoing frames.
 * - The kernel strips a received VLAN tag into packet metadata; the addon puts it back, so frames
 *   are delivered as they were on the wire.
 * - Frames are not filtered by destination MAC: on a veth or a promiscuous port, frames to other
 *   unicast or non-joined group addresses arrive too. Group addresses are joined
 *   (PACKET_ADD_MEMBERSHIP) so that a real NIC passes them up.
 * - Link state comes from rtnetlink: down when the interface is administratively down, has no
 *   carrier, or is removed; when an interface of the same name appears again the link binds to it
 *   and rejoins its groups.
 * - Frames handed to send() must not be changed afterwards: when the socket's send buffer is full
 *   they are queued (not copied) until the kernel takes them.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Link, LinkStats, LinkStatus } from './link.js';

/** Nearest-customer-bridge group address (LLDP, ECP on a direct link). */
export const GROUP_NEAREST_CUSTOMER_BRIDGE = '01:80:c2:00:00:00';
/** Nearest-bridge group address (LLDP). */
export const GROUP_NEAREST_BRIDGE = '01:80:c2:00:00:0e';

export interface RawLinkOptions {
  /**
   * Network namespace to open the socket in: a path (/var/run/netns/NAME, /proc/PID/ns/net) or a
   * name under /var/run/netns. The socket stays in that namespace; the process does not move.
   */
  readonly netns?: string;
  /** Open an interface that is down or has no carrier (status() says so; onStatus tells when it comes up). */
  readonly allowDown?: boolean;
  /** Join 01:80:c2:00:00:00 and 01:80:c2:00:00:0e (default true). */
  readonly defaultGroups?: boolean;
  /** More group addresses to join (e.g. a configured ECP/VDP group address). */
  readonly groups?: readonly string[];
  /** Socket receive buffer in bytes (SO_RCVBUFFORCE, else SO_RCVBUF capped by rmem_max). Default 8 MiB. */
  readonly rcvBufBytes?: number;
  /** Socket send buffer in bytes. Default 4 MiB. */
  readonly sndBufBytes?: number;
  /** Frames held while the send buffer is full; beyond this, frames are dropped as txErrors. Default 65536. */
  readonly maxQueuedFrames?: number;
  /**
   * Source MAC rule in the kernel filter: only frames from these sources (`include`), or from
   * any source but these (`exclude`); at most 512. See `setSources` and src/link/priority.ts.
   */
  readonly sources?: SourceFilter;
}

export interface SourceFilter {
  readonly mode: 'include' | 'exclude';
  readonly macs: readonly string[];
}

export interface RawLinkStats extends LinkStats {
  /** Frames waiting for room in the socket's send buffer. */
  readonly txQueued: number;
}

/** An error from opening the link; `code` is an errno name (EPERM, ENODEV, ENETDOWN, ENOENT...). */
export interface RawLinkError extends Error {
  readonly code: string;
}

interface NativeRawSocket {
  send(frames: readonly Uint8Array[], start: number): number;
  join(mac: Uint8Array): void;
  leave(mac: Uint8Array): void;
  stats(): LinkStats;
  status(): [boolean, string | undefined];
  mac(): Uint8Array;
  ifindex(): number;
  close(): void;
  setSources(mode: 0 | 1 | 2, macs: Uint8Array[]): void;
  setPaused(paused: boolean): void;
}

interface NativeAddon {
  RawSocket: new (
    options: {
      ifname: string;
      netns?: string;
      allowDown: boolean;
      groups: Uint8Array[];
      rcvbuf: number;
      sndbuf: number;
    },
    onFrames: (frames: Uint8Array[]) => void,
    onStatus: (up: boolean, reason: string | undefined) => void,
    onWritable: () => void,
    onClosed: () => void,
  ) => NativeRawSocket;
}

const ADDON = 'splitnve_rawlink.node';
let addon: NativeAddon | undefined;

/** Finds build/Release/splitnve_rawlink.node above this module (dist/src/link or src/link). */
function loadAddon(): NativeAddon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    for (const kind of ['Release', 'Debug']) {
      const p = join(dir, 'build', kind, ADDON);
      if (existsSync(p)) {
        addon = require(p) as NativeAddon;
        return addon;
      }
    }
    dir = dirname(dir);
  }
  const err = new Error(
    `native addon ${ADDON} not found: run \`npm ci\` (or \`npx node-gyp rebuild\`) at the repository root`,
  ) as Error & { code: string };
  err.code = 'ENOENT';
  throw err;
}

const MAC_RE =
  /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i;

export function parseMac(mac: string): Uint8Array {
  const m = MAC_RE.exec(mac);
  if (!m) throw new TypeError(`not a MAC address: ${JSON.stringify(mac)}`);
  return Uint8Array.from(m.slice(1, 7).map((h) => parseInt(h, 16)));
}

function formatMac(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

export class RawLink implements Link {
  readonly name: string;
  private readonly sock: NativeRawSocket;
  private frameHandlers: ((frames: readonly Uint8Array[]) => void)[] = [];
  private statusHandlers: ((status: LinkStatus) => void)[] = [];
  private current: LinkStatus;
  private queue: Uint8Array[] = [];
  private queueHead = 0;
  private readonly maxQueued: number;
  private droppedTx = 0;
  private closed: Promise<void> | undefined;
  private resolveClosed: (() => void) | undefined;
  private lastStats: LinkStats = { rxFrames: 0, txFrames: 0, rxDropped: 0, txErrors: 0 };
  private readonly groupSet = new Set<string>();
  private lastMac = '00:00:00:00:00:00';

  /** Opens the link; throws a RawLinkError (with `code`) when it cannot. */
  constructor(ifname: string, options: RawLinkOptions = {}) {
    this.name = ifname;
    this.maxQueued = options.maxQueuedFrames ?? 65536;
    const groups = [
      ...(options.defaultGroups === false
        ? []
        : [GROUP_NEAREST_CUSTOMER_BRIDGE, GROUP_NEAREST_BRIDGE]),
      ...(options.groups ?? []),
    ];
    const groupBytes = groups.map(parseMac);
    for (const g of groupBytes) this.groupSet.add(formatMac(g));
    const { RawSocket } = loadAddon();
    this.sock = new RawSocket(
      {
        ifname,
        ...(options.netns !== undefined ? { netns: options.netns } : {}),
        allowDown: options.allowDown === true,
        groups: groupBytes,
        rcvbuf: options.rcvBufBytes ?? 8 << 20,
        sndbuf: options.sndBufBytes ?? 4 << 20,
      },
      (frames) => {
        for (const h of this.frameHandlers) h(frames);
      },
      (up, reason) => {
        this.current = up ? { up } : { up, reason: reason ?? 'down' };
        for (const h of this.statusHandlers) h(this.current);
      },
      () => this.flush(),
      () => this.resolveClosed?.(),
    );
    const [up, reason] = this.sock.status();
    this.current = up ? { up } : { up, reason: reason ?? 'down' };
    if (options.sources) {
      try {
        this.setSources(options.sources);
      } catch (e) {
        this.sock.close();
        throw e;
      }
    }
  }

  /**
   * Stops (or resumes) reading: while paused, frames wait in the kernel's queue and the
   * kernel drops what does not fit, at no cost to this process. Sending goes on.
   */
  setPaused(paused: boolean): void {
    if (this.closed) return;
    this.sock.setPaused(paused);
  }

  /** Replaces the source MAC rule of the kernel filter (undefined: no rule). */
  setSources(f: SourceFilter | undefined): void {
    if (this.closed) return;
    const mode = f === undefined ? 0 : f.mode === 'include' ? 1 : 2;
    this.sock.setSources(mode, (f?.macs ?? []).map(parseMac));
  }

  /** Our MAC address (follows changes of the interface's address). */
  get mac(): string {
    if (!this.closed) this.lastMac = formatMac(this.sock.mac());
    return this.lastMac;
  }

  /** Interface index in its namespace, -1 while the interface is gone. */
  get ifindex(): number {
    return this.closed ? -1 : this.sock.ifindex();
  }

  send(frames: readonly Uint8Array[]): void {
    if (this.closed) {
      this.droppedTx += frames.length;
      return;
    }
    if (this.queueHead < this.queue.length) {
      this.enqueue(frames, 0);
      return;
    }
    const taken = this.sock.send(frames, 0);
    if (taken < frames.length) this.enqueue(frames, taken);
  }

  private enqueue(frames: readonly Uint8Array[], from: number): void {
    for (let i = from; i < frames.length; i++) {
      if (this.queue.length - this.queueHead >= this.maxQueued) {
        this.droppedTx += frames.length - i;
        return;
      }
      this.queue.push(frames[i]!);
    }
  }

  private flush(): void {
    if (this.closed) return;
    this.queueHead = this.sock.send(this.queue, this.queueHead);
    if (this.queueHead >= this.queue.length) {
      this.queue = [];
      this.queueHead = 0;
    } else if (this.queueHead > 4096 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  onFrames(handler: (frames: readonly Uint8Array[]) => void): void {
    this.frameHandlers.push(handler);
  }

  onStatus(handler: (status: LinkStatus) => void): void {
    this.statusHandlers.push(handler);
  }

  status(): LinkStatus {
    return this.current;
  }

  /** Joins a group address (kept across interface removal and re-creation). */
  join(groupMac: string): void {
    const b = parseMac(groupMac);
    if (this.closed) return;
    this.sock.join(b);
    this.groupSet.add(formatMac(b));
  }

  leave(groupMac: string): void {
    const b = parseMac(groupMac);
    if (this.closed) return;
    this.sock.leave(b);
    this.groupSet.delete(formatMac(b));
  }

  /** Group addresses joined. */
  groups(): string[] {
    return [...this.groupSet];
  }

  stats(): RawLinkStats {
    if (!this.closed) this.lastStats = this.sock.stats();
    return {
      ...this.lastStats,
      txErrors: this.lastStats.txErrors + this.droppedTx,
      txQueued: this.queue.length - this.queueHead,
    };
  }

  /** Closes both sockets; resolves once libuv has released the handles. Idempotent. */
  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.lastStats = this.sock.stats();
    this.lastMac = formatMac(this.sock.mac());
    this.droppedTx += this.queue.length - this.queueHead;
    this.queue = [];
    this.queueHead = 0;
    this.closed = new Promise<void>((resolve) => {
      this.resolveClosed = resolve;
    });
    this.sock.close();
    return this.closed;
  }
}

/** Opens a raw link on one interface; throws a RawLinkError with `code` when it cannot. */
export function openRawLink(ifname: string, options: RawLinkOptions = {}): RawLink {
  return new RawLink(ifname, options);
}
