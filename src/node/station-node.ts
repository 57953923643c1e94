/**
 * The VDP station side of a tNVE, sans-IO: one or more uplinks, each with its EVB agent, an
 * ECP endpoint towards its nNVE and a VDP station machine. Requests come from the
 * orchestrator-facing agent (`request`); frames enter with `handleFrame`; time passes with
 * `handleTimeout`. Outputs are frames to transmit and events.
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
import { isGroupMac, normalizeMac } from '../wire/bytes.js';
import { ECP_OP_REQUEST, ECP_SUBTYPE_VDP } from '../wire/ecp.js';
import {
  encodeEthernet,
  ETHERTYPE_ECP,
  NEAREST_BRIDGE,
  NEAREST_CUSTOMER_BRIDGE,
} from '../wire/ethernet.js';
import { decodeLldp } from '../wire/lldp.js';
import { DEFAULT_WIRE_OPTIONS, type WireOptions } from '../wire/options.js';
import { parseVdpPdu, type PackOptions, type ParsedVdpPdu } from '../vdp/pdu.js';
import type { AuthFailure, AuthHooks } from '../vdp/auth.js';
import { gate, intake, profileAnnouncement, sessionDeadline, signing } from './common.js';
import {
  VdpStation,
  type PeerCaps,
  type StationEvent,
  type StationRequest,
  type StationToken,
  type StationVsiView,
} from '../vdp/station.js';
import {
  ackTimeoutUs,
  type Profile,
  type VdpTiming,
  type VsiSpec,
  type VsiState,
} from '../vdp/types.js';

export interface UplinkConfig {
  readonly name: string;
  readonly mac: string;
  /**
   * Where ECP requests go: the nNVE's unicast MAC, or a group address bridges forward
   * (Req-1). Default: the nearest-customer-bridge group address (direct link).
   */
  readonly peer?: string;
  readonly evb?: Partial<Omit<EvbConfig, 'role' | 'mac'>>;
  readonly groupAddresses?: readonly string[];
  readonly ecpMinGapUs?: number;
  readonly maxTlvsPerPdu?: number;
}

export interface StationNodeConfig {
  readonly uplinks: readonly UplinkConfig[];
  readonly profile: Profile;
  readonly random: Random;
  readonly wire?: WireOptions;
  /** Attempts per request before it fails (default 3). */
  readonly maxAttempts?: number;
  /** What to assume of a bridge that sends no EVB TLV (L3 transport). */
  readonly assumeWithoutEvb?: { readonly groupId: boolean; readonly profile: Profile };
  /** PDU authentication (splitnve profile; `require` applies whatever the peer announces). */
  readonly auth?: AuthHooks;
}

export type StationNodeEvent =
  | (StationEvent & { readonly uplink: string })
  | {
      readonly type: 'peer-up';
      readonly uplink: string;
      readonly peer: string;
      readonly chassisId: string;
      readonly portId: string;
    }
  | {
      readonly type: 'peer-down';
      readonly uplink: string;
      readonly peer: string;
      readonly reason: string;
    }
  | {
      readonly type: 'negotiated';
      readonly uplink: string;
      readonly peer: string;
      readonly negotiated: EvbNegotiated;
      readonly profile: Profile;
    }
  | { readonly type: 'ecp-failed'; readonly uplink: string; readonly sequence: number }
  | {
      readonly type: 'auth-failed';
      readonly uplink: string;
      readonly peer: string;
      readonly reason: AuthFailure;
      readonly keyId?: number;
      readonly sequence?: string;
    }
  | {
      readonly type: 'auth';
      readonly uplink: string;
      readonly peer: string;
      readonly status: 'authenticated' | 'unsigned';
    }
  | {
      readonly type: 'frame-dropped';
      readonly uplink: string;
      readonly source?: string;
      readonly why: string;
      readonly field?: string;
      readonly offset?: number;
    };

