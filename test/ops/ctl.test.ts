import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import {
  cli,
  CLI,
  http,
  startOpsPair,
  STATION_MAC,
  uuid,
  vsiSpec,
  waitFor,
} from '../harness/ops-pair.js';

/** Runs commands with at most `n` CLI processes at once. */
async function pool<T, R>(items: T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

test('splitnve ctl: every view of both daemons as a table and as JSON; drain, undrain, reload, events, metrics', async (t) => {
  const p = await startOpsPair();
  t.after(() => p.close());
  assert.equal(
    (await http(p.tUrl, 'POST', '/v1/requests', { mode: 'associate', vsi: vsiSpec(1) })).status,
    200,
  );
  const def = { interfaces: [{ vsiId: uuid(0x101), vni: 6001, macs: ['52:54:00:00:02:01'] }] };
  assert.equal((await http(p.tUrl, 'PUT', '/v1/vms/web', def)).status, 200);
  assert.equal((await http(p.tUrl, 'POST', '/v1/vms/web/start', {})).status, 200);

  // view -> a word the table must show
  const views: [string, string, string, RegExp][] = [
    ['n', 'info', 'daemon', /daemon: nnve/],
    ['n', 'stations', 'PORT', new RegExp(STATION_MAC)],
    ['n', 'tsis', 'PORT', new RegExp(uuid(1))],
    ['n', 'vsis', 'PORT', /Activated/],
    ['n', 'vaps', 'SEGMENT', /6001/],
    ['n', 'pools', 'SEGMENT', /300-399/],
    ['n', 'drains', '(no drains)', /no drains/],
    ['n', 'peers', 'PORT', new RegExp(STATION_MAC)],
    ['n', 'ports', 'NAME', /swp1/],
    ['n', 'stats', 'uptimeS', /Activated: 2/],
    ['n', 'health', 'ok', /ok: true/],
    ['n', 'routes', 'METHOD', /\/v1\/drain/],
    ['n', 'metrics', 'NAME', /splitnve_tsis +port=swp1,state=Activated +2/],
    ['n', 'events', 'tsi.state', /tsi\.state +TSI .* Init -> Activated/],
    ['t', 'info', 'daemon', /role: station/],
    [
      't',
      'vms',
      'VM',
      /web +running +00000000-0000-4000-8000-000000000101 +6001 +Activated +\d+@eth0/,
    ],
    ['t', 'vsis', 'UPLINK', new RegExp(uuid(0x101))],
    ['t', 'uplinks', 'NAME', /eth0/],
    ['t', 'vns', 'VNI', /6001/],
    ['t', 'peers', 'UPLINK', /02:00:00:00:bb:01/],
    ['t', 'stats', 'uptimeS', /vms: 1/],
    ['t', 'events', 'vm.state', /op\.ok +start web: ok/],
  ];
  // --json is one code path for every view: check it on a few
  const json = new Set(['n stations', 'n metrics', 't vms', 't uplinks']);
  const results = await pool(views, 4, async ([d, view]) => {
    const api = d === 'n' ? p.nApi : p.tApi;
    return Promise.all([
      cli(['ctl', '--api', api, view]),
      json.has(`${d} ${view}`) ? cli(['ctl', '--api', api, '--json', view]) : undefined,
    ]);
  });
  views.forEach(([d, view, head, re], i) => {
    const [table, json] = results[i]!;
    const what = `${d === 'n' ? 'nnve' : 'tnve'} ctl ${view}`;
    assert.equal(table.code, 0, `${what}: ${table.stderr}`);
    assert.ok(table.stdout.includes(head), `${what}: no ${head} in\n${table.stdout}`);
    assert.match(table.stdout, re, `${what}:\n${table.stdout}`);
    if (!json) return;
    assert.equal(json.code, 0, `${what} --json: ${json.stderr}`);
    assert.doesNotThrow(
      () => JSON.parse(json.stdout),
      `${what} --json:\n${json.stdout.slice(0, 500)}`,
    );
  });

  // actions
  const drain = await cli([
    'ctl',
    '--api',
    p.nApi,
    'drain',
    '--station',
    STATION_MAC,
    '--reason',
    'disk swap',
  ]);
  assert.equal(drain.code, 0, drain.stderr);
  assert.match(drain.stdout, /deassociated: 2/);
  const drains = await cli(['ctl', '--api', p.nApi, 'drains']);
  assert.match(drains.stdout, new RegExp(`-\\s+${STATION_MAC}\\s+\\S+\\s+disk swap`));
  const undrain = await cli(['ctl', '--api', p.nApi, 'undrain', '--station', STATION_MAC]);
  assert.equal(undrain.code, 0, undrain.stderr);
  const twice = await cli(['ctl', '--api', p.nApi, 'undrain', '--station', STATION_MAC]);
  assert.equal(twice.code, 1);
  assert.match(
    twice.stderr,
    /splitnve ctl: 404 Not drained: station 02:00:00:00:aa:01 is not drained/,
  );
  p.nnve.ops.configSource = () => ({ ...p.nnveCfg, logLevel: 'debug' });
  const reload = await cli(['ctl', '--api', p.nApi, '--json', 'reload']);
  assert.deepEqual(JSON.parse(reload.stdout), { changed: ['logLevel'], trigger: 'api' });
  const ev = await cli(['ctl', '--api', p.nApi, '--json', 'events', '--event', 'admin.*']);
  assert.deepEqual(
    (JSON.parse(ev.stdout) as { event: string }[]).map((r) => r.event),
    ['admin.drain', 'admin.undrain', 'admin.reload'],
  );
  const get = await cli(['ctl', '--api', p.tApi, 'get', '/v1/vms/web']);
  assert.match(get.stdout, /state: running/);
  const raw = await cli(['ctl', '--api', p.nApi, 'get', '/metrics']);
  assert.match(raw.stdout, /^# HELP splitnve_/m);
  const down = await cli(['ctl', '--api', '127.0.0.1:1', 'stations']);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /cannot reach the daemon at 127\.0\.0\.1:1/);
});

test('splitnve ctl events --follow prints what happens as it happens, until Ctrl-C', async (t) => {
  const p = await startOpsPair();
  t.after(() => p.close());
  const child = spawn(
    process.execPath,
    [CLI, 'ctl', '--api', p.nApi, 'events', '--follow', '-n', '3'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  await waitFor('the recent events', () => /daemon\.started/.test(out), 10_000);
  await waitFor('the stream to be followed', () => p.nnve.ops.events.streams === 1, 10_000);
  assert.equal(
    (await http(p.tUrl, 'POST', '/v1/requests', { mode: 'associate', vsi: vsiSpec(7) })).status,
    200,
  );
  await http(p.nUrl, 'POST', '/v1/deassociate', { port: 'swp1', station: STATION_MAC });
  await waitFor('the live events', () => /admin\.deassociate/.test(out), 10_000);
  const lines = out.trim().split('\n');
  const tsi = lines.filter((l) => /tsi\.state/.test(l));
  assert.equal(tsi.length, 2, out);
  assert.match(tsi[0]!, /Init -> Activated \(request\)/);
  assert.match(tsi[1]!, /Activated -> Init \(admin\)/);
  child.kill('SIGINT');
  assert.equal(await exited, 0);
});
