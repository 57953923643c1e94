/**
 * Operations side of the tNVE: EVB peers per uplink, the description of every route for the
 * OpenAPI document, agent counters and the gauges read at scrape time.
 */
import { z } from 'zod';
import {
  AuthViewSchema,
  CountersSchema,
  EvbTlvSchema,
  FilterEntrySchema,
  HealthSchema,
  LinkStatsSchema,
  LinkStatusSchema,
  MacText,
  NegotiatedSchema,
  TimingSchema,
  TsiStateSchema,
  VdpStateSchema,
} from '../daemon/api-schemas.js';
import type { RouteDocs } from '../daemon/openapi.js';
import { tsiState } from '../vdp/types.js';
import { VM_STATES } from './model.js';
import type { TnveDaemon } from './daemon.js';
import type { AgentEvent } from './agent.js';
import {
  AddressesBody,
  DefineBody,
  ReconcileBody,
  RequestBody,
  SIMPLE,
  Timeout,
} from './routes.js';

const VmStateSchema = z.enum(VM_STATES as [string, ...string[]]);

const FailureSchema = z
  .object({
    uplink: z.string(),
    vsiId: z.string(),
    error: z.string(),
    reason: z.number().int().optional(),
    reasonName: z.string().optional(),
    message: z.string(),
  })
  .strict();

const SlotViewSchema = z
  .object({
    uplink: z.string(),
    role: z.enum(['active', 'standby']),
    vdpState: VdpStateSchema,
    tsiState: TsiStateSchema,
    vid: z.number().int().nullable(),
    pending: z.number().int().nullable(),
    override: VdpStateSchema.nullable(),
    lastError: FailureSchema.nullable(),
  })
  .strict();

const InterfaceViewSchema = z
  .object({
    vsiId: z.string(),
    vni: z.number().int(),
    macs: z.array(z.string()),
    ips: z.array(z.string()),
    pairs: z.array(z.object({ mac: z.string(), ip: z.string() })),
    localTag: z.object({ uplink: z.string(), vid: z.number().int() }).nullable(),
    tsiState: TsiStateSchema,
    uplinks: z.array(SlotViewSchema),
  })
  .catchall(z.unknown())
  .describe('an interface (TSI) with its definition, local tag and state per uplink');

const VmViewSchema = z
  .object({
    name: z.string(),
    state: VmStateSchema,
    reserve: z.boolean(),
    note: z.string().nullable(),
    op: z.object({ id: z.string(), op: z.string() }).nullable(),
    interfaces: z.array(InterfaceViewSchema),
  })
  .strict();

const OpAnswerSchema = z
  .object({
    ok: z.literal(true),
    op: z.string(),
    vm: z.string(),
    state: VmStateSchema.nullable(),
    tookMs: z.number(),
    failures: z.array(FailureSchema),
    unconfirmed: z.array(z.object({ uplink: z.string(), vsiId: z.string() })),
    view: VmViewSchema.nullable(),
  })
  .strict()
  .describe('the nNVE confirmed; errors are problem+json with the same fields and `error`');

const OP_ERRORS = [400, 404, 409, 422, 503, 504];

const PeerSchema = z
  .object({
    uplink: z.string(),
    peer: MacText,
    negotiated: NegotiatedSchema.nullable(),
    received: EvbTlvSchema,
    ttlLeftS: z.number().int(),
  })
  .strict();

function vmDocs(): RouteDocs {
  const docs: RouteDocs = {};
  for (const [path, op] of Object.entries(SIMPLE)) {
    docs[`POST /v1/vms/:name/${path}`] = {
      tag: 'VMs',
      summary: `Lifecycle: ${op} (src/tnve/README.md)`,
      body: Timeout.optional(),
      response: OpAnswerSchema,
      errors: OP_ERRORS,
    };
  }
  return docs;
}

