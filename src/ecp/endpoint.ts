/**
 * ECP (802.1Q clause 43) endpoint for one (local port, peer MAC): sans-IO.
 *
 * Sender: stop-and-wait, one outstanding PDU; ACK timer 10µs·2^RTE; the same sequence is
 * retransmitted up to R times, then the PDU is dropped and the failure reported upward with
 * the caller's token. An optional minimum gap separates any two transmissions (lldpad
 * processes a second ECPDU arriving within 2 ms wrongly: LLDPAD-NOTES Q4).
 * Receiver: every request is ACKed; a request whose sequence equals the last one delivered is
 * a duplicate and is not delivered again (lldpad's rule: no window).
 */
import {
  decodeEcp,
  ECP_OP_ACK,
  ECP_OP_REQUEST,
  ECP_VERSION,
  encodeEcp,
  type EcpHeader,
} from '../wire/ecp.js';

export interface EcpParams {
  /** R: retransmissions after the first transmission. */
  readonly maxRetries: number;
  /** ACK timeout in µs (10 · 2^RTE). */
  readonly ackTimeoutUs: number;
  /** Minimum time between two transmissions in µs (0: none). */
  readonly minGapUs: number;
}

export type EcpOutput<T> =
  /** An encoded ECP PDU (header + ULPDU) to put in an Ethernet frame towards the peer. */
  | { readonly type: 'transmit'; readonly pdu: Uint8Array; readonly ack: boolean }
  /** A new (not duplicate) upper-layer PDU from the peer. */
  | { readonly type: 'deliver'; readonly ulpdu: Uint8Array; readonly sequence: number }
  | { readonly type: 'acked'; readonly token: T; readonly sequence: number }
  | {
      readonly type: 'failed';
      readonly token: T;
      readonly sequence: number;
      readonly transmissions: number;
    };

export interface EcpStats {
  txRequests: number;
  txRetransmissions: number;
  txAcks: number;
  rxRequests: number;
  rxDuplicates: number;
  rxAcks: number;
  rxAcksUnmatched: number;
  rxInvalid: number;
  failures: number;
}

export function newEcpStats(): EcpStats {
  return {
    txRequests: 0,
    txRetransmissions: 0,
    txAcks: 0,
    rxRequests: 0,
    rxDuplicates: 0,
    rxAcks: 0,
    rxAcksUnmatched: 0,
    rxInvalid: 0,
    failures: 0,
  };
}

interface Outstanding<T> {
  readonly sequence: number;
  readonly pdu: Uint8Array;
  readonly token: T;
  transmissions: number;
  ackDeadline: number;
}

export function nextSequence(seq: number): number {
  return seq >= 0xffff ? 1 : seq + 1;
}

export class EcpEndpoint<T> {
  readonly stats: EcpStats = newEcpStats();
  private params: EcpParams;
  private seq: number;
  private lastDelivered: number | undefined;
  private outstanding: Outstanding<T> | undefined;
  private lastTxAt = -Infinity;

  /** `initialSequence` must be random and non-zero (WIRE.md; lldpad Q5). */
  constructor(
    params: EcpParams,
    initialSequence: number,
    readonly subtype: number,
  ) {
    if (!Number.isInteger(initialSequence) || initialSequence < 1 || initialSequence > 0xffff) {
      throw new RangeError(`initial ECP sequence must be 1..65535, got ${initialSequence}`);
    }
    this.params = params;
    this.seq = initialSequence;
  }

  setParams(params: EcpParams): void {
    this.params = params;
  }

  getParams(): EcpParams {
    return this.params;
  }

  /** True when nothing is outstanding. */
  idle(): boolean {
    return this.outstanding === undefined;
  }

  /** True when a new PDU may be sent now. */
  canSend(now: number): boolean {
    return this.outstanding === undefined && now >= this.lastTxAt + this.params.minGapUs;
  }

  /** The next sequence number a new PDU will carry. */
  peekSequence(): number {
    return this.seq;
  }

  /** Earliest time this endpoint needs `timeout` (ACK timer, or end of the gap when idle). */
  deadline(): number | undefined {
    if (this.outstanding) {
      return Math.max(this.outstanding.ackDeadline, this.lastTxAt + this.params.minGapUs);
    }
    return undefined;
  }

