/**
 * nNVE state in SQLite (better-sqlite3 12): every TSI with its state and assigned VIDs, what was
 * negotiated with every station, and every local tag (segment, VN, VID; held ones with the end of
 * their hold). Each protocol step's changes are committed in one transaction before the step's
 * frames are sent (WAL, synchronous=NORMAL: a killed process loses nothing it committed), so
 * after a restart every VN keeps its tag.
 *
 * Commits never checkpoint the WAL: a worker thread does (../sqlite/wal-checkpointer.ts), and
 * `close()` checkpoints the rest.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  WalCheckpointer,
  type CheckpointStats,
  type WalCheckpointerOptions,
} from '../sqlite/wal-checkpointer.js';
import type { BridgeNodeEvent, RememberedStation } from '../node/bridge-node.js';
import type { BridgeVsi } from '../vdp/bridge.js';
import { fromHex, toHex } from '../wire/bytes.js';
import type { TagRecord } from './tags.js';

interface VsiRow {
  port: string;
  station: string;
  key: string;
  state: string;
  vsi: string;
}

function vsiToJson(v: BridgeVsi): string {
  return JSON.stringify({
    key: v.key,
    vsiId: v.vsiId,
    managerId: toHex(v.managerId),
    typeId: v.typeId,
    typeVersion: v.typeVersion,
    idFormat: v.idFormat,
    id: toHex(v.id),
    filterFormat: v.filterFormat,
    entries: v.entries,
    state: v.state,
    hints: v.hints,
  });
}

type VsiJson = Omit<BridgeVsi, 'managerId' | 'id' | 'orgTlvs' | 'since'> & {
  managerId: string;
  id: string;
};

const NO_ORG_TLVS: BridgeVsi['orgTlvs'] = Object.freeze([]);

/**
 * Rebuilds a VSI field by field (an object spread from JSON.parse output gets a hidden class of
 * its own: ~400 bytes more per VSI after a restart) and shares equal Manager IDs.
 */
function vsiFromJson(text: string, managers: Map<string, Uint8Array>): BridgeVsi {
  const o = JSON.parse(text) as VsiJson;
  let managerId = managers.get(o.managerId);
  if (!managerId) managers.set(o.managerId, (managerId = fromHex(o.managerId)!));
  return {
    key: o.key,
    vsiId: o.vsiId,
    managerId,
    typeId: o.typeId,
    typeVersion: o.typeVersion,
    idFormat: o.idFormat,
    id: fromHex(o.id)!,
    filterFormat: o.filterFormat,
    entries: o.entries.map((e) => ({ ...e })),
    state: o.state,
    hints: { ...o.hints },
    orgTlvs: NO_ORG_TLVS,
    since: 0,
  };
}

export type NnveStoreOptions = WalCheckpointerOptions;
export type { CheckpointStats };

export class NnveStore {
  private readonly db: Database.Database;
  private readonly checkpointer: WalCheckpointer;
  private readonly onError: ((err: Error) => void) | undefined;
  private closed = false;
  private readonly upsertTsi: Database.Statement;
  private readonly deleteTsi: Database.Statement;
  private readonly upsertStation: Database.Statement;
  private readonly upsertTag: Database.Statement;
  private readonly deleteTag: Database.Statement;

