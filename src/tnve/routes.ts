/** HTTP API of the tNVE agent (v1). */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ApiError, parseBody } from '../daemon/api.js';
import { specFromJson, specToJson, VsiSpecSchema } from '../vdp/spec-json.js';
import { tsiState, type VsiMode } from '../vdp/types.js';
import type { TnveDaemon } from './daemon.js';
import { reasonName } from '../wire/status.js';
import { storeHealth } from '../daemon/store-guard.js';
import { AgentError, type Command, type OpError, type OpResult } from './agent.js';
import { AddressesSchema, UuidSchema, VmDefinitionSchema, VmNameSchema } from './model.js';
import { ReconcileSchema } from './reconcile.js';

export const Timeout = z
  .object({ timeoutMs: z.number().int().min(100).max(600_000).optional() })
  .strict();
export const DefineBody = VmDefinitionSchema.extend(Timeout.shape);
export const AddressesBody = AddressesSchema.extend({
  vsiId: UuidSchema,
  timeoutMs: Timeout.shape.timeoutMs,
});
export const ReconcileBody = ReconcileSchema.extend(Timeout.shape);

const STATUS: Record<OpError, number> = {
  'not-found': 404,
  conflict: 409,
  invalid: 400,
  refused: 409,
  unsupported: 422,
  timeout: 504,
  'no-uplink': 503,
  superseded: 409,
  store: 503,
};

const TITLES: Record<OpError, string> = {
  'not-found': 'No such VM',
  conflict: 'Not possible in this state',
  invalid: 'Invalid definition',
  refused: 'Refused by the nNVE',
  unsupported: 'Not supported by the nNVE',
  timeout: 'No confirmation from the nNVE',
  'no-uplink': 'No uplink',
  superseded: 'Superseded',
  store: 'State store failing',
};

/** Simple lifecycle calls: POST /v1/vms/:name/<path> with an optional {timeoutMs}. */
export const SIMPLE: Record<string, Command['op']> = {
  start: 'start',
  pause: 'pause',
  suspend: 'suspend',
  resume: 'resume',
  stop: 'stop',
  destroy: 'destroy',
  'migrate-in/commit': 'migrate-in-commit',
  'migrate-in/abort': 'migrate-in-abort',
  'migrate-out/begin': 'migrate-out-begin',
  'migrate-out/switchover': 'migrate-out-switchover',
  'migrate-out/commit': 'migrate-out-commit',
  'migrate-out/abort': 'migrate-out-abort',
};

const MODES: Record<string, VsiMode> = {
  'pre-associate': 1,
  'pre-associate-rr': 2,
  associate: 3,
  'de-associate': 4,
};

export const RequestBody = z
  .object({
    uplink: z.string().optional(),
    mode: z.enum(['pre-associate', 'pre-associate-rr', 'associate', 'de-associate']),
    vsi: VsiSpecSchema,
    hints: z.object({ m: z.boolean().optional(), s: z.boolean().optional() }).strict().optional(),
    timeoutMs: z.number().int().min(100).max(600_000).optional(),
  })
  .strict();

