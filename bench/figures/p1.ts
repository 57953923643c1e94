/**
 * P1 throughput: associations per second from one station to one bridge.
 *
 * - splitnve <-> splitnve: the load generator (one station, splitnve profile, PDU packing) hands
 *   every request over at once; the real nNVE process answers.
 * - lldpad <-> lldpad: lldpad's station driven by vdptool (through long-lived shells) against
 *   lldpad's bridge, on the same veth pair, with the same EVB timers.
 * Both are timed the same way, from a capture on the bridge's interface: first request frame to
 * last successful response frame. A second, profiled run of ours gives the CPU profile summary
 * (samples of the association phase only).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lldpad, waitEvbNegotiated } from '../../test/harness/lldpad.js';
import { Capture, throughput, type CaptureAnalysis } from '../lib/capture.js';
import { EVB, GOALS, LLDPAD_EVB, LLDPAD_VERBOSITY, type Goal, type Sizes } from '../lib/config.js';
import { monotonicNowUs, summarizeProfileDir, type ProfileSummary } from '../lib/cpuprofile.js';
import { associateAll } from '../lib/drive.js';
import { BRIDGE_IF, STATION_IF, type BenchPair } from '../lib/pair.js';
import { cpuTimes, memory } from '../lib/procstat.js';
import { distribution, ratio, round, type Distribution } from '../lib/stats.js';
import { startOurs, stationSpecs, stopOurs, vdptoolSpec } from './common.js';

const ROOT = join(fileURLToPath(import.meta.url), '..', '..', '..', '..');

export interface OneStationRun {
  vsis: number;
  accepted: number;
  failed: number;
  /** First request frame to last successful response frame (capture on the bridge port). */
  captureMs: number;
  opsPerS: number;
  /** Time at the station: first request handed over to last result. */
  stationMs: number;
  /** CPU time of the bridge process during the run, per association (µs). */
  bridgeCpuUsPerAssoc: number;
  ecpPdusToBridge: number;
  retransmissions: { toBridge: number; fromBridge: number };
  bridgeAckMs: Distribution;
}

export interface P1Result {
  splitnve_ops_per_s: number;
  lldpad_ops_per_s: number;
  ratio: number | null;
  goal: Goal;
  evb: string;
  splitnve: OneStationRun;
  lldpad: OneStationRun & { bridgeRssBefore: number; bridgeRssAfter: number };
  /** Filled by the scale scenario (P3/P4 setup): many stations on one nNVE port. */
  many_stations?: ManyStations;
  /**
   * Where the nNVE spends its time during the association phase of a second run under
   * node --cpu-prof, without a capture (its rate is timed at the station).
   */
  profile: ProfileSummary & { vsis: number; opsPerS: number };
}

export interface ManyStations {
  stations: number;
  vsisPerStation: number;
  concurrency: number;
  ops_per_s: number;
  accepted: number;
  failedFirst: number;
  failed: number;
  seconds: number;
  bridgeCpuUsPerAssoc: number;
}

function ecpPdus(a: CaptureAnalysis): number {
  return a.bridgeAckMs.length;
}

async function ours(pair: BenchPair, sizes: Sizes, cpuProfDir?: string) {
  const o = await startOurs(pair, {
    stations: 1,
    profile: 'splitnve',
    evb: EVB,
    ...(cpuProfDir ? { cpuProfDir } : {}),
  });
  try {
    // The profiled run goes without a capture: tcpdump's copy of each frame is made in the
    // sender's send() and would show in the profile as the daemon's own time.
    const cap = cpuProfDir ? undefined : await Capture.start(pair.lab, pair.br, BRIDGE_IF);
    const specs = [stationSpecs(0, sizes.p1Vsis, 100)];
    const c0 = o.nnve.cpu();
    const w0 = monotonicNowUs();
    const r = await associateAll(o.gen, specs, {
      concurrency: 1,
      timeoutMs: 120_000 + sizes.p1Vsis * 5,
      rounds: 0,
    });
    const w1 = monotonicNowUs();
    const c1 = o.nnve.cpu();
    const a = cap ? await cap.stop() : undefined;
    const t = a ? throughput(a) : { ms: r.ms, perSecond: (r.ok * 1000) / Math.max(1, r.ms) };
    const run: OneStationRun = {
      vsis: sizes.p1Vsis,
      accepted: r.ok,
      failed: r.failed,
      captureMs: round(t.ms, 1),
      opsPerS: round(t.perSecond, 0),
      stationMs: round(r.ms, 1),
      bridgeCpuUsPerAssoc: round(((c1.cpuMs - c0.cpuMs) * 1000) / Math.max(1, r.ok), 1),
      ecpPdusToBridge: a ? ecpPdus(a) : 0,
      retransmissions: {
        toBridge: a?.retransmissionsToBridge ?? 0,
        fromBridge: a?.retransmissionsFromBridge ?? 0,
      },
      bridgeAckMs: distribution(a?.bridgeAckMs ?? []),
    };
    return { run, window: { fromUs: w0, toUs: w1 } };
  } finally {
    await stopOurs(o);
  }
}

