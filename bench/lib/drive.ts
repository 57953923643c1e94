/** Ways of offering load to the bridge through the load generator. */
import { sleep, waitUntil } from '../../test/harness/proc.js';
import type { VsiMode, VsiSpec } from '../../src/vdp/types.js';
import type { LoadGen, RequestRecord } from './loadgen.js';

let nextId = 0;

export function requestId(prefix: string): string {
  return `${prefix}${++nextId}`;
}

export interface BulkResult {
  readonly requested: number;
  readonly ok: number;
  /** Requests that failed the first time (then issued again). */
  readonly failedFirst: number;
  readonly failed: number;
  readonly firstError: string | undefined;
  /** From the first request handed to a station until the last result (ms). */
  readonly ms: number;
  /** Per request, time from hand-over to result (ms), successful ones. */
  readonly latenciesMs: number[];
}

/**
 * Associates `specs[i]` on station i (each station's requests handed over at once), keeping at
 * most `concurrency` stations busy: a closed loop, as an orchestrator with a worker pool would.
 * Failed requests are issued again (up to `rounds` times).
 */
export async function associateAll(
  g: LoadGen,
  specs: readonly (readonly VsiSpec[])[],
  opts: { concurrency: number; timeoutMs: number; rounds?: number; mode?: VsiMode },
): Promise<BulkResult> {
  const mode = opts.mode ?? 3;
  const t0 = performance.now();
  const records: RequestRecord[] = [];
  let failedFirst = 0;
  let firstError: string | undefined;
  let todo = specs.map((list, station) => ({ station, list: [...list] }));
  for (let round = 0; round <= (opts.rounds ?? 2) && todo.some((t) => t.list.length > 0); round++) {
    const pending = new Map<number, number>();
    const queue = todo.filter((t) => t.list.length > 0);
    const failedNow: { station: number; list: VsiSpec[] }[] = [];
    const byId = new Map<string, { station: number; spec: VsiSpec }>();
    let next = 0;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const start = (): void => {
      while (pending.size < opts.concurrency && next < queue.length) {
        const t = queue[next++]!;
        pending.set(t.station, t.list.length);
        const reqs = t.list.map((spec) => {
          const id = requestId('a');
          byId.set(id, { station: t.station, spec });
          return { station: t.station, req: { mode, spec, requestId: id } };
        });
        g.requestMany(reqs);
        for (const r of reqs) records.push(g.requests.get(r.req.requestId)!);
      }
      if (pending.size === 0 && next >= queue.length) resolveDone();
    };
    const off = g.on((station, e) => {
      if (e.type !== 'request-result' || e.requestId === undefined) return;
      const what = byId.get(e.requestId);
      if (!what) return;
      if (!e.ok) {
        if (round === 0) failedFirst++;
        firstError ??= `${e.error}: ${e.message}`;
        let f = failedNow.find((x) => x.station === station);
        if (!f) failedNow.push((f = { station, list: [] }));
        f.list.push(what.spec);
      }
      const left = (pending.get(station) ?? 1) - 1;
      if (left > 0) pending.set(station, left);
      else {
        pending.delete(station);
        setImmediate(start);
      }
    });
    start();
    const timer = setTimeout(resolveDone, opts.timeoutMs);
    await done;
    clearTimeout(timer);
    off();
    todo = failedNow;
  }
  const okRecs = records.filter((r) => r.ok);
  const last = Math.max(t0, ...records.map((r) => r.t1 ?? 0));
  const requested = specs.reduce((a, l) => a + l.length, 0);
  return {
    requested,
    ok: okRecs.length,
    failedFirst,
    failed: requested - okRecs.length,
    firstError,
    ms: last - t0,
    latenciesMs: okRecs.map((r) => r.t1! - r.t0),
  };
}

/**
 * Offers `rate` requests per second for `seconds`, round-robin over `stations` (request k goes to
 * station k % stations), then waits for every result. `make(k)` gives request k's station and spec.
 */
export async function paced(
  g: LoadGen,
  opts: {
    rate: number;
    seconds: number;
    make: (k: number) => { station: number; spec: VsiSpec };
    timeoutMs: number;
  },
): Promise<{ records: RequestRecord[]; offeredMs: number }> {
  const total = Math.round(opts.rate * opts.seconds);
  const records: RequestRecord[] = [];
  let issued = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * opts.rate) + 1);
      while (issued < due) {
        const { station, spec } = opts.make(issued);
        records.push(g.request(station, { mode: 3, spec, requestId: requestId('p') }));
        issued++;
      }
      if (issued >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  const offeredMs = performance.now() - t0;
  await waitUntil(
    'results of every paced request',
    () => records.every((r) => r.t1 !== undefined),
    { timeoutMs: opts.timeoutMs, intervalMs: 10 },
  ).catch(() => undefined);
  await sleep(0);
  return { records, offeredMs };
}
