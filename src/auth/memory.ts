/**
 * AuthHooks held in memory: fixed keys per station and in-memory sequences. For the
 * simulator, the fuzz target and unit tests; daemons use `KeyStore` (persisted).
 */
import type { AuthHooks, AuthMode } from '../vdp/auth.js';

export interface MemoryAuthOptions {
  readonly role: 'bridge' | 'station';
  readonly mode: AuthMode;
  /** Keys by station MAC (lowercase, colons), then key id. The newest id signs. */
  readonly keys: ReadonlyMap<string, ReadonlyMap<number, Uint8Array>>;
  /** Station role: our MAC per uplink. */
  readonly uplinkMac?: (uplink: string) => string | undefined;
  /** First outgoing sequence (default 1). */
  readonly firstSequence?: bigint;
}

export class MemoryAuthHooks implements AuthHooks {
  private next: bigint;
  private readonly last = new Map<string, bigint>();

  constructor(private readonly o: MemoryAuthOptions) {
    this.next = o.firstSequence ?? 1n;
  }

  private station(local: string, peer: string): string | undefined {
    return this.o.role === 'bridge' ? peer : this.o.uplinkMac?.(local);
  }

  mode(): AuthMode {
    return this.o.mode;
  }

  knows(local: string, peer: string): boolean {
    const s = this.station(local, peer);
    return s !== undefined && (this.o.keys.get(s)?.size ?? 0) > 0;
  }

  signer(
    local: string,
    peer: string,
  ): { keyId: number; key: Uint8Array; sequence: bigint } | undefined {
    const s = this.station(local, peer);
    const ks = s !== undefined ? this.o.keys.get(s) : undefined;
    if (!ks || ks.size === 0) return undefined;
    const keyId = Math.max(...ks.keys());
    return { keyId, key: ks.get(keyId)!, sequence: this.next++ };
  }

  key(local: string, peer: string, keyId: number): Uint8Array | undefined {
    const s = this.station(local, peer);
    return s !== undefined ? this.o.keys.get(s)?.get(keyId) : undefined;
  }

  /** The replay window: per station across all ports (bridge), per uplink (station); see KeyStore. */
  private window(local: string, peer: string): string {
    return this.o.role === 'bridge' ? peer : `${local}|${peer}`;
  }

  lastAccepted(local: string, peer: string): bigint | undefined {
    return this.last.get(this.window(local, peer));
  }

  accepted(local: string, peer: string, sequence: bigint): void {
    this.last.set(this.window(local, peer), sequence);
  }
}
