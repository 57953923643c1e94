/** One log line with a stable `event` name per thing that happens on the tNVE. */
import type { Logger } from '../daemon/logger.js';
import type { StationNodeEvent } from '../node/station-node.js';
import { reasonName } from '../wire/status.js';
import { tsiState, type VsiMode } from '../vdp/types.js';
import { VSI_TLV_NAMES } from '../wire/vdp.js';
import type { AgentEvent } from './agent.js';

function modeName(m: VsiMode): string {
  return VSI_TLV_NAMES[m];
}

export function logStationEvent(log: Logger, e: StationNodeEvent): void {
  switch (e.type) {
    case 'vsi-state':
      log.info(
        {
          event: 'vsi.state',
          uplink: e.uplink,
          vsi: e.vsiId,
          from: e.from,
          to: e.to,
          tsiFrom: tsiState(e.from),
          tsiTo: tsiState(e.to),
          cause: e.cause,
        },
        `VSI ${e.vsiId} on ${e.uplink}: ${e.from} -> ${e.to} (${e.cause})`,
      );
      break;
    case 'request-result':
      if (e.ok) {
        log.info(
          {
            event: 'request.ok',
            uplink: e.uplink,
            key: e.key,
            requestId: e.requestId,
            mode: modeName(e.mode),
            vids: e.entries.map((x) => x.vid),
            attempts: e.attempts,
          },
          `${modeName(e.mode)} accepted on ${e.uplink}`,
        );
      } else {
        log.warn(
          {
            event: 'request.failed',
            uplink: e.uplink,
            key: e.key,
            requestId: e.requestId,
            mode: modeName(e.mode),
            error: e.error,
            reason: e.reason,
            reasonName: e.reason !== undefined ? reasonName(e.reason) : undefined,
            keep: e.keep,
            hard: e.hard,
            detail: e.message,
          },
          `${modeName(e.mode)} failed on ${e.uplink}: ${e.message}`,
        );
      }
      break;
    case 'keepalive-failed':
      log.warn(
        {
          event: 'keepalive.failed',
          uplink: e.uplink,
          key: e.key,
          error: e.error,
          reason: e.reason,
        },
        `keep-alive failed on ${e.uplink}: ${e.error}`,
      );
      break;
    case 'vids':
      log.info(
        {
          event: 'vsi.vids',
          uplink: e.uplink,
          key: e.key,
          vids: e.entries.map((x) => x.vid),
          vnis: e.entries.map((x) => x.groupId),
        },
        `local tags on ${e.uplink}: ${e.entries.map((x) => x.vid).join(',')}`,
      );
      break;
    case 'peer-up':
      log.info(
        {
          event: 'peer.up',
          uplink: e.uplink,
          peer: e.peer,
          chassisId: e.chassisId,
          portId: e.portId,
        },
        `nNVE ${e.peer} up on ${e.uplink}`,
      );
      break;
    case 'peer-down':
      log.info(
        { event: 'peer.down', uplink: e.uplink, peer: e.peer, reason: e.reason },
        `nNVE ${e.peer} down on ${e.uplink}: ${e.reason}`,
      );
      break;
    case 'negotiated':
      log.info(
        {
          event: 'evb.negotiated',
          uplink: e.uplink,
          peer: e.peer,
          ...e.negotiated,
          profile: e.profile,
        },
        `EVB with ${e.peer}: RKA=${e.negotiated.rka} profile ${e.profile}`,
      );
      break;
    case 'ecp-failed':
      log.warn(
        { event: 'ecp.failed', uplink: e.uplink, sequence: e.sequence },
        `ECP gave up on ${e.uplink}`,
      );
      break;
    case 'frame-dropped':
      log.debug(
        {
          event: 'frame.dropped',
          uplink: e.uplink,
          source: e.source,
          why: e.why,
          field: e.field,
          offset: e.offset,
        },
        `frame dropped on ${e.uplink}: ${e.why}`,
      );
      break;
  }
}

/** One log line per lifecycle-agent event (not the per-VM persistence records). */
export function logAgentEvent(log: Logger, e: AgentEvent): void {
  switch (e.type) {
    case 'vm':
      log.info(
        { event: 'vm.state', vm: e.name, from: e.from, to: e.to, cause: e.cause },
        `VM ${e.name}: ${e.from ?? '-'} -> ${e.to ?? 'gone'} (${e.cause})`,
      );
      break;
    case 'active-uplink':
      (e.from === null ? log.info.bind(log) : log.warn.bind(log))(
        {
          event: e.from === null ? 'vn.active' : 'vn.failover',
          vni: e.vni,
          from: e.from,
          to: e.uplink,
          cause: e.cause,
        },
        e.from === null
          ? `VN ${e.vni}: active uplink ${e.uplink}`
          : `VN ${e.vni}: fail-over ${e.from} -> ${e.uplink} (${e.cause})`,
      );
      break;
    case 'uplink-health':
      (e.healthy ? log.info.bind(log) : log.warn.bind(log))(
        {
          event: e.healthy ? 'uplink.healthy' : 'uplink.unhealthy',
          uplink: e.uplink,
          cause: e.cause,
        },
        `uplink ${e.uplink} ${e.healthy ? 'healthy' : 'unhealthy'}: ${e.cause}`,
      );
      break;
    case 'tag':
      log.info(
        {
          event: 'tag',
          vm: e.vm,
          vsi: e.vsiId,
          port: e.port,
          vni: e.vni,
          uplink: e.uplink,
          vid: e.vid,
        },
        `local tag of ${e.vsiId} (VN ${e.vni}): ${e.vid ?? 'none'}${e.uplink ? ` on ${e.uplink}` : ''}`,
      );
      break;
    case 'tsi-bridge':
      log.warn(
        {
          event: 'tsi.bridge',
          vm: e.vm,
          vsi: e.vsiId,
          uplink: e.uplink,
          from: e.from,
          to: e.to,
          cause: e.cause,
        },
        `nNVE on ${e.uplink} changed ${e.vsiId} of VM ${e.vm}: ${e.from} -> ${e.to} (${e.cause})`,
      );
      break;
    case 'op-result':
      (e.ok ? log.info.bind(log) : log.warn.bind(log))(
        {
          event: e.ok ? 'op.ok' : 'op.failed',
          op: e.op,
          vm: e.vm,
          state: e.state,
          error: e.error,
          detail: e.message,
          failures: e.failures.length ? e.failures : undefined,
          unconfirmed: e.unconfirmed.length ? e.unconfirmed : undefined,
          tookMs: Math.round(e.tookUs / 100) / 10,
        },
        e.ok ? `${e.op} ${e.vm}: ok` : `${e.op} ${e.vm} failed: ${e.message}`,
      );
      break;
    case 'vm-record':
      break;
  }
}
