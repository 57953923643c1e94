/**
 * The nNVE's data plane, behind one interface: `memory` (default) and `ovs` (Open vSwitch,
 * userspace datapath). The nNVE tells it what must be true; every operation is idempotent, and
 * `reconcile` makes the installed state equal to a full desired state (start-up, restart).
 *
 * SPLIT-NVE.md §4: a VAP maps (port, VLAN) <-> VNI. A local endpoint is a TSI's address set on a
 * port and VLAN: while `active` (TSI Activated) its MAC is a static entry and its source
 * filters are enforced; while not active (TSI Associated) it is provisioned but filters are off
 * and traffic from it is dropped. Remote endpoints and flood lists come from the NVA.
 */
export interface Vap {
  /** nNVE port (interface name). */
  readonly port: string;
  /** Local tag on that port. */
  readonly vlan: number;
  readonly vni: number;
}

export interface LocalEndpoint {
  readonly port: string;
  readonly vlan: number;
  readonly vni: number;
  readonly mac: string;
  /** IPv4/IPv6 addresses bound to this MAC (source filters), may be empty. */
  readonly ips: readonly string[];
  /** TSI Activated: static MAC installed, source filter enforced, traffic flows. */
  readonly active: boolean;
}

export interface RemoteEndpoint {
  readonly vni: number;
  readonly mac: string;
  /** Underlay address of the remote NVE (VXLAN destination). */
  readonly vtep: string;
}

export interface FloodList {
  readonly vni: number;
  /** Remote NVEs that receive broadcast / unknown-unicast / multicast of this VN. */
  readonly vteps: readonly string[];
}

export interface DataPlaneState {
  readonly vaps: readonly Vap[];
  readonly locals: readonly LocalEndpoint[];
  readonly remotes: readonly RemoteEndpoint[];
  readonly floods: readonly FloodList[];
}

export type DataPlaneOp =
  | { readonly op: 'vap-set'; readonly vap: Vap }
  | { readonly op: 'vap-del'; readonly port: string; readonly vlan: number }
  | { readonly op: 'local-set'; readonly local: LocalEndpoint }
  | { readonly op: 'local-del'; readonly port: string; readonly vlan: number; readonly mac: string }
  | { readonly op: 'remote-set'; readonly remote: RemoteEndpoint }
  | { readonly op: 'remote-del'; readonly vni: number; readonly mac: string }
  | { readonly op: 'flood-set'; readonly flood: FloodList };

export interface DataPlane {
  readonly kind: string;
  start(): Promise<void>;
  /** Applies operations in order. Each is idempotent (setting what is already set is a no-op). */
  apply(ops: readonly DataPlaneOp[]): Promise<void>;
  /** Makes the installed state exactly `state`: adds what is missing, removes what is stale. */
  reconcile(state: DataPlaneState): Promise<void>;
  /** What is installed now, read back from the data plane itself where it can be. */
  dump(): Promise<DataPlaneState>;
  close(): Promise<void>;
}
