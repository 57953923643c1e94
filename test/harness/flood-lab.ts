/**
 * The flood scenario shared by test/flood and bench/flood.ts. Two namespaces joined by a veth
 * pair: the nNVE daemon (its own process, `require` authentication, one port) on one end; on
 * the other end an authenticated tNVE (this process) and a flooder (its own process) sending
 * VDP requests from random station MACs with random VSI ids (plus forged auth TLVs and LLDP
 * from random MACs) into the same nNVE port. The station's request latency is measured without
 * and with the flood; the nNVE's memory, state, counters and log are sampled.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../src/daemon/logger.js';
import { RawLink } from '../../src/link/raw.js';
import { TnveConfigSchema } from '../../src/tnve/config.js';
import { TnveDaemon } from '../../src/tnve/daemon.js';
import { apiPort, get, post, vsiBody } from './daemon-pair.js';
import { dashed, writeKey } from './keys.js';
import { Lab } from './netns.js';
import { waitOper } from './veth-pair.js';

export const FLOOD_HV = '02:00:00:00:aa:01';
export const FLOOD_NV = '02:00:00:00:bb:01';
const here = fileURLToPath(new URL('.', import.meta.url));

export interface FloodOptions {
  /** Lab prefix (namespaces, interfaces). */
  readonly prefix: string;
  /** Requests timed without and with the flood. */
  readonly requests: number;
  /** Seconds of flood after the timed requests (memory samples). */
  readonly extraSeconds: number;
  /** Flood rate in frames/s (0: as fast as the flooder can). */
  readonly rate?: number;
  /** One ordinary socket for the nNVE port instead of a queue of its own for keyed stations. */
  readonly plain?: boolean;
  /** Adds a second station's key during the flood and sends the nNVE SIGHUP. */
  readonly sighup?: boolean;
}

export interface FloodReport {
  floodSent: number;
  floodRate: number;
  nnveReceived: number;
  kernelDropped: number;
  keyedQueue: { rxFrames: number; rxDropped: number } | undefined;
  /** Times the nNVE stopped reading other sources for the rest of a 100 ms window. */
  budgetPauses: number;
  authFailures: Record<string, number>;
  failuresTotal: number;
  logLines: number;
  logSuppressed: number;
  stations: string[];
  keyedStationsAfterSighup: number;
  calmMs: number[];
  floodMs: number[];
  failed: string[];
  /** nNVE resident set before the flood, 1.5 s into it, and at its end. */
  rssKb: number[];
  /** nNVE heap retained (after a full GC) at the same moments. */
  heapKb: number[];
}

function forkChild(script: string, arg: unknown): ChildProcess {
  return fork(join(here, script), [JSON.stringify(arg)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: ['--expose-gc'],
  });
}

function message<T>(c: ChildProcess, pred: (m: unknown) => boolean, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMsg = (m: unknown): void => {
      if (!pred(m)) return;
      c.off('message', onMsg);
      c.off('exit', onExit);
      resolve(m as T);
    };
    const onExit = (code: number | null): void =>
      reject(new Error(`${what}: child exited (${code})`));
    c.on('message', onMsg);
    c.once('exit', onExit);
  });
}

