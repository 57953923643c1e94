/** The nNVE's `quotas` section end to end: the tNVE API sees reason 2 beyond a station's quota. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiPort, DaemonPair, get } from '../harness/daemon-pair.js';

test('quotas: a third VSI of a station is refused with reason 2, its two VSIs stay; rate limited too', async (t) => {
  const p = new DaemonPair({
    nnve: { quotas: { maxVsisPerStation: 2, requestsPerSecond: 0.5, requestBurst: 3 } },
  });
  t.after(() => p.close());
  await p.start();
  assert.equal((await p.request('associate', 1)).status, 200);
  assert.equal((await p.request('associate', 2)).status, 200);
  const third = await p.request('associate', 3);
  assert.equal(third.status, 409, JSON.stringify(third.body));
  assert.equal(third.body.reason, 2);
  assert.match(
    String(third.body.detail ?? third.body.message ?? ''),
    /insufficient|quota|resources/i,
  );
  // Keep-alives of the two held VSIs are not limited: they are still there a while later.
  await new Promise((r) => setTimeout(r, 600));
  const vsis = await get<{ state: string }[]>(apiPort(p.nnve), '/v1/vsis');
  assert.deepEqual(
    vsis.map((v) => v.state),
    ['Activated', 'Activated'],
  );
  // The burst of 3 is spent and 0.5 per second refill little: more are refused for the rate.
  const burst = await Promise.all([4, 5, 6].map((n) => p.request('associate', n)));
  assert.ok(burst.every((r) => r.status === 409 && r.body.reason === 2));
  const st = await get<{ vdp: { quotaRefused: number; rateRefused: number } }[]>(
    apiPort(p.nnve),
    '/v1/stations',
  );
  assert.ok(st[0]!.vdp.rateRefused >= 1, JSON.stringify(st[0]!.vdp));
  assert.ok(st[0]!.vdp.quotaRefused >= 1);
});
