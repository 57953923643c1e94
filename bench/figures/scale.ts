/**
 * The scale scenario: many stations (each its own MAC, all from the load generator) on one port
 * of one nNVE process. It gives three figures:
 *
 * - P1 (many stations): associations/s while setting up stations x VSIs, with at most
 *   `concurrency` stations in flight (closed loop);
 * - P3: RSS of the nNVE with every VSI, bytes per VSI over the RSS with no VSI, and the CPU the
 *   nNVE uses over a window of steady keep-alives;
 * - P4: SIGKILL of the nNVE and an immediate restart on the same state: time until keep-alives
 *   are answered again, time until every VSI had one answered, VSIs lost, VLAN ids changed.
 */
import { monotonicUs } from '../../src/daemon/clock.js';
import { keepAliveUs } from '../../src/vdp/types.js';
import { sleep, waitUntil } from '../../test/harness/proc.js';
import { EVB, GOALS, type Goal, type Sizes } from '../lib/config.js';
import { associateAll, requestId } from '../lib/drive.js';
import { benchSpec, stationMac, UPLINK, type RequestRecord } from '../lib/loadgen.js';
import { NnveProcess, waitTsis, type NnveStats } from '../lib/nnve.js';
import { BRIDGE_IF, type BenchPair } from '../lib/pair.js';
import { round } from '../lib/stats.js';
import type { ManyStations } from './p1.js';
import { startOurs, stationSpecs, vniOf, type Ours } from './common.js';

const MB = 1024 * 1024;

export interface P3Result {
  rss_mb: number;
  bytes_per_vsi: number;
  /** CPU of the nNVE over the window of steady keep-alives, % of one core. */
  keepalive_cpu_pct: number;
  /** lldpad's bridge, from its P1 run (few VSIs: page granularity makes it rough). */
  lldpad_bytes_per_vsi: number | null;
  goal: Goal;
  vsis: number;
  stations: number;
  rka: number;
  keepalive_period_s: number;
  window_s: number;
  rss_baseline_mb: number;
  rss_peak_mb: number;
  keepalives_per_s: number;
  cpu_us_per_keepalive: number;
  keepalive_failures: number;
  /** One GET /v1/stats with every VSI held (it walks all of them), ms. */
  api_stats_ms: number;
  /** RSS after five GET /v1/stats (each builds a view of every VSI: V8 keeps the heap grown). */
  rss_after_api_mb: number;
  /** Station counters: changes from the end of the setup to the end of the window; bridge counters: since it started. */
  diagnostics: Diagnostics;
}

export interface P4Result {
  /** SIGKILL -> the first answer of the restarted nNVE to a probe (one request every 50 ms). */
  recovery_s: number | null;
  /** SIGKILL -> first VDP PDU of the restarted nNVE to any station (depends on the rhythm). */
  first_pdu_s: number | null;
  /** Probe requests sent until one was answered. */
  probes: number;
  keepalive_period_s: number;
  /** SIGKILL -> the restarted nNVE's API answers (state reloaded). */
  restart_s: number;
  /** SIGKILL -> every VSI had a keep-alive answered (bounded below by the keep-alive period). */
  all_answered_s: number | null;
  vsis_lost: number;
  vlan_ids_changed: number;
  goal: Goal;
  vsis_before: number;
  vsis_after: number;
  /** VSIs the stations saw go to Init (bridge de-associate or refused keep-alive). */
  station_lost: number;
  keepalive_failures_during_outage: number;
  keepalive_failures_after_recovery: number;
  /** RSS of the restarted nNVE once every VSI had a keep-alive answered (state reloaded from SQLite). */
  rss_after_restart_mb: number;
  /** Counters at the end (the restarted nNVE's counters start at 0; the stations' are since the kill). */
  diagnostics: Diagnostics;
}

export interface ScaleResult {
  many: ManyStations;
  p3: P3Result;
  p4: P4Result;
}

/** Counters that explain failures: the stations' side and the bridge's. */
export type Diagnostics = Record<string, number>;

