/**
 * `npm run bench`: the project's benchmarks, each figure beside lldpad's where lldpad has one,
 * measured in the same run on the same veth pair. Needs root (namespaces, raw sockets), lldpad
 * (lldpad, lldptool, vdptool) and tcpdump.
 *
 *   node dist/bench/index.js [--json] [--smoke] [--only P1,P2,P3,P4,P5,rawlink] [--out FILE]
 *                            [--concurrency N] [--set size=value,...]
 *
 * --json prints one JSON object (and nothing else) on stdout; progress goes to stderr.
 * --smoke runs small sizes of everything (tens of seconds); --set overrides single sizes
 * (names as in bench/lib/config.ts, e.g. --set stations=200,vsisPerStation=50).
 */
import { writeFileSync } from 'node:fs';
import { EVB, FULL, SMOKE, type Sizes } from './lib/config.js';
import { machineEnd, machineStart, type MachineInfo } from './lib/machine.js';
import { createPair } from './lib/pair.js';
import { round } from './lib/stats.js';
import { runP1, type P1Result } from './figures/p1.js';
import { runP2, type P2Result } from './figures/p2.js';
import { runP5, type P5Result } from './figures/p5.js';
import { runRawlink, type RawlinkResult } from './figures/rawlink.js';
import { runScale, type P3Result, type P4Result } from './figures/scale.js';
import { renderReport } from './report.js';

export const FIGURES = ['P1', 'P2', 'P3', 'P4', 'P5', 'rawlink'] as const;
export type FigureName = (typeof FIGURES)[number];

export interface BenchResult {
  smoke: boolean;
  evb: string;
  sizes: Sizes;
  P1?: P1Result;
  P2?: P2Result;
  P3?: P3Result;
  P4?: P4Result;
  P5?: P5Result;
  rawlink?: RawlinkResult;
  /** Figures that could not be measured, with the reason. */
  errors: Record<string, string>;
  machine?: MachineInfo;
}

interface Options {
  json: boolean;
  smoke: boolean;
  only: Set<FigureName>;
  out: string | undefined;
  concurrency: number | undefined;
  /** Overrides of single sizes (--set stations=200,p3Rka=17). */
  set: Partial<Record<keyof Sizes, number>>;
}

function usage(msg?: string): never {
  if (msg) console.error(`bench: ${msg}`);
  console.error(
    'usage: node dist/bench/index.js [--json] [--smoke] [--only P1,P2,P3,P4,P5,rawlink] [--out FILE] [--concurrency N] [--set size=value,...]',
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    json: false,
    smoke: false,
    only: new Set(FIGURES),
    out: undefined,
    concurrency: undefined,
    set: {},
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') o.json = true;
    else if (a === '--smoke') o.smoke = true;
    else if (a === '--only') {
      const names = (argv[++i] ?? '').split(',').filter(Boolean);
      if (names.length === 0) usage('--only needs figure names');
      for (const n of names) {
        if (!(FIGURES as readonly string[]).includes(n)) usage(`unknown figure ${n}`);
      }
      o.only = new Set(names as FigureName[]);
    } else if (a === '--out') {
      o.out = argv[++i];
      if (!o.out) usage('--out needs a file name');
    } else if (a === '--concurrency') {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1) usage('--concurrency needs a positive integer');
      o.concurrency = n;
    } else if (a === '--set') {
      for (const kv of (argv[++i] ?? '').split(',').filter(Boolean)) {
        const [k, v] = kv.split('=');
        const n = Number(v);
        if (!k || !(k in FULL) || !Number.isFinite(n) || n <= 0) usage(`--set: bad size ${kv}`);
        o.set[k as keyof Sizes] = n;
      }
    } else if (a === '--help' || a === '-h') usage();
    else usage(`unknown argument ${a}`);
  }
  return o;
}

const progress = (msg: string): void => {
  process.stderr.write(`# ${new Date().toISOString().slice(11, 19)} ${msg}\n`);
};

export async function runBench(o: Options): Promise<BenchResult> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error('the benchmarks need root (network namespaces, raw sockets)');
  }
  const machine = machineStart();
  const base = o.smoke ? SMOKE : FULL;
  const sizes: Sizes = {
    ...base,
    ...o.set,
    ...(o.concurrency ? { concurrency: o.concurrency } : {}),
  };
  const result: BenchResult = {
    smoke: o.smoke,
    evb: `R=${EVB.r} RTE=${EVB.rte} RWD=${EVB.rwd} RKA=${EVB.rka} (P3/P4: RKA ${sizes.p3Rka})`,
    sizes,
    errors: {},
  };
  const want = (n: FigureName): boolean => o.only.has(n);
  const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
    const t0 = performance.now();
    progress(`${name} ...`);
    try {
      await fn();
      progress(`${name} done in ${round((performance.now() - t0) / 1000, 1)} s`);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      result.errors[name] = msg;
      progress(`${name} FAILED: ${msg}`);
    }
  };
  if (want('rawlink')) {
    await step('raw link', async () => {
      result.rawlink = await runRawlink(sizes);
    });
  }
  const pair = await createPair();
  try {
    if (want('P1')) {
      await step('P1 throughput', async () => {
        result.P1 = await runP1(pair, sizes);
      });
    }
    if (want('P2')) {
      await step('P2 latency', async () => {
        result.P2 = await runP2(pair, sizes);
      });
    }
    if (want('P1') || want('P3') || want('P4')) {
      await step(`P1/P3/P4 with ${sizes.stations} x ${sizes.vsisPerStation} VSIs`, async () => {
        const s = await runScale(pair, sizes);
        if (result.P1) result.P1.many_stations = s.many;
        if (want('P3')) {
          result.P3 = s.p3;
          const l = result.P1?.lldpad;
          if (l && l.accepted > 0) {
            result.P3.lldpad_bytes_per_vsi = round(
              (l.bridgeRssAfter - l.bridgeRssBefore) / l.accepted,
              0,
            );
          }
        }
        if (want('P4')) result.P4 = s.p4;
      });
    }
    if (want('P5')) {
      await step('P5 migration', async () => {
        result.P5 = await runP5(sizes);
      });
    }
  } finally {
    await pair.lab.close();
  }
  result.machine = machineEnd(machine);
  return result;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const r = await runBench(o);
  const json = JSON.stringify(r, null, 2);
  if (o.out) writeFileSync(o.out, json + '\n');
  process.stdout.write(o.json ? json + '\n' : renderReport(r));
  if (Object.keys(r.errors).length > 0) process.exitCode = 1;
}

await main();
