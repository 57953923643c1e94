/**
 * Several nNVEs / stations in one process: remote entries and flood lists from the NVA, live
 * migration between two nNVEs (the destination's forwarding entry wins at once) and between two
 * stations of one nNVE (one segment: same tag; the VSI is Activated on one station only).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { DataPlaneState } from '../../src/dataplane/dataplane.js';
import type { Link } from '../../src/link/link.js';
import { memoryLinkPair } from '../../src/link/memory.js';
import { NnveConfigSchema } from '../../src/nnve/config.js';
import { NnveDaemon } from '../../src/nnve/daemon.js';
import { EmbeddedNva } from '../../src/nva/embedded.js';
import { TnveConfigSchema } from '../../src/tnve/config.js';
import { TnveDaemon } from '../../src/tnve/daemon.js';
import type { VsiSpecJson } from '../../src/vdp/spec-json.js';
import { apiPort, evb, post, quiet, tmp, vm } from './fixture.js';

const VNI = 5000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  f: () => Promise<T | undefined> | T | undefined,
  ms = 10_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(15);
  }
}

async function tnve(t: TestContext, dir: string, name: string, link: () => Link) {
  const d = await TnveDaemon.start(
    TnveConfigSchema.parse({
      uplinks: [{ name: 'eth0' }],
      stateDir: join(dir, name),
      api: '127.0.0.1:0',
      profile: 'splitnve',
      evb,
      requestTimeoutMs: 5000,
    }),
    { log: quiet, openLink: link },
  );
  t.after(() => d.stop());
  const request = (
    mode: 'pre-associate-rr' | 'associate' | 'de-associate',
    vsi: VsiSpecJson,
    hints?: { m?: boolean; s?: boolean },
  ) => post(apiPort(d), '/v1/requests', { mode, vsi, ...(hints ? { hints } : {}) });
  return { d, request };
}

async function dump(n: NnveDaemon): Promise<DataPlaneState> {
  await n.settled();
  return n.dp.dump();
}

/** Two nNVEs (A: VLANs 100-199, B: 200-299) sharing one embedded NVA, each with one tNVE. */
async function twoNnves(t: TestContext) {
  const dir = tmp(t);
  const nvaFile = join(dir, 'nva.sqlite');
  const nnves: NnveDaemon[] = [];
  const hvs: Awaited<ReturnType<typeof tnve>>[] = [];
  for (const [i, x] of ['a', 'b'].entries()) {
    const [hv, sw] = memoryLinkPair(
      { name: 'eth0', mac: `02:00:00:00:0${i + 1}:01` },
      { name: `sw${x}`, mac: `02:00:00:00:0${i + 1}:02` },
    );
    const n = await NnveDaemon.start(
      NnveConfigSchema.parse({
        ports: [{ name: `sw${x}` }],
        vlanPool: i === 0 ? '100-199' : '200-299',
        stateDir: join(dir, `nnve-${x}`),
        api: '127.0.0.1:0',
        profile: 'splitnve',
        evb,
        nveId: `nve-${x}`,
        underlayIp: `198.18.0.${i + 1}`,
        reconcileIntervalS: 0,
        vns: [{ vni: VNI }],
      }),
      {
        log: quiet,
        openLink: () => sw,
        nva: new EmbeddedNva({ path: nvaFile, shared: true, pollMs: 10, nveTtlMs: 15_000 }),
      },
    );
    t.after(() => n.stop());
    nnves.push(n);
    hvs.push(await tnve(t, dir, `hv-${x}`, () => hv));
  }
  const [A, B] = nnves as [NnveDaemon, NnveDaemon];
  const [hvA, hvB] = hvs as [Awaited<ReturnType<typeof tnve>>, Awaited<ReturnType<typeof tnve>>];
  return { A, B, hvA, hvB };
}

