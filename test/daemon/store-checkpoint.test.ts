import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { NnveStore } from '../../src/nnve/store.js';
import { tsiEvent } from './store-rows.js';

const PAGE = 4096;

test('the checkpoint worker keeps the WAL bounded while the daemon commits, and nothing is lost', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'snp2-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const wal = join(dir, 'nnve.sqlite-wal');
  const errors: Error[] = [];
  const maxWalPages = 500;
  const store = new NnveStore(dir, {
    checkpointIntervalMs: 5,
    maxWalPages,
    onError: (e) => errors.push(e),
  });
  t.after(() => store.close());
  // The worker's thread starts in the background: wait for its first checkpoint.
  for (let i = 0; i < 500 && store.checkpointStats.checkpoints === 0; i++) await sleep(10);
  assert.ok(store.checkpointStats.checkpoints > 0, 'the worker checkpoints an idle store');
  // 6000 commits of one TSI each, in rounds of 400 written without a pause (~900 WAL frames,
  // more than maxWalPages). With autocheckpoint off on the store's own connection and no worker
  // the WAL would reach ~55 MB. After each round the test waits for the worker's next checkpoint
  // (so that a loaded machine starving the worker cannot make the WAL grow, only slower).
  const rows = 6000;
  const round = 400;
  let maxWalBytes = 0;
  for (let n = 0; n < rows; n++) {
    store.apply([tsiEvent(n)], () => []);
    if (n % round === round - 1) {
      maxWalBytes = Math.max(maxWalBytes, statSync(wal).size);
      const seen = store.checkpointStats.checkpoints;
      for (let i = 0; i < 500 && store.checkpointStats.checkpoints === seen; i++) await sleep(10);
    }
  }
  const st = { ...store.checkpointStats };
  assert.deepEqual(errors, []);
  assert.equal(st.workerAlive, true);
  // A WAL over maxWalPages at a checkpoint made the worker force a RESTART.
  assert.ok(st.forced > 0, `forced checkpoints (stats ${JSON.stringify(st)})`);
  // A commit starts the WAL over once a checkpoint has copied all of it (or a forced one): the
  // WAL holds about one round, never the ~14 000 frames written.
  const bound = 4000 * (PAGE + 24);
  assert.ok(
    maxWalBytes < bound,
    `WAL reached ${maxWalBytes} B (bound ${bound} B; stats ${JSON.stringify(st)})`,
  );
  store.close();
  // Closing checkpoints everything and removes the WAL.
  assert.equal(existsSync(wal) ? statSync(wal).size : 0, 0);

  const again = new NnveStore(dir);
  t.after(() => again.close());
  const loaded = again.loadTsis();
  assert.equal(loaded.length, rows);
  assert.deepEqual(
    new Set(loaded.map((l) => l.vsi.vsiId)),
    new Set(Array.from({ length: rows }, (_, n) => `id-${n}`)),
  );
});

test('a store killed without close keeps every committed row (none checkpointed yet)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'snp2-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const storeJs = new URL('../../src/nnve/store.js', import.meta.url).href;
  const rowsJs = new URL('./store-rows.js', import.meta.url).href;
  const rows = 300;
  // A child commits the rows with checkpoints far apart (they stay in the WAL), says so, and is
  // killed with SIGKILL: no close, no checkpoint.
  const code = `
    const { NnveStore } = await import(${JSON.stringify(storeJs)});
    const { tsiEvent } = await import(${JSON.stringify(rowsJs)});
    const s = new NnveStore(${JSON.stringify(dir)}, { checkpointIntervalMs: 3600000 });
    for (let n = 0; n < ${rows}; n++) s.apply([tsiEvent(n)], () => []);
    process.stdout.write('committed\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      if (b.toString().includes('committed')) resolve();
    });
    child.on('exit', (c) => reject(new Error(`child exited (code ${c}) before committing`)));
  });
  assert.ok(statSync(join(dir, 'nnve.sqlite-wal')).size > 0, 'the rows are in the WAL');
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;

  const again = new NnveStore(dir);
  t.after(() => again.close());
  assert.equal(again.loadTsis().length, rows);
});