/** Stops a child we forked, by its PID: 'stop' over IPC, SIGKILL if it does not go. */
async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise<void>((r) => c.once('exit', () => r()));
  if (c.connected) c.send('stop');
  const t = setTimeout(() => c.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(t);
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

export async function runFloodScenario(o: FloodOptions): Promise<FloodReport> {
  const lab = Lab.create(o.prefix);
  const children: ChildProcess[] = [];
  let tnve: TnveDaemon | undefined;
  try {
    const nv = await lab.addNetns('nv');
    const hv = await lab.addNetns('hv');
    await lab.addVeth(
      { netns: nv, name: 'vnv0', mac: FLOOD_NV },
      { netns: hv, name: 'vhv0', mac: FLOOD_HV },
    );
    waitOper(nv, 'vnv0', true);
    waitOper(hv, 'vhv0', true);
    const keyDir = lab.file('keys');
    mkdirSync(keyDir, { mode: 0o700 });
    const key = randomBytes(32);
    writeKey(keyDir, `${dashed(FLOOD_HV)}.1.key`, key);
    const tKey = writeKey(lab.dir, 'tnve.key', key);
    const nlogFile = lab.file('nnve.log');

    const nnve = forkChild('flood-nnve.js', {
      netns: nv,
      ifname: 'vnv0',
      stateDir: lab.file('nnve'),
      keyDir,
      logFile: nlogFile,
      quotas: { maxUnknownStations: 256, maxEvbPeers: 256 },
      plain: o.plain === true,
    });
    children.push(nnve);
    const { api: napi } = await message<{ api: number }>(
      nnve,
      (m) => !!(m as { ready?: boolean }).ready,
      'nnve',
    );
    tnve = await TnveDaemon.start(
      TnveConfigSchema.parse({
        uplinks: [{ name: 'vhv0' }],
        stateDir: lab.file('tnve'),
        api: '127.0.0.1:0',
        profile: 'splitnve',
        evb: { r: 3, rte: 10, rwd: 14, rka: 16 },
        requestTimeoutMs: 10_000,
        auth: { mode: 'require', keys: [{ keyId: 1, keyFile: tKey }] },
      }),
      {
        log: createLogger({ name: 'tnve', level: 'warn', destination: lab.file('tnve.log') }),
        openLink: (u) => new RawLink(u.name, { netns: hv, allowDown: true }),
      },
    );
    const tp = apiPort(tnve);
    const failed: string[] = [];
    const timed = async (n: number): Promise<number> => {
      const t0 = performance.now();
      const r = await post(tp, '/v1/requests', { mode: 'associate', vsi: vsiBody(n) });
      const ms = performance.now() - t0;
      if (r.status !== 200) failed.push(`VSI ${n}: ${JSON.stringify(r.body)}`);
      return ms;
    };
    // Warm up (EVB, first association, JIT), then the latency without flood.
    for (let i = 0; i < 5; i++) await timed(1000 + i);
    if (failed.length > 0) throw new Error(`warm-up failed: ${failed.join('; ')}`);
    const calmMs: number[] = [];
    for (let i = 0; i < o.requests; i++) calmMs.push(await timed(i));
    const mem = async (): Promise<{ rss: number; heap: number }> => {
      nnve.send('mem');
      const m = await message<{ mem: NodeJS.MemoryUsage }>(
        nnve,
        (x) => !!(x as { mem?: unknown }).mem,
        'mem',
      );
      return { rss: rssKb(nnve.pid!), heap: Math.round(m.mem.heapUsed / 1024) };
    };
    const before = await mem();

    const flooder = forkChild('flooder.js', {
      netns: hv,
      ifname: 'vhv0',
      nnveMac: FLOOD_NV,
      ...(o.rate ? { rate: o.rate } : {}),
    });
    children.push(flooder);
    await message(flooder, (m) => !!(m as { ready?: boolean }).ready, 'flooder');
    await new Promise((r) => setTimeout(r, 1500));
    const early = await mem();
    const floodMs: number[] = [];
    for (let i = 0; i < o.requests; i++) floodMs.push(await timed(100_000 + i));
    await new Promise((r) => setTimeout(r, o.extraSeconds * 1000));
    const late = await mem();
    type AuthView = {
      totals: Record<string, number>;
      keys: { stations: number };
      logSuppressed: number;
    };
    let view = await get<AuthView>(napi, '/v1/auth');
    if (o.sighup) {
      // SIGHUP while flooded: a key for a second station is picked up.
      writeKey(keyDir, `${dashed('02:00:00:00:aa:02')}.1.key`);
      process.kill(nnve.pid!, 'SIGHUP');
      for (let i = 0; i < 100 && view.keys.stations !== 2; i++) {
        await new Promise((r) => setTimeout(r, 50));
        view = await get<AuthView>(napi, '/v1/auth');
      }
    }
    flooder.send('stop');
    const fl = await message<{ sent: number; seconds: number }>(
      flooder,
      (m) => (m as { sent?: number }).sent !== undefined,
      'flooder stop',
    );
    view = await get<AuthView>(napi, '/v1/auth');
    const stations = await get<{ station: string }[]>(napi, '/v1/stations');
    const ports = await get<
      {
        stats: {
          rxFrames: number;
          rxDropped: number;
          fast?: { rxFrames: number; rxDropped: number };
          budgetPauses?: number;
        };
      }[]
    >(napi, '/v1/ports');
    const logLines = readFileSync(nlogFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"event":"auth.failed"')).length;
    const st = ports[0]!.stats;
    return {
      floodSent: fl.sent,
      floodRate: Math.round(fl.sent / fl.seconds),
      nnveReceived: st.rxFrames,
      kernelDropped: st.rxDropped,
      keyedQueue: st.fast
        ? { rxFrames: st.fast.rxFrames, rxDropped: st.fast.rxDropped }
        : undefined,
      budgetPauses: st.budgetPauses ?? 0,
      authFailures: view.totals,
      failuresTotal: Object.values(view.totals).reduce((a, b) => a + b, 0),
      logLines,
      logSuppressed: view.logSuppressed,
      stations: stations.map((s) => s.station),
      keyedStationsAfterSighup: view.keys.stations,
      calmMs,
      floodMs,
      failed,
      rssKb: [before.rss, early.rss, late.rss],
      heapKb: [before.heap, early.heap, late.heap],
    };
  } finally {
    for (const c of children) await stopChild(c);
    await tnve?.stop();
    await lab.close();
  }
}

/** One line for logs: latencies summarized. */
export function summary(r: FloodReport): Record<string, unknown> {
  const { calmMs, floodMs, failed, ...rest } = r;
  return {
    ...rest,
    failedRequests: failed.length,
    ...(failed.length > 0 ? { firstFailure: failed[0] } : {}),
    calmMedianMs: +median(calmMs).toFixed(2),
    floodMedianMs: +median(floodMs).toFixed(2),
    calmMaxMs: +Math.max(...calmMs).toFixed(2),
    floodMaxMs: +Math.max(...floodMs).toFixed(2),
  };
}