test('two nNVEs on one NVA: remote entries, flood lists, migration where the destination wins before the source lets go', async (t) => {
  const { A, B, hvA, hvB } = await twoNnves(t);
  const v1 = vm(1, VNI, { ip: '192.0.2.1' });
  const v2 = vm(2, VNI, { ip: '192.0.2.2' });
  const mac1 = v1.entries[0]!.mac!;
  const mac2 = v2.entries[0]!.mac!;
  assert.equal((await hvA.request('associate', v1)).status, 200);
  assert.equal((await hvB.request('associate', v2)).status, 200);
  // each programs the other's VM as a remote endpoint and floods the VN to the other
  const sa = await until('A learns v2', async () => {
    const s = await dump(A);
    return s.remotes.length === 1 && s.floods.length === 1 ? s : undefined;
  });
  assert.deepEqual(sa.remotes, [{ vni: VNI, mac: mac2, vtep: '198.18.0.2' }]);
  assert.deepEqual(sa.floods, [{ vni: VNI, vteps: ['198.18.0.2'] }]);
  assert.deepEqual(sa.vaps, [{ port: 'swa', vlan: 100, vni: VNI }]);
  const sb = await until('B learns v1', async () => {
    const s = await dump(B);
    return s.remotes.length === 1 ? s : undefined;
  });
  assert.deepEqual(sb.remotes, [{ vni: VNI, mac: mac1, vtep: '198.18.0.1' }]);
  assert.deepEqual(sb.vaps, [{ port: 'swb', vlan: 200, vni: VNI }], 'B has its own tag for the VN');

  // Live migration of v1 from A to B.
  // 1. destination prepares (M=1): B mapping only, A keeps forwarding to its local v1
  const pre = await hvB.request('pre-associate-rr', v1, { m: true });
  assert.equal(pre.status, 200, JSON.stringify(pre.body));
  assert.equal((pre.body.entries as { vid: number }[])[0]!.vid, 200);
  await sleep(80);
  let a = await dump(A);
  assert.equal(
    a.locals.find((l) => l.mac === mac1)!.active,
    true,
    'a mapping entry does not move traffic',
  );
  assert.equal(
    a.remotes.find((r) => r.mac === mac1),
    undefined,
  );
  let b = await dump(B);
  assert.equal(
    b.locals.find((l) => l.mac === mac1)!.active,
    false,
    'destination filters off while Associated',
  );
  // 2. destination runs (Associate M=1): A switches to B at once, before the source de-associates
  assert.equal((await hvB.request('associate', v1, { m: true })).status, 200);
  a = await until('A sees the destination win', async () => {
    const s = await dump(A);
    return s.remotes.some((r) => r.mac === mac1) ? s : undefined;
  });
  assert.deepEqual(
    a.remotes.find((r) => r.mac === mac1),
    { vni: VNI, mac: mac1, vtep: '198.18.0.2' },
  );
  assert.equal(
    a.locals.find((l) => l.mac === mac1)!.active,
    false,
    'the source endpoint is superseded',
  );
  const viewA = A.model.tsiViews().find((x) => x.endpoints[0]!.mac === mac1)!;
  assert.equal(viewA.state, 'Activated', 'the protocol state at the source is unchanged');
  assert.deepEqual(viewA.superseded, [`${VNI}|${mac1}`]);
  b = await dump(B);
  assert.equal(b.locals.find((l) => l.mac === mac1)!.active, true);
  // 3. the source lets go (S=1)
  assert.equal((await hvA.request('de-associate', v1, { s: true })).status, 200);
  a = await dump(A);
  assert.deepEqual(
    a,
    { vaps: [], locals: [], remotes: [], floods: [] },
    'A has no VAP of the VN left',
  );
  assert.deepEqual(A.model.watchedVnis(), []);
  b = await until('B has no remote v1 left', async () => {
    const s = await dump(B);
    return s.remotes.length === 0 ? s : undefined;
  });
  assert.deepEqual(b.floods, [], 'A has no forwarding entry left: B floods to nobody');
  assert.equal(A.model.stats.supersessions, 1);

  // And back: A activates later than B did, so A wins again.
  assert.equal((await hvA.request('pre-associate-rr', v1, { m: true })).status, 200);
  assert.equal((await hvA.request('associate', v1, { m: true })).status, 200);
  b = await until('B sees A win', async () => {
    const s = await dump(B);
    return s.locals.find((l) => l.mac === mac1)?.active === false ? s : undefined;
  });
  assert.deepEqual(b.remotes, [{ vni: VNI, mac: mac1, vtep: '198.18.0.1' }]);
  a = await dump(A);
  assert.equal(a.locals.find((l) => l.mac === mac1)!.active, true);
  await hvB.request('de-associate', v1, { s: true });
  b = await dump(B);
  assert.deepEqual(
    b.locals.map((l) => l.mac),
    [mac2],
  );
});

