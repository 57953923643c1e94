/**
 * Key rotation without downtime, under load: 40 VSIs keep-alive every 655 ms while requests
 * run back to back; the new key is added on the nNVE (key directory + reload), then on the
 * tNVE (which starts signing with it; the nNVE follows), then the old key is removed on both.
 * No PDU fails authentication, no request fails, no association is lost, and at the end both
 * directions sign with the new key id.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { TnveConfigSchema } from '../../src/tnve/config.js';
import { NnveConfigSchema } from '../../src/nnve/config.js';
import { apiPort, DaemonPair, get, HV_MAC, vdpOf } from '../harness/daemon-pair.js';
import { dashed, writeKey } from '../harness/keys.js';

const VSIS = 40;

test('key rotation under load loses no association and no PDU', async (t) => {
  const base = new DaemonPair();
  const kdir = join(base.dir, 'nnve-keys');
  const sdir = join(base.dir, 'tnve-keys');
  mkdirSync(kdir, { mode: 0o700 });
  mkdirSync(sdir, { mode: 0o700 });
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  writeKey(kdir, `${dashed(HV_MAC)}.1.key`, k1);
  const s1 = writeKey(sdir, 'k1', k1);
  const s2 = writeKey(sdir, 'k2', k2);
  // Keep-alive every 655 ms (expiry after ~1 s): a keep-alive delayed by a loaded machine
  // must not pass for a lost association.
  const evb = { r: 3, rte: 8, rwd: 14, rka: 16 };
  const p = new DaemonPair({
    nnve: { evb, auth: { mode: 'require', keyDir: kdir } },
    tnve: { evb, auth: { mode: 'require', keys: [{ keyId: 1, keyFile: s1 }] } },
  });
  t.after(async () => {
    await p.close();
    await base.close();
  });
  await p.start();
  for (let i = 0; i < VSIS; i++) {
    const r = await p.request(i % 2 ? 'associate' : 'pre-associate-rr', i);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }

  // Load: requests back to back (updates of VSIs 100..), on top of the keep-alives.
  let running = true;
  let done = 0;
  const failed: string[] = [];
  const load = (async () => {
    for (let n = 0; running; n++) {
      const r = await p.request(n % 3 === 2 ? 'de-associate' : 'associate', 100 + (n % 5));
      if (r.status !== 200) failed.push(`${r.status} ${JSON.stringify(r.body)}`);
      done++;
    }
  })();
  const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const seqMark = (): number => p.swTap.received.length;

  await pause(800);
  // 1. The nNVE learns key 2 (new file in its key directory, then SIGHUP's reload).
  writeKey(kdir, `${dashed(HV_MAC)}.2.key`, k2);
  assert.deepEqual(p.nnve.reload(p.nnveCfg), ['auth']);
  await pause(800);
  // 2. The tNVE gets key 2 and signs with it; the nNVE answers with key 2 from then on.
  const withBoth = TnveConfigSchema.parse({
    ...p.tnveCfg,
    auth: {
      mode: 'require',
      keys: [
        { keyId: 1, keyFile: s1 },
        { keyId: 2, keyFile: s2 },
      ],
    },
  });
  assert.deepEqual(p.tnve.reload(withBoth), ['auth']);
  const afterSwitch = seqMark();
  await pause(800);
  // 3. Key 1 goes away on both sides.
  rmSync(join(kdir, `${dashed(HV_MAC)}.1.key`));
  assert.deepEqual(p.nnve.reload(NnveConfigSchema.parse(p.nnveCfg)), ['auth']);
  const only2 = TnveConfigSchema.parse({
    ...p.tnveCfg,
    auth: { mode: 'require', keys: [{ keyId: 2, keyFile: s2 }] },
  });
  assert.deepEqual(p.tnve.reload(only2), ['auth']);
  const sentMark = p.swTap.sent.length;
  await pause(800);
  running = false;
  await load;

  assert.deepEqual(failed, [], 'every request during the rotation succeeded');
  assert.ok(done >= 20, `load ran: ${done} requests`);
  for (const d of [p.nnve, p.tnve]) {
    const v = await get<{ totals: Record<string, number> }>(apiPort(d), '/v1/auth');
    assert.deepEqual(v.totals, { unsigned: 0, 'unknown-key': 0, 'bad-hmac': 0, replay: 0 });
  }
  // No association was lost: the 40 VSIs are all there, none ever went to Init.
  const vsis = await get<{ vsi: string }[]>(apiPort(p.nnve), '/v1/vsis');
  for (let i = 0; i < VSIS; i++) {
    const id = `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
    assert.ok(
      vsis.some((v) => v.vsi === id),
      `VSI ${i} still there`,
    );
  }
  const toInit = p.nlog.events('tsi.state', { to: 'Init' });
  assert.ok(toInit.length > 0, 'the load de-associated VSIs 100.. (so Init events are logged)');
  const lost = toInit.filter((l) => Number.parseInt(String(l.vsi).slice(-12), 16) < VSIS);
  assert.deepEqual(lost, []);
  // Keep-alives kept coming: the station sent PDUs signed with key 2 after the switch...
  const later = p.swTap.received
    .slice(afterSwitch)
    .map(vdpOf)
    .filter((x) => x?.auth);
  assert.ok(later.length > 0);
  assert.equal(later[later.length - 1]!.auth!.tlv.keyId, 2);
  // ...and the bridge answered with key 2 once key 1 was gone (in fact from the switch on).
  const answers = p.swTap.sent
    .slice(sentMark)
    .map(vdpOf)
    .filter((x) => x?.auth);
  assert.ok(answers.length > 0);
  assert.ok(answers.every((a) => a!.auth!.tlv.keyId === 2));
});
