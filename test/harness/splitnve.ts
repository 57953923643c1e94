/**
 * Our own daemons (`splitnve nnve`, `splitnve tnve`) in network namespaces for interop tests:
 * started through the real CLI (`node dist/src/cli/main.js`), inside the namespace with
 * `ip netns exec` (the PID held is node's own), with the HTTP API on a unix socket in the lab
 * directory (reachable from the test process whatever the namespace), JSON log lines in a
 * file that tests read back by `event` name.
 *
 * Also: packet captures with dumpcap inside a namespace, and the check that every frame a
 * daemon sent decodes cleanly with tshark (its own dissectors and contrib/wireshark/splitnve.lua)
 * and with `splitnve decode`.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from './netns.js';
import { run, runOk, sleep, waitUntil, type ManagedProcess } from './proc.js';

/** Repository root (this file runs from dist/test/harness/). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
export const LUA_DISSECTOR = join(ROOT, 'contrib', 'wireshark', 'splitnve.lua');

export type DaemonKind = 'nnve' | 'tnve';

/**
 * Two stations, each in its namespace (st1, st2) on its own veth (vst0, vst1) to the bridge's
 * namespace (br: vbr0, vbr1), with the given MACs.
 */
export async function twoStationsOneBridge(
  lab: Lab,
  macs: { st1: string; st2: string; br1: string; br2: string },
): Promise<{ brNs: string; st1Ns: string; st2Ns: string }> {
  const brNs = await lab.addNetns('br');
  const st1Ns = await lab.addNetns('st1');
  const st2Ns = await lab.addNetns('st2');
  await lab.addVeth(
    { netns: st1Ns, name: 'vst0', mac: macs.st1 },
    { netns: brNs, name: 'vbr0', mac: macs.br1 },
  );
  await lab.addVeth(
    { netns: st2Ns, name: 'vst1', mac: macs.st2 },
    { netns: brNs, name: 'vbr1', mac: macs.br2 },
  );
  return { brNs, st1Ns, st2Ns };
}

/**
 * Starts an nNVE (from `nnveConfig`) in the bridge namespace of `twoStationsOneBridge` and a
 * tNVE in each station namespace, on vst0 and vst1, with `tnveArgs[0]` / `tnveArgs[1]`.
 */
export async function startOnTwoStations(
  lab: Lab,
  ns: { brNs: string; st1Ns: string; st2Ns: string },
  nnveConfig: string,
  tnveArgs: readonly [string[], string[]],
): Promise<{ nnve: SplitnveDaemon; tnve1: SplitnveDaemon; tnve2: SplitnveDaemon }> {
  const nnve = await SplitnveDaemon.start(lab, {
    name: 'nnve',
    netns: ns.brNs,
    kind: 'nnve',
    args: ['--config', nnveConfig],
  });
  const [tnve1, tnve2] = await Promise.all(
    ([ns.st1Ns, ns.st2Ns] as const).map((netns, i) =>
      SplitnveDaemon.start(lab, { name: `tnve${i + 1}`, netns, kind: 'tnve', args: tnveArgs[i]! }),
    ),
  );
  return { nnve, tnve1: tnve1!, tnve2: tnve2! };
}

/** The CLI flags that set the EVB timers (`--r --rte --rwd --rka`). */
export function evbFlags(evb: {
  readonly r: number;
  readonly rte: number;
  readonly rwd: number;
  readonly rka: number;
}): string[] {
  return [
    '--r',
    String(evb.r),
    '--rte',
    String(evb.rte),
    '--rwd',
    String(evb.rwd),
    '--rka',
    String(evb.rka),
  ];
}

/** One JSON log line of a daemon. */
export interface LogEvent {
  readonly event?: string;
  readonly level: string;
  readonly time: string;
  readonly pid: number;
  readonly msg: string;
  readonly [k: string]: unknown;
}

export interface ApiResponse<T = unknown> {
  readonly status: number;
  readonly body: T;
}

