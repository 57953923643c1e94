/**
 * The HTTP API server shared by both daemons (fastify): JSON in and out, errors as
 * application/problem+json (RFC 9457), request bodies validated with zod.
 */
import { statSync, unlinkSync } from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { ZodType } from 'zod';
import { trackRoutes } from './openapi.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(`${title}: ${detail}`);
  }
}

export function problem(reply: FastifyReply, e: ApiError): FastifyReply {
  return reply
    .code(e.status)
    .type('application/problem+json')
    .send({ type: 'about:blank', title: e.title, status: e.status, detail: e.detail, ...e.extra });
}

export function createApi(): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1 << 20 });
  trackRoutes(app);
  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof ApiError) return problem(reply, err);
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    return problem(
      reply,
      new ApiError(
        status,
        status >= 500 ? 'Internal error' : 'Bad request',
        (err as Error).message,
      ),
    );
  });
  app.setNotFoundHandler((req, reply) =>
    problem(reply, new ApiError(404, 'Not found', `${req.method} ${req.url}`)),
  );
  return app;
}

/** Validates a request body; a failure is a 400 problem naming each bad field. */
export function parseBody<T>(schema: ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  throw new ApiError(
    400,
    'Invalid request body',
    issues.map((i) => `${i.path || '(body)'}: ${i.message}`).join('; '),
    {
      issues,
    },
  );
}

/** Where the API listens: TCP HOST:PORT (IPv6 as [addr]:port) or a unix socket `unix:PATH`. */
export type ListenAddress = { host: string; port: number } | { path: string };

/** Parses HOST:PORT (IPv6 as [addr]:port) or `unix:PATH`. */
export function parseListen(text: string): ListenAddress {
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    if (path === '')
      throw new Error('--api: unix: needs a socket path, e.g. unix:/run/splitnve.sock');
    return { path };
  }
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  if (!m) throw new Error(`--api: expected HOST:PORT or unix:PATH, got ${JSON.stringify(text)}`);
  const port = Number(m[3]);
  if (port < 0 || port > 65535) throw new Error(`--api: port ${port} out of range`);
  return { host: m[1] ?? m[2]!, port };
}

/** Starts the API on `text` (see parseListen); a stale unix socket file is replaced. */
export async function listenApi(app: FastifyInstance, text: string): Promise<void> {
  const a = parseListen(text);
  if ('path' in a) {
    try {
      if (statSync(a.path).isSocket()) unlinkSync(a.path);
    } catch {
      // absent: fine
    }
    await app.listen({ path: a.path });
  } else {
    await app.listen({ host: a.host, port: a.port });
  }
}
