/** The human-readable report of a benchmark run (the JSON has the same figures and more detail). */
import type { Goal } from './lib/config.js';
import type { BenchResult } from './index.js';

const f = (x: number | null | undefined, digits = 1): string =>
  x === null || x === undefined || !Number.isFinite(x)
    ? '–'
    : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });

const goal = (g: Goal | undefined): string =>
  !g ? '' : `goal ${g.text}: ${g.met === null ? 'not judged' : g.met ? 'MET' : 'MISSED'}`;

export function renderReport(r: BenchResult): string {
  const out: string[] = [];
  const line = (s = ''): number => out.push(s);
  const m = r.machine;
  line(`splitnve benchmarks${r.smoke ? ' (smoke sizes)' : ''}`);
  if (m) {
    line(
      `machine: ${m.cpus} CPU (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}, ` +
        `${m.lldpad ?? 'lldpad ?'}, commit ${m.commit ?? '?'}`,
    );
    const psi = (p: { avg10: number; avg60: number } | null): string =>
      p ? `${f(p.avg60)}%` : '?';
    line(
      `load average at start ${m.loadavgStart.join(' ')}, at end ${m.loadavgEnd.join(' ')}; ` +
        `CPU pressure (time some task waited for a CPU, last 60 s) ${psi(m.cpuPressureStart)} / ${psi(m.cpuPressureEnd)}; ` +
        `run took ${f(m.durationS)} s`,
    );
  }
  line(`EVB timers on both sides of every comparison: ${r.evb}`);
  for (const [name, e] of Object.entries(r.errors)) line(`!! ${name} failed: ${e}`);

  const p1 = r.P1;
  if (p1) {
    line();
    line('P1 throughput: associations/s, one station -> one bridge');
    line(
      `  splitnve <-> splitnve  ${f(p1.splitnve_ops_per_s, 0)}/s  (${p1.splitnve.accepted}/${p1.splitnve.vsis} VSIs in ${f(p1.splitnve.captureMs)} ms, splitnve profile, packed; nNVE ${f(p1.splitnve.bridgeCpuUsPerAssoc)} µs CPU per association)`,
    );
    line(
      `  lldpad   <-> lldpad    ${f(p1.lldpad_ops_per_s)}/s  (${p1.lldpad.accepted}/${p1.lldpad.vsis} VSIs in ${f(p1.lldpad.captureMs)} ms, vdptool; bridge ${f(p1.lldpad.bridgeCpuUsPerAssoc)} µs CPU per association)`,
    );
    line(`  ratio ${f(p1.ratio)}x   ${goal(p1.goal)}`);
    const ms = p1.many_stations;
    if (ms) {
      line(
        `  splitnve, ${ms.stations} stations x ${ms.vsisPerStation} VSIs on one nNVE port: ${f(ms.ops_per_s, 0)}/s ` +
          `(${ms.accepted} in ${f(ms.seconds, 2)} s, ${ms.concurrency} stations in flight, ${ms.failedFirst} retried, ${ms.failed} failed; ` +
          `${f(ms.bridgeCpuUsPerAssoc)} µs CPU per association) (no lldpad figure: lldpad's EVB agent keeps one neighbour per port)`,
      );
    }
    const pr = p1.profile;
    line(
      `  CPU profile of the nNVE, association phase of ${pr.vsis} VSIs (${f(pr.busyMs)} ms busy, ${f(pr.idleMs)} ms idle); top by self time:`,
    );
    for (const e of pr.topFunctions.slice(0, 12)) {
      line(
        `    ${f(e.selfPct).padStart(5)}%  ${f(e.selfMs).padStart(7)} ms  ${e.name}  ${e.where}`,
      );
    }
    line('    by file:');
    for (const e of pr.topFiles.slice(0, 8)) {
      line(`    ${f(e.selfPct).padStart(5)}%  ${f(e.selfMs).padStart(7)} ms  ${e.where}`);
    }
  }

  const p2 = r.P2;
  if (p2) {
    const d = (x: { p50: number; p99: number; max: number }): string =>
      `p50 ${f(x.p50, 3)}  p99 ${f(x.p99, 3)}  max ${f(x.max, 3)} ms`;
    line();
    line('P2 latency: request -> response of fresh Associates (bridge: capture on its port)');
    const s = p2.splitnve;
    line(
      `  splitnve bridge, ${s.ratePerS}/s over ${s.stations} stations (${s.profile}): at the bridge ${d(s.bridge)}; at the station ${d(s.station)} (${s.ok}/${s.requests} ok)`,
    );
    const a = p2.splitnve_at_lldpad_rate;
    line(
      `  splitnve bridge, ${a.ratePerS}/s, 1 station (${a.profile}):        at the bridge ${d(a.bridge)}; at the station ${d(a.station)} (${a.ok}/${a.requests} ok)`,
    );
    const l = p2.lldpad;
    line(
      `  lldpad bridge,   ${l.ratePerS}/s, 1 station (${l.profile}):        at the bridge ${d(l.bridge)}; at the station ${d(l.station)} (${l.ok}/${l.requests} ok)`,
    );
    line(
      `  lldpad / splitnve at the bridge (same rate and profile): p99 ${f(p2.ratio)}x, p50 ${f(p2.ratio_p50)}x`,
    );
    line(
      `  bridge process in the three runs: CPU ${f(s.bridgeCpuPct)}% / ${f(a.bridgeCpuPct)}% / ${f(l.bridgeCpuPct)}% of one core; ` +
        `mean wait for a CPU each time it ran ${f(s.bridgeRunQueueWaitMs, 3)} / ${f(a.bridgeRunQueueWaitMs, 3)} / ${f(l.bridgeRunQueueWaitMs, 3)} ms`,
    );
    const shares = (x: Record<string, number> | undefined): string =>
      x
        ? Object.entries(x)
            .map(([k, v]) => `> ${k} ${f(v, 2)}%`)
            .join(', ')
        : 'n/a';
    line(
      `  splitnve at ${s.ratePerS}/s, requests over: on the wire ${shares(s.wireAbove)}; inside the daemon (frame read -> answer sent) ${shares(s.daemonAbove)}`,
    );
    line(`  ${goal(p2.goal)}`);
  }

  const p3 = r.P3;
  if (p3) {
    line();
    line(
      `P3 scale: ${p3.vsis} VSIs across ${p3.stations} stations on one nNVE, keep-alive RKA ${p3.rka} (${f(p3.keepalive_period_s, 2)} s)`,
    );
    line(
      `  RSS ${f(p3.rss_mb)} MB (${f(p3.rss_baseline_mb)} MB with no VSI, peak ${f(p3.rss_peak_mb)} MB): ${f(p3.bytes_per_vsi, 0)} bytes per VSI` +
        (p3.lldpad_bytes_per_vsi !== null
          ? `; lldpad's bridge ~${f(p3.lldpad_bytes_per_vsi, 0)} bytes per VSI (from P1's few VSIs, page-granular)`
          : ''),
    );
    line(
      `  keep-alives: ${f(p3.keepalives_per_s, 0)}/s answered, nNVE CPU ${f(p3.keepalive_cpu_pct, 2)}% of one core over ${f(p3.window_s)} s ` +
        `(${f(p3.cpu_us_per_keepalive)} µs per keep-alive), ${p3.keepalive_failures} keep-alive failures`,
    );
    line(
      `  one GET /v1/stats (walks every VSI): ${f(p3.api_stats_ms)} ms; RSS after five of them ${f(p3.rss_after_api_mb)} MB`,
    );
    line(`  ${goal(p3.goal)}`);
  }

  const p4 = r.P4;
  if (p4) {
    line();
    line(`P4 restart: SIGKILL of the nNVE with ${p4.vsis_before} VSIs, restarted at once`);
    line(
      `  answering again after ${f(p4.recovery_s, 2)} s (first answer to a probe sent every 50 ms; API up after ${f(p4.restart_s, 2)} s); ` +
        `every VSI had a keep-alive answered after ${f(p4.all_answered_s, 2)} s (keep-alive period ${f(p4.keepalive_period_s, 2)} s)`,
    );
    line(
      `  VSIs lost ${p4.vsis_lost} (bridge ${p4.vsis_before} -> ${p4.vsis_after}, stations saw ${p4.station_lost}); VLAN ids changed ${p4.vlan_ids_changed}; ` +
        `keep-alives failed during the outage ${p4.keepalive_failures_during_outage}, after recovery ${p4.keepalive_failures_after_recovery}`,
    );
    line(`  RSS of the restarted nNVE: ${f(p4.rss_after_restart_mb)} MB`);
    line(`  ${goal(p4.goal)}`);
  }

  const p5 = r.P5;
  if (p5) {
    line();
    if (p5.measured) {
      line(
        `P5 migration (2 pingers at 100 pps, OVS + VXLAN, etcd): ${p5.quiet_migrations} of ${p5.migrations} migrations with the network quiet around them`,
      );
      line(
        `  quiet: ${p5.lost_packets} of ${p5.sent_packets} pings lost, at most ${p5.max_lost_per_migration} per pinger per migration, longest gap ${f(p5.max_gap_ms)} ms   ${goal(p5.goal)}`,
      );
      line(`  all: ${p5.lost_packets_all} of ${p5.sent_packets_all} pings lost`);
      for (const m of p5.per_migration) {
        line(
          `  ${m.from.toUpperCase()}->${m.to.toUpperCase()}: lost ${Object.entries(m.lost)
            .map(([k, v]) => `${k} ${v}`)
            .join(
              ', ',
            )}; longest gap ${f(m.longest_gap_ms)} ms; control gap ${f(m.control_gap_ms)} ms${m.quiet ? '' : ' (not quiet)'}; Associate ${f(m.associate_ms)} ms, move ${f(m.move_ms)} ms`,
        );
      }
      line(`  lldpad: ${p5.lldpad}`);
    } else {
      line(`P5 migration: ${p5.reason}   (${p5.goal.text})`);
    }
  }

  const rl = r.rawlink;
  if (rl) {
    line();
    line(
      `raw link (AF_PACKET over veth, ${rl.rateTarget} frames/s for ${rl.seconds} s): sent ${rl.txRate}/s, received ${rl.rxRate}/s, ` +
        `lost ${rl.lost}, kernel drops ${rl.rxDroppedKernel}, CPU ${rl.senderCpuMs} ms sender / ${rl.receiverCpuMs} ms receiver, ${rl.framesPerBatch} frames per read`,
    );
  }
  return out.join('\n') + '\n';
}
