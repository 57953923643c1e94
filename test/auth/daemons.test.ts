/**
 * Req-11 between real nNVE and tNVE daemons (in this process, in-memory cable with taps):
 * mutual authentication; every kind of failure rejected, counted and logged on the side that
 * sees it; replay of captured PDUs rejected, also after both daemons restarted.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { dashed, writeKey } from '../harness/keys.js';
import {
  apiPort,
  DaemonPair,
  get,
  HV_MAC,
  vdpOf,
  type PairOptions,
} from '../harness/daemon-pair.js';
import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

interface AuthView {
  totals: Record<string, number>;
  authenticated: number;
  peers: { local: string; peer: string; status: string; failures: Record<string, number> }[];
}

/** A pair whose nNVE requires key 1 of the station; the tNVE is configured by `tnveAuth`. */
async function pairWith(
  t: { after(fn: () => Promise<void>): void },
  tnveAuth: (dir: string, key: Buffer) => Record<string, unknown> | undefined,
  extra: PairOptions = {},
): Promise<DaemonPair> {
  const key = randomBytes(32);
  const probe = new DaemonPair(extra);
  const kdir = join(probe.dir, 'keys');
  mkdirSync(kdir, { mode: 0o700 });
  writeKey(kdir, `${dashed(HV_MAC)}.1.key`, key);
  const ta = tnveAuth(kdir, key);
  const pair = new DaemonPair({
    ...extra,
    nnve: {
      ...extra.nnve,
      auth: {
        mode: 'require',
        keyDir: kdir,
        ...(extra.nnve?.auth as Record<string, unknown> | undefined),
      },
    },
    tnve: { ...(ta ? { auth: ta } : {}), ...extra.tnve },
  });
  // The probe only provided a directory; keep it until the end.
  t.after(async () => {
    await pair.close();
    await probe.close();
  });
  return pair.start();
}

const sameKey = (kdir: string): Record<string, unknown> => ({
  mode: 'require',
  keys: [{ keyId: 1, keyFile: join(kdir, `${dashed(HV_MAC)}.1.key`) }],
});

async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  ms = 5000,
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('mutual authentication: every PDU both ways is signed, sequences increase, both sides authenticated', async (t) => {
  const p = await pairWith(t, sameKey);
  const r = await p.request('associate', 1);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.state, 'Activated');
  await p.request('pre-associate-rr', 2);
  // Let keep-alives flow a little.
  await new Promise((r) => setTimeout(r, 800));
  for (const [dir, frames] of [
    ['station->bridge', p.swTap.received],
    ['bridge->station', p.swTap.sent],
  ] as const) {
    // ECP retransmissions repeat a frame octet for octet: count each frame once.
    const seen = new Set<string>();
    const unique = frames.filter((f) => {
      const k = Buffer.from(f).toString('hex');
      return !seen.has(k) && seen.add(k);
    });
    const pdus = unique.map(vdpOf).filter((x) => x !== undefined);
    assert.ok(pdus.length >= 3, `${dir}: ${pdus.length} PDUs`);
    let last = -1n;
    for (const pdu of pdus) {
      assert.ok(pdu.auth, `${dir}: every VDP PDU carries the authentication TLV`);
      assert.equal(pdu.auth.tlv.keyId, 1);
      assert.ok(pdu.auth.tlv.sequence > last, `${dir}: sequences increase`);
      last = pdu.auth.tlv.sequence;
    }
  }
  const nv = await get<AuthView>(apiPort(p.nnve), '/v1/auth');
  const tv = await get<AuthView>(apiPort(p.tnve), '/v1/auth');
  for (const v of [nv, tv]) {
    assert.deepEqual(v.totals, { unsigned: 0, 'unknown-key': 0, 'bad-hmac': 0, replay: 0 });
    assert.equal(v.peers[0]?.status, 'authenticated');
  }
  assert.equal(p.nlog.events('auth.status', { status: 'authenticated' }).length, 1);
  assert.equal(p.tlog.events('auth.status', { status: 'authenticated' }).length, 1);
});

