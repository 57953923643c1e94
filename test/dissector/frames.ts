/**
 * Frames built with splitnve's own encoders (src/wire), each with the field values tshark must
 * extract with the splitnve Lua dissector, or the expert error it must raise.
 */
import { ByteWriter, concatBytes, fromHex, parseUuid } from '../../src/wire/bytes.js';
import { encodeEcp } from '../../src/wire/ecp.js';
import {
  encodeEthernet,
  ETHERTYPE_ECP,
  ETHERTYPE_LLDP,
  NEAREST_CUSTOMER_BRIDGE,
} from '../../src/wire/ethernet.js';
import type { EvbTlv } from '../../src/wire/evb-tlv.js';
import { encodeLldp } from '../../src/wire/lldp.js';
import { DEFAULT_WIRE_OPTIONS, type WireOptions } from '../../src/wire/options.js';
import { encodeVdp, managerIdFromString, type VdpTlv, type VsiTlv } from '../../src/wire/vdp.js';

export interface GenFrame {
  readonly name: string;
  readonly data: Uint8Array;
  /** Field -> exact tshark -T fields text (occurrences joined with ','). */
  readonly expect: Readonly<Record<string, string>>;
  /** Expert info fields that must be present (each an error); none means a clean decode. */
  readonly errors: readonly string[];
}

const STATION = '02:00:00:00:aa:01';
const BRIDGE = '02:00:00:00:bb:01';

function uuid(text: string): Uint8Array {
  return parseUuid(text)!;
}

function hex(text: string): Uint8Array {
  const b = fromHex(text);
  if (!b) throw new Error(`bad hex ${text}`);
  return b;
}

/** Left-aligned 16-octet VSI id from a shorter id. */
function id16(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  out.set(bytes);
  return out;
}

function ethPadded(source: string, ethertype: number, payload: Uint8Array): Uint8Array {
  return encodeEthernet({ destination: NEAREST_CUSTOMER_BRIDGE, source, ethertype }, payload);
}

/** A frame exactly as long as its payload (short ECP ACKs on veth, truncated PDUs). */
function ethRaw(source: string, ethertype: number, payload: Uint8Array): Uint8Array {
  const w = new ByteWriter(14 + payload.length);
  w.mac(NEAREST_CUSTOMER_BRIDGE).mac(source).u16(ethertype).bytes(payload);
  return w.finish();
}

function ecpRequest(seq: number, vdp: Uint8Array): Uint8Array {
  return encodeEcp({ version: 1, op: 0, subtype: 1, sequence: seq }, vdp);
}

function ecpAck(seq: number, extra: Uint8Array = new Uint8Array(0)): Uint8Array {
  return concatBytes([encodeEcp({ version: 1, op: 1, subtype: 1, sequence: seq }), extra]);
}

const MGR = managerIdFromString('nvemgr1');
const mgrTlv: VdpTlv = { kind: 'manager-id', managerId: MGR };

function vsi(t: Omit<VsiTlv, 'kind'>): VsiTlv {
  return { kind: 'vsi', ...t };
}

const U1 = 'a1b2c3d4-0001-4000-8000-00000000000a';
const U2 = 'a1b2c3d4-0002-4000-8000-00000000000b';
const U3 = 'a1b2c3d4-0003-4000-8000-00000000000c';
const U4 = 'a1b2c3d4-0004-4000-8000-00000000000d';

function vdpFrame(
  seq: number,
  tlvs: readonly VdpTlv[],
  opts: WireOptions = DEFAULT_WIRE_OPTIONS,
): Uint8Array {
  return ethPadded(STATION, ETHERTYPE_ECP, ecpRequest(seq, encodeVdp(tlvs, opts)));
}

/** Raw VDP TLV: header (type:7 | length:9) + value; `len` overrides the length field. */
function rawTlv(type: number, value: Uint8Array, len = value.length): Uint8Array {
  return concatBytes([Uint8Array.of((type << 1) | (len >> 8), len & 0xff), value]);
}