/** Persisted about an uplink's nNVE. */
export interface RememberedBridge {
  readonly bridge: string;
  readonly timing: VdpTiming;
  readonly profile: Profile;
  readonly groupId: boolean | undefined;
}

export type StationNodeOutput =
  | { readonly type: 'transmit'; readonly port: string; readonly frame: Uint8Array }
  | { readonly type: 'event'; readonly event: StationNodeEvent };

interface Uplink {
  readonly cfg: UplinkConfig;
  readonly mac: string;
  readonly evb: EvbAgent;
  readonly ecp: EcpEndpoint<StationToken>;
  readonly vdp: VdpStation;
  readonly accept: Set<string>;
  /**
   * The nNVE's MAC once known: the configured unicast peer, else LLDP or its first ECP frame;
   * under auth `require` only the source of the first PDU that passed authentication.
   */
  bridge: string | undefined;
  destination: string;
  authStatus: 'authenticated' | 'unsigned' | 'failed' | undefined;
}

export interface StationNodeStats {
  framesIn: number;
  framesOut: number;
  framesDropped: number;
  /**
   * ECP requests dropped, under auth `require`, from a source while no nNVE is pinned because
   * their PDU did not parse or failed authentication (not ACKed, nothing pinned; each also a
   * `frame-dropped` or `auth-failed` event).
   */
  unpinnedRejected: number;
}

export class StationNode {
  readonly stats: StationNodeStats = {
    framesIn: 0,
    framesOut: 0,
    framesDropped: 0,
    unpinnedRejected: 0,
  };
  private readonly uplinks = new Map<string, Uplink>();
  private readonly timers = new TimerQueue();
  private readonly wire: WireOptions;
  /** Uplinks whose ECP sent in the current step (see `transmitted`). */
  private readonly sentInStep = new Set<Uplink>();

  constructor(private readonly cfg: StationNodeConfig) {
    this.wire = cfg.wire ?? DEFAULT_WIRE_OPTIONS;
    for (const u of cfg.uplinks) this.addUplink(u);
  }

  private addUplink(u: UplinkConfig): void {
    const mac = normalizeMac(u.mac, `uplink ${u.name} mac`);
    const evb = new EvbAgent(
      evbConfig({
        role: 'station',
        mac,
        ...profileAnnouncement(this.cfg.profile, this.cfg.auth !== undefined),
        wire: this.wire,
        ...u.evb,
      }),
    );
    const values = evb.config.values;
    const destination = u.peer ? normalizeMac(u.peer) : NEAREST_CUSTOMER_BRIDGE;
    const ecp = new EcpEndpoint<StationToken>(
      { maxRetries: values.r, ackTimeoutUs: ackTimeoutUs(values), minGapUs: u.ecpMinGapUs ?? 0 },
      1 + Math.floor(this.cfg.random() * 0xffff),
      ECP_SUBTYPE_VDP,
    );
    const vdp = new VdpStation(
      {
        profile: this.cfg.profile,
        wire: this.wire,
        maxAttempts: this.cfg.maxAttempts ?? 3,
        ...(u.maxTlvsPerPdu ? { maxTlvsPerPdu: u.maxTlvsPerPdu } : {}),
      },
      values,
      this.assumedCaps(evb),
    );
    const accept = new Set<string>([mac, NEAREST_CUSTOMER_BRIDGE, NEAREST_BRIDGE]);
    for (const g of u.groupAddresses ?? []) accept.add(normalizeMac(g));
    if (isGroupMac(destination)) accept.add(destination);
    this.uplinks.set(u.name, {
      cfg: u,
      mac,
      evb,
      ecp,
      vdp,
      accept,
      bridge: isGroupMac(destination) ? undefined : destination,
      destination,
      authStatus: undefined,
    });
  }

  private assumedCaps(evb: EvbAgent): PeerCaps {
    const a = this.cfg.assumeWithoutEvb;
    if (!a) return { profile: '802.1Qbg' };
    return {
      groupId: a.groupId && evb.config.groupId,
      profile: this.cfg.profile === 'splitnve' ? a.profile : '802.1Qbg',
    };
  }

