/**
 * The Network Virtualization Authority as the nNVE sees it (RFC 8014): a directory of virtual
 * networks and of which tenant addresses sit behind which NVE. Two drivers: `embedded`
 * (default; single node, SQLite) and `etcd` (etcd 3.4 v3 API).
 *
 * SPLIT-NVE.md §4: a TSI in Associated publishes *mapping* entries (known, not yet forwarding);
 * in Activated they become *forwarding* entries; in Init they are withdrawn. Each nNVE programs
 * remote forwarding entries (and flood lists) from what the others publish.
 *
 * Semantics shared by every driver:
 * - The NVA only stores. Policy (e.g. auto-creating a VN for an unknown VNI) is the nNVE's;
 *   `putVn(vn, { ifAbsent: true })` lets it create a VN without overwriting one an operator
 *   configured concurrently.
 * - Entry caches and entry events exist only for VNs being watched (`watchVn`); `watchVn`
 *   reports the entries already present as `entry-set` events. Entry events cover this NVE's own
 *   entries too (`entry.nve` tells who published); `remoteEntries` leaves them out.
 * - `nves()` includes this NVE once started. A VN deleted (here or by anyone) fires
 *   `vn-deleted`, and this NVE's entries in that VN are dropped.
 * - VNIs are integers 0..16777215; MACs are normalised to lower-case `aa:bb:cc:dd:ee:ff`.
 */
export interface VnInfo {
  readonly vni: number;
  readonly name?: string;
  /** Station MACs allowed to attach TSIs to this VN (empty/undefined: any). */
  readonly allowedStations?: readonly string[];
  /** Upper bound of TSIs in this VN per nNVE (undefined: no bound). */
  readonly maxTsis?: number;
}

export interface NvaEntry {
  readonly vni: number;
  readonly mac: string;
  readonly ips: readonly string[];
  /** Id of the NVE that publishes it. */
  readonly nve: string;
  /** Underlay address of that NVE. */
  readonly vtep: string;
  readonly kind: 'mapping' | 'forwarding';
}

export interface PutVnOptions {
  /** Only create: leave an existing VN untouched (then `putVn` resolves to false). */
  readonly ifAbsent?: boolean;
}

/** Where a driver given one reports what it does (pino-compatible subset). */
export interface NvaLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface NveInfo {
  readonly id: string;
  readonly vtep: string;
}

export type NvaEvent =
  | { readonly type: 'vn-set'; readonly vn: VnInfo }
  | { readonly type: 'vn-deleted'; readonly vni: number }
  | { readonly type: 'entry-set'; readonly entry: NvaEntry }
  | {
      readonly type: 'entry-deleted';
      readonly vni: number;
      readonly mac: string;
      readonly nve: string;
    }
  | { readonly type: 'nve-up'; readonly nve: NveInfo }
  | { readonly type: 'nve-down'; readonly id: string };

export interface Nva {
  readonly kind: string;
  /** Connects, registers this NVE (liveness: a lease that lapses when it dies) and loads caches. */
  start(self: NveInfo): Promise<void>;
  /** Cached VN lookup (kept current by watches); synchronous so protocol decisions need no I/O. */
  getVn(vni: number): VnInfo | undefined;
  listVns(): readonly VnInfo[];
  /**
   * Creates or replaces a VN. With `ifAbsent`, writes only if no VN with that VNI exists.
   * Resolves to whether it wrote (always true without `ifAbsent`).
   */
  putVn(vn: VnInfo, opts?: PutVnOptions): Promise<boolean>;
  deleteVn(vni: number): Promise<void>;
  /** Publishes or replaces this NVE's entry for (vni, mac). Rejects if the VN does not exist. */
  publish(entry: Omit<NvaEntry, 'nve' | 'vtep'>): Promise<void>;
  withdraw(vni: number, mac: string): Promise<void>;
  /**
   * This NVE's own entries as the NVA holds them for it (not cached per VN: all VNs). After a
   * restart the nNVE compares them with its TSIs and withdraws leftovers. The embedded NVA keeps
   * them in its file across restarts; the etcd NVA's entries live on this NVE's lease, so after a
   * restart this starts empty and the old ones expire with the old lease.
   */
  ownEntries(): readonly NvaEntry[];
  /** Entries of other live NVEs in a watched VN (cached; empty for a VN not watched). */
  remoteEntries(vni: number): readonly NvaEntry[];
  /** Live NVEs (cached). */
  nves(): readonly NveInfo[];
  /** Starts watching a VN's entries (prefix watch per VNI); idempotent. */
  watchVn(vni: number): Promise<void>;
  unwatchVn(vni: number): Promise<void>;
  /** Adds an event handler; returns a function that removes it. */
  onEvent(handler: (e: NvaEvent) => void): () => void;
  close(): Promise<void>;
}
