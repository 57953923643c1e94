/**
 * A hand-driven VDP station on a raw socket opened from the test process inside a namespace
 * (src/link/raw.ts, `netns` option): it sends frames that vdptool will not build (VID 1, wrong
 * TLV lengths, no entries, unknown TLV types, GroupID formats without GroupID support...), ACKs
 * what the nNVE sends it, and records the VDP TLVs it receives. It uses its own source MAC and
 * sends to the nNVE's unicast MAC, so the nNVE answers it alone (a separate station session).
 */
import { openRawLink, type RawLink } from '../../src/link/raw.js';
import { ByteWriter } from '../../src/wire/bytes.js';
import { decodeEcp, encodeEcp, ECP_OP_ACK, ECP_OP_REQUEST } from '../../src/wire/ecp.js';
import {
  decodeEthernet,
  encodeEthernet,
  ETHERTYPE_ECP,
  ETHERTYPE_LLDP,
} from '../../src/wire/ethernet.js';
import { encodeLldp } from '../../src/wire/lldp.js';
import { DEFAULT_WIRE_OPTIONS } from '../../src/wire/options.js';
import { encodeManagerId, encodeVsi, decodeVdp, type VsiTlv } from '../../src/wire/vdp.js';
import { EVB_MODE_STATION } from '../../src/wire/evb-tlv.js';

export interface ReceivedTlv {
  /** performance.now() when it arrived. */
  readonly at: number;
  readonly tlv: VsiTlv;
}

/** The VDP payload of one PDU: Manager ID, the given TLV byte strings, End. */
export function vdpPayload(
  managerId: Uint8Array,
  tlvs: readonly Uint8Array[],
  end = true,
): Uint8Array {
  const w = new ByteWriter(128);
  encodeManagerId(w, managerId);
  for (const t of tlvs) w.bytes(t);
  if (end) w.u16(0);
  return w.finish();
}

/** One VSI TLV's bytes (valid encoding of whatever fields are given). */
export function vsiTlv(t: Omit<VsiTlv, 'kind'>): Uint8Array {
  const w = new ByteWriter(64);
  encodeVsi(w, t, DEFAULT_WIRE_OPTIONS);
  return w.finish();
}

/** A TLV header and value as given (any type, any length: for malformed TLVs). */
export function rawTlv(type: number, value: Uint8Array, length = value.length): Uint8Array {
  const w = new ByteWriter(2 + value.length);
  w.u16(((type & 0x7f) << 9) | (length & 0x1ff));
  w.bytes(value);
  return w.finish();
}

export class RawStation {
  readonly received: ReceivedTlv[] = [];
  /** Sequences the nNVE ACKed. */
  private readonly acked = new Set<number>();
  private seq = 0x4000 + Math.floor(Math.random() * 0x4000);
  private keepAliveTimer: NodeJS.Timeout | undefined;
  /** ECP requests from the nNVE (all, including retransmissions). */
  requestsIn = 0;

  private constructor(
    readonly link: RawLink,
    readonly mac: string,
    readonly bridge: string,
  ) {
    link.onFrames((frames) => {
      for (const f of frames) this.onFrame(f);
    });
  }

  /** Opens `ifname` in `netns`; frames go from `mac` to the nNVE's unicast `bridge` MAC. */
  static open(netns: string, ifname: string, mac: string, bridge: string): RawStation {
    return new RawStation(openRawLink(ifname, { netns, allowDown: true }), mac, bridge);
  }

  private onFrame(f: Uint8Array): void {
    const e = decodeEthernet(f);
    if (!e.ok) return;
    const h = e.value.header;
    if (h.destination !== this.mac || h.ethertype !== ETHERTYPE_ECP) return;
    const ecp = decodeEcp(e.value.payload);
    if (!ecp.ok) return;
    const eh = ecp.value.header;
    if (eh.op === ECP_OP_ACK) {
      this.acked.add(eh.sequence);
      return;
    }
    if (eh.op !== ECP_OP_REQUEST) return;
    this.requestsIn++;
    this.sendEcp(ECP_OP_ACK, eh.sequence, new Uint8Array(0));
    const d = decodeVdp(ecp.value.ulpdu);
    if (!d.ok) return;
    const now = performance.now();
    for (const it of d.value.items) {
      const t = it.tlv;
      if (t.kind === 'vsi') this.received.push({ at: now, tlv: t });
      else if (t.kind === 'malformed' && it.type >= 1 && it.type <= 4 && t.value.length >= 25) {
        // A refusal echoing an unreadable filter: keep its fixed part, without entries.
        const v = t.value;
        this.received.push({
          at: now,
          tlv: {
            kind: 'vsi',
            type: it.type as 1 | 2 | 3 | 4,
            status: v[0]!,
            typeId: (v[1]! << 16) | (v[2]! << 8) | v[3]!,
            typeVersion: v[4]!,
            idFormat: v[5]!,
            id: v.slice(6, 22),
            filterFormat: v[22]!,
            entries: [],
          },
        });
      }
    }
  }

