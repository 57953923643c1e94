/**
 * HTTP API of the nNVE daemon (v1).
 *
 * Views: health, ports, stations, peers, vsis (as the VDP machines hold them), tsis (the model:
 * state, endpoints, VNs, supersession), vaps (connected VAPs; `?all=1` with held tags), tags,
 * vns (the NVA's VN directory), remotes (other NVEs' entries of watched VNs), dataplane (the
 * desired state; `?installed=1` reads the data plane back), nva, stats.
 * Actions: POST deassociate (one VSI, a VN on a station, or a whole station), deactivate,
 * vns (create/replace a VN), vns/delete (delete a VN: its TSIs are de-associated everywhere),
 * reconcile (data plane against the desired state now).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ApiError, parseBody } from '../daemon/api.js';
import { isMac } from '../wire/bytes.js';
import { tsiState } from '../vdp/types.js';
import { storeHealth } from '../daemon/store-guard.js';
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

export const VnBody = z
  .object({
    vni: z.number().int().min(1).max(0xffffff),
    name: z.string().optional(),
    allowedStations: z.array(mac).optional(),
    maxTsis: z.number().int().min(0).optional(),
  })
  .strict();

export const VniBody = z.object({ vni: z.number().int().min(1).max(0xffffff) }).strict();

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
    nve: d.nveId,
    vtep: d.vtep,
    store: storeHealth(d.storeGuard),
    dataplane: { kind: d.dp.kind, pending: d.dpSync.pending, lastError: d.dpSync.stats.lastError },
    nva: { kind: d.nva.kind, pending: d.nvaSync.pending, lastError: d.nvaSync.stats.lastError },
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

  app.get('/v1/vaps', async (req) => {
    const all = (req.query as Record<string, string> | undefined)?.all;
    return d.model
      .vapViews()
      .filter((v) => all === '1' || all === 'true' || v.state === 'connected');
  });

  app.get('/v1/tags', async () => d.tags.list());

  app.get('/v1/tsis', async () => d.model.tsiViews());

  app.get('/v1/vns', async () => d.nva.listVns());

  app.get('/v1/remotes', async () => d.model.remoteViews());

  app.get('/v1/nva', async () => ({
    kind: d.nva.kind,
    self: { id: d.nveId, vtep: d.vtep },
    nves: d.nva.nves(),
    ownEntries: d.nva.ownEntries(),
    watched: d.model.watchedVnis(),
  }));

  app.get('/v1/dataplane', async (req) => {
    const installed = (req.query as Record<string, string> | undefined)?.installed;
    if (installed === '1' || installed === 'true') {
      await d.dpSync.idle();
      return { kind: d.dp.kind, installed: await d.dp.dump() };
    }
    return { kind: d.dp.kind, desired: d.model.desiredDataPlane() };
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
    const vaps = d.model.vapViews();
    return {
      uptimeS: Math.round((Date.now() - d.startedAt) / 1000),
      stations: d.node.stations().length,
      tsis: states,
      vaps: vaps.filter((v) => v.state === 'connected').length,
      tagsHeld: vaps.filter((v) => v.state === 'held').length,
      node: d.node.stats,
      ecp: agg.ecp,
      vdp: agg.vdp,
      model: d.model.stats,
      tags: d.tags.stats,
      dataplane: {
        kind: d.dp.kind,
        pending: d.dpSync.pending,
        ...d.dpSync.stats,
        driver: (d.dp as { stats?: unknown }).stats ?? null,
      },
      nva: { kind: d.nva.kind, pending: d.nvaSync.pending, ...d.nvaSync.stats },
      events: Object.fromEntries(d.counters.events),
      storeErrors: d.storeGuard.errors,
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

  app.post('/v1/vns', async (req) => {
    const b = parseBody(VnBody, req.body);
    await d.nva.putVn(b);
    d.log.info({ event: 'admin.vn-set', ...b }, `VN ${b.vni} set`);
    return d.nva.getVn(b.vni) ?? b;
  });

  app.post('/v1/vns/delete', async (req) => {
    const b = parseBody(VniBody, req.body);
    if (!d.nva.getVn(b.vni)) throw new ApiError(404, 'No such VN', `VN ${b.vni} does not exist`);
    const before = d.model.stationsOfVn(b.vni).length;
    await d.nva.deleteVn(b.vni);
    d.log.info({ event: 'admin.vn-delete', vni: b.vni }, `VN ${b.vni} deleted`);
    return { deleted: b.vni, stations: before };
  });

  app.post('/v1/reconcile', async () => {
    d.dpSync.reconcileSoon();
    await d.dpSync.idle();
    return { reconciled: true, lastError: d.dpSync.stats.lastError };
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
