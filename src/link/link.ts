/**
 * A link is where frames enter and leave a daemon: raw Ethernet (AF_PACKET), the in-memory
 * link of the simulator, or ECP over TLS. Frames are whole Ethernet frames (destination MAC
 * first). The protocol core never touches a link: the daemon feeds received frames into the
 * sans-IO machines and transmits the frames they return.
 */
export interface LinkStatus {
  readonly up: boolean;
  /** Why the link is down, when it is (e.g. "carrier lost", "interface removed"). */
  readonly reason?: string;
}

export interface Link {
  /** Interface name or a description of the endpoint. */
  readonly name: string;
  /** Our MAC address on this link (source of the frames we send). */
  readonly mac: string;
  /** Sends frames in order; a batch may leave in one system call. Never throws for one bad frame. */
  send(frames: readonly Uint8Array[]): void;
  /** Registers the receiver of received frames (in arrival order). */
  onFrames(handler: (frames: readonly Uint8Array[]) => void): void;
  /** Registers the receiver of link up/down changes. */
  onStatus(handler: (status: LinkStatus) => void): void;
  status(): LinkStatus;
  /** Counters for metrics. */
  stats(): LinkStats;
  close(): Promise<void>;
}

export interface LinkStats {
  readonly rxFrames: number;
  readonly txFrames: number;
  readonly rxDropped: number;
  readonly txErrors: number;
}
