/**
 * Validation, normalisation and an indexed in-memory model of a {@link DataPlaneState}, shared
 * by the data-plane implementations (`memory`, `ovs`).
 *
 * Keys: a VAP is keyed by (port, vlan), a local endpoint by (port, vlan, mac), a remote endpoint
 * by (vni, mac), a flood list by vni. Objects are independent: deleting a VAP does not delete the
 * local endpoints on it (the nNVE removes those itself). A flood list with no VTEP is the same as
 * no flood list (`flood-set` with `vteps: []` removes it), since the interface has no flood-del.
 *
 * Normal forms (what `dump()` returns): MACs lower-case `aa:bb:cc:dd:ee:ff`; IP addresses in
 * their canonical text form (IPv6 compressed as in RFC 5952), sorted and without duplicates;
 * arrays sorted by key.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type {
  DataPlaneOp,
  DataPlaneState,
  FloodList,
  LocalEndpoint,
  RemoteEndpoint,
  Vap,
} from './dataplane.js';

export class DataPlaneError extends Error {
  override readonly name = 'DataPlaneError';
}

export const EMPTY_STATE: DataPlaneState = { vaps: [], locals: [], remotes: [], floods: [] };

const MAX_VNI = 0xffffff;

function fail(what: string, value: unknown, why: string): never {
  throw new DataPlaneError(`${what} ${JSON.stringify(value)}: ${why}`);
}

export function normalizePort(port: unknown, what = 'port'): string {
  if (typeof port !== 'string' || port.length === 0) fail(what, port, 'must be a non-empty string');
  return port;
}

export function normalizeVlan(vlan: unknown, what = 'vlan'): number {
  if (typeof vlan !== 'number' || !Number.isInteger(vlan) || vlan < 1 || vlan > 4094) {
    fail(what, vlan, 'must be an integer VLAN id 1..4094');
  }
  return vlan;
}

export function normalizeVni(vni: unknown, what = 'vni'): number {
  if (typeof vni !== 'number' || !Number.isInteger(vni) || vni < 0 || vni > MAX_VNI) {
    fail(what, vni, 'must be an integer 0..16777215 (24-bit VXLAN network identifier)');
  }
  return vni;
}

/** A unicast MAC address in `aa:bb:cc:dd:ee:ff` form (`-` separators accepted). */
export function normalizeMac(mac: unknown, what = 'mac'): string {
  if (typeof mac !== 'string' || !/^[0-9a-fA-F]{1,2}([:-][0-9a-fA-F]{1,2}){5}$/.test(mac)) {
    fail(what, mac, 'must be a MAC address like 02:00:00:00:0a:01');
  }
  const bytes = mac.split(/[:-]/).map((b) => parseInt(b, 16));
  if ((bytes[0]! & 1) === 1) fail(what, mac, 'is a group (multicast) address, not an endpoint');
  if (bytes.every((b) => b === 0)) fail(what, mac, 'is the all-zero address');
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Canonical text of an IPv4 or IPv6 address; throws on anything else (no prefixes). */
export function normalizeIp(ip: unknown, what = 'ip'): string {
  if (typeof ip === 'string' && isIPv4(ip)) {
    return ip
      .split('.')
      .map((o) => String(parseInt(o, 10)))
      .join('.');
  }
  if (typeof ip === 'string' && isIPv6(ip) && !ip.includes('%')) {
    // The WHATWG URL serializer prints IPv6 hosts in the RFC 5952 canonical form.
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  }
  return fail(what, ip, 'must be an IPv4 or IPv6 address');
}

function normalizeIpList(ips: unknown, what: string): string[] {
  if (!Array.isArray(ips)) fail(what, ips, 'must be an array of IP addresses');
  return [...new Set(ips.map((ip: unknown) => normalizeIp(ip, `${what} entry`)))].sort(compareIp);
}

/** Orders IPv4 before IPv6, then by text (a stable, simple order). */
export function compareIp(a: string, b: string): number {
  const fa = a.includes(':') ? 1 : 0;
  const fb = b.includes(':') ? 1 : 0;
  return fa - fb || (a < b ? -1 : a > b ? 1 : 0);
}

export function normalizeVap(v: Vap): Vap {
  return { port: normalizePort(v.port), vlan: normalizeVlan(v.vlan), vni: normalizeVni(v.vni) };
}

export function normalizeLocal(l: LocalEndpoint): LocalEndpoint {
  if (typeof l.active !== 'boolean') fail('local endpoint active', l.active, 'must be a boolean');
  return {
    port: normalizePort(l.port),
    vlan: normalizeVlan(l.vlan),
    vni: normalizeVni(l.vni),
    mac: normalizeMac(l.mac),
    ips: normalizeIpList(l.ips, 'local endpoint ips'),
    active: l.active,
  };
}

export function normalizeRemote(r: RemoteEndpoint): RemoteEndpoint {
  return {
    vni: normalizeVni(r.vni),
    mac: normalizeMac(r.mac),
    vtep: normalizeIp(r.vtep, 'remote endpoint vtep'),
  };
}

export function normalizeFlood(f: FloodList): FloodList {
  return { vni: normalizeVni(f.vni), vteps: normalizeIpList(f.vteps, 'flood list vteps') };
}

/** Validates one operation and returns it with every value in normal form. */
export function normalizeOp(op: DataPlaneOp): DataPlaneOp {
  switch (op?.op) {
    case 'vap-set':
      return { op: 'vap-set', vap: normalizeVap(op.vap) };
    case 'vap-del':
      return { op: 'vap-del', port: normalizePort(op.port), vlan: normalizeVlan(op.vlan) };
    case 'local-set':
      return { op: 'local-set', local: normalizeLocal(op.local) };
    case 'local-del':
      return {
        op: 'local-del',
        port: normalizePort(op.port),
        vlan: normalizeVlan(op.vlan),
        mac: normalizeMac(op.mac),
      };
    case 'remote-set':
      return { op: 'remote-set', remote: normalizeRemote(op.remote) };
    case 'remote-del':
      return { op: 'remote-del', vni: normalizeVni(op.vni), mac: normalizeMac(op.mac) };
    case 'flood-set':
      return { op: 'flood-set', flood: normalizeFlood(op.flood) };
    default:
      return fail('data-plane op', (op as { op?: unknown } | undefined)?.op, 'unknown operation');
  }
}

export const vapKey = (port: string, vlan: number): string => `${port}|${vlan}`;
export const localKey = (port: string, vlan: number, mac: string): string =>
  `${port}|${vlan}|${mac}`;
export const vniMacKey = (vni: number, mac: string): string => `${vni}|${mac}`;

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sameLocal(a: LocalEndpoint, b: LocalEndpoint): boolean {
  return a.vni === b.vni && a.active === b.active && sameList(a.ips, b.ips);
}

/**
 * What an operation touched, so that a driver can recompute only what depends on it. `vnis`
 * lists every VN whose VAP set changed (old and new), `egress` the (vni, mac) pairs whose
 * local-endpoint set changed.
 */
export interface Touched {
  readonly vaps: Set<string>;
  readonly locals: Set<string>;
  readonly remotes: Set<string>;
  readonly floods: Set<number>;
  readonly vnis: Set<number>;
  readonly egress: Set<string>;
}

export function emptyTouched(): Touched {
  return {
    vaps: new Set(),
    locals: new Set(),
    remotes: new Set(),
    floods: new Set(),
    vnis: new Set(),
    egress: new Set(),
  };
}

function addIndex<K>(index: Map<K, Set<string>>, k: K, v: string): void {
  let s = index.get(k);
  if (!s) index.set(k, (s = new Set()));
  s.add(v);
}

function delIndex<K>(index: Map<K, Set<string>>, k: K, v: string): void {
  const s = index.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) index.delete(k);
}

