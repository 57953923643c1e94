/**
 * A private Open vSwitch for a test "hypervisor": ovsdb-server and ovs-vswitchd (userspace
 * datapath, no kernel module) started as children inside a network namespace, all state in
 * a temporary directory, stopped by PID. Minimal: what the tNVE tests need (a netdev bridge,
 * ports, their tags). A fuller shared harness may replace it (test/harness/ovs.ts).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export interface OvsHv {
  /** ovs-vsctl --db value. */
  readonly db: string;
  readonly dir: string;
  vsctl(...args: string[]): string;
  stop(): Promise<void>;
}

const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      c.kill('SIGKILL');
    }, 3000);
    c.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    c.kill('SIGTERM');
  });
}

/** Starts OVS in `netns` with its state under `dir`; `bridges` are created (datapath netdev). */
export async function startOvsHv(
  netns: string,
  dir: string,
  bridges: string[] = [],
): Promise<OvsHv> {
  mkdirSync(dir, { recursive: true });
  const env = {
    ...process.env,
    OVS_RUNDIR: dir,
    OVS_LOGDIR: dir,
    OVS_DBDIR: dir,
    OVS_SYSCONFDIR: dir,
  };
  const dbFile = join(dir, 'conf.db');
  const sock = join(dir, 'db.sock');
  const db = `unix:${sock}`;
  if (!existsSync(dbFile)) execFileSync('ovsdb-tool', ['create', dbFile, SCHEMA]);
  const children: ChildProcess[] = [];
  const logs: string[] = [];
  const start = (args: string[]): ChildProcess => {
    const c = spawn('ip', ['netns', 'exec', netns, ...args], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    c.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
    children.push(c);
    return c;
  };
  const stop = async (): Promise<void> => {
    for (const c of children.reverse()) await stopChild(c);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    start([
      'ovsdb-server',
      dbFile,
      `--remote=punix:${sock}`,
      `--unixctl=${join(dir, 'ovsdb-server.ctl')}`,
      `--log-file=${join(dir, 'ovsdb-server.log')}`,
    ]);
    for (let i = 0; !existsSync(sock); i++) {
      if (i > 500)
        throw new Error(`ovsdb-server in ${netns} did not create ${sock}: ${logs.join('')}`);
      sleepMs(10);
    }
    const vsctl = (...args: string[]): string =>
      execFileSync('ovs-vsctl', [`--db=${db}`, '--timeout=10', ...args], { env, encoding: 'utf8' });
    vsctl('--no-wait', 'init');
    start([
      'ovs-vswitchd',
      db,
      `--unixctl=${join(dir, 'ovs-vswitchd.ctl')}`,
      `--log-file=${join(dir, 'ovs-vswitchd.log')}`,
    ]);
    for (const br of bridges)
      vsctl('add-br', br, '--', 'set', 'bridge', br, 'datapath_type=netdev');
    return { db, dir, vsctl, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
