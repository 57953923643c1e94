/**
 * `splitnve ctl` subcommands for operations, on either daemon: info, VLAN pools, drains, VMs,
 * the event log (`events [--follow]`, also from a log file), metrics, drain/undrain, reload,
 * the route list, and `get PATH` for any GET route. Human tables by default, `--json` for
 * scripts.
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { EventRecord } from '../daemon/eventlog.js';
import { followLogFile, parseLogLines } from '../daemon/eventlog.js';
import { apiCall, followEvents } from '../tnve/client.js';
import { ctlFetch, renderTable } from './ctl.js';
import { readFileSync } from 'node:fs';

interface Global {
  readonly api: string;
  readonly json?: boolean;
}

function intArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`not a count: ${v}`);
  return n;
}

async function run(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    console.error(`splitnve ctl: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}

function print(g: Global, what: string, data: unknown): void {
  console.log(g.json ? JSON.stringify(data, null, 2) : renderTable(what, data));
}

/** `hh:mm:ss.mmm` of an ISO time (local clock of the daemon's log, UTC). */
function clock(iso: string): string {
  const m = /T(\d\d:\d\d:\d\d(?:\.\d{1,3})?)/.exec(iso);
  return m ? m[1]!.padEnd(12, '0') : iso;
}

const RECORD_META = new Set(['seq', 'time', 'level', 'event', 'msg', 'pid', 'daemon', 'name']);

/** One line per event: time, level, event type, message (or its fields when it has none). */
export function formatEvent(r: EventRecord): string {
  let text = r.msg;
  if (!text) {
    text = Object.entries(r)
      .filter(([k]) => !RECORD_META.has(k))
      .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
      .join(' ');
  }
  return `${clock(r.time)}  ${r.level.padEnd(5)}  ${r.event.padEnd(18)}  ${text}`;
}

/** Prometheus text format -> samples. */
export function parseMetrics(
  text: string,
): { name: string; labels: Record<string, string>; value: number }[] {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

async function getText(api: string, path: string): Promise<string> {
  const { request } = await import('node:http');
  const { parseApiAddress } = await import('../tnve/client.js');
  const addr = parseApiAddress(api);
  return new Promise((resolve, reject) => {
    const req = request({ ...addr, path, method: 'GET', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const t = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 0) >= 400) reject(new Error(`GET ${path}: HTTP ${res.statusCode}`));
        else resolve(t);
      });
    });
    req.on('error', (e) => reject(new Error(`cannot reach the daemon at ${api}: ${e.message}`)));
    req.end();
  });
}

