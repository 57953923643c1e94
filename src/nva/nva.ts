/**
 * The Network Virtualization Authority as the nNVE sees it (RFC 8014): a directory of virtual
 * networks and of which tenant addresses sit behind which NVE. Two drivers: `embedded`
 * (default; single node, SQLite) and `etcd` (etcd 3.4 v3 API).
 *
 * SPLIT-NVE.md §4: a TSI in Associated publishes *mapping* entries (known, not yet forwarding);
 * in Activated they become *forwarding* entries; in Init they are withdrawn. Each nNVE programs
 * remote forwarding entries (and flood lists) from what the others publish.
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
  putVn(vn: VnInfo): Promise<void>;
  deleteVn(vni: number): Promise<void>;
  /** Publishes or replaces this NVE's entry for (vni, mac). */
  publish(entry: Omit<NvaEntry, 'nve' | 'vtep'>): Promise<void>;
  withdraw(vni: number, mac: string): Promise<void>;
  /** Entries of other live NVEs in a VN (cached). */
  remoteEntries(vni: number): readonly NvaEntry[];
  /** Live NVEs (cached). */
  nves(): readonly NveInfo[];
  /** Starts watching a VN's entries (prefix watch per VNI); idempotent. */
  watchVn(vni: number): Promise<void>;
  unwatchVn(vni: number): Promise<void>;
  onEvent(handler: (e: NvaEvent) => void): void;
  close(): Promise<void>;
}