  uplinkNames(): string[] {
    return [...this.uplinks.keys()];
  }

  start(now: number): StationNodeOutput[] {
    const out: StationNodeOutput[] = [];
    for (const u of this.uplinks.values()) {
      const eo: EvbOutput[] = [];
      u.evb.start(now, eo);
      this.evbOutputs(u, eo, now, out);
    }
    return out;
  }

  /**
   * Replaces an uplink's EVB settings live (SIGHUP): through the node, so the new TLV leaves
   * at once and the renegotiated values reach the uplink's ECP and VDP machines.
   */
  reconfigureEvb(uplink: string, cfg: EvbConfig, now: number): StationNodeOutput[] {
    const out: StationNodeOutput[] = [];
    const u = this.uplinks.get(uplink);
    if (!u) return out;
    const eo: EvbOutput[] = [];
    u.evb.reconfigure(cfg, now, eo);
    this.evbOutputs(u, eo, now, out);
    return out;
  }

  stop(now: number): StationNodeOutput[] {
    const out: StationNodeOutput[] = [];
    for (const u of this.uplinks.values()) {
      const eo: EvbOutput[] = [];
      u.evb.stop(now, eo);
      this.evbOutputs(u, eo, now, out);
    }
    return out;
  }

  deadline(): number | undefined {
    return this.timers.next();
  }

  request(uplink: string, req: StationRequest, now: number): StationNodeOutput[] {
    const out: StationNodeOutput[] = [];
    const u = this.uplinks.get(uplink);
    if (!u) throw new Error(`no uplink ${uplink}`);
    const ev: StationEvent[] = [];
    u.vdp.request(req, now, ev);
    this.vdpEvents(u, ev, out);
    this.pump(u, now, out);
    return out;
  }

  /** Re-asserts VSIs after a restart. */
  restore(
    uplink: string,
    items: readonly { spec: VsiSpec; state: VsiState }[],
    now: number,
    remembered?: RememberedBridge,
  ): StationNodeOutput[] {
    const out: StationNodeOutput[] = [];
    const u = this.uplinks.get(uplink);
    if (!u) throw new Error(`no uplink ${uplink}`);
    // Until LLDP is heard again, treat the nNVE as it was before the restart.
    if (remembered && !(u.bridge && u.evb.negotiated(u.bridge))) {
      if (u.bridge === undefined || u.bridge === remembered.bridge) {
        u.bridge = remembered.bridge;
        u.vdp.setTiming(remembered.timing);
        u.vdp.setCaps({
          ...(remembered.groupId !== undefined ? { groupId: remembered.groupId } : {}),
          profile: remembered.profile,
        });
        u.ecp.setParams({
          ...u.ecp.getParams(),
          maxRetries: remembered.timing.r,
          ackTimeoutUs: ackTimeoutUs(remembered.timing),
        });
      }
    }
    const ev: StationEvent[] = [];
    u.vdp.restore(items, now, ev);
    this.vdpEvents(u, ev, out);
    this.pump(u, now, out);
    return out;
  }

  /** What to persist about an uplink's nNVE (restored with `restore` after a restart). */
  rememberable(uplink: string): RememberedBridge | undefined {
    const u = this.uplinks.get(uplink);
    if (!u || u.bridge === undefined) return undefined;
    const caps = u.vdp.getCaps();
    return {
      bridge: u.bridge,
      timing: u.evb.negotiated(u.bridge) ?? u.vdp.getTiming(),
      profile: caps.profile,
      groupId: caps.groupId,
    };
  }

  vsis(uplink: string): StationVsiView[] {
    return this.uplinks.get(uplink)?.vdp.list() ?? [];
  }

  vsi(uplink: string, key: string): StationVsiView | undefined {
    return this.uplinks.get(uplink)?.vdp.get(key);
  }

