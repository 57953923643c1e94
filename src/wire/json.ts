/**
 * JSON form of decoded frames, as printed by `splitnve decode`: names as in WIRE.md (camelCase),
 * numbers as numbers, MACs as aa:bb:…, UUIDs canonical, raw octets as hex.
 */
import { toHex } from './bytes.js';
import { ECP_OP_ACK, ECP_OP_REQUEST } from './ecp.js';
import { filterLayout } from './filter.js';
import type { DecodedFrame } from './frame.js';
import type { LldpTlv } from './lldp.js';
import { DEFAULT_WIRE_OPTIONS, ouiToString, type WireOptions } from './options.js';
import { decodeStatus, reasonName } from './status.js';
import { managerIdToString, VSI_TLV_NAMES, vsiIdToString, type VdpItem } from './vdp.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const VSIID_FORMAT_NAMES: Record<number, string> = {
  1: 'IPv4',
  2: 'IPv6',
  3: 'MAC',
  4: 'local',
  5: 'UUID',
};

function statusJson(raw: number): Json {
  const s = decodeStatus(raw);
  if (s.response) {
    return {
      raw,
      response: true,
      keep: s.keep,
      hard: s.hard,
      reason: s.reason,
      reasonName: reasonName(s.reason),
      reserved: (raw & 0x80) >> 7,
    };
  }
  return { raw, response: false, m: s.m, s: s.s, reserved: (raw & 0x80) >> 7 };
}

