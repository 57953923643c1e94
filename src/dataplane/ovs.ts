/**
 * nNVE data plane on Open vSwitch with the userspace datapath (`datapath_type=netdev`): one OVS
 * bridge per nNVE holding the nNVE ports (802.1Q trunks to the hypervisors) and one VXLAN port
 * (`type=vxlan options:key=flow options:remote_ip=flow options:local_ip=<underlay IP>`).
 * Bridge, ports and interfaces are configured over OVSDB (ovsdb.ts); flows with `ovs-ofctl`
 * (one `--bundle add-flows` transaction per batch, so a batch is atomic for packets).
 *
 * Flow tables (P = nNVE port, V = its VAP's VLAN, N = VNI, M = MAC, T = the VXLAN port):
 *
 *   table 0 (classify)
 *     1000  dl_type=0x8940 (ECP) | dl_type=0x88cc (LLDP) | dl_dst=01:80:c2:00:00:0x -> drop
 *      100  in_port=P,dl_vlan=V                  -> set tun_id=N, goto 1          [VAP]
 *      100  in_port=T,untagged                   -> goto 2      (tun_id from the VXLAN header)
 *        0  drop                                   (untagged/unknown VLAN on a port, ...)
 *   table 1 (source filter; the frame still carries V)           [local endpoint, per P,V,M]
 *      120  ip|arp|ipv6,B,nw_src|arp_spa|ipv6_src=<one of its IPs> -> A
 *      120  ipv6,B,ipv6_src=fe80::/10 | ::       -> A   (only if it has IPv6 addresses: ND, DAD)
 *      110  ip|arp|ipv6,B                        -> drop (only for a family it has addresses of)
 *      100  B                                    -> A
 *        0  drop                                   (unknown source MAC)
 *     with B = in_port=P,dl_vlan=V,tun_id=N,dl_src=M and A = `pop_vlan,goto 2` while the endpoint
 *     is active, `drop` while it is only associated (filters built but disabled, traffic dropped).
 *   table 2 (L2 lookup, untagged)
 *      110  in_port=P,tun_id=N,dl_dst=M -> another active endpoint of M on another port, else
 *           goto 4                        [hairpin: P's hypervisor no longer has M, it moved]
 *      100  tun_id=N,dl_dst=M -> push VLAN V, output P  [active local endpoint: static MAC]
 *       90  tun_id=N,dl_dst=M -> tun_dst=VTEP, output T          [remote endpoint from the NVA]
 *        0  goto 3                                  (broadcast, multicast, unknown unicast)
 *   table 3 (BUM, per VN)
 *      100  in_port=P,tun_id=N -> to every other VAP of N on another port (tagged), goto 4
 *      100  in_port=T,tun_id=N -> to every VAP of N (tagged); never back to the tunnel
 *        0  drop
 *   table 4 (flood list, per VN)
 *      100  tun_id=N -> for each VTEP of the flood list: tun_dst=VTEP, output T
 *        0  drop
 *
 * A local endpoint's frames pass only if the VAP of its (port, VLAN) maps to the endpoint's VNI
 * (table 0 sets tun_id, table 1 matches it). Local endpoints win over remote ones for the same
 * (VN, MAC) by priority; if two active local endpoints share a (VN, MAC) the first by (port,
 * VLAN) gets the static entry. Limits: no hairpin (a frame is never sent back out of the port it
 * came in on, OpenFlow's rule; the hypervisor switches between its own VMs), and at most one VAP
 * per (port, VN) is meaningful for flooding.
 *
 * Identity: every flow carries a cookie that is a hash of its full text (0x5e + 56 bits of
 * SHA-256). The driver keeps the flows of each object ("group": base, vap, local, egress, remote,
 * bum, flood) and, after a change, adds the new cookies and deletes the old ones (`delete
 * cookie=C/-1`). `reconcile` and `start` read the installed cookies back (`dump-flows`), add
 * what is missing and delete everything else, including flows we did not put there. OpenFlow
 * allows one flow per (table, priority, match), so replaying never duplicates. `start` rebuilds
 * the state from the installed flows (restart of the nNVE keeps forwarding) and `dump` parses
 * them back into a DataPlaneState.
 *
 * Batching: `apply` calls made while a batch is being installed (or within the same tick) are
 * coalesced into one ovs-ofctl call; each call resolves only when its flows are installed.
 * If the install fails, every call of that batch rejects and the model is rolled back; the next
 * batch then re-syncs against the switch. A restart of ovs-vswitchd loses all flows without the
 * driver noticing: call `reconcile` then (or periodically).
 *
 * Deployment notes (userspace datapath, see test/harness/ovs.ts): the underlay address must sit
 * on the internal port of a netdev bridge that holds the underlay NIC (OVS routes and ARPs for
 * VXLAN itself); set arp_ignore=1 so the kernel does not also answer ARP for it on the NIC;
 * underlay MTU >= 1550 for 1500-byte overlay frames. Hosts sending through a veth into the
 * userspace datapath need checksum/segmentation offloads off (tx, sg, tso, gso).
 */
import { spawn } from 'node:child_process';
import {
  OpenFlowConnection,
  OpenFlowError,
  flowAddBody,
  flowDeleteCookieBody,
  parseFlowText,
} from './openflow.js';
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { DataPlane, DataPlaneOp, DataPlaneState, LocalEndpoint } from './dataplane.js';
import {
  OvsdbClient,
  mapEntries,
  namedUuid,
  ovsMap,
  ovsSet,
  setItems,
  uuid,
  uuidOf,
  type OvsdbOp,
} from './ovsdb.js';
import {
  DataPlaneError,
  StateModel,
  emptyTouched,
  localKey,
  normalizeIp,
  normalizeOp,
  opKey,
  vniMacKey,
  type Touched,
} from './state.js';