/** Each way a station can fail: nothing is associated, the nNVE counts and logs the reason. */
const failures: {
  name: string;
  reason: string;
  tnveAuth: (kdir: string, key: Buffer) => Record<string, unknown> | undefined;
  tamper?: boolean;
}[] = [
  {
    name: 'unsigned (station without authentication)',
    reason: 'unsigned',
    tnveAuth: () => undefined,
  },
  {
    name: 'wrong key (same key id, other key)',
    reason: 'bad-hmac',
    tnveAuth: (kdir) => ({
      mode: 'require',
      keys: [{ keyId: 1, keyFile: writeKey(kdir, 'other.key') }],
    }),
  },
  {
    name: 'unknown key id',
    reason: 'unknown-key',
    tnveAuth: (kdir, key) => ({
      mode: 'require',
      keys: [{ keyId: 9, keyFile: writeKey(kdir, 'nine.key', key) }],
    }),
  },
  {
    name: 'bad HMAC (PDU altered in flight)',
    reason: 'bad-hmac',
    tnveAuth: sameKey,
    tamper: true,
  },
];

for (const f of failures) {
  test(`rejected: ${f.name} -> ${f.reason}, counted and logged, nothing associated`, async (t) => {
    const p = await pairWith(t, f.tnveAuth, { tnve: { requestTimeoutMs: 1500, maxAttempts: 2 } });
    if (f.tamper) {
      p.swTap.alter = (frame, dir) => {
        if (dir !== 'in' || !vdpOf(frame)) return frame;
        const g = frame.slice();
        // Octet 14+4+18+2+3: the VSI type id of the first VSI TLV (after Manager ID TLV).
        g[14 + 4 + 18 + 2 + 3]! ^= 0x01;
        return g;
      };
    }
    const r = await p.request('associate', 1);
    assert.notEqual(r.status, 200, JSON.stringify(r.body));
    const v = await get<AuthView>(apiPort(p.nnve), '/v1/auth');
    assert.ok(v.totals[f.reason]! >= 1, JSON.stringify(v.totals));
    for (const [k, n] of Object.entries(v.totals)) if (k !== f.reason) assert.equal(n, 0, k);
    const peer = v.peers.find((x) => x.peer === HV_MAC);
    assert.ok(peer && peer.failures[f.reason]! >= 1 && peer.status === 'failed');
    const lines = p.nlog.events('auth.failed', { reason: f.reason, peer: HV_MAC });
    assert.ok(lines.length >= 1, 'logged with the reason');
    assert.equal(await get<unknown[]>(apiPort(p.nnve), '/v1/vsis').then((x) => x.length), 0);
  });
}

test('the station authenticates the bridge too: an altered response is dropped, counted, logged', async (t) => {
  const p = await pairWith(t, sameKey, { tnve: { requestTimeoutMs: 1500, maxAttempts: 2 } });
  p.hvTap.alter = (frame, dir) => {
    if (dir !== 'in' || !vdpOf(frame)) return frame;
    const g = frame.slice();
    g[g.length - 10]! ^= 0x80; // inside the HMAC
    return g;
  };
  const r = await p.request('associate', 1);
  assert.notEqual(r.status, 200);
  const v = await get<AuthView>(apiPort(p.tnve), '/v1/auth');
  assert.ok(v.totals['bad-hmac']! >= 1, JSON.stringify(v.totals));
  assert.ok(p.tlog.events('auth.failed', { reason: 'bad-hmac' }).length >= 1);
});

/**
 * Associates VSI 1, de-associates it (that PDU is captured), associates it again; returns the
 * captured De-Associate frame (station -> bridge) and a signed bridge -> station frame.
 */
async function captureOldPdus(
  p: DaemonPair,
): Promise<{ deassoc: Uint8Array; response: Uint8Array }> {
  assert.equal((await p.request('associate', 1)).status, 200);
  const from = p.swTap.received.length;
  assert.equal((await p.request('de-associate', 1)).status, 200);
  const deassoc = p.swTap.received
    .slice(from)
    .find((f) => vdpOf(f)?.vsis.some((v) => v.tlv.type === 4));
  assert.ok(deassoc, 'captured the De-Associate');
  const response = p.hvTap.received.find((f) => vdpOf(f)?.auth);
  assert.ok(response, 'captured a bridge PDU');
  assert.equal((await p.request('associate', 1)).status, 200);
  return { deassoc, response };
}

