/**
 * Encoders validate their input (ours, not a peer's): an out-of-range field throws an
 * EncodeError that names the field; nothing is silently masked into a different value.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteWriter, normalizeMac } from '../../src/wire/bytes.js';
import { encodeEcp } from '../../src/wire/ecp.js';
import { encodeEthernet, MAX_FRAME } from '../../src/wire/ethernet.js';
import { EncodeError } from '../../src/wire/errors.js';
import { encodeEvbBody, type EvbTlv } from '../../src/wire/evb-tlv.js';
import { encodeLldp, type LldpBuild } from '../../src/wire/lldp.js';
import {
  encodeAuth,
  encodeCiscoL3Addr,
  encodeVdp,
  managerIdFromString,
  type VdpTlv,
  type VsiTlv,
} from '../../src/wire/vdp.js';

/** Asserts that `fn` throws an EncodeError for `field`. */
function throwsFor(field: string, fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof EncodeError, `not an EncodeError: ${String(e)}`);
    assert.equal(e.field, field);
    assert.equal(e.name, 'EncodeError');
    assert.ok(e.message.startsWith(`${field}: `), e.message);
    return true;
  });
}

const ETH = { destination: '01:80:c2:00:00:00', source: '02:00:00:00:aa:01', ethertype: 0x8940 };

test('encodeEthernet: addresses, ethertype, tag fields and the 1514-octet maximum', () => {
  throwsFor('ethertype', () => encodeEthernet({ ...ETH, ethertype: 0x5ff }, new Uint8Array()));
  throwsFor('ethertype', () => encodeEthernet({ ...ETH, ethertype: 0x10000 }, new Uint8Array()));
  throwsFor('ethertype', () => encodeEthernet({ ...ETH, ethertype: 2048.5 }, new Uint8Array()));
  throwsFor('destination', () =>
    encodeEthernet({ ...ETH, destination: '01:80:c2:00:00' }, new Uint8Array()),
  );
  throwsFor('source', () =>
    encodeEthernet({ ...ETH, source: 'zz:00:00:00:aa:01' }, new Uint8Array()),
  );
  const vlan = { pcp: 0, dei: 0, vid: 1 };
  throwsFor('vlan.pcp', () =>
    encodeEthernet({ ...ETH, vlan: { ...vlan, pcp: 8 } }, new Uint8Array()),
  );
  throwsFor('vlan.dei', () =>
    encodeEthernet({ ...ETH, vlan: { ...vlan, dei: 2 } }, new Uint8Array()),
  );
  throwsFor('vlan.vid', () =>
    encodeEthernet({ ...ETH, vlan: { ...vlan, vid: 4096 } }, new Uint8Array()),
  );
  throwsFor('vlan.vid', () =>
    encodeEthernet({ ...ETH, vlan: { ...vlan, vid: -1 } }, new Uint8Array()),
  );
  // 14 + 1500 = 1514 is the largest untagged frame; one more octet is refused.
  assert.equal(encodeEthernet(ETH, new Uint8Array(1500)).length, MAX_FRAME);
  throwsFor('frame', () => encodeEthernet(ETH, new Uint8Array(1501)));
  throwsFor('frame', () => encodeEthernet(ETH, new Uint8Array(9000)));
  // The 802.1Q tag is not counted (a receiver strips it before its 1514-octet buffer).
  assert.equal(encodeEthernet({ ...ETH, vlan }, new Uint8Array(1500)).length, MAX_FRAME + 4);
  throwsFor('frame', () => encodeEthernet({ ...ETH, vlan }, new Uint8Array(1501)));
  // Short frames are padded to 60.
  assert.equal(encodeEthernet(ETH, new Uint8Array(4)).length, 60);
});

test('encodeEcp: header fields and the 1494-octet ULPDU limit', () => {
  const h = { version: 1, op: 0, subtype: 1, sequence: 1 };
  throwsFor('ecp.version', () => encodeEcp({ ...h, version: 16 }));
  throwsFor('ecp.version', () => encodeEcp({ ...h, version: -1 }));
  throwsFor('ecp.op', () => encodeEcp({ ...h, op: 4 }));
  throwsFor('ecp.subtype', () => encodeEcp({ ...h, subtype: 0x400 }));
  throwsFor('ecp.sequence', () => encodeEcp({ ...h, sequence: 0x10000 }));
  throwsFor('ecp.sequence', () => encodeEcp({ ...h, sequence: 1.5 }));
  throwsFor('ecp.ulpdu length', () => encodeEcp(h, new Uint8Array(1495)));
  const max = encodeEcp(h, new Uint8Array(1494));
  assert.equal(max.length, 1498);
  // The largest ECP frame fits in 1514 octets.
  assert.equal(encodeEthernet(ETH, max).length, 1512);
});

const VSI: VsiTlv = {
  kind: 'vsi',
  type: 3,
  status: 0,
  typeId: 42,
  typeVersion: 1,
  idFormat: 5,
  id: new Uint8Array(16),
  filterFormat: 4,
  entries: [{ groupId: 10000, mac: '02:00:00:00:00:01', ps: 0, pcp: 0, vid: 0 }],
};
const MGR: VdpTlv = { kind: 'manager-id', managerId: managerIdFromString('nvemgr1') };

