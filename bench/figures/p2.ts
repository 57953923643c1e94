/**
 * P2 latency: request -> response of fresh Associates offered at a fixed rate.
 *
 * At the bridge: from a capture on the bridge's interface, the time between the frame carrying a
 * VSI's request (first copy) and the frame carrying its response. End to end: at the station,
 * from handing the request to the station machine to its result.
 *
 * - ours at the goal's rate (1k ops/s over several stations, splitnve profile);
 * - lldpad's bridge at a rate it sustains (one station, 802.1Qbg profile: lldpad needs >= 5 ms
 *   between PDUs and one VSI per PDU, and sends at most one PDU per ACK timer);
 * - ours in exactly lldpad's conditions (same station, rate, profile), for the ratio.
 * The station is always the project's load generator, so both bridges see the same frames.
 *
 * For ours, the share of requests over 0.5 / 1 / 2.5 / 5 ms is given twice: on the wire (the
 * capture) and inside the daemon (its own request -> response histogram, from reading the frame
 * to sending the answer), so that a tail the machine adds (the daemon not on a CPU when a frame
 * arrives) is told apart from one the daemon's work makes.
 */
import { Lldpad } from '../../test/harness/lldpad.js';
import { waitUntil } from '../../test/harness/proc.js';
import { Capture, responseTimesMs } from '../lib/capture.js';
import { EVB, GOALS, LLDPAD_EVB, LLDPAD_VERBOSITY, type Goal, type Sizes } from '../lib/config.js';
import { paced } from '../lib/drive.js';
import { benchSpec, LoadGen } from '../lib/loadgen.js';
import { BRIDGE_IF, BRIDGE_MAC, STATION_IF, type BenchPair } from '../lib/pair.js';
import { cpuShare, cpuTimes, runQueueWaitMs, schedStat } from '../lib/procstat.js';
import { histogramBuckets, shareAbove } from '../lib/prom.js';
import { distribution, ratio, round, type Distribution } from '../lib/stats.js';
import { startOurs, stopOurs, vniOf } from './common.js';
import type { Profile } from '../../src/vdp/types.js';

export interface LatencyRun {
  profile: Profile;
  stations: number;
  ratePerS: number;
  requests: number;
  ok: number;
  /** At the bridge (capture), ms. */
  bridge: Distribution;
  /** End to end at the station, ms. */
  station: Distribution;
  retransmissions: { toBridge: number; fromBridge: number };
  /**
   * How long the bridge process, once runnable, waited for a CPU on average (ms per time it
   * ran): on a busy machine this, not the bridge's own work, sets the tail.
   */
  bridgeRunQueueWaitMs: number;
  /** Bridge process CPU over the run, % of one core. */
  bridgeCpuPct: number;
  /** Percent of the requests over each bound, on the wire (capture at the bridge). */
  wireAbove: Record<string, number>;
  /** The same inside our daemon (its splitnve_vdp_request_duration_seconds); not for lldpad. */
  daemonAbove?: Record<string, number>;
}

/** Bounds (seconds) of the shares over; buckets of the daemon's latency histogram. */
const BOUNDS = [0.0005, 0.001, 0.0025, 0.005];
const HISTOGRAM = 'splitnve_vdp_request_duration_seconds';

export interface P2Result {
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  station_p50_ms: number;
  station_p99_ms: number;
  station_max_ms: number;
  lldpad_p50_ms: number;
  lldpad_p99_ms: number;
  lldpad_max_ms: number;
  /** lldpad's p99 over ours, both at lldpad's rate and profile. */
  ratio: number | null;
  /** lldpad's p50 over ours, same runs. */
  ratio_p50: number | null;
  /** Percent of our requests over 1 ms at the bridge, on the wire and inside the daemon. */
  wire_over_1ms_pct: number;
  daemon_over_1ms_pct: number | null;
  goal: Goal;
  splitnve: LatencyRun;
  splitnve_at_lldpad_rate: LatencyRun;
  lldpad: LatencyRun;
}