/** The body of a VSI TLV (without header), with free control over every byte. */
function vsiBody(fif: number, count: number, entries: Uint8Array, status = 0): Uint8Array {
  return concatBytes([
    Uint8Array.of(status, 0, 0, 42, 1, 5),
    uuid(U1),
    Uint8Array.of(fif, count >> 8, count & 0xff),
    entries,
  ]);
}

const MGR_RAW = rawTlv(5, MGR);

const EVB_STATION: EvbTlv = {
  bgid: true,
  rrcap: true,
  rrctr: false,
  sgid: true,
  rrreq: true,
  rrstat: 1,
  r: 3,
  rte: 14,
  evbMode: 2,
  rolRwd: true,
  rwd: 20,
  rolRka: false,
  rka: 18,
};

const EVB_BRIDGE_ALL: EvbTlv = {
  bgid: true,
  rrcap: true,
  rrctr: true,
  sgid: true,
  rrreq: true,
  rrstat: 3,
  r: 7,
  rte: 31,
  evbMode: 1,
  rolRwd: true,
  rwd: 31,
  rolRka: true,
  rka: 0,
};

/** Frames that must decode cleanly with the given values (default preferences). */
export function goodFrames(): GenFrame[] {
  const frames: GenFrame[] = [];
  const ok = (name: string, data: Uint8Array, expect: Record<string, string>): void => {
    frames.push({ name, data, expect, errors: [] });
  };

  ok(
    'LLDP: EVB station TLV + splitnve profile TLV',
    ethPadded(
      STATION,
      ETHERTYPE_LLDP,
      encodeLldp({
        chassisId: { subtype: 4, id: STATION },
        portId: { subtype: 3, id: STATION },
        ttl: 120,
        evb: EVB_STATION,
        splitnveProfile: { version: 1, auth: true, ipFilters: true, deactivate: false },
      }),
    ),
    {
      'frame.protocols': 'eth:ethertype:lldp:snve_lldp:snve_lldp',
      'snve.lldp.oui': '0x0080c2,0x02534e',
      'snve.lldp.subtype': '0x0d,0x01',
      'snve.lldp.tlv.len': '9,6',
      'snve.evb.bridge_status': '0x06',
      'snve.evb.bgid': '1',
      'snve.evb.rrcap': '1',
      'snve.evb.rrctr': '0',
      'snve.evb.station_status': '0x0d',
      'snve.evb.sgid': '1',
      'snve.evb.rrreq': '1',
      'snve.evb.rrstat': '1',
      'snve.evb.r': '3',
      'snve.evb.rte': '14',
      'snve.evb.mode': '2',
      'snve.evb.rol_rwd': '1',
      'snve.evb.rwd': '20',
      'snve.evb.rol_rka': '0',
      'snve.evb.rka': '18',
      'snve.lldp.profile.version': '1',
      'snve.lldp.profile.flags': '0x03',
      'snve.lldp.profile.auth': '1',
      'snve.lldp.profile.ipfilters': '1',
      'snve.lldp.profile.deactivate': '0',
    },
  );

  ok(
    'LLDP: EVB bridge TLV with every bit set, and an 802.1 Port VLAN TLV left to tshark',
    ethPadded(
      BRIDGE,
      ETHERTYPE_LLDP,
      encodeLldp({
        chassisId: { subtype: 4, id: BRIDGE },
        portId: { subtype: 3, id: BRIDGE },
        ttl: 120,
        evb: EVB_BRIDGE_ALL,
        splitnveProfile: { version: 2, auth: false, ipFilters: false, deactivate: true },
        extra: [{ type: 127, value: hex('0080c2010064') }],
      }),
    ),
    {
      'snve.evb.bridge_status': '0x07',
      'snve.evb.bgid': '1',
      'snve.evb.rrcap': '1',
      'snve.evb.rrctr': '1',
      'snve.evb.station_status': '0x0f',
      'snve.evb.rrstat': '3',
      'snve.evb.r': '7',
      'snve.evb.rte': '31',
      'snve.evb.mode': '1',
      'snve.evb.rol_rwd': '1',
      'snve.evb.rwd': '31',
      'snve.evb.rol_rka': '1',
      'snve.evb.rka': '0',
      'snve.lldp.profile.version': '2',
      'snve.lldp.profile.flags': '0x04',
      'snve.lldp.profile.deactivate': '1',
      'lldp.ieee.802_1.port_vlan.id': '100',
    },
  );

  ok(
    'VDP: every VSI TLV type and base filter format in one PDU, End TLV',
    vdpFrame(100, [
      mgrTlv,
      vsi({
        type: 3,
        status: 0x00,
        typeId: 42,
        typeVersion: 1,
        idFormat: 5,
        id: uuid(U1),
        filterFormat: 1,
        entries: [
          { ps: 1, pcp: 3, vid: 100 },
          { ps: 0, pcp: 0, vid: 200 },
        ],
      }),
      vsi({
        type: 1,
        status: 0x10,
        typeId: 0xabcdef,
        typeVersion: 2,
        idFormat: 5,
        id: uuid(U2),
        filterFormat: 2,
        entries: [{ mac: '02:00:00:00:00:03', ps: 0, pcp: 5, vid: 300 }],
      }),
      vsi({
        type: 2,
        status: 0x20,
        typeId: 7,
        typeVersion: 3,
        idFormat: 5,
        id: uuid(U3),
        filterFormat: 3,
        entries: [{ groupId: 10001, ps: 0, pcp: 0, vid: 0 }],
      }),
      vsi({
        type: 4,
        status: 0x00,
        typeId: 8,
        typeVersion: 4,
        idFormat: 5,
        id: uuid(U4),
        filterFormat: 4,
        entries: [{ groupId: 16777214, mac: '02:00:00:00:00:04', ps: 0, pcp: 0, vid: 4094 }],
      }),
    ]),
    {
      'frame.protocols': 'eth:ethertype:snve',
      'snve.ecp.version': '1',
      'snve.ecp.op': '0',
      'snve.ecp.subtype': '1',
      'snve.ecp.seq': '100',
      'snve.vdp.tlv.type': '5,3,1,2,4,0',
      'snve.vdp.tlv.len': '16,29,33,31,37,0',
      'snve.vdp.mgrid.name': 'nvemgr1',
      'snve.vdp.vsi.status': '0x00,0x10,0x20,0x00',
      'snve.vdp.vsi.status.response': '0,0,0,0',
      'snve.vdp.vsi.status.m': '0,1,0,0',
      'snve.vdp.vsi.status.s': '0,0,1,0',
      'snve.vdp.vsi.status.keep': '',
      'snve.vdp.vsi.typeid': `42,${0xabcdef},7,8`,
      'snve.vdp.vsi.version': '1,2,3,4',
      'snve.vdp.vsi.idformat': '5,5,5,5',
      'snve.vdp.vsi.id.uuid': [U1, U2, U3, U4].join(','),
      'snve.vdp.vsi.fif': '0x01,0x02,0x03,0x04',
      'snve.vdp.vsi.num_entries': '2,1,1,1',
      'snve.vdp.vsi.groupid': '10001,16777214',
      'snve.vdp.vsi.vni': '10001,16777214',
      'snve.vdp.vsi.mac': '02:00:00:00:00:03,02:00:00:00:00:04',
      'snve.vdp.vsi.field': '0xb064,0x00c8,0x512c,0x0000,0x0ffe',
      'snve.vdp.vsi.ps': '1,0,0,0,0',
      'snve.vdp.vsi.pcp': '3,0,5,0,0',
      'snve.vdp.vsi.vid': '100,200,300,0,4094',
      'snve.vdp.padding': '',
    },
  );

  ok(
    'VDP: splitnve IP filter formats 0xF0/0xF1, binary Manager ID',
    vdpFrame(101, [
      { kind: 'manager-id', managerId: hex('000102030405060708090a0b0c0d0e0f') },
      vsi({
        type: 3,
        status: 0,
        typeId: 1,
        typeVersion: 1,
        idFormat: 5,
        id: uuid(U1),
        filterFormat: 0xf0,
        entries: [
          { groupId: 5000, mac: '02:00:00:00:00:05', ipv4: '10.0.0.5', ps: 0, pcp: 0, vid: 0 },
          { groupId: 5000, mac: '00:00:00:00:00:00', ipv4: '192.0.2.1', ps: 0, pcp: 0, vid: 12 },
        ],
      }),
      vsi({
        type: 3,
        status: 0,
        typeId: 1,
        typeVersion: 1,
        idFormat: 5,
        id: uuid(U2),
        filterFormat: 0xf1,
        entries: [
          {
            groupId: 5001,
            mac: '02:00:00:00:00:06',
            ipv6: '2001:db8::1',
            ps: 1,
            pcp: 7,
            vid: 4094,
          },
        ],
      }),
    ]),
    {
      'snve.vdp.tlv.type': '5,3,3,0',
      'snve.vdp.tlv.len': `16,${25 + 2 * 16},${25 + 28},0`,
      'snve.vdp.mgrid': '000102030405060708090a0b0c0d0e0f',
      'snve.vdp.mgrid.name': '',
      'snve.vdp.vsi.fif': '0xf0,0xf1',
      'snve.vdp.vsi.num_entries': '2,1',
      'snve.vdp.vsi.groupid': '5000,5000,5001',
      'snve.vdp.vsi.vni': '5000,5000,5001',
      'snve.vdp.vsi.mac': '02:00:00:00:00:05,00:00:00:00:00:00,02:00:00:00:00:06',
      'snve.vdp.vsi.ipv4': '10.0.0.5,192.0.2.1',
      'snve.vdp.vsi.ipv6': '2001:db8::1',
      'snve.vdp.vsi.ps': '0,0,1',
      'snve.vdp.vsi.pcp': '0,0,7',
      'snve.vdp.vsi.vid': '0,12,4094',
    },
  );

  ok(
    'VDP: response statuses and every VSI id format',
    vdpFrame(102, [
      mgrTlv,
      vsi({
        type: 3,
        status: 0x75,
        typeId: 1,
        typeVersion: 1,
        idFormat: 1,
        id: id16(hex('0a010203')),
        filterFormat: 1,
        entries: [{ ps: 0, pcp: 0, vid: 10 }],
      }),
      vsi({
        type: 1,
        status: 0x40,
        typeId: 1,
        typeVersion: 1,
        idFormat: 3,
        id: id16(hex('020000000007')),
        filterFormat: 1,
        entries: [{ ps: 0, pcp: 0, vid: 11 }],
      }),
      vsi({
        type: 4,
        status: 0x42,
        typeId: 1,
        typeVersion: 1,
        idFormat: 2,
        id: hex('20010db8000000000000000000000042'),
        filterFormat: 1,
        entries: [{ ps: 0, pcp: 0, vid: 12 }],
      }),
      vsi({
        type: 2,
        status: 0x63,
        typeId: 1,
        typeVersion: 1,
        idFormat: 4,
        id: hex('6c6f63616c2d69642d30303030303031'),
        filterFormat: 1,
        entries: [{ ps: 0, pcp: 0, vid: 13 }],
      }),
    ]),
    {
      'snve.vdp.vsi.status': '0x75,0x40,0x42,0x63',
      'snve.vdp.vsi.status.response': '1,1,1,1',
      'snve.vdp.vsi.status.keep': '1,0,0,1',
      'snve.vdp.vsi.status.hard': '1,0,0,0',
      'snve.vdp.vsi.status.reason': '5,0,2,3',
      'snve.vdp.vsi.status.m': '',
      'snve.vdp.vsi.status.s': '',
      'snve.vdp.vsi.idformat': '1,3,2,4',
      'snve.vdp.vsi.id.ipv4': '10.1.2.3',
      'snve.vdp.vsi.id.mac': '02:00:00:00:00:07',
      'snve.vdp.vsi.id.ipv6': '2001:db8::42',
      'snve.vdp.vsi.id.local': '6c6f63616c2d69642d30303030303031',
      'snve.vdp.vsi.id.uuid': '',
      'snve.vdp.vsi.vid': '10,11,12,13',
    },
  );

  const hmac = new Uint8Array(32).map((_, i) => 0xa0 + i);
  ok(
    'VDP: Cisco VM name and L3 address TLVs, another OUI, splitnve authentication last',
    vdpFrame(103, [
      mgrTlv,
      vsi({
        type: 3,
        status: 0,
        typeId: 42,
        typeVersion: 1,
        idFormat: 5,
        id: uuid(U1),
        filterFormat: 3,
        entries: [{ groupId: 20000, ps: 0, pcp: 0, vid: 0 }],
      }),
      {
        kind: 'cisco-vm-name',
        vsiIdFormat: 5,
        vsiId: uuid(U1),
        vmIdFormat: 5,
        vmId: uuid(U2),
        vmName: 'web-01',
      },
      {
        kind: 'cisco-l3-addr',
        vsiIdFormat: 5,
        vsiId: uuid(U1),
        afi: 1,
        address: '192.0.2.10',
      },
      {
        kind: 'cisco-l3-addr',
        vsiIdFormat: 5,
        vsiId: uuid(U1),
        afi: 2,
        address: '2001:db8::10',
      },
      { kind: 'org', oui: 0x001b3f, subtype: 0x02, data: hex('deadbeef') },
      { kind: 'splitnve-auth', keyId: 7, sequence: 1234567890123n, hmac },
    ]),
    {
      'snve.vdp.tlv.type': '5,3,127,127,127,127,127,0',
      'snve.vdp.org.oui': '0x00000c,0x00000c,0x00000c,0x001b3f,0x02534e',
      'snve.vdp.org.subtype': '0xf1,0xf2,0xf2,0x02,0x01',
      'snve.vdp.cisco.vsi_idformat': '5,5,5',
      'snve.vdp.cisco.vsi_id': [U1, U1, U1].map((u) => u.replace(/-/g, '')).join(','),
      'snve.vdp.cisco.vm_idformat': '5',
      'snve.vdp.cisco.vm_id': U2.replace(/-/g, ''),
      'snve.vdp.cisco.vm_name': 'web-01',
      'snve.vdp.cisco.afi': '1,2',
      'snve.vdp.cisco.ipv4': '192.0.2.10',
      'snve.vdp.cisco.ipv6': '2001:db8::10',
      'snve.vdp.org.data': 'deadbeef',
      'snve.vdp.auth.keyid': '7',
      'snve.vdp.auth.seq': '1234567890123',
      'snve.vdp.auth.hmac': Buffer.from(hmac).toString('hex'),
      'snve.vdp.vsi.groupid': '20000',
    },
  );

  ok('ECP ACK padded to 60 octets', ethPadded(BRIDGE, ETHERTYPE_ECP, ecpAck(100)), {
    'frame.protocols': 'eth:ethertype:snve',
    'snve.ecp.op': '1',
    'snve.ecp.seq': '100',
    'snve.ecp.padding': '00'.repeat(42),
    'snve.vdp.tlv.type': '',
  });

  ok('ECP ACK of 18 octets (veth)', ethRaw(BRIDGE, ETHERTYPE_ECP, ecpAck(65535)), {
    'snve.ecp.op': '1',
    'snve.ecp.seq': '65535',
    'snve.ecp.padding': '',
  });

  ok(
    'lldpad style: no End TLV, zero padding to 60 octets',
    ethPadded(STATION, ETHERTYPE_ECP, ecpRequest(7, MGR_RAW)),
    {
      'snve.vdp.tlv.type': '5,0',
      'snve.vdp.padding': '00'.repeat(60 - 14 - 4 - 18 - 2),
    },
  );

  ok(
    'lldpad style: no End TLV and no padding',
    ethRaw(
      STATION,
      ETHERTYPE_ECP,
      ecpRequest(8, concatBytes([MGR_RAW, rawTlv(3, vsiBody(1, 1, hex('0064')))])),
    ),
    {
      'snve.vdp.tlv.type': '5,3',
      'snve.vdp.vsi.vid': '100',
      'snve.vdp.padding': '',
    },
  );
  return frames;
}

