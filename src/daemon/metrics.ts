/**
 * Prometheus metrics of a daemon (prom-client, one registry per daemon), served at /metrics.
 *
 * One source of truth per kind of number (docs/metrics.md lists every metric):
 * - counters of things that happen come from the same node events the daemon logs (in the
 *   daemon's `onEvents`, next to the log call) or from the event log itself
 *   (`splitnve_events_total`, one per logged event type);
 * - counters of what was on the wire come from the frames the driver really received and sent
 *   (FrameTap), so PDUs, retransmissions and latencies are measured where they happen;
 * - gauges (TSIs by state, VAPs, VLAN pools, …) are read at scrape time from the same views the
 *   HTTP API shows.
 */
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type CounterConfiguration,
} from 'prom-client';
import type { BridgeNodeEvent } from '../node/bridge-node.js';
import type { StationNodeEvent } from '../node/station-node.js';
import { tsiState } from '../vdp/types.js';
import { reasonName } from '../wire/status.js';
import { VSI_TLV_NAMES } from '../wire/vdp.js';
import { FrameTap, type Role } from './frame-tap.js';

/** Seconds: from sub-millisecond answers on a LAN to retried requests. */
export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** Counters of node events: name -> help and labels (created at start, so they show at 0). */
const EVENT_COUNTERS: Record<string, { help: string; labels: string[]; role?: Role }> = {
  splitnve_tsi_transitions_total: {
    help: 'TSI state changes by from/to TSI state (Init, Associated, Activated) and cause.',
    labels: ['from', 'to', 'cause'],
  },
  splitnve_keepalive_expiries_total: {
    help: 'VSIs dropped by the bridge because their keep-alive did not come in time.',
    labels: ['port'],
    role: 'bridge',
  },
  splitnve_keepalive_failures_total: {
    help: 'Keep-alives of the station that got no answer (timeout) or were refused.',
    labels: ['port', 'error'],
    role: 'station',
  },
  splitnve_vdp_requests_total: {
    help: 'VDP requests of the station by mode and result (ok, refused, timeout, ...).',
    labels: ['mode', 'result'],
    role: 'station',
  },
  splitnve_vdp_reasons_total: {
    help: 'VDP reason codes of refusals sent (bridge) or received (station).',
    labels: ['direction', 'reason', 'name'],
  },
  splitnve_vdp_tlvs_dropped_total: {
    help: 'VDP TLVs or PDUs dropped as invalid.',
    labels: ['port'],
    role: 'bridge',
  },
  splitnve_peer_changes_total: {
    help: 'EVB peers up, down (TTL expired or zero) and EVB values negotiated, per port.',
    labels: ['port', 'change'],
  },
  splitnve_stations_new_total: {
    help: 'Stations first heard (ECP sessions created).',
    labels: ['port'],
    role: 'bridge',
  },
  splitnve_auth_failures_total: {
    help: 'PDUs dropped because they failed authentication, by reason.',
    labels: ['port', 'reason'],
  },
  splitnve_auth_results_total: {
    help: 'Authentication status changes of peers (authenticated, unsigned).',
    labels: ['status'],
  },
  splitnve_ecp_failures_total: {
    help: 'ECP requests given up after R retransmissions without an ACK.',
    labels: ['port'],
  },
  splitnve_frames_dropped_total: {
    help: 'Frames dropped by the node (not addressed to it, malformed).',
    labels: ['port'],
  },
};

type Labels = Record<string, string | number>;
type LinkEvent = Extract<
  BridgeNodeEvent | StationNodeEvent,
  {
    type:
      | 'peer-up'
      | 'peer-down'
      | 'negotiated'
      | 'auth-failed'
      | 'auth'
      | 'ecp-failed'
      | 'frame-dropped';
  }