/** GET/POST over a unix socket; resolves with status and parsed JSON body (text if not JSON). */
export function apiCall<T = unknown>(
  socketPath: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<ApiResponse<T>> {
  const json = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        path,
        method,
        headers: json === undefined ? {} : { 'content-type': 'application/json' },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs} ms`)),
    );
    req.on('error', reject);
    req.end(json);
  });
}

export interface DaemonOptions {
  /** Label and file stem (log `<name>.log`, socket `<name>.sock`, state `<name>-state/`). */
  readonly name: string;
  readonly netns: string;
  readonly kind: DaemonKind;
  /** Everything after `splitnve nnve|tnve` except --state-dir and --api. */
  readonly args: readonly string[];
  /** Wait for /v1/health (default true). */
  readonly wait?: boolean;
}

/** A splitnve daemon in a namespace; `restart()` starts it again with the same state. */
export class SplitnveDaemon {
  proc: ManagedProcess;
  readonly socket: string;
  readonly stateDir: string;
  readonly logFile: string;
  /** Every process started so far (restarts append). */
  readonly pids: number[] = [];

  private constructor(
    readonly lab: Lab,
    readonly opts: DaemonOptions,
  ) {
    this.socket = lab.file(`${opts.name}.sock`);
    this.stateDir = lab.file(`${opts.name}-state`);
    this.logFile = lab.file(`${opts.name}.log`);
    this.proc = this.spawn();
  }

  static async start(lab: Lab, opts: DaemonOptions): Promise<SplitnveDaemon> {
    const d = new SplitnveDaemon(lab, opts);
    if (opts.wait ?? true) await d.waitHealthy();
    return d;
  }

  get api(): string {
    return `unix:${this.socket}`;
  }

  private spawn(): ManagedProcess {
    const p = this.lab.spawn({
      name: this.opts.name,
      netns: this.opts.netns,
      cmd: process.execPath,
      args: [
        CLI,
        this.opts.kind,
        ...this.opts.args,
        '--state-dir',
        this.stateDir,
        '--api',
        this.api,
      ],
      logName: `${this.opts.name}.log`,
    });
    this.pids.push(p.pid);
    return p;
  }

  async waitHealthy(timeoutMs = 15_000): Promise<void> {
    const pid = this.proc.pid;
    await this.proc.waitFor(
      `${this.opts.kind} ${this.opts.name} API`,
      async () => {
        if (!existsSync(this.socket)) return false;
        const r = await apiCall<{ ok?: boolean }>(
          this.socket,
          'GET',
          '/v1/health',
          undefined,
          2000,
        );
        // The socket may still be the previous process's until this one has bound it.
        return (
          r.status === 200 && r.body.ok === true && this.events('daemon.started', pid).length > 0
        );
      },
      { timeoutMs, intervalMs: 25 },
    );
  }

  /** Stops the running process (SIGTERM, SIGKILL after grace) and starts a new one. */
  async restart(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    if (signal === 'SIGKILL') {
      this.proc.signal('SIGKILL');
      await this.proc.exited;
    } else {
      await this.proc.stop(5000);
    }
    this.proc = this.spawn();
    await this.waitHealthy();
  }

  async get<T = unknown>(path: string): Promise<T> {
    const r = await apiCall<T>(this.socket, 'GET', path);
    if (r.status !== 200)
      throw new Error(`${this.opts.name} GET ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  post<T = unknown>(path: string, body: unknown, timeoutMs?: number): Promise<ApiResponse<T>> {
    return apiCall<T>(this.socket, 'POST', path, body, timeoutMs);
  }

  /** `splitnve ctl --api unix:… ARGS` inside the namespace (the real ctl, as a user runs it). */
  ctl(args: readonly string[]): ReturnType<typeof run> {
    return run(process.execPath, [CLI, 'ctl', '--api', this.api, ...args], {
      netns: this.opts.netns,
    });
  }

  /** Log lines (all processes, or one pid), optionally only those with this `event`. */
  events(event?: string | RegExp, pid?: number): LogEvent[] {
    let text: string;
    try {
      text = readFileSync(this.logFile, 'utf8');
    } catch {
      return [];
    }
    const out: LogEvent[] = [];
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      let e: LogEvent;
      try {
        e = JSON.parse(line) as LogEvent;
      } catch {
        continue;
      }
      if (pid !== undefined && e.pid !== pid) continue;
      if (event !== undefined) {
        const name = e.event ?? '';
        if (typeof event === 'string' ? name !== event : !event.test(name)) continue;
      }
      out.push(e);
    }
    return out;
  }

  /** Waits until a log line with `event` satisfies `pred` (checked on lines after `since`). */
  waitEvent(
    what: string,
    event: string,
    pred: (e: LogEvent) => boolean = () => true,
    opts: { timeoutMs?: number; since?: number } = {},
  ): Promise<LogEvent> {
    const since = opts.since ?? 0;
    return this.proc.waitFor(what, () => this.events(event).slice(since).find(pred), {
      timeoutMs: opts.timeoutMs ?? 15_000,
      intervalMs: 25,
    });
  }

  /** Number of log lines with `event` so far (a mark for waitEvent's `since`). */
  mark(event: string): number {
    return this.events(event).length;
  }

  /** The last lines of the log without per-frame debug noise (for failure reports). */
  logTail(lines = 40): string {
    let text: string;
    try {
      text = readFileSync(this.logFile, 'utf8');
    } catch {
      return '(no log)';
    }
    const keep = text.split('\n').filter((l) => l !== '' && !l.includes('"frame.dropped"'));
    return keep.slice(-lines).join('\n');
  }
}