/** The stations' counters (no API call). */
function stationSide(o: Ours): Diagnostics {
  const c = o.gen.counters;
  return {
    stationKeepAliveTimeouts: c.keepAliveTimeouts,
    stationKeepAliveRefused: c.keepAliveRefused,
    stationLastRefusalReason: c.lastRefusalReason ?? -1,
    stationEcpRetransmissions: o.gen.ecpStat('txRetransmissions'),
    stationEcpFailures: o.gen.ecpStat('failures'),
    stationVdpRetries: o.gen.vdpStat('retries'),
    stationLinkRxDropped: o.gen.link.stats().rxDropped,
  };
}

/** Both sides; the bridge's counters are cumulative since the daemon started. */
async function snapshot(o: Ours, d: NnveProcess): Promise<Diagnostics> {
  const s = await d.stats().catch(() => undefined);
  const ports = (await d.get('/v1/ports').catch(() => [])) as {
    stats: { rxDropped: number; txErrors: number };
  }[];
  return {
    ...stationSide(o),
    bridgeEcpRetransmissions: s?.ecp['txRetransmissions'] ?? -1,
    bridgeEcpFailures: s?.ecp['failures'] ?? -1,
    bridgeRxDuplicates: s?.ecp['rxDuplicates'] ?? -1,
    bridgeRefused: s?.vdp['refused'] ?? -1,
    bridgeExpiries: s?.vdp['expiries'] ?? -1,
    bridgeQueueOverflow: s?.vdp['queueOverflow'] ?? -1,
    bridgeLinkRxDropped: ports.reduce((a, p) => a + p.stats.rxDropped, 0),
  };
}

function diff(a: Diagnostics, b: Diagnostics): Diagnostics {
  const out: Diagnostics = {};
  for (const [k, v] of Object.entries(b)) out[k] = k.includes('Reason') ? v : v - (a[k] ?? 0);
  return out;
}

function tsiCount(s: NnveStats): number {
  return Object.values(s.tsis).reduce((a, b) => a + b, 0);
}

/** VN -> VID of every VAP. */
async function vidMap(d: NnveProcess): Promise<Map<number, number>> {
  return new Map((await d.vaps()).map((v) => [v.vni, v.vid]));
}

/** VSIs (not Init) held by the generator's stations, and how many had a keep-alive answered after `sinceUs`. */
function answeredSince(o: Ours, sinceUs: number, kaUs: number): { held: number; answered: number } {
  let held = 0;
  let answered = 0;
  o.gen.nodes.forEach((node, i) => {
    const failed = o.gen.kaFailedAt[i]!;
    for (const v of node.vsis(UPLINK)) {
      if (v.state === 'init') continue;
      held++;
      if (v.keepAliveAt === undefined) continue; // a keep-alive is in flight
      const at = v.keepAliveAt - kaUs; // when the last answer (or failure) was handled
      if (at > sinceUs && failed.get(v.key) !== at) answered++;
    }
  });
  return { held, answered };
}

