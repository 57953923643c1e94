/** HTTP API of the nNVE daemon (v1). */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ApiError, parseBody } from '../daemon/api.js';
import { isMac } from '../wire/bytes.js';
import { tsiState } from '../vdp/types.js';
import type { NnveDaemon } from './daemon.js';

const mac = z.string().refine(isMac, 'not a MAC address');

export const DeassociateBody = z
  .object({
    port: z.string(),
    station: mac,
    /** A VSI id as shown by GET /v1/vsis (or its key); omit for every VSI of the station. */
    vsi: z.string().optional(),
    /** Every VSI of this VN (GroupID) on the station. */
    vni: z.number().int().min(1).max(0xffffff).optional(),
  })
  .strict();

export const DeactivateBody = z
  .object({ port: z.string(), station: mac, vsi: z.string() })
  .strict();

export function vsiView(d: NnveDaemon): Record<string, unknown>[] {
  const now = d.driver.now();
  return d.node.vsis().map((v) => ({
    port: v.port,
    station: v.station,
    vsi: v.vsi.vsiId,
    key: v.vsi.key,
    state: tsiState(v.vsi.state),
    vdpState: v.vsi.state,
    typeId: v.vsi.typeId,
    typeVersion: v.vsi.typeVersion,
    filterFormat: v.vsi.filterFormat,
    entries: v.vsi.entries,
    hints: v.vsi.hints,
    expiresInMs:
      v.expiresAt === undefined ? null : Math.max(0, Math.round((v.expiresAt - now) / 1000)),
  }));
}

function findKey(d: NnveDaemon, port: string, station: string, vsi: string): string {
  const st = station.toLowerCase().replace(/-/g, ':');
  const hit = d.node
    .vsis()
    .find((v) => v.port === port && v.station === st && (v.vsi.vsiId === vsi || v.vsi.key === vsi));
  if (!hit)
    throw new ApiError(404, 'No such VSI', `no VSI ${vsi} of station ${station} on port ${port}`);
  return hit.vsi.key;
}

export function registerNnveRoutes(app: FastifyInstance, d: NnveDaemon): void {
  app.get('/v1/health', async () => ({
    ok: true,
    uptimeS: Math.round((Date.now() - d.startedAt) / 1000),
  }));

  app.get('/v1/ports', async () =>
    [...d.links].map(([name, link]) => ({
      name,
      mac: link.mac,
      status: link.status(),
      stats: link.stats(),
    })),
  );

  app.get('/v1/stations', async () => {
    const now = d.driver.now();
    return d.node.stations().map((s) => ({
      port: s.port,
      station: s.station,
      vsis: s.vsis,
      lastHeardMsAgo: Math.round((now - s.lastHeard) / 1000),
      profile: s.profile,
      groupId: s.groupId,
      evb: s.timing,
      ecp: s.ecp,
      vdp: s.vdp,
    }));
  });

  app.get('/v1/peers', async () => {
    const now = d.driver.now();
    return d.node.peers().flatMap((p) =>
      p.peers.map((x) => ({
        port: p.port,
        peer: x.mac,
        negotiated: x.negotiated ?? null,
        received: x.tlv,
        ttlLeftS: Math.max(0, Math.round((x.expiresAt - now) / 1e6)),
      })),
    );
  });

  app.get('/v1/vsis', async () => vsiView(d));

  app.get('/v1/vaps', async () => {
    const counts = new Map<string, { stations: Set<string>; ports: Set<string>; tsis: number }>();
    const segOf = new Map(d.cfg.ports.map((p) => [p.name, p.segment ?? p.name]));
    for (const v of d.node.vsis()) {
      for (const e of v.vsi.entries) {
        if (e.groupId === undefined) continue;
        const k = `${segOf.get(v.port) ?? v.port}|${e.groupId}`;
        const c = counts.get(k) ?? { stations: new Set(), ports: new Set(), tsis: 0 };
        c.stations.add(`${v.port}|${v.station}`);
        c.ports.add(v.port);
        c.tsis++;
        counts.set(k, c);
      }
    }
    return d.policy.assignments().map((a) => {
      const c = counts.get(`${a.segment}|${a.vni}`);
      return {
        segment: a.segment,
        vni: a.vni,
        vid: a.vid,
        tsis: c?.tsis ?? a.tsis,
        ports: c ? [...c.ports] : [],
        stations: c ? c.stations.size : 0,
      };
    });
  });

  app.get('/v1/stats', async () => {
    const agg = { ecp: {} as Record<string, number>, vdp: {} as Record<string, number> };
    for (const s of d.node.stations()) {
      for (const [k, v] of Object.entries(s.ecp)) agg.ecp[k] = (agg.ecp[k] ?? 0) + (v as number);
      for (const [k, v] of Object.entries(s.vdp)) {
        if (typeof v === 'number') agg.vdp[k] = (agg.vdp[k] ?? 0) + v;
      }
    }
    const states: Record<string, number> = { Associated: 0, Activated: 0 };
    for (const v of d.node.vsis())
      states[tsiState(v.vsi.state)] = (states[tsiState(v.vsi.state)] ?? 0) + 1;
    return {
      uptimeS: Math.round((Date.now() - d.startedAt) / 1000),
      stations: d.node.stations().length,
      tsis: states,
      vaps: d.policy.assignments().length,
      node: d.node.stats,
      ecp: agg.ecp,
      vdp: agg.vdp,
      events: Object.fromEntries(d.counters.events),
      storeErrors: d.counters.storeErrors,
    };
  });

  app.post('/v1/deassociate', async (req) => {
    const b = parseBody(DeassociateBody, req.body);
    const station = b.station.toLowerCase().replace(/-/g, ':');
    const key = b.vsi !== undefined ? findKey(d, b.port, station, b.vsi) : undefined;
    const count = d.driver.run((now) => {
      const r = d.node.deassociate(
        { port: b.port, station, ...(key ? { key } : {}), ...(b.vni ? { vni: b.vni } : {}) },
        now,
      );
      return { outputs: r.outputs, result: r.count };
    });
    d.log.info({ event: 'admin.deassociate', ...b, count }, `admin de-associate: ${count} VSI(s)`);
    return { deassociated: count };
  });

  app.post('/v1/deactivate', async (req) => {
    const b = parseBody(DeactivateBody, req.body);
    const station = b.station.toLowerCase().replace(/-/g, ':');
    const key = findKey(d, b.port, station, b.vsi);
    const result = d.driver.run((now) => {
      const r = d.node.deactivate({ port: b.port, station, key }, now);
      return { outputs: r.outputs, result: r.result };
    });
    if (result === 'none')
      throw new ApiError(409, 'Not Activated', `VSI ${b.vsi} is not Activated`);
    d.log.info({ event: 'admin.deactivate', ...b, result }, `admin deactivate: ${result}`);
    return { result };
  });
}