/**
 * Where the logs of a failed interop file are copied (the lab directory itself is removed on
 * close). CI prints the tails in the failure message; the full files stay here.
 */
export const FAILED_LOG_DIR = '/tmp/splitnve-interop-failures';

/** For `withLogs`: the log tails (30 lines) of the daemons started so far, by name. */
export function daemonTails(
  daemons: () => Record<string, SplitnveDaemon | undefined>,
): () => { name: string; tail: () => string }[] {
  return () =>
    Object.entries(daemons())
      .filter((x): x is [string, SplitnveDaemon] => x[1] !== undefined)
      .map(([name, d]) => ({ name, tail: () => d.logTail(30) }));
}

/**
 * Wraps a test body: on failure, the error message gets the log tails of `logs()` (our daemons
 * and lldpad) and the lab files are copied to FAILED_LOG_DIR/<lab id>/.
 */
export function withLogs<T>(
  lab: () => Lab | undefined,
  logs: () => { name: string; tail: () => string }[],
  fn: (t: T) => Promise<void>,
): (t: T) => Promise<void> {
  return async (t: T) => {
    try {
      await fn(t);
    } catch (e) {
      const parts: string[] = [];
      for (const l of logs()) parts.push(`----- ${l.name} (tail) -----\n${l.tail()}`);
      const l = lab();
      if (l) {
        const dest = join(FAILED_LOG_DIR, l.id);
        try {
          mkdirSync(dest, { recursive: true });
          for (const f of readdirSync(l.dir)) {
            if (/\.(log|pcapng|pcap|json|conf)$/.test(f))
              copyFileSync(join(l.dir, f), join(dest, f));
          }
          parts.push(`(full logs and captures copied to ${dest})`);
        } catch (err) {
          parts.push(`(could not copy logs: ${(err as Error).message})`);
        }
      }
      const msg = e instanceof Error ? e.message : String(e);
      const wrapped = new Error(`${msg}\n${parts.join('\n')}`, { cause: e });
      if (e instanceof Error && e.stack) wrapped.stack = `${wrapped.message}\n${e.stack}`;
      throw wrapped;
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Captures

/** dumpcap on one interface inside a namespace, writing pcapng to the lab directory. */
export class Capture {
  private constructor(
    readonly proc: ManagedProcess,
    readonly file: string,
  ) {}

  static async start(
    lab: Lab,
    netns: string,
    ifnames: string | readonly string[],
    name: string,
  ): Promise<Capture> {
    const ifs = typeof ifnames === 'string' ? [ifnames] : ifnames;
    const file = lab.file(`${name}.pcapng`);
    const proc = lab.spawn({
      name: `dumpcap-${name}`,
      netns,
      cmd: 'dumpcap',
      args: [
        ...ifs.flatMap((i) => ['-i', i, '-f', 'ether proto 0x8940 or ether proto 0x88cc']),
        '-w',
        file,
      ],
    });
    await proc.waitFor(
      `dumpcap on ${ifs.join(', ')} (netns ${netns})`,
      () => /Capturing on/.test(proc.logTail(10)) && existsSync(file),
    );
    return new Capture(proc, file);
  }

  /**
   * Stops dumpcap (SIGTERM: it finishes the file) and returns the file. Waits a little first:
   * dumpcap writes what its capture buffer holds on its read timeout, and frames still in the
   * buffer at SIGTERM were seen lost (the last ~100 ms before the signal).
   */
  async stop(): Promise<string> {
    await sleep(1500);
    await this.proc.stop(5000);
    return this.file;
  }
}

export interface FrameCheck {
  /** Frames in the capture. */
  readonly frames: number;
  /** Frames sent by one of `sources`. */
  readonly checked: number;
  /** Problems found, one line each ('' free when clean). */
  readonly problems: string[];
  /** Protocol stacks seen in checked frames (tshark frame.protocols, builtin dissectors). */
  readonly protocols: Set<string>;
}

interface TsharkRow {
  number: number;
  src: string;
  protocols: string;
  severities: number[];
  messages: string;
  malformed: boolean;
}

const EXPERT_WARN = 0x00600000;

async function tsharkRows(file: string, lua: boolean): Promise<TsharkRow[]> {
  const args = [
    '-n',
    ...(lua ? ['-X', `lua_script:${LUA_DISSECTOR}`] : []),
    '-r',
    file,
    '-T',
    'fields',
    '-E',
    'occurrence=a',
    '-E',
    'aggregator=|',
    '-E',
    'separator=/t',
    '-e',
    'frame.number',
    '-e',
    'eth.src',
    '-e',
    'frame.protocols',
    '-e',
    '_ws.expert.severity',
    '-e',
    '_ws.expert.message',
    '-e',
    '_ws.malformed',
  ];
  const r = await runOk('tshark', args, { timeoutMs: 60_000 });
  const stderr = r.stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('Running as user'));
  if (stderr.length > 0) throw new Error(`tshark ${args.join(' ')} printed: ${stderr.join('\n')}`);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const c = l.split('\t');
      return {
        number: Number(c[0]),
        src: (c[1] ?? '').toLowerCase(),
        protocols: c[2] ?? '',
        severities: (c[3] ?? '') === '' ? [] : c[3]!.split('|').map(Number),
        messages: c[4] ?? '',
        malformed: (c[5] ?? '') !== '' || /malformed/i.test(c[2] ?? ''),
      };
    });
}

