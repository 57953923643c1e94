/**
 * The OpenAPI 3.1 document of a daemon's HTTP API, served at /openapi.json.
 *
 * Routes are recorded as fastify registers them (`trackRoutes`, installed by `createApi`), so
 * the document lists every route there is. What each route takes and answers is described in
 * a table per daemon (`RouteDocs`, keyed `METHOD /path`) with zod schemas: the request body
 * schemas are the ones the routes validate with, the response schemas are checked against the
 * running daemons by the tests. A route without an entry still appears, marked
 * `x-undocumented` (and the test fails).
 */
import type { FastifyInstance } from 'fastify';
import { z, type ZodType } from 'zod';

export interface RouteDoc {
  readonly summary: string;
  readonly description?: string;
  /** Group in the document (Views, Actions, VMs, Operations, …). */
  readonly tag: string;
  /** Query parameters (an object schema; every field optional or not). */
  readonly query?: z.ZodObject;
  readonly body?: ZodType;
  /** The 200 answer (JSON unless `produces` says otherwise). */
  readonly response?: ZodType;
  readonly produces?: 'application/json' | 'text/plain' | 'text/event-stream' | 'text/html';
  /** Statuses answered with application/problem+json. */
  readonly errors?: readonly number[];
  /** A redirect instead of a 200. */
  readonly redirect?: boolean;
}

export type RouteDocs = Record<string, RouteDoc>;

export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
}

const routesOf = new WeakMap<FastifyInstance, RegisteredRoute[]>();
const docsOf = new WeakMap<FastifyInstance, RouteDocs>();

/** Records every route registered on `app` from now on (HEAD routes fastify adds are left out). */
export function trackRoutes(app: FastifyInstance): void {
  const list: RegisteredRoute[] = [];
  routesOf.set(app, list);
  app.addHook('onRoute', (r) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const m of methods) {
      if (m === 'HEAD') continue;
      list.push({ method: m, url: r.url });
    }
  });
}

export function registeredRoutes(app: FastifyInstance): RegisteredRoute[] {
  return [...(routesOf.get(app) ?? [])];
}

export function addRouteDocs(app: FastifyInstance, docs: RouteDocs): void {
  docsOf.set(app, { ...(docsOf.get(app) ?? {}), ...docs });
}

export function routeDocs(app: FastifyInstance): RouteDocs {
  return docsOf.get(app) ?? {};
}

/** `/v1/vms/:name` -> `/v1/vms/{name}`; `/ui/*` -> `/ui/{path}`. */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, '{path}');
}

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
  })
  .catchall(z.unknown())
  .describe('RFC 9457 problem details; some errors add fields (issues, reason, uplink, ...)');

function jsonSchema(s: ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const j = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  delete j.$schema;
  return j;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Invalid request',
  404: 'Not found',
  409: 'Conflict with the current state',
  422: 'Not supported',
  500: 'Internal error',
  503: 'Unavailable',
  504: 'No answer in time',
};

export function buildOpenApi(
  app: FastifyInstance,
  info: { title: string; version: string; description: string },
): Record<string, unknown> {
  const docs = routeDocs(app);
  const paths: Record<string, Record<string, unknown>> = {};
  const tags = new Set<string>();
  for (const r of registeredRoutes(app)) {
    const key = `${r.method} ${r.url}`;
    const d = docs[key];
    const path = openApiPath(r.url);
    const op: Record<string, unknown> = {
      operationId: `${r.method.toLowerCase()}${r.url.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
    };
    const params: Record<string, unknown>[] = [];
    for (const m of r.url.matchAll(/:([A-Za-z0-9_]+)/g))
      params.push({ name: m[1], in: 'path', required: true, schema: { type: 'string' } });
    if (r.url.endsWith('*'))
      params.push({ name: 'path', in: 'path', required: true, schema: { type: 'string' } });
    if (!d) {
      op['x-undocumented'] = true;
      op.summary = key;
      op.responses = { default: { description: 'undocumented' } };
    } else {
      tags.add(d.tag);
      op.summary = d.summary;
      if (d.description) op.description = d.description;
      op.tags = [d.tag];
      if (d.query) {
        const shape = d.query.shape as Record<string, ZodType>;
        for (const [name, s] of Object.entries(shape)) {
          params.push({
            name,
            in: 'query',
            required: !s.safeParse(undefined).success,
            schema: jsonSchema(s, 'input'),
            ...(s.description ? { description: s.description } : {}),
          });
        }
      }
      if (d.body) {
        op.requestBody = {
          required: !d.body.safeParse(undefined).success,
          content: { 'application/json': { schema: jsonSchema(d.body, 'input') } },
        };
      }
      const responses: Record<string, unknown> = {};
      if (d.redirect) responses['302'] = { description: 'Redirect' };
      else {
        const type = d.produces ?? 'application/json';
        responses['200'] = {
          description: 'OK',
          content: {
            [type]: d.response ? { schema: jsonSchema(d.response, 'output') } : {},
          },
        };
      }
      for (const s of new Set([...(d.body ? [400] : []), ...(d.errors ?? [])])) {
        responses[String(s)] = {
          description: STATUS_TEXT[s] ?? 'Error',
          content: {
            'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } },
          },
        };
      }
      op.responses = responses;
    }
    if (params.length > 0) op.parameters = params;
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info,
    tags: [...tags].sort().map((name) => ({ name })),
    paths,
    components: { schemas: { Problem: jsonSchema(ProblemSchema, 'output') } },
  };
}
