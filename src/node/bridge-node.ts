/**
 * The VDP bridge side of an nNVE, sans-IO: every port with its EVB agent, and per (port,
 * station MAC) an ECP endpoint and a VDP bridge machine (Req-1/2: stations behind a bridged
 * network share a port and are told apart by their MAC). Frames enter with `handleFrame`,
 * time passes with `handleTimeout`; everything that must happen comes back as outputs:
 * frames to transmit and events to log, count and act on — in that order of importance: a
 * driver commits the events' state before it transmits the frames of the same step.
 */
import { TimerQueue } from '../core/timer-queue.js';
import type { Random } from '../core/random.js';
import { EcpEndpoint, type EcpOutput } from '../ecp/endpoint.js';
import {
  EvbAgent,
  evbConfig,
  type EvbConfig,
  type EvbNegotiated,
  type EvbOutput,
} from '../evb/agent.js';
import { normalizeMac } from '../wire/bytes.js';
import {
  encodeEcp,
  ECP_OP_ACK,
  ECP_OP_REQUEST,
  ECP_SUBTYPE_VDP,
  ECP_VERSION,
  type EcpHeader,
} from '../wire/ecp.js';
import {
  encodeEthernet,
  ETHERTYPE_ECP,
  NEAREST_BRIDGE,
  NEAREST_CUSTOMER_BRIDGE,
} from '../wire/ethernet.js';
import { decodeLldp } from '../wire/lldp.js';
import { DEFAULT_WIRE_OPTIONS, type WireOptions } from '../wire/options.js';
import {
  VdpBridgePeer,
  type BridgeContext,
  type BridgeEvent,
  type BridgePolicy,
  type BridgeVsi,
  type QueueRef,
  type StationQuota,
} from '../vdp/bridge.js';
import { parseVdpPdu, type OutgoingTlv, type PackOptions, type ParsedVdpPdu } from '../vdp/pdu.js';
import type { AuthFailure, AuthHooks } from '../vdp/auth.js';
import {
  gate,
  intake,
  profileAnnouncement,
  sessionDeadline,
  signing,
  type AuthVerdict,
} from './common.js';
import { ackTimeoutUs, type Profile, type VdpTiming } from '../vdp/types.js';

export interface BridgePortConfig {
  readonly name: string;
  readonly mac: string;
  /** EVB settings of this port (role is bridge). */
  readonly evb?: Partial<Omit<EvbConfig, 'role' | 'mac'>>;
  /** Extra group addresses accepted and used (Req-1: a group address that bridges forward). */
  readonly groupAddresses?: readonly string[];
  /** Minimum gap between two ECP transmissions to one station (µs; lldpad needs >= 5000). */
  readonly ecpMinGapUs?: number;
  readonly maxTlvsPerPdu?: number;
  /** Most stations on this port, known or not (memory bound; default 4096). */
  readonly maxStations?: number;
  /**
   * Most stations on probation: heard, but neither authenticated nor holding a VSI. When full,
   * the one heard least recently is forgotten, so a flood of made-up station MACs cannot push
   * out established stations nor grow memory (default 1024).
   */
  readonly maxUnknownStations?: number;
  /** Most LLDP/EVB peers tracked on this port; LLDPDUs of more are dropped (default 4096). */
  readonly maxEvbPeers?: number;
  /** Per-station limits on VSIs and request rate (reason 2 beyond them). */
  readonly quota?: StationQuota;
}

export interface BridgeNodeConfig {
  readonly ports: readonly BridgePortConfig[];
  readonly profile: Profile;
  readonly policy: BridgePolicy;
  readonly random: Random;
  readonly wire?: WireOptions;
  /**
   * Peers with which no EVB TLV was exchanged (L3 transport, or a station that sends no LLDP):
   * what to assume. Default: our own values, GroupID allowed, plain profile.
   */
  readonly assumeWithoutEvb?: { readonly groupId: boolean; readonly profile: Profile };
  /** PDU authentication (splitnve profile; `require` applies whatever the peer announces). */
  readonly auth?: AuthHooks;
}

