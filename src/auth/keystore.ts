/**
 * The daemons' key store: the `AuthHooks` the protocol core signs and verifies with (Req-11).
 *
 * - Keys per station, from `auth.keys` (key files) and `auth.keyDir` (files named
 *   `<station MAC, dashes>.<key id>.key`), hex text, checked to be owned by us and not
 *   accessible to group or others. At most two key ids per station: both verify, one signs
 *   (see `signWith`), so keys rotate without downtime: add the new key on both sides, the
 *   station starts signing with it, the bridge follows, then remove the old one.
 * - `reload()` (SIGHUP) reads everything again and swaps it in only if all of it is valid;
 *   otherwise the old keys stay and the error says which file is wrong.
 * - Policy per port/uplink: `require`, `prefer` or `off`.
 * - Outgoing sequences and last accepted sequences persist in SQLite (`SequenceStore`).
 * - Replay window: the nNVE keeps ONE last-accepted sequence per station for all its ports. A
 *   station numbers every PDU it sends from one counter (per daemon, strictly increasing on
 *   every uplink), and the HMAC does not cover the receiving port, so a window per (port,
 *   station) would let a PDU captured on one port be replayed on another. The tNVE keeps one
 *   per (uplink, nNVE): the nNVE's counter is shared by all its sessions, whose PDUs may reach
 *   different uplinks in any order.
 */
import { readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { AuthHooks, AuthMode } from '../vdp/auth.js';
import { normalizeMac } from '../wire/bytes.js';
import { AuthConfigSchema, type AuthConfig, type AuthConfigInput } from './config.js';
import { SequenceStore, sequenceAt, type SequenceStoreOptions } from './sequence-store.js';

export const MIN_KEY_OCTETS = 16;
export const MAX_KEY_OCTETS = 64;
/** Key ids valid at once per station. */
export const MAX_KEYS_PER_STATION = 2;
/** Station key (tNVE, no `station` given): serves every uplink. */
const ANY = '*';
/** nNVE: the replay-window scope shared by all ports. */
export const ALL_PORTS = '*';
const KEY_FILE_RE = /^([0-9a-f]{2}(?:-[0-9a-f]{2}){5})\.(\d{1,5})\.key$/i;

export interface KeyStoreOptions {
  /** `bridge` (nNVE: the peer is the station) or `station` (tNVE: we are the station). */
  readonly role: 'bridge' | 'station';
  /** Where `auth.sqlite` lives (the daemon's state directory). */
  readonly stateDir: string;
  /** tNVE: the MAC of an uplink (the station whose key signs on it). */
  readonly uplinkMac?: (uplink: string) => string | undefined;
  /** Check key file owner and mode (default true; tests of the check itself turn nothing off). */
  readonly checkPermissions?: boolean;
  readonly sequence?: SequenceStoreOptions;
}

interface KeyEntry {
  readonly keyId: number;
  readonly key: Uint8Array;
  readonly source: string;
}

/** Keys by station MAC (or '*'), sorted by key id. */
type KeyTable = Map<string, KeyEntry[]>;

/** Checks that a key file is a regular file of ours that nobody else can read or write. */
export function checkKeyFileMode(path: string, st: Stats): void {
  if (!st.isFile()) throw new Error(`key file ${path}: not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new Error(
      `key file ${path}: mode ${(st.mode & 0o777).toString(8).padStart(3, '0')} lets group or others access it; chmod 600 it`,
    );
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  if (uid !== undefined && st.uid !== uid) {
    throw new Error(`key file ${path}: owned by uid ${st.uid}, not by us (uid ${uid})`);
  }
}

/** Reads one key file (hex text) after checking its permissions. */
export function readKeyFile(path: string, checkPermissions = true): Uint8Array {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw new Error(`key file ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (checkPermissions) checkKeyFileMode(path, st);
  if (st.size > 4096) throw new Error(`key file ${path}: too large (${st.size} octets)`);
  const text = readFileSync(path, 'utf8').replace(/\s+/g, '');
  if (!/^([0-9a-fA-F]{2})+$/.test(text)) {
    throw new Error(`key file ${path}: expected the key as hex digits (e.g. openssl rand -hex 32)`);
  }
  const key = Buffer.from(text, 'hex');
  if (key.length < MIN_KEY_OCTETS || key.length > MAX_KEY_OCTETS) {
    throw new Error(
      `key file ${path}: key of ${key.length} octets; use ${MIN_KEY_OCTETS} to ${MAX_KEY_OCTETS} (32 recommended)`,
    );
  }
  return new Uint8Array(key);
}

/** Reads every key the configuration names; throws naming the first problem. */
export function loadKeys(cfg: AuthConfig, checkPermissions = true): KeyTable {
  const table: KeyTable = new Map();
  const add = (station: string, keyId: number, key: Uint8Array, source: string): void => {
    const list = table.get(station) ?? [];
    const dup = list.find((k) => k.keyId === keyId);
    if (dup) {
      throw new Error(
        `key id ${keyId} of station ${station} given twice (${dup.source} and ${source})`,
      );
    }
    list.push({ keyId, key, source });
    list.sort((a, b) => a.keyId - b.keyId);
    if (list.length > MAX_KEYS_PER_STATION) {
      throw new Error(
        `station ${station} has ${list.length} keys (${list.map((k) => k.keyId).join(', ')}); at most ${MAX_KEYS_PER_STATION} may be valid at once`,
      );
    }
    table.set(station, list);
  };
  for (const k of cfg.keys) {
    const station = k.station ? normalizeMac(k.station) : ANY;
    add(station, k.keyId, readKeyFile(k.keyFile, checkPermissions), k.keyFile);
  }
  if (cfg.keyDir) {
    let names: string[];
    let dst: Stats;
    try {
      dst = statSync(cfg.keyDir);
      names = readdirSync(cfg.keyDir);
    } catch (e) {
      throw new Error(`key directory ${cfg.keyDir}: ${(e as Error).message}`, { cause: e });
    }
    if (checkPermissions && (dst.mode & 0o022) !== 0) {
      throw new Error(
        `key directory ${cfg.keyDir}: mode ${(dst.mode & 0o777).toString(8)} lets group or others write to it`,
      );
    }
    for (const name of names.sort()) {
      const m = KEY_FILE_RE.exec(name);
      if (!m) continue; // README, editor backups, ...
      const keyId = Number(m[2]);
      if (keyId > 0xffff) throw new Error(`key file ${join(cfg.keyDir, name)}: key id > 65535`);
      const station = normalizeMac(m[1]!.replace(/-/g, ':'));
      add(
        station,
        keyId,
        readKeyFile(join(cfg.keyDir, name), checkPermissions),
        join(cfg.keyDir, name),
      );
    }
  }
  return table;
}

export interface KeyStoreStats {
  stations: number;
  keys: number;
  reloads: number;
  reloadFailures: number;
  signed: number;
  unsignedNoKey: number;
}

export class KeyStore implements AuthHooks {
  private cfg: AuthConfig;
  private keys: KeyTable;
  private readonly seq: SequenceStore;
  /** Key id of the last PDU accepted from a peer (to answer with the same key). */
  private readonly peerKeyId = new Map<string, number>();
  /** Key id being verified when `accepted` is called (set by `key`, see there). */
  private lastLookup: { id: string; keyId: number } | undefined;
  readonly stats: KeyStoreStats = {
    stations: 0,
    keys: 0,
    reloads: 0,
    reloadFailures: 0,
    signed: 0,
    unsignedNoKey: 0,
  };

  private constructor(
    cfg: AuthConfig,
    keys: KeyTable,
    private readonly opts: KeyStoreOptions,
  ) {
    this.cfg = cfg;
    this.keys = keys;
    this.seq = new SequenceStore(opts.stateDir, {
      block: cfg.sequenceBlock,
      ...opts.sequence,
    });
    // Rows from when the nNVE kept a window per (port, station): fold them, highest wins.
    if (opts.role === 'bridge') this.seq.collapseScopes(ALL_PORTS);
    this.count();
  }

  /** Where the replay window of a peer lives: per station across ports (nNVE), per uplink (tNVE). */
  private scopeOf(local: string): string {
    return this.opts.role === 'bridge' ? ALL_PORTS : local;
  }

  /** Validates the configuration and reads every key; throws naming what is wrong. */
  static open(cfg: AuthConfigInput | AuthConfig, opts: KeyStoreOptions): KeyStore {
    const c = AuthConfigSchema.parse(cfg);
    if (opts.role === 'bridge' && c.keys.some((k) => !k.station)) {
      throw new Error('auth.keys: every key of the nNVE needs its `station` MAC');
    }
    const keys = loadKeys(c, opts.checkPermissions ?? true);
    return new KeyStore(c, keys, opts);
  }

  /**
   * SIGHUP: reads the configuration's keys again. All or nothing: on any error the current
   * keys stay and the error is returned.
   */
  reload(
    cfg: AuthConfigInput | AuthConfig,
  ): { ok: true; stations: number; keys: number } | { ok: false; error: string } {
    try {
      const c = AuthConfigSchema.parse(cfg);
      if (this.opts.role === 'bridge' && c.keys.some((k) => !k.station)) {
        throw new Error('auth.keys: every key of the nNVE needs its `station` MAC');
      }
      this.keys = loadKeys(c, this.opts.checkPermissions ?? true);
      this.cfg = c;
      this.stats.reloads++;
      this.count();
      return { ok: true, stations: this.stats.stations, keys: this.stats.keys };
    } catch (e) {
      this.stats.reloadFailures++;
      return { ok: false, error: (e as Error).message };
    }
  }

  private count(): void {
    this.stats.stations = this.keys.size;
    this.stats.keys = [...this.keys.values()].reduce((n, l) => n + l.length, 0);
  }

  get config(): AuthConfig {
    return this.cfg;
  }

  /** Stations (MACs) holding at least one key. */
  stations(): string[] {
    return [...this.keys.keys()].filter((s) => s !== ANY);
  }

  /** Key ids held for a station (for views). */
  keyIds(station: string): number[] {
    return (this.keys.get(normalizeMac(station)) ?? []).map((k) => k.keyId);
  }

  /** The station whose keys apply between `local` and `peer`. */
  private stationOf(local: string, peer: string): string | undefined {
    if (this.opts.role === 'bridge') return peer;
    return this.opts.uplinkMac?.(local);
  }

  private keysFor(local: string, peer: string): KeyEntry[] | undefined {
    const st = this.stationOf(local, peer);
    return (st !== undefined ? this.keys.get(st) : undefined) ?? this.keys.get(ANY);
  }

  // ------------------------------------------------------------------------------------------
  // AuthHooks

  mode(local: string, _peer: string): AuthMode {
    return this.cfg.modes[local] ?? this.cfg.mode;
  }

  /** Whether any key exists for this peer (a bridge ignores keyless stations under `require`). */
  knows(local: string, peer: string): boolean {
    return (this.keysFor(local, peer)?.length ?? 0) > 0;
  }

  signer(
    local: string,
    peer: string,
  ): { keyId: number; key: Uint8Array; sequence: bigint } | undefined {
    const list = this.keysFor(local, peer);
    if (!list || list.length === 0) {
      this.stats.unsignedNoKey++;
      return undefined;
    }
    const follow =
      (this.cfg.signWith ?? (this.opts.role === 'bridge' ? 'peer' : 'newest')) === 'peer';
    let entry = list[list.length - 1]!;
    if (follow) {
      const id = this.peerKeyId.get(`${local}|${peer}`);
      const k = id !== undefined ? list.find((x) => x.keyId === id) : undefined;
      if (k) entry = k;
    }
    this.stats.signed++;
    return { keyId: entry.keyId, key: entry.key, sequence: this.seq.nextSequence() };
  }

  key(local: string, peer: string, keyId: number): Uint8Array | undefined {
    const k = this.keysFor(local, peer)?.find((x) => x.keyId === keyId);
    // verifyPdu asks for the key, checks the HMAC, then calls `accepted`: remember which id.
    this.lastLookup = k ? { id: `${local}|${peer}`, keyId } : undefined;
    return k?.key;
  }

  /**
   * The last accepted sequence, raised with `maxSequenceAgeMs` to the sequence a sender
   * following the clock signed that long ago: older PDUs are replays even with no state here.
   */
  lastAccepted(local: string, peer: string): bigint | undefined {
    const stored = this.seq.lastAccepted(this.scopeOf(local), peer);
    const age = this.cfg.maxSequenceAgeMs;
    if (age === undefined) return stored;
    const oldest = sequenceAt((this.opts.sequence?.clockMs ?? Date.now)() - age);
    if (oldest === 0n) return stored;
    return stored === undefined || stored < oldest - 1n ? oldest - 1n : stored;
  }

  accepted(local: string, peer: string, sequence: bigint): void {
    this.seq.accepted(this.scopeOf(local), peer, sequence);
    const id = `${local}|${peer}`;
    if (this.lastLookup?.id === id) this.peerKeyId.set(id, this.lastLookup.keyId);
  }

  /** Where sequences stand (for views and tests). */
  get sequences(): SequenceStore {
    return this.seq;
  }

  close(): void {
    this.seq.close();
  }
}
