/**
 * `splitnve ctl` views and actions not covered by ctl.test.ts, run as the built CLI against real
 * daemons in this process: tags, remotes, dataplane (desired and --installed), nva, auth (both
 * daemons), and the actions vn-set, vn-delete and reconcile, whose effects are checked through
 * the API afterwards. Each view's `--json` must be exactly the API's answer.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EmbeddedNva } from '../../src/nva/embedded.js';
import { vdpOf } from '../harness/daemon-pair.js';
import { dashed, writeKey } from '../harness/keys.js';
import {
  cli,
  http,
  PORT_MAC,
  startOpsPair,
  STATION_MAC,
  vsiSpec,
  waitFor,
} from '../harness/ops-pair.js';

/** `splitnve ctl --api API ARGS`: asserts it succeeded, returns its stdout. */
async function ctl(api: string, ...args: string[]): Promise<string> {
  const r = await cli(['ctl', '--api', api, ...args]);
  assert.equal(r.code, 0, `ctl ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  return r.stdout;
}

async function apiGet<T = unknown>(base: string, path: string): Promise<T> {
  const r = await http(base, 'GET', path);
  assert.equal(r.status, 200, `GET ${path}: ${r.text}`);
  return r.body as T;
}

/** `ctl --json VIEW` and the API's answer to GET PATH right after: the same JSON. */
async function jsonMatchesApi(
  api: string,
  base: string,
  path: string,
  ...args: string[]
): Promise<unknown> {
  const out = await ctl(api, '--json', ...args);
  const parsed: unknown = JSON.parse(out);
  assert.deepEqual(parsed, await apiGet(base, path), `ctl --json ${args.join(' ')} vs GET ${path}`);
  return parsed;
}

const REMOTE_MAC = '52:54:00:00:09:01';

test('splitnve ctl on the nNVE: tags, remotes, dataplane, nva as tables and JSON; vn-set, vn-delete, reconcile change what the API shows', async (t) => {
  const nvaDir = mkdtempSync(join(tmpdir(), 'snve-t6-nva-'));
  t.after(() => rmSync(nvaDir, { recursive: true, force: true }));
  const nvaFile = join(nvaDir, 'nva.sqlite');
  const p = await startOpsPair({
    nnve: { nveId: 'tor1', embedded: { path: nvaFile, shared: true } },
  });
  t.after(() => p.close());
  // Another NVE on the same NVA file, with an endpoint in the VN the station joins.
  const other = new EmbeddedNva({ path: nvaFile, shared: true, pollMs: 20 });
  t.after(() => other.close());
  await other.start({ id: 'tor2', vtep: '192.0.2.2' });

  assert.equal(
    (await http(p.tUrl, 'POST', '/v1/requests', { mode: 'associate', vsi: vsiSpec(1) })).status,
    200,
  );
  await waitFor('the VN in the other NVE', () => other.getVn(5000));
  await other.publish({ vni: 5000, mac: REMOTE_MAC, ips: ['10.0.0.9'], kind: 'forwarding' });
  const remotes = await waitFor('the remote entry programmed', async () => {
    const r = await apiGet<{ mac: string; programmed: boolean }[]>(p.nUrl, '/v1/remotes');
    return r.some((x) => x.mac === REMOTE_MAC && x.programmed) ? r : undefined;
  });
  assert.equal(remotes.length, 1);
  const [vsi] = await apiGet<{ entries: { vid: number }[] }[]>(p.nUrl, '/v1/vsis');
  const vid = vsi!.entries[0]!.vid;
  assert.ok(vid >= 300 && vid <= 399, `VID ${vid} from the pool`);

  // tags
  assert.match(await ctl(p.nApi, 'tags'), /^SEGMENT +VNI +VID +REFS/);
  assert.match(await ctl(p.nApi, 'tags'), new RegExp(`^swp1 +5000 +${vid} +1 +-$`, 'm'));
  await jsonMatchesApi(p.nApi, p.nUrl, '/v1/tags', 'tags');

  // remotes
  const rt = await ctl(p.nApi, 'remotes');
  assert.match(rt, /^VNI +MAC +NVE +VTEP +KIND +PROGRAMMED$/m);
  assert.match(rt, /^5000 +52:54:00:00:09:01 +tor2 +192\.0\.2\.2 +forwarding +true$/m);
  await jsonMatchesApi(p.nApi, p.nUrl, '/v1/remotes', 'remotes');

  // dataplane: every field of the VAPs, locals and remotes, desired and installed
  for (const args of [['dataplane'], ['dataplane', '--installed']]) {
    const dp = await ctl(p.nApi, ...args);
    assert.match(dp, /^kind: memory$/m);
    assert.match(dp, args.length === 1 ? /^desired:$/m : /^installed:$/m);
    assert.match(dp, /^ {2}vaps:\n {4}PORT +VLAN +VNI\n {4}swp1 +(\d+) +5000$/m);
    assert.match(dp, new RegExp(`^ {4}swp1 +${vid} +5000$`, 'm'));
    assert.match(
      dp,
      new RegExp(`^ {4}swp1 +${vid} +5000 +52:54:00:00:01:01 +\\(none\\) +true$`, 'm'),
      dp,
    );
    assert.match(dp, /^ {4}5000 +52:54:00:00:09:01 +.*192\.0\.2\.2/m, dp);
  }
  const desired = (await jsonMatchesApi(p.nApi, p.nUrl, '/v1/dataplane', 'dataplane')) as {
    desired: unknown;
  };
  const installed = (await jsonMatchesApi(
    p.nApi,
    p.nUrl,
    '/v1/dataplane?installed=1',
    'dataplane',
    '--installed',
  )) as { installed: unknown };
  assert.deepEqual(installed.installed, desired.desired);

  // nva
  const nva = await ctl(p.nApi, 'nva');
  assert.match(nva, /^kind: embedded$/m);
  assert.match(nva, /^self:\n {2}id: tor1\n {2}vtep: 127\.0\.0\.1$/m);
  assert.match(nva, /^nves:\n {2}ID +VTEP$/m);
  assert.match(nva, /^ {2}tor2 +192\.0\.2\.2$/m);
  assert.match(nva, /^ {2}tor1 +127\.0\.0\.1$/m);
  assert.match(
    nva,
    /^ownEntries:\n {2}VNI +MAC +IPS +NVE +VTEP +KIND\n {2}5000 +52:54:00:00:01:01 +\(none\) +tor1 +127\.0\.0\.1 +forwarding$/m,
  );
  assert.match(nva, /^watched: 5000$/m);
  await jsonMatchesApi(p.nApi, p.nUrl, '/v1/nva', 'nva');

  // reconcile: a VAP and a local endpoint removed behind the daemon's back come back
  await p.nnve.dp.apply([
    { op: 'local-del', port: 'swp1', vlan: vid, mac: '52:54:00:00:01:01' },
    { op: 'vap-del', port: 'swp1', vlan: vid },
  ]);
  const drifted = await apiGet<{ installed: { vaps: unknown[]; locals: unknown[] } }>(
    p.nUrl,
    '/v1/dataplane?installed=1',
  );
  assert.deepEqual([drifted.installed.vaps, drifted.installed.locals], [[], []]);
  const rec = await ctl(p.nApi, 'reconcile');
  assert.equal(rec.trim(), 'reconciled: true\nlastError: -');
  assert.deepEqual(
    (await apiGet<{ installed: unknown }>(p.nUrl, '/v1/dataplane?installed=1')).installed,
    desired.desired,
  );
  await p.nnve.dp.apply([{ op: 'vap-del', port: 'swp1', vlan: vid }]);
  assert.deepEqual(JSON.parse(await ctl(p.nApi, '--json', 'reconcile')), {
    reconciled: true,
    lastError: null,
  });
  assert.deepEqual(
    (await apiGet<{ installed: unknown }>(p.nUrl, '/v1/dataplane?installed=1')).installed,
    desired.desired,
  );

  // vn-set: a new VN, then one with its stations given as a list and comma-separated
  const set = await ctl(
    p.nApi,
    'vn-set',
    '--vni',
    '6100',
    '--name',
    'red',
    '--allowed',
    `${STATION_MAC},02:00:00:00:aa:02`,
    '02-00-00-00-AA-03',
    '--max-tsis',
    '3',
  );
  const allowed = [STATION_MAC, '02:00:00:00:aa:02', '02:00:00:00:aa:03'];
  assert.equal(
    set.trim(),
    ['vni: 6100', 'name: red', `allowedStations: ${allowed.join('; ')}`, 'maxTsis: 3'].join('\n'),
  );
  const red = { vni: 6100, name: 'red', allowedStations: allowed, maxTsis: 3 };
  assert.deepEqual(
    (await apiGet<{ vni: number }[]>(p.nUrl, '/v1/vns')).find((v) => v.vni === 6100),
    red,
  );
  assert.match(await ctl(p.nApi, 'vns'), new RegExp(`^6100 +red +${allowed.join('; ')} +3$`, 'm'));
  const setJson = JSON.parse(await ctl(p.nApi, '--json', 'vn-set', '--vni', '6200')) as unknown;
  assert.deepEqual(setJson, { vni: 6200 });
  const vns = await apiGet<{ vni: number }[]>(p.nUrl, '/v1/vns');
  assert.deepEqual(
    vns.map((v) => v.vni).sort((a, b) => a - b),
    [5000, 6100, 6200],
  );
  // replacing: what is not given is gone
  await ctl(p.nApi, 'vn-set', '--vni', '6100', '--name', 'crimson');
  assert.deepEqual(
    (await apiGet<{ vni: number }[]>(p.nUrl, '/v1/vns')).find((v) => v.vni === 6100),
    { vni: 6100, name: 'crimson' },
  );
  const badVni = await cli(['ctl', '--api', p.nApi, 'vn-set', '--vni', 'x']);
  assert.equal(badVni.code, 1);
  assert.match(badVni.stderr, /--vni/);

  // vn-delete: the VN with a TSI de-associates it; the other VN goes quietly; then 404
  const del = await ctl(p.nApi, 'vn-delete', '--vni', '5000');
  assert.equal(del.trim(), 'deleted: 5000\nstations: 1');
  await waitFor('the TSI of VN 5000 de-associated', async () =>
    (await apiGet<unknown[]>(p.nUrl, '/v1/vsis')).length === 0 ? true : undefined,
  );
  await waitFor('the station told', async () =>
    (await apiGet<{ vsiId?: string; id?: string }[]>(p.tUrl, '/v1/vsis')).length === 0
      ? true
      : undefined,
  );
  assert.deepEqual(JSON.parse(await ctl(p.nApi, '--json', 'vn-delete', '--vni', '6200')), {
    deleted: 6200,
    stations: 0,
  });
  assert.deepEqual(
    (await apiGet<{ vni: number }[]>(p.nUrl, '/v1/vns')).map((v) => v.vni),
    [6100],
  );
  const again = await cli(['ctl', '--api', p.nApi, 'vn-delete', '--vni', '5000']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^splitnve ctl: 404 No such VN: VN 5000 does not exist$/m);
  // the VN's tag is held now, not in use
  assert.match(await ctl(p.nApi, 'tags'), new RegExp(`^swp1 +5000 +${vid} +0 +\\d+$`, 'm'));
});

interface AuthView {
  mode: string;
  authenticated: number;
  keys: Record<string, number>;
  totals: Record<string, number>;
  peers: { local: string; peer: string; status: string; lastFailureAt?: number }[];
}

test('splitnve ctl auth on both daemons: policy, per-port modes, keys, failures per reason and per peer', async (t) => {
  const kdir = mkdtempSync(join(tmpdir(), 'snve-t6-keys-'));
  t.after(() => rmSync(kdir, { recursive: true, force: true }));
  const keyFile = writeKey(kdir, `${dashed(STATION_MAC)}.1.key`);
  const p = await startOpsPair({
    nnve: { auth: { mode: 'prefer', modes: { swp1: 'require' }, keyDir: kdir } },
    tnve: { auth: { mode: 'require', keys: [{ keyId: 1, keyFile }] } },
  });
  t.after(() => p.close());

  // Before any PDU: the policy, keys, nothing counted.
  const quiet = await ctl(p.nApi, 'auth');
  assert.match(quiet, /^mode: prefer\nmodes: swp1=require\nkeys: stations=1 keys=1 /);
  assert.match(quiet, /^failures: unsigned=0 unknown-key=0 bad-hmac=0 replay=0$/m);
  assert.match(quiet, /^\(no authenticating peers\)$/m);

  // Two signed exchanges, each side's first PDU captured and played again: a replay each way.
  const fromStation: Uint8Array[] = [];
  const fromBridge: Uint8Array[] = [];
  p.sw.onFrames((f) => fromStation.push(...f));
  p.hv.onFrames((f) => fromBridge.push(...f));
  for (const n of [1, 2]) {
    const r = await http(p.tUrl, 'POST', '/v1/requests', { mode: 'associate', vsi: vsiSpec(n) });
    assert.equal(r.status, 200, r.text);
  }
  const oldRequest = fromStation.find((f) => vdpOf(f)?.auth);
  const oldResponse = fromBridge.find((f) => vdpOf(f)?.auth);
  assert.ok(oldRequest && oldResponse, 'captured a signed PDU each way');
  p.hv.send([oldRequest]);
  p.sw.send([oldResponse]);
  await waitFor('a replay counted on both sides', async () => {
    const n = await apiGet<AuthView>(p.nUrl, '/v1/auth');
    const s = await apiGet<AuthView>(p.tUrl, '/v1/auth');
    return n.totals.replay === 1 && s.totals.replay === 1 ? true : undefined;
  });
  // No more PDUs: the counters stay as they are (only `signed` moves with unsent keep-alives).
  p.hv.setUp(false);

  for (const [d, api, base, local, peer, mode, modes] of [
    ['nnve', p.nApi, p.nUrl, 'swp1', STATION_MAC, 'prefer', 'swp1=require'],
    ['tnve', p.tApi, p.tUrl, 'eth0', PORT_MAC, 'require', '-'],
  ] as const) {
    const table = await ctl(api, 'auth');
    const v = await apiGet<AuthView>(base, '/v1/auth');
    assert.ok(v.authenticated >= 1, `${d}: authenticated ${v.authenticated}`);
    assert.equal(v.peers.length, 1, `${d}: ${JSON.stringify(v.peers)}`);
    const row = v.peers[0]!;
    assert.ok(row.lastFailureAt !== undefined);
    assert.match(table, new RegExp(`^mode: ${mode}\nmodes: ${modes}\n`), `${d}:\n${table}`);
    assert.match(table, /^keys: stations=1 keys=1 reloads=0 reloadFailures=0 signed=\d+ /m);
    assert.match(table, new RegExp(`^authenticated: ${v.authenticated}$`, 'm'));
    assert.match(table, /^failures: unsigned=0 unknown-key=0 bad-hmac=0 replay=1$/m);
    assert.match(
      table,
      /^LOCAL +PEER +STATUS +UNSIGNED +UNKNOWN-KEY +BAD-HMAC +REPLAY +LASTFAILURE$/m,
      `${d}:\n${table}`,
    );
    assert.match(
      table,
      new RegExp(
        `^${local} +${peer} +${row.status} +0 +0 +0 +1 +${new Date(row.lastFailureAt).toISOString().replace(/\./g, '\\.')}$`,
        'm',
      ),
      `${d}:\n${table}`,
    );

    // --json: the API's answer; `signed` alone may have grown in between.
    const before = await apiGet<AuthView>(base, '/v1/auth');
    const json = JSON.parse(await ctl(api, '--json', 'auth')) as AuthView;
    const after = await apiGet<AuthView>(base, '/v1/auth');
    assert.ok(
      before.keys.signed! <= json.keys.signed! && json.keys.signed! <= after.keys.signed!,
      `${d}: signed ${before.keys.signed} <= ${json.keys.signed} <= ${after.keys.signed}`,
    );
    const unsigned = (x: AuthView): AuthView => ({ ...x, keys: { ...x.keys, signed: 0 } });
    assert.deepEqual(unsigned(json), unsigned(after), d);
  }
});