async function measure(
  pair: BenchPair,
  bridgePid: number,
  gen: LoadGen,
  profile: Profile,
  rate: number,
  seconds: number,
  stations: number,
  prefix: number,
): Promise<LatencyRun> {
  const cap = await Capture.start(pair.lab, pair.br, BRIDGE_IF);
  const s0 = schedStat(bridgePid);
  const c0 = cpuTimes(bridgePid);
  const { records } = await paced(gen, {
    rate,
    seconds,
    make: (k) => {
      const station = k % stations;
      const j = prefix + Math.floor(k / stations);
      return { station, spec: benchSpec(station, j, vniOf(j, 50)) };
    },
    timeoutMs: 30_000,
  });
  const s1 = schedStat(bridgePid);
  const c1 = cpuTimes(bridgePid);
  const a = await cap.stop();
  const ok = records.filter((r) => r.ok);
  const wire = responseTimesMs(a);
  const wireAbove: Record<string, number> = {};
  for (const b of BOUNDS) {
    const over = wire.filter((ms) => ms > b * 1000).length;
    wireAbove[`${b * 1000}ms`] = wire.length ? round((over / wire.length) * 100, 2) : NaN;
  }
  return {
    profile,
    stations,
    ratePerS: rate,
    requests: records.length,
    ok: ok.length,
    bridge: distribution(wire),
    station: distribution(ok.map((r) => r.t1! - r.t0)),
    retransmissions: {
      toBridge: a.retransmissionsToBridge,
      fromBridge: a.retransmissionsFromBridge,
    },
    bridgeRunQueueWaitMs: round(runQueueWaitMs(s0, s1), 3),
    bridgeCpuPct: round(cpuShare(c0, c1) * 100, 1),
    wireAbove,
  };
}

async function ours(
  pair: BenchPair,
  profile: Profile,
  stations: number,
  rate: number,
  seconds: number,
): Promise<LatencyRun> {
  const o = await startOurs(pair, { stations, profile, evb: EVB });
  try {
    const match = { role: 'bridge', mode: 'associate' };
    const before = histogramBuckets(await o.nnve.metrics(), HISTOGRAM, match);
    const run = await measure(pair, o.nnve.pid, o.gen, profile, rate, seconds, stations, 0);
    const after = histogramBuckets(await o.nnve.metrics(), HISTOGRAM, match);
    const daemon = shareAbove(before, after, BOUNDS);
    return daemon ? { ...run, daemonAbove: daemon.above } : run;
  } finally {
    await stopOurs(o);
  }
}

async function lldpadBridge(pair: BenchPair, sizes: Sizes): Promise<LatencyRun> {
  const bridge = await Lldpad.start(pair.lab, {
    netns: pair.br,
    ifname: BRIDGE_IF,
    role: 'bridge',
    evb: LLDPAD_EVB,
    verbosity: LLDPAD_VERBOSITY,
    lineBufferedLog: false,
  });
  const gen = new LoadGen({
    netns: pair.st,
    ifname: STATION_IF,
    stations: 1,
    bridgeMac: BRIDGE_MAC,
    profile: '802.1Qbg',
    evb: EVB,
  });
  try {
    gen.start();
    await waitUntil('EVB with lldpad bridge', () => gen.negotiated >= 1, {
      timeoutMs: 30_000,
    });
    await bridge.waitVdpReady(15_000);
    return await measure(
      pair,
      bridge.pid,
      gen,
      '802.1Qbg',
      sizes.p2LldpadRate,
      sizes.p2LldpadSeconds,
      1,
      0,
    );
  } finally {
    await gen.close();
    await bridge.stop();
  }
}

export async function runP2(pair: BenchPair, sizes: Sizes): Promise<P2Result> {
  const main = await ours(pair, 'splitnve', sizes.p2Stations, sizes.p2Rate, sizes.p2Seconds);
  const same = await ours(pair, '802.1Qbg', 1, sizes.p2LldpadRate, sizes.p2LldpadSeconds);
  const l = await lldpadBridge(pair, sizes);
  return {
    p50_ms: main.bridge.p50,
    p99_ms: main.bridge.p99,
    max_ms: main.bridge.max,
    station_p50_ms: main.station.p50,
    station_p99_ms: main.station.p99,
    station_max_ms: main.station.max,
    lldpad_p50_ms: l.bridge.p50,
    lldpad_p99_ms: l.bridge.p99,
    lldpad_max_ms: l.bridge.max,
    ratio: ratio(l.bridge.p99, same.bridge.p99),
    ratio_p50: ratio(l.bridge.p50, same.bridge.p50),
    wire_over_1ms_pct: main.wireAbove['1ms']!,
    daemon_over_1ms_pct: main.daemonAbove?.['1ms'] ?? null,
    goal: {
      text: `p99 <= ${GOALS.p2P99Ms} ms at the bridge at ${sizes.p2Rate} ops/s`,
      met: Number.isFinite(main.bridge.p99) ? main.bridge.p99 <= GOALS.p2P99Ms : null,
    },
    splitnve: main,
    splitnve_at_lldpad_rate: same,
    lldpad: l,
  };
}
