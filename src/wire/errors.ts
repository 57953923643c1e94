/**
 * Decoding never throws: it returns a value or a DecodeError that names the field and the
 * octet offset (from the start of the buffer handed to the top-level decoder) where it failed.
 */
export interface DecodeError {
  readonly field: string;
  readonly offset: number;
  readonly message: string;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: DecodeError };

export function ok<T>(value: T): Decoded<T> {
  return { ok: true, value };
}

export function fail<T = never>(field: string, offset: number, message: string): Decoded<T> {
  return { ok: false, error: { field, offset, message } };
}

/** Thrown only by encoders, whose input is ours: a caller bug, never a peer's bytes. */
export class EncodeError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'EncodeError';
  }
}