/**
 * Every frame of `file` sent from one of `sources` (our daemons' MACs) must decode with no
 * malformed packet and no expert warning or error: with tshark's own dissectors, with tshark and
 * our Lua dissector, and with `splitnve decode`. Returns the problems found.
 */
export async function checkFrames(
  file: string,
  sources: readonly string[],
  opts: { refusalEcho?: RegExp } = {},
): Promise<FrameCheck> {
  const ours = new Set(sources.map((s) => s.toLowerCase()));
  const problems: string[] = [];
  const protocols = new Set<string>();
  // A refusal echoes the request it refuses (WIRE.md: a response copies the filter), so a
  // refused VID 1 or unknown filter format reappears in it: decoders may flag exactly that
  // echoed field (and nothing else) in frames carrying only refusals.
  const refusals = new Set<number>();
  if (opts.refusalEcho) {
    for (const f of await decodeCapture(file)) {
      const vsis = (f.vdp ?? []).filter((t) => t.type !== undefined && t.type >= 1 && t.type <= 4);
      const refused = (t: (typeof vsis)[number]): boolean =>
        ((t.status?.raw ?? (t.value ? parseInt(t.value.slice(0, 2), 16) : 0)) & 0x4f) > 0x40;
      if (vsis.length > 0 && vsis.every(refused)) refusals.add(f.frame);
    }
  }
  const echoOk = (frame: number, message: string): boolean =>
    refusals.has(frame) &&
    opts.refusalEcho !== undefined &&
    message.split('|').every((m) => opts.refusalEcho!.test(m));
  const builtin = await tsharkRows(file, false);
  const lua = await tsharkRows(file, true);
  let checked = 0;
  for (const [label, rows] of [
    ['tshark', builtin],
    ['tshark+splitnve.lua', lua],
  ] as const) {
    for (const r of rows) {
      if (!ours.has(r.src)) continue;
      if (label === 'tshark') {
        checked++;
        protocols.add(r.protocols);
      }
      if (echoOk(r.number, r.messages)) continue;
      if (r.malformed) problems.push(`${label}: frame ${r.number}: malformed (${r.protocols})`);
      const bad = r.severities.filter((s) => s >= EXPERT_WARN);
      if (bad.length > 0)
        problems.push(`${label}: frame ${r.number} (${r.protocols}): expert ${r.messages}`);
    }
    if (label === 'tshark+splitnve.lua') {
      for (const r of rows) {
        if (ours.has(r.src) && !/splitnve|snve/i.test(r.protocols))
          problems.push(`${label}: frame ${r.number} not decoded by splitnve.lua (${r.protocols})`);
      }
    }
  }
  const d = await run(process.execPath, [CLI, 'decode', file], { timeoutMs: 60_000 });
  if (d.code !== 0) problems.push(`splitnve decode exited ${d.code}: ${d.stderr.trim()}`);
  const lines = d.stdout.split('\n').filter((l) => l !== '');
  for (const line of lines) {
    const f = JSON.parse(line) as {
      frame?: number;
      ethernet?: { source?: string };
      error?: unknown;
      warnings?: unknown[];
      vdp?: { name?: string; error?: unknown }[];
    };
    if (!f.ethernet?.source || !ours.has(f.ethernet.source)) {
      if (f.error && !f.ethernet) problems.push(`splitnve decode: ${JSON.stringify(f)}`);
      continue;
    }
    if (f.error) problems.push(`splitnve decode: frame ${f.frame}: ${JSON.stringify(f.error)}`);
    if (f.warnings && f.warnings.length > 0)
      problems.push(`splitnve decode: frame ${f.frame}: ${JSON.stringify(f.warnings)}`);
    for (const t of f.vdp ?? []) {
      const em = (t.error as { message?: string } | undefined)?.message ?? '';
      if (t.name === 'malformed' && f.frame !== undefined && echoOk(f.frame, em)) continue;
      if (t.name === 'malformed' || t.error)
        problems.push(`splitnve decode: frame ${f.frame}: ${JSON.stringify(t)}`);
    }
  }
  if (lines.length !== builtin.length)
    problems.push(`splitnve decode gave ${lines.length} frames, tshark ${builtin.length}`);
  return { frames: builtin.length, checked, problems, protocols };
}

