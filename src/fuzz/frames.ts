/**
 * Frame builders for the fuzz target, the flood tests and benchmarks: VDP requests in ECP
 * (optionally signed), LLDPDUs with the EVB TLV, random station MACs and VSI ids.
 */
import type { Random } from '../core/random.js';
import { authTlvBytes } from '../vdp/auth.js';
import { ECP_SUBTYPE_VDP, encodeEcp } from '../wire/ecp.js';
import { encodeEthernet, ETHERTYPE_ECP, ETHERTYPE_LLDP } from '../wire/ethernet.js';
import { EVB_MODE_STATION } from '../wire/evb-tlv.js';
import { encodeLldp } from '../wire/lldp.js';
import { DEFAULT_WIRE_OPTIONS } from '../wire/options.js';
import { encodeVdp, managerIdFromString, type VsiTlvType } from '../wire/vdp.js';

export const NEAREST_CUSTOMER_BRIDGE = '01:80:c2:00:00:00';

function hex2(x: number): string {
  return x.toString(16).padStart(2, '0');
}

/** A random locally administered unicast MAC. */
export function randomMac(rnd: Random): string {
  const b = [0x02 | (Math.floor(rnd() * 64) << 2)];
  for (let i = 0; i < 5; i++) b.push(Math.floor(rnd() * 256));
  return b.map(hex2).join(':');
}

export function randomBytes(rnd: Random, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rnd() * 256);
  return out;
}

export interface VdpFrameOptions {
  readonly source: string;
  readonly destination?: string;
  readonly ecpSequence: number;
  readonly type?: VsiTlvType;
  /** 16 octets (UUID format). */
  readonly vsiId: Uint8Array;
  readonly vni?: number;
  readonly mac?: string;
  readonly vid?: number;
  /** Signs the PDU (splitnve authentication TLV). */
  readonly sign?: { readonly keyId: number; readonly key: Uint8Array; readonly sequence: bigint };
}

/** An ECP request frame carrying one VSI TLV (GroupID/MAC/VID filter). */
export function vdpRequestFrame(o: VdpFrameOptions): Uint8Array {
  const destination = o.destination ?? NEAREST_CUSTOMER_BRIDGE;
  let vdp = encodeVdp([
    { kind: 'manager-id', managerId: managerIdFromString('flood') },
    {
      kind: 'vsi',
      type: o.type ?? 3,
      status: 0,
      typeId: 1,
      typeVersion: 1,
      idFormat: 5,
      id: o.vsiId,
      filterFormat: 4,
      entries: [{ groupId: o.vni ?? 5000, mac: o.mac ?? o.source, vid: o.vid ?? 0, ps: 0, pcp: 0 }],
    },
  ]);
  if (o.sign) {
    const unsigned = vdp.subarray(0, vdp.length - 2); // without End
    const auth = authTlvBytes(
      o.sign,
      o.source,
      destination,
      ECP_SUBTYPE_VDP,
      unsigned,
      DEFAULT_WIRE_OPTIONS,
    );
    const all = new Uint8Array(unsigned.length + auth.length + 2);
    all.set(unsigned, 0);
    all.set(auth, unsigned.length);
    vdp = all;
  }
  return encodeEthernet(
    { destination, source: o.source, ethertype: ETHERTYPE_ECP },
    encodeEcp(
      { version: 1, op: 0, subtype: ECP_SUBTYPE_VDP, sequence: o.ecpSequence & 0xffff },
      vdp,
    ),
  );
}

/** An LLDPDU of a station with the EVB TLV (and the splitnve profile TLV when asked). */
export function lldpStationFrame(
  source: string,
  opts: { splitnve?: boolean; ttl?: number } = {},
): Uint8Array {
  const lldp = encodeLldp({
    chassisId: { subtype: 4, id: source },
    portId: { subtype: 5, id: 'eth0' },
    ttl: opts.ttl ?? 120,
    evb: {
      bgid: false,
      rrcap: false,
      rrctr: false,
      sgid: true,
      rrreq: true,
      rrstat: 0,
      r: 3,
      rte: 8,
      evbMode: EVB_MODE_STATION,
      rolRwd: false,
      rwd: 20,
      rolRka: false,
      rka: 20,
    },
    ...(opts.splitnve
      ? { splitnveProfile: { version: 1, auth: true, ipFilters: true, deactivate: true } }
      : {}),
  });
  return encodeEthernet(
    { destination: NEAREST_CUSTOMER_BRIDGE, source, ethertype: ETHERTYPE_LLDP },
    lldp,
  );
}
