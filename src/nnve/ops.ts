/**
 * Operations side of the nNVE: the routes beyond the protocol views (VLAN pools, drains), the
 * description of every route for the OpenAPI document, and the gauges read at scrape time.
 */
import { z } from 'zod';
import { ApiError, parseBody } from '../daemon/api.js';
import {
  AuthViewSchema,
  CountersSchema,
  EvbTlvSchema,
  FilterEntrySchema,
  HealthSchema,
  HintsSchema,
  LinkStatsSchema,
  LinkStatusSchema,
  MacText,
  NegotiatedSchema,
  TimingSchema,
  TsiStateSchema,
  VdpStateSchema,
} from '../daemon/api-schemas.js';
import type { RouteDocs } from '../daemon/openapi.js';
import { parseVlanRanges } from '../policy/vlan-pool.js';
import { tsiState } from '../vdp/types.js';
import { isMac } from '../wire/bytes.js';
import type { NnveDaemon } from './daemon.js';
import { DeactivateBody, DeassociateBody } from './routes.js';

const mac = z.string().refine(isMac, 'not a MAC address');

export const DrainBody = z
  .object({
    /** Omit to drain the station on every port. */
    port: z.string().min(1).optional(),
    station: mac,
    reason: z.string().max(200).optional(),
  })
  .strict();

export const UndrainBody = z.object({ port: z.string().min(1).optional(), station: mac }).strict();

const DrainSchema = z
  .object({
    port: z.string().nullable(),
    station: MacText,
    since: z.string(),
    reason: z.string().nullable(),
  })
  .strict();

const PoolSchema = z
  .object({
    segment: z.string(),
    ports: z.array(z.string()),
    ranges: z.string(),
    size: z.number().int(),
    used: z.number().int(),
    free: z.number().int(),
  })
  .strict();

/** VLAN pool use per segment (the pool is the same for every segment). */
export function poolView(d: NnveDaemon): z.output<typeof PoolSchema>[] {
  const ranges = parseVlanRanges(d.cfg.vlanPool);
  const size = ranges.reduce((n, r) => n + r.max - r.min + 1, 0);
  const segments = new Map<string, string[]>();
  for (const p of d.cfg.ports) {
    const s = p.segment ?? p.name;
    segments.set(s, [...(segments.get(s) ?? []), p.name]);
  }
  const used = new Map<string, number>();
  for (const a of d.policy.assignments()) used.set(a.segment, (used.get(a.segment) ?? 0) + 1);
  return [...segments].map(([segment, ports]) => ({
    segment,
    ports,
    ranges: d.cfg.vlanPool,
    size,
    used: used.get(segment) ?? 0,
    free: size - (used.get(segment) ?? 0),
  }));
}

