/**
 * The nNVE's state store failing for real: its state directory is a 2 MiB tmpfs that the test
 * fills up (SQLite then gets ENOSPC). What was answered must reach the store once it can be
 * written again; meanwhile new associations are refused (reason 2) and health says so.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { NnveStore } from '../../src/nnve/store.js';
import { apiPort, get, rig, vm } from '../nnve/fixture.js';

const VNI = 5000;

interface Health {
  store: { ok: boolean; error?: string };
}

/** Writes zeros to `path` until the file system is full. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
}

async function until(what: string, cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a full disk under the state store: new associations refused, answered state written once it can be', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'snst-'));
  const stateDir = join(base, 'nnve');
  mkdirSync(stateDir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', stateDir]);
  const r = await rig(t, { nnve: { stateDir } });
  // Hooks run in the order they were added: this one, added after rig's, stops the daemons
  // (again: stop is idempotent) before the file system goes.
  t.after(async () => {
    await r.close();
    execFileSync('umount', ['-l', stateDir]);
    rmSync(base, { recursive: true, force: true });
  });
  const np = apiPort(r.nnve);
  assert.equal((await r.request('associate', vm(1, VNI))).status, 200);
  assert.deepEqual((await get<Health>(np, '/v1/health')).store, { ok: true });

  const filler = join(stateDir, 'filler');
  fill(filler);
  // The step whose write fails: its answer still goes (the state is in memory)...
  assert.equal((await r.request('associate', vm(2, VNI))).status, 200);
  const h = await get<Health>(np, '/v1/health');
  assert.equal(h.store.ok, false, 'health tells the store fails');
  assert.match(h.store.error ?? '', /full|SQLITE_FULL|disk/i);
  // ...and from then on every new association is refused, not hard: the station may retry.
  const refused = await r.request('associate', vm(3, VNI));
  assert.equal(refused.status, 409);
  assert.equal(refused.body.reason, 2);
  // what the station holds is kept: a keep-alive of VSI 1 is answered
  assert.equal((await r.request('associate', vm(1, VNI))).status, 200);
  const stats = await get<{ storeErrors: number; events: Record<string, number> }>(np, '/v1/stats');
  assert.ok(stats.storeErrors >= 1);
  assert.equal(stats.events['store-failed'], 1, 'one failure logged, not one per retry');

  rmSync(filler);
  await until('the store is written again', async () => {
    return (await get<Health>(np, '/v1/health')).store.ok;
  });
  assert.equal((await r.request('associate', vm(3, VNI))).status, 200);

  // Everything answered is in the store: VSI 2 (answered while the write failed) too.
  await r.nnve.stop();
  const s = new NnveStore(stateDir);
  try {
    const ids = s
      .loadTsis()
      .map((x) => x.vsi.vsiId)
      .sort();
    assert.deepEqual(ids, [vm(1, VNI).id, vm(2, VNI).id, vm(3, VNI).id]);
    assert.deepEqual(
      s.loadTags().map((x) => [x.vni, x.vid]),
      [[VNI, 100]],
    );
  } finally {
    s.close();
  }
});
