/**
 * The key store on its own: key files and their permissions, the key directory, two keys per
 * station and who signs, reload all-or-nothing, sequences that never repeat across restarts
 * and crashes, last-accepted sequences that survive a restart.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { KeyStore, readKeyFile } from '../../src/auth/keystore.js';
import { SequenceStore } from '../../src/auth/sequence-store.js';
import { dashed, writeKey } from '../harness/keys.js';

const ST = '02:00:00:00:aa:01';
const ST2 = '02:00:00:00:aa:02';

function tmp(t: { after(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'sns-keys-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('key files: group/world access, wrong content and wrong sizes are refused with the file named', (t) => {
  const d = tmp(t);
  const good = writeKey(d, 'good.key');
  assert.equal(readKeyFile(good).length, 32);
  for (const mode of [0o640, 0o604, 0o620, 0o644, 0o660]) {
    const p = writeKey(d, `m${mode.toString(8)}.key`);
    chmodSync(p, mode);
    assert.throws(
      () => readKeyFile(p),
      new RegExp(`key file ${p}: mode 0?${mode.toString(8)} lets group or others access it`),
    );
  }
  const text = join(d, 'text.key');
  writeFileSync(text, 'not hex at all\n', { mode: 0o600 });
  assert.throws(() => readKeyFile(text), /expected the key as hex digits/);
  const short = join(d, 'short.key');
  writeFileSync(short, '00112233445566778899aabbccddee\n', { mode: 0o600 });
  assert.throws(() => readKeyFile(short), /key of 15 octets; use 16 to 64/);
  assert.throws(() => readKeyFile(join(d, 'missing.key')), /missing\.key: ENOENT/);
  assert.throws(() => readKeyFile(d), /not a regular file/);
});

test('key directory: <mac>.<id>.key files, other names ignored, a writable directory refused', (t) => {
  const d = tmp(t);
  const kd = join(d, 'keys');
  mkdirSync(kd, { mode: 0o700 });
  writeKey(kd, `${dashed(ST)}.1.key`);
  writeKey(kd, `${dashed(ST)}.2.key`);
  writeKey(kd, `${dashed(ST2)}.7.key`);
  writeFileSync(join(kd, 'README'), 'keys live here\n');
  const ks = KeyStore.open({ keyDir: kd }, { role: 'bridge', stateDir: join(d, 's1') });
  t.after(() => ks.close());
  assert.deepEqual(ks.keyIds(ST), [1, 2]);
  assert.deepEqual(ks.keyIds(ST2), [7]);
  assert.equal(ks.knows('p', ST), true);
  assert.equal(ks.knows('p', '02:00:00:00:aa:03'), false);
  // A third key for one station: refused, naming the station and the ids.
  writeKey(kd, `${dashed(ST)}.3.key`);
  assert.throws(
    () => KeyStore.open({ keyDir: kd }, { role: 'bridge', stateDir: join(d, 's2') }),
    /station 02:00:00:00:aa:01 has 3 keys \(1, 2, 3\); at most 2/,
  );
  rmSync(join(kd, `${dashed(ST)}.3.key`));
  chmodSync(kd, 0o777);
  assert.throws(
    () => KeyStore.open({ keyDir: kd }, { role: 'bridge', stateDir: join(d, 's3') }),
    /key directory .*: mode 777 lets group or others write to it/,
  );
});

test('the nNVE needs a station for every key; the same key id twice is refused', (t) => {
  const d = tmp(t);
  const k = writeKey(d, 'a.key');
  assert.throws(
    () => KeyStore.open({ keys: [{ keyId: 1, keyFile: k }] }, { role: 'bridge', stateDir: d }),
    /every key of the nNVE needs its `station` MAC/,
  );
  assert.throws(
    () =>
      KeyStore.open(
        {
          keys: [
            { station: ST, keyId: 1, keyFile: k },
            { station: ST, keyId: 1, keyFile: k },
          ],
        },
        { role: 'bridge', stateDir: d },
      ),
    /key id 1 of station 02:00:00:00:aa:01 given twice/,
  );
});

test('signing: the station signs with the newest key, the bridge answers with the key the station used', (t) => {
  const d = tmp(t);
  const k1 = writeKey(d, '1.key');
  const k2 = writeKey(d, '2.key');
  const keys = [
    { station: ST, keyId: 1, keyFile: k1 },
    { station: ST, keyId: 2, keyFile: k2 },
  ];
  const station = KeyStore.open(
    { keys: keys.map(({ keyId, keyFile }) => ({ keyId, keyFile })) },
    { role: 'station', stateDir: join(d, 'st'), uplinkMac: () => ST },
  );
  const bridge = KeyStore.open({ keys }, { role: 'bridge', stateDir: join(d, 'br') });
  t.after(() => {
    station.close();
    bridge.close();
  });
  assert.equal(station.signer('eth0', '02:00:00:00:bb:01')!.keyId, 2);
  // The bridge has heard nothing yet: newest.
  assert.equal(bridge.signer('swp1', ST)!.keyId, 2);
  // It accepted a PDU signed with key 1: it answers with key 1.
  assert.ok(bridge.key('swp1', ST, 1));
  bridge.accepted('swp1', ST, 10n);
  assert.equal(bridge.signer('swp1', ST)!.keyId, 1);
  // Key 1 removed (reload): back to the newest it has.
  assert.deepEqual(bridge.reload({ keys: [keys[1]!] }), { ok: true, stations: 1, keys: 1 });
  assert.equal(bridge.signer('swp1', ST)!.keyId, 2);
  assert.equal(bridge.key('swp1', ST, 1), undefined);
  // No key for a station: nothing to sign with.
  assert.equal(bridge.signer('swp1', ST2), undefined);
});

test('reload is all or nothing: a bad file keeps the previous keys and says which file', (t) => {
  const d = tmp(t);
  const k1 = writeKey(d, '1.key');
  const ks = KeyStore.open(
    { keys: [{ station: ST, keyId: 1, keyFile: k1 }] },
    { role: 'bridge', stateDir: join(d, 's') },
  );
  t.after(() => ks.close());
  const bad = writeKey(d, 'bad.key');
  chmodSync(bad, 0o644);
  const r = ks.reload({
    keys: [
      { station: ST, keyId: 1, keyFile: k1 },
      { station: ST2, keyId: 1, keyFile: bad },
    ],
  });
  assert.equal(r.ok, false);
  assert.match((r as { error: string }).error, /bad\.key: mode 644/);
  assert.deepEqual(ks.keyIds(ST), [1]);
  assert.deepEqual(ks.keyIds(ST2), []);
  assert.equal(ks.stats.reloadFailures, 1);
});

test('sequences increase strictly and never repeat across a clean restart or a crash', (t) => {
  const d = tmp(t);
  let clock = 1_000; // ms: floor 1e6 µs × 1024
  const opts = { block: 10, clockMs: () => clock, reserveAheadMs: 0 };
  const a = new SequenceStore(d, opts);
  const seen: bigint[] = [];
  for (let i = 0; i < 25; i++) seen.push(a.nextSequence());
  assert.equal(seen[0], 1_000_000n * 1024n);
  for (let i = 1; i < seen.length; i++) assert.equal(seen[i], seen[i - 1]! + 1n);
  assert.equal(a.reservations, 3, 'one write per block of 10');
  // A crash: the store is never closed; a new one opens while the old file is as it was.
  clock = 0; // and the clock went back to 1970
  const b = new SequenceStore(d, opts);
  const after = b.nextSequence();
  assert.ok(after > seen[seen.length - 1]!, `${after} must be above ${seen[seen.length - 1]}`);
  b.close();
  a.close();
  // The state directory is lost, but the clock moved on: still above.
  const fresh = mkdtempSync(join(tmpdir(), 'sns-keys-fresh-'));
  t.after(() => rmSync(fresh, { recursive: true, force: true }));
  clock = 2_000;
  const c = new SequenceStore(fresh, opts);
  assert.ok(c.nextSequence() > after);
  c.close();
});

test('last accepted sequences survive a restart', (t) => {
  const d = tmp(t);
  const a = new SequenceStore(d);
  a.accepted('swp1', ST, 41n);
  a.accepted('swp1', ST, 42n);
  a.accepted('swp2', ST2, 7n);
  a.close();
  const b = new SequenceStore(d);
  t.after(() => b.close());
  assert.equal(b.lastAccepted('swp1', ST), 42n);
  assert.equal(b.lastAccepted('swp2', ST2), 7n);
  assert.equal(b.lastAccepted('swp1', ST2), undefined);
  assert.equal(b.peers, 2);
});
