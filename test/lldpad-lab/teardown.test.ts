/**
 * The harness cleans up after itself: Lab.close() stops lldpad by PID and deletes what the lab
 * created (also after a failure half-way), lldpad's /dev/shm stays inside its private mount
 * namespace, only tracked processes are ever signalled, and a test process that exits or is
 * terminated takes its tracked children with it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Lldpad } from '../harness/lldpad.js';
import { Lab, listNetns } from '../harness/netns.js';
import { run, runningProcesses, spawnManaged, stopAll, waitUntil } from '../harness/proc.js';

function shmMounts(pid: number | 'self'): string[] {
  return readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4] === '/dev/shm');
}

/** True while /proc/PID exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

test('close() stops lldpad by PID, removes the namespaces, leaves the root /dev/shm alone', async () => {
  const rootShm = shmMounts('self');
  const rootState = existsSync('/dev/shm/lldpad.state');
  const lab = Lab.create('snl');
  try {
    const ns = await lab.addNetns('one');
    await lab.addVeth({ netns: ns, name: 'v0' }, { netns: ns, name: 'v1' });
    const d = await Lldpad.start(lab, {
      netns: ns,
      ifname: 'v0',
      role: 'station',
      configure: false,
    });
    assert.ok(alive(d.pid));
    assert.notEqual(
      readlinkSync(`/proc/${d.pid}/ns/mnt`),
      readlinkSync('/proc/self/ns/mnt'),
      'lldpad runs in its own mount namespace',
    );
    const inner = shmMounts(d.pid);
    assert.ok(inner.length > rootShm.length, `a private tmpfs on lldpad's /dev/shm: ${inner}`);
    assert.ok(existsSync(`/proc/${d.pid}/root/dev/shm/lldpad.state`), 'state in its own /dev/shm');
    assert.equal(existsSync('/dev/shm/lldpad.state'), rootState, 'root /dev/shm untouched');
    assert.deepEqual(await listNetns(lab.id), [lab.nsName('one')]);

    // A second lldpad in the same namespace exits at once; the error carries lldpad's reason.
    await assert.rejects(
      Lldpad.start(lab, { netns: ns, ifname: 'v1', role: 'bridge', readyTimeoutMs: 5000 }),
      /exited \(code 1[\s\S]*another lldpad instance is running/,
    );

    // What lldptool accepts: exponents 0..31, retries 0..7 (the harness checks the same ranges).
    await d.setEvb({ retries: 0, rte: 0, rwd: 0, rka: 0 });
    assert.equal((await d.getEvbConfig())['vdprka'], '0');
    await d.setEvb({ retries: 7, rte: 31, rwd: 31, rka: 31 });
    assert.equal((await d.getEvbConfig())['ecprte'], '31');
    for (const bad of ['vdprka=32', 'ecprte=32', 'vdprwd=32', 'ecpretries=8']) {
      const r = await d.lldptoolRaw(['-T', '-i', 'v0', '-g', 'ncb', '-V', 'evb', '-c', bad]);
      assert.notEqual(r.code, 0, `lldptool must refuse ${bad}: ${r.stdout}`);
    }
    assert.equal((await d.getEvbConfig())['vdprka'], '31');

    await lab.close();
    assert.equal(d.proc.running, false);
    assert.ok(d.proc.exitInfo, 'exit seen by the harness');
    assert.equal(alive(d.pid), false, `lldpad ${d.pid} is gone`);
    assert.deepEqual(await listNetns(lab.id), [], 'namespaces deleted');
    assert.deepEqual(shmMounts('self'), rootShm, 'root mount table unchanged');
    assert.equal(existsSync('/dev/shm/lldpad.state'), rootState);
  } finally {
    await lab.close();
  }
});

test('close() after a failure half-way still removes everything, root-namespace links too', async () => {
  const lab = Lab.create('snl');
  const rootEnd = lab.ifName('r');
  try {
    const ns = await lab.addNetns('half');
    await lab.addVeth({ netns: undefined, name: rootEnd }, { netns: ns, name: 'v1' });
    assert.equal((await run('ip', ['link', 'show', rootEnd])).code, 0);
    await assert.rejects(
      lab.addVeth({ netns: ns, name: 'v2' }, { netns: lab.nsName('missing'), name: 'v3' }),
      /failed/,
    );
    await assert.rejects(
      lab.addVeth({ netns: ns, name: 'a-name-longer-than-15' }, { netns: ns, name: 'v3' }),
      /15 characters/,
    );
    await assert.rejects(
      lab.addVeth({ netns: ns, name: 'v4', mac: '01:00:5e:00:00:01' }, { netns: ns, name: 'v5' }),
      /group address/,
    );
  } finally {
    await lab.close();
  }
  assert.deepEqual(await listNetns(lab.id), []);
  assert.notEqual((await run('ip', ['link', 'show', rootEnd])).code, 0, `${rootEnd} deleted`);
  await assert.rejects(lab.addNetns('again'), /closed/);
});

test('stopAll() signals only the processes the harness started', async () => {
  // A process started outside the harness (by this test, stopped by this test by its PID).
  const foreign = spawn('sleep', ['30'], { stdio: 'ignore' });
  const lab = Lab.create('snl');
  try {
    const mine = spawnManaged({
      name: 'sleep-mine',
      cmd: 'sleep',
      args: ['30'],
      logFile: lab.file('s.log'),
    });
    assert.ok(runningProcesses().includes(mine));
    await stopAll(1000);
    assert.equal(mine.running, false);
    assert.equal(mine.exitInfo?.signal, 'SIGTERM');
    assert.equal(foreign.exitCode, null);
    assert.equal(foreign.signalCode, null);
    assert.ok(alive(foreign.pid!), 'the foreign process is untouched');
  } finally {
    foreign.kill('SIGTERM');
    await lab.close();
  }
});

const NETNS_JS = fileURLToPath(new URL('../harness/netns.js', import.meta.url));

const ACTIONS = {
  throw: "setTimeout(() => { throw new Error('boom'); }, 50);",
  // Dies while an async close() is under way (processes being stopped, namespaces not yet gone).
  'close-then-throw': "setTimeout(() => { void lab.close(); throw new Error('boom'); }, 50);",
  wait: 'setInterval(() => {}, 1000);',
};

/**
 * Runs a child Node process that opens a lab with one namespace and a tracked `sleep` in it,
 * prints both, then either dies of an uncaught exception or waits (for our SIGTERM).
 */
