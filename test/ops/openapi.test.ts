import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import {
  ProblemSchema,
  registeredRoutes,
  routeDocs,
  openApiPath,
} from '../../src/daemon/openapi.js';
import {
  http,
  startOpsPair,
  STATION_MAC,
  uuid,
  vsiSpec,
  waitFor,
  type OpsPair,
} from '../harness/ops-pair.js';

/**
 * Every route a daemon registers is in its /openapi.json with a description, and every answer
 * of a running daemon matches the schema its route documents (checked on every route, with
 * lists that are not empty).
 */
describe('HTTP API and OpenAPI document', () => {
  let p: OpsPair;
  /** route key -> answers checked */
  const checked = new Map<string, number>();

  before(async () => {
    p = await startOpsPair();
  });
  after(() => p.close());

  function validate(
    app: FastifyInstance,
    key: string,
    status: number,
    type: string,
    body: unknown,
  ): void {
    const doc = routeDocs(app)[key];
    assert.ok(doc, `no documentation for ${key}`);
    if (status >= 400) {
      assert.match(type, /^application\/problem\+json/, `${key} ${status}: ${type}`);
      const r = ProblemSchema.safeParse(body);
      assert.ok(r.success, `${key} ${status}: not a problem: ${JSON.stringify(body)}`);
      assert.ok(
        (doc.errors ?? []).includes(status) || (doc.body && status === 400),
        `${key}: status ${status} is not documented`,
      );
      return;
    }
    assert.equal(status, doc.redirect ? 302 : 200, `${key}: ${JSON.stringify(body)}`);
    if (doc.redirect || !doc.response) return;
    const produces = doc.produces ?? 'application/json';
    assert.ok(
      type.startsWith(produces === 'text/plain' ? 'text/plain' : produces),
      `${key}: content type ${type}, documented ${produces}`,
    );
    const r = doc.response.safeParse(body);
    assert.ok(
      r.success,
      `${key}: the answer does not match its documented schema: ${r.success ? '' : JSON.stringify(r.error.issues.slice(0, 5))}\n${JSON.stringify(body).slice(0, 2000)}`,
    );
    checked.set(key, (checked.get(key) ?? 0) + 1);
  }

  async function call(
    which: 'n' | 't',
    key: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const d = which === 'n' ? p.nnve : p.tnve;
    const method = key.slice(0, key.indexOf(' '));
    const r = await http(which === 'n' ? p.nUrl : p.tUrl, method, path, body);
    validate(
      d.api,
      key,
      r.status,
      r.type,
      r.status === 200 && !r.type.includes('json') ? r.text : r.body,
    );
    return r as never;
  }

  /** Every GET route without path parameters, except the streams. */
  async function allViews(which: 'n' | 't'): Promise<void> {
    const d = which === 'n' ? p.nnve : p.tnve;
    for (const r of registeredRoutes(d.api)) {
      if (r.method !== 'GET' || r.url.includes(':') || r.url.includes('*')) continue;
      const doc = routeDocs(d.api)[`GET ${r.url}`];
      if (doc?.produces === 'text/event-stream' || doc?.produces === 'text/html' || doc?.redirect)
        continue;
      await call(which, `GET ${r.url}`, r.url);
    }
  }

  it('lists every registered route, each documented, and nothing that is not registered', async () => {
    for (const [name, d, base] of [
      ['nnve', p.nnve, p.nUrl],
      ['tnve', p.tnve, p.tUrl],
    ] as const) {
      const r = await http(base, 'GET', '/openapi.json');
      assert.equal(r.status, 200);
      const doc = r.body as {
        openapi: string;
        paths: Record<string, Record<string, Record<string, unknown>>>;
      };
      assert.equal(doc.openapi, '3.1.0');
      const routes = registeredRoutes(d.api);
      assert.ok(routes.length > 20, `${name}: only ${routes.length} routes`);
      const docs = routeDocs(d.api);
      for (const rt of routes) {
        const op = doc.paths[openApiPath(rt.url)]?.[rt.method.toLowerCase()];
        assert.ok(op, `${name}: ${rt.method} ${rt.url} is not in /openapi.json`);
        assert.equal(
          op['x-undocumented'],
          undefined,
          `${name}: ${rt.method} ${rt.url} has no entry in its route table`,
        );
        assert.ok(typeof op.summary === 'string' && op.summary.length > 3);
      }
      const keys = new Set(routes.map((x) => `${x.method} ${x.url}`));
      for (const k of Object.keys(docs))
        assert.ok(keys.has(k), `${name}: ${k} is documented but not registered`);
      // bodies are documented with the schemas the routes validate with
      const post = doc.paths['/v1/reload']?.post as { responses: Record<string, unknown> };
      assert.ok(post.responses['200']);
    }
  });

  it('answers every view with what its schema says, empty and filled', async () => {
    await allViews('n');
    await allViews('t');
    // fill: a raw VSI, a VM with two interfaces on two VNs
    const raw = await call('t', 'POST /v1/requests', '/v1/requests', {
      mode: 'associate',
      vsi: vsiSpec(1),
    });
    assert.equal(raw.status, 200);
    const def = {
      interfaces: [
        { vsiId: uuid(0x101), vni: 6001, macs: ['52:54:00:00:02:01'], ips: ['10.0.0.1'] },
        { vsiId: uuid(0x102), vni: 6002, macs: ['52:54:00:00:02:02'] },
      ],
    };
    assert.equal((await call('t', 'PUT /v1/vms/:name', '/v1/vms/web', def)).status, 200);
    assert.equal(
      (await call('t', 'POST /v1/vms/:name/start', '/v1/vms/web/start', {})).status,
      200,
    );
    await waitFor(
      'three TSIs on the nNVE',
      async () => ((await http(p.nUrl, 'GET', '/v1/vsis')).body as unknown[]).length === 3,
    );
    await allViews('n');
    await allViews('t');
    const vsis = (await http(p.nUrl, 'GET', '/v1/vsis')).body as {
      entries: { vid: number }[];
      state: string;
    }[];
    assert.ok(vsis.every((v) => v.state === 'Activated' && v.entries[0]!.vid >= 300));
    assert.equal((await call('t', 'GET /v1/vms/:name', '/v1/vms/web')).status, 200);
    const missing = await call('t', 'GET /v1/vms/:name', '/v1/vms/nope');
    assert.equal(missing.status, 404);
  });

  it('walks every VM lifecycle route and checks each answer', async () => {
    const t = (key: string, path: string, body: unknown = {}) => call('t', key, path, body);
    const ok = async (key: string, path: string, body?: unknown) => {
      const r = await t(key, path, body);
      assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
      return r;
    };
    await ok('POST /v1/vms/:name/pause', '/v1/vms/web/pause');
    await ok('POST /v1/vms/:name/resume', '/v1/vms/web/resume');
    await ok('POST /v1/vms/:name/suspend', '/v1/vms/web/suspend');
    await ok('POST /v1/vms/:name/resume', '/v1/vms/web/resume');
    await ok('POST /v1/vms/:name/addresses', '/v1/vms/web/addresses', {
      vsiId: uuid(0x101),
      ips: ['10.0.0.9'],
    });
    await ok('POST /v1/vms/:name/migrate-out/begin', '/v1/vms/web/migrate-out/begin');
    await ok('POST /v1/vms/:name/migrate-out/switchover', '/v1/vms/web/migrate-out/switchover');
    await ok('POST /v1/vms/:name/migrate-out/abort', '/v1/vms/web/migrate-out/abort');
    await ok('POST /v1/vms/:name/stop', '/v1/vms/web/stop');
    await ok('POST /v1/vms/:name/destroy', '/v1/vms/web/destroy');
    const inDef = { interfaces: [{ vsiId: uuid(0x201), vni: 6003, macs: ['52:54:00:00:03:01'] }] };
    await ok('POST /v1/vms/:name/migrate-in/begin', '/v1/vms/db/migrate-in/begin', inDef);
    await ok('POST /v1/vms/:name/migrate-in/commit', '/v1/vms/db/migrate-in/commit');
    await ok('POST /v1/vms/:name/migrate-out/begin', '/v1/vms/db/migrate-out/begin');
    await ok('POST /v1/vms/:name/migrate-out/commit', '/v1/vms/db/migrate-out/commit');
    const abortDef = {
      interfaces: [{ vsiId: uuid(0x301), vni: 6004, macs: ['52:54:00:00:04:01'] }],
    };
    await ok('POST /v1/vms/:name/migrate-in/begin', '/v1/vms/x/migrate-in/begin', abortDef);
    await ok('POST /v1/vms/:name/migrate-in/abort', '/v1/vms/x/migrate-in/abort');
    await ok('PUT /v1/vms/:name', '/v1/vms/gone', {
      interfaces: [{ vsiId: uuid(0x401), vni: 6005, macs: ['52:54:00:00:05:01'] }],
    });
    await ok('DELETE /v1/vms/:name', '/v1/vms/gone', undefined);
    const rec = await ok('POST /v1/reconcile', '/v1/reconcile', {
      vms: [
        {
          name: 'rc',
          state: 'running',
          definition: {
            interfaces: [{ vsiId: uuid(0x501), vni: 6006, macs: ['52:54:00:00:06:01'] }],
          },
        },
      ],
    });
    assert.equal((rec.body as { ok: boolean }).ok, true);
    // errors are problem+json with a documented status
    assert.equal((await t('POST /v1/vms/:name/start', '/v1/vms/none/start')).status, 404);
    const bad = await t('PUT /v1/vms/:name', '/v1/vms/bad', { interfaces: [{ vsiId: 'x' }] });
    assert.equal(bad.status, 400);
    assert.match(String(bad.body.detail), /vsiId/);
  });

  it('runs the nNVE actions: de-associate, deactivate, drain, undrain, reload', async () => {
    const n = (key: string, body: unknown) => call('n', key, key.slice(key.indexOf(' ') + 1), body);
    const r1 = await n('POST /v1/deactivate', { port: 'swp1', station: STATION_MAC, vsi: uuid(1) });
    assert.equal(r1.status, 200);
    const again = await n('POST /v1/deactivate', {
      port: 'swp1',
      station: STATION_MAC,
      vsi: uuid(1),
    });
    assert.equal(again.status, 409);
    const r2 = await n('POST /v1/deassociate', {
      port: 'swp1',
      station: STATION_MAC,
      vsi: uuid(1),
    });
    assert.deepEqual(r2.body, { deassociated: 1 });
    assert.equal(
      (await n('POST /v1/deassociate', { port: 'swp1', station: STATION_MAC, vsi: uuid(99) }))
        .status,
      404,
    );
    const badBody = await n('POST /v1/deassociate', { port: 'swp1', station: 'nope' });
    assert.equal(badBody.status, 400);
    assert.match(String(badBody.body.detail), /station: not a MAC address/);
    assert.ok(Array.isArray(badBody.body.issues));
    // the VN directory and the data plane
    const vn = await n('POST /v1/vns', { vni: 7000, name: 'seven', maxTsis: 10 });
    assert.deepEqual(vn.body, { vni: 7000, name: 'seven', maxTsis: 10 });
    assert.ok(
      ((await call('n', 'GET /v1/vns', '/v1/vns')).body as unknown as { vni: number }[]).some(
        (v) => v.vni === 7000,
      ),
    );
    assert.deepEqual((await n('POST /v1/vns/delete', { vni: 7000 })).body, {
      deleted: 7000,
      stations: 0,
    });
    assert.equal((await n('POST /v1/vns/delete', { vni: 7000 })).status, 404);
    assert.equal((await n('POST /v1/reconcile', {})).status, 200);
    await call('n', 'GET /v1/dataplane', '/v1/dataplane?installed=1');
    await call('n', 'GET /v1/vaps', '/v1/vaps?all=1');
    const d = await n('POST /v1/drain', { station: STATION_MAC, reason: 'maintenance' });
    assert.equal(d.status, 200);
    assert.equal((d.body as { drained: boolean }).drained, true);
    assert.equal((await n('POST /v1/undrain', { station: STATION_MAC })).status, 200);
    assert.equal((await n('POST /v1/undrain', { station: STATION_MAC })).status, 404);
    assert.equal((await n('POST /v1/drain', { port: 'nope', station: STATION_MAC })).status, 404);
    // no configuration source in-process: 409; with one: what changed
    assert.equal((await n('POST /v1/reload', {})).status, 409);
    p.nnve.ops.configSource = () => ({ ...p.nnveCfg, logLevel: 'debug' });
    const rl = await n('POST /v1/reload', {});
    assert.deepEqual(rl.body, { changed: ['logLevel'], trigger: 'api' });
    p.nnve.ops.configSource = () => {
      throw new Error('config x.json: not valid JSON');
    };
    const invalid = await n('POST /v1/reload', {});
    assert.equal(invalid.status, 422);
    assert.match(String(invalid.body.detail), /not valid JSON/);
    p.tnve.ops.configSource = () => p.tnveCfg;
    const tr = await call('t', 'POST /v1/reload', '/v1/reload', {});
    assert.deepEqual(tr.body, { changed: [], trigger: 'api' });
  });

  it('checked an answer of every route that documents one (streams and pages aside)', async () => {
    // the log views with queries, the stream's content type, the dashboard
    await call('n', 'GET /v1/log', '/v1/log?event=admin.*&limit=5');
    const bad = await call('n', 'GET /v1/log', '/v1/log?limit=0');
    assert.equal(bad.status, 400);
    for (const [d, base] of [
      [p.nnve, p.nUrl],
      [p.tnve, p.tUrl],
    ] as const) {
      const ui = await http(base, 'GET', '/ui/');
      assert.equal(ui.status, 200);
      assert.match(ui.type, /text\/html/);
      assert.match(ui.text, /<script type="module" src="app.js">/);
      const js = await http(base, 'GET', '/ui/app.js');
      assert.match(js.type, /javascript/);
      assert.equal((await http(base, 'GET', '/ui/../package.json')).status, 404);
      const ac = new AbortController();
      const s = await fetch(`${base}/v1/log/stream?limit=1`, { signal: ac.signal });
      assert.match(s.headers.get('content-type') ?? '', /text\/event-stream/);
      ac.abort();
      for (const [key, doc] of Object.entries(routeDocs(d.api))) {
        if (!doc.response || doc.produces === 'text/event-stream' || doc.produces === 'text/html')
          continue;
        assert.ok(checked.get(key), `${key}: no answer was checked against its schema`);
      }
    }
  });
});
