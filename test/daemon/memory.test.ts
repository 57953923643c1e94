import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { memoryLinkPair } from '../../src/link/memory.js';
import { createLogger } from '../../src/daemon/logger.js';
import { NnveConfigSchema } from '../../src/nnve/config.js';
import { NnveDaemon } from '../../src/nnve/daemon.js';
import { TnveConfigSchema } from '../../src/tnve/config.js';
import { TnveDaemon } from '../../src/tnve/daemon.js';

const quiet = createLogger({ name: 'test', level: 'silent' as 'info' });
const evb = { r: 3, rte: 8, rwd: 14, rka: 14 };

function vsi(n: number, vid = 0): Record<string, unknown> {
  return {
    managerId: 'test',
    typeId: 1,
    typeVersion: 1,
    idFormat: 5,
    id: `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`,
    filterFormat: 4,
    entries: [
      { groupId: 5000 + (n % 2), mac: `52:54:00:00:00:${n.toString(16).padStart(2, '0')}`, vid },
    ],
  };
}

async function post(
  port: number,
  path: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

async function get(port: number, path: string): Promise<unknown> {
  return (await fetch(`http://127.0.0.1:${port}${path}`)).json();
}

function apiPort(d: { api: { server: { address(): unknown } } }): number {
  return (d.api.server.address() as { port: number }).port;
}

test('tnve and nnve daemons over an in-memory link: associate, VID from the pool, restart keeps the VID', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'snve-daemon-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [hvEnd, swEnd] = memoryLinkPair(
    { name: 'eth0', mac: '02:00:00:00:aa:01' },
    { name: 'swp1', mac: '02:00:00:00:bb:01' },
  );
  const nnveCfg = NnveConfigSchema.parse({
    ports: [{ name: 'swp1' }],
    vlanPool: '300-301',
    stateDir: join(dir, 'nnve'),
    api: '127.0.0.1:0',
    profile: 'splitnve',
    evb,
  });
  const tnveCfg = TnveConfigSchema.parse({
    uplinks: [{ name: 'eth0' }],
    stateDir: join(dir, 'tnve'),
    api: '127.0.0.1:0',
    profile: 'splitnve',
    evb,
    requestTimeoutMs: 5000,
  });
  let nnve = await NnveDaemon.start(nnveCfg, { log: quiet, openLink: () => swEnd });
  const tnve = await TnveDaemon.start(tnveCfg, { log: quiet, openLink: () => hvEnd });
  try {
    const tp = apiPort(tnve);
    const r1 = await post(tp, '/v1/requests', { mode: 'associate', vsi: vsi(1) });
    assert.equal(r1.status, 200, JSON.stringify(r1.body));
    assert.equal(r1.body.state, 'Activated');
    const vid1 = (r1.body.entries as { vid: number }[])[0]!.vid;
    assert.equal(vid1, 300);
    const r2 = await post(tp, '/v1/requests', { mode: 'pre-associate-rr', vsi: vsi(2) });
    assert.equal(r2.status, 200);
    assert.equal((r2.body.entries as { vid: number }[])[0]!.vid, 301);
    // pool exhausted: a third VN gets reason 2, the others are untouched
    const third = { ...vsi(3), entries: [{ groupId: 7777, mac: '52:54:00:00:00:03', vid: 0 }] };
    const r3 = await post(tp, '/v1/requests', { mode: 'associate', vsi: third });
    assert.equal(r3.status, 409);
    assert.equal(r3.body.reason, 2);
    // invalid body: a precise 400
    const bad = await post(tp, '/v1/requests', {
      mode: 'associate',
      vsi: { ...vsi(4), entries: [{ mac: 'zz' }] },
    });
    assert.equal(bad.status, 400);
    assert.match(String(bad.body.detail), /vsi\.entries\.0\.mac: not a MAC address/);

    const np = apiPort(nnve);
    const vsis = (await get(np, '/v1/vsis')) as {
      vsi: string;
      state: string;
      entries: { vid: number }[];
    }[];
    assert.deepEqual(vsis.map((v) => [v.state, v.entries[0]!.vid]).sort(), [
      ['Activated', 300],
      ['Associated', 301],
    ]);
    const vaps = (await get(np, '/v1/vaps')) as { vni: number; vid: number }[];
    assert.deepEqual(
      vaps.map((v) => [v.vni, v.vid]).sort(),
      [
        [5000, 301],
        [5001, 300],
      ].sort(),
    );

    // Restart the nNVE: same VIDs, the TSIs are still there, keep-alives keep them.
    await nnve.stop();
    nnve = await NnveDaemon.start(
      { ...nnveCfg, api: '127.0.0.1:0' },
      { log: quiet, openLink: () => swEnd.reopen() },
    );
    const again = (await get(apiPort(nnve), '/v1/vsis')) as {
      state: string;
      entries: { vid: number }[];
    }[];
    assert.deepEqual(again.map((v) => [v.state, v.entries[0]!.vid]).sort(), [
      ['Activated', 300],
      ['Associated', 301],
    ]);
    // a new VSI of VN 5001 gets the same tag
    const r5 = await post(tp, '/v1/requests', {
      mode: 'associate',
      vsi: { ...vsi(5), entries: [{ groupId: 5001, mac: '52:54:00:00:00:05', vid: 0 }] },
    });
    assert.equal(r5.status, 200, JSON.stringify(r5.body));
    assert.equal((r5.body.entries as { vid: number }[])[0]!.vid, 300);
    // de-associate releases
    const r6 = await post(tp, '/v1/requests', { mode: 'de-associate', vsi: vsi(2) });
    assert.equal(r6.status, 200);
    const vaps2 = (await get(apiPort(nnve), '/v1/vaps')) as { vni: number }[];
    assert.deepEqual(
      vaps2.map((v) => v.vni),
      [5001],
    );
  } finally {
    await tnve.stop();
    await nnve.stop();
  }
});