async function childWithLab(
  action: 'throw' | 'close-then-throw' | 'wait',
): Promise<{ sleepPid: number; ns: string; child: ReturnType<typeof spawn> }> {
  const script = `
    import { Lab } from ${JSON.stringify(NETNS_JS)};
    const lab = Lab.create('snl');
    const ns = await lab.addNetns('orphan');
    const p = lab.spawn({ name: 'sleep', cmd: 'sleep', args: ['30'], netns: ns });
    console.log(JSON.stringify({ pid: p.pid, ns }));
    ${ACTIONS[action]}
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.resume();
  const info = await waitUntil(
    'child to print its sleep PID and namespace',
    () => {
      try {
        return JSON.parse(out) as { pid: number; ns: string };
      } catch {
        return undefined;
      }
    },
    { timeoutMs: 10_000 },
  );
  return { sleepPid: info.pid, ns: info.ns, child };
}

test('a test process that dies of an uncaught exception leaves no process or namespace', async () => {
  const { sleepPid, ns, child } = await childWithLab('throw');
  assert.ok(alive(sleepPid));
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  assert.equal(code, 1);
  await waitUntil(`sleep ${sleepPid} to be gone`, () => !alive(sleepPid), { timeoutMs: 5000 });
  assert.deepEqual(await listNetns(ns), [], `namespace ${ns} deleted by the exit hook`);
});

test('a test process that dies while closing its lab still leaves nothing behind', async () => {
  const { sleepPid, ns, child } = await childWithLab('close-then-throw');
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  assert.equal(code, 1);
  await waitUntil(`sleep ${sleepPid} to be gone`, () => !alive(sleepPid), { timeoutMs: 5000 });
  assert.deepEqual(await listNetns(ns), [], `namespace ${ns} deleted by the exit hook`);
});

test('a test process stopped with SIGTERM stops its children and deletes its namespaces', async () => {
  const { sleepPid, ns, child } = await childWithLab('wait');
  assert.ok(alive(sleepPid));
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  child.kill('SIGTERM');
  assert.equal(await exited, 128 + 15);
  await waitUntil(`sleep ${sleepPid} to be gone`, () => !alive(sleepPid), { timeoutMs: 5000 });
  assert.deepEqual(await listNetns(ns), [], `namespace ${ns} deleted`);
});
