/**
 * The VDP status octet. Its bits mean different things in a request and in a response:
 *   request:  0x10 M (migrating to this bridge), 0x20 S (suspended / migrating away)
 *   response: 0x40 response flag, 0x20 Keep, 0x10 Hard error, low nibble reason
 * 0x80 is reserved in both. A bridge-initiated (unsolicited) TLV carries 0x00.
 */
export const STATUS_M = 0x10;
export const STATUS_S = 0x20;
export const STATUS_RESPONSE = 0x40;
export const STATUS_KEEP = 0x20;
export const STATUS_HARD = 0x10;
export const STATUS_REASON_MASK = 0x0f;
export const STATUS_RESERVED = 0x80;

export const Reason = {
  Success: 0,
  InvalidFormat: 1,
  InsufficientResources: 2,
  ManagerUnreachable: 3,
  Other: 4,
  InvalidVidGroupMac: 5,
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];

const REASON_NAMES = [
  'success',
  'invalid format',
  'insufficient resources',
  'VSI manager unreachable',
  'other failure',
  'invalid VID, GroupID or MAC',
];

export function reasonName(reason: number): string {
  return REASON_NAMES[reason] ?? `reserved reason ${reason}`;
}

export interface RequestStatus {
  readonly raw: number;
  readonly response: false;
  /** Migrating to this bridge (hint "to"). */
  readonly m: boolean;
  /** Suspended or migrating away (hint "from"). */
  readonly s: boolean;
}

export interface ResponseStatus {
  readonly raw: number;
  readonly response: true;
  readonly keep: boolean;
  readonly hard: boolean;
  readonly reason: number;
}

export type Status = RequestStatus | ResponseStatus;

export function decodeStatus(raw: number): Status {
  if (raw & STATUS_RESPONSE) {
    return {
      raw,
      response: true,
      keep: (raw & STATUS_KEEP) !== 0,
      hard: (raw & STATUS_HARD) !== 0,
      reason: raw & STATUS_REASON_MASK,
    };
  }
  return { raw, response: false, m: (raw & STATUS_M) !== 0, s: (raw & STATUS_S) !== 0 };
}

export function requestStatus(hints: { m?: boolean; s?: boolean }): number {
  return (hints.m ? STATUS_M : 0) | (hints.s ? STATUS_S : 0);
}

export function responseStatus(
  reason: number,
  flags: { keep?: boolean; hard?: boolean } = {},
): number {
  return (
    STATUS_RESPONSE |
    (flags.keep ? STATUS_KEEP : 0) |
    (flags.hard ? STATUS_HARD : 0) |
    (reason & STATUS_REASON_MASK)
  );
}

export function isResponse(raw: number): boolean {
  return (raw & STATUS_RESPONSE) !== 0;
}

/** A response is an error when its reason is non-zero (Keep/Hard with reason 0 mean nothing). */
export function responseReason(raw: number): number {
  return raw & STATUS_REASON_MASK;
}