export const NNVE_ROUTE_DOCS: RouteDocs = {
  'GET /v1/health': { tag: 'Views', summary: 'Liveness', response: HealthSchema.strict() },
  'GET /v1/auth': {
    tag: 'Views',
    summary: 'PDU authentication: mode, key counts, failures per reason and peer, TLS links',
    response: AuthViewSchema,
  },
  'GET /v1/ports': {
    tag: 'Views',
    summary: 'Ports (links) with their status and frame counters',
    response: z.array(
      z
        .object({
          name: z.string(),
          mac: MacText,
          status: LinkStatusSchema,
          stats: LinkStatsSchema,
        })
        .strict(),
    ),
  },
  'GET /v1/stations': {
    tag: 'Views',
    summary: 'Stations (ECP/VDP sessions) per port with their negotiated values and counters',
    response: z.array(
      z
        .object({
          port: z.string(),
          station: MacText,
          vsis: z.number().int(),
          lastHeardMsAgo: z.number().int(),
          profile: z.enum(['802.1Qbg', 'splitnve']),
          groupId: z.boolean().optional(),
          evb: TimingSchema,
          ecp: CountersSchema,
          vdp: CountersSchema,
        })
        .strict(),
    ),
  },
  'GET /v1/peers': {
    tag: 'Views',
    summary: 'EVB (LLDP) peers per port: what they sent and the values negotiated',
    response: z.array(
      z
        .object({
          port: z.string(),
          peer: MacText,
          negotiated: NegotiatedSchema.nullable(),
          received: EvbTlvSchema,
          ttlLeftS: z.number().int(),
        })
        .strict(),
    ),
  },
  'GET /v1/vsis': {
    tag: 'Views',
    summary: 'TSIs (VSIs) as the VDP bridge machines hold them, with their assigned VIDs',
    response: z.array(
      z
        .object({
          port: z.string(),
          station: MacText,
          vsi: z.string(),
          key: z.string(),
          state: TsiStateSchema,
          vdpState: VdpStateSchema,
          typeId: z.number().int(),
          typeVersion: z.number().int(),
          filterFormat: z.number().int(),
          entries: z.array(FilterEntrySchema),
          hints: HintsSchema,
          expiresInMs: z.number().int().nullable(),
        })
        .strict(),
    ),
  },
  'GET /v1/vaps': {
    tag: 'Views',
    summary: 'VAPs: one local tag (VID) per (segment, VN) in use',
    response: z.array(
      z
        .object({
          segment: z.string(),
          vni: z.number().int(),
          vid: z.number().int(),
          tsis: z.number().int(),
          ports: z.array(z.string()),
          stations: z.number().int(),
        })
        .strict(),
    ),
  },
  'GET /v1/pools': {
    tag: 'Views',
    summary: 'VLAN pool use per segment',
    response: z.array(PoolSchema),
  },
  'GET /v1/stats': {
    tag: 'Views',
    summary: 'Counters: node, ECP and VDP totals over all stations, events by type',
    response: z
      .object({
        uptimeS: z.number().int(),
        stations: z.number().int(),
        tsis: z.record(z.string(), z.number().int()),
        vaps: z.number().int(),
        node: CountersSchema,
        ecp: CountersSchema,
        vdp: CountersSchema,
        events: z.record(z.string(), z.number().int()),
        storeErrors: z.number().int(),
      })
      .catchall(z.unknown()),
  },
  'GET /v1/drains': {
    tag: 'Views',
    summary: 'Drained stations',
    response: z.array(DrainSchema),
  },
  'POST /v1/deassociate': {
    tag: 'Actions',
    summary: 'De-associate one VSI, every VSI of a VN on a station, or a whole station',
    body: DeassociateBody,
    response: z.object({ deassociated: z.number().int() }).strict(),
    errors: [404],
  },
  'POST /v1/deactivate': {
    tag: 'Actions',
    summary: 'Deactivate an Activated VSI (splitnve profile; plain profile: de-associates)',
    body: DeactivateBody,
    response: z.object({ result: z.string() }).strict(),
    errors: [404, 409],
  },
  'POST /v1/drain': {
    tag: 'Actions',
    summary: 'Drain a station: de-associate all its VSIs and refuse new ones until undrained',
    body: DrainBody,
    response: z
      .object({ drained: z.boolean(), deassociated: z.number().int(), drain: DrainSchema })
      .strict(),
    errors: [404],
  },
  'POST /v1/undrain': {
    tag: 'Actions',
    summary: 'Accept a drained station again',
    body: UndrainBody,
    response: z.object({ undrained: z.literal(true) }).strict(),
    errors: [404],
  },
};

