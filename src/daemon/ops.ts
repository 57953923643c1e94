/**
 * What both daemons serve for operators, next to their own API: the event log (ring buffer and
 * server-sent events), Prometheus metrics, the OpenAPI document, the dashboard, daemon info, and
 * a reload (the same as SIGHUP). A daemon creates one `DaemonOps` before anything logs, wraps its
 * logger with it, hands its driver's frames and node events to `metrics`, and calls `attach`.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ApiError } from './api.js';
import { registerDashboard } from './dashboard.js';
import type { NodeDriver } from './driver.js';
import { EventLog, wrapLogger, type EventQuery } from './eventlog.js';
import type { Logger } from './logger.js';
import { DaemonMetrics } from './metrics.js';
import { addRouteDocs, buildOpenApi, type RouteDocs } from './openapi.js';
import type { Role } from './frame-tap.js';

let version: string | undefined;

/** The DaemonOps whose wrapper each logger is (daemons find theirs from the logger they get). */
const byLogger = new WeakMap<Logger, DaemonOps>();

/** This package's version (package.json next to src/ or dist/). */
export function packageVersion(): string {
  if (version) return version;
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const p = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (p.name === 'splitnve' && p.version) return (version = p.version);
    } catch {
      // try the next
    }
  }
  return (version = 'unknown');
}

const patterns = z
  .string()
  .regex(/^[a-z0-9.*,-]+$/, 'event types separated by commas, e.g. tsi.state,admin.*')
  .optional()
  .describe('only these event types (comma-separated; a trailing * matches a prefix)');

export const LogQuery = z
  .object({
    since: z.coerce.number().int().min(0).optional().describe('only records after this seq'),
    limit: z.coerce.number().int().min(1).max(100_000).optional().describe('the most recent n'),
    event: patterns,
  })
  .strict();

export const EventRecordSchema = z
  .object({
    seq: z.number().int(),
    time: z.string(),
    level: z.string(),
    event: z.string(),
    msg: z.string().optional(),
  })
  .catchall(z.unknown())
  .describe('one event log record: the log line of one event (docs/events.md)');

export const InfoSchema = z
  .object({
    daemon: z.string(),
    role: z.enum(['bridge', 'station']),
    version: z.string(),
    pid: z.number().int(),
    node: z.string(),
    startedAt: z.string(),
    uptimeS: z.number().int(),
    logLevel: z.string(),
    reloadable: z.boolean(),
    eventLog: z
      .object({ capacity: z.number().int(), lastSeq: z.number().int(), streams: z.number().int() })
      .strict(),
  })
  .strict();

export const ReloadResultSchema = z
  .object({ changed: z.array(z.string()), trigger: z.literal('api') })
  .strict();

export const OPS_ROUTE_DOCS: RouteDocs = {
  'GET /metrics': {
    tag: 'Operations',
    summary: 'Prometheus metrics (docs/metrics.md)',
    produces: 'text/plain',
    response: z.string(),
  },
  'GET /openapi.json': {
    tag: 'Operations',
    summary: 'This document',
    response: z.object({ openapi: z.string() }).catchall(z.unknown()),
  },
  'GET /v1/info': {
    tag: 'Operations',
    summary: 'Which daemon, version, uptime, log level, event log state',
    response: InfoSchema,
  },
  'GET /v1/log': {
    tag: 'Operations',
    summary: 'Recent event log records (ring buffer), oldest first',
    query: LogQuery,
    response: z.array(EventRecordSchema),
    errors: [400],
  },
  'GET /v1/log/stream': {
    tag: 'Operations',
    summary: 'The event log as server-sent events',
    description:
      'Each record is one SSE message with id = seq and the record (JSON) as data. With `since` ' +
      'or `limit` (or a Last-Event-ID header) buffered records come first, then live ones.',
    query: LogQuery,
    produces: 'text/event-stream',
    response: z.string(),
    errors: [400],
  },
  'POST /v1/reload': {
    tag: 'Actions',
    summary: 'Re-read the configuration (the same as SIGHUP)',
    description:
      'Applies what can change live (log level, EVB values, ...) and names what needs a restart ' +
      'in the config.reloaded event.',
    response: ReloadResultSchema,
    errors: [409, 422],
  },
  'GET /': { tag: 'Dashboard', summary: 'Redirect to the dashboard', redirect: true },
  'GET /ui': { tag: 'Dashboard', summary: 'Redirect to /ui/', redirect: true },
  'GET /ui/': { tag: 'Dashboard', summary: 'The dashboard page', produces: 'text/html' },
  'GET /ui/*': {
    tag: 'Dashboard',
    summary: 'Dashboard assets (app.js, style.css)',
    produces: 'text/plain',
    errors: [404],
  },
};

export interface AttachOptions {
  readonly title: string;
  readonly description: string;
  readonly docs: RouteDocs;
  /** Re-reads the configuration and applies it; returns what changed. */
  readonly reload?: () => string[];
}