>;
const LINK_EVENTS: ReadonlySet<string> = new Set<LinkEvent['type']>([
  'peer-up',
  'peer-down',
  'negotiated',
  'auth-failed',
  'auth',
  'ecp-failed',
  'frame-dropped',
]);
function isLinkEvent<E extends { type: string }>(e: E): e is E & LinkEvent {
  return LINK_EVENTS.has(e.type);
}

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly tap: FrameTap;
  private readonly counters = new Map<string, Counter>();

  private readonly frames: Counter;
  private readonly ecpPdus: Counter;
  private readonly retransmissions: Counter;
  private readonly tlvs: Counter;
  private readonly latency: Histogram;
  private readonly events: Counter;

  constructor(
    readonly daemon: string,
    readonly role: Role,
    opts: { readonly defaultMetrics?: boolean; readonly version?: string } = {},
  ) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.gauge(
      'splitnve_info',
      'Which daemon this is (value 1).',
      ['daemon', 'role', 'version'],
      () => [[{ daemon, role, version: opts.version ?? 'unknown' }, 1]],
    );
    this.frames = this.counter(
      'splitnve_frames_total',
      'Frames received (rx) and sent (tx) per port, by protocol.',
      ['direction', 'port', 'protocol'],
    );
    this.ecpPdus = this.counter(
      'splitnve_ecp_pdus_total',
      'ECP PDUs received and sent, by operation (request, ack), retransmissions included.',
      ['direction', 'port', 'op'],
    );
    this.retransmissions = this.counter(
      'splitnve_ecp_retransmissions_total',
      'ECP requests sent again (tx) or received again (rx, duplicates), byte for byte.',
      ['direction', 'port'],
    );
    this.tlvs = this.counter(
      'splitnve_vdp_tlvs_total',
      'VDP TLVs received and sent (first transmission only), by TLV type and kind.',
      ['direction', 'port', 'tlv', 'kind'],
    );
    this.latency = new Histogram({
      name: 'splitnve_vdp_request_duration_seconds',
      help:
        role === 'bridge'
          ? 'VDP request received -> its response sent, by request mode.'
          : 'VDP request sent -> its response received (one attempt), by request mode.',
      labelNames: ['role', 'mode'],
      buckets: LATENCY_BUCKETS,
      registers: [this.registry],
    });
    this.events = this.counter(
      'splitnve_events_total',
      'Event log records by event type (docs/events.md), whatever the log level.',
      ['event'],
    );
    for (const [name, d] of Object.entries(EVENT_COUNTERS))
      if (!d.role || d.role === role) this.counter(name, d.help, d.labels);
    this.tap = new FrameTap(role, {
      frame: (d, port, protocol) => this.frames.inc({ direction: d, port, protocol }),
      ecp: (d, port, op, dup) => {
        this.ecpPdus.inc({ direction: d, port, op });
        if (dup) this.retransmissions.inc({ direction: d, port });
      },
      tlv: (d, port, tlv, kind) => this.tlvs.inc({ direction: d, port, tlv, kind }),
      latency: (mode, s) => this.latency.observe({ role, mode }, s),
    });
  }

  /** A counter in this registry (the same one when asked twice). */
  counter(name: string, help: string, labelNames: string[] = []): Counter {
    let c = this.counters.get(name);
    if (!c) {
      const cfg: CounterConfiguration<string> = {
        name,
        help,
        labelNames,
        registers: [this.registry],
      };
      c = new Counter(cfg);
      this.counters.set(name, c);
    }
    return c;
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const c = this.counters.get(name);
    if (!c) throw new Error(`metrics: no counter ${name}`);
    c.inc(labels, by);
  }

  /** A gauge whose values are read at scrape time. */
  gauge(
    name: string,
    help: string,
    labelNames: string[],
    read: () => Iterable<readonly [Labels, number]>,
  ): Gauge {
    return new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [labels, v] of read()) this.set(labels, v);
      },
    });
  }

  /** A counter whose value is read at scrape time from a monotonic count (since start). */
  counterFrom(
    name: string,
    help: string,
    labelNames: string[],
    read: () => Iterable<readonly [Labels, number]>,
  ): Counter {
    return new Counter({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [labels, v] of read()) if (v > 0) this.inc(labels, v);
      },
    });
  }

  /** Every event log record. */
  record(event: string): void {
    this.events.inc({ event });
  }

  /** One event of the bridge node, as logged by src/nnve/events.ts. */
  bridgeEvent(e: BridgeNodeEvent): void {
    if (isLinkEvent(e)) return this.linkEvent(e.port, e);
    switch (e.type) {
      case 'tsi':
        this.c('splitnve_tsi_transitions_total', {
          from: tsiState(e.from),
          to: tsiState(e.to),
          cause: e.cause,
        });
        if (e.cause === 'keepalive-expired')
          this.c('splitnve_keepalive_expiries_total', { port: e.port });
        break;
      case 'refused':
        this.reason('sent', e.reason);
        break;
      case 'dropped':
        this.c('splitnve_vdp_tlvs_dropped_total', { port: e.port });
        break;
      case 'station-new':
        this.c('splitnve_stations_new_total', { port: e.port });
        break;
      default:
        break;
    }
  }

  /** The events both nodes have, on a port (bridge) or an uplink (station). */
  private linkEvent(port: string, e: LinkEvent): void {
    switch (e.type) {
      case 'peer-up':
      case 'peer-down':
      case 'negotiated':
        this.peer(port, e.type);
        break;
      case 'auth-failed':
        this.c('splitnve_auth_failures_total', { port, reason: e.reason });
        break;
      case 'auth':
        this.c('splitnve_auth_results_total', { status: e.status });
        break;
      case 'ecp-failed':
        this.c('splitnve_ecp_failures_total', { port });
        break;
      case 'frame-dropped':
        this.c('splitnve_frames_dropped_total', { port });
        break;
    }
  }

  /** One event of the station node, as logged by src/tnve/events.ts. */
  stationEvent(e: StationNodeEvent): void {
    if (isLinkEvent(e)) return this.linkEvent(e.uplink, e);
    switch (e.type) {
      case 'vsi-state':
        this.c('splitnve_tsi_transitions_total', {
          from: tsiState(e.from),
          to: tsiState(e.to),
          cause: e.cause,
        });
        break;
      case 'request-result':
        this.c('splitnve_vdp_requests_total', {
          mode: VSI_TLV_NAMES[e.mode],
          result: e.ok ? 'ok' : e.error,
        });
        if (!e.ok && e.reason !== undefined) this.reason('received', e.reason);
        break;
      case 'keepalive-failed':
        this.c('splitnve_keepalive_failures_total', { port: e.uplink, error: e.error });
        if (e.reason !== undefined) this.reason('received', e.reason);
        break;
      default:
        break;
    }
  }

  private c(name: string, labels: Labels): void {
    const d = EVENT_COUNTERS[name]!;
    this.counter(name, d.help, d.labels).inc(labels);
  }

  private reason(direction: 'sent' | 'received', reason: number): void {
    this.c('splitnve_vdp_reasons_total', {
      direction,
      reason: String(reason),
      name: reasonName(reason),
    });
  }

  private peer(port: string, change: 'peer-up' | 'peer-down' | 'negotiated'): void {
    this.c('splitnve_peer_changes_total', {
      port,
      change: change === 'negotiated' ? 'negotiated' : change.slice(5),
    });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
