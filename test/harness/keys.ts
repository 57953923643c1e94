/** Key files for PDU authentication tests (hex, mode 0600). */
import { randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Writes a random 32-octet key as hex to `dir/name` with mode 0600; returns its path. */
export function writeKey(dir: string, name: string, key: Buffer = randomBytes(32)): string {
  const p = join(dir, name);
  writeFileSync(p, key.toString('hex') + '\n', { mode: 0o600 });
  chmodSync(p, 0o600);
  return p;
}

/** `02:00:00:00:aa:01` -> `02-00-00-00-aa-01` (key directory file names). */
export function dashed(mac: string): string {
  return mac.toLowerCase().replace(/:/g, '-');
}
