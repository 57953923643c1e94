/**
 * The event log of a daemon: every log line that carries a stable `event` name (pino, see
 * docs/events.md) is also a record here, whatever the log level says.
 *
 * - `wrapLogger(inner, log)` returns the logger the daemon uses: each call is published to the
 *   event log first, then handed to `inner` (the real pino logger writing JSON lines, which
 *   applies the configured level). Setting `level` on the wrapper sets it on `inner`.
 * - A ring buffer keeps the most recent records (`recent`), numbered by `seq`. A record is kept
 *   as the JSON text of its fields (a snapshot: later changes of the logged objects do not show)
 *   and becomes an object only when read: publishing is on the protocol path of every step, and
 *   a tree of objects per record made young-generation collections copy every one of them.
 * - Subscribers (the SSE stream of `GET /v1/log/stream`, the dashboard) get each record as it
 *   is published; a reconnecting client resumes after its `Last-Event-ID`. `onPublish` hands
 *   over only the event type and level (metrics).
 * - `readLogFile`/`followLogFile` read the same records back from a file of pino JSON lines
 *   (`splitnve ctl events --file`).
 */
import { closeSync, openSync, readSync, statSync, watch } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { pino, type Logger } from 'pino';

export interface EventRecord {
  /** Position in this daemon's event log (1, 2, …; restarts at 1 with the daemon). */
  readonly seq: number;
  /** ISO 8601 time of the log call. */
  readonly time: string;
  readonly level: string;
  /** Stable event type, e.g. `tsi.state` (docs/events.md). */
  readonly event: string;
  readonly msg?: string;
  readonly [field: string]: unknown;
}

export interface EventQuery {
  /** Only records with a larger seq. */
  readonly since?: number;
  /** At most this many (the most recent). */
  readonly limit?: number;
  /** Only these event types; a trailing `*` matches a prefix (`tsi.*`). */
  readonly events?: readonly string[];
}

/** Makes a field value JSON-safe: bytes as hex, bigint as text, errors as their message. */
function jsonSafe(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (v instanceof Error) return v.message;
  return v;
}

export function matchesEvents(event: string, patterns: readonly string[] | undefined): boolean {
  if (!patterns || patterns.length === 0) return true;
  return patterns.some((p) => (p.endsWith('*') ? event.startsWith(p.slice(0, -1)) : event === p));
}

/** A record as the ring keeps it: the fields as JSON text, made an EventRecord when read. */
class Stored {
  constructor(
    readonly seq: number,
    /** Epoch ms of the log call. */
    readonly at: number,
    readonly level: string,
    readonly event: string,
    readonly msg: string | undefined,
    /** JSON of the logged fields (`event` included), or undefined if they could not be. */
    readonly fields: string | undefined,
  ) {}

  record(): EventRecord {
    let body: Record<string, unknown> = { unserializable: true };
    if (this.fields !== undefined) {
      body = JSON.parse(this.fields) as Record<string, unknown>;
      delete body.event;
    }
    return {
      ...body,
      seq: this.seq,
      time: new Date(this.at).toISOString(),
      level: this.level,
      event: this.event,
      ...(this.msg !== undefined ? { msg: this.msg } : {}),
    };
  }
}

export class EventLog {
  private readonly ring: Stored[] = [];
  private start = 0;
  private seq = 0;
  private readonly subscribers = new Set<(r: EventRecord) => void>();
  private readonly publishHooks = new Set<(event: string, level: string) => void>();
  private readonly clients = new Set<ServerResponse>();
  private heartbeat: NodeJS.Timeout | undefined;
  /** Records published since start, by event type. */
  readonly counts = new Map<string, number>();

  constructor(
    readonly daemon: string,
    /** Records kept for `recent` and for clients that reconnect. */
    readonly capacity = 2000,
  ) {}

  get lastSeq(): number {
    return this.seq;
  }

  /** Records one log call; returns its seq. */
  publish(level: string, fields: Record<string, unknown>, msg?: string): number {
    const event = String(fields.event);
    let json: string | undefined;
    try {
      json = JSON.stringify(fields, jsonSafe);
    } catch {
      json = undefined;
    }
    const r = new Stored(++this.seq, Date.now(), level, event, msg, json);
    if (this.ring.length < this.capacity) this.ring.push(r);
    else {
      this.ring[this.start] = r;
      this.start = (this.start + 1) % this.capacity;
    }
    this.counts.set(event, (this.counts.get(event) ?? 0) + 1);
    for (const h of this.publishHooks) {
      try {
        h(event, level);
      } catch {
        // a hook's failure must not stop the daemon's logging
      }
    }
    if (this.subscribers.size > 0) {
      const rec = r.record();
      for (const s of this.subscribers) {
        try {
          s(rec);
        } catch {
          // a subscriber's failure must not stop the daemon's logging
        }
      }
    }
    return r.seq;
  }

  /** The records still in the ring buffer, oldest first, filtered. */
  recent(q: EventQuery = {}): EventRecord[] {
    const all = [...this.ring.slice(this.start), ...this.ring.slice(0, this.start)];
    const out = all.filter(
      (r) => (q.since === undefined || r.seq > q.since) && matchesEvents(r.event, q.events),
    );
    const kept =
      q.limit !== undefined && out.length > q.limit ? out.slice(out.length - q.limit) : out;
    return kept.map((r) => r.record());
  }