/** Waits until `fn` holds (a thin alias for tests that poll the API). */
export function poll<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 15_000,
): Promise<T> {
  return waitUntil(what, fn, { timeoutMs, intervalMs: 50 });
}

interface DecodedLine {
  readonly frame: number;
  readonly time?: number;
  readonly ethernet?: { readonly source: string; readonly destination: string };
  readonly ecp?: { readonly op: number; readonly sequence: number };
  readonly vdp?: {
    readonly name?: string;
    readonly type?: number;
    readonly vsiId?: string;
    readonly status?: { readonly response?: boolean; readonly raw?: number };
    /** Malformed TLVs: the value in hex (its first octet is the status). */
    readonly value?: string;
    readonly entries?: { readonly vid?: number }[];
  }[];
}

/** `splitnve decode` of a capture, one object per frame. */
export async function decodeCapture(file: string): Promise<DecodedLine[]> {
  const d = await runOk(process.execPath, [CLI, 'decode', file], { timeoutMs: 60_000 });
  return d.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as DecodedLine);
}

/**
 * VDP request -> response latencies seen on the wire: for every VSI TLV request from
 * `requester`, the time until the first response TLV for the same VSI id and type from
 * `responder` (ms). Keep-alives count as requests too.
 */
export function vdpLatencies(
  frames: readonly DecodedLine[],
  requester: string,
  responder: string,
): number[] {
  const pending = new Map<string, number>();
  const out: number[] = [];
  for (const f of frames) {
    if (!f.ecp || f.ecp.op !== 0 || f.time === undefined || !f.ethernet) continue;
    for (const t of f.vdp ?? []) {
      if (t.vsiId === undefined || t.type === undefined) continue;
      const k = `${t.type}|${t.vsiId}`;
      if (f.ethernet.source === requester && !t.status?.response) {
        if (!pending.has(k)) pending.set(k, f.time);
      } else if (f.ethernet.source === responder && t.status?.response) {
        const at = pending.get(k);
        if (at !== undefined) out.push((f.time - at) * 1000);
        pending.delete(k);
      }
    }
  }
  return out;
}

/** "median m ms, max x ms (n)" for diagnostics. */
export function describeMs(xs: readonly number[]): string {
  if (xs.length === 0) return 'none';
  const s = [...xs].sort((a, b) => a - b);
  const med = s[Math.floor(s.length / 2)]!;
  return `median ${med.toFixed(2)} ms, p90 ${s[Math.floor(s.length * 0.9)]!.toFixed(2)} ms, max ${s[s.length - 1]!.toFixed(2)} ms (n=${s.length})`;
}