export async function runScale(pair: BenchPair, sizes: Sizes): Promise<ScaleResult> {
  const evb = { ...EVB, rka: sizes.p3Rka };
  const kaUs = keepAliveUs(evb);
  const stateDir = pair.lab.file('scale-state');
  // One more station than the figure's: it only sends the probes of P4.
  const probe = sizes.stations;
  const o = await startOurs(pair, {
    stations: sizes.stations + 1,
    profile: 'splitnve',
    evb,
    stateDir,
  });
  let nnve = o.nnve;
  try {
    const rss0 = nnve.memory().rss;
    const total = sizes.stations * sizes.vsisPerStation;
    const vns = Math.min(1000, total);
    const specs = Array.from({ length: sizes.stations }, (_, i) =>
      stationSpecs(i, sizes.vsisPerStation, vns, i * sizes.vsisPerStation),
    );

    // P1, many stations: the setup.
    const c0 = nnve.cpu();
    const setupStart = performance.now();
    const r = await associateAll(o.gen, specs, {
      concurrency: sizes.concurrency,
      timeoutMs: 600_000,
      rounds: 3,
    });
    const setupEnd = performance.now();
    const c1 = nnve.cpu();
    const many: ManyStations = {
      stations: sizes.stations,
      vsisPerStation: sizes.vsisPerStation,
      concurrency: sizes.concurrency,
      ops_per_s: round((r.ok * 1000) / Math.max(1, r.ms), 0),
      accepted: r.ok,
      failedFirst: r.failedFirst,
      failed: r.failed,
      seconds: round(r.ms / 1000, 2),
      bridgeCpuUsPerAssoc: round(((c1.cpuMs - c0.cpuMs) * 1000) / Math.max(1, r.ok), 1),
    };
    // The setup's request records are not needed any more: a smaller heap, shorter GC pauses
    // of the generator (its ACKs are late while it pauses).
    o.gen.requests.clear();

    // P3: steady keep-alives once every VSI has been through one keep-alive period. No API
    // call before the readings: GET /v1/stats builds a view of every VSI, and V8 keeps the
    // heap it grew for that garbage, which would show as RSS.
    const diag0 = stationSide(o);
    await sleep(Math.max(0, setupEnd + kaUs / 1000 + 500 - performance.now()));
    const failures0 = o.gen.counters.keepAliveFailures;
    const ka0 = o.gen.vdpStat('keepAlives');
    const w0 = nnve.cpu();
    // A whole number of keep-alive periods: keep-alives come in the rhythm of the setup.
    await sleep((Math.max(1, Math.round((sizes.p3WindowS * 1e6) / kaUs)) * kaUs) / 1000);
    const w1 = nnve.cpu();
    const ka1 = o.gen.vdpStat('keepAlives');
    const mem = nnve.memory();
    const tStats = performance.now();
    await waitTsis(nnve, r.ok, 60_000);
    const apiStatsMs = performance.now() - tStats;
    const diag1 = await snapshot(o, nnve);
    for (let i = 0; i < 3; i++) await nnve.stats();
    const memAfterApi = nnve.memory();
    const windowS = (w1.at - w0.at) / 1000;
    const kaPerS = (ka1 - ka0) / windowS;
    const p3: P3Result = {
      rss_mb: round(mem.rss / MB, 1),
      bytes_per_vsi: round((mem.rss - rss0) / Math.max(1, r.ok), 0),
      keepalive_cpu_pct: round((100 * (w1.cpuMs - w0.cpuMs)) / (w1.at - w0.at), 2),
      lldpad_bytes_per_vsi: null,
      goal: { text: `<= ${GOALS.p3RssMb} MB RSS`, met: mem.rss / MB <= GOALS.p3RssMb },
      vsis: r.ok,
      stations: sizes.stations,
      rka: evb.rka,
      keepalive_period_s: round(kaUs / 1e6, 2),
      window_s: round(windowS, 1),
      rss_baseline_mb: round(rss0 / MB, 1),
      rss_peak_mb: round(mem.hwm / MB, 1),
      keepalives_per_s: round(kaPerS, 0),
      cpu_us_per_keepalive: round(((w1.cpuMs - w0.cpuMs) * 1000) / Math.max(1, ka1 - ka0), 1),
      keepalive_failures: o.gen.counters.keepAliveFailures - failures0,
      api_stats_ms: round(apiStatsMs, 1),
      rss_after_api_mb: round(memAfterApi.rss / MB, 1),
      diagnostics: diff(diag0, diag1),
    };

    // P4: SIGKILL, restart at once on the same state directory.
    const before = await vidMap(nnve);
    const vsisBefore = tsiCount(await nnve.stats());
    o.gen.counters.lost = 0;
    o.gen.counters.vidChanges = 0;
    o.gen.counters.keepAliveFailures = 0;
    o.gen.counters.keepAliveTimeouts = 0;
    o.gen.counters.keepAliveRefused = 0;
    o.gen.counters.lastRefusalReason = undefined;
    const diagKill = await snapshot(o, nnve);
    for (const m of o.gen.kaFailedAt) m.clear();
    // Keep-alives repeat the rhythm of the setup: dense while it lasted, then none until the
    // next period. Kill in the middle of the dense part, so that the outage meets keep-alives.
    const periodMs = kaUs / 1000;
    const setupMs = setupEnd - setupStart;
    const phase = setupStart + setupMs / 2;
    const killAt = phase + Math.ceil((performance.now() - phase) / periodMs) * periodMs;
    await sleep(Math.max(0, killAt - performance.now()));
    let spawnUs = Infinity;
    let firstUs: number | undefined;
    const off = o.gen.onBridgePdu((now) => {
      if (firstUs === undefined && now >= spawnUs) firstUs = now;
    });
    // Keep-alives come in the rhythm of the setup (there may be none for seconds): a probe
    // station asks for a new VSI every 50 ms until one is answered, so the time the restarted
    // nNVE answers again is measured whatever the rhythm.
    const probes: RequestRecord[] = [];
    let probeN = 0;
    const probeTimer = setInterval(() => {
      if (probes.some((p) => p.ok)) return;
      const k = probeN++;
      probes.push(
        o.gen.request(probe, {
          mode: 3,
          spec: benchSpec(probe, k, vniOf(k, vns)),
          requestId: requestId('probe'),
        }),
      );
    }, 50);
    const killUs = monotonicUs();
    await nnve.kill();
    spawnUs = monotonicUs();
    nnve = await NnveProcess.start(pair.lab, pair.api, {
      ...nnve.opts,
      netns: pair.br,
      ifname: BRIDGE_IF,
      stateDir,
    });
    const upUs = monotonicUs();
    const budgetMs = (2 * kaUs) / 1000 + 30_000;
    await waitUntil('an answer from the restarted nNVE', () => probes.some((p) => p.ok), {
      timeoutMs: budgetMs,
      intervalMs: 5,
    }).catch(() => undefined);
    clearInterval(probeTimer);
    off();
    const answered = probes.filter((p) => p.ok).map((p) => p.t1!);
    const answerMs = answered.length > 0 ? Math.min(...answered) : undefined;
    const failuresOutage = o.gen.counters.keepAliveFailures;
    let allUs: number | undefined;
    const deadline = performance.now() + budgetMs;
    while (performance.now() < deadline) {
      const a = answeredSince(o, killUs, kaUs);
      if (a.answered >= a.held) {
        allUs = monotonicUs();
        break;
      }
      await sleep(250);
    }
    const rssRestarted = nnve.memory().rss;
    const after = await vidMap(nnve);
    const probeStation = stationMac(probe);
    const perStation = (await nnve.get('/v1/stations')) as { station: string; vsis: number }[];
    const probeVsis = perStation.find((x) => x.station === probeStation)?.vsis ?? 0;
    const vsisAfter = tsiCount(await nnve.stats()) - probeVsis;
    let changed = 0;
    for (const [vni, vid] of before) if (after.get(vni) !== vid) changed++;
    const lateFailures = [...o.gen.kaFailedAt]
      .flatMap((m) => [...m.values()])
      .filter((t) => firstUs !== undefined && t > firstUs + 500_000).length;
    const recoveryS = answerMs === undefined ? null : round((answerMs * 1000 - killUs) / 1e6, 2);
    // A VSI that expired and came back with its station's next keep-alive was lost meanwhile.
    const expired = (await nnve.stats()).vdp['expiries'] ?? 0;
    const lost = Math.max(0, vsisBefore - vsisAfter, expired);
    const p4: P4Result = {
      recovery_s: recoveryS,
      restart_s: round((upUs - killUs) / 1e6, 2),
      first_pdu_s: firstUs === undefined ? null : round((firstUs - killUs) / 1e6, 2),
      probes: probes.length,
      keepalive_period_s: round(kaUs / 1e6, 2),
      all_answered_s: allUs === undefined ? null : round((allUs - killUs) / 1e6, 2),
      vsis_lost: Math.max(lost, o.gen.counters.lost),
      vlan_ids_changed: changed,
      goal: {
        text: `answering again <= ${GOALS.p4RecoveryS} s after SIGKILL, 0 lost, 0 changed`,
        met:
          recoveryS !== null &&
          recoveryS <= GOALS.p4RecoveryS &&
          lost === 0 &&
          o.gen.counters.lost === 0 &&
          changed === 0,
      },
      vsis_before: vsisBefore,
      vsis_after: vsisAfter,
      station_lost: o.gen.counters.lost,
      keepalive_failures_during_outage: failuresOutage,
      keepalive_failures_after_recovery: lateFailures,
      rss_after_restart_mb: round(rssRestarted / MB, 1),
      diagnostics: diff(
        Object.fromEntries(
          Object.entries(diagKill).map(([k, v]) => [k, k.startsWith('bridge') ? 0 : v]),
        ),
        await snapshot(o, nnve),
      ),
    };
    return { many, p3, p4 };
  } finally {
    await o.gen.close();
    await nnve.stop();
  }
}
