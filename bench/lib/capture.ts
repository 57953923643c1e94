/**
 * Packet capture with tcpdump on one interface in a namespace (kernel timestamps, µs), and the
 * analysis the benchmarks need: for every VSI TLV the time its request was first seen and the
 * time the response carrying it was first seen, and ECP ACK delays per direction.
 */
import { readFileSync } from 'node:fs';
import type { Lab } from '../../test/harness/netns.js';
import type { ManagedProcess } from '../../test/harness/proc.js';
import { waitUntil } from '../../test/harness/proc.js';
import { decodeEcp, ECP_OP_ACK, ECP_OP_REQUEST } from '../../src/wire/ecp.js';
import { decodeEthernet, ETHERTYPE_ECP } from '../../src/wire/ethernet.js';
import { DEFAULT_WIRE_OPTIONS } from '../../src/wire/options.js';
import { readCapture } from '../../src/wire/pcap.js';
import { decodeStatus, STATUS_RESPONSE } from '../../src/wire/status.js';
import { parseVdpPdu } from '../../src/vdp/pdu.js';

let seq = 0;

function isGroup(mac: string): boolean {
  return (parseInt(mac.slice(0, 2), 16) & 1) === 1;
}

export class Capture {
  private constructor(
    readonly proc: ManagedProcess,
    readonly file: string,
  ) {}

  /** Starts tcpdump on `ifname` in `netns` (ECP frames only) and waits until it listens. */
  static async start(lab: Lab, netns: string, ifname: string): Promise<Capture> {
    const file = lab.file(`capture-${++seq}.pcap`);
    const proc = lab.spawn({
      name: `tcpdump-${seq}`,
      netns,
      cmd: 'tcpdump',
      // -Z root: keep root so that the file in the lab's private directory can be written.
      args: [
        '-i',
        ifname,
        '-w',
        file,
        '-U',
        '--immediate-mode',
        '-s',
        '0',
        '-B',
        '16384',
        '-Z',
        'root',
        '-n',
      ],
    });
    const c = new Capture(proc, file);
    await proc.waitFor(
      `tcpdump on ${ifname} (netns ${netns}) to listen`,
      () => /listening on/.test(proc.logTail(5)),
      { timeoutMs: 10_000, intervalMs: 10 },
    );
    return c;
  }

  /** Stops tcpdump (it flushes the file) and returns the analysis. */
  async stop(): Promise<CaptureAnalysis> {
    // Let the last frames reach the file before stopping.
    await new Promise((r) => setTimeout(r, 100));
    await this.proc.stop(5000);
    await waitUntil('capture file', () => readFileSync(this.file).length >= 24, {
      timeoutMs: 5000,
    });
    const dropped = /(\d+) packets? dropped by kernel/.exec(this.proc.logTail(10));
    return {
      ...analyze(readFileSync(this.file)),
      droppedByKernel: dropped ? Number(dropped[1]) : 0,
    };
  }
}

export interface TlvTimes {
  /** First time a request TLV for this VSI was seen (µs since the epoch). */
  requestUs: number;
  /** First response TLV for it after the request (µs), if any. */
  responseUs?: number;
  /** Response status octet (0 = success without flags besides the response bit). */
  status?: number;
}

export interface CaptureAnalysis {
  readonly frames: number;
  readonly ecpFrames: number;
  /** Per `vsiKey|mode`: the request and response times (only the first of each). */
  readonly tlvs: Map<string, TlvTimes>;
  /** ECP ACK delays (ms): how long the bridge took to ACK stations' PDUs, and vice versa. */
  readonly bridgeAckMs: number[];
  readonly stationAckMs: number[];
  /** Retransmitted ECP PDUs (same sender, same sequence) per direction. */
  readonly retransmissionsToBridge: number;
  readonly retransmissionsFromBridge: number;
  readonly firstUs: number;
  readonly lastUs: number;
  droppedByKernel?: number;
}

/**
 * Reads a capture of one bridge port: frames whose source is `bridgeMac` come from the bridge,
 * the rest from stations. Without `bridgeMac`, the sender of the first response TLV is taken.
 */
