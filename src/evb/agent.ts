/**
 * EVB over LLDP (802.1Q-2014 D.2.12), sans-IO: one agent per local port, for either role.
 *
 * It builds and sends the LLDPDU with the EVB TLV (and the splitnve profile TLV when
 * configured), parses the peers' LLDPDUs, applies lldpad's negotiation rules (values =
 * max(own, peer); ROL set when the peer's value >= own; GroupID formats only when BGID and
 * SGID are both set), expires peers on TTL (TTL 0: the peer left) and reports per-peer
 * negotiated R, RTE, RWD, RKA to ECP/VDP.
 *
 * Several peers per port are supported (stations behind a bridged network): the TLV sent
 * carries max(own, every live peer), and each peer's values are max(what we send, what it
 * sends), which is exactly what that peer computes once it has heard us.
 */
import { encodeEthernet, ETHERTYPE_LLDP } from '../wire/ethernet.js';
import {
  EVB_MODE_BRIDGE,
  EVB_MODE_STATION,
  RRSTAT_NO,
  RRSTAT_UNKNOWN,
  RRSTAT_YES,
  type EvbTlv,
} from '../wire/evb-tlv.js';
import { encodeLldp, type LldpId, type LldpPdu, type SplitnveProfileTlv } from '../wire/lldp.js';
import { DEFAULT_WIRE_OPTIONS, type WireOptions } from '../wire/options.js';

export type EvbRole = 'station' | 'bridge';

export interface EvbValues {
  readonly r: number;
  readonly rte: number;
  readonly rwd: number;
  readonly rka: number;
}

export const EVB_DEFAULTS: EvbValues = Object.freeze({ r: 3, rte: 8, rwd: 20, rka: 20 });

export interface EvbConfig {
  readonly role: EvbRole;
  readonly values: EvbValues;
  /** BGID (bridge) or SGID (station): GroupID filter formats supported. */
  readonly groupId: boolean;
  /** RRCAP (bridge) or RRREQ (station): resource reservation. */
  readonly rr: boolean;
  /** Our MAC on this port: LLDP source, chassis and port id default. */
  readonly mac: string;
  readonly chassisId?: LldpId;
  readonly portId?: LldpId;
  /** Destination of our LLDPDUs (nearest-customer-bridge group, or a forwarded group address). */
  readonly destination: string;
  readonly txIntervalUs: number;
  readonly fastTxIntervalUs: number;
  readonly fastTxCount: number;
  /** TTL we announce, seconds. */
  readonly ttlSeconds: number;
  /** splitnve profile capabilities to announce, or undefined in the plain 802.1Qbg profile. */
  readonly profile?: SplitnveProfileTlv;
  readonly wire?: WireOptions;
}

export function evbConfig(
  c: Pick<EvbConfig, 'role' | 'mac'> & Partial<Omit<EvbConfig, 'role' | 'mac'>>,
): EvbConfig {
  return {
    values: EVB_DEFAULTS,
    groupId: true,
    rr: true,
    destination: '01:80:c2:00:00:00',
    txIntervalUs: 30_000_000,
    fastTxIntervalUs: 1_000_000,
    fastTxCount: 4,
    ttlSeconds: 120,
    ...c,
  };
}

export interface EvbNegotiated extends EvbValues {
  /** GroupID filter formats allowed with this peer (BGID && SGID). */
  readonly groupId: boolean;
  /** Resource reservation agreed (RRCTR / RRSTAT yes). */
  readonly rr: boolean;
  /** The peer's splitnve profile announcement, if it sent one. */
  readonly peerProfile?: SplitnveProfileTlv;
}

