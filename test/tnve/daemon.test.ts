/**
 * The tNVE daemon in-process with an nNVE daemon over in-memory links: the lifecycle HTTP API
 * (on a unix socket), the event stream, `splitnve vm` on the command line, persistence across
 * a restart, and reconciliation of VMs that changed while the agent was down.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../src/daemon/logger.js';
import { memoryLinkPair, type MemoryLink } from '../../src/link/memory.js';
import { NnveConfigSchema } from '../../src/nnve/config.js';
import { NnveDaemon } from '../../src/nnve/daemon.js';
import { apiCall, ApiCallError, followEvents, type SseEvent } from '../../src/tnve/client.js';
import { TnveConfigSchema } from '../../src/tnve/config.js';
import { TnveDaemon } from '../../src/tnve/daemon.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
const quiet = createLogger({ name: 'test', level: 'silent' as 'info' });
// ECP ACK timer 20 ms: robust when CI runs two test files on two busy cores
const evb = { r: 3, rte: 11, rwd: 14, rka: 14 };

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { timeout: 20000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const iface = (n: number, vni: number, extra: Record<string, unknown> = {}) => ({
  vsiId: `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`,
  vni,
  macs: [`52:54:00:00:00:${n.toString(16).padStart(2, '0')}`],
  ...extra,
});

describe('tnve daemon: lifecycle API over HTTP', () => {
  let dir: string;
  let nnve: NnveDaemon;
  let tnve: TnveDaemon;
  let hv: MemoryLink;
  let sw: MemoryLink;
  let api: string;
  let tnveCfg: ReturnType<typeof TnveConfigSchema.parse>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snt-daemon-'));
    [hv, sw] = memoryLinkPair(
      { name: 'eth0', mac: '02:00:00:00:aa:01' },
      { name: 'swp1', mac: '02:00:00:00:bb:01' },
    );
    nnve = await NnveDaemon.start(
      NnveConfigSchema.parse({
        ports: [{ name: 'swp1' }],
        vlanPool: '300-302',
        stateDir: join(dir, 'nnve'),
        api: '127.0.0.1:0',
        profile: 'splitnve',
        evb,
      }),
      { log: quiet, openLink: () => sw },
    );
    api = `unix:${join(dir, 'tnve.sock')}`;
    tnveCfg = TnveConfigSchema.parse({
      uplinks: [{ name: 'eth0' }],
      stateDir: join(dir, 'tnve'),
      api,
      profile: 'splitnve',
      evb,
      requestTimeoutMs: 10000,
      typeVn: { '42': 5042 },
    });
    tnve = await TnveDaemon.start(tnveCfg, { log: quiet, openLink: () => hv });
  });

  after(async () => {
    await tnve?.stop();
    await nnve?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('define, start (answers with the local tag), events stream, stop', async () => {
    const events: SseEvent[] = [];
    const ac = new AbortController();
    const following = followEvents(api, (e) => events.push(e), ac.signal);
    const def = await apiCall<Record<string, unknown>>(api, 'PUT', '/v1/vms/vm1', {
      interfaces: [iface(1, 5000, { ips: ['10.1.0.1'], port: 'vnet1' })],
    });
    assert.equal(def.state, 'shutoff');
    const t0 = performance.now();
    const st = await apiCall<{
      state: string;
      view: { interfaces: { localTag: { vid: number; uplink: string }; tsiState: string }[] };
    }>(api, 'POST', '/v1/vms/vm1/start', {});
    const startMs = performance.now() - t0;
    assert.equal(st.state, 'running');
    assert.equal(st.view.interfaces[0]!.tsiState, 'Activated');
    assert.deepEqual(st.view.interfaces[0]!.localTag, { uplink: 'eth0', vid: 300 });
    assert.ok(startMs > 0);
    const vns = await apiCall<{ vni: number; active: string; uplinks: { vid: number }[] }[]>(
      api,
      'GET',
      '/v1/vns',
    );
    assert.deepEqual(
      vns.map((v) => [v.vni, v.active, v.uplinks[0]!.vid]),
      [[5000, 'eth0', 300]],
    );
    // the nNVE sees the IPv4 filter
    const nv = (await (
      await fetch(
        `http://127.0.0.1:${(nnve.api.server.address() as { port: number }).port}/v1/vsis`,
      )
    ).json()) as { state: string; filterFormat: number }[];
    assert.equal(nv[0]!.state, 'Activated');
    await apiCall(api, 'POST', '/v1/vms/vm1/stop', {});
    for (
      let i = 0;
      i < 100 &&
      !events.some((e) => e.event === 'tag' && (e.data as { vid: unknown }).vid === null);
      i++
    )
      await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    await following;
    const kinds = events.map((e) => e.event);
    assert.ok(kinds.includes('hello'));
    const tag = events.find((e) => e.event === 'tag');
    assert.deepEqual(
      [(tag!.data as { vid: number }).vid, (tag!.data as { port: string }).port],
      [300, 'vnet1'],
    );
    assert.ok(kinds.includes('vm'));
    assert.ok(kinds.includes('op-result'));
    assert.ok(events.some((e) => e.event === 'tag' && (e.data as { vid: unknown }).vid === null));
  });

  it('errors are problem+json with the reason code and the uplink', async () => {
    // pool 300-302: VN 5000 freed by the stop, so three VNs fit and a fourth does not
    for (const [n, vni] of [
      [2, 6001],
      [3, 6002],
      [4, 6003],
      [5, 6004],
    ] as const) {
      await apiCall(api, 'PUT', `/v1/vms/p${n}`, { interfaces: [iface(n, vni)] });
    }
    for (const n of [2, 3, 4]) await apiCall(api, 'POST', `/v1/vms/p${n}/start`, {});
    const e = await apiCall(api, 'POST', '/v1/vms/p5/start', {}).catch((x: unknown) => x);
    assert.ok(e instanceof ApiCallError);
    assert.equal(e.status, 409);
    assert.equal(e.body.error, 'refused');
    assert.match(String(e.body.detail), /uplink eth0: refused reason 2 \(insufficient resources\)/);
    assert.equal((e.body.failures as { reason: number }[])[0]!.reason, 2);
    assert.equal(e.body.state, 'shutoff');
    const nf = await apiCall(api, 'POST', '/v1/vms/nope/start', {}).catch((x: unknown) => x);
    assert.equal((nf as ApiCallError).status, 404);
    const bad = await apiCall(api, 'PUT', '/v1/vms/bad', {
      interfaces: [{ vsiId: 'x', macs: ['zz'] }],
    }).catch((x: unknown) => x);
    assert.equal((bad as ApiCallError).status, 400);
    assert.match((bad as ApiCallError).message, /not a UUID: x/);
    assert.match((bad as ApiCallError).message, /not a MAC address/);
    for (const n of [2, 3, 4, 5]) await apiCall(api, 'DELETE', `/v1/vms/p${n}`);
  });

  it('splitnve vm on the command line', async () => {
    const a = ['vm', '--api', api];
    let r = await cli([
      ...a,
      'define',
      'cvm',
      '--iface',
      `vsi=00000000-0000-4000-8000-0000000000c1,type=42,mac=52:54:00:00:00:c1,ip=10.9.0.1,port=vnetc`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    r = await cli([...a, 'start', 'cvm']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /start cvm: running .* Activated tag 30\d on eth0/);
    r = await cli([...a, '--json', 'show', 'cvm']);
    const v = JSON.parse(r.stdout) as { interfaces: { vni: number; ips: string[] }[] };
    assert.equal(v.interfaces[0]!.vni, 5042, 'VN from the typeVn map');
    r = await cli([
      ...a,
      'set-addresses',
      'cvm',
      '--vsi',
      '00000000-0000-4000-8000-0000000000c1',
      '--ip',
      '10.9.0.2',
      '--ip',
      'fd00::9',
    ]);
    assert.equal(r.code, 0, r.stderr);
    r = await cli([...a, 'migrate-in', 'commit', 'cvm']);
    assert.equal(r.code, 0, 'commit of a running VM is idempotent');
    r = await cli([...a, 'migrate-in', 'abort', 'cvm']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /VM cvm is running: migrate-in-abort needs incoming/);
    r = await cli([...a, 'suspend', 'cvm']);
    assert.equal(r.code, 0, r.stderr);
    r = await cli([...a, 'list']);
    assert.match(r.stdout, /cvm\tsuspended/);
    r = await cli([...a, 'destroy', 'cvm']);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(['vm', '--api', 'unix:/nonexistent/sock', 'list']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /tNVE API at unix:\/nonexistent\/sock/);
  });

  it('restart: VMs and tags come back, the nNVE kept them; reconcile applies what changed meanwhile', async () => {
    for (const [n, vni] of [
      [11, 7001],
      [12, 7002],
      [13, 7003],
    ] as const)
      await apiCall(api, 'PUT', `/v1/vms/r${n}`, { interfaces: [iface(n, vni)] });
    await apiCall(api, 'POST', '/v1/vms/r11/start', {});
    await apiCall(api, 'POST', '/v1/vms/r12/start', {});
    const before = await apiCall<
      { name: string; state: string; interfaces: { localTag: unknown }[] }[]
    >(api, 'GET', '/v1/vms');
    await tnve.stop();
    tnve = await TnveDaemon.start(tnveCfg, { log: quiet, openLink: () => hv.reopen() });
    const afterRestart = await apiCall<{ name: string; state: string }[]>(api, 'GET', '/v1/vms');
    assert.deepEqual(
      afterRestart.map((v) => [v.name, v.state]),
      before.map((v) => [v.name, v.state]),
    );
    // wait for the re-assertion, then the tags are the same
    let again: typeof before = [];
    for (let i = 0; i < 100; i++) {
      again = await apiCall(api, 'GET', '/v1/vms');
      if (
        again.every(
          (v, j) =>
            JSON.stringify(v.interfaces[0]!.localTag) ===
            JSON.stringify(before[j]!.interfaces[0]!.localTag),
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(
      again.map((v) => v.interfaces[0]!.localTag),
      before.map((v) => v.interfaces[0]!.localTag),
    );
    // While the agent was down, r11 stopped, r13 started and r14 appeared running.
    const file = join(dir, 'reconcile.json');
    writeFileSync(
      file,
      JSON.stringify({
        vms: [
          { name: 'r11', state: 'shutoff' },
          { name: 'r12', state: 'running' },
          { name: 'r13', state: 'running' },
          { name: 'r14', state: 'running', definition: { interfaces: [iface(14, 7001)] } },
        ],
      }),
    );
    const r = await cli(['vm', '--api', api, 'reconcile', '--file', file, '--prune']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout) as { ok: boolean; results: { name: string; state: string }[] };
    assert.equal(out.ok, true);
    const states = Object.fromEntries(out.results.map((x) => [x.name, x.state]));
    assert.equal(states.r11, 'shutoff');
    assert.equal(states.r13, 'running');
    assert.equal(states.r14, 'running');
    assert.equal(states.vm1, null, 'pruned');
    const nv = (await (
      await fetch(
        `http://127.0.0.1:${(nnve.api.server.address() as { port: number }).port}/v1/vsis`,
      )
    ).json()) as { vsi: string; state: string }[];
    assert.deepEqual(
      nv
        .filter((x) => x.state === 'Activated')
        .map((x) => x.vsi.slice(-2))
        .sort(),
      ['0c', '0d', '0e'],
    );
  });
});