/** Follows the daemon's event log, reconnecting (and resuming after the last seq) until Ctrl-C. */
async function follow(
  g: Global,
  q: { limit: number; event?: string },
  onRecord: (r: EventRecord) => void,
  signal: AbortSignal,
): Promise<void> {
  let last: number | undefined;
  let startedAt: string | undefined;
  for (;;) {
    const params = new URLSearchParams();
    if (q.event) params.set('event', q.event);
    try {
      const info = await apiCall<{ startedAt: string }>(g.api, 'GET', '/v1/info');
      if (startedAt !== undefined && info.startedAt !== startedAt) {
        if (!g.json) console.error('# the daemon restarted: its event log starts again');
        last = 0;
      }
      startedAt = info.startedAt;
      if (last !== undefined) params.set('since', String(last));
      else params.set('limit', String(q.limit));
      await followEvents(
        g.api,
        (e) => {
          const r = e.data as EventRecord;
          if (typeof r !== 'object' || r === null || typeof r.seq !== 'number') return;
          last = r.seq;
          onRecord(r);
        },
        signal,
        `/v1/log/stream?${params}`,
      );
    } catch (e) {
      if (signal.aborted) return;
      if (last === undefined) throw e;
      if (!g.json) console.error(`# ${(e as Error).message}; reconnecting`);
    }
    if (signal.aborted) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export function registerCtlOps(ctl: Command): void {
  const g = (): Global => ctl.opts<Global>();
  const has = (name: string): boolean => ctl.commands.some((c) => c.name() === name);
  const view = (name: string, path: string, description: string, columns = name): void => {
    if (has(name)) return;
    ctl
      .command(name)
      .description(description)
      .action(() => run(async () => print(g(), columns, await ctlFetch(g().api, path))));
  };
  view('info', '/v1/info', 'which daemon, version, uptime, log level, event log state');
  view('tsis', '/v1/vsis', 'show TSIs (VSIs) with their states', 'vsis');
  view('pools', '/v1/pools', 'show VLAN pool use per segment (nNVE)');
  view('drains', '/v1/drains', 'show drained stations (nNVE)');
  view('vns', '/v1/vns', 'show VNs');

  ctl
    .command('vms')
    .description('show VMs, one line per interface (tNVE)')
    .action(() =>
      run(async () => {
        const vms = (await ctlFetch(g().api, '/v1/vms')) as {
          name: string;
          state: string;
          note: string | null;
          interfaces: {
            vsiId: string;
            vni: number;
            tsiState: string;
            localTag: { uplink: string; vid: number } | null;
          }[];
        }[];
        if (g().json) return print(g(), 'vms', vms);
        const rows = vms.flatMap((v) =>
          (v.interfaces.length ? v.interfaces : [undefined]).map((i) => ({
            vm: v.name,
            state: v.state,
            vsi: i?.vsiId,
            vni: i?.vni,
            tsi: i?.tsiState,
            tag: i?.localTag ? `${i.localTag.vid}@${i.localTag.uplink}` : undefined,
            note: v.note,
          })),
        );
        print(g(), 'vms', rows);
      }),
    );

  ctl
    .command('get')
    .description('GET any API path (see `ctl routes`)')
    .argument('<path>', 'e.g. /v1/stats')
    .action((path: string) =>
      run(async () => {
        const p = path.startsWith('/') ? path : `/${path}`;
        if (p === '/metrics') return console.log(await getText(g().api, p));
        print(g(), p, await ctlFetch(g().api, p));
      }),
    );

  ctl
    .command('routes')
    .description("list the daemon's API routes (from its /openapi.json)")
    .action(() =>
      run(async () => {
        const doc = (await ctlFetch(g().api, '/openapi.json')) as {
          paths: Record<string, Record<string, { summary?: string; tags?: string[] }>>;
        };
        const rows = Object.entries(doc.paths).flatMap(([path, ops]) =>
          Object.entries(ops).map(([method, op]) => ({
            method: method.toUpperCase(),
            path,
            tag: op.tags?.[0],
            summary: op.summary,
          })),
        );
        print(g(), 'routes', rows);
      }),
    );

  ctl
    .command('metrics')
    .description('show Prometheus metrics (splitnve_* unless --all)')
    .option('--all', 'also process and Node.js metrics, histogram buckets')
    .option('--match <text>', 'only metrics whose name contains this')
    .action((o: { all?: boolean; match?: string }) =>
      run(async () => {
        const samples = parseMetrics(await getText(g().api, '/metrics')).filter(
          (s) =>
            (o.all || (s.name.startsWith('splitnve_') && !s.name.endsWith('_bucket'))) &&
            (!o.match || s.name.includes(o.match)),
        );
        if (g().json) return print(g(), 'metrics', samples);
        print(
          g(),
          'metrics',
          samples.map((s) => ({
            name: s.name,
            labels: Object.entries(s.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
            value: s.value,
          })),
        );
      }),
    );

  ctl
    .command('events')
    .description("print the daemon's recent events; --follow keeps printing new ones")
    .option('-f, --follow', 'keep printing events as they happen (Ctrl-C to stop)')
    .option('-n, --limit <n>', 'how many recent events (default 50; with --follow 10)', intArg)
    .option('--since <seq>', 'only events after this seq', intArg)
    .option('--event <types>', 'only these event types, e.g. tsi.state,admin.* ')
    .option('--file <path>', 'read a log file of the daemon (JSON lines) instead of its API')
    .action(
      (o: { follow?: boolean; limit?: number; since?: number; event?: string; file?: string }) =>
        run(async () => {
          const gl = g();
          const out = (r: EventRecord): void => {
            console.log(gl.json ? JSON.stringify(r) : formatEvent(r));
          };
          const limit = o.limit ?? (o.follow ? 10 : 50);
          const patterns = o.event?.split(',').filter(Boolean);
          const wanted = (r: EventRecord): boolean =>
            !patterns ||
            patterns.some((p) =>
              p.endsWith('*') ? r.event.startsWith(p.slice(0, -1)) : r.event === p,
            );
          if (o.file) {
            const all = parseLogLines(readFileSync(o.file, 'utf8')).filter(
              (r) => wanted(r) && (o.since === undefined || r.seq > o.since),
            );
            for (const r of all.slice(Math.max(0, all.length - limit))) out(r);
            if (!o.follow) return;
            await new Promise<void>((resolve) => {
              const stop = followLogFile(o.file!, (r) => wanted(r) && out(r));
              process.once('SIGINT', () => {
                stop();
                resolve();
              });
            });
            return;
          }
          if (!o.follow) {
            const params = new URLSearchParams({ limit: String(limit) });
            if (o.since !== undefined) params.set('since', String(o.since));
            if (o.event) params.set('event', o.event);
            const recs = (await ctlFetch(gl.api, `/v1/log?${params}`)) as EventRecord[];
            if (gl.json) console.log(JSON.stringify(recs, null, 2));
            else for (const r of recs) out(r);
            return;
          }
          const ac = new AbortController();
          process.once('SIGINT', () => ac.abort());
          await follow(
            gl,
            { limit, ...(o.event ? { event: o.event } : {}) },
            (r) => (o.since === undefined || r.seq > o.since) && out(r),
            ac.signal,
          );
        }),
    );

  ctl
    .command('drain')
    .description('de-associate every VSI of a station and refuse new ones until undrained (nNVE)')
    .requiredOption('--station <mac>', 'station MAC')
    .option('--port <port>', 'only on this port (default: every port)')
    .option('--reason <text>', 'why (kept with the drain)')
    .action((a: { station: string; port?: string; reason?: string }) =>
      run(async () => print(g(), 'result', await ctlFetch(g().api, '/v1/drain', a))),
    );
  ctl
    .command('undrain')
    .description('accept a drained station again (nNVE)')
    .requiredOption('--station <mac>', 'station MAC')
    .option('--port <port>', 'the port it was drained on (default: every port)')
    .action((a: { station: string; port?: string }) =>
      run(async () => print(g(), 'result', await ctlFetch(g().api, '/v1/undrain', a))),
    );
  ctl
    .command('reload')
    .description('re-read the configuration (the same as SIGHUP)')
    .action(() => run(async () => print(g(), 'result', await ctlFetch(g().api, '/v1/reload', {}))));
}