  uplinkInfo(uplink: string):
    | {
        bridge: string | undefined;
        timing: VdpTiming;
        caps: PeerCaps;
        ecp: EcpEndpoint<StationToken>['stats'];
        vdp: VdpStation['stats'];
      }
    | undefined {
    const u = this.uplinks.get(uplink);
    if (!u) return undefined;
    const n = u.bridge ? u.evb.negotiated(u.bridge) : undefined;
    return {
      bridge: u.bridge,
      timing: n ?? u.evb.config.values,
      caps: u.vdp.getCaps(),
      ecp: u.ecp.stats,
      vdp: u.vdp.stats,
    };
  }

  evbAgent(uplink: string): EvbAgent | undefined {
    return this.uplinks.get(uplink)?.evb;
  }

  handleFrame(uplink: string, frame: Uint8Array, now: number): StationNodeOutput[] {
    const out: StationNodeOutput[] = [];
    const u = this.uplinks.get(uplink);
    this.stats.framesIn++;
    if (!u) return out;
    const i = intake(frame, u.mac, u.accept);
    if (i.kind === 'own') return out;
    if (i.kind === 'drop') return this.drop(out, uplink, i.source, i.why, i.field, i.offset);
    if (i.kind === 'lldp') {
      const l = decodeLldp(i.payload, i.offset, this.wire);
      if (!l.ok)
        return this.drop(out, uplink, i.source, l.error.message, l.error.field, l.error.offset);
      const eo: EvbOutput[] = [];
      u.evb.receive(i.source, l.value, now, eo);
      this.evbOutputs(u, eo, now, out);
      return out;
    }
    if (u.bridge === undefined) {
      if (!this.mustAuthenticateToPin(u)) u.bridge = i.source;
      else if (i.header.op === ECP_OP_REQUEST) {
        if (!this.pinIfAuthentic(u, i.source, i.destination, i.ulpdu, i.base, out)) return out;
      } else {
        // An ACK (of our request to the group address) carries nothing to authenticate: it
        // reaches ECP, but pins nothing.
        const eco: EcpOutput<StationToken>[] = [];
        u.ecp.receiveDecoded(i.header, i.ulpdu, now, eco);
        this.ecpOutputs(u, eco, now, out, i.base, i.destination);
        this.pump(u, now, out);
        return out;
      }
    }
    if (i.source !== u.bridge)
      return this.drop(out, uplink, i.source, `ECP from ${i.source}, our nNVE is ${u.bridge}`);
    const eco: EcpOutput<StationToken>[] = [];
    u.ecp.receiveDecoded(i.header, i.ulpdu, now, eco);
    this.ecpOutputs(u, eco, now, out, i.base, i.destination);
    this.pump(u, now, out);
    return out;
  }

  handleTimeout(now: number): StationNodeOutput[] {
    const out: StationNodeOutput[] = [];
    for (const key of this.timers.popDue(now)) {
      const [kind, name] = [key.slice(0, 4), key.slice(4)];
      const u = this.uplinks.get(name);
      if (!u) continue;
      if (kind === 'evb|') {
        const eo: EvbOutput[] = [];
        u.evb.timeout(now, eo);
        this.evbOutputs(u, eo, now, out);
      } else {
        const eco: EcpOutput<StationToken>[] = [];
        u.ecp.timeout(now, eco);
        this.ecpOutputs(u, eco, now, out, 0);
        const ev: StationEvent[] = [];
        u.vdp.timeout(now, ev);
        this.vdpEvents(u, ev, out);
        this.pump(u, now, out);
      }
    }
    return out;
  }

  /**
   * Under `require` the nNVE is pinned by a PDU that passes authentication, never by LLDP or
   * an unchecked frame: one spoofed frame must not lock the uplink out of its real nNVE.
   */
  private mustAuthenticateToPin(u: Uplink): boolean {
    const a = this.cfg.auth;
    return a !== undefined && a.mode(u.cfg.name, u.destination) === 'require';
  }