function bigintJson(v: bigint): Json {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

export function vdpItemJson(item: VdpItem, opts: WireOptions = DEFAULT_WIRE_OPTIONS): Json {
  const t = item.tlv;
  const head = { type: item.type, length: item.length - 2, offset: item.offset };
  switch (t.kind) {
    case 'end':
      return { ...head, name: 'end' };
    case 'manager-id':
      return {
        ...head,
        name: 'managerId',
        managerId: managerIdToString(t.managerId),
        hex: toHex(t.managerId),
      };
    case 'vsi':
      return {
        ...head,
        name: VSI_TLV_NAMES[t.type],
        status: statusJson(t.status),
        vsiTypeId: t.typeId,
        typeVersion: t.typeVersion,
        vsiIdFormat: t.idFormat,
        vsiIdFormatName: VSIID_FORMAT_NAMES[t.idFormat] ?? 'reserved',
        vsiId: vsiIdToString(t.idFormat, t.id),
        filterInfoFormat: t.filterFormat,
        filterInfoFormatName: filterLayout(t.filterFormat, opts)?.name ?? 'unknown',
        numberOfEntries: t.entries.length,
        entries: t.entries.map((e) => {
          const o: { [k: string]: Json } = {};
          if (e.groupId !== undefined) o.groupId = e.groupId;
          if (e.mac !== undefined) o.mac = e.mac;
          if (e.ipv4 !== undefined) o.ipv4 = e.ipv4;
          if (e.ipv6 !== undefined) o.ipv6 = e.ipv6;
          o.ps = e.ps;
          o.pcp = e.pcp;
          o.vid = e.vid;
          return o;
        }),
      };
    case 'cisco-vm-name':
      return {
        ...head,
        name: 'ciscoVmName',
        oui: ouiToString(0x00000c),
        subtype: 0xf1,
        vsiIdFormat: t.vsiIdFormat,
        vsiId: vsiIdToString(t.vsiIdFormat, t.vsiId),
        vmIdFormat: t.vmIdFormat,
        vmId: vsiIdToString(t.vmIdFormat, t.vmId),
        vmName: t.vmName,
      };
    case 'cisco-l3-addr':
      return {
        ...head,
        name: 'ciscoL3Address',
        oui: ouiToString(0x00000c),
        subtype: 0xf2,
        vsiIdFormat: t.vsiIdFormat,
        vsiId: vsiIdToString(t.vsiIdFormat, t.vsiId),
        afi: t.afi,
        address: t.address,
      };
    case 'splitnve-auth':
      return {
        ...head,
        name: 'splitnveAuth',
        oui: ouiToString(opts.splitnveOui),
        subtype: 1,
        keyId: t.keyId,
        sequence: bigintJson(t.sequence),
        hmac: toHex(t.hmac),
      };
    case 'org':
      return {
        ...head,
        name: 'org',
        oui: ouiToString(t.oui),
        subtype: t.subtype ?? null,
        data: toHex(t.data),
      };
    case 'unknown':
      return { ...head, name: 'unknown', value: toHex(t.value) };
    case 'malformed':
      return {
        ...head,
        name: 'malformed',
        value: toHex(t.value),
        error: { field: t.error.field, offset: t.error.offset, message: t.error.message },
      };
  }
}

function lldpTlvJson(t: LldpTlv): Json {
  switch (t.name) {
    case 'chassisId':
    case 'portId':
      return { type: t.type, name: t.name, subtype: t.value.subtype, id: t.value.id };
    case 'ttl':
      return { type: t.type, name: t.name, ttl: t.value };
    case 'end':
      return { type: 0, name: 'end' };
    case 'evb':
      return {
        type: 127,
        name: 'evb',
        oui: '00-80-c2',
        subtype: 0x0d,
        ...(t.value as unknown as { [k: string]: Json }),
      };
    case 'splitnveProfile':
      return {
        type: 127,
        name: 'splitnveProfile',
        ...(t.value as unknown as { [k: string]: Json }),
      };
    case 'org':
      return { type: 127, name: 'org', oui: t.oui, subtype: t.subtype, data: t.data };
    case 'unknown':
      return { type: t.type, name: 'unknown', data: t.data };
  }
}

export function frameJson(
  f: DecodedFrame,
  opts: WireOptions = DEFAULT_WIRE_OPTIONS,
): { [k: string]: Json } {
  const out: { [k: string]: Json } = { length: f.length };
  if (f.ethernet) {
    const e = f.ethernet;
    out.ethernet = {
      destination: e.destination,
      source: e.source,
      ...(e.vlan ? { vlan: { pcp: e.vlan.pcp, dei: e.vlan.dei, vid: e.vlan.vid } } : {}),
      ethertype: e.ethertype,
    };
  }
  if (f.lldp) {
    out.lldp = {
      chassisId: { subtype: f.lldp.chassisId.subtype, id: f.lldp.chassisId.id },
      portId: { subtype: f.lldp.portId.subtype, id: f.lldp.portId.id },
      ttl: f.lldp.ttl,
      tlvs: f.lldp.tlvs.map(lldpTlvJson),
    };
    if (f.lldp.evb) out.evb = { ...(f.lldp.evb as unknown as { [k: string]: Json }) };
    if (f.lldp.splitnveProfile) {
      out.splitnveProfile = { ...(f.lldp.splitnveProfile as unknown as { [k: string]: Json }) };
    }
    if (f.lldp.warnings.length > 0) {
      out.warnings = f.lldp.warnings.map((w) => ({
        field: w.field,
        offset: w.offset,
        message: w.message,
      }));
    }
  }
  if (f.ecp) {
    const opName =
      f.ecp.op === ECP_OP_REQUEST ? 'request' : f.ecp.op === ECP_OP_ACK ? 'ack' : 'reserved';
    out.ecp = {
      version: f.ecp.version,
      op: f.ecp.op,
      opName,
      subtype: f.ecp.subtype,
      sequence: f.ecp.sequence,
      payloadLength: f.ecpPayloadLength ?? 0,
    };
  }
  if (f.vdp) {
    out.vdp = f.vdp.items.map((i) => vdpItemJson(i, opts));
    out.vdpEnd = f.vdp.end;
  }
  if (f.error)
    out.error = { field: f.error.field, offset: f.error.offset, message: f.error.message };
  return out;
}
