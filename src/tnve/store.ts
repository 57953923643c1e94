/**
 * tNVE state in SQLite: per uplink, every VSI the orchestrator wants (its spec, with the VIDs
 * the nNVE assigned, and the mode it should be in), and what was negotiated with the nNVE.
 * Written before a request is sent, so that a restarted agent re-asserts exactly that.
 * The lifecycle agent keeps one record per VM (its state, interfaces and per-uplink VDP state)
 * and the active uplink of each VN; VSIs owned by a VM are not in the per-VSI table.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RememberedBridge } from '../node/station-node.js';
import { specFromJson, specToJson } from '../vdp/spec-json.js';
import type { VsiSpec, VsiState } from '../vdp/types.js';
import type { VmRecord } from './model.js';

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
  private readonly putVmStmt: Database.Statement;
  private readonly delVmStmt: Database.Statement;
  private readonly putActiveStmt: Database.Statement;
  private readonly delActiveStmt: Database.Statement;

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
      CREATE TABLE IF NOT EXISTS vm (name TEXT PRIMARY KEY, record TEXT NOT NULL, updated INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS active_uplink (vni INTEGER PRIMARY KEY, uplink TEXT NOT NULL);
    `);
    this.putVmStmt = this.db.prepare(
      'INSERT INTO vm (name, record, updated) VALUES (?, ?, ?) ' +
        'ON CONFLICT (name) DO UPDATE SET record = excluded.record, updated = excluded.updated',
    );
    this.delVmStmt = this.db.prepare('DELETE FROM vm WHERE name = ?');
    this.putActiveStmt = this.db.prepare(
      'INSERT INTO active_uplink (vni, uplink) VALUES (?, ?) ON CONFLICT (vni) DO UPDATE SET uplink = excluded.uplink',
    );
    this.delActiveStmt = this.db.prepare('DELETE FROM active_uplink WHERE vni = ?');
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

  /** VM records of the lifecycle agent (its whole state per VM, as JSON). */
  loadVms(): VmRecord[] {
    const rows = this.db.prepare('SELECT record FROM vm ORDER BY name').all() as {
      record: string;
    }[];
    return rows.map((r) => JSON.parse(r.record) as VmRecord);
  }

  putVm(rec: VmRecord): void {
    this.putVmStmt.run(rec.name, JSON.stringify(rec), Date.now());
  }

  deleteVm(name: string): void {
    this.delVmStmt.run(name);
  }

  loadActives(): Map<number, string> {
    const rows = this.db.prepare('SELECT vni, uplink FROM active_uplink').all() as {
      vni: number;
      uplink: string;
    }[];
    return new Map(rows.map((r) => [r.vni, r.uplink]));
  }

  setActive(vni: number, uplink: string | null): void {
    if (uplink === null) this.delActiveStmt.run(vni);
    else this.putActiveStmt.run(vni, uplink);
  }

  /** Replaces everything with the agent's whole state in one transaction (after failed writes). */
  rewrite(state: {
    vsis: readonly StoredVsi[];
    bridges: ReadonlyMap<string, RememberedBridge>;
    vms: readonly VmRecord[];
    actives: ReadonlyMap<number, string>;
  }): void {
    this.db.transaction(() => {
      this.db.exec(
        'DELETE FROM vsi; DELETE FROM uplink; DELETE FROM vm; DELETE FROM active_uplink;',
      );
      for (const v of state.vsis) this.set(v.uplink, v.key, v.spec, v.state);
      for (const [u, b] of state.bridges) this.setBridge(u, b);
      for (const r of state.vms) this.putVm(r);
      for (const [vni, u] of state.actives) this.setActive(vni, u);
    })();
  }

  transaction(fn: () => void): void {
    this.db.transaction(fn)();
  }

  close(): void {
    this.db.close();
  }
}