  /**
   * An ECP request from `source` while no nNVE is pinned, under `require`: its PDU is checked
   * (without recording the sequence: it is recorded when ECP delivers it, next). Passes: the
   * source becomes the uplink's nNVE. Fails: counted, reported and dropped, not ACKed (a
   * made-up source must not make us transmit), and nothing is pinned.
   */
  private pinIfAuthentic(
    u: Uplink,
    source: string,
    destination: string,
    ulpdu: Uint8Array,
    base: number,
    out: StationNodeOutput[],
  ): boolean {
    const name = u.cfg.name;
    const p = parseVdpPdu(ulpdu, this.wire, base);
    if (!p.ok) {
      this.stats.unpinnedRejected++;
      this.drop(out, name, source, p.error.message, p.error.field, p.error.offset);
      return false;
    }
    const v = gate(
      this.cfg.auth,
      name,
      source,
      u.vdp.getCaps().profile,
      destination,
      ulpdu,
      p.value.auth,
      false,
    );
    if (!v.pass) {
      this.stats.unpinnedRejected++;
      this.stats.framesDropped++;
      const { pass: _pass, ...failure } = v;
      out.push({
        type: 'event',
        event: { type: 'auth-failed', uplink: name, peer: source, ...failure },
      });
      return false;
    }
    u.bridge = source;
    // What LLDP negotiated before the pin may have come from anyone: the pinned nNVE's own
    // values apply, if it has been heard.
    const n = u.evb.negotiated(source);
    if (n) this.applyNegotiated(u, n);
    return true;
  }

  private applyNegotiated(u: Uplink, n: EvbNegotiated): Profile {
    const profile: Profile =
      this.cfg.profile === 'splitnve' && n.peerProfile !== undefined ? 'splitnve' : '802.1Qbg';
    u.vdp.setTiming(n);
    u.vdp.setCaps({ groupId: n.groupId, profile });
    u.ecp.setParams({
      ...u.ecp.getParams(),
      maxRetries: n.r,
      ackTimeoutUs: ackTimeoutUs(n),
    });
    return profile;
  }

  private drop(
    out: StationNodeOutput[],
    uplink: string,
    source: string | undefined,
    why: string,
    field?: string,
    offset?: number,
  ): StationNodeOutput[] {
    this.stats.framesDropped++;
    out.push({
      type: 'event',
      event: {
        type: 'frame-dropped',
        uplink,
        ...(source ? { source } : {}),
        why,
        ...(field !== undefined ? { field } : {}),
        ...(offset !== undefined ? { offset } : {}),
      },
    });
    return out;
  }

  private evbOutputs(u: Uplink, eo: EvbOutput[], _now: number, out: StationNodeOutput[]): void {
    const name = u.cfg.name;
    for (const o of eo) {
      switch (o.type) {
        case 'transmit':
          this.stats.framesOut++;
          out.push({ type: 'transmit', port: name, frame: o.frame });
          break;
        case 'peer-up':
          // LLDP is not authenticated: under `require` it pins nothing (see handleFrame).
          if (u.bridge === undefined && !this.mustAuthenticateToPin(u)) u.bridge = o.peer;
          out.push({
            type: 'event',
            event: {
              type: 'peer-up',
              uplink: name,
              peer: o.peer,
              chassisId: o.chassisId,
              portId: o.portId,
            },
          });
          break;
        case 'peer-down':
          out.push({
            type: 'event',
            event: { type: 'peer-down', uplink: name, peer: o.peer, reason: o.reason },
          });
          break;
        case 'negotiated': {
          if (u.bridge !== undefined && o.peer !== u.bridge) break;
          const profile = this.applyNegotiated(u, o.negotiated);
          out.push({
            type: 'event',
            event: {
              type: 'negotiated',
              uplink: name,
              peer: o.peer,
              negotiated: o.negotiated,
              profile,
            },
          });
          break;
        }
        case 'ignored':
          break;
      }
    }
    this.timers.set(`evb|${name}`, u.evb.deadline());
  }

