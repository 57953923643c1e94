/**
 * The dashboard of a daemon: plain HTML, JavaScript and CSS from `src/dashboard/`, served as
 * they are at /ui/ (no build step). The page reads the JSON API and follows the event log
 * stream (server-sent events) to update itself.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { ApiError } from './api.js';

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  ico: 'image/x-icon',
};

/** Where the assets are: next to the sources, whether this runs from src/ or from dist/src/. */
export function dashboardDir(): string {
  const candidates = [
    new URL('../dashboard/', import.meta.url),
    new URL('../../../src/dashboard/', import.meta.url),
  ].map((u) => fileURLToPath(u));
  const dir = candidates.find((d) => existsSync(`${d}index.html`));
  if (!dir) throw new Error(`dashboard assets not found (looked in ${candidates.join(', ')})`);
  return dir;
}

export function registerDashboard(app: FastifyInstance, daemon: string): void {
  let dir: string | undefined;
  const cache = new Map<string, Buffer>();
  const file = (name: string): Buffer => {
    let b = cache.get(name);
    if (!b) {
      dir ??= dashboardDir();
      if (!/^[a-z0-9][a-z0-9.-]*\.(html|js|css|svg|ico)$/.test(name) || !existsSync(dir + name))
        throw new ApiError(404, 'Not found', `no dashboard file ${name}`);
      b = readFileSync(dir + name);
      if (process.env.SPLITNVE_DASHBOARD_NOCACHE !== '1') cache.set(name, b);
    }
    return b;
  };
  app.get('/', async (_req, reply) => reply.redirect('/ui/'));
  app.get('/ui', async (_req, reply) => reply.redirect('/ui/'));
  app.get('/ui/', async (_req, reply) =>
    reply
      .type(TYPES.html!)
      .header('cache-control', 'no-cache')
      .send(file('index.html').toString('utf8').replace('{{daemon}}', daemon)),
  );
  app.get('/ui/*', async (req, reply) => {
    const name = (req.params as { '*': string })['*'];
    const ext = name.slice(name.lastIndexOf('.') + 1);
    return reply
      .type(TYPES[ext] ?? 'application/octet-stream')
      .header('cache-control', 'no-cache')
      .send(file(name));
  });
}