export interface OvsDataPlaneOptions {
  /** The nNVE's OVS bridge (created if missing; it belongs to this driver). */
  readonly bridge: string;
  /** Underlay (VTEP) address of this nNVE: the VXLAN port's local_ip. */
  readonly localIp: string;
  /** nNVE port interface names (trunks to the hypervisors). */
  readonly ports: readonly string[];
  /** OVS run directory holding db.sock and <bridge>.mgmt (default /var/run/openvswitch). */
  readonly rundir?: string;
  /** OVSDB unix socket (default <rundir>/db.sock). */
  readonly dbSocket?: string;
  /** OpenFlow target for ovs-ofctl (default unix:<rundir>/<bridge>.mgmt). */
  readonly ofTarget?: string;
  /** Name of the VXLAN port (default <bridge>-vx, bridge cut to 12 characters). */
  readonly tunnelPort?: string;
  /** ovs-ofctl program (default `ovs-ofctl` on PATH). */
  readonly ofctl?: string;
  /** Timeout of one OVSDB request / ovs-ofctl run / vswitchd reconfiguration (default 10 s). */
  readonly timeoutMs?: number;
}

export interface Flow {
  readonly table: number;
  readonly priority: number;
  /** Match fields in ovs-ofctl syntax, '' for match-all. */
  readonly match: string;
  /** Actions in ovs-ofctl syntax; 'drop' for none. */
  readonly actions: string;
}

/** Flow text as given to ovs-ofctl (without the cookie). */
export function flowText(f: Flow): string {
  const m = f.match ? `,${f.match}` : '';
  return `table=${f.table},priority=${f.priority}${m} actions=${f.actions}`;
}

/** The cookie of a flow: 0x5e followed by 56 bits of the SHA-256 of its text. */
export function flowCookie(text: string): string {
  return `0x5e${createHash('sha256').update(text).digest('hex').slice(0, 14)}`;
}

const T_CLASSIFY = 0;
const T_FILTER = 1;
const T_L2 = 2;
const T_BUM = 3;
const T_FLOOD = 4;

const ECP_ETHERTYPE = 0x8940;
const LLDP_ETHERTYPE = 0x88cc;

/** The fixed flows every nNVE bridge has (also all that is left when the state is empty). */
export function baseFlows(tunnel: string): Flow[] {
  const drop = 'drop';
  return [
    {
      table: T_CLASSIFY,
      priority: 1000,
      match: `dl_type=0x${ECP_ETHERTYPE.toString(16)}`,
      actions: drop,
    },
    {
      table: T_CLASSIFY,
      priority: 1000,
      match: `dl_type=0x${LLDP_ETHERTYPE.toString(16)}`,
      actions: drop,
    },
    {
      table: T_CLASSIFY,
      priority: 1000,
      match: 'dl_dst=01:80:c2:00:00:00/ff:ff:ff:ff:ff:f0',
      actions: drop,
    },
    {
      table: T_CLASSIFY,
      priority: 100,
      match: `in_port=${tunnel},vlan_tci=0x0000/0x1000`,
      actions: `resubmit(,${T_L2})`,
    },
    { table: T_CLASSIFY, priority: 0, match: '', actions: drop },
    { table: T_FILTER, priority: 0, match: '', actions: drop },
    { table: T_L2, priority: 0, match: '', actions: `resubmit(,${T_BUM})` },
    { table: T_BUM, priority: 0, match: '', actions: drop },
    { table: T_FLOOD, priority: 0, match: '', actions: drop },
  ];
}

const tagged = (port: string, vlan: number): string =>
  `push_vlan:0x8100,set_field:${0x1000 | vlan}->vlan_vid,output:${port}`;

const tunDst = (ip: string): string => (isIPv6(ip) ? 'tun_ipv6_dst' : 'tun_dst');
const toVtep = (ip: string, tunnel: string): string =>
  `set_field:${ip}->${tunDst(ip)},output:${tunnel}`;

export function vapFlows(port: string, vlan: number, vni: number): Flow[] {
  return [
    {
      table: T_CLASSIFY,
      priority: 100,
      match: `in_port=${port},dl_vlan=${vlan}`,
      actions: `set_field:${vni}->tun_id,resubmit(,${T_FILTER})`,
    },
  ];
}

export function localFlows(l: LocalEndpoint): Flow[] {
  const base = `in_port=${l.port},dl_vlan=${l.vlan},tun_id=${l.vni},dl_src=${l.mac}`;
  const pass = l.active ? `pop_vlan,resubmit(,${T_L2})` : 'drop';
  const flows: Flow[] = [{ table: T_FILTER, priority: 100, match: base, actions: pass }];
  const v4 = l.ips.filter((ip) => !ip.includes(':'));
  const v6 = l.ips.filter((ip) => ip.includes(':'));
  if (v4.length > 0) {
    flows.push({ table: T_FILTER, priority: 110, match: `ip,${base}`, actions: 'drop' });
    flows.push({ table: T_FILTER, priority: 110, match: `arp,${base}`, actions: 'drop' });
    for (const ip of v4) {
      flows.push({
        table: T_FILTER,
        priority: 120,
        match: `ip,${base},nw_src=${ip}`,
        actions: pass,
      });
      flows.push({
        table: T_FILTER,
        priority: 120,
        match: `arp,${base},arp_spa=${ip}`,
        actions: pass,
      });
    }
  }
  if (v6.length > 0) {
    flows.push({ table: T_FILTER, priority: 110, match: `ipv6,${base}`, actions: 'drop' });
    for (const src of [...v6, ...V6_ALWAYS]) {
      flows.push({
        table: T_FILTER,
        priority: 120,
        match: `ipv6,${base},ipv6_src=${src}`,
        actions: pass,
      });
    }
  }
  return flows;
}

/** IPv6 sources allowed for any endpoint with IPv6 addresses: link-local (ND) and :: (DAD). */
const V6_ALWAYS = ['fe80::/10', '::'];

