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
import { DeactivateBody, DeassociateBody, VnBody, VniBody } from './routes.js';
import type { ModelEvent } from './model.js';

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
    held: z.number().int(),
    free: z.number().int(),
  })
  .strict();

/**
 * VLAN pool use per segment: tags in use by a connected VAP, tags held for their VN after its
 * last VSI left (`tagHoldS`), and free ones.
 */
export function poolView(d: NnveDaemon): z.output<typeof PoolSchema>[] {
  const segments = new Map<string, { ports: string[]; ranges: string }>();
  for (const p of d.cfg.ports) {
    const s = p.segment ?? p.name;
    const seg = segments.get(s) ?? { ports: [], ranges: p.vlanPool ?? d.cfg.vlanPool };
    seg.ports.push(p.name);
    segments.set(s, seg);
  }
  const used = new Map<string, number>();
  const held = new Map<string, number>();
  for (const t of d.tags.list()) {
    const m = t.refs > 0 ? used : held;
    m.set(t.segment, (m.get(t.segment) ?? 0) + 1);
  }
  return [...segments].map(([segment, { ports, ranges }]) => {
    const size = parseVlanRanges(ranges).reduce((n, r) => n + r.max - r.min + 1, 0);
    const u = used.get(segment) ?? 0;
    const h = held.get(segment) ?? 0;
    return { segment, ports, ranges, size, used: u, held: h, free: size - u - h };
  });
}

/** Counts what the nNVE model does (next to its log lines, src/nnve/events.ts). */
export function countModelEvent(d: NnveDaemon, e: ModelEvent): void {
  const m = d.ops.metrics;
  switch (e.type) {
    case 'tag-allocated':
    case 'tag-held':
    case 'tag-released':
    case 'tag-reclaimed':
      m.inc('splitnve_tag_changes_total', { segment: e.segment, change: e.type.slice(4) });
      break;
    case 'pool-exhausted':
      m.inc('splitnve_vlan_pool_exhausted_total', { segment: e.segment });
      break;
    case 'superseded':
      m.inc('splitnve_endpoint_supersessions_total', {
        change: e.superseded ? 'superseded' : 'restored',
      });
      break;
    default:
      break;
  }
}

const SyncHealthSchema = z
  .object({ kind: z.string(), pending: z.number().int(), lastError: z.string().nullable() })
  .strict();

const VapSchema = z
  .object({
    segment: z.string(),
    vni: z.number().int(),
    vid: z.number().int(),
    state: z.enum(['connected', 'held']),
    heldUntil: z.number().nullable(),
    refs: z.number().int(),
    tsis: z.number().int(),
    explicit: z.number().int(),
    stations: z.number().int(),
    ports: z.array(z.string()),
    vn: z
      .object({
        name: z.string().optional(),
        allowedStations: z.array(z.string()).optional(),
        maxTsis: z.number().int().optional(),
      })
      .strict()
      .nullable()
      .describe("the VN's context from the NVA (name, policy); null once the NVA no longer has it"),
  })
  .strict();

const TsiSchema = z
  .object({
    port: z.string(),
    segment: z.string(),
    station: MacText,
    key: z.string(),
    vsiId: z.string(),
    state: TsiStateSchema,
    vdpState: VdpStateSchema,
    since: z.number().optional(),
    endpoints: z.array(
      z
        .object({
          vni: z.number().int(),
          vid: z.number().int(),
          mac: z.string(),
          ips: z.array(z.string()),
        })
        .strict(),
    ),
    connects: z.array(z.object({ vni: z.number().int(), vid: z.number().int() }).strict()),
    migration: z.enum(['arriving', 'leaving']).optional(),
    superseded: z.array(z.string()),
  })
  .strict();

const VnSchema = z
  .object({
    vni: z.number().int(),
    name: z.string().optional(),
    allowedStations: z.array(z.string()).optional(),
    maxTsis: z.number().int().optional(),
  })
  .strict();

const NveSchema = z.object({ id: z.string(), vtep: z.string() }).strict();

const NvaEntrySchema = z
  .object({
    vni: z.number().int(),
    mac: z.string(),
    ips: z.array(z.string()),
    nve: z.string(),
    vtep: z.string(),
    kind: z.enum(['mapping', 'forwarding']),
  })
  .strict();

const DataPlaneStateSchema = z
  .object({
    vaps: z.array(z.record(z.string(), z.unknown())),
    locals: z.array(z.record(z.string(), z.unknown())),
    remotes: z.array(z.record(z.string(), z.unknown())),
    floods: z.array(z.record(z.string(), z.unknown())),
  })
  .strict()
  .describe('VAPs, local endpoints, remote endpoints and flood lists (src/dataplane/dataplane.ts)');