async function assertReplayRejected(
  p: DaemonPair,
  old: { deassoc: Uint8Array; response: Uint8Array },
): Promise<void> {
  const nBefore = (await get<AuthView>(apiPort(p.nnve), '/v1/auth')).totals.replay!;
  const tBefore = (await get<AuthView>(apiPort(p.tnve), '/v1/auth')).totals.replay!;
  p.swTap.inject([old.deassoc]);
  p.hvTap.inject([old.response]);
  await waitFor('both replays counted', async () => {
    const n = await get<AuthView>(apiPort(p.nnve), '/v1/auth');
    const s = await get<AuthView>(apiPort(p.tnve), '/v1/auth');
    return n.totals.replay! > nBefore && s.totals.replay! > tBefore;
  });
  // The replayed De-Associate did nothing: VSI 1 is still Activated on the nNVE.
  const vsis = await get<{ state: string }[]>(apiPort(p.nnve), '/v1/vsis');
  assert.deepEqual(
    vsis.map((v) => v.state),
    ['Activated'],
  );
  assert.ok(p.nlog.events('auth.failed', { reason: 'replay', peer: HV_MAC }).length >= 1);
  assert.ok(p.tlog.events('auth.failed', { reason: 'replay' }).length >= 1);
}

test('replay of captured PDUs (a De-Associate, a bridge response) is rejected by both sides', async (t) => {
  const p = await pairWith(t, sameKey);
  const old = await captureOldPdus(p);
  await assertReplayRejected(p, old);
});

test('replay is still rejected after both daemons restart (last accepted sequences persist)', async (t) => {
  const p = await pairWith(t, sameKey);
  const old = await captureOldPdus(p);
  await p.tnve.stop();
  await p.nnve.stop();
  await p.startNnve(true);
  await p.startTnve(true);
  // The restarted station re-asserts VSI 1; wait until the nNVE has heard it signed.
  await waitFor('re-assertion after restart', async () => {
    const v = await get<AuthView>(apiPort(p.nnve), '/v1/auth');
    return v.peers.some((x) => x.status === 'authenticated');
  });
  await assertReplayRejected(p, old);
  // And the restarted pair still works: new PDUs carry higher sequences.
  const r = await p.request('associate', 2);
  assert.equal(r.status, 200, JSON.stringify(r.body));
});

test('per-port policy: `modes.swp1: prefer` on a `require` nNVE accepts an unsigned station there, still rejects a wrong key', async (t) => {
  // Unsigned station: accepted on the prefer port, recorded as unsigned, nothing counted failed.
  const u = await pairWith(t, () => undefined, {
    nnve: { auth: { mode: 'require', modes: { swp1: 'prefer' } } },
  });
  const ok = await u.request('associate', 1);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const uv = await get<AuthView & { modes: Record<string, string> }>(apiPort(u.nnve), '/v1/auth');
  assert.deepEqual(uv.modes, { swp1: 'prefer' });
  assert.equal(uv.peers.find((x) => x.peer === HV_MAC)?.status, 'unsigned');
  assert.equal(uv.totals.unsigned, 0, 'not a failure under prefer');
  // A station that signs with the wrong key is rejected under prefer too.
  const w = await pairWith(
    t,
    (kdir) => ({ mode: 'require', keys: [{ keyId: 1, keyFile: writeKey(kdir, 'other.key') }] }),
    {
      nnve: { auth: { mode: 'require', modes: { swp1: 'prefer' } } },
      tnve: { requestTimeoutMs: 1500, maxAttempts: 2 },
    },
  );
  const bad = await w.request('associate', 1);
  assert.notEqual(bad.status, 200, JSON.stringify(bad.body));
  const wv = await get<AuthView>(apiPort(w.nnve), '/v1/auth');
  assert.ok(wv.totals['bad-hmac']! >= 1, JSON.stringify(wv.totals));
  assert.equal(await get<unknown[]>(apiPort(w.nnve), '/v1/vsis').then((x) => x.length), 0);
});