export function egressFlows(model: StateModel, vni: number, mac: string): Flow[] {
  const keys = model.localsByVniMac.get(vniMacKey(vni, mac));
  if (!keys) return [];
  const active = [...keys]
    .map((k) => model.locals.get(k)!)
    .filter((l) => l.active)
    .sort((a, b) => (a.port < b.port ? -1 : a.port > b.port ? 1 : a.vlan - b.vlan));
  const winner = active[0];
  if (!winner) return [];
  // Hairpin: a frame for the endpoint coming up from the endpoint's own port means that
  // hypervisor no longer has it (it is migrating away, and this nNVE has not heard yet): send it
  // to where it may be now, another active endpoint of it on another port, else the VN's other
  // NVEs, instead of dropping it (OpenFlow never sends a frame back out of its in_port).
  const elsewhere = active.find((l) => l.port !== winner.port);
  return [
    {
      table: T_L2,
      priority: 100,
      match: `tun_id=${vni},dl_dst=${mac}`,
      actions: tagged(winner.port, winner.vlan),
    },
    {
      table: T_L2,
      priority: 110,
      match: `in_port=${winner.port},tun_id=${vni},dl_dst=${mac}`,
      actions: elsewhere ? tagged(elsewhere.port, elsewhere.vlan) : `resubmit(,${T_FLOOD})`,
    },
  ];
}

export function remoteFlows(vni: number, mac: string, vtep: string, tunnel: string): Flow[] {
  return [
    {
      table: T_L2,
      priority: 90,
      match: `tun_id=${vni},dl_dst=${mac}`,
      actions: toVtep(vtep, tunnel),
    },
  ];
}

export function bumFlows(model: StateModel, vni: number, tunnel: string): Flow[] {
  const vaps = [...(model.vapsByVni.get(vni) ?? [])]
    .map((k) => model.vaps.get(k)!)
    .sort((a, b) => (a.port < b.port ? -1 : a.port > b.port ? 1 : a.vlan - b.vlan));
  if (vaps.length === 0) return [];
  const flows: Flow[] = [];
  const outputs = (except?: string): string[] =>
    vaps.filter((v) => v.port !== except).map((v) => tagged(v.port, v.vlan));
  for (const port of [...new Set(vaps.map((v) => v.port))]) {
    const outs = outputs(port);
    const toFlood = `resubmit(,${T_FLOOD})`;
    flows.push({
      table: T_BUM,
      priority: 100,
      match: `in_port=${port},tun_id=${vni}`,
      actions: outs.length > 0 ? [...outs, toFlood].join(',pop_vlan,') : toFlood,
    });
  }
  flows.push({
    table: T_BUM,
    priority: 100,
    match: `in_port=${tunnel},tun_id=${vni}`,
    actions: outputs().join(',pop_vlan,'),
  });
  return flows;
}

export function floodFlows(vni: number, vteps: readonly string[], tunnel: string): Flow[] {
  if (vteps.length === 0) return [];
  return [
    {
      table: T_FLOOD,
      priority: 100,
      match: `tun_id=${vni}`,
      actions: vteps.map((ip) => toVtep(ip, tunnel)).join(','),
    },
  ];
}

/** Group key -> flows, for the groups a change touched (absent objects give no flows). */
export function compileTouched(model: StateModel, t: Touched, tunnel: string): Map<string, Flow[]> {
  const out = new Map<string, Flow[]>();
  for (const k of t.vaps) {
    const v = model.vaps.get(k);
    out.set(`vap|${k}`, v ? vapFlows(v.port, v.vlan, v.vni) : []);
  }
  for (const k of t.locals) {
    const l = model.locals.get(k);
    out.set(`local|${k}`, l ? localFlows(l) : []);
  }
  for (const k of t.egress) {
    const [vni, mac] = splitKey(k);
    out.set(`egress|${k}`, egressFlows(model, Number(vni), mac!));
  }
  for (const k of t.remotes) {
    const r = model.remotes.get(k);
    out.set(`remote|${k}`, r ? remoteFlows(r.vni, r.mac, r.vtep, tunnel) : []);
  }
  for (const vni of t.vnis) out.set(`bum|${vni}`, bumFlows(model, vni, tunnel));
  for (const vni of t.floods) {
    out.set(`flood|${vni}`, floodFlows(vni, model.floods.get(vni)?.vteps ?? [], tunnel));
  }
  return out;
}

const splitKey = (k: string): string[] => k.split('|');

/** Every group of a model, including the base flows. */
export function compileAll(model: StateModel, tunnel: string): Map<string, Flow[]> {
  const t = emptyTouched();
  for (const k of model.vaps.keys()) t.vaps.add(k);
  for (const v of model.vaps.values()) t.vnis.add(v.vni);
  for (const [k, l] of model.locals) {
    t.locals.add(k);
    t.egress.add(vniMacKey(l.vni, l.mac));
  }
  for (const k of model.remotes.keys()) t.remotes.add(k);
  for (const k of model.floods.keys()) t.floods.add(k);
  const out = compileTouched(model, t, tunnel);
  out.set('base', baseFlows(tunnel));
  for (const [k, flows] of out) if (flows.length === 0) out.delete(k);
  return out;
}

/** One flow as read back from `ovs-ofctl -O OpenFlow14 --names --no-stats dump-flows`. */
export interface InstalledFlow {
  readonly cookie: string;
  readonly table: number;
  readonly priority: number;
  /** Match fields; bare protocol words (ip, arp, ipv6, ...) map to ''. */
  readonly match: ReadonlyMap<string, string>;
  readonly actions: string;
  /** The dump line, trimmed. */
  readonly line: string;
}

