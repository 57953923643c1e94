/** Code points that a deployment may change (WIRE.md "splitnve profile extensions"). */
export interface WireOptions {
  /** Identifier (OUI/CID) of the splitnve organizationally specific TLVs; 24 bits. */
  readonly splitnveOui: number;
  /** Filter info format code of GroupID/MAC/IPv4/VID entries. */
  readonly ipv4FilterFormat: number;
  /** Filter info format code of GroupID/MAC/IPv6/VID entries. */
  readonly ipv6FilterFormat: number;
}

export const SPLITNVE_OUI = 0x02534e;
export const CISCO_OUI = 0x00000c;
export const IEEE_8021_OUI = 0x0080c2;

export const DEFAULT_WIRE_OPTIONS: WireOptions = Object.freeze({
  splitnveOui: SPLITNVE_OUI,
  ipv4FilterFormat: 0xf0,
  ipv6FilterFormat: 0xf1,
});

export function ouiToString(oui: number): string {
  return [(oui >> 16) & 0xff, (oui >> 8) & 0xff, oui & 0xff]
    .map((b) => b.toString(16).padStart(2, '0'))
    .join('-');
}