  private ecpOutputs(
    u: Uplink,
    eco: EcpOutput<StationToken>[],
    now: number,
    out: StationNodeOutput[],
    base: number,
    destination = u.mac,
  ): void {
    for (const o of eco) {
      switch (o.type) {
        case 'transmit':
          this.stats.framesOut++;
          this.sentInStep.add(u);
          out.push({
            type: 'transmit',
            port: u.cfg.name,
            frame: encodeEthernet(
              { destination: u.destination, source: u.mac, ethertype: ETHERTYPE_ECP },
              o.pdu,
            ),
          });
          break;
        case 'deliver': {
          const p = parseVdpPdu(o.ulpdu, this.wire, base);
          if (!p.ok) {
            this.drop(out, u.cfg.name, u.bridge, p.error.message, p.error.field, p.error.offset);
            break;
          }
          if (!this.authenticate(u, destination, o.ulpdu, p.value.auth, out)) break;
          const ev: StationEvent[] = [];
          u.vdp.receive(p.value, now, ev);
          this.vdpEvents(u, ev, out);
          break;
        }
        case 'acked':
          break;
        case 'failed': {
          out.push({
            type: 'event',
            event: { type: 'ecp-failed', uplink: u.cfg.name, sequence: o.sequence },
          });
          const ev: StationEvent[] = [];
          u.vdp.ecpFailed(o.token, now, ev);
          this.vdpEvents(u, ev, out);
          break;
        }
      }
    }
  }

  private vdpEvents(u: Uplink, ev: StationEvent[], out: StationNodeOutput[]): void {
    for (const e of ev) out.push({ type: 'event', event: { ...e, uplink: u.cfg.name } });
  }

  private signing(u: Uplink): PackOptions {
    const peer = u.bridge ?? u.destination;
    const profile = u.vdp.getCaps().profile;
    return signing(this.cfg.auth, u.cfg.name, peer, profile, u.mac, u.destination, this.wire);
  }

  private authenticate(
    u: Uplink,
    destination: string,
    payload: Uint8Array,
    auth: ParsedVdpPdu['auth'],
    out: StationNodeOutput[],
  ): boolean {
    if (u.bridge === undefined) return true;
    const peer = u.bridge;
    const v = gate(
      this.cfg.auth,
      u.cfg.name,
      peer,
      u.vdp.getCaps().profile,
      destination,
      payload,
      auth,
    );
    if (!v.pass) {
      u.authStatus = 'failed';
      const { pass: _pass, ...failure } = v;
      out.push({
        type: 'event',
        event: { type: 'auth-failed', uplink: u.cfg.name, peer, ...failure },
      });
      return false;
    }
    if (v.status !== undefined && u.authStatus !== v.status) {
      u.authStatus = v.status;
      out.push({
        type: 'event',
        event: { type: 'auth', uplink: u.cfg.name, peer, status: v.status },
      });
    }
    return true;
  }

  /**
   * The driver sent the frames of the step stamped `stepNow` at `sentAt` (after committing its
   * events): ECP gaps and ACK timers of the uplinks that sent run from `sentAt`.
   */
  transmitted(stepNow: number, sentAt: number): void {
    for (const u of this.sentInStep) {
      u.ecp.transmittedAt(stepNow, sentAt);
      this.reschedule(u);
    }
    this.sentInStep.clear();
  }

  private pump(u: Uplink, now: number, out: StationNodeOutput[]): void {
    while (u.vdp.hasQueued() && u.ecp.canSend(now)) {
      const pdu = u.vdp.pull(now, this.signing(u));
      if (!pdu) break;
      const eco: EcpOutput<StationToken>[] = [];
      u.ecp.send(pdu.payload, pdu.token, now, eco);
      this.ecpOutputs(u, eco, now, out, 0);
    }
    this.reschedule(u);
  }

  private reschedule(u: Uplink): void {
    this.timers.set(`vdp|${u.cfg.name}`, sessionDeadline(u.ecp, u.vdp));
  }
}