/** Registers the nNVE's operations routes and gauges (after its own routes). */
export function attachNnveOps(d: NnveDaemon): void {
  const { api: app, ops } = d;

  app.get('/v1/pools', async () => poolView(d));
  app.get('/v1/drains', async () => d.drains.list());

  app.post('/v1/drain', async (req) => {
    const b = parseBody(DrainBody, req.body);
    const station = b.station.toLowerCase().replace(/-/g, ':');
    if (b.port !== undefined && !d.links.has(b.port))
      throw new ApiError(404, 'No such port', `no port ${b.port}`);
    const added = d.drains.add(b.port ?? null, station, b.reason ?? null);
    let count = 0;
    for (const port of b.port !== undefined ? [b.port] : [...d.links.keys()]) {
      count += d.driver.run((now) => {
        const r = d.node.deassociate({ port, station }, now);
        return { outputs: r.outputs, result: r.count };
      });
    }
    d.log.info(
      {
        event: 'admin.drain',
        port: b.port ?? null,
        station,
        reason: b.reason ?? null,
        deassociated: count,
        already: !added,
      },
      `admin drain of ${station}${b.port ? ` on ${b.port}` : ''}: ${count} VSI(s) de-associated`,
    );
    return {
      drained: added,
      deassociated: count,
      drain: d.drains.get(b.port ?? null, station)!,
    };
  });

  app.post('/v1/undrain', async (req) => {
    const b = parseBody(UndrainBody, req.body);
    const station = b.station.toLowerCase().replace(/-/g, ':');
    if (!d.drains.remove(b.port ?? null, station))
      throw new ApiError(
        404,
        'Not drained',
        `station ${station} is not drained${b.port ? ` on ${b.port}` : ' on every port'}`,
      );
    d.log.info(
      { event: 'admin.undrain', port: b.port ?? null, station },
      `admin undrain of ${station}`,
    );
    return { undrained: true as const };
  });

  ops.attach(app, {
    title: 'splitnve nNVE API',
    description:
      'The external NVE (VDP bridge): stations, TSIs, VAPs, VLAN pools, peers, counters, ' +
      'admin actions. Errors are application/problem+json.',
    docs: NNVE_ROUTE_DOCS,
    reload: () => d.reload(ops.configSource!() as Parameters<NnveDaemon['reload']>[0]),
  });

  const m = ops.metrics;
  m.gauge('splitnve_tsis', 'TSIs by port and TSI state.', ['port', 'state'], () => {
    const n = new Map<string, number>();
    for (const p of d.links.keys())
      for (const s of ['Associated', 'Activated']) n.set(`${p}|${s}`, 0);
    for (const v of d.node.vsis()) {
      const k = `${v.port}|${tsiState(v.vsi.state)}`;
      n.set(k, (n.get(k) ?? 0) + 1);
    }
    return [...n].map(([k, v]) => {
      const [port, state] = k.split('|') as [string, string];
      return [{ port, state }, v] as const;
    });
  });
  m.gauge('splitnve_vaps', 'VAPs (local tags in use) by state.', ['state'], () => [
    [{ state: 'connected' }, d.policy.assignments().length],
  ]);
  m.gauge('splitnve_stations', 'Stations (ECP/VDP sessions) per port.', ['port'], () => {
    const n = new Map<string, number>([...d.links.keys()].map((p) => [p, 0]));
    for (const s of d.node.stations()) n.set(s.port, (n.get(s.port) ?? 0) + 1);
    return [...n].map(([port, v]) => [{ port }, v] as const);
  });
  m.gauge('splitnve_evb_peers', 'EVB (LLDP) peers per port.', ['port'], () =>
    d.node.peers().map((p) => [{ port: p.port }, p.peers.length] as const),
  );
  m.gauge(
    'splitnve_vlan_pool_size',
    'Local tags (VIDs) in the VLAN pool of a segment.',
    ['segment'],
    () => poolView(d).map((p) => [{ segment: p.segment }, p.size] as const),
  );
  m.gauge('splitnve_vlan_pool_used', 'Local tags in use per segment.', ['segment'], () =>
    poolView(d).map((p) => [{ segment: p.segment }, p.used] as const),
  );
  m.gauge('splitnve_drained_stations', 'Stations drained by the operator.', [], () => [
    [{}, d.drains.list().length],
  ]);
}
