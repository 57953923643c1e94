/**
 * Sequences follow the wall clock at the sender, so a receiver configured with
 * `maxSequenceAgeMs` refuses old captures even when it has no sequence stored for the peer
 * (a new port, or a lost state directory).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { KeyStore } from '../../src/auth/keystore.js';
import { SequenceStore, sequenceAt } from '../../src/auth/sequence-store.js';
import { authInput, hmacOf, verifyPdu } from '../../src/vdp/auth.js';
import { ECP_SUBTYPE_VDP } from '../../src/wire/ecp.js';
import { writeKey } from '../harness/keys.js';

const ST = '02:00:00:00:aa:01';
const NNVE = '02:00:00:00:bb:01';
const GROUP = '01:80:c2:00:00:00';

function tmp(t: { after(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'snsc-seq-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('the outgoing counter follows the clock, strictly increasing, one write per second of clock', (t) => {
  const d = tmp(t);
  let clock = 1_000_000; // ms
  const a = new SequenceStore(d, { clockMs: () => clock });
  const s1 = a.nextSequence();
  const s2 = a.nextSequence();
  assert.equal(s1, sequenceAt(clock));
  assert.equal(s2, s1 + 1n, 'within one clock tick: +1');
  clock += 400;
  const s3 = a.nextSequence();
  assert.equal(s3, sequenceAt(clock), 'then it jumps to the clock');
  assert.equal(a.reservations, 1, 'still within the second reserved at the first write');
  clock += 700;
  const s4 = a.nextSequence();
  assert.equal(s4, sequenceAt(clock));
  assert.equal(a.reservations, 2);
  // The clock goes back: the counter does not.
  clock -= 5_000;
  const s5 = a.nextSequence();
  assert.equal(s5, s4 + 1n);
  // A crash (never closed) and a restart with the clock still behind: above all of them.
  const b = new SequenceStore(d, { clockMs: () => clock });
  assert.ok(b.nextSequence() > s5);
  b.close();
  a.close();
});

const PAYLOAD = Uint8Array.from([0x02, 0x01, 0x00]); // any TLV octets

/** A PDU from the station to the group address, signed with what its key store gives now. */
function signed(station: KeyStore): Parameters<typeof verifyPdu>[7] {
  const k = station.signer('eth0', NNVE)!;
  const hmac = hmacOf(k.key, authInput(ST, GROUP, ECP_SUBTYPE_VDP, PAYLOAD, k.keyId, k.sequence));
  return {
    tlv: { kind: 'splitnve-auth', keyId: k.keyId, sequence: k.sequence, hmac },
    signedLength: PAYLOAD.length,
  };
}

const check = (bridge: KeyStore, auth: Parameters<typeof verifyPdu>[7]) =>
  verifyPdu(bridge, 'swp1', ST, ST, GROUP, ECP_SUBTYPE_VDP, PAYLOAD, auth);

test('maxSequenceAgeMs: a capture older than that is a replay even with no sequence stored', (t) => {
  const d = tmp(t);
  const keyFile = writeKey(d, 'st.key');
  let clock = 1_700_000_000_000;
  const sequence = { clockMs: () => clock };
  const station = KeyStore.open(
    { keys: [{ keyId: 1, keyFile }] },
    { role: 'station', stateDir: join(d, 'st'), uplinkMac: () => ST, sequence },
  );
  t.after(() => station.close());
  const open = (name: string, cfg: object): KeyStore => {
    const k = KeyStore.open(
      { keys: [{ station: ST, keyId: 1, keyFile }], ...cfg },
      { role: 'bridge', stateDir: join(d, name), sequence },
    );
    t.after(() => k.close());
    return k;
  };
  const captured = signed(station);
  clock += 300_000;
  const fiveMinutesLater = signed(station);
  // One hour after the capture, nNVEs whose sequence store is empty (lost) check them.
  clock += 3_300_000;
  // Without the option (the default) the old capture passes: the known limit.
  assert.deepEqual(check(open('plain', {}), captured), { ok: true, signed: true });
  const strict = open('strict', { maxSequenceAgeMs: 600_000 });
  const r = check(strict, captured);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.reason, 'replay');
  // What the station signs now passes (clocks in sync)...
  assert.deepEqual(check(strict, signed(station)), { ok: true, signed: true });
  // ...and so does one signed within the age, on an nNVE with nothing stored.
  clock = clock - 3_600_000 + 300_000 + 500_000;
  assert.deepEqual(check(open('recent', { maxSequenceAgeMs: 600_000 }), fiveMinutesLater), {
    ok: true,
    signed: true,
  });
});