export class DaemonOps {
  readonly events: EventLog;
  readonly metrics: DaemonMetrics;
  readonly startedAt = new Date();
  /** Where the configuration comes from (set by the command line; reload needs it). */
  configSource: (() => unknown) | undefined;
  private log: Logger | undefined;

  constructor(
    readonly daemon: string,
    readonly role: Role,
    opts: { readonly capacity?: number; readonly defaultMetrics?: boolean } = {},
  ) {
    this.events = new EventLog(daemon, opts.capacity ?? 2000);
    this.metrics = new DaemonMetrics(daemon, role, {
      version: packageVersion(),
      ...(opts.defaultMetrics !== undefined ? { defaultMetrics: opts.defaultMetrics } : {}),
    });
    this.events.onPublish((event) => this.metrics.record(event));
    this.metrics.gauge(
      'splitnve_event_streams',
      'Open event log streams (SSE clients: ctl events --follow, dashboards).',
      [],
      () => [[{}, this.events.streams]],
    );
  }

  /** The logger the daemon uses: every `event` line also goes to the event log. */
  wrap(inner: Logger): Logger {
    this.log = wrapLogger(inner, this.events);
    byLogger.set(this.log, this);
    return this.log;
  }

  /** The DaemonOps that made `log` (with `wrap`). */
  static of(log: Logger): DaemonOps {
    const o = byLogger.get(log);
    if (!o) throw new Error('the daemon logger must come from DaemonOps.wrap');
    return o;
  }

  /** Counts the frames a driver receives and sends. */
  tapDriver<E>(driver: NodeDriver<E>): void {
    driver.tap = {
      rx: (port, frames) => this.metrics.tap.frames('rx', port, frames),
      tx: (port, frames) => this.metrics.tap.frames('tx', port, frames),
    };
  }

  attach(app: FastifyInstance, o: AttachOptions): void {
    addRouteDocs(app, { ...OPS_ROUTE_DOCS, ...o.docs });
    let doc: Record<string, unknown> | undefined;
    app.get('/openapi.json', async () => {
      doc ??= buildOpenApi(app, {
        title: o.title,
        version: packageVersion(),
        description: o.description,
      });
      return doc;
    });
    app.get('/metrics', async (_req, reply) =>
      reply.type(this.metrics.contentType).send(await this.metrics.text()),
    );
    app.get('/v1/info', async () => ({
      daemon: this.daemon,
      role: this.role,
      version: packageVersion(),
      pid: process.pid,
      node: process.version,
      startedAt: this.startedAt.toISOString(),
      uptimeS: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      logLevel: this.log?.level ?? 'info',
      reloadable: this.configSource !== undefined && o.reload !== undefined,
      eventLog: {
        capacity: this.events.capacity,
        lastSeq: this.events.lastSeq,
        streams: this.events.streams,
      },
    }));
    const query = (raw: unknown, lastEventId?: string | string[]): EventQuery => {
      const r = LogQuery.safeParse(raw ?? {});
      if (!r.success) {
        throw new ApiError(
          400,
          'Invalid query',
          r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
        );
      }
      const since =
        r.data.since ??
        (typeof lastEventId === 'string' && /^\d+$/.test(lastEventId)
          ? Number(lastEventId)
          : undefined);
      return {
        ...(since !== undefined ? { since } : {}),
        ...(r.data.limit !== undefined ? { limit: r.data.limit } : {}),
        ...(r.data.event ? { events: r.data.event.split(',').filter(Boolean) } : {}),
      };
    };
    app.get('/v1/log', async (req) => this.events.recent({ limit: 200, ...query(req.query) }));
    app.get('/v1/log/stream', (req, reply) => {
      const q = query(req.query, req.headers['last-event-id']);
      reply.hijack();
      this.events.stream(reply.raw, q);
    });
    app.post('/v1/reload', async () => {
      if (!o.reload || !this.configSource)
        throw new ApiError(
          409,
          'Nothing to reload from',
          'this daemon was not started from a configuration it can read again',
        );
      let changed: string[];
      try {
        changed = o.reload();
      } catch (e) {
        this.log?.error(
          { event: 'config.invalid', err: (e as Error).message, trigger: 'api' },
          `reload refused: ${(e as Error).message}`,
        );
        throw new ApiError(422, 'Invalid configuration', (e as Error).message);
      }
      this.log?.info(
        { event: 'admin.reload', changed, trigger: 'api' },
        `admin reload: ${changed.length ? changed.join(', ') : 'nothing changed'}`,
      );
      return { changed, trigger: 'api' as const };
    });
    registerDashboard(app, this.daemon);
    // SSE streams never end by themselves: end them before the server waits for its connections.
    app.addHook('preClose', async () => this.events.close());
  }
}