/** Parses dump-flows output (no stats); ignores lines that are not flows. */
export function parseFlowDump(text: string): InstalledFlow[] {
  const flows: InstalledFlow[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const at = line.indexOf(' actions=');
    if (!line.startsWith('cookie=') || at < 0) continue;
    const match = new Map<string, string>();
    let cookie = '0x0';
    let table = 0;
    let priority = 32768;
    for (const tok of line.slice(0, at).split(/[ ,]+/)) {
      if (!tok) continue;
      const eq = tok.indexOf('=');
      const k = eq < 0 ? tok : tok.slice(0, eq);
      const v = eq < 0 ? '' : tok.slice(eq + 1);
      if (k === 'cookie') cookie = normCookie(v);
      else if (k === 'table') table = Number(v);
      else if (k === 'priority') priority = Number(v);
      else match.set(k, v);
    }
    flows.push({ cookie, table, priority, match, actions: line.slice(at + 9), line });
  }
  return flows;
}

const normCookie = (c: string): string => `0x${BigInt(c).toString(16)}`;

function num(v: string | undefined): number {
  return v === undefined ? NaN : Number(v);
}

/**
 * Rebuilds the state from installed flows (the inverse of the compiler for what it can see):
 * VAPs from table 0, local endpoints (with IPs and active flag) from table 1, remote endpoints
 * from table 2 priority 90, flood lists from table 4. Entries on ports not in `ports` or that
 * fail validation are left out (they are stale and `start` deletes their flows).
 */
export function stateFromFlows(
  flows: readonly InstalledFlow[],
  tunnel: string,
  ports: ReadonlySet<string>,
): DataPlaneState {
  const ops: DataPlaneOp[] = [];
  const locals = new Map<string, { l: Omit<LocalEndpoint, 'ips'>; ips: string[] }>();
  const ipsOf = new Map<string, string[]>();
  const vteps = (actions: string): string[] =>
    [...actions.matchAll(/set_field:([0-9a-fA-F.:]+)->tun_(?:ipv6_)?dst/g)].map((m) => m[1]!);
  for (const f of flows) {
    const m = f.match;
    if (f.table === T_CLASSIFY && f.priority === 100 && m.get('in_port') !== tunnel) {
      const vni = /set_field:(0x[0-9a-f]+|\d+)->tun_id/.exec(f.actions)?.[1];
      if (vni !== undefined && m.has('dl_vlan')) {
        ops.push({
          op: 'vap-set',
          vap: { port: m.get('in_port') ?? '', vlan: num(m.get('dl_vlan')), vni: Number(vni) },
        });
      }
    } else if (f.table === T_FILTER && (f.priority === 100 || f.priority === 120)) {
      const port = m.get('in_port') ?? '';
      const vlan = num(m.get('dl_vlan'));
      const mac = m.get('dl_src') ?? '';
      const key = `${localKey(port, vlan, mac)}|${num(m.get('tun_id'))}`;
      if (f.priority === 100) {
        const l = { port, vlan, mac, vni: num(m.get('tun_id')), active: f.actions !== 'drop' };
        locals.set(key, { l, ips: [] });
      } else {
        const ip = m.get('nw_src') ?? m.get('ipv6_src');
        if (ip !== undefined && !ip.includes('/') && ip !== '::') {
          ipsOf.set(key, [...(ipsOf.get(key) ?? []), ip]);
        }
      }
    } else if (f.table === T_L2 && f.priority === 90) {
      const vtep = vteps(f.actions)[0];
      if (vtep) {
        ops.push({
          op: 'remote-set',
          remote: { vni: num(m.get('tun_id')), mac: m.get('dl_dst') ?? '', vtep },
        });
      }
    } else if (f.table === T_FLOOD && f.priority === 100) {
      ops.push({ op: 'flood-set', flood: { vni: num(m.get('tun_id')), vteps: vteps(f.actions) } });
    }
  }
  for (const [key, { l }] of locals) {
    ops.push({ op: 'local-set', local: { ...l, ips: ipsOf.get(key) ?? [] } });
  }
  const model = new StateModel();
  for (const op of ops) {
    try {
      const n = normalizeOp(op);
      const port = n.op === 'vap-set' ? n.vap.port : n.op === 'local-set' ? n.local.port : null;
      if (port !== null && !ports.has(port)) continue;
      model.apply(n);
    } catch {
      // not one of ours (or corrupt): leave it out
    }
  }
  return model.snapshot();
}

const RESERVED_PORT_NAMES = new Set([
  'in_port',
  'table',
  'normal',
  'flood',
  'all',
  'controller',
  'local',
  'none',
  'any',
  'unset',
]);

function checkName(what: string, name: string): string {
  if (
    !/^[A-Za-z0-9_.-]{1,15}$/.test(name) ||
    /^\d+$/.test(name) ||
    RESERVED_PORT_NAMES.has(name.toLowerCase())
  ) {
    throw new DataPlaneError(
      `${what} ${JSON.stringify(name)}: must be 1-15 characters [A-Za-z0-9_.-], not a number or an OpenFlow reserved port name`,
    );
  }
  return name;
}

interface Job {
  readonly kind: 'ops' | 'reconcile';
  readonly ops?: readonly DataPlaneOp[];
  readonly state?: StateModel;
  resolve(): void;
  reject(e: Error): void;
}

export interface OvsStats {
  /** ovs-ofctl transactions that changed flows. */
  bundles: number;
  /** Flow adds + cookie deletes sent. */
  flowMods: number;
  /** apply/reconcile calls completed. */
  calls: number;
  /** Bundles installed over the persistent OpenFlow connection. */
  openflowBundles: number;
  /** Bundles that went through ovs-ofctl instead (no connection, or it failed). */
  ofctlBundles: number;
}