export type BridgeNodeEvent =
  | BridgeEvent
  | {
      readonly type: 'peer-up';
      readonly port: string;
      readonly peer: string;
      readonly chassisId: string;
      readonly portId: string;
    }
  | {
      readonly type: 'peer-down';
      readonly port: string;
      readonly peer: string;
      readonly reason: string;
    }
  | {
      readonly type: 'negotiated';
      readonly port: string;
      readonly peer: string;
      readonly negotiated: EvbNegotiated;
      readonly profile: Profile;
    }
  | { readonly type: 'station-new'; readonly port: string; readonly station: string }
  /** A PDU failed authentication and was dropped (it was still ECP-ACKed). */
  | {
      readonly type: 'auth-failed';
      readonly port: string;
      readonly station: string;
      readonly reason: AuthFailure;
      readonly keyId?: number;
      readonly sequence?: string;
    }
  /** The authentication status of a station changed (first signed PDU, or after failures). */
  | {
      readonly type: 'auth';
      readonly port: string;
      readonly station: string;
      readonly status: 'authenticated' | 'unsigned';
    }
  | {
      readonly type: 'ecp-failed';
      readonly port: string;
      readonly station: string;
      readonly sequence: number;
    }
  | {
      readonly type: 'frame-dropped';
      readonly port: string;
      readonly source?: string;
      readonly why: string;
      readonly field?: string;
      readonly offset?: number;
    };

/** Persisted per station so that a restarted nNVE treats it as before until LLDP is heard. */
export interface RememberedStation {
  readonly port: string;
  readonly station: string;
  readonly timing: VdpTiming;
  readonly profile: Profile;
  readonly groupId: boolean | undefined;
}

export type BridgeNodeOutput =
  | { readonly type: 'transmit'; readonly port: string; readonly frame: Uint8Array }
  | { readonly type: 'event'; readonly event: BridgeNodeEvent };

interface Session {
  readonly key: string;
  readonly port: PortState;
  readonly station: string;
  readonly ecp: EcpEndpoint<readonly OutgoingTlv<QueueRef>[]>;
  readonly vdp: VdpBridgePeer;
  /** Destination of our ECP frames to this station. */
  replyTo: string;
  lastHeard: number;
  authStatus: 'authenticated' | 'unsigned' | 'failed' | undefined;
  /** Authenticated, or has held a VSI: not on probation any more. */
  established: boolean;
}

interface PortState {
  readonly cfg: BridgePortConfig;
  readonly evb: EvbAgent;
  readonly accept: Set<string>;
  readonly sessions: Map<string, Session>;
  /** Sessions on probation, least recently heard first (Map order: touched ones move last). */
  readonly probation: Map<string, Session>;
  /** LLDP sources the EVB agent tracks (from its peer-up/peer-down outputs). */
  readonly evbPeers: Set<string>;
  /**
   * Set when a full port had no station to evict (all hold VSIs); cleared when a VSI goes to
   * Init. Saves scanning every station again for each frame of a new station while full.
   */
  noVictim: boolean;
}

export interface BridgeNodeStats {
  framesIn: number;
  framesOut: number;
  framesDropped: number;
  /** Established stations without VSIs forgotten to make room (port at maxStations). */
  stationsEvicted: number;
  /** Stations on probation forgotten to make room for newer ones (maxUnknownStations). */
  unknownEvicted: number;
  /** New stations refused: the port held maxStations stations, all with VSIs. */
  stationsRefused: number;
  /** PDUs of stations without state that failed authentication under `require` (ACKed, dropped). */
  statelessRejected: number;
  /** LLDPDUs dropped: EVB peer table full, or a keyless station under `require`. */
  lldpDropped: number;
  /** PDUs dropped for failing authentication, by reason. */
  authFailed: Record<AuthFailure, number>;
}

export class BridgeNode {
  readonly stats: BridgeNodeStats = {
    framesIn: 0,
    framesOut: 0,
    framesDropped: 0,
    stationsEvicted: 0,
    unknownEvicted: 0,
    stationsRefused: 0,
    statelessRejected: 0,
    lldpDropped: 0,
    authFailed: { unsigned: 0, 'unknown-key': 0, 'bad-hmac': 0, replay: 0 },
  };
  private readonly ports = new Map<string, PortState>();
  private readonly timers = new TimerQueue();
  private readonly wire: WireOptions;
  private readonly ctx: BridgeContext;
  /** What was persisted of stations before a restart, used until EVB is heard again. */
  private readonly remembered = new Map<string, RememberedStation>();
  /** VSI key -> session key where it is Associated (Activated): never on two at once. */
  private readonly active = new Map<string, string>();
  /** Sessions whose ECP sent in the current step (see `transmitted`). */
  private readonly sentInStep = new Set<Session>();
  private started = false;

