/**
 * Summary of a V8 CPU profile (`node --cpu-prof`): self time per function and per source file,
 * highest first, so that the next optimisation is aimed where the time goes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileEntry {
  /** Function name (or V8's label, e.g. "(garbage collector)"). */
  readonly name: string;
  /** Source file relative to the repository (or node:internal / native). */
  readonly where: string;
  readonly selfMs: number;
  /** Share of all sampled time (idle excluded), percent. */
  readonly selfPct: number;
}

export interface ProfileSummary {
  /** Sampled time in which the process was busy (not idle), ms. */
  readonly busyMs: number;
  readonly idleMs: number;
  readonly topFunctions: ProfileEntry[];
  readonly topFiles: ProfileEntry[];
}

function shortUrl(url: string, root: string): string {
  if (!url) return '(native)';
  if (url.startsWith('node:')) return url;
  const path = url.startsWith('file://') ? decodeURIComponent(url.slice(7)) : url;
  const rel = relative(root, path);
  const nm = rel.lastIndexOf('node_modules/');
  if (nm >= 0) return rel.slice(nm + 'node_modules/'.length);
  return rel.startsWith('..') ? path : rel;
}

/**
 * A window of CLOCK_MONOTONIC time in µs (what V8 stamps profiles with; process.hrtime in any
 * process of the machine reads the same clock).
 */
export interface ProfileWindow {
  readonly fromUs: number;
  readonly toUs: number;
}

/** CLOCK_MONOTONIC now, µs. */
export function monotonicNowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Reads the newest *.cpuprofile in `dir` and summarizes it (samples inside `window` only). */
export function summarizeProfileDir(
  dir: string,
  root: string,
  top = 15,
  window?: ProfileWindow,
): ProfileSummary {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort();
  const last = files[files.length - 1];
  if (!last) throw new Error(`no .cpuprofile written in ${dir}`);
  return summarizeProfile(
    JSON.parse(readFileSync(join(dir, last), 'utf8')) as CpuProfile,
    root,
    top,
    window,
  );
}

export function summarizeProfile(
  p: CpuProfile,
  root: string,
  top = 15,
  window?: ProfileWindow,
): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  // timeDeltas[i] is the time from sample i-1 to sample i; sample i stands for the time until
  // the next sample.
  let t = p.startTime;
  for (let i = 0; i < samples.length; i++) {
    t += deltas[i] ?? 0;
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    const dt = Math.max(0, deltas[i + 1] ?? 0);
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + dt);
  }
  let idleUs = 0;
  let busyUs = 0;
  const fn = new Map<string, { name: string; where: string; us: number }>();
  const file = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)' || name === '(program)' || name === '(root)') {
      if (name === '(idle)') idleUs += us;
      else busyUs += us; // (program): V8/native work outside JS
      if (name === '(idle)') continue;
    } else {
      busyUs += us;
    }
    const where = shortUrl(n.callFrame.url, root);
    const line = n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : '';
    const key = `${name}@${where}${line}`;
    const e = fn.get(key) ?? { name, where: `${where}${line}`, us: 0 };
    e.us += us;
    fn.set(key, e);
    const fk = n.callFrame.url ? where : name;
    file.set(fk, (file.get(fk) ?? 0) + us);
  }
  const pct = (us: number): number => Math.round((1000 * us) / Math.max(1, busyUs)) / 10;
  const ms = (us: number): number => Math.round(us / 100) / 10;
  return {
    busyMs: ms(busyUs),
    idleMs: ms(idleUs),
    topFunctions: [...fn.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ name: e.name, where: e.where, selfMs: ms(e.us), selfPct: pct(e.us) })),
    topFiles: [...file.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([where, us]) => ({ name: '', where, selfMs: ms(us), selfPct: pct(us) })),
  };
}
