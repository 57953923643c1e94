import assert from 'node:assert/strict';
import { test } from 'node:test';
import { http, startOpsPair, STATION_MAC, vsiSpec, waitFor } from '../harness/ops-pair.js';

test('drain: a station loses its TSIs, is refused (reason 4) until undrained, also after a restart', async (t) => {
  const p = await startOpsPair();
  t.after(() => p.close());
  for (const n of [1, 2]) {
    const r = await http(p.tUrl, 'POST', '/v1/requests', {
      mode: 'associate',
      vsi: vsiSpec(n, 5000 + n),
    });
    assert.equal(r.status, 200);
  }
  const d = await http(p.nUrl, 'POST', '/v1/drain', {
    port: 'swp1',
    station: STATION_MAC,
    reason: 'rack work',
  });
  assert.equal(d.status, 200);
  assert.equal((d.body as { deassociated: number }).deassociated, 2);
  assert.deepEqual(await (await fetch(`${p.nUrl}/v1/vsis`)).json(), []);
  // the station heard the unsolicited De-Associates
  await waitFor(
    'the station to drop its VSIs',
    async () => ((await http(p.tUrl, 'GET', '/v1/vsis')).body as unknown[]).length === 0,
  );
  const refused = await http(p.tUrl, 'POST', '/v1/requests', {
    mode: 'associate',
    vsi: vsiSpec(3),
  });
  assert.equal(refused.status, 409);
  assert.equal((refused.body as { reason: number }).reason, 4);
  const log = (await http(p.nUrl, 'GET', '/v1/log?event=vsi.refused')).body as { detail: string }[];
  assert.match(log.at(-1)!.detail, /station 02:00:00:00:aa:01 is drained on swp1 by the operator/);
  // draining again is harmless; a second drain on every port is a separate entry
  const again = await http(p.nUrl, 'POST', '/v1/drain', { port: 'swp1', station: STATION_MAC });
  assert.equal((again.body as { drained: boolean }).drained, false);

  await p.restartNnve();
  const drains = (await http(p.nUrl, 'GET', '/v1/drains')).body as {
    station: string;
    reason: string;
  }[];
  assert.deepEqual(
    drains.map((x) => [x.station, x.reason]),
    [[STATION_MAC, 'rack work']],
  );
  const stillRefused = await http(p.tUrl, 'POST', '/v1/requests', {
    mode: 'associate',
    vsi: vsiSpec(3),
  });
  assert.equal(stillRefused.status, 409);
  assert.equal(
    (await http(p.nUrl, 'POST', '/v1/undrain', { port: 'swp1', station: STATION_MAC })).status,
    200,
  );
  const ok = await http(p.tUrl, 'POST', '/v1/requests', { mode: 'associate', vsi: vsiSpec(3) });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const m = (await http(p.nUrl, 'GET', '/metrics')).text;
  assert.match(m, /^splitnve_drained_stations 0$/m);
});

test('malformed requests are answered as problem+json too', async (t) => {
  const p = await startOpsPair();
  t.after(() => p.close());
  for (const base of [p.nUrl, p.tUrl]) {
    const bad = await fetch(`${base}/v1/reload`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{not json',
    });
    assert.equal(bad.status, 400);
    assert.match(bad.headers.get('content-type') ?? '', /^application\/problem\+json/);
    const body = (await bad.json()) as { title: string; status: number; detail: string };
    assert.equal(body.status, 400);
    assert.match(body.detail, /JSON/);
    const none = await http(base, 'GET', '/v1/nothing-here');
    assert.equal(none.status, 404);
    assert.match(none.type, /^application\/problem\+json/);
    assert.equal((none.body as { detail: string }).detail, 'GET /v1/nothing-here');
  }
});