export type EvbOutput =
  | { readonly type: 'transmit'; readonly frame: Uint8Array }
  | {
      readonly type: 'peer-up';
      readonly peer: string;
      readonly chassisId: string;
      readonly portId: string;
    }
  | {
      readonly type: 'peer-down';
      readonly peer: string;
      readonly reason: 'ttl-expired' | 'ttl-zero';
    }
  | { readonly type: 'negotiated'; readonly peer: string; readonly negotiated: EvbNegotiated }
  /** An LLDPDU without an EVB TLV, or from a peer in the same role. */
  | { readonly type: 'ignored'; readonly peer: string; readonly why: string };

interface Peer {
  readonly mac: string;
  tlv: EvbTlv;
  profile: SplitnveProfileTlv | undefined;
  expiresAt: number;
  negotiated: EvbNegotiated | undefined;
}

export interface EvbStats {
  txFrames: number;
  rxFrames: number;
  rxIgnored: number;
  peersUp: number;
  peersDown: number;
}

function maxValues(a: EvbValues, b: EvbValues): EvbValues {
  return {
    r: Math.max(a.r, b.r),
    rte: Math.max(a.rte, b.rte),
    rwd: Math.max(a.rwd, b.rwd),
    rka: Math.max(a.rka, b.rka),
  };
}

function sameValues(a: EvbValues, b: EvbValues): boolean {
  return a.r === b.r && a.rte === b.rte && a.rwd === b.rwd && a.rka === b.rka;
}

function sameNegotiated(a: EvbNegotiated | undefined, b: EvbNegotiated): boolean {
  return (
    a !== undefined &&
    a.r === b.r &&
    a.rte === b.rte &&
    a.rwd === b.rwd &&
    a.rka === b.rka &&
    a.groupId === b.groupId &&
    a.rr === b.rr &&
    JSON.stringify(a.peerProfile) === JSON.stringify(b.peerProfile)
  );
}

export class EvbAgent {
  readonly stats: EvbStats = { txFrames: 0, rxFrames: 0, rxIgnored: 0, peersUp: 0, peersDown: 0 };
  private cfg: EvbConfig;
  private peers = new Map<string, Peer>();
  /** Last status octets received (copied into ours, as lldpad does). */
  private lastBridgeOctet: { bgid: boolean; rrcap: boolean; rrctr: boolean } | undefined;
  private lastStationOctet: { sgid: boolean; rrreq: boolean; rrstat: number } | undefined;
  private nextTxAt: number | undefined;
  private fastLeft = 0;
  private lastTxContent = '';
  private running = false;

  constructor(cfg: EvbConfig) {
    this.cfg = cfg;
  }

  get config(): EvbConfig {
    return this.cfg;
  }

  /** Replaces the configuration (e.g. SIGHUP); the next TLV carries the new values. */
  reconfigure(cfg: EvbConfig, now: number, out: EvbOutput[]): void {
    this.cfg = cfg;
    const adv = this.advertised().values;
    for (const p of this.peers.values()) this.renegotiate(p, adv, out);
    if (this.running) this.changed(now, out);
  }

  start(now: number, out: EvbOutput[]): void {
    this.running = true;
    this.fastLeft = this.cfg.fastTxCount;
    this.transmit(now, out);
  }

  /** Sends a TTL 0 LLDPDU (we are leaving) and stops transmitting. */
  stop(_now: number, out: EvbOutput[]): void {
    if (!this.running) return;
    this.running = false;
    this.nextTxAt = undefined;
    out.push({ type: 'transmit', frame: this.buildFrame(0) });
    this.stats.txFrames++;
  }

  peerList(): {
    mac: string;
    tlv: EvbTlv;
    negotiated: EvbNegotiated | undefined;
    expiresAt: number;
  }[] {
    return [...this.peers.values()].map((p) => ({
      mac: p.mac,
      tlv: p.tlv,
      negotiated: p.negotiated,
      expiresAt: p.expiresAt,
    }));
  }

  negotiated(peer: string): EvbNegotiated | undefined {
    return this.peers.get(peer)?.negotiated;
  }

