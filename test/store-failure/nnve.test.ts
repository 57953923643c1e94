/**
 * The nNVE's state store failing for real: its state directory is a 2 MiB tmpfs that the test
 * fills up (SQLite then gets ENOSPC). What was answered must reach the store once it can be
 * written again; meanwhile new associations are refused (reason 2) and health says so.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NnveStore } from '../../src/nnve/store.js';
import { apiPort, get, rig, vm } from '../nnve/fixture.js';
import { smallDisk, until } from './tmpfs.js';

const VNI = 5000;

interface Health {
  store: { ok: boolean; error?: string };
}

test('nNVE on a full disk: new associations refused, answered state written once it can be', async (t) => {
  const disk = smallDisk('snst-');
  const r = await rig(t, { nnve: { stateDir: disk.dir } });
  // Hooks run in the order they were added: this one, added after rig's, stops the daemons
  // (again: stop is idempotent) before the file system goes.
  t.after(async () => {
    await r.close();
    disk.remove();
  });
  const np = apiPort(r.nnve);
  assert.equal((await r.request('associate', vm(1, VNI))).status, 200);
  assert.deepEqual((await get<Health>(np, '/v1/health')).store, { ok: true });

  disk.fill();
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

  disk.free();
  await until('the store is written again', async () => {
    return (await get<Health>(np, '/v1/health')).store.ok;
  });
  assert.equal((await r.request('associate', vm(3, VNI))).status, 200);

  // Everything answered is in the store: VSI 2 (answered while the write failed) too.
  await r.nnve.stop();
  const s = new NnveStore(disk.dir);
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