  constructor(private readonly cfg: BridgeNodeConfig) {
    this.wire = cfg.wire ?? DEFAULT_WIRE_OPTIONS;
    this.ctx = {
      policy: cfg.policy,
      activating: (peer, key, now, out) => this.takeOver(peer, key, now, out),
    };
    for (const p of cfg.ports) this.addPort(p);
  }

  private addPort(p: BridgePortConfig): void {
    const mac = normalizeMac(p.mac, `port ${p.name} mac`);
    const evb = new EvbAgent(
      evbConfig({
        role: 'bridge',
        mac,
        ...profileAnnouncement(this.cfg.profile, this.cfg.auth !== undefined),
        wire: this.wire,
        ...p.evb,
      }),
    );
    const accept = new Set<string>([mac, NEAREST_CUSTOMER_BRIDGE, NEAREST_BRIDGE]);
    for (const g of p.groupAddresses ?? []) accept.add(normalizeMac(g));
    this.ports.set(p.name, {
      cfg: { ...p, mac },
      evb,
      accept,
      sessions: new Map(),
      probation: new Map(),
      evbPeers: new Set(),
      noVictim: false,
    });
  }

  portNames(): string[] {
    return [...this.ports.keys()];
  }

  start(now: number): BridgeNodeOutput[] {
    const out: BridgeNodeOutput[] = [];
    this.started = true;
    for (const p of this.ports.values()) {
      const eo: EvbOutput[] = [];
      p.evb.start(now, eo);
      this.evbOutputs(p, eo, now, out);
    }
    return out;
  }

  /** Sends TTL 0 on every port. */
  stop(now: number): BridgeNodeOutput[] {
    const out: BridgeNodeOutput[] = [];
    for (const p of this.ports.values()) {
      const eo: EvbOutput[] = [];
      p.evb.stop(now, eo);
      this.evbOutputs(p, eo, now, out);
    }
    this.started = false;
    return out;
  }

  deadline(): number | undefined {
    return this.timers.next();
  }

  // ------------------------------------------------------------------------------------------
  // Input

  handleFrame(portName: string, frame: Uint8Array, now: number): BridgeNodeOutput[] {
    const out: BridgeNodeOutput[] = [];
    const port = this.ports.get(portName);
    this.stats.framesIn++;
    if (!port) return out;
    const i = intake(frame, port.cfg.mac, port.accept);
    if (i.kind === 'own') return out;
    if (i.kind === 'drop') return this.drop(out, portName, i.source, i.why, i.field, i.offset);
    if (i.kind === 'lldp') {
      if (!port.evbPeers.has(i.source)) {
        const why = this.lldpRefusal(port, i.source);
        if (why) {
          this.stats.lldpDropped++;
          return this.drop(out, portName, i.source, why);
        }
      }
      const l = decodeLldp(i.payload, i.offset, this.wire);
      if (!l.ok)
        return this.drop(out, portName, i.source, l.error.message, l.error.field, l.error.offset);
      const eo: EvbOutput[] = [];
      port.evb.receive(i.source, l.value, now, eo);
      this.evbOutputs(port, eo, now, out);
      return out;
    }
    let s = port.sessions.get(i.source);
    if (!s) {
      // Under `require` a station gets state only once one of its PDUs passes authentication.
      if (this.statelessReject(port, i.source, i.destination, i.header, i.ulpdu, i.base, out))
        return out;
      s = this.session(port, i.source, i.destination, now);
      if (!s) {
        this.stats.stationsRefused++;
        return this.drop(out, portName, i.source, 'too many stations on this port');
      }
    }
    this.touch(s, now);
    const eco: EcpOutput<readonly OutgoingTlv<QueueRef>[]>[] = [];
    s.ecp.receiveDecoded(i.header, i.ulpdu, now, eco);
    // The PDU's answers go out before its ECP ACK: the station waits for the answers, and a
    // frame that wakes a process on this host (a co-located station, a capture) can preempt the
    // sender between two frames of one send.
    const acks: BridgeNodeOutput[] = [];
    this.ecpOutputs(s, eco, now, out, i.base, i.destination, acks);
    this.pump(s, now, out);
    for (const a of acks) out.push(a);
    return out;
  }

