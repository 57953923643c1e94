/**
 * The libvirt qemu hook against running tNVE daemons (two hypervisors on one nNVE, in-process
 * over in-memory links): the operations of a VM's life with exactly the arguments libvirt
 * passes (`-` as the 4th argument everywhere; `release end <shutoff-reason>` since libvirt
 * 10.5.0), migrations with and without the orchestrator's migrate-out begin, and the failures
 * that must stop libvirt.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../src/daemon/logger.js';
import { memoryLinkPair } from '../../src/link/memory.js';
import { runHook } from '../../src/libvirt/hook.js';
import { NnveConfigSchema } from '../../src/nnve/config.js';
import { NnveDaemon } from '../../src/nnve/daemon.js';
import { apiCall } from '../../src/tnve/client.js';
import { TnveConfigSchema } from '../../src/tnve/config.js';
import { TnveDaemon } from '../../src/tnve/daemon.js';
import { INACTIVE_DOMAIN, PLAIN_DOMAIN, RUNNING_DOMAIN } from './fixtures.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
const quiet = createLogger({ name: 'test', level: 'silent' as 'info' });
// ECP ACK timer 20 ms: robust when CI runs two test files on two busy cores
const evb = { r: 3, rte: 11, rwd: 14, rka: 14 };

function hookCli(
  api: string,
  args: string[],
  xml: string,
): Promise<{ code: number; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [MAIN, 'libvirt-hook', '--api', api, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('error', reject);
    c.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    c.stdin.end(xml);
  });
}

interface View {
  state: string;
  interfaces: { vsiId: string; tsiState: string; localTag: { vid: number } | null }[];
}

describe('libvirt qemu hook', () => {
  let dir: string;
  let nnve: NnveDaemon;
  let src: TnveDaemon;
  let dst: TnveDaemon;
  let apiSrc: string;
  let apiDst: string;
  let nnveApi: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'snt-hook-'));
    const [h1, s1] = memoryLinkPair(
      { name: 'eth0', mac: '02:00:00:00:aa:01' },
      { name: 'swp1', mac: '02:00:00:00:bb:01' },
    );
    const [h2, s2] = memoryLinkPair(
      { name: 'eth0', mac: '02:00:00:00:aa:02' },
      { name: 'swp2', mac: '02:00:00:00:bb:02' },
    );
    const ports = new Map([
      ['swp1', s1],
      ['swp2', s2],
    ]);
    nnve = await NnveDaemon.start(
      NnveConfigSchema.parse({
        ports: [
          { name: 'swp1', segment: 'rack1' },
          { name: 'swp2', segment: 'rack1' },
        ],
        vlanPool: '400-402',
        stateDir: join(dir, 'nnve'),
        api: '127.0.0.1:0',
        profile: 'splitnve',
        evb,
      }),
      { log: quiet, openLink: (p) => ports.get(p.name)! },
    );
    nnveApi = `127.0.0.1:${(nnve.api.server.address() as { port: number }).port}`;
    const cfg = (name: string, link: typeof h1) =>
      TnveDaemon.start(
        TnveConfigSchema.parse({
          uplinks: [{ name: 'eth0' }],
          stateDir: join(dir, name),
          api: `unix:${join(dir, `${name}.sock`)}`,
          profile: 'splitnve',
          evb,
          requestTimeoutMs: 10000,
          typeVn: { '42': 5042 },
        }),
        { log: quiet, openLink: () => link },
      );
    src = await cfg('src', h1);
    dst = await cfg('dst', h2);
    apiSrc = `unix:${join(dir, 'src.sock')}`;
    apiDst = `unix:${join(dir, 'dst.sock')}`;
  });

  after(async () => {
    await src?.stop();
    await dst?.stop();
    await nnve?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const vm = (api: string, name: string) =>
    apiCall<View>(api, 'GET', `/v1/vms/${encodeURIComponent(name)}`);
  const vmNames = async (api: string) =>
    (await apiCall<{ name: string }[]>(api, 'GET', '/v1/vms')).map((x) => x.name);
  /** The nNVE's TSIs as `port:state`, in its order. */
  const nnveVsis = async () =>
    ((await (await fetch(`http://${nnveApi}/v1/vsis`)).json()) as { port: string; state: string }[])
      .map((x) => `${x.port}:${x.state}`)
      .sort();
  /** The hint bits of the nNVE's TSIs on a port (`s` suspend/leaving, `m` migrating in). */
  const nnveHints = async (port: string) =>
    (
      (await (await fetch(`http://${nnveApi}/v1/vsis`)).json()) as {
        port: string;
        hints: { s?: boolean; m?: boolean };
      }[]
    )
      .filter((x) => x.port === port)
      .map((x) => `s=${x.hints.s ? 1 : 0} m=${x.hints.m ? 1 : 0}`);
  /** Runs the hook as libvirt does and insists it succeeds. */
  const hook = async (api: string, args: string[], xml = RUNNING_DOMAIN) => {
    const h = await runHook(args, xml, { api });
    assert.equal(h.code, 0, `${args.join(' ')}: ${h.lines.join('\n')}`);
    return h;
  };
  /** `prepare`, `start`, `started` as libvirt runs them for `virsh start` (and a restore). */
  const boot = async (api: string) => {
    for (const op of ['prepare', 'start', 'started']) await hook(api, ['web-01', op, 'begin', '-']);
  };
  /** A stop as libvirt reports it: `stopped end -`, then `release end <extra>`. */
  const halt = async (api: string, extra: string) => {
    await hook(api, ['web-01', 'stopped', 'end', '-']);
    return hook(api, ['web-01', 'release', 'end', extra]);
  };
  /** Every test starts with web-01 unknown to both hypervisors. */
  const forget = async () => {
    for (const api of [apiSrc, apiDst])
      await apiCall(api, 'DELETE', '/v1/vms/web-01', {}).catch(() => undefined);
    assert.deepEqual(await nnveVsis(), []);
  };
  const ACTIVE_SRC = ['swp1:Activated', 'swp1:Activated'];
  const ACTIVE_DST = ['swp2:Activated', 'swp2:Activated'];

  it('a VM life as libvirt < 10.5.0 runs it (`-` everywhere): start, shutdown, destroy, reconnect', async () => {
    await forget();
    let r = await hookCli(apiSrc, ['web-01', 'prepare', 'begin', '-'], RUNNING_DOMAIN);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /interface 52:54:00:aa:bb:cc \(network\) skipped/);
    assert.equal((await vm(apiSrc, 'web-01')).state, 'shutoff');
    r = await hookCli(apiSrc, ['web-01', 'start', 'begin', '-'], RUNNING_DOMAIN);
    assert.equal(r.code, 0, r.stderr);
    const v = await vm(apiSrc, 'web-01');
    assert.equal(v.state, 'running');
    assert.deepEqual(
      v.interfaces.map((i) => i.tsiState),
      ['Activated', 'Activated'],
    );
    r = await hookCli(apiSrc, ['web-01', 'started', 'begin', '-'], RUNNING_DOMAIN);
    assert.equal(r.code, 0);
    assert.doesNotMatch(r.stderr, /warning/);
    assert.deepEqual(await nnveVsis(), ACTIVE_SRC);
    // virsh shutdown: the guest powers off; libvirt runs stopped and release with '-'
    r = await hookCli(apiSrc, ['web-01', 'stopped', 'end', '-'], RUNNING_DOMAIN);
    assert.equal(r.code, 0, r.stderr);
    r = await hookCli(apiSrc, ['web-01', 'release', 'end', '-'], RUNNING_DOMAIN);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /POST \/v1\/vms\/web-01\/stop: shutoff/);
    assert.equal((await vm(apiSrc, 'web-01')).state, 'shutoff');
    assert.deepEqual(await nnveVsis(), []);
    // virsh start, then virsh destroy: the same arguments as a shutdown
    await boot(apiSrc);
    assert.deepEqual(await nnveVsis(), ACTIVE_SRC);
    await halt(apiSrc, '-');
    assert.equal((await vm(apiSrc, 'web-01')).state, 'shutoff');
    assert.deepEqual(await nnveVsis(), []);
    // a second release (libvirt cleaning up a failed start) changes nothing
    const h = await hook(apiSrc, ['web-01', 'release', 'end', '-']);
    assert.match(h.lines.join('\n'), /shut off already/);
    // libvirtd restarts and reconnects to a running QEMU: the agent is told to have it running
    await hook(apiSrc, ['web-01', 'reconnect', 'begin', '-']);
    assert.equal((await vm(apiSrc, 'web-01')).state, 'running');
    assert.deepEqual(await nnveVsis(), ACTIVE_SRC);
  });

  it('virsh save / restore (libvirt < 10.5.0): the hook sees a stop, restore associates again', async () => {
    await forget();
    await boot(apiSrc);
    // virsh save (or managedsave): QEMU stops, libvirt passes '-' as for a shutdown
    const h = await halt(apiSrc, '-');
    assert.match(h.lines.join('\n'), /\/stop: shutoff/);
    assert.equal((await vm(apiSrc, 'web-01')).state, 'shutoff');
    assert.deepEqual(await nnveVsis(), []);
    // virsh restore (or start after managedsave): restore, then the start hooks
    await hook(apiSrc, ['web-01', 'restore', 'begin', '-']);
    assert.equal((await vm(apiSrc, 'web-01')).state, 'shutoff');
    await boot(apiSrc);
    assert.equal((await vm(apiSrc, 'web-01')).state, 'running');
    assert.deepEqual(await nnveVsis(), ACTIVE_SRC);
  });

  it('a save the orchestrator announced (splitnve vm suspend): kept suspended, S=1, resumed on restore', async () => {
    await forget();
    await boot(apiSrc);
    const s = await apiCall<{ state: string }>(apiSrc, 'POST', '/v1/vms/web-01/suspend', {});
    assert.equal(s.state, 'suspended');
    const h = await halt(apiSrc, '-');
    assert.match(h.lines.join('\n'), /suspended by the orchestrator/);
    assert.equal((await vm(apiSrc, 'web-01')).state, 'suspended');
    // pre-associated with the resources kept: the TSIs stay on the nNVE, deactivated
    assert.deepEqual(await nnveVsis(), ['swp1:Associated', 'swp1:Associated']);
    assert.deepEqual(await nnveHints('swp1'), ['s=1 m=0', 's=1 m=0']);
    await hook(apiSrc, ['web-01', 'restore', 'begin', '-']);
    assert.equal((await vm(apiSrc, 'web-01')).state, 'suspended');
    await boot(apiSrc);
    assert.equal((await vm(apiSrc, 'web-01')).state, 'running');
    assert.deepEqual(await nnveVsis(), ACTIVE_SRC);
  });

  it('libvirt >= 10.5.0 passes the shutoff reason: saved suspends, destroyed and crashed stop', async () => {
    await forget();
    await boot(apiSrc);
    await halt(apiSrc, 'saved');
    assert.equal((await vm(apiSrc, 'web-01')).state, 'suspended');
    assert.deepEqual(await nnveVsis(), ['swp1:Associated', 'swp1:Associated']);
    assert.deepEqual(await nnveHints('swp1'), ['s=1 m=0', 's=1 m=0']);
    await hook(apiSrc, ['web-01', 'restore', 'begin', '-']);
    await boot(apiSrc);
    assert.equal((await vm(apiSrc, 'web-01')).state, 'running');
    for (const reason of ['destroyed', 'crashed', 'shutdown']) {
      await halt(apiSrc, reason);
      assert.equal((await vm(apiSrc, 'web-01')).state, 'shutoff', reason);
      assert.deepEqual(await nnveVsis(), [], reason);
      await boot(apiSrc);
      assert.deepEqual(await nnveVsis(), ACTIVE_SRC, reason);
    }
  });

  /** The destination's side of `virsh migrate --live`, up to the orchestrator's commit. */
  const migrateIn = async () => {
    await hook(apiDst, ['web-01', 'migrate', 'begin', '-']);
    await boot(apiDst);
    assert.equal((await vm(apiDst, 'web-01')).state, 'incoming');
    // still Activated at the source, reserved (Associated, M=1) at the destination
    assert.deepEqual(await nnveVsis(), [...ACTIVE_SRC, 'swp2:Associated', 'swp2:Associated']);
    assert.deepEqual(await nnveHints('swp2'), ['s=0 m=1', 's=0 m=1']);
    const r = await apiCall<{ state: string }>(
      apiDst,
      'POST',
      '/v1/vms/web-01/migrate-in/commit',
      {},
    );
    assert.equal(r.state, 'running');
  };

  it('migration announced by the orchestrator (migrate-out begin): release commits, S=1', async () => {
    await forget();
    await boot(apiSrc);
    const b = await apiCall<{ state: string }>(
      apiSrc,
      'POST',
      '/v1/vms/web-01/migrate-out/begin',
      {},
    );
    assert.equal(b.state, 'outgoing');
    await migrateIn();
    // the source's QEMU stops after the switchover: libvirt passes '-' (before 10.5.0)
    const h = await halt(apiSrc, '-');
    assert.match(h.lines.join('\n'), /migrate-out\/commit: gone/);
    assert.equal((await vmNames(apiSrc)).includes('web-01'), false);
    assert.deepEqual(await nnveVsis(), ACTIVE_DST);
    // both hypervisors share a segment: the destination got the source's local tags
    const v = await vm(apiDst, 'web-01');
    assert.deepEqual(
      v.interfaces.map((i) => i.localTag?.vid),
      [400, 401],
    );
  });

  it('migration not announced (libvirt < 10.5.0): the source sees a stop, the destination keeps its TSIs', async () => {
    await forget();
    await boot(apiSrc);
    await migrateIn();
    const h = await halt(apiSrc, '-');
    assert.match(h.lines.join('\n'), /\/stop: shutoff/);
    // the hook cannot tell this from a shutdown: the VM stays defined (shut off) at the source
    assert.equal((await vm(apiSrc, 'web-01')).state, 'shutoff');
    assert.deepEqual(await nnveVsis(), ACTIVE_DST);
    assert.equal((await vm(apiDst, 'web-01')).state, 'running');
  });

  it('migration with libvirt >= 10.5.0 (release end migrated): migrate-out commit without begin', async () => {
    await forget();
    await boot(apiSrc);
    await migrateIn();
    const h = await halt(apiSrc, 'migrated');
    assert.match(h.lines.join('\n'), /migrate-out\/commit: gone/);
    assert.equal((await vmNames(apiSrc)).includes('web-01'), false);
    assert.deepEqual(await nnveVsis(), ACTIVE_DST);
  });

  it('a failed incoming migration: release at the destination aborts it, the source runs on', async () => {
    await forget();
    await boot(apiSrc);
    await apiCall(apiSrc, 'POST', '/v1/vms/web-01/migrate-out/begin', {});
    await hook(apiDst, ['web-01', 'migrate', 'begin', '-']);
    await hook(apiDst, ['web-01', 'prepare', 'begin', '-']);
    assert.equal((await vm(apiDst, 'web-01')).state, 'incoming');
    // the destination's QEMU is stopped (migration cancelled): libvirt runs its release
    const h = await halt(apiDst, '-');
    assert.match(h.lines.join('\n'), /migrate-in\/abort: gone/);
    assert.equal((await vmNames(apiDst)).includes('web-01'), false);
    // the orchestrator takes the source back (virsh migrate failed)
    const r = await apiCall<{ state: string }>(
      apiSrc,
      'POST',
      '/v1/vms/web-01/migrate-out/abort',
      {},
    );
    assert.equal(r.state, 'running');
    assert.deepEqual(await nnveVsis(), ACTIVE_SRC);
    await forget();
  });

  it('a domain without interfaces of ours is left alone', async () => {
    const h = await runHook(['build-runner', 'start', 'begin', '-'], PLAIN_DOMAIN, { api: apiSrc });
    assert.equal(h.code, 0);
    const list = await apiCall<{ name: string }[]>(apiSrc, 'GET', '/v1/vms');
    assert.equal(
      list.some((x) => x.name === 'build-runner'),
      false,
    );
  });

  it('a start the nNVE refuses makes the hook fail (libvirt does not start the VM)', async () => {
    // pool 400-402: web-01 takes two tags (VN 5000, 5001), VN 5042 (typeid 42) the last, a 4th fails
    await forget();
    await boot(apiSrc);
    let h = await runHook(['db&cache', 'start', 'begin', '-'], INACTIVE_DOMAIN, { api: apiSrc });
    assert.equal(h.code, 0, h.lines.join('\n'));
    const other = INACTIVE_DOMAIN.replace(/db&amp;cache/g, 'other')
      .replace("typeid='42'", "typeid='43'")
      .replace('0c6b4e1a', '1c6b4e1a');
    const src2 = other.replace('</devices>', '</devices>');
    h = await runHook(['other', 'start', 'begin', '-'], src2, { api: apiSrc });
    assert.equal(h.code, 1);
    assert.match(h.lines.join('\n'), /has no VN/);
    const withVn = other.replace(
      '<devices>',
      `<metadata><x:splitnve xmlns:x='https://splitnve.dev/xmlns/libvirt/1'><x:interface mac='52:54:00:11:22:33' vni='9999'/></x:splitnve></metadata><devices>`,
    );
    const r = await hookCli(apiSrc, ['other', 'start', 'begin', '-'], withVn);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /uplink eth0: refused reason 2 \(insufficient resources\)/);
    assert.equal((await vm(apiSrc, 'other')).state, 'shutoff');
  });

  it('malformed XML: start fails, release does not', async () => {
    let h = await runHook(['x', 'start', 'begin', '-'], '<domain><name>x</name>', { api: apiSrc });
    assert.equal(h.code, 1);
    assert.match(h.lines[0]!, /malformed XML at line 1/);
    h = await runHook(['x', 'release', 'end', '-'], '<domain', { api: apiSrc });
    assert.equal(h.code, 0);
  });

  it('an unreachable agent fails a start, never a reconnect', async () => {
    const api = `unix:${join(dir, 'nobody.sock')}`;
    let h = await runHook(['web-01', 'start', 'begin', '-'], RUNNING_DOMAIN, { api });
    assert.equal(h.code, 1);
    assert.match(h.lines.join('\n'), /tNVE API at unix:/);
    h = await runHook(['web-01', 'reconnect', 'begin', '-'], RUNNING_DOMAIN, { api });
    assert.equal(h.code, 0);
  });
});