  constructor(stateDir: string, opts: NnveStoreOptions = {}) {
    mkdirSync(stateDir, { recursive: true });
    const file = join(stateDir, 'nnve.sqlite');
    this.onError = opts.onError;
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS tsi (
        port TEXT NOT NULL, station TEXT NOT NULL, key TEXT NOT NULL,
        state TEXT NOT NULL, vsi TEXT NOT NULL, updated INTEGER NOT NULL,
        PRIMARY KEY (port, station, key));
      CREATE TABLE IF NOT EXISTS station (
        port TEXT NOT NULL, station TEXT NOT NULL, info TEXT NOT NULL,
        PRIMARY KEY (port, station));
      CREATE TABLE IF NOT EXISTS tag (
        segment TEXT NOT NULL, vni INTEGER NOT NULL, vid INTEGER NOT NULL,
        held_until INTEGER,
        PRIMARY KEY (segment, vni));
    `);
    this.upsertTsi = this.db.prepare(
      'INSERT INTO tsi (port, station, key, state, vsi, updated) VALUES (?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT (port, station, key) DO UPDATE SET state = excluded.state, vsi = excluded.vsi, updated = excluded.updated',
    );
    this.deleteTsi = this.db.prepare('DELETE FROM tsi WHERE port = ? AND station = ? AND key = ?');
    this.upsertStation = this.db.prepare(
      'INSERT INTO station (port, station, info) VALUES (?, ?, ?) ON CONFLICT (port, station) DO UPDATE SET info = excluded.info',
    );
    this.upsertTag = this.db.prepare(
      'INSERT INTO tag (segment, vni, vid, held_until) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (segment, vni) DO UPDATE SET vid = excluded.vid, held_until = excluded.held_until',
    );
    this.deleteTag = this.db.prepare('DELETE FROM tag WHERE segment = ? AND vni = ?');
    this.checkpointer = new WalCheckpointer(this.db, file, opts);
  }

  /** What the checkpoint worker did (for tests and stats). */
  get checkpointStats(): CheckpointStats {
    return this.checkpointer.stats;
  }

  loadTags(): TagRecord[] {
    const rows = this.db
      .prepare('SELECT segment, vni, vid, held_until FROM tag ORDER BY segment, vni')
      .all() as { segment: string; vni: number; vid: number; held_until: number | null }[];
    return rows.map((r) => ({
      segment: r.segment,
      vni: r.vni,
      vid: r.vid,
      heldUntil: r.held_until,
    }));
  }

  loadTsis(): { port: string; station: string; vsi: BridgeVsi }[] {
    const managers = new Map<string, Uint8Array>();
    const out: { port: string; station: string; vsi: BridgeVsi }[] = [];
    const rows = this.db.prepare('SELECT port, station, key, state, vsi FROM tsi').iterate();
    for (const r of rows as IterableIterator<VsiRow>) {
      out.push({ port: r.port, station: r.station, vsi: vsiFromJson(r.vsi, managers) });
    }
    return out;
  }

  loadStations(): RememberedStation[] {
    const rows = this.db.prepare('SELECT info FROM station').all() as { info: string }[];
    return rows.map((r) => JSON.parse(r.info) as RememberedStation);
  }

  /** Commits the state changes of one protocol step (and the tag changes it caused). */
  apply(
    events: readonly BridgeNodeEvent[],
    stations: () => RememberedStation[],
    tags: ReadonlyMap<string, TagRecord | null> = new Map(),
  ): void {
    // Only the stations that negotiated in this step are written: writing all of them each
    // time made 1000 stations (re)negotiating after a restart cost 1000 x 1000 upserts.
    const negotiated = new Set<string>();
    const tx = this.db.transaction(() => {
      for (const e of events) {
        if (e.type === 'tsi') {
          if (e.to === 'init') this.deleteTsi.run(e.port, e.station, e.key);
          else this.upsertTsi.run(e.port, e.station, e.key, e.to, vsiToJson(e.vsi), Date.now());
        } else if (e.type === 'negotiated') {
          negotiated.add(`${e.port}|${e.peer}`);
        }
      }
      if (negotiated.size > 0) {
        for (const s of stations()) {
          if (negotiated.has(`${s.port}|${s.station}`)) {
            this.upsertStation.run(s.port, s.station, JSON.stringify(s));
          }
        }
      }
      this.writeTags(tags);
    });
    tx();
  }

  /**
   * Replaces everything with the daemon's whole state in one transaction: after a failed
   * write, this brings the store back to what the daemon holds.
   */
  rewrite(
    tsis: readonly { port: string; station: string; vsi: BridgeVsi }[],
    stations: readonly RememberedStation[],
    tags: readonly TagRecord[],
  ): void {
    this.db.transaction(() => {
      this.db.exec('DELETE FROM tsi; DELETE FROM station; DELETE FROM tag;');
      const now = Date.now();
      for (const t of tsis) {
        this.upsertTsi.run(t.port, t.station, t.vsi.key, t.vsi.state, vsiToJson(t.vsi), now);
      }
      for (const st of stations) this.upsertStation.run(st.port, st.station, JSON.stringify(st));
      for (const t of tags) this.upsertTag.run(t.segment, t.vni, t.vid, t.heldUntil);
    })();
  }

  /** Commits tag changes alone (a hold ended). */
  applyTags(tags: ReadonlyMap<string, TagRecord | null>): void {
    if (tags.size === 0) return;
    this.db.transaction(() => this.writeTags(tags))();
  }

  private writeTags(tags: ReadonlyMap<string, TagRecord | null>): void {
    for (const [k, t] of tags) {
      if (t) this.upsertTag.run(t.segment, t.vni, t.vid, t.heldUntil);
      else {
        const i = k.lastIndexOf('|');
        this.deleteTag.run(k.slice(0, i), Number(k.slice(i + 1)));
      }
    }
  }

  /**
   * Stops the checkpoint worker (waits for it to close its connection), copies the whole WAL
   * into the database file and closes.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.checkpointer.finish('TRUNCATE');
    } catch (e) {
      // Nothing is lost: the next open reads the WAL.
      this.onError?.(new Error(`WAL checkpoint on close: ${(e as Error).message}`));
    } finally {
      this.db.close();
    }
  }
}
