/** CPU time and memory of a process from /proc (Linux). */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clkTck: number | undefined;

function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

export interface CpuTimes {
  /** User + system CPU time of the process so far, in milliseconds. */
  readonly cpuMs: number;
  readonly userMs: number;
  readonly sysMs: number;
  /** Wall clock when read (performance.now()). */
  readonly at: number;
}

/** utime and stime of PID (fields 14 and 15 of /proc/PID/stat). */
export function cpuTimes(pid: number): CpuTimes {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): utime is field 14 -> rest[11], stime field 15 -> rest[12].
  const tick = 1000 / ticksPerSecond();
  const userMs = Number(rest[11]) * tick;
  const sysMs = Number(rest[12]) * tick;
  return { cpuMs: userMs + sysMs, userMs, sysMs, at: performance.now() };
}

/** CPU used between two readings, as a fraction of one core. */
export function cpuShare(a: CpuTimes, b: CpuTimes): number {
  return (b.cpuMs - a.cpuMs) / Math.max(1e-9, b.at - a.at);
}

export interface Memory {
  /** Resident set size, bytes. */
  readonly rss: number;
  /** Peak resident set size, bytes. */
  readonly hwm: number;
}

export function memory(pid: number): Memory {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : NaN;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

export interface SchedStat {
  /** Time on a CPU, time runnable but waiting for a CPU (ns), and how many times it ran. */
  readonly runNs: number;
  readonly waitNs: number;
  readonly slices: number;
}

/** /proc/PID/schedstat: the main thread (the one that answers frames in both daemons). */
export function schedStat(pid: number): SchedStat {
  const [run, wait, slices] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/);
  return { runNs: Number(run), waitNs: Number(wait), slices: Number(slices) };
}

/** Mean wait for a CPU per time the process was scheduled between two readings, ms. */
export function runQueueWaitMs(a: SchedStat, b: SchedStat): number {
  const n = b.slices - a.slices;
  return n > 0 ? (b.waitNs - a.waitNs) / n / 1e6 : 0;
}