function vsi(patch: Partial<VsiTlv>): () => Uint8Array {
  return () => encodeVdp([MGR, { ...VSI, ...patch } as VsiTlv]);
}

test('VSI TLV fields and filter entries', () => {
  assert.equal(encodeVdp([MGR, VSI]).length, 18 + 39 + 2);
  throwsFor('vsi.type', vsi({ type: 5 as never }));
  throwsFor('vsi.status', vsi({ status: 256 }));
  throwsFor('vsi.typeId', vsi({ typeId: 0x1000000 }));
  throwsFor('vsi.typeVersion', vsi({ typeVersion: 256 }));
  throwsFor('vsi.idFormat', vsi({ idFormat: 0 }));
  throwsFor('vsi.idFormat', vsi({ idFormat: 6 }));
  throwsFor('vsi.id', vsi({ id: new Uint8Array(15) }));
  throwsFor('vsi.filterFormat', vsi({ filterFormat: 9 }));
  throwsFor('vsi.entries', vsi({ entries: [] }));
  const e = VSI.entries[0]!;
  throwsFor('entries[0].groupId', vsi({ entries: [{ ...e, groupId: undefined }] }));
  throwsFor('entries[0].groupId', vsi({ entries: [{ ...e, groupId: 2 ** 32 }] }));
  throwsFor('entries[0].mac', vsi({ entries: [{ ...e, mac: undefined }] }));
  throwsFor('entries[0].mac', vsi({ entries: [{ ...e, mac: '02:00:00:00:00:0g' }] }));
  throwsFor('entries[0].ps', vsi({ entries: [{ ...e, ps: 2 }] }));
  throwsFor('entries[0].pcp', vsi({ entries: [{ ...e, pcp: 8 }] }));
  throwsFor('entries[1].vid', vsi({ entries: [e, { ...e, vid: 4096 }] }));
  throwsFor('entries[0].vid', vsi({ filterFormat: 1, entries: [{ ps: 0, pcp: 0, vid: -1 }] }));
  const ip = { groupId: 1, mac: '00:00:00:00:00:00', ps: 0, pcp: 0, vid: 0 };
  throwsFor('entries[0].ipv4', vsi({ filterFormat: 0xf0, entries: [ip] }));
  throwsFor(
    'entries[0].ipv4',
    vsi({ filterFormat: 0xf0, entries: [{ ...ip, ipv4: '1.2.3.256' }] }),
  );
  throwsFor('entries[0].ipv6', vsi({ filterFormat: 0xf1, entries: [{ ...ip, ipv6: '1::2::3' }] }));
  throwsFor('entries[0].ipv6', vsi({ filterFormat: 0xf1, entries: [{ ...ip, ipv6: '1.2.3.4' }] }));
  // 40 fif-4 entries: 25 + 480 = 505 fits; 41 (517) does not fit a 9-bit length.
  assert.doesNotThrow(vsi({ entries: new Array<typeof e>(40).fill(e) }));
  throwsFor('vdp tlv length', vsi({ entries: new Array<typeof e>(41).fill(e) }));
});

