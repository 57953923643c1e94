/** HTTP API of the tNVE agent (v1). */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ApiError, parseBody } from '../daemon/api.js';
import { specFromJson, specToJson, VsiSpecSchema } from '../vdp/spec-json.js';
import { tsiState, type VsiMode } from '../vdp/types.js';
import type { TnveDaemon } from './daemon.js';
import { reasonName } from '../wire/status.js';

const MODES: Record<string, VsiMode> = {
  'pre-associate': 1,
  'pre-associate-rr': 2,
  associate: 3,
  'de-associate': 4,
};

const RequestBody = z
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
    storeErrors: d.counters.storeErrors,
  }));

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
    const r = await d.request(uplink, MODES[b.mode]!, spec, b.hints ?? {}, b.timeoutMs);
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