export const TNVE_ROUTE_DOCS: RouteDocs = {
  'GET /v1/health': {
    tag: 'Views',
    summary: 'Liveness and the state store',
    response: HealthSchema.strict(),
  },
  'GET /v1/auth': {
    tag: 'Views',
    summary: 'PDU authentication: mode, key counts, failures per reason and peer, TLS links',
    response: AuthViewSchema,
  },
  'GET /v1/uplinks': {
    tag: 'Views',
    summary: 'Uplinks: link status, nNVE, health, negotiated values, ECP/VDP counters',
    response: z.array(
      z
        .object({
          name: z.string(),
          mac: MacText,
          status: LinkStatusSchema,
          bridge: MacText.nullable(),
          health: z
            .object({ linkUp: z.boolean(), suspect: z.string().nullable(), healthy: z.boolean() })
            .strict(),
          evb: TimingSchema,
          profile: z.enum(['802.1Qbg', 'splitnve']),
          groupId: z.boolean().nullable(),
          ecp: CountersSchema,
          vdp: CountersSchema,
          link: LinkStatsSchema,
        })
        .strict(),
    ),
  },
  'GET /v1/peers': {
    tag: 'Views',
    summary: 'EVB (LLDP) peers per uplink: what they sent and the values negotiated',
    response: z.array(PeerSchema),
  },
  'GET /v1/vsis': {
    tag: 'Views',
    summary: 'VSIs (TSIs) of the VDP station per uplink',
    response: z.array(
      z
        .object({
          uplink: z.string(),
          vsi: z.string(),
          key: z.string(),
          state: TsiStateSchema,
          vdpState: VdpStateSchema,
          spec: z
            .object({
              managerId: z.string(),
              typeId: z.number().int(),
              typeVersion: z.number().int(),
              idFormat: z.number().int(),
              id: z.string(),
              filterFormat: z.number().int(),
              entries: z.array(FilterEntrySchema),
            })
            .strict()
            .nullable(),
          pending: z.number().int().nullable(),
          nextKeepAliveInMs: z.number().int().nullable(),
        })
        .strict(),
    ),
  },
  'GET /v1/stats': {
    tag: 'Views',
    summary: 'Counters: node, ECP and VDP per uplink, events by type, VMs, tags applied',
    response: z
      .object({
        uptimeS: z.number().int(),
        node: CountersSchema,
        uplinks: z.record(z.string(), z.object({ ecp: CountersSchema, vdp: CountersSchema })),
        events: z.record(z.string(), z.number().int()),
        storeErrors: z.number().int(),
        vms: z.number().int(),
        openOps: z.number().int(),
        tagsApplied: z.number().int(),
        tagErrors: z.number().int(),
      })
      .catchall(z.unknown()),
  },
  'GET /v1/vms': {
    tag: 'VMs',
    summary: 'Every VM with its interfaces',
    response: z.array(VmViewSchema),
  },
  'GET /v1/vms/:name': {
    tag: 'VMs',
    summary: 'One VM',
    response: VmViewSchema,
    errors: [400, 404],
  },
  'PUT /v1/vms/:name': {
    tag: 'VMs',
    summary: 'Define (or redefine while shut off) a VM',
    body: DefineBody,
    response: OpAnswerSchema,
    errors: OP_ERRORS,
  },
  'DELETE /v1/vms/:name': {
    tag: 'VMs',
    summary: 'Destroy a VM (De-Associate, then forget it)',
    response: OpAnswerSchema,
    errors: OP_ERRORS,
  },
  ...vmDocs(),
  'POST /v1/vms/:name/migrate-in/begin': {
    tag: 'VMs',
    summary: 'Migration destination: reserve (Pre-Associate-RR M=1) with the definition',
    body: DefineBody,
    response: OpAnswerSchema,
    errors: OP_ERRORS,
  },
  'POST /v1/vms/:name/addresses': {
    tag: 'VMs',
    summary: "Change an interface's addresses (the same mode again with the new filter)",
    body: AddressesBody,
    response: OpAnswerSchema,
    errors: OP_ERRORS,
  },
  'POST /v1/reconcile': {
    tag: 'VMs',
    summary: "Bring the VMs to the orchestrator's list (runs the difference as lifecycle calls)",
    body: ReconcileBody,
    response: z
      .object({
        ok: z.boolean(),
        results: z.array(
          z
            .object({
              name: z.string(),
              ok: z.boolean(),
              error: z.string().optional(),
              steps: z.array(
                z
                  .object({
                    op: z.string(),
                    ok: z.boolean(),
                    state: VmStateSchema.nullable(),
                    error: z.string().nullable(),
                  })
                  .strict(),
              ),
              state: VmStateSchema.nullable(),
            })
            .strict(),
        ),
      })
      .strict(),
  },
  'GET /v1/vns': {
    tag: 'Views',
    summary: 'VNs: multi-homing mode, active uplink, VID per uplink',
    response: z.array(
      z
        .object({
          vni: z.number().int(),
          mode: z.enum(['active-standby', 'active-active']),
          active: z.string().nullable(),
          tsis: z.number().int(),
          uplinks: z.array(
            z
              .object({
                uplink: z.string(),
                role: z.enum(['active', 'standby']),
                healthy: z.boolean(),
                vid: z.number().int().nullable(),
              })
              .strict(),
          ),
        })
        .strict(),
    ),
  },
  'GET /v1/events': {
    tag: 'VMs',
    summary: 'Lifecycle events for orchestrators (server-sent events, src/tnve/README.md)',
    produces: 'text/event-stream',
    response: z.string(),
  },
  'POST /v1/requests': {
    tag: 'Actions',
    summary: 'Send one VDP request for a VSI that belongs to no VM (e.g. de-associate)',
    body: RequestBody,
    response: z
      .object({
        ok: z.literal(true),
        uplink: z.string(),
        key: z.string(),
        state: TsiStateSchema,
        entries: z.array(FilterEntrySchema),
        attempts: z.number().int(),
      })
      .strict(),
    errors: [404, 409, 422, 504],
  },
};