test('Manager ID, Cisco, authentication, org and unknown TLVs', () => {
  throwsFor('managerId', () => encodeVdp([{ kind: 'manager-id', managerId: new Uint8Array(15) }]));
  throwsFor('managerId', () => managerIdFromString('a'.repeat(17)));
  throwsFor('managerId', () => managerIdFromString('caf\u00e9'));
  throwsFor('managerId', () => managerIdFromString('0x' + '0'.repeat(31)));
  assert.equal(managerIdFromString('0x' + 'ab'.repeat(16)).length, 16);
  const id = new Uint8Array(16);
  const vm = {
    kind: 'cisco-vm-name',
    vsiIdFormat: 5,
    vsiId: id,
    vmIdFormat: 5,
    vmId: id,
    vmName: 'vm',
  } as const;
  throwsFor('cisco.vmName', () => encodeVdp([{ ...vm, vmId: new Uint8Array(6) }]));
  throwsFor('cisco.vmName.vsiIdFormat', () => encodeVdp([{ ...vm, vsiIdFormat: 256 }]));
  throwsFor('cisco.vmName.vmIdFormat', () => encodeVdp([{ ...vm, vmIdFormat: -1 }]));
  throwsFor('vdp tlv length', () => encodeVdp([{ ...vm, vmName: 'x'.repeat(474) }]));
  assert.doesNotThrow(() => encodeVdp([{ ...vm, vmName: 'x'.repeat(473) }]));
  const l3 = {
    kind: 'cisco-l3-addr',
    vsiIdFormat: 5,
    vsiId: id,
    afi: 1,
    address: '192.0.2.1',
  } as const;
  throwsFor('address', () => encodeVdp([{ ...l3, address: '192.0.2' }]));
  throwsFor('address', () => encodeVdp([{ ...l3, afi: 2 }]));
  throwsFor('cisco.l3Addr', () => encodeVdp([{ ...l3, vsiId: new Uint8Array(4) }]));
  throwsFor('cisco.l3Addr.afi', () => encodeVdp([{ ...l3, afi: 3, address: '2001:db8::1' }]));
  throwsFor('cisco.l3Addr.vsiIdFormat', () => encodeVdp([{ ...l3, vsiIdFormat: 300 }]));
  throwsFor('cisco.l3Addr.address', () =>
    encodeCiscoL3Addr(new ByteWriter(), l3, new Uint8Array(16)),
  );
  const auth = { keyId: 1, sequence: 1n, hmac: new Uint8Array(32) };
  throwsFor('auth.keyId', () => encodeAuth(new ByteWriter(), { ...auth, keyId: 0x10000 }));
  throwsFor('auth.sequence', () => encodeAuth(new ByteWriter(), { ...auth, sequence: -1n }));
  throwsFor('auth.sequence', () => encodeAuth(new ByteWriter(), { ...auth, sequence: 2n ** 64n }));
  throwsFor('auth.hmac', () => encodeAuth(new ByteWriter(), { ...auth, hmac: new Uint8Array(31) }));
  const org = { kind: 'org', oui: 0x123456, subtype: 1, data: new Uint8Array(2) } as const;
  throwsFor('org.oui', () => encodeVdp([{ ...org, oui: 0x1000000 }]));
  throwsFor('org.subtype', () => encodeVdp([{ ...org, subtype: 256 }]));
  throwsFor('vdp tlv length', () => encodeVdp([{ ...org, data: new Uint8Array(508) }]));
  throwsFor('vdp tlv type', () =>
    encodeVdp([{ kind: 'unknown', type: 128, value: new Uint8Array() }]),
  );
  throwsFor('vdp tlv length', () =>
    encodeVdp([{ kind: 'unknown', type: 9, value: new Uint8Array(512) }]),
  );
});

const EVB: EvbTlv = {
  bgid: true,
  rrcap: true,
  rrctr: false,
  sgid: true,
  rrreq: true,
  rrstat: 1,
  r: 3,
  rte: 14,
  evbMode: 2,
  rolRwd: false,
  rwd: 20,
  rolRka: false,
  rka: 20,
};
const LLDP: LldpBuild = {
  chassisId: { subtype: 4, id: '02:00:00:00:aa:01' },
  portId: { subtype: 3, id: '02:00:00:00:aa:01' },
  ttl: 120,
  evb: EVB,
};

test('LLDP and EVB TLV fields', () => {
  for (const [field, patch] of [
    ['evb.rrstat', { rrstat: 4 }],
    ['evb.r', { r: 8 }],
    ['evb.rte', { rte: 32 }],
    ['evb.evbMode', { evbMode: 4 }],
    ['evb.rwd', { rwd: 32 }],
    ['evb.rka', { rka: -1 }],
  ] as const) {
    throwsFor(field, () => encodeEvbBody({ ...EVB, ...patch }));
    throwsFor(field, () => encodeLldp({ ...LLDP, evb: { ...EVB, ...patch } }));
  }
  throwsFor('lldp.ttl', () => encodeLldp({ ...LLDP, ttl: 0x10000 }));
  throwsFor('lldp id subtype', () => encodeLldp({ ...LLDP, chassisId: { subtype: 256, id: 'x' } }));
  throwsFor('lldp id', () => encodeLldp({ ...LLDP, portId: { subtype: 5, id: '' } }));
  throwsFor('lldp id', () => encodeLldp({ ...LLDP, portId: { subtype: 5, id: 'x'.repeat(256) } }));
  throwsFor('lldp id', () => encodeLldp({ ...LLDP, portId: { subtype: 7, id: 'x', hex: 'zz' } }));
  assert.doesNotThrow(() => encodeLldp({ ...LLDP, portId: { subtype: 5, id: 'x'.repeat(255) } }));
  throwsFor('splitnveProfile.version', () =>
    encodeLldp({
      ...LLDP,
      splitnveProfile: { version: 256, auth: true, ipFilters: true, deactivate: true },
    }),
  );
  throwsFor('lldp extra type', () =>
    encodeLldp({ ...LLDP, extra: [{ type: 3, value: new Uint8Array(2) }] }),
  );
  throwsFor('lldp extra type', () =>
    encodeLldp({ ...LLDP, extra: [{ type: 128, value: new Uint8Array(2) }] }),
  );
  throwsFor('lldp tlv length', () =>
    encodeLldp({ ...LLDP, extra: [{ type: 8, value: new Uint8Array(512) }] }),
  );
  throwsFor('mac', () => normalizeMac('02:00:00:00:aa'));
  throwsFor('entries[3].mac', () => normalizeMac('nope', 'entries[3].mac'));
  assert.equal(normalizeMac('02-00-00-00-AA-01'), '02:00:00:00:aa:01');
});
