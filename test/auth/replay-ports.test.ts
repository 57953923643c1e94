/**
 * The nNVE's replay window is per station across all its ports: a signed PDU captured on one
 * port and replayed on another is a replay (the HMAC does not cover the receiving port), while
 * a station that really moves to another port, with its next sequences, is accepted. The key
 * store keeps that window in SQLite and folds the rows of the old per-port windows into it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { KeyStore } from '../../src/auth/keystore.js';
import { MemoryAuthHooks } from '../../src/auth/memory.js';
import { SequenceStore } from '../../src/auth/sequence-store.js';
import { seededRandom } from '../../src/core/random.js';
import { lldpStationFrame, vdpRequestFrame } from '../../src/fuzz/frames.js';
import { BridgeNode } from '../../src/node/bridge-node.js';
import type { AuthHooks } from '../../src/vdp/auth.js';
import { ECHO_POLICY } from '../../src/vdp/bridge.js';
import { writeKey } from '../harness/keys.js';

const ST = '02:00:00:00:aa:01';
const ST2 = '02:00:00:00:aa:02';
const KEY = new Uint8Array(32).fill(7);

function bridge(auth: AuthHooks): BridgeNode {
  const n = new BridgeNode({
    ports: [
      { name: 'swpA', mac: '02:00:00:00:bb:01' },
      { name: 'swpB', mac: '02:00:00:00:bb:02' },
    ],
    profile: 'splitnve',
    policy: ECHO_POLICY,
    random: seededRandom(3),
    auth,
  });
  n.start(0);
  return n;
}

const VSI = Uint8Array.from({ length: 16 }, (_, i) => (i === 15 ? 1 : 0));
const associate = (ecpSequence: number, sequence: bigint): Uint8Array =>
  vdpRequestFrame({
    source: ST,
    ecpSequence,
    vsiId: VSI,
    type: 3,
    sign: { keyId: 1, key: KEY, sequence },
  });

function where(n: BridgeNode): string[] {
  return n
    .vsis()
    .filter((v) => v.vsi.state === 'associated')
    .map((v) => v.port);
}

for (const mode of ['require', 'prefer'] as const) {
  test(`${mode}: an Associate captured on port A and replayed on port B is a replay; the TSI stays on A`, () => {
    const auth = new MemoryAuthHooks({
      role: 'bridge',
      mode,
      keys: new Map([[ST, new Map([[1, KEY]])]]),
    });
    const n = bridge(auth);
    // Under `prefer` PDUs are checked with stations that announce the splitnve profile: the
    // station (or whoever speaks for it) does so on both ports.
    if (mode === 'prefer') {
      for (const port of ['swpA', 'swpB'])
        n.handleFrame(port, lldpStationFrame(ST, { splitnve: true }), 500);
    }
    const captured = associate(10, 1000n);
    n.handleFrame('swpA', captured, 1000);
    assert.deepEqual(where(n), ['swpA']);
    const events = n.handleFrame('swpB', captured, 2000);
    assert.equal(n.stats.authFailed.replay, 1, 'the replay is counted');
    const failed = events.flatMap((o) =>
      o.type === 'event' && o.event.type === 'auth-failed' ? [o.event] : [],
    );
    assert.deepEqual(
      failed.map((e) => [e.port, e.station, e.reason, e.sequence]),
      [['swpB', ST, 'replay', '1000']],
      'and reported (the daemon logs and counts auth-failed events)',
    );
    assert.deepEqual(where(n), ['swpA'], 'the VSI was not taken away from port A');
    // The station really moving to port B, with its next sequence, is accepted.
    n.handleFrame('swpB', associate(11, 1001n), 3000);
    assert.deepEqual(where(n), ['swpB']);
    // And what it sent before (on A or B) stays a replay on either port.
    n.handleFrame('swpA', associate(12, 1000n), 4000);
    assert.equal(n.stats.authFailed.replay, 2);
    assert.deepEqual(where(n), ['swpB']);
  });
}

test('key store (nNVE): one window per station across ports, persisted, old per-port rows folded', (t) => {
  const d = mkdtempSync(join(tmpdir(), 'snsc-replay-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  const state = join(d, 'state');
  // Rows as an nNVE that kept a window per (port, station) left them.
  const old = new SequenceStore(state);
  old.accepted('swp1', ST, 42n);
  old.accepted('swp2', ST, 50n);
  old.accepted('swp1', ST2, 7n);
  old.close();
  const keyFile = writeKey(d, 'st.key');
  const keys = {
    keys: [
      { station: ST, keyId: 1, keyFile },
      { station: ST2, keyId: 1, keyFile },
    ],
  };
  const a = KeyStore.open(keys, { role: 'bridge', stateDir: state });
  // The highest of the old rows, on every port, including ports never heard on.
  for (const port of ['swp1', 'swp2', 'swp9']) {
    assert.equal(a.lastAccepted(port, ST), 50n, port);
    assert.equal(a.lastAccepted(port, ST2), 7n, port);
  }
  assert.equal(a.sequences.peers, 2, 'one row per station');
  a.accepted('swp3', ST, 60n);
  assert.equal(a.lastAccepted('swp1', ST), 60n);
  a.close();
  const b = KeyStore.open(keys, { role: 'bridge', stateDir: state });
  t.after(() => b.close());
  assert.equal(b.lastAccepted('swp2', ST), 60n, 'after a restart too');
  assert.equal(b.lastAccepted('swp2', ST2), 7n);
  assert.equal(b.sequences.peers, 2);
});

test('key store (tNVE): the window stays per uplink (the nNVE numbers all its sessions from one counter)', (t) => {
  const d = mkdtempSync(join(tmpdir(), 'snsc-replay-st-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  const keyFile = writeKey(d, 'st.key');
  const s = KeyStore.open(
    { keys: [{ keyId: 1, keyFile }] },
    { role: 'station', stateDir: join(d, 'state'), uplinkMac: (u) => (u === 'eth0' ? ST : ST2) },
  );
  t.after(() => s.close());
  const NNVE = '02:00:00:00:bb:01';
  s.accepted('eth0', NNVE, 9n);
  assert.equal(s.lastAccepted('eth0', NNVE), 9n);
  assert.equal(s.lastAccepted('eth1', NNVE), undefined);
});