export function peersView(d: TnveDaemon): z.output<typeof PeerSchema>[] {
  const now = d.driver.now();
  return d.cfg.uplinks.flatMap((u) =>
    (d.node.evbAgent(u.name)?.peerList() ?? []).map((p) => ({
      uplink: u.name,
      peer: p.mac,
      negotiated: p.negotiated ?? null,
      received: p.tlv,
      ttlLeftS: Math.max(0, Math.round((p.expiresAt - now) / 1e6)),
    })),
  );
}

/** Counts what the lifecycle agent does (next to its log lines, src/tnve/events.ts). */
export function countAgentEvent(d: TnveDaemon, e: AgentEvent): void {
  const m = d.ops.metrics;
  switch (e.type) {
    case 'vm':
      m.counter('splitnve_vm_transitions_total', 'VM state changes (tNVE).', ['from', 'to']).inc({
        from: e.from ?? 'none',
        to: e.to ?? 'gone',
      });
      break;
    case 'active-uplink':
      if (e.from !== null)
        m.counter('splitnve_failovers_total', 'VNs moved to another uplink (tNVE).', []).inc();
      break;
    case 'op-result':
      m.counter('splitnve_operations_total', 'Lifecycle operations by kind and result (tNVE).', [
        'op',
        'result',
      ]).inc({ op: e.op, result: e.ok ? 'ok' : (e.error ?? 'failed') });
      break;
    default:
      break;
  }
}

/** Registers the tNVE's operations routes and gauges (after its own routes). */
export function attachTnveOps(d: TnveDaemon): void {
  const { api: app, ops } = d;
  app.get('/v1/peers', async () => peersView(d));
  ops.attach(app, {
    title: 'splitnve tNVE API',
    description:
      'The hypervisor agent (VDP station): VM lifecycle, VSIs, uplinks, VNs, peers, counters. ' +
      'Errors are application/problem+json.',
    docs: TNVE_ROUTE_DOCS,
    reload: () => d.reload(ops.configSource!() as Parameters<TnveDaemon['reload']>[0]),
  });
  const m = ops.metrics;
  m.counter('splitnve_vm_transitions_total', 'VM state changes (tNVE).', ['from', 'to']);
  m.counter('splitnve_failovers_total', 'VNs moved to another uplink (tNVE).', []);
  m.counter('splitnve_operations_total', 'Lifecycle operations by kind and result (tNVE).', [
    'op',
    'result',
  ]);
  m.gauge('splitnve_tsis', 'VSIs (TSIs) by uplink and TSI state.', ['port', 'state'], () => {
    const out: [Record<string, string>, number][] = [];
    for (const u of d.cfg.uplinks) {
      const n = new Map<string, number>([
        ['Associated', 0],
        ['Activated', 0],
      ]);
      for (const v of d.node.vsis(u.name)) {
        const s = tsiState(v.state);
        if (s !== 'Init') n.set(s, (n.get(s) ?? 0) + 1);
      }
      for (const [state, v] of n) out.push([{ port: u.name, state }, v]);
    }
    return out;
  });
  m.gauge('splitnve_vms', 'VMs by state (tNVE).', ['state'], () => {
    const n = new Map<string, number>(VM_STATES.map((s) => [s, 0]));
    for (const name of d.agent.vmNames()) {
      const s = d.agent.vmView(name)?.state;
      if (s) n.set(s, (n.get(s) ?? 0) + 1);
    }
    return [...n].map(([state, v]) => [{ state }, v] as const);
  });
  m.gauge('splitnve_uplink_healthy', 'Uplink health (1 healthy, 0 not).', ['port'], () =>
    d.cfg.uplinks.map(
      (u) => [{ port: u.name }, d.agent.uplinkHealth(u.name).healthy ? 1 : 0] as const,
    ),
  );
  m.gauge('splitnve_open_operations', 'Lifecycle operations waiting for the nNVE.', [], () => [
    [{}, d.agent.openOps()],
  ]);
}
