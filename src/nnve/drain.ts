/**
 * Drained stations (operator action): a drained station's VSIs are de-associated and any new
 * request from it is refused (reason 4 "other failure", not hard: the station keeps retrying and
 * comes back by itself once undrained). A drain names a station on one port, or on every port.
 * Drains survive restarts (`drains.json` in the state directory, replaced atomically).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BridgeDecision, BridgePolicy, BridgeRequest, BridgeVsi } from '../vdp/bridge.js';
import { normalizeMac } from '../wire/bytes.js';
import { Reason } from '../wire/status.js';

export interface Drain {
  /** null: on every port. */
  readonly port: string | null;
  readonly station: string;
  /** ISO time the drain began. */
  readonly since: string;
  readonly reason: string | null;
}

export class StationDrains {
  private readonly drains = new Map<string, Drain>();
  /** Requests refused because their station is drained. */
  refused = 0;

  constructor(private readonly file?: string) {
    if (file && existsSync(file)) {
      let list: Drain[];
      try {
        list = JSON.parse(readFileSync(file, 'utf8')) as Drain[];
      } catch (e) {
        throw new Error(`drains file ${file}: ${(e as Error).message}`, { cause: e });
      }
      for (const d of list) this.drains.set(this.key(d.port, d.station), d);
    }
  }

  static inStateDir(stateDir: string): StationDrains {
    return new StationDrains(join(stateDir, 'drains.json'));
  }

  private key(port: string | null, station: string): string {
    return `${port ?? '*'}|${normalizeMac(station)}`;
  }

  list(): Drain[] {
    return [...this.drains.values()];
  }

  /** The drain of exactly this port (null: every port) and station. */
  get(port: string | null, station: string): Drain | undefined {
    return this.drains.get(this.key(port, station));
  }

  isDrained(port: string, station: string): Drain | undefined {
    const s = normalizeMac(station);
    return this.drains.get(`${port}|${s}`) ?? this.drains.get(`*|${s}`);
  }

  /** Returns false when it was already drained. */
  add(port: string | null, station: string, reason: string | null): boolean {
    const k = this.key(port, station);
    if (this.drains.has(k)) return false;
    this.drains.set(k, {
      port,
      station: normalizeMac(station),
      since: new Date().toISOString(),
      reason,
    });
    this.save();
    return true;
  }

  /** Returns false when it was not drained. */
  remove(port: string | null, station: string): boolean {
    const ok = this.drains.delete(this.key(port, station));
    if (ok) this.save();
    return ok;
  }

  private save(): void {
    if (!this.file) return;
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.list(), null, 2) + '\n');
    renameSync(tmp, this.file);
  }

  /** `inner` with drained stations refused. */
  wrap(inner: BridgePolicy): BridgePolicy {
    return {
      decide: (req: BridgeRequest): BridgeDecision => {
        const d = this.isDrained(req.port, req.station);
        if (!d) return inner.decide(req);
        this.refused++;
        return {
          accept: false,
          reason: Reason.Other,
          hard: false,
          message: `station ${req.station} is drained${d.port ? ` on ${d.port}` : ''} by the operator`,
        };
      },
      released: (port: string, station: string, vsi: BridgeVsi): void =>
        inner.released?.(port, station, vsi),
    };
  }
}
