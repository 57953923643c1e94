/** What the benchmark ran on: CPUs, memory, load (other work on the machine skews the figures). */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  lldpad: string | null;
  commit: string | null;
  /** 1, 5, 15-minute load averages when the run started and ended. */
  loadavgStart: number[];
  loadavgEnd: number[];
  /**
   * Linux pressure stall information for CPU: % of the last 10 s / 60 s in which some runnable
   * task waited for a CPU, at the start and the end (null where /proc/pressure is missing).
   */
  cpuPressureStart: { avg10: number; avg60: number } | null;
  cpuPressureEnd: { avg10: number; avg60: number } | null;
  startedAt: string;
  durationS: number;
}

function cmd(file: string, args: string[]): string | null {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    const out = (e as { stdout?: string; stderr?: string }).stdout ?? '';
    const err = (e as { stderr?: string }).stderr ?? '';
    return (out + err).trim() || null;
  }
}

const la = (): number[] => loadavg().map((x) => Math.round(x * 100) / 100);

function cpuPressure(): { avg10: number; avg60: number } | null {
  try {
    const m = /^some avg10=([\d.]+) avg60=([\d.]+)/m.exec(
      readFileSync('/proc/pressure/cpu', 'utf8'),
    );
    return m ? { avg10: Number(m[1]), avg60: Number(m[2]) } : null;
  } catch {
    return null;
  }
}

export function machineStart(): { info: MachineInfo; t0: number } {
  const c = cpus();
  const lldpadVersion = cmd('lldpad', ['-v']);
  return {
    t0: performance.now(),
    info: {
      cpus: c.length,
      cpuModel: c[0]?.model ?? 'unknown',
      memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      kernel: release(),
      node: process.version,
      lldpad: lldpadVersion ? lldpadVersion.split('\n')[0]! : null,
      commit: cmd('git', ['rev-parse', '--short', 'HEAD']),
      loadavgStart: la(),
      loadavgEnd: [],
      cpuPressureStart: cpuPressure(),
      cpuPressureEnd: null,
      startedAt: new Date().toISOString(),
      durationS: 0,
    },
  };
}

export function machineEnd(m: { info: MachineInfo; t0: number }): MachineInfo {
  m.info.loadavgEnd = la();
  m.info.cpuPressureEnd = cpuPressure();
  m.info.durationS = Math.round((performance.now() - m.t0) / 100) / 10;
  return m.info;
}