/** Malformed frames: each must raise the named expert error. */
export function badFrames(): GenFrame[] {
  const bad = (name: string, data: Uint8Array, errors: string[], expect = {}): GenFrame => ({
    name,
    data,
    expect,
    errors,
  });
  const ecp = (seq: number, vdp: Uint8Array): Uint8Array =>
    ethRaw(STATION, ETHERTYPE_ECP, ecpRequest(seq, vdp));
  return [
    bad(
      'VSI TLV length does not match its number of entries',
      ecp(200, concatBytes([MGR_RAW, rawTlv(3, vsiBody(1, 2, hex('0064'))), hex('0000')])),
      ['snve.expert.vsi_length'],
      { 'snve.vdp.vsi.vid': '100', 'snve.vdp.vsi.num_entries': '2' },
    ),
    bad(
      'VSI TLV shorter than its fixed part',
      ecp(201, concatBytes([MGR_RAW, rawTlv(4, hex('00000001')), hex('0000')])),
      ['snve.expert.vsi_length'],
    ),
    bad(
      'unknown filter info format',
      ecp(202, concatBytes([MGR_RAW, rawTlv(3, vsiBody(0x07, 1, hex('0064'))), hex('0000')])),
      ['snve.expert.unknown_fif'],
      { 'snve.vdp.vsi.fif': '0x07' },
    ),
    bad(
      'TLV length runs past the end of the PDU',
      ecp(203, concatBytes([MGR_RAW, rawTlv(3, vsiBody(4, 1, hex('00002710')), 37)])),
      ['snve.expert.tlv_past_end'],
    ),
    bad(
      'truncated TLV in a zero-padded frame',
      ethPadded(STATION, ETHERTYPE_ECP, ecpRequest(204, concatBytes([MGR_RAW, hex('06ff')]))),
      ['snve.expert.tlv_past_end'],
    ),
    bad(
      'Manager ID of 15 octets',
      ecp(
        205,
        concatBytes([
          rawTlv(5, MGR.subarray(0, 15)),
          rawTlv(3, vsiBody(1, 1, hex('0064'))),
          hex('0000'),
        ]),
      ),
      ['snve.expert.mgrid_length'],
    ),
    bad(
      'ECP ACK with payload beyond zero padding',
      ethPadded(BRIDGE, ETHERTYPE_ECP, ecpAck(206, hex('0a10deadbeef'))),
      ['snve.expert.ack_payload'],
    ),
    bad(
      'splitnve authentication TLV of the wrong length',
      ecp(
        207,
        concatBytes([MGR_RAW, rawTlv(127, hex('02534e01000700000000000000010203')), hex('0000')]),
      ),
      ['snve.expert.org_length'],
    ),
    bad(
      'Cisco L3 address TLV with a 5-octet address',
      ecp(
        208,
        concatBytes([
          MGR_RAW,
          rawTlv(127, concatBytes([hex('00000cf205'), uuid(U1), hex('0001c000020a01')])),
          hex('0000'),
        ]),
      ),
      ['snve.expert.org_length'],
    ),
    bad(
      'EVB TLV of 8 octets',
      ethPadded(
        STATION,
        ETHERTYPE_LLDP,
        encodeLldp({
          chassisId: { subtype: 4, id: STATION },
          portId: { subtype: 3, id: STATION },
          ttl: 120,
          extra: [{ type: 127, value: hex('0080c20d070d6eb4') }],
        }),
      ),
      ['snve_lldp.expert.evb_length'],
    ),
  ];
}