/**
 * The state as maps with the two secondary indexes the OVS flow compiler needs (VAPs by VNI,
 * local endpoints by (vni, mac)). Values stored here are always normalised.
 */
export class StateModel {
  readonly vaps = new Map<string, Vap>();
  readonly locals = new Map<string, LocalEndpoint>();
  readonly remotes = new Map<string, RemoteEndpoint>();
  readonly floods = new Map<number, FloodList>();
  readonly vapsByVni = new Map<number, Set<string>>();
  readonly localsByVniMac = new Map<string, Set<string>>();

  /** Loads a full state (validated and normalised); returns the model. */
  static from(state: DataPlaneState): StateModel {
    const m = new StateModel();
    const seen = new Set<string>();
    for (const raw of opsFor(state)) {
      const op = normalizeOp(raw);
      const key = opKey(op);
      if (seen.has(key)) throw new DataPlaneError(`state has a duplicate entry for ${key}`);
      seen.add(key);
      m.apply(op);
    }
    return m;
  }

  /**
   * Applies one normalised op. Returns an undo function, or null when the op changed nothing.
   * `touched` collects what changed.
   */
  apply(op: DataPlaneOp, touched: Touched = emptyTouched()): (() => void) | null {
    switch (op.op) {
      case 'vap-set':
      case 'vap-del': {
        const port = op.op === 'vap-set' ? op.vap.port : op.port;
        const vlan = op.op === 'vap-set' ? op.vap.vlan : op.vlan;
        const key = vapKey(port, vlan);
        const old = this.vaps.get(key);
        const next = op.op === 'vap-set' ? op.vap : undefined;
        if (old?.vni === next?.vni) return null;
        this.setVap(key, next);
        touched.vaps.add(key);
        if (old) touched.vnis.add(old.vni);
        if (next) touched.vnis.add(next.vni);
        return () => this.setVap(key, old);
      }
      case 'local-set':
      case 'local-del': {
        const l = op.op === 'local-set' ? op.local : op;
        const key = localKey(l.port, l.vlan, l.mac);
        const old = this.locals.get(key);
        const next = op.op === 'local-set' ? op.local : undefined;
        if (old === next || (old && next && sameLocal(old, next))) return null;
        this.setLocal(key, next);
        touched.locals.add(key);
        if (old) touched.egress.add(vniMacKey(old.vni, old.mac));
        if (next) touched.egress.add(vniMacKey(next.vni, next.mac));
        return () => this.setLocal(key, old);
      }
      case 'remote-set':
      case 'remote-del': {
        const r = op.op === 'remote-set' ? op.remote : op;
        const key = vniMacKey(r.vni, r.mac);
        const old = this.remotes.get(key);
        const next = op.op === 'remote-set' ? op.remote : undefined;
        if (old?.vtep === next?.vtep) return null;
        if (next) this.remotes.set(key, next);
        else this.remotes.delete(key);
        touched.remotes.add(key);
        return () => {
          if (old) this.remotes.set(key, old);
          else this.remotes.delete(key);
        };
      }
      case 'flood-set': {
        const { vni } = op.flood;
        const old = this.floods.get(vni);
        const next = op.flood.vteps.length > 0 ? op.flood : undefined;
        if (sameList(old?.vteps ?? [], next?.vteps ?? [])) return null;
        if (next) this.floods.set(vni, next);
        else this.floods.delete(vni);
        touched.floods.add(vni);
        return () => {
          if (old) this.floods.set(vni, old);
          else this.floods.delete(vni);
        };
      }
    }
  }

