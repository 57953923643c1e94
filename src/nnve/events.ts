/** One log line with a stable `event` name per thing that happens on the nNVE. */
import type { Logger } from '../daemon/logger.js';
import type { BridgeNodeEvent } from '../node/bridge-node.js';
import type { ModelEvent } from './model.js';
import { reasonName } from '../wire/status.js';
import { tsiState } from '../vdp/types.js';

export function logBridgeEvent(log: Logger, e: BridgeNodeEvent): void {
  switch (e.type) {
    case 'tsi':
      log.info(
        {
          event: 'tsi.state',
          port: e.port,
          station: e.station,
          vsi: e.vsiId,
          from: tsiState(e.from),
          to: tsiState(e.to),
          vdpFrom: e.from,
          vdpTo: e.to,
          cause: e.cause,
          vids: e.vsi.entries.map((x) => x.vid),
          vnis: e.vsi.entries.map((x) => x.groupId).filter((x) => x !== undefined),
          macs: e.vsi.entries.map((x) => x.mac).filter((x) => x !== undefined),
          migration: e.vsi.hints.m ? 'arriving' : e.vsi.hints.s ? 'leaving' : undefined,
        },
        `TSI ${e.vsiId} on ${e.port}/${e.station}: ${tsiState(e.from)} -> ${tsiState(e.to)} (${e.cause})`,
      );
      break;
    case 'refused':
      log.warn(
        {
          event: 'vsi.refused',
          port: e.port,
          station: e.station,
          vsi: e.vsiId,
          mode: e.mode,
          reason: e.reason,
          reasonName: reasonName(e.reason),
          hard: e.hard,
          keep: e.keep,
          detail: e.message,
        },
        `refused ${e.vsiId} from ${e.station}: ${reasonName(e.reason)}: ${e.message}`,
      );
      break;
    case 'dropped':
      log.warn(
        {
          event: 'vdp.dropped',
          port: e.port,
          station: e.station,
          why: e.why,
          field: e.field,
          offset: e.offset,
        },
        `dropped TLV from ${e.station}: ${e.why}`,
      );
      break;
    case 'peer-up':
      log.info(
        { event: 'peer.up', port: e.port, peer: e.peer, chassisId: e.chassisId, portId: e.portId },
        `EVB peer ${e.peer} up on ${e.port}`,
      );
      break;
    case 'peer-down':
      log.info(
        { event: 'peer.down', port: e.port, peer: e.peer, reason: e.reason },
        `EVB peer ${e.peer} down on ${e.port}: ${e.reason}`,
      );
      break;
    case 'negotiated':
      log.info(
        {
          event: 'evb.negotiated',
          port: e.port,
          peer: e.peer,
          ...e.negotiated,
          profile: e.profile,
        },
        `EVB with ${e.peer}: R=${e.negotiated.r} RTE=${e.negotiated.rte} RWD=${e.negotiated.rwd} RKA=${e.negotiated.rka} GroupID=${e.negotiated.groupId}, profile ${e.profile}`,
      );
      break;
    case 'station-new':
      log.info(
        { event: 'station.new', port: e.port, station: e.station },
        `new station ${e.station} on ${e.port}`,
      );
      break;
    case 'ecp-failed':
      log.warn(
        { event: 'ecp.failed', port: e.port, station: e.station, sequence: e.sequence },
        `ECP gave up sending to ${e.station}`,
      );
      break;
    case 'frame-dropped':
      log.debug(
        {
          event: 'frame.dropped',
          port: e.port,
          source: e.source,
          why: e.why,
          field: e.field,
          offset: e.offset,
        },
        `frame dropped on ${e.port}: ${e.why}`,
      );
      break;
  }
}

/** One log line per thing the nNVE model did (tags, VAPs, supersessions, VN auto-create). */
export function logModelEvent(log: Logger, e: ModelEvent): void {
  switch (e.type) {
    case 'tag-allocated':
      log.info(
        { event: 'tag.allocated', segment: e.segment, vni: e.vni, vid: e.vid },
        `VN ${e.vni} on segment ${e.segment}: VLAN ${e.vid} (VAP connected)`,
      );
      break;
    case 'tag-held':
      log.info(
        {
          event: 'tag.held',
          segment: e.segment,
          vni: e.vni,
          vid: e.vid,
          until: new Date(e.until).toISOString(),
        },
        `VN ${e.vni} on segment ${e.segment}: no VSI left (VAP disconnected), VLAN ${e.vid} held`,
      );
      break;
    case 'tag-released':
      log.info(
        { event: 'tag.released', segment: e.segment, vni: e.vni, vid: e.vid },
        `VN ${e.vni} on segment ${e.segment}: VLAN ${e.vid} released`,
      );
      break;
    case 'tag-reclaimed':
      log.warn(
        { event: 'tag.reclaimed', segment: e.segment, vni: e.vni, vid: e.vid, by: e.by },
        `VLAN ${e.vid} on segment ${e.segment} held for VN ${e.vni} given to VN ${e.by} (pool full)`,
      );
      break;
    case 'pool-exhausted':
      log.warn(
        { event: 'tag.pool-exhausted', segment: e.segment, vni: e.vni },
        `VLAN pool of segment ${e.segment} exhausted: VN ${e.vni} refused (reason 2)`,
      );
      break;
    case 'superseded':
      log.info(
        {
          event: e.superseded ? 'endpoint.superseded' : 'endpoint.restored',
          port: e.port,
          vlan: e.vlan,
          vni: e.vni,
          mac: e.mac,
          by: e.by,
        },
        e.superseded
          ? `${e.mac} in VN ${e.vni}: a newer forwarding entry of ${e.by} wins (local endpoint inactive)`
          : `${e.mac} in VN ${e.vni}: local endpoint in force again`,
      );
      break;
    case 'vn-auto-create':
      log.info(
        { event: 'vn.auto-create', vni: e.vni },
        `VN ${e.vni} unknown: creating it (policy)`,
      );
      break;
    case 'remote-ignored':
      log.warn(
        { event: 'remote.ignored', vni: e.vni, mac: e.mac, nve: e.nve, why: e.why },
        `remote entry ${e.mac} of ${e.nve} ignored: ${e.why}`,
      );
      break;
  }
}
