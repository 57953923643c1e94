/**
 * tNVE state in SQLite: per uplink, every VSI the orchestrator wants (its spec, with the VIDs
 * the nNVE assigned, and the mode it should be in), and what was negotiated with the nNVE.
 * Written before a request is sent, so that a restarted agent re-asserts exactly that.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RememberedBridge } from '../node/station-node.js';
import { specFromJson, specToJson } from '../vdp/spec-json.js';
import type { VsiSpec, VsiState } from '../vdp/types.js';

export interface StoredVsi {
  readonly uplink: string;
  readonly key: string;
  readonly spec: VsiSpec;
  readonly state: VsiState;
}

export class TnveStore {
  private readonly db: Database.Database;
  private readonly put: Database.Statement;
  private readonly del: Database.Statement;
  private readonly putUplink: Database.Statement;

  constructor(stateDir: string) {
    mkdirSync(stateDir, { recursive: true });
    this.db = new Database(join(stateDir, 'tnve.sqlite'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS vsi (
        uplink TEXT NOT NULL, key TEXT NOT NULL, spec TEXT NOT NULL, state TEXT NOT NULL,
        updated INTEGER NOT NULL, PRIMARY KEY (uplink, key));
      CREATE TABLE IF NOT EXISTS uplink (name TEXT PRIMARY KEY, bridge TEXT NOT NULL);
    `);
    this.put = this.db.prepare(
      'INSERT INTO vsi (uplink, key, spec, state, updated) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT (uplink, key) DO UPDATE SET spec = excluded.spec, state = excluded.state, updated = excluded.updated',
    );
    this.del = this.db.prepare('DELETE FROM vsi WHERE uplink = ? AND key = ?');
    this.putUplink = this.db.prepare(
      'INSERT INTO uplink (name, bridge) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET bridge = excluded.bridge',
    );
  }

  load(): StoredVsi[] {
    const rows = this.db.prepare('SELECT uplink, key, spec, state FROM vsi').all() as {
      uplink: string;
      key: string;
      spec: string;
      state: VsiState;
    }[];
    return rows.map((r) => ({
      uplink: r.uplink,
      key: r.key,
      spec: specFromJson(JSON.parse(r.spec)),
      state: r.state,
    }));
  }

  loadBridges(): Map<string, RememberedBridge> {
    const rows = this.db.prepare('SELECT name, bridge FROM uplink').all() as {
      name: string;
      bridge: string;
    }[];
    return new Map(rows.map((r) => [r.name, JSON.parse(r.bridge) as RememberedBridge]));
  }

  /** Records the state a VSI should be in ('init': forget it). */
  set(uplink: string, key: string, spec: VsiSpec, state: VsiState): void {
    if (state === 'init') this.forget(uplink, key);
    else this.put.run(uplink, key, JSON.stringify(specToJson(spec)), state, Date.now());
  }

  forget(uplink: string, key: string): void {
    this.del.run(uplink, key);
  }

  setBridge(uplink: string, b: RememberedBridge): void {
    this.putUplink.run(uplink, JSON.stringify(b));
  }

  transaction(fn: () => void): void {
    this.db.transaction(fn)();
  }

  close(): void {
    this.db.close();
  }
}