  private setVap(key: string, vap: Vap | undefined): void {
    const old = this.vaps.get(key);
    if (old) delIndex(this.vapsByVni, old.vni, key);
    if (vap) {
      this.vaps.set(key, vap);
      addIndex(this.vapsByVni, vap.vni, key);
    } else this.vaps.delete(key);
  }

  private setLocal(key: string, local: LocalEndpoint | undefined): void {
    const old = this.locals.get(key);
    if (old) delIndex(this.localsByVniMac, vniMacKey(old.vni, old.mac), key);
    if (local) {
      this.locals.set(key, local);
      addIndex(this.localsByVniMac, vniMacKey(local.vni, local.mac), key);
    } else this.locals.delete(key);
  }

  /** The state in normal form (sorted arrays). */
  snapshot(): DataPlaneState {
    return sortState({
      vaps: [...this.vaps.values()],
      locals: [...this.locals.values()],
      remotes: [...this.remotes.values()],
      floods: [...this.floods.values()],
    });
  }
}

const cmp = (a: string | number, b: string | number): number => (a < b ? -1 : a > b ? 1 : 0);

/** Sorts every array of a (normalised) state by its key. */
export function sortState(s: DataPlaneState): DataPlaneState {
  return {
    vaps: [...s.vaps].sort((a, b) => cmp(a.port, b.port) || a.vlan - b.vlan),
    locals: [...s.locals].sort(
      (a, b) => cmp(a.port, b.port) || a.vlan - b.vlan || cmp(a.mac, b.mac),
    ),
    remotes: [...s.remotes].sort((a, b) => a.vni - b.vni || cmp(a.mac, b.mac)),
    floods: [...s.floods].sort((a, b) => a.vni - b.vni),
  };
}

/** A readable identity of the object an op addresses, e.g. `local p1|10|02:00:00:00:0a:01`. */
export function opKey(op: DataPlaneOp): string {
  switch (op.op) {
    case 'vap-set':
      return `vap ${vapKey(op.vap.port, op.vap.vlan)}`;
    case 'vap-del':
      return `vap ${vapKey(op.port, op.vlan)}`;
    case 'local-set':
      return `local ${localKey(op.local.port, op.local.vlan, op.local.mac)}`;
    case 'local-del':
      return `local ${localKey(op.port, op.vlan, op.mac)}`;
    case 'remote-set':
      return `remote ${vniMacKey(op.remote.vni, op.remote.mac)}`;
    case 'remote-del':
      return `remote ${vniMacKey(op.vni, op.mac)}`;
    case 'flood-set':
      return `flood ${op.flood.vni}`;
  }
}

/** The `*-set` operations that build `state` from nothing. */
export function opsFor(state: DataPlaneState): DataPlaneOp[] {
  return [
    ...state.vaps.map((vap): DataPlaneOp => ({ op: 'vap-set', vap })),
    ...state.locals.map((local): DataPlaneOp => ({ op: 'local-set', local })),
    ...state.remotes.map((remote): DataPlaneOp => ({ op: 'remote-set', remote })),
    ...state.floods.map((flood): DataPlaneOp => ({ op: 'flood-set', flood })),
  ];
}