/** Frames that need the preferences -o snve.ipv4_fif:0xE0 -o snve.ipv6_fif:0xE1 -o snve.oui:02-AA-BB. */
export const CUSTOM_PREFS = {
  'snve.ipv4_fif': '0xE0',
  'snve.ipv6_fif': '225',
  'snve.oui': '02-AA-BB',
};

export function customPrefFrames(): GenFrame[] {
  const opts: WireOptions = {
    splitnveOui: 0x02aabb,
    ipv4FilterFormat: 0xe0,
    ipv6FilterFormat: 0xe1,
  };
  const hmac = new Uint8Array(32).fill(0x11);
  return [
    {
      name: 'custom codes: IPv4/IPv6 formats 0xE0/0xE1, authentication under 02-AA-BB',
      data: vdpFrame(
        300,
        [
          mgrTlv,
          vsi({
            type: 3,
            status: 0,
            typeId: 1,
            typeVersion: 1,
            idFormat: 5,
            id: uuid(U1),
            filterFormat: 0xe0,
            entries: [
              { groupId: 7, mac: '02:00:00:00:00:09', ipv4: '198.51.100.7', ps: 0, pcp: 0, vid: 0 },
            ],
          }),
          vsi({
            type: 3,
            status: 0,
            typeId: 1,
            typeVersion: 1,
            idFormat: 5,
            id: uuid(U2),
            filterFormat: 0xe1,
            entries: [
              { groupId: 8, mac: '02:00:00:00:00:0a', ipv6: 'fd00::8', ps: 0, pcp: 0, vid: 0 },
            ],
          }),
          { kind: 'splitnve-auth', keyId: 9, sequence: 5n, hmac },
        ],
        opts,
      ),
      expect: {
        'snve.vdp.vsi.fif': '0xe0,0xe1',
        'snve.vdp.vsi.ipv4': '198.51.100.7',
        'snve.vdp.vsi.ipv6': 'fd00::8',
        'snve.vdp.auth.keyid': '9',
        'snve.vdp.auth.seq': '5',
      },
      errors: [],
    },
    {
      name: 'custom identifier: splitnve profile LLDP TLV under 02-AA-BB',
      data: ethPadded(
        STATION,
        ETHERTYPE_LLDP,
        encodeLldp(
          {
            chassisId: { subtype: 4, id: STATION },
            portId: { subtype: 3, id: STATION },
            ttl: 120,
            splitnveProfile: { version: 1, auth: true, ipFilters: false, deactivate: true },
          },
          opts,
        ),
      ),
      expect: {
        'snve.lldp.oui': '0x02aabb',
        'snve.lldp.profile.flags': '0x05',
        'snve.lldp.profile.auth': '1',
        'snve.lldp.profile.deactivate': '1',
      },
      errors: [],
    },
  ];
}

/**
 * Deterministic corruptions of the frames above (a few random octets after the Ethernet header
 * replaced, some frames cut short): the dissector must survive them without a Lua error.
 */
export function mutatedFrames(count: number, seed: number): Uint8Array[] {
  let s = seed >>> 0;
  const rnd = (): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
  const base = [...goodFrames(), ...badFrames(), ...customPrefFrames()].map((f) => f.data);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const b = base[Math.floor(rnd() * base.length)]!.slice();
    const n = 1 + Math.floor(rnd() * 4);
    for (let k = 0; k < n; k++)
      b[14 + Math.floor(rnd() * (b.length - 14))] = Math.floor(rnd() * 256);
    const cut = rnd() < 0.3 ? 14 + Math.floor(rnd() * (b.length - 14)) : b.length;
    out.push(b.slice(0, cut));
  }
  return out;
}