export function analyze(file: Uint8Array, bridgeMac?: string): CaptureAnalysis {
  const cap = readCapture(file);
  if (!cap.ok) throw new Error(`capture: ${cap.error.message}`);
  const tlvs = new Map<string, TlvTimes>();
  const sent = new Map<string, number>(); // sender|seq -> first tx time
  const lastSender = new Map<string, string>(); // br|seq or st|seq -> sender|seq
  const ackFromBridge: number[] = [];
  const ackFromStations: number[] = [];
  let rtxTo = 0;
  let rtxFrom = 0;
  let ecpFrames = 0;
  let bridge = bridgeMac;
  let firstUs = Infinity;
  let lastUs = 0;
  for (const rec of cap.value) {
    const t = Math.round((rec.time ?? 0) * 1e6);
    firstUs = Math.min(firstUs, t);
    lastUs = Math.max(lastUs, t);
    const eth = decodeEthernet(rec.data);
    if (!eth.ok || eth.value.header.ethertype !== ETHERTYPE_ECP) continue;
    const e = decodeEcp(eth.value.payload);
    if (!e.ok) continue;
    ecpFrames++;
    const src = eth.value.header.source;
    const dst = eth.value.header.destination;
    const h = e.value.header;
    if (h.op === ECP_OP_ACK) {
      // An ACK goes back to the PDU's sender; lldpad sends it to the group address instead:
      // then the PDU is the last one with that sequence from the other side.
      const fromBridge = bridge !== undefined && src === bridge;
      const key = isGroup(dst)
        ? lastSender.get(`${fromBridge ? 'st' : 'br'}|${h.sequence}`)
        : `${dst}|${h.sequence}`;
      const t0 = key === undefined ? undefined : sent.get(key);
      if (key !== undefined && t0 !== undefined) {
        (fromBridge ? ackFromBridge : ackFromStations).push((t - t0) / 1000);
        sent.delete(key);
      }
      continue;
    }
    if (h.op !== ECP_OP_REQUEST) continue;
    const key = `${src}|${h.sequence}`;
    const p = parseVdpPdu(e.value.ulpdu, DEFAULT_WIRE_OPTIONS);
    const isResponse = p.ok && p.value.vsis.some((v) => (v.tlv.status & STATUS_RESPONSE) !== 0);
    if (bridge === undefined && isResponse) bridge = src;
    const fromBridge = bridge !== undefined && src === bridge;
    if (sent.has(key)) {
      if (fromBridge) rtxFrom++;
      else rtxTo++;
      continue; // a retransmission: its TLVs were seen with the first copy
    }
    sent.set(key, t);
    lastSender.set(`${fromBridge ? 'br' : 'st'}|${h.sequence}`, key);
    if (!p.ok) continue;
    for (const v of p.value.vsis) {
      const k = `${v.key}|${v.tlv.type}`;
      if ((v.tlv.status & STATUS_RESPONSE) === 0) {
        if (!fromBridge && !tlvs.has(k)) tlvs.set(k, { requestUs: t });
      } else {
        const r = tlvs.get(k);
        if (r && r.responseUs === undefined) {
          r.responseUs = t;
          r.status = v.tlv.status;
        }
      }
    }
  }
  return {
    frames: cap.value.length,
    ecpFrames,
    tlvs,
    bridgeAckMs: ackFromBridge,
    stationAckMs: ackFromStations,
    retransmissionsToBridge: rtxTo,
    retransmissionsFromBridge: rtxFrom,
    firstUs: Number.isFinite(firstUs) ? firstUs : 0,
    lastUs,
  };
}

export interface CaptureThroughput {
  /** Request TLVs seen, and how many got a successful response. */
  readonly requests: number;
  readonly succeeded: number;
  /** First request frame to last successful response frame, ms. */
  readonly ms: number;
  readonly perSecond: number;
}

function succeeded(status: number): boolean {
  const st = decodeStatus(status);
  return st.response && st.reason === 0;
}

/** Throughput of the requests in a capture (every VSI TLV of one mode, e.g. 3 = Associate). */
export function throughput(a: CaptureAnalysis, mode = 3): CaptureThroughput {
  let first = Infinity;
  let last = 0;
  let requests = 0;
  let ok = 0;
  for (const [k, v] of a.tlvs) {
    if (!k.endsWith(`|${mode}`)) continue;
    requests++;
    first = Math.min(first, v.requestUs);
    if (v.responseUs !== undefined && v.status !== undefined && succeeded(v.status)) {
      ok++;
      last = Math.max(last, v.responseUs);
    }
  }
  const ms = ok > 0 ? (last - first) / 1000 : NaN;
  return { requests, succeeded: ok, ms, perSecond: ok > 0 ? (ok * 1000) / ms : 0 };
}

/** Request-to-response times (ms) of every VSI TLV that got a response, of one mode. */
export function responseTimesMs(a: CaptureAnalysis, mode = 3): number[] {
  const out: number[] = [];
  for (const [k, v] of a.tlvs) {
    if (!k.endsWith(`|${mode}`) || v.responseUs === undefined) continue;
    out.push((v.responseUs - v.requestUs) / 1000);
  }
  return out;
}