  /** Every record as it is published (as an object: for streams, not for the hot path). */
  subscribe(fn: (r: EventRecord) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  /** The type and level of every record as it is published (cheap: nothing is parsed). */
  onPublish(fn: (event: string, level: string) => void): () => void {
    this.publishHooks.add(fn);
    return () => this.publishHooks.delete(fn);
  }

  /**
   * Serves a server-sent event stream on a raw response: first the buffered records after
   * `since` (a reconnect's Last-Event-ID), then every new one. Each record is one SSE message
   * (no event name: filter with `events`), its id the seq and its data the record as JSON.
   */
  stream(res: ServerResponse, q: EventQuery = {}): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 1000\n: splitnve ${this.daemon} event log, seq ${this.seq}\n\n`);
    const send = (r: EventRecord): void => {
      if (!matchesEvents(r.event, q.events)) return;
      res.write(`id: ${r.seq}\ndata: ${JSON.stringify(r)}\n\n`);
    };
    if (q.since !== undefined || q.limit !== undefined) for (const r of this.recent(q)) send(r);
    const unsubscribe = this.subscribe(send);
    this.clients.add(res);
    res.on('close', () => {
      unsubscribe();
      this.clients.delete(res);
    });
    if (!this.heartbeat) {
      this.heartbeat = setInterval(() => {
        for (const c of this.clients) c.write(': keep-alive\n\n');
      }, 15_000);
      this.heartbeat.unref();
    }
  }

  get streams(): number {
    return this.clients.size;
  }

  /** Ends every open stream (before the HTTP server closes, which waits for them). */
  close(): void {
    for (const c of this.clients) c.end();
    this.clients.clear();
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }
}

const sink = { write(): void {} };

/**
 * The daemon's logger: publishes every call whose first argument has an `event` field to
 * `events`, then passes the call to `inner` (whose level decides what is written).
 */
export function wrapLogger(
  inner: Logger,
  events: EventLog,
  bindings: Record<string, unknown> = {},
): Logger {
  const wrapper: Logger = pino(
    {
      level: 'trace',
      hooks: {
        logMethod(args, _method, level) {
          const label = wrapper.levels.labels[level] ?? 'info';
          const first = args[0] as unknown;
          if (first && typeof first === 'object' && 'event' in first) {
            const fields = first as Record<string, unknown>;
            if (typeof fields.event === 'string') {
              const msg = typeof args[1] === 'string' ? args[1] : undefined;
              events.publish(
                label,
                Object.keys(bindings).length ? { ...bindings, ...fields } : fields,
                msg,
              );
            }
          }
          const fn = (inner as unknown as Record<string, (...a: unknown[]) => void>)[label];
          if (typeof fn === 'function') fn.apply(inner, args as unknown[]);
        },
      },
    },
    sink,
  );
  Object.defineProperty(wrapper, 'level', {
    configurable: true,
    enumerable: true,
    get: () => inner.level,
    set: (v: string) => {
      inner.level = v;
    },
  });
  (wrapper as { child: unknown }).child = (b: Record<string, unknown>, o?: object) =>
    wrapLogger(inner.child(b, o), events, { ...bindings, ...b });
  return wrapper;
}

/** Parses pino JSON lines into event records (lines without `event` are skipped). */
export function parseLogLines(text: string): EventRecord[] {
  const out: EventRecord[] = [];
  let n = 0;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (typeof o.event !== 'string') continue;
    n++;
    const level =
      typeof o.level === 'number'
        ? (pino.levels.labels[o.level] ?? String(o.level))
        : String(o.level ?? 'info');
    const time = typeof o.time === 'number' ? new Date(o.time).toISOString() : String(o.time ?? '');
    out.push({ ...o, seq: n, level, time, event: o.event } as EventRecord);
  }
  return out;
}

/**
 * Follows a log file like `tail -f`: calls `onRecord` for each event record appended after
 * `fromOffset` (default: the current end). Handles truncation (log rotation by copy). Returns a
 * stop function.
 */
export function followLogFile(
  path: string,
  onRecord: (r: EventRecord) => void,
  fromOffset?: number,
): () => void {
  let offset = fromOffset ?? statSync(path).size;
  let partial = '';
  let seq = 0;
  const read = (): void => {
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      return;
    }
    if (size < offset) {
      offset = 0;
      partial = '';
    }
    if (size === offset) return;
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.alloc(size - offset);
      const n = readSync(fd, buf, 0, buf.length, offset);
      offset += n;
      partial += buf.subarray(0, n).toString('utf8');
    } finally {
      closeSync(fd);
    }
    const end = partial.lastIndexOf('\n');
    if (end < 0) return;
    const complete = partial.slice(0, end + 1);
    partial = partial.slice(end + 1);
    for (const r of parseLogLines(complete)) onRecord({ ...r, seq: ++seq });
  };
  const watcher = watch(path, () => read());
  // fs.watch misses events on some file systems: poll as well.
  const timer = setInterval(read, 500);
  read();
  return () => {
    watcher.close();
    clearInterval(timer);
  };
}