export function registerTnveRoutes(app: FastifyInstance, d: TnveDaemon): void {
  app.get('/v1/health', async () => ({
    ok: true,
    uptimeS: Math.round((Date.now() - d.startedAt) / 1000),
    store: storeHealth(d.storeGuard),
  }));

  app.get('/v1/uplinks', async () =>
    d.cfg.uplinks.map((u) => {
      const link = d.links.get(u.name)!;
      const info = d.node.uplinkInfo(u.name)!;
      return {
        name: u.name,
        mac: link.mac,
        status: link.status(),
        bridge: info.bridge ?? null,
        health: d.agent.uplinkHealth(u.name),
        evb: info.timing,
        profile: info.caps.profile,
        groupId: info.caps.groupId ?? null,
        ecp: info.ecp,
        vdp: info.vdp,
        link: link.stats(),
      };
    }),
  );

  app.get('/v1/vsis', async () => {
    const now = d.driver.now();
    return d.cfg.uplinks.flatMap((u) =>
      d.node.vsis(u.name).map((v) => ({
        uplink: u.name,
        vsi: v.vsiId,
        key: v.key,
        state: tsiState(v.state),
        vdpState: v.state,
        spec: v.spec ? specToJson(v.spec) : null,
        pending: v.pendingMode ?? null,
        nextKeepAliveInMs:
          v.keepAliveAt === undefined
            ? null
            : Math.max(0, Math.round((v.keepAliveAt - now) / 1000)),
      })),
    );
  });

  app.get('/v1/stats', async () => ({
    uptimeS: Math.round((Date.now() - d.startedAt) / 1000),
    node: d.node.stats,
    uplinks: Object.fromEntries(
      d.cfg.uplinks.map((u) => [
        u.name,
        { ecp: d.node.uplinkInfo(u.name)!.ecp, vdp: d.node.uplinkInfo(u.name)!.vdp },
      ]),
    ),
    events: Object.fromEntries(d.counters.events),
    storeErrors: d.storeGuard.errors,
    vms: d.agent.vmNames().length,
    openOps: d.agent.openOps(),
    tagsApplied: d.counters.tagsApplied,
    tagErrors: d.counters.tagErrors,
  }));

  // -------------------------------------------------------------------------------------
  // VM lifecycle

  const name = (params: unknown): string => {
    const r = VmNameSchema.safeParse((params as { name?: unknown }).name);
    if (!r.success) throw new ApiError(400, 'Invalid VM name', r.error.issues[0]!.message);
    return r.data;
  };

  const answer = (r: OpResult): unknown => {
    const body = {
      ok: r.ok,
      op: r.op,
      vm: r.vm,
      state: r.state,
      tookMs: Math.round(r.tookUs / 100) / 10,
      failures: r.failures,
      unconfirmed: r.unconfirmed,
      view: r.state !== null ? (d.agent.vmView(r.vm) ?? null) : null,
    };
    if (r.ok) return body;
    const err = r.error ?? 'timeout';
    throw new ApiError(STATUS[err], TITLES[err], r.message ?? err, { ...body, error: err });
  };

  const run = async (c: Command, timeoutMs?: number): Promise<unknown> =>
    answer(await d.op(c, timeoutMs));

  app.get('/v1/vms', async () => d.agent.vmNames().map((n) => d.agent.vmView(n)));

  app.get('/v1/vms/:name', async (req) => {
    const n = name(req.params);
    const v = d.agent.vmView(n);
    if (!v) throw new ApiError(404, 'No such VM', `no VM ${n}`);
    return v;
  });

  /** define (or redefine while shut off) */
  app.put('/v1/vms/:name', async (req) => {
    const b = parseBody(DefineBody, req.body ?? {});
    const { timeoutMs, ...def } = b;
    return run({ op: 'define', name: name(req.params), def }, timeoutMs);
  });

  app.delete('/v1/vms/:name', async (req) => run({ op: 'destroy', name: name(req.params) }));

  for (const [path, op] of Object.entries(SIMPLE)) {
    app.post(`/v1/vms/:name/${path}`, async (req) => {
      const b = parseBody(Timeout, req.body ?? {});
      return run({ op, name: name(req.params) } as Command, b.timeoutMs);
    });
  }

  app.post('/v1/vms/:name/migrate-in/begin', async (req) => {
    const b = parseBody(DefineBody, req.body ?? {});
    const { timeoutMs, ...def } = b;
    return run({ op: 'migrate-in-begin', name: name(req.params), def }, timeoutMs);
  });

  app.post('/v1/vms/:name/addresses', async (req) => {
    const b = parseBody(AddressesBody, req.body ?? {});
    const { timeoutMs, vsiId, ...update } = b;
    return run({ op: 'set-addresses', name: name(req.params), vsiId, update }, timeoutMs);
  });

  app.post('/v1/reconcile', async (req) => {
    const b = parseBody(ReconcileBody, req.body ?? {});
    const { timeoutMs, ...r } = b;
    const results = await d.reconcile(r, timeoutMs);
    return {
      ok: results.every((x) => x.ok),
      results: results.map((x) => ({
        name: x.name,
        ok: x.ok,
        ...(x.error ? { error: x.error } : {}),
        steps: x.steps.map((s) => ({ op: s.op, ok: s.ok, state: s.state, error: s.error ?? null })),
        state: d.agent.vmView(x.name)?.state ?? null,
      })),
    };
  });

  app.get('/v1/vns', async () => d.agent.vnsView());

  app.get('/v1/events', (req, reply) => {
    reply.hijack();
    d.addEventClient(reply.raw);
    void req;
  });

  /** Sends one VDP request and answers with the nNVE's answer. */
  app.post('/v1/requests', async (req, reply) => {
    const b = parseBody(RequestBody, req.body);
    const uplink = b.uplink ?? d.cfg.uplinks[0]!.name;
    if (!d.links.has(uplink)) throw new ApiError(404, 'No such uplink', `no uplink ${uplink}`);
    let spec;
    try {
      spec = specFromJson(b.vsi);
    } catch (e) {
      throw new ApiError(400, 'Invalid VSI', (e as Error).message);
    }
    let r;
    try {
      r = await d.request(uplink, MODES[b.mode]!, spec, b.hints ?? {}, b.timeoutMs);
    } catch (e) {
      if (e instanceof AgentError && e.error === 'store')
        throw new ApiError(503, TITLES.store, e.message);
      if (e instanceof AgentError) throw new ApiError(409, 'VSI owned by a VM', e.message);
      throw e;
    }
    if (r.ok) {
      const v = d.node.vsi(uplink, r.key);
      return {
        ok: true,
        uplink,
        key: r.key,
        state: tsiState(v?.state ?? 'init'),
        entries: r.entries,
        attempts: r.attempts,
      };
    }
    const status =
      r.error === 'refused'
        ? 409
        : r.error === 'timeout'
          ? 504
          : r.error === 'superseded'
            ? 409
            : 422;
    throw new ApiError(status, `Request ${r.error}`, r.message, {
      uplink,
      key: r.key,
      error: r.error,
      ...(r.reason !== undefined ? { reason: r.reason, reasonName: reasonName(r.reason) } : {}),
      ...(r.keep !== undefined ? { keep: r.keep } : {}),
      ...(r.hard !== undefined ? { hard: r.hard } : {}),
    });
    void reply;
  });
}