  /** Time from which a new PDU may go (for the caller that has something queued). */
  sendableAt(): number {
    return this.lastTxAt + this.params.minGapUs;
  }

  /** Sends a new PDU; the caller checked `canSend`. */
  send(ulpdu: Uint8Array, token: T, now: number, out: EcpOutput<T>[]): number {
    if (!this.canSend(now))
      throw new Error('ECP: send while a PDU is outstanding or inside the gap');
    const sequence = this.seq;
    this.seq = nextSequence(this.seq);
    const pdu = encodeEcp(
      { version: ECP_VERSION, op: ECP_OP_REQUEST, subtype: this.subtype, sequence },
      ulpdu,
    );
    this.outstanding = {
      sequence,
      pdu,
      token,
      transmissions: 1,
      ackDeadline: now + this.params.ackTimeoutUs,
    };
    this.lastTxAt = now;
    this.stats.txRequests++;
    out.push({ type: 'transmit', pdu, ack: false });
    return sequence;
  }

  /** Handles an ECP PDU (header + ULPDU octets) received from the peer. */
  receive(bytes: Uint8Array, now: number, out: EcpOutput<T>[]): void {
    const d = decodeEcp(bytes);
    if (
      !d.ok ||
      d.value.header.version !== ECP_VERSION ||
      d.value.header.subtype !== this.subtype
    ) {
      this.stats.rxInvalid++;
      return;
    }
    this.receiveDecoded(d.value.header, d.value.ulpdu, now, out);
  }

  receiveDecoded(h: EcpHeader, ulpdu: Uint8Array, _now: number, out: EcpOutput<T>[]): void {
    if (h.op === ECP_OP_REQUEST) {
      this.stats.rxRequests++;
      this.stats.txAcks++;
      out.push({
        type: 'transmit',
        pdu: encodeEcp({
          version: ECP_VERSION,
          op: ECP_OP_ACK,
          subtype: this.subtype,
          sequence: h.sequence,
        }),
        ack: true,
      });
      if (this.lastDelivered === h.sequence) {
        this.stats.rxDuplicates++;
        return;
      }
      this.lastDelivered = h.sequence;
      out.push({ type: 'deliver', ulpdu, sequence: h.sequence });
    } else if (h.op === ECP_OP_ACK) {
      this.stats.rxAcks++;
      const o = this.outstanding;
      if (!o || o.sequence !== h.sequence) {
        this.stats.rxAcksUnmatched++;
        return;
      }
      this.outstanding = undefined;
      out.push({ type: 'acked', token: o.token, sequence: o.sequence });
    } else {
      this.stats.rxInvalid++;
    }
  }

  /**
   * The PDU sent (or retransmitted) in a step stamped `stepNow` actually left at `sentAt`: a
   * driver that commits state before it transmits sends later than the step's time. The gap
   * and the ACK timer then run from the real transmission, so a slow step never shortens the
   * gap on the wire (lldpad Q4) nor retransmits right after the first copy.
   */
  transmittedAt(stepNow: number, sentAt: number): void {
    if (sentAt <= stepNow || this.lastTxAt !== stepNow) return;
    const lag = sentAt - stepNow;
    this.lastTxAt = sentAt;
    const o = this.outstanding;
    if (o && o.ackDeadline === stepNow + this.params.ackTimeoutUs) o.ackDeadline += lag;
  }

  /** Runs the ACK timer: retransmit, or give up after R retransmissions. */
  timeout(now: number, out: EcpOutput<T>[]): void {
    const o = this.outstanding;
    if (!o || now < o.ackDeadline || now < this.lastTxAt + this.params.minGapUs) return;
    if (o.transmissions > this.params.maxRetries) {
      this.outstanding = undefined;
      this.stats.failures++;
      out.push({
        type: 'failed',
        token: o.token,
        sequence: o.sequence,
        transmissions: o.transmissions,
      });
      return;
    }
    o.transmissions++;
    o.ackDeadline = now + this.params.ackTimeoutUs;
    this.lastTxAt = now;
    this.stats.txRetransmissions++;
    out.push({ type: 'transmit', pdu: o.pdu, ack: false });
  }
}