  deadline(): number | undefined {
    let d = this.nextTxAt;
    for (const p of this.peers.values()) if (d === undefined || p.expiresAt < d) d = p.expiresAt;
    return d;
  }

  /** Handles a decoded LLDPDU from `source`. */
  receive(source: string, pdu: LldpPdu, now: number, out: EvbOutput[]): void {
    this.stats.rxFrames++;
    const evb = pdu.evb;
    if (pdu.ttl === 0) {
      if (this.peers.delete(source)) {
        this.stats.peersDown++;
        out.push({ type: 'peer-down', peer: source, reason: 'ttl-zero' });
        this.changed(now, out);
      }
      return;
    }
    if (!evb) {
      this.stats.rxIgnored++;
      out.push({ type: 'ignored', peer: source, why: 'LLDPDU without an EVB TLV' });
      return;
    }
    const wantMode = this.cfg.role === 'station' ? EVB_MODE_BRIDGE : EVB_MODE_STATION;
    if (evb.evbMode !== wantMode) {
      this.stats.rxIgnored++;
      out.push({
        type: 'ignored',
        peer: source,
        why: `EVB mode ${evb.evbMode} is not the peer role`,
      });
      return;
    }
    if (this.cfg.role === 'station') {
      this.lastBridgeOctet = { bgid: evb.bgid, rrcap: evb.rrcap, rrctr: evb.rrctr };
    } else {
      this.lastStationOctet = { sgid: evb.sgid, rrreq: evb.rrreq, rrstat: evb.rrstat };
    }
    const advBefore = this.advertised().values;
    let p = this.peers.get(source);
    const expiresAt = now + pdu.ttl * 1_000_000;
    if (!p) {
      p = { mac: source, tlv: evb, profile: pdu.splitnveProfile, expiresAt, negotiated: undefined };
      this.peers.set(source, p);
      this.stats.peersUp++;
      out.push({
        type: 'peer-up',
        peer: source,
        chassisId: pdu.chassisId.id,
        portId: pdu.portId.id,
      });
    } else {
      p.tlv = evb;
      p.profile = pdu.splitnveProfile;
      p.expiresAt = expiresAt;
    }
    // A peer's agreement depends on what we advertise (max over all peers) and on its own TLV:
    // the others need renegotiating only when what we advertise changed. This keeps an LLDPDU
    // O(peers), not O(peers²), with a thousand stations behind one port.
    const adv = this.advertised().values;
    if (sameValues(adv, advBefore)) this.renegotiate(p, adv, out);
    else for (const q of this.peers.values()) this.renegotiate(q, adv, out);
    this.changed(now, out);
    // The peer echoes our status octet: if its copy is not what we send, it has not heard us
    // (it restarted, or lost our LLDPDUs): answer now instead of at the next interval.
    const stale =
      this.cfg.role === 'station'
        ? evb.sgid !== this.cfg.groupId || evb.rrreq !== this.cfg.rr
        : evb.bgid !== this.cfg.groupId || evb.rrcap !== this.cfg.rr;
    if (stale && this.running) {
      this.fastLeft = Math.max(this.fastLeft, 1);
      if (this.nextTxAt === undefined || this.nextTxAt > now) this.nextTxAt = now;
    }
  }

  timeout(now: number, out: EvbOutput[]): void {
    let lost = false;
    for (const p of [...this.peers.values()]) {
      if (p.expiresAt <= now) {
        this.peers.delete(p.mac);
        this.stats.peersDown++;
        out.push({ type: 'peer-down', peer: p.mac, reason: 'ttl-expired' });
        lost = true;
      }
    }
    if (lost) this.changed(now, out);
    if (this.running && this.nextTxAt !== undefined && now >= this.nextTxAt)
      this.transmit(now, out);
  }