test('migration between two stations of one nNVE (one segment): same tag, one Activated TSI, the endpoint stays', async (t) => {
  const dir = tmp(t);
  const [h1, s1] = memoryLinkPair(
    { name: 'eth0', mac: '02:00:00:00:0c:01' },
    { name: 'p1', mac: '02:00:00:00:0d:01' },
  );
  const [h2, s2] = memoryLinkPair(
    { name: 'eth0', mac: '02:00:00:00:0c:02' },
    { name: 'p2', mac: '02:00:00:00:0d:02' },
  );
  const ports = new Map([
    ['p1', s1],
    ['p2', s2],
  ]);
  const n = await NnveDaemon.start(
    NnveConfigSchema.parse({
      ports: [
        { name: 'p1', segment: 'rack1' },
        { name: 'p2', segment: 'rack1' },
      ],
      vlanPool: '300-310',
      stateDir: join(dir, 'nnve'),
      api: '127.0.0.1:0',
      profile: 'splitnve',
      evb,
      nveId: 'nve-m',
      reconcileIntervalS: 0,
      // one VSI on two stations is one TSI for the VN's limit
      vns: [{ vni: VNI, maxTsis: 1 }],
    }),
    { log: quiet, openLink: (p) => ports.get(p.name)! },
  );
  t.after(() => n.stop());
  const a = await tnve(t, dir, 'h1', () => h1);
  const b = await tnve(t, dir, 'h2', () => h2);
  const v = vm(9, VNI, { ip: '192.0.2.9' });
  const mac = v.entries[0]!.mac!;
  const ra = await a.request('associate', v);
  const pre = await b.request('pre-associate-rr', v, { m: true });
  assert.equal((ra.body.entries as { vid: number }[])[0]!.vid, 300);
  assert.equal((pre.body.entries as { vid: number }[])[0]!.vid, 300, 'one segment, one tag');
  let s = await dump(n);
  assert.deepEqual(s.vaps, [
    { port: 'p1', vlan: 300, vni: VNI },
    { port: 'p2', vlan: 300, vni: VNI },
  ]);
  assert.deepEqual(
    s.locals.map((l) => [l.port, l.active]),
    [
      ['p1', true],
      ['p2', false],
    ],
  );
  assert.equal((await b.request('associate', v, { m: true })).status, 200);
  s = await dump(n);
  assert.deepEqual(
    s.locals.map((l) => [l.port, l.active]),
    [
      ['p1', false],
      ['p2', true],
    ],
    'takeover: Activated on the destination station only',
  );
  const tsis = n.model
    .tsiViews()
    .map((x) => [x.port, x.state])
    .sort();
  assert.deepEqual(tsis, [
    ['p1', 'Associated'],
    ['p2', 'Activated'],
  ]);
  assert.deepEqual(
    n.nva.ownEntries().map((e) => [e.mac, e.kind]),
    [[mac, 'forwarding']],
  );
  await a.request('de-associate', v, { s: true });
  s = await dump(n);
  assert.deepEqual(s.vaps, [{ port: 'p2', vlan: 300, vni: VNI }]);
  assert.deepEqual(
    s.locals.map((l) => [l.port, l.active]),
    [['p2', true]],
  );
  assert.deepEqual(
    n.nva.ownEntries().map((e) => [e.mac, e.kind]),
    [[mac, 'forwarding']],
    'the entry never went away',
  );
});

test('a VN deleted in the NVA through one nNVE: every nNVE de-associates its TSIs of it, and each station is told', async (t) => {
  const { A, B, hvA, hvB } = await twoNnves(t);
  assert.equal((await hvA.request('associate', vm(1, VNI))).status, 200);
  assert.equal((await hvB.request('associate', vm(2, VNI))).status, 200);
  const del = await post(apiPort(A), '/v1/vns/delete', { vni: VNI });
  assert.equal(del.status, 200, JSON.stringify(del.body));
  for (const [name, n, hv] of [
    ['A', A, hvA],
    ['B', B, hvB],
  ] as const) {
    await until(`${name} has no TSI of the VN`, () =>
      n.model.tsiViews().length === 0 ? true : undefined,
    );
    await until(`the station behind ${name} was told`, async () => {
      const r = await fetch(`http://127.0.0.1:${apiPort(hv.d)}/v1/vsis`);
      return ((await r.json()) as unknown[]).length === 0 ? true : undefined;
    });
    const s = await dump(n);
    assert.deepEqual([s.vaps, s.locals, s.remotes], [[], [], []], `${name}: nothing of the VN`);
  }
});