export class OvsDataPlane implements DataPlane {
  readonly kind = 'ovs';
  readonly bridge: string;
  readonly tunnelPort: string;
  readonly localIp: string;
  readonly ports: readonly string[];
  readonly stats: OvsStats = {
    bundles: 0,
    flowMods: 0,
    calls: 0,
    openflowBundles: 0,
    ofctlBundles: 0,
  };
  private readonly portSet: ReadonlySet<string>;
  private readonly dbSocket: string;
  private readonly ofTarget: string;
  private readonly ofctl: string;
  private readonly timeoutMs: number;
  private db: OvsdbClient | null = null;
  private model = new StateModel();
  /** Group key -> (cookie -> flow text) believed installed. */
  private groups = new Map<string, Map<string, string>>();
  private queue: Job[] = [];
  private running: Promise<void> | null = null;
  private scheduled = false;
  private needsResync = true;
  private started = false;
  /** OpenFlow port numbers of the nNVE ports and the VXLAN port (from OVSDB). */
  private ofports = new Map<string, number>();
  /** Persistent OpenFlow 1.4 connection (unix targets); null: ovs-ofctl only. */
  private of: OpenFlowConnection | null = null;
  private lastOfError: string | null = null;

  constructor(opts: OvsDataPlaneOptions) {
    this.bridge = checkName('OVS bridge', opts.bridge);
    this.localIp = normalizeIp(opts.localIp, 'OVS data plane localIp');
    this.ports = opts.ports.map((p) => checkName('nNVE port', p));
    this.portSet = new Set(this.ports);
    if (this.portSet.size !== this.ports.length) {
      throw new DataPlaneError(`nNVE ports ${JSON.stringify(opts.ports)}: duplicate name`);
    }
    this.tunnelPort = checkName('VXLAN port', opts.tunnelPort ?? `${this.bridge.slice(0, 12)}-vx`);
    for (const n of [this.bridge, this.tunnelPort]) {
      if (this.portSet.has(n))
        throw new DataPlaneError(`nNVE port ${n} clashes with the bridge/VXLAN port name`);
    }
    if (this.bridge === this.tunnelPort) {
      throw new DataPlaneError(`VXLAN port name ${this.tunnelPort} equals the bridge name`);
    }
    const rundir = opts.rundir ?? '/var/run/openvswitch';
    this.dbSocket = opts.dbSocket ?? `${rundir}/db.sock`;
    this.ofTarget = opts.ofTarget ?? `unix:${rundir}/${this.bridge}.mgmt`;
    this.ofctl = opts.ofctl ?? 'ovs-ofctl';
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /**
   * Connects to OVSDB, creates/repairs the bridge and its ports, waits until ovs-vswitchd has
   * applied that, then adopts the flows already installed: the state they describe becomes the
   * current state and anything else (foreign or stale flows) is removed; missing base flows are
   * added. Forwarding for what was installed continues uninterrupted.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.db = await OvsdbClient.connect(this.dbSocket, { timeoutMs: this.timeoutMs });
    try {
      await this.ensureBridge();
      await this.openOpenFlow();
      const installed = await this.installedFlows();
      this.model = StateModel.from(stateFromFlows(installed, this.tunnelPort, this.portSet));
      await this.fullSync(this.model, installed);
      this.started = true;
    } catch (e) {
      await this.db.close();
      this.db = null;
      throw e;
    }
  }

  apply(ops: readonly DataPlaneOp[]): Promise<void> {
    let normalized: DataPlaneOp[];
    try {
      this.checkStarted();
      normalized = ops.map((op) => this.checkOp(normalizeOp(op)));
    } catch (e) {
      return Promise.reject(e);
    }
    if (normalized.length === 0) return Promise.resolve();
    return this.enqueue({ kind: 'ops', ops: normalized });
  }

  reconcile(state: DataPlaneState): Promise<void> {
    let model: StateModel;
    try {
      this.checkStarted();
      model = StateModel.from(state);
      for (const v of model.vaps.values()) this.checkPort(v.port);
      for (const l of model.locals.values()) this.checkPort(l.port);
      for (const r of model.remotes.values()) this.checkVtep(r.vtep);
      for (const f of model.floods.values()) f.vteps.forEach((ip) => this.checkVtep(ip));
    } catch (e) {
      return Promise.reject(e);
    }
    return this.enqueue({ kind: 'reconcile', state: model });
  }

  /** The state parsed back from the switch's flow table (after pending calls are done). */
  async dump(): Promise<DataPlaneState> {
    this.checkStarted();
    await this.idle();
    return stateFromFlows(await this.installedFlows(), this.tunnelPort, this.portSet);
  }

  /** The flows installed on the bridge now (after pending calls are done). */
  async flows(): Promise<InstalledFlow[]> {
    await this.idle();
    return this.installedFlows();
  }

  /** Resolves when no call is queued or being installed. */
  async idle(): Promise<void> {
    while (this.running || this.queue.length > 0) {
      await (this.running ?? new Promise<void>((r) => setImmediate(r)));
    }
  }

  async close(): Promise<void> {
    if (!this.started) return;
    await this.idle();
    this.started = false;
    this.of?.close();
    this.of = null;
    await this.db?.close();
    this.db = null;
  }

  /** The state the driver believes installed (no switch round trip). */
  current(): DataPlaneState {
    return this.model.snapshot();
  }

  private checkStarted(): void {
    if (!this.started) throw new DataPlaneError(`OVS data plane ${this.bridge} is not started`);
  }

  private checkPort(port: string): void {
    if (!this.portSet.has(port)) {
      throw new DataPlaneError(
        `port ${JSON.stringify(port)} is not an nNVE port of bridge ${this.bridge} (configured: ${this.ports.join(', ')})`,
      );
    }
  }

  private checkVtep(ip: string): void {
    if (isIPv6(ip) !== isIPv6(this.localIp)) {
      throw new DataPlaneError(
        `VTEP ${ip}: address family differs from this nNVE's underlay address ${this.localIp}`,
      );
    }
  }

  private checkOp(op: DataPlaneOp): DataPlaneOp {
    try {
      if (op.op === 'vap-set') this.checkPort(op.vap.port);
      else if (op.op === 'local-set') this.checkPort(op.local.port);
      else if (op.op === 'remote-set') this.checkVtep(op.remote.vtep);
      else if (op.op === 'flood-set') op.flood.vteps.forEach((ip) => this.checkVtep(ip));
    } catch (e) {
      throw new DataPlaneError(`${opKey(op)}: ${(e as Error).message}`);
    }
    return op;
  }

  private enqueue(job: Omit<Job, 'resolve' | 'reject'>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ...job, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.running = this.flush().finally(() => {
        this.running = null;
        if (this.queue.length > 0) this.schedule();
      });
    });
  }

  /** Installs every queued call as one transaction. */
  private async flush(): Promise<void> {
    const jobs = this.queue.splice(0);
    if (jobs.length === 0) return;
    const undo: (() => void)[] = [];
    const touched = emptyTouched();
    let full = this.needsResync;
    for (const job of jobs) {
      if (job.kind === 'reconcile') {
        const prev = this.model;
        this.model = job.state!;
        undo.push(() => (this.model = prev));
        full = true;
      } else {
        for (const op of job.ops!) {
          const u = this.model.apply(op, touched);
          if (u) undo.push(u);
        }
      }
    }
    try {
      if (full) await this.fullSync(this.model);
      else await this.incrementalSync(touched);
      for (const job of jobs) job.resolve();
      this.stats.calls += jobs.length;
    } catch (e) {
      for (const u of undo.reverse()) u();
      this.needsResync = true;
      const err =
        e instanceof DataPlaneError
          ? e
          : new DataPlaneError(`OVS bridge ${this.bridge}: ${(e as Error).message}`);
      for (const job of jobs) job.reject(err);
    }
  }

  private async incrementalSync(touched: Touched): Promise<void> {
    const next = compileTouched(this.model, touched, this.tunnelPort);
    const adds = new Map<string, string>();
    const dels = new Set<string>();
    const newGroups = new Map<string, Map<string, string>>();
    for (const [key, flows] of next) {
      const old = this.groups.get(key) ?? new Map<string, string>();
      const now = textsByCookie(flows);
      for (const [c, t] of now) if (!old.has(c)) adds.set(c, t);
      for (const c of old.keys()) if (!now.has(c)) dels.add(c);
      newGroups.set(key, now);
    }
    for (const c of dels) {
      if (adds.has(c)) {
        // The same flow moved from one group to another: it stays installed.
        adds.delete(c);
        dels.delete(c);
      }
    }
    await this.bundle([...dels], adds);
    for (const [key, now] of newGroups) {
      if (now.size > 0) this.groups.set(key, now);
      else this.groups.delete(key);
    }
  }

  /**
   * Makes the bridge's flow table exactly compile(model): reads the installed cookies, deletes
   * every cookie that is not desired (or appears on more than one flow) and adds every desired
   * flow that is missing.
   */
  private async fullSync(model: StateModel, installed?: InstalledFlow[]): Promise<void> {
    await this.refreshOfports();
    const groups = new Map<string, Map<string, string>>();
    const desired = new Map<string, string>();
    for (const [key, flows] of compileAll(model, this.tunnelPort)) {
      const texts = textsByCookie(flows);
      groups.set(key, texts);
      for (const [c, t] of texts) desired.set(c, t);
    }
    const count = new Map<string, number>();
    for (const f of installed ?? (await this.installedFlows())) {
      count.set(f.cookie, (count.get(f.cookie) ?? 0) + 1);
    }
    const dels = [...count].filter(([c, n]) => !desired.has(c) || n > 1).map(([c]) => c);
    const adds = new Map([...desired].filter(([c]) => count.get(c) !== 1));
    await this.bundle(dels, adds);
    this.groups = groups;
    this.needsResync = false;
  }

  /** Connects the persistent OpenFlow channel (unix management socket only); quietly none else. */
  private async openOpenFlow(): Promise<void> {
    if (this.of?.connected) return;
    this.of?.close();
    this.of = null;
    if (!this.ofTarget.startsWith('unix:')) return;
    const c = new OpenFlowConnection(this.ofTarget.slice(5), this.timeoutMs);
    try {
      await c.connect();
      this.of = c;
    } catch (e) {
      this.lastOfError = (e as Error).message;
      c.close();
    }
  }

  /**
   * One atomic bundle: cookie deletes first, then adds. Normally over the persistent OpenFlow
   * connection (one round trip); with ovs-ofctl when there is none, when a flow uses syntax
   * openflow.ts does not encode, or when the switch refused the bundle (nothing of it applied).
   * ovs-ofctl gets ports as OpenFlow numbers and runs with --no-names: resolving names costs it
   * a table-features and a port-description round trip (~40 ms) on every run.
   * (The cookie stays the hash of the text with names.)
   */
  private async bundle(dels: readonly string[], adds: ReadonlyMap<string, string>): Promise<void> {
    if (dels.length === 0 && adds.size === 0) return;
    if (!this.of?.connected) await this.openOpenFlow();
    if (this.of?.connected) {
      let mods: Buffer[] | undefined;
      try {
        mods = [
          ...dels.map((c) => flowDeleteCookieBody(BigInt(c))),
          ...[...adds].map(([c, t]) => flowAddBody(parseFlowText(t, this.ofports), BigInt(c))),
        ];
      } catch (e) {
        this.lastOfError = (e as Error).message; // syntax we do not encode: ovs-ofctl
      }
      if (mods) {
        try {
          await this.of.bundle(mods);
          this.stats.bundles++;
          this.stats.openflowBundles++;
          this.stats.flowMods += mods.length;
          return;
        } catch (e) {
          if (!(e instanceof OpenFlowError)) throw e;
          this.lastOfError = e.message;
          if (!this.of.connected) this.of = null;
        }
      }
    }
    const lines: string[] = [];
    for (const c of dels) lines.push(`delete cookie=${c}/-1`);
    for (const [c, t] of adds) lines.push(`add cookie=${c},${this.numbered(t)}`);
    await this.runOfctl(
      ['--no-names', '--bundle', 'add-flows', this.ofTarget, '-'],
      lines.join('\n') + '\n',
    );
    this.stats.bundles++;
    this.stats.ofctlBundles++;
    this.stats.flowMods += lines.length;
  }

  /** Why the last bundle did not go over the OpenFlow connection (diagnostics). */
  get openflowError(): string | null {
    return this.lastOfError;
  }

  /** A flow text with every port name it names replaced by its OpenFlow port number. */
  private numbered(text: string): string {
    return text.replace(
      /(in_port=|output:)([A-Za-z0-9_.-]+)/g,
      (all, what: string, name: string) => {
        const no = this.ofports.get(name);
        if (no === undefined) {
          throw new DataPlaneError(
            `OVS bridge ${this.bridge}: no OpenFlow port number for ${name}`,
          );
        }
        return `${what}${no}`;
      },
    );
  }

  private async installedFlows(): Promise<InstalledFlow[]> {
    const out = await this.runOfctl([
      '-O',
      'OpenFlow14',
      '--names',
      '--no-stats',
      'dump-flows',
      this.ofTarget,
    ]);
    return parseFlowDump(out);
  }

  private runOfctl(args: string[], input?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.ofctl, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, this.timeoutMs);
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.stdin.on('error', () => {
        /* reported through the exit status */
      });
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new DataPlaneError(`cannot run ${this.ofctl}: ${e.message}`));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        if (code === 0) return resolve(Buffer.concat(out).toString('utf8'));
        const msg = Buffer.concat(err).toString('utf8').trim().split('\n').slice(0, 5).join('; ');
        reject(
          new DataPlaneError(
            `${this.ofctl} ${args.slice(0, -1).join(' ')} on bridge ${this.bridge} ` +
              (timedOut ? `timed out after ${this.timeoutMs} ms` : `failed (exit ${code}): ${msg}`),
          ),
        );
      });
      child.stdin.end(input ?? '');
    });
  }

  /**
   * Creates or repairs the bridge over OVSDB: datapath_type=netdev, fail_mode=secure, OpenFlow
   * 1.0/1.3/1.4/1.5, exactly the nNVE ports plus the VXLAN port (ports of the same name on other
   * bridges are moved here; other ports are removed), then waits for ovs-vswitchd to apply it
   * (cur_cfg catches up with next_cfg) and checks every interface opened without error.
   */
  private async ensureBridge(): Promise<void> {
    const db = this.db!;
    const DB = 'Open_vSwitch';
    const [ovsRes, brRes, portRes, ifRes] = await db.transact(DB, [
      { op: 'select', table: 'Open_vSwitch', where: [], columns: ['_uuid'] },
      {
        op: 'select',
        table: 'Bridge',
        where: [],
        columns: ['_uuid', 'name', 'ports', 'datapath_type', 'fail_mode', 'protocols'],
      },
      { op: 'select', table: 'Port', where: [], columns: ['_uuid', 'name', 'interfaces'] },
      {
        op: 'select',
        table: 'Interface',
        where: [],
        columns: ['_uuid', 'name', 'type', 'options'],
      },
    ]);
    const rows = (r: Record<string, unknown> | undefined) =>
      (r?.rows ?? []) as Record<string, unknown>[];
    const root = rows(ovsRes)[0];
    if (!root) {
      throw new DataPlaneError(
        `OVSDB ${this.dbSocket} has no Open_vSwitch record (initialise it: ovs-vsctl --no-wait init)`,
      );
    }
    const rootUuid = uuidOf(root._uuid);
    const bridges = rows(brRes);
    const portsByUuid = new Map(rows(portRes).map((p) => [uuidOf(p._uuid), p]));
    const ifsByUuid = new Map(rows(ifRes).map((i) => [uuidOf(i._uuid), i]));
    const protocols = ['OpenFlow10', 'OpenFlow13', 'OpenFlow14', 'OpenFlow15'];
    const wantIfs: { name: string; type: string; options: Record<string, string> }[] = [
      ...this.ports.map((name) => ({ name, type: '', options: {} })),
      {
        name: this.tunnelPort,
        type: 'vxlan',
        options: { key: 'flow', remote_ip: 'flow', local_ip: this.localIp },
      },
    ];
    const ops: OvsdbOp[] = [];
    const newPortRefs: ['named-uuid', string][] = [];
    const insertPort = (name: string, type: string, options: Record<string, string>): void => {
      const i = newPortRefs.length;
      ops.push({
        op: 'insert',
        table: 'Interface',
        row: { name, type, options: ovsMap(options) },
        'uuid-name': `if${i}`,
      });
      ops.push({
        op: 'insert',
        table: 'Port',
        row: { name, interfaces: ovsSet([namedUuid(`if${i}`)]) },
        'uuid-name': `port${i}`,
      });
      newPortRefs.push(namedUuid(`port${i}`));
    };
    const ours = bridges.find((b) => b.name === this.bridge);
    const ourPorts = new Set(ours ? setItems(ours.ports).map(uuidOf) : []);
    const removeFromUs: string[] = [];
    const wanted = new Set(wantIfs.map((w) => w.name));
    for (const pu of ourPorts) {
      const name = portsByUuid.get(pu)?.name;
      if (name !== this.bridge && !wanted.has(String(name))) removeFromUs.push(pu);
    }
    for (const want of wantIfs) {
      const [pu, port] = [...portsByUuid].find(([, p]) => p.name === want.name) ?? [];
      if (pu && port && ourPorts.has(pu)) {
        const ifaces = setItems(port.interfaces).map((u) => ifsByUuid.get(uuidOf(u)));
        const iface = ifaces.find((i) => i?.name === want.name);
        if (ifaces.length !== 1 || !iface) {
          removeFromUs.push(pu);
          insertPort(want.name, want.type, want.options);
        } else if (
          iface.type !== want.type ||
          JSON.stringify(sortObj(mapEntries(iface.options))) !==
            JSON.stringify(sortObj(want.options))
        ) {
          ops.push({
            op: 'update',
            table: 'Interface',
            where: [['_uuid', '==', iface._uuid]],
            row: { type: want.type, options: ovsMap(want.options) },
          });
        }
        continue;
      }
      if (pu) {
        // A port of this name on another bridge: take it over.
        for (const b of bridges) {
          if (setItems(b.ports).some((u) => uuidOf(u) === pu)) {
            ops.push({
              op: 'mutate',
              table: 'Bridge',
              where: [['_uuid', '==', b._uuid]],
              mutations: [['ports', 'delete', ovsSet([uuid(pu)])]],
            });
          }
        }
      }
      insertPort(want.name, want.type, want.options);
    }
    if (!ours) {
      ops.push({
        op: 'insert',
        table: 'Interface',
        row: { name: this.bridge, type: 'internal' },
        'uuid-name': 'brif',
      });
      ops.push({
        op: 'insert',
        table: 'Port',
        row: { name: this.bridge, interfaces: ovsSet([namedUuid('brif')]) },
        'uuid-name': 'brport',
      });
      ops.push({
        op: 'insert',
        table: 'Bridge',
        row: {
          name: this.bridge,
          ports: ovsSet([namedUuid('brport'), ...newPortRefs]),
          datapath_type: 'netdev',
          fail_mode: 'secure',
          protocols: ovsSet(protocols),
        },
        'uuid-name': 'br',
      });
      ops.push({
        op: 'mutate',
        table: 'Open_vSwitch',
        where: [['_uuid', '==', uuid(rootUuid)]],
        mutations: [['bridges', 'insert', ovsSet([namedUuid('br')])]],
      });
    } else {
      const where = [['_uuid', '==', ours._uuid]];
      const haveProtocols = setItems(ours.protocols).map(String).sort().join(',');
      if (
        ours.datapath_type !== 'netdev' ||
        ours.fail_mode !== 'secure' ||
        haveProtocols !== protocols.join(',')
      ) {
        ops.push({
          op: 'update',
          table: 'Bridge',
          where,
          row: { datapath_type: 'netdev', fail_mode: 'secure', protocols: ovsSet(protocols) },
        });
      }
      if (removeFromUs.length > 0) {
        ops.push({
          op: 'mutate',
          table: 'Bridge',
          where,
          mutations: [['ports', 'delete', ovsSet(removeFromUs.map(uuid))]],
        });
      }
      if (newPortRefs.length > 0) {
        ops.push({
          op: 'mutate',
          table: 'Bridge',
          where,
          mutations: [['ports', 'insert', ovsSet(newPortRefs)]],
        });
      }
    }
    // Ask ovs-vswitchd to confirm it has applied the database (as ovs-vsctl does).
    ops.push({
      op: 'mutate',
      table: 'Open_vSwitch',
      where: [['_uuid', '==', uuid(rootUuid)]],
      mutations: [['next_cfg', '+=', 1]],
    });
    ops.push({ op: 'select', table: 'Open_vSwitch', where: [], columns: ['next_cfg'] });
    const res = await db.transact(DB, ops);
    const nextCfg = Number(rows(res[ops.length - 1])[0]?.next_cfg);
    await this.waitCurCfg(nextCfg);
    await this.checkInterfaces(wantIfs.map((w) => w.name));
  }

  private async waitCurCfg(nextCfg: number): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const [r] = await this.db!.transact('Open_vSwitch', [
        { op: 'select', table: 'Open_vSwitch', where: [], columns: ['cur_cfg'] },
      ]);
      const cur = Number(((r?.rows ?? []) as Record<string, unknown>[])[0]?.cur_cfg);
      if (cur >= nextCfg) return;
      if (Date.now() > deadline) {
        throw new DataPlaneError(
          `ovs-vswitchd did not apply the configuration of bridge ${this.bridge} within ${this.timeoutMs} ms (is ovs-vswitchd running on ${this.dbSocket}?)`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Re-reads the OpenFlow port numbers (they may change when a port is re-created). */
  private async refreshOfports(): Promise<void> {
    const [r] = await this.db!.transact('Open_vSwitch', [
      { op: 'select', table: 'Interface', where: [], columns: ['name', 'ofport'] },
    ]);
    const mine = new Set([...this.ports, this.tunnelPort]);
    for (const i of (r?.rows ?? []) as Record<string, unknown>[]) {
      const name = String(i.name);
      const no = setItems(i.ofport).filter((p) => typeof p === 'number')[0];
      if (mine.has(name) && typeof no === 'number' && no > 0) this.ofports.set(name, no);
    }
  }

  private async checkInterfaces(names: string[]): Promise<void> {
    const [r] = await this.db!.transact('Open_vSwitch', [
      {
        op: 'select',
        table: 'Interface',
        where: [],
        columns: ['name', 'ofport', 'error'],
      },
    ]);
    const byName = new Map(((r?.rows ?? []) as Record<string, unknown>[]).map((i) => [i.name, i]));
    const problems: string[] = [];
    for (const name of names) {
      const i = byName.get(name);
      const error = i ? setItems(i.error).filter((e) => typeof e === 'string')[0] : 'missing';
      const ofport = i ? setItems(i.ofport).filter((p) => typeof p === 'number')[0] : undefined;
      if (error || ofport === undefined || ofport === -1) {
        problems.push(`${name}: ${String(error ?? 'no OpenFlow port number')}`);
      } else this.ofports.set(name, ofport);
    }
    if (problems.length > 0) {
      throw new DataPlaneError(
        `OVS bridge ${this.bridge}: interfaces not usable: ${problems.join('; ')}`,
      );
    }
  }
}

function textsByCookie(flows: readonly Flow[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of flows) {
    const t = flowText(f);
    m.set(flowCookie(t), t);
  }
  return m;
}

function sortObj(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
