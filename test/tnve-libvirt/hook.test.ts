/**
 * The libvirt qemu hook against running tNVE daemons (two hypervisors on one nNVE, in-process
 * over in-memory links): the operations of a VM's life as libvirt calls them, a migration,
 * and the failures that must stop libvirt.
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

  it('a VM life: prepare, start, started, save, restore, destroy, reconnect', async () => {
    let r = await hookCli(apiSrc, ['web-01', 'prepare', 'begin', '-'], RUNNING_DOMAIN);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /interface 52:54:00:aa:bb:cc \(network\) skipped/);
    assert.equal((await vm(apiSrc, 'web-01')).state, 'shutoff');
    r = await hookCli(apiSrc, ['web-01', 'start', 'begin', '-'], RUNNING_DOMAIN);
    assert.equal(r.code, 0, r.stderr);
    let v = await vm(apiSrc, 'web-01');
    assert.equal(v.state, 'running');
    assert.deepEqual(
      v.interfaces.map((i) => i.tsiState),
      ['Activated', 'Activated'],
    );
    r = await hookCli(apiSrc, ['web-01', 'started', 'begin', '-'], RUNNING_DOMAIN);
    assert.equal(r.code, 0);
    assert.doesNotMatch(r.stderr, /warning/);
    // virsh save: release with reason "saved" -> suspended (pre-associated, S=1)
    let h = await runHook(['web-01', 'stopped', 'end', '-'], RUNNING_DOMAIN, { api: apiSrc });
    assert.equal(h.code, 0);
    h = await runHook(['web-01', 'release', 'end', 'saved'], RUNNING_DOMAIN, { api: apiSrc });
    assert.equal(h.code, 0, h.lines.join('\n'));
    assert.equal((await vm(apiSrc, 'web-01')).state, 'suspended');
    const nv = (await (await fetch(`http://${nnveApi}/v1/vsis`)).json()) as { state: string }[];
    assert.deepEqual(
      nv.map((x) => x.state),
      ['Associated', 'Associated'],
    );
    // virsh restore: restore, prepare, start -> resume
    for (const op of ['restore', 'prepare', 'start']) {
      h = await runHook(['web-01', op, 'begin', '-'], RUNNING_DOMAIN, { api: apiSrc });
      assert.equal(h.code, 0, h.lines.join('\n'));
    }
    v = await vm(apiSrc, 'web-01');
    assert.equal(v.state, 'running');
    // virsh destroy
    h = await runHook(['web-01', 'release', 'end', 'destroyed'], '', { api: apiSrc });
    assert.equal(h.code, 0, h.lines.join('\n'));
    assert.equal((await vm(apiSrc, 'web-01')).state, 'shutoff');
    // libvirtd restarts and reconnects to a running QEMU: the agent is told to have it running
    h = await runHook(['web-01', 'reconnect', 'begin', '-'], RUNNING_DOMAIN, { api: apiSrc });
    assert.equal(h.code, 0, h.lines.join('\n'));
    assert.equal((await vm(apiSrc, 'web-01')).state, 'running');
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

  it('migration: migrate begin at the destination, commit by the orchestrator, release "migrated" at the source', async () => {
    let h = await runHook(['web-01', 'migrate', 'begin', '-'], RUNNING_DOMAIN, { api: apiDst });
    assert.equal(h.code, 0, h.lines.join('\n'));
    for (const op of ['prepare', 'start', 'started']) {
      h = await runHook(['web-01', op, 'begin', '-'], RUNNING_DOMAIN, { api: apiDst });
      assert.equal(h.code, 0, h.lines.join('\n'));
    }
    assert.equal((await vm(apiDst, 'web-01')).state, 'incoming');
    const r = await apiCall<{ state: string }>(
      apiDst,
      'POST',
      '/v1/vms/web-01/migrate-in/commit',
      {},
    );
    assert.equal(r.state, 'running');
    h = await runHook(['web-01', 'stopped', 'end', '-'], RUNNING_DOMAIN, { api: apiSrc });
    assert.equal(h.code, 0);
    h = await runHook(['web-01', 'release', 'end', 'migrated'], RUNNING_DOMAIN, { api: apiSrc });
    assert.equal(h.code, 0, h.lines.join('\n'));
    const list = await apiCall<{ name: string }[]>(apiSrc, 'GET', '/v1/vms');
    assert.equal(
      list.some((x) => x.name === 'web-01'),
      false,
    );
    const nv = (await (await fetch(`http://${nnveApi}/v1/vsis`)).json()) as {
      port: string;
      state: string;
    }[];
    assert.deepEqual(
      nv.map((x) => `${x.port}:${x.state}`),
      ['swp2:Activated', 'swp2:Activated'],
    );
    // both hypervisors share a segment: the destination got the source's local tags
    const v = await vm(apiDst, 'web-01');
    assert.deepEqual(
      v.interfaces.map((i) => i.localTag?.vid),
      [400, 401],
    );
  });

  it('a start the nNVE refuses makes the hook fail (libvirt does not start the VM)', async () => {
    // pool 400-402 holds VN 5000 and 5001; VN 5042 (typeid 42) takes the last tag, a 4th fails
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