  handleTimeout(now: number): BridgeNodeOutput[] {
    const out: BridgeNodeOutput[] = [];
    for (const key of this.timers.popDue(now)) {
      if (key.startsWith('evb|')) {
        const port = this.ports.get(key.slice(4));
        if (!port) continue;
        const eo: EvbOutput[] = [];
        port.evb.timeout(now, eo);
        this.evbOutputs(port, eo, now, out);
      } else {
        const s = this.sessionByKey(key);
        if (!s) continue;
        const eco: EcpOutput<readonly OutgoingTlv<QueueRef>[]>[] = [];
        s.ecp.timeout(now, eco);
        this.ecpOutputs(s, eco, now, out, 0);
        const ev: BridgeEvent[] = [];
        s.vdp.timeout(now, ev);
        this.vdpEvents(ev, out);
        this.pump(s, now, out);
      }
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // Admin (Req-6/9)

  /** De-associates one VSI, all VSIs of a VN (GroupID) on a station, or a whole station. */
  deassociate(
    sel: { port: string; station: string; key?: string; vni?: number },
    now: number,
  ): { outputs: BridgeNodeOutput[]; count: number } {
    const out: BridgeNodeOutput[] = [];
    const s = this.ports.get(sel.port)?.sessions.get(normalizeMac(sel.station));
    let count = 0;
    if (s) {
      const ev: BridgeEvent[] = [];
      for (const v of s.vdp.list()) {
        if (sel.key !== undefined && v.key !== sel.key) continue;
        if (sel.vni !== undefined && !v.entries.some((e) => e.groupId === sel.vni)) continue;
        if (s.vdp.deassociate(v.key, 'admin', now, ev)) count++;
      }
      this.vdpEvents(ev, out);
      this.pump(s, now, out);
    }
    return { outputs: out, count };
  }

  /** Deactivates one VSI (splitnve: unsolicited Pre-Associate-RR; plain profile: de-associates). */
  deactivate(
    sel: { port: string; station: string; key: string },
    now: number,
  ): { outputs: BridgeNodeOutput[]; result: string } {
    const out: BridgeNodeOutput[] = [];
    const s = this.ports.get(sel.port)?.sessions.get(normalizeMac(sel.station));
    if (!s) return { outputs: out, result: 'none' };
    const ev: BridgeEvent[] = [];
    const result = s.vdp.deactivate(sel.key, 'admin', now, ev);
    this.vdpEvents(ev, out);
    this.pump(s, now, out);
    return { outputs: out, result };
  }

  /** Reloads VSIs after a restart; each waits a full keep-alive period for its station. */
  restore(
    items: readonly { port: string; station: string; vsi: BridgeVsi }[],
    now: number,
    stations: readonly RememberedStation[] = [],
  ): BridgeNodeOutput[] {
    const out: BridgeNodeOutput[] = [];
    for (const r of stations) this.remembered.set(`${r.port}|${normalizeMac(r.station)}`, r);
    const byPeer = new Map<string, { port: string; station: string; vsis: BridgeVsi[] }>();
    for (const it of items) {
      const k = `${it.port}|${it.station}`;
      const g = byPeer.get(k) ?? { port: it.port, station: it.station, vsis: [] };
      g.vsis.push(it.vsi);
      byPeer.set(k, g);
    }
    for (const g of byPeer.values()) {
      const port = this.ports.get(g.port);
      if (!port) continue;
      const s = this.session(port, normalizeMac(g.station), port.cfg.mac, now);
      if (!s) continue;
      s.vdp.restore(g.vsis, now);
      this.establish(s, out);
      for (const v of g.vsis) if (v.state === 'associated') this.active.set(v.key, s.key);
      this.schedule(s, now);
    }
    return out;
  }

  /**
   * New EVB settings for a port (configuration reload): renegotiates with every peer, updates
   * their sessions, and sends the changed TLV at once (fast transmissions).
   */
  reconfigureEvb(port: string, cfg: EvbConfig, now: number): BridgeNodeOutput[] {
    const out: BridgeNodeOutput[] = [];
    const p = this.ports.get(port);
    if (!p) return out;
    const eo: EvbOutput[] = [];
    p.evb.reconfigure(cfg, now, eo);
    this.evbOutputs(p, eo, now, out);
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // Views

  stations(): {
    port: string;
    station: string;
    vsis: number;
    lastHeard: number;
    timing: VdpTiming;
    profile: Profile;
    groupId: boolean | undefined;
    auth: 'authenticated' | 'unsigned' | 'failed' | undefined;
    established: boolean;
    ecp: EcpEndpoint<unknown>['stats'];
    vdp: VdpBridgePeer['stats'];
  }[] {
    const out = [];
    for (const p of this.ports.values()) {
      for (const s of p.sessions.values()) {
        const caps = s.vdp.getCaps();
        out.push({
          port: p.cfg.name,
          station: s.station,
          vsis: s.vdp.size,
          lastHeard: s.lastHeard,
          timing: s.vdp.getTiming(),
          profile: caps.profile,
          groupId: caps.groupId,
          auth: s.authStatus,
          established: s.established,
          ecp: s.ecp.stats,
          vdp: s.vdp.stats,
        });
      }
    }
    return out;
  }

  vsis(): { port: string; station: string; vsi: BridgeVsi; expiresAt: number | undefined }[] {
    const out = [];
    for (const p of this.ports.values()) {
      for (const s of p.sessions.values()) {
        for (const v of s.vdp.list()) {
          out.push({
            port: p.cfg.name,
            station: s.station,
            vsi: v,
            expiresAt: s.vdp.expiresAt(v.key),
          });
        }
      }
    }
    return out;
  }

  /**
   * What to persist about stations so that a restarted nNVE keeps treating them as before
   * until it hears their LLDP again: negotiated EVB values and profile of every known station.
   */
  rememberable(): RememberedStation[] {
    const out = new Map<string, RememberedStation>(this.remembered);
    for (const p of this.ports.values()) {
      for (const peer of p.evb.peerList()) {
        if (!peer.negotiated) continue;
        const caps = this.capsFor(p, peer.mac);
        out.set(`${p.cfg.name}|${peer.mac}`, {
          port: p.cfg.name,
          station: peer.mac,
          timing: peer.negotiated,
          profile: caps.profile,
          groupId: caps.groupId,
        });
      }
    }
    return [...out.values()];
  }

  peers(): { port: string; peers: ReturnType<EvbAgent['peerList']> }[] {
    return [...this.ports.values()].map((p) => ({ port: p.cfg.name, peers: p.evb.peerList() }));
  }

  evbAgent(port: string): EvbAgent | undefined {
    return this.ports.get(port)?.evb;
  }

  // ------------------------------------------------------------------------------------------
  // Internals

  private drop(
    out: BridgeNodeOutput[],
    port: string,
    source: string | undefined,
    why: string,
    field?: string,
    offset?: number,
  ): BridgeNodeOutput[] {
    this.stats.framesDropped++;
    out.push({
      type: 'event',
      event: {
        type: 'frame-dropped',
        port,
        ...(source ? { source } : {}),
        why,
        ...(field !== undefined ? { field } : {}),
        ...(offset !== undefined ? { offset } : {}),
      },
    });
    return out;
  }

  private sessionByKey(key: string): Session | undefined {
    const i = key.indexOf('|');
    return this.ports.get(key.slice(0, i))?.sessions.get(key.slice(i + 1));
  }

  private timingFor(port: PortState, station: string): VdpTiming {
    const n = port.evb.negotiated(station);
    return (
      n ?? this.remembered.get(`${port.cfg.name}|${station}`)?.timing ?? port.evb.config.values
    );
  }

  private capsFor(port: PortState, station: string): { groupId?: boolean; profile: Profile } {
    const n = port.evb.negotiated(station);
    const r = this.remembered.get(`${port.cfg.name}|${station}`);
    if (!n && r)
      return { ...(r.groupId !== undefined ? { groupId: r.groupId } : {}), profile: r.profile };
    if (!n) {
      const a = this.cfg.assumeWithoutEvb ?? { groupId: true, profile: '802.1Qbg' as Profile };
      return {
        groupId: a.groupId && port.evb.config.groupId,
        profile: this.cfg.profile === 'splitnve' ? a.profile : '802.1Qbg',
      };
    }
    const profile: Profile =
      this.cfg.profile === 'splitnve' && n.peerProfile !== undefined ? 'splitnve' : '802.1Qbg';
    return { groupId: n.groupId, profile };
  }

  private session(
    port: PortState,
    station: string,
    destination: string,
    now: number,
  ): Session | undefined {
    let s = port.sessions.get(station);
    if (s) return s;
    // A new station starts on probation; the oldest one on probation makes room for it.
    if (port.probation.size >= (port.cfg.maxUnknownStations ?? 1024)) {
      const oldest = port.probation.values().next().value as Session;
      this.forget(oldest);
      this.stats.unknownEvicted++;
    }
    const max = port.cfg.maxStations ?? 4096;
    if (port.sessions.size >= max) {
      const first = port.probation.values().next().value as Session | undefined;
      if (first) {
        this.forget(first);
        this.stats.unknownEvicted++;
      } else {
        // All established: evict the one heard from least recently that holds no VSI.
        if (port.noVictim) return undefined;
        let victim: Session | undefined;
        for (const c of port.sessions.values()) {
          if (c.vdp.size === 0 && (!victim || c.lastHeard < victim.lastHeard)) victim = c;
        }
        if (!victim) {
          port.noVictim = true;
          return undefined;
        }
        this.forget(victim);
        this.stats.stationsEvicted++;
      }
    }
    const timing = this.timingFor(port, station);
    const ecp = new EcpEndpoint<readonly OutgoingTlv<QueueRef>[]>(
      {
        maxRetries: timing.r,
        ackTimeoutUs: ackTimeoutUs(timing),
        minGapUs: port.cfg.ecpMinGapUs ?? 0,
      },
      1 + Math.floor(this.cfg.random() * 0xffff),
      ECP_SUBTYPE_VDP,
    );
    const vdp = new VdpBridgePeer(
      port.cfg.name,
      station,
      {
        profile: this.cfg.profile,
        wire: this.wire,
        ...(port.cfg.maxTlvsPerPdu ? { maxTlvsPerPdu: port.cfg.maxTlvsPerPdu } : {}),
        ...(port.cfg.quota ? { quota: port.cfg.quota } : {}),
      },
      this.ctx,
      timing,
      this.capsFor(port, station),
    );
    // Reply where the station sends: to the group it used on a direct link, else to its MAC.
    const replyTo = destination === port.cfg.mac ? station : destination;
    s = {
      key: `${port.cfg.name}|${station}`,
      port,
      station,
      ecp,
      vdp,
      replyTo,
      lastHeard: now,
      authStatus: undefined,
      established: false,
    };
    port.sessions.set(station, s);
    port.probation.set(station, s);
    return s;
  }

  /** A station was heard: it moves to the back of the probation line. */
  private touch(s: Session, now: number): void {
    s.lastHeard = now;
    if (!s.established) {
      s.port.probation.delete(s.station);
      s.port.probation.set(s.station, s);
    }
  }

  /** Leaves probation for good: authenticated, or holding a VSI. */
  private establish(s: Session, out: BridgeNodeOutput[]): void {
    if (s.established) return;
    s.established = true;
    s.port.probation.delete(s.station);
    out.push({
      type: 'event',
      event: { type: 'station-new', port: s.port.cfg.name, station: s.station },
    });
  }

  /** Drops all state of a station that holds no VSI. */
  private forget(s: Session): void {
    s.port.sessions.delete(s.station);
    s.port.probation.delete(s.station);
    this.timers.cancel(s.key);
  }

  /** Why an LLDPDU from a new source is not taken, if it is not. */
  private lldpRefusal(port: PortState, source: string): string | undefined {
    const a = this.cfg.auth;
    if (a?.knows && a.mode(port.cfg.name, source) === 'require' && !a.knows(port.cfg.name, source))
      return 'LLDP from a station without a key (authentication required)';
    if (port.evbPeers.size >= (port.cfg.maxEvbPeers ?? 4096))
      return 'too many EVB peers on this port';
    return undefined;
  }

  /**
   * An ECP frame from a station we hold no state for, under `require`: unless its PDU passes
   * authentication, it is counted and dropped without creating any state. It is ACKed (ECP
   * still acknowledges what it drops) if the station has a key; a station without any key is
   * not (made-up source MACs must not turn the nNVE into a reflector: an ACK to the group
   * address would reach every station on the segment). Returns true when handled that way.
   */
  private statelessReject(
    port: PortState,
    station: string,
    destination: string,
    eh: EcpHeader,
    ulpdu: Uint8Array,
    base: number,
    out: BridgeNodeOutput[],
  ): boolean {
    const a = this.cfg.auth;
    const name = port.cfg.name;
    if (!a || a.mode(name, station) !== 'require') return false;
    if (eh.op !== ECP_OP_REQUEST) {
      this.drop(out, name, station, 'ECP ACK from a station without a session');
      return true;
    }
    const p = parseVdpPdu(ulpdu, this.wire, base);
    // Checked without recording the sequence: the PDU is processed (and recorded) next.
    const r = p.ok
      ? gate(a, name, station, 'splitnve', destination, ulpdu, p.value.auth, false)
      : undefined;
    if (r?.pass) return false;
    if (a.knows?.(name, station) ?? true) {
      const replyTo = destination === port.cfg.mac ? station : destination;
      this.stats.framesOut++;
      out.push({
        type: 'transmit',
        port: name,
        frame: encodeEthernet(
          { destination: replyTo, source: port.cfg.mac, ethertype: ETHERTYPE_ECP },
          encodeEcp({
            version: ECP_VERSION,
            op: ECP_OP_ACK,
            subtype: eh.subtype,
            sequence: eh.sequence,
          }),
        ),
      });
    }
    this.stats.statelessRejected++;
    if (!p.ok) {
      this.drop(out, name, station, p.error.message, p.error.field, p.error.offset);
      return true;
    }
    if (r && !r.pass) this.authFailed(name, station, r, out);
    return true;
  }

  private evbOutputs(port: PortState, eo: EvbOutput[], now: number, out: BridgeNodeOutput[]): void {
    for (const o of eo) {
      switch (o.type) {
        case 'transmit':
          this.stats.framesOut++;
          out.push({ type: 'transmit', port: port.cfg.name, frame: o.frame });
          break;
        case 'peer-up':
          port.evbPeers.add(o.peer);
          out.push({
            type: 'event',
            event: {
              type: 'peer-up',
              port: port.cfg.name,
              peer: o.peer,
              chassisId: o.chassisId,
              portId: o.portId,
            },
          });
          break;
        case 'peer-down':
          port.evbPeers.delete(o.peer);
          out.push({
            type: 'event',
            event: { type: 'peer-down', port: port.cfg.name, peer: o.peer, reason: o.reason },
          });
          break;
        case 'negotiated': {
          this.remembered.delete(`${port.cfg.name}|${o.peer}`);
          const caps = this.capsFor(port, o.peer);
          out.push({
            type: 'event',
            event: {
              type: 'negotiated',
              port: port.cfg.name,
              peer: o.peer,
              negotiated: o.negotiated,
              profile: caps.profile,
            },
          });
          const s = port.sessions.get(o.peer);
          if (s) {
            s.vdp.setTiming(o.negotiated);
            s.vdp.setCaps(caps);
            s.ecp.setParams({
              ...s.ecp.getParams(),
              maxRetries: o.negotiated.r,
              ackTimeoutUs: ackTimeoutUs(o.negotiated),
            });
          }
          break;
        }
        case 'ignored':
          break;
      }
    }
    this.timers.set(`evb|${port.cfg.name}`, port.evb.deadline());
    void now;
  }

  private ecpOutputs(
    s: Session,
    eco: EcpOutput<readonly OutgoingTlv<QueueRef>[]>[],
    now: number,
    out: BridgeNodeOutput[],
    base: number,
    destination = s.port.cfg.mac,
    /** Where ECP ACKs go (default: `out`, in order). */
    acks: BridgeNodeOutput[] = out,
  ): void {
    for (const o of eco) {
      switch (o.type) {
        case 'transmit':
          this.stats.framesOut++;
          this.sentInStep.add(s);
          (o.ack ? acks : out).push({
            type: 'transmit',
            port: s.port.cfg.name,
            frame: encodeEthernet(
              { destination: s.replyTo, source: s.port.cfg.mac, ethertype: ETHERTYPE_ECP },
              o.pdu,
            ),
          });
          break;
        case 'deliver': {
          const p = parseVdpPdu(o.ulpdu, this.wire, base);
          if (!p.ok) {
            this.drop(
              out,
              s.port.cfg.name,
              s.station,
              p.error.message,
              p.error.field,
              p.error.offset,
            );
            break;
          }
          if (!this.authenticate(s, destination, o.ulpdu, p.value.auth, out)) break;
          const ev: BridgeEvent[] = [];
          s.vdp.receive(p.value, now, ev);
          if (s.vdp.size > 0) this.establish(s, out);
          this.vdpEvents(ev, out);
          break;
        }
        case 'acked':
          break;
        case 'failed':
          s.vdp.ecpFailed(o.token);
          out.push({
            type: 'event',
            event: {
              type: 'ecp-failed',
              port: s.port.cfg.name,
              station: s.station,
              sequence: o.sequence,
            },
          });
          break;
      }
    }
  }

  private vdpEvents(ev: BridgeEvent[], out: BridgeNodeOutput[]): void {
    for (const e of ev) {
      if (e.type === 'tsi') {
        if (e.to === 'init') {
          const p = this.ports.get(e.port);
          if (p) p.noVictim = false;
        }
        // The session's own key string: no new string kept per Activated VSI.
        const sk = this.ports.get(e.port)?.sessions.get(e.station)?.key ?? `${e.port}|${e.station}`;
        if (e.to === 'associated') this.active.set(e.key, sk);
        else if (e.from === 'associated' && this.active.get(e.key) === sk)
          this.active.delete(e.key);
      }
      out.push({ type: 'event', event: e });
    }
  }

  /** `key` becomes Activated on `peer`: deactivate it wherever else it is Activated. */
  private takeOver(peer: VdpBridgePeer, key: string, now: number, out: BridgeEvent[]): void {
    const sk = `${peer.port}|${peer.station}`;
    const other = this.active.get(key);
    if (!other || other === sk) return;
    const s = this.sessionByKey(other);
    this.active.delete(key);
    if (!s) return;
    const ev: BridgeEvent[] = [];
    s.vdp.deactivate(key, 'takeover', now, ev);
    out.push(...ev);
    // The other session's queue grew: it is pumped when its timer runs.
    this.timers.set(s.key, now);
  }

  /** Whether PDUs to/from this station are signed: `require` always, `prefer` with splitnve peers. */
  private signing(s: Session): PackOptions {
    const name = s.port.cfg.name;
    const profile = s.vdp.getCaps().profile;
    return signing(this.cfg.auth, name, s.station, profile, s.port.cfg.mac, s.replyTo, this.wire);
  }

  /** Checks a received PDU's authentication; false (and an event) when it must be dropped. */
  private authenticate(
    s: Session,
    destination: string,
    payload: Uint8Array,
    auth: ParsedVdpPdu['auth'],
    out: BridgeNodeOutput[],
  ): boolean {
    const port = s.port.cfg.name;
    const v = gate(
      this.cfg.auth,
      port,
      s.station,
      s.vdp.getCaps().profile,
      destination,
      payload,
      auth,
    );
    if (!v.pass) {
      s.authStatus = 'failed';
      this.authFailed(port, s.station, v, out);
      return false;
    }
    if (v.status === undefined) return true;
    if (v.status === 'authenticated') this.establish(s, out);
    if (s.authStatus !== v.status) {
      s.authStatus = v.status;
      out.push({
        type: 'event',
        event: { type: 'auth', port, station: s.station, status: v.status },
      });
    }
    return true;
  }

  private authFailed(
    port: string,
    station: string,
    v: Extract<AuthVerdict, { pass: false }>,
    out: BridgeNodeOutput[],
  ): void {
    this.stats.authFailed[v.reason]++;
    const { pass: _pass, ...failure } = v;
    out.push({ type: 'event', event: { type: 'auth-failed', port, station, ...failure } });
  }

  /**
   * The driver sent the frames of the step stamped `stepNow` at `sentAt` (after committing its
   * events): ECP gaps and ACK timers of the sessions that sent run from `sentAt`.
   */
  transmitted(stepNow: number, sentAt: number): void {
    for (const s of this.sentInStep) {
      s.ecp.transmittedAt(stepNow, sentAt);
      this.schedule(s, sentAt);
    }
    this.sentInStep.clear();
  }

  /** Sends what the VDP machine has queued while ECP allows, then re-arms the session timer. */
  private pump(s: Session, now: number, out: BridgeNodeOutput[]): void {
    while (s.vdp.hasQueued() && s.ecp.canSend(now)) {
      const pdu = s.vdp.pull(now, this.signing(s));
      if (!pdu) break;
      const eco: EcpOutput<readonly OutgoingTlv<QueueRef>[]>[] = [];
      s.ecp.send(pdu.payload, pdu.items, now, eco);
      this.ecpOutputs(s, eco, now, out, 0);
    }
    this.schedule(s, now);
  }

  private schedule(s: Session, _now: number): void {
    this.timers.set(s.key, sessionDeadline(s.ecp, s.vdp));
  }

  get isStarted(): boolean {
    return this.started;
  }
}