  private sendEcp(op: number, sequence: number, ulpdu: Uint8Array): void {
    const pdu = encodeEcp({ version: 1, op, subtype: 1, sequence }, ulpdu);
    this.link.send([
      encodeEthernet({ destination: this.bridge, source: this.mac, ethertype: ETHERTYPE_ECP }, pdu),
    ]);
  }

  /**
   * LLDP with an EVB TLV in station mode (to 01:80:c2:00:00:00): `sgid` says whether this station
   * supports GroupID filter formats. Timers as given (the nNVE sends the maxima).
   */
  sendLldp(opts: {
    sgid: boolean;
    r: number;
    rte: number;
    rwd: number;
    rka: number;
    ttl?: number;
  }): void {
    const lldp = encodeLldp({
      chassisId: { subtype: 4, id: this.mac },
      portId: { subtype: 3, id: this.mac },
      ttl: opts.ttl ?? 120,
      evb: {
        bgid: false,
        rrcap: false,
        rrctr: false,
        sgid: opts.sgid,
        rrreq: false,
        rrstat: 3,
        r: opts.r,
        rte: opts.rte,
        evbMode: EVB_MODE_STATION,
        rolRwd: false,
        rwd: opts.rwd,
        rolRka: false,
        rka: opts.rka,
      },
    });
    this.link.send([
      encodeEthernet(
        { destination: '01:80:c2:00:00:00', source: this.mac, ethertype: ETHERTYPE_LLDP },
        lldp,
      ),
    ]);
  }

  /**
   * Sends one ECP request with `ulpdu` and waits for its ACK (retransmitting every `ackMs`, up to
   * 4 times). Resolves with the sequence used; rejects if never ACKed.
   */
  async send(ulpdu: Uint8Array, ackMs = 100): Promise<number> {
    this.seq = (this.seq + 1) & 0xffff || 1;
    const seq = this.seq;
    for (let i = 0; i < 4; i++) {
      this.sendEcp(ECP_OP_REQUEST, seq, ulpdu);
      const until = performance.now() + ackMs;
      while (performance.now() < until) {
        if (this.acked.has(seq)) return seq;
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    throw new Error(
      `raw station ${this.mac}: ECP request ${seq} was never ACKed by ${this.bridge}`,
    );
  }

  /**
   * Sends `ulpdu` and collects the VSI TLVs the nNVE sends within `waitMs` (resolves early once
   * `expect` of them came).
   */
  async exchange(
    ulpdu: Uint8Array,
    opts: { expect?: number; waitMs?: number; match?: (t: VsiTlv) => boolean } = {},
  ): Promise<VsiTlv[]> {
    const from = this.received.length;
    const match = opts.match ?? (() => true);
    const got = (): VsiTlv[] =>
      this.received
        .slice(from)
        .map((r) => r.tlv)
        .filter(match);
    await this.send(ulpdu);
    const until = performance.now() + (opts.waitMs ?? 1000);
    const expect = opts.expect ?? 1;
    while (performance.now() < until && got().length < expect) {
      await new Promise((r) => setTimeout(r, 5));
    }
    return got();
  }

  /** Re-sends `ulpdu` every `intervalMs` (a keep-alive) until stopKeepAlive(). */
  keepAlive(ulpdu: Uint8Array, intervalMs: number): void {
    this.stopKeepAlive();
    this.keepAliveTimer = setInterval(() => {
      this.send(ulpdu).catch(() => undefined);
    }, intervalMs);
  }

  stopKeepAlive(): void {
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
  }

  async close(): Promise<void> {
    this.stopKeepAlive();
    await this.link.close();
  }
}