async function lldpad(pair: BenchPair, sizes: Sizes): Promise<P1Result['lldpad']> {
  const common = { evb: LLDPAD_EVB, verbosity: LLDPAD_VERBOSITY, lineBufferedLog: false };
  const [station, bridge] = await Promise.all([
    Lldpad.start(pair.lab, { ...common, netns: pair.st, ifname: STATION_IF, role: 'station' }),
    Lldpad.start(pair.lab, { ...common, netns: pair.br, ifname: BRIDGE_IF, role: 'bridge' }),
  ]);
  try {
    await waitEvbNegotiated(station, bridge, 30_000);
    await station.waitVdpReady(15_000);
    station.vdp.startShells(pair.lab, 2);
    const vsis = stationSpecs(0, sizes.p1LldpadVsis, 100).map(vdptoolSpec);
    const rssBefore = memory(bridge.pid).rss;
    const cap = await Capture.start(pair.lab, pair.br, BRIDGE_IF);
    const c0 = cpuTimes(bridge.pid);
    const t0 = performance.now();
    const reqs = vsis.map((vsi) => ({ mode: 'assoc' as const, vsi }));
    await station.vdp.issueMany(reqs, 4);
    const done = await station.vdp.waitAnswered(
      vsis.map((v) => v.uuid),
      'assoc',
      { timeoutMs: 60_000 + sizes.p1LldpadVsis * 100, concurrency: 4, intervalMs: 50 },
    );
    const stationMs = performance.now() - t0;
    const c1 = cpuTimes(bridge.pid);
    const a = await cap.stop();
    const rssAfter = memory(bridge.pid).rss;
    await station.vdp.stopShells();
    const accepted = [...done.values()].filter((v) => v?.status === 0).length;
    const t = throughput(a);
    return {
      vsis: vsis.length,
      accepted,
      failed: vsis.length - accepted,
      captureMs: round(t.ms, 1),
      opsPerS: round(t.perSecond, 1),
      stationMs: round(stationMs, 1),
      bridgeCpuUsPerAssoc: round(((c1.cpuMs - c0.cpuMs) * 1000) / Math.max(1, accepted), 1),
      ecpPdusToBridge: ecpPdus(a),
      retransmissions: {
        toBridge: a.retransmissionsToBridge,
        fromBridge: a.retransmissionsFromBridge,
      },
      bridgeAckMs: distribution(a.bridgeAckMs),
      bridgeRssBefore: rssBefore,
      bridgeRssAfter: rssAfter,
    };
  } finally {
    await Promise.all([station.stop(), bridge.stop()]);
  }
}

export async function runP1(pair: BenchPair, sizes: Sizes): Promise<P1Result> {
  const measured = await ours(pair, sizes);
  const profDir = pair.lab.file('p1-profile');
  const profiled = await ours(pair, sizes, profDir);
  const summary = summarizeProfileDir(profDir, ROOT, 15, profiled.window);
  const l = await lldpad(pair, sizes);
  const r = ratio(measured.run.opsPerS, l.opsPerS);
  return {
    splitnve_ops_per_s: measured.run.opsPerS,
    lldpad_ops_per_s: l.opsPerS,
    ratio: r,
    goal: { text: `>= ${GOALS.p1Ratio}x lldpad`, met: r === null ? null : r >= GOALS.p1Ratio },
    evb: `R=${EVB.r} RTE=${EVB.rte} RWD=${EVB.rwd} RKA=${EVB.rka} on both sides`,
    splitnve: measured.run,
    lldpad: l,
    profile: { ...summary, vsis: profiled.run.vsis, opsPerS: profiled.run.opsPerS },
  };
}