export const NNVE_ROUTE_DOCS: RouteDocs = {
  'GET /v1/health': {
    tag: 'Views',
    summary: 'Liveness, identity in the NVA, state store, data plane and NVA queues',
    response: HealthSchema.extend({
      nve: z.string(),
      vtep: z.string(),
      dataplane: SyncHealthSchema,
      nva: SyncHealthSchema,
    }).strict(),
  },
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
    summary: 'VAPs: one local tag (VID) per (segment, VN); connected ones, with ?all=1 also held',
    query: z.object({ all: z.enum(['1', 'true', '0', 'false']).optional() }),
    response: z.array(VapSchema),
  },
  'GET /v1/tsis': {
    tag: 'Views',
    summary: 'TSIs as the nNVE model holds them: state, endpoints per VN, migration, supersession',
    response: z.array(TsiSchema),
  },
  'GET /v1/tags': {
    tag: 'Views',
    summary: 'Local tags per segment and VN: in use (refs) or held until a time',
    response: z.array(
      z
        .object({
          segment: z.string(),
          vni: z.number().int(),
          vid: z.number().int(),
          heldUntil: z.number().nullable(),
          refs: z.number().int(),
        })
        .strict(),
    ),
  },
  'GET /v1/vns': {
    tag: 'Views',
    summary: "The NVA's VN directory",
    response: z.array(VnSchema),
  },
  'GET /v1/remotes': {
    tag: 'Views',
    summary: "Other NVEs' entries of the VNs watched here, and whether they are programmed",
    response: z.array(
      z
        .object({
          vni: z.number().int(),
          mac: z.string(),
          nve: z.string(),
          vtep: z.string(),
          kind: z.string(),
          programmed: z.boolean(),
        })
        .strict(),
    ),
  },
  'GET /v1/nva': {
    tag: 'Views',
    summary: 'The NVA: kind, this NVE, the NVEs registered, own entries, watched VNs',
    response: z
      .object({
        kind: z.string(),
        self: NveSchema,
        nves: z.array(NveSchema),
        ownEntries: z.array(NvaEntrySchema),
        watched: z.array(z.number().int()),
      })
      .strict(),
  },
  'GET /v1/dataplane': {
    tag: 'Views',
    summary: 'The data plane: desired state, or with ?installed=1 what is installed (read back)',
    query: z.object({ installed: z.enum(['1', 'true', '0', 'false']).optional() }),
    response: z
      .object({
        kind: z.string(),
        desired: DataPlaneStateSchema.optional(),
        installed: DataPlaneStateSchema.optional(),
      })
      .strict(),
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
  'POST /v1/vns': {
    tag: 'Actions',
    summary: 'Create or replace a VN in the NVA',
    body: VnBody,
    response: VnSchema,
  },
  'POST /v1/vns/delete': {
    tag: 'Actions',
    summary: 'Delete a VN from the NVA: every nNVE de-associates its TSIs',
    body: VniBody,
    response: z.object({ deleted: z.number().int(), stations: z.number().int() }).strict(),
    errors: [404],
  },
  'POST /v1/reconcile': {
    tag: 'Actions',
    summary: 'Reconcile the data plane against the desired state now',
    response: z.object({ reconciled: z.literal(true), lastError: z.string().nullable() }).strict(),
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
  m.gauge('splitnve_vaps', 'VAPs by state (connected, or tag held for the VN).', ['state'], () => {
    const n = new Map<string, number>([
      ['connected', 0],
      ['held', 0],
    ]);
    for (const v of d.model.vapViews()) n.set(v.state, (n.get(v.state) ?? 0) + 1);
    return [...n].map(([state, v]) => [{ state }, v] as const);
  });
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
  m.gauge(
    'splitnve_vlan_pool_held',
    'Local tags held for their VN after its last VSI left, per segment.',
    ['segment'],
    () => poolView(d).map((p) => [{ segment: p.segment }, p.held] as const),
  );
  m.counter('splitnve_tag_changes_total', 'Local tags allocated, held, released, reclaimed.', [
    'segment',
    'change',
  ]);
  m.counter(
    'splitnve_vlan_pool_exhausted_total',
    'Requests refused because the VLAN pool of the segment had no tag left.',
    ['segment'],
  );
  m.counter(
    'splitnve_endpoint_supersessions_total',
    'Local endpoints superseded by a newer entry of another NVE (migration), or restored.',
    ['change'],
  );
  m.gauge(
    'splitnve_dataplane_pending',
    'Data-plane operations waiting to be installed.',
    [],
    () => [[{}, d.dpSync.pending]],
  );
  m.counterFrom(
    'splitnve_dataplane_failures_total',
    'Data-plane batches and reconciles that failed.',
    ['what'],
    () => [
      [{ what: 'batch' }, d.dpSync.stats.failures],
      [{ what: 'reconcile' }, d.dpSync.stats.reconcileFailures],
    ],
  );
  m.gauge('splitnve_nva_pending', 'NVA entry writes waiting to be confirmed.', [], () => [
    [{}, d.nvaSync.pending],
  ]);
  m.counterFrom(
    'splitnve_nva_failures_total',
    'NVA writes and watches that failed.',
    ['what'],
    () => [
      [{ what: 'write' }, d.nvaSync.stats.failures],
      [{ what: 'watch' }, d.nvaSync.stats.watchFailures],
    ],
  );
  m.gauge('splitnve_drained_stations', 'Stations drained by the operator.', [], () => [
    [{}, d.drains.list().length],
  ]);
}