  /** Values we advertise: max(own, every live peer). */
  private advertised(): { values: EvbValues; rolRwd: boolean; rolRka: boolean } {
    const own = this.cfg.values;
    let v = own;
    let rolRwd = false;
    let rolRka = false;
    for (const p of this.peers.values()) {
      v = maxValues(v, p.tlv);
      if (p.tlv.rwd >= own.rwd) rolRwd = true;
      if (p.tlv.rka >= own.rka) rolRka = true;
    }
    return { values: v, rolRwd, rolRka };
  }

  private renegotiate(p: Peer, advertised: EvbValues, out: EvbOutput[]): void {
    const v = maxValues(advertised, p.tlv);
    const station = this.cfg.role === 'station';
    const n: EvbNegotiated = {
      ...v,
      groupId: station ? this.cfg.groupId && p.tlv.bgid : this.cfg.groupId && p.tlv.sgid,
      rr: station ? p.tlv.rrctr : this.cfg.rr && p.tlv.rrreq,
      ...(p.profile ? { peerProfile: p.profile } : {}),
    };
    if (!sameNegotiated(p.negotiated, n)) {
      p.negotiated = n;
      out.push({ type: 'negotiated', peer: p.mac, negotiated: n });
    }
  }

  private buildTlv(): EvbTlv {
    const adv = this.advertised();
    const c = this.cfg;
    if (c.role === 'station') {
      const b = this.lastBridgeOctet;
      return {
        bgid: b?.bgid ?? false,
        rrcap: b?.rrcap ?? false,
        rrctr: b?.rrctr ?? false,
        sgid: c.groupId,
        rrreq: c.rr,
        rrstat: b === undefined ? RRSTAT_UNKNOWN : b.rrctr ? RRSTAT_YES : RRSTAT_NO,
        ...adv.values,
        evbMode: EVB_MODE_STATION,
        rolRwd: adv.rolRwd,
        rolRka: adv.rolRka,
      };
    }
    const s = this.lastStationOctet;
    return {
      bgid: c.groupId,
      rrcap: c.rr,
      rrctr: c.rr && (s?.rrreq ?? false),
      sgid: s?.sgid ?? false,
      rrreq: s?.rrreq ?? false,
      rrstat: s?.rrstat ?? RRSTAT_NO,
      ...adv.values,
      evbMode: EVB_MODE_BRIDGE,
      rolRwd: adv.rolRwd,
      rolRka: adv.rolRka,
    };
  }

  private buildFrame(ttl: number): Uint8Array {
    const c = this.cfg;
    const lldp = encodeLldp(
      {
        chassisId: c.chassisId ?? { subtype: 4, id: c.mac },
        portId: c.portId ?? { subtype: 3, id: c.mac },
        ttl,
        evb: this.buildTlv(),
        ...(c.profile ? { splitnveProfile: c.profile } : {}),
      },
      c.wire ?? DEFAULT_WIRE_OPTIONS,
    );
    return encodeEthernet(
      { destination: c.destination, source: c.mac, ethertype: ETHERTYPE_LLDP },
      lldp,
    );
  }

  /** Our TLV content may have changed: send soon (fast transmissions), as LLDP does. */
  private changed(now: number, _out: EvbOutput[]): void {
    if (!this.running) return;
    const content = JSON.stringify(this.buildTlv());
    if (content === this.lastTxContent) return;
    this.fastLeft = Math.max(this.fastLeft, this.cfg.fastTxCount);
    const soonest = now;
    if (this.nextTxAt === undefined || this.nextTxAt > soonest) this.nextTxAt = soonest;
  }

  private transmit(now: number, out: EvbOutput[]): void {
    const frame = this.buildFrame(this.cfg.ttlSeconds);
    this.lastTxContent = JSON.stringify(this.buildTlv());
    out.push({ type: 'transmit', frame });
    this.stats.txFrames++;
    if (this.fastLeft > 0) {
      this.fastLeft--;
      this.nextTxAt = now + this.cfg.fastTxIntervalUs;
    } else {
      this.nextTxAt = now + this.cfg.txIntervalUs;
    }
  }
}
