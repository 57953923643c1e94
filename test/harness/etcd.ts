/**
 * Throw-away etcd (Debian `etcd-server` 3.4) on 127.0.0.1 for tests: one node or a 3-node
 * cluster, each member a child process of this test process (no --detach; stopped by PID),
 * data under /tmp/splitnve-etcd-<pid>-<n>/ (or `dataRoot`), fast raft timers (heartbeat 50 ms, election 300 ms)
 * so a leader failover takes well under a second.
 *
 * Ports: the range 24000-24999 is cut into slots of 8 (client ports base+0..2, peer base+4..6);
 * the first slot tried depends on the pid, and a slot with a port already bound is skipped, so
 * test processes running side by side do not collide.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { Etcd3 } from 'etcd3';

const PORT_LO = 24000;
const PORT_HI = 24999;
const SLOT = 8;
const SLOTS = Math.floor((PORT_HI - PORT_LO + 1) / SLOT);

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** Running process, or undefined while stopped. */
  proc: ChildProcess | undefined;
}

const live = new Set<ChildProcess>();
const roots = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Never leave an etcd behind, even when a test throws or the runner kills us.
  const killAll = (): void => {
    for (const p of live) {
      try {
        if (p.pid) process.kill(p.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAll();
      process.kill(process.pid, sig); // our handler is gone now: die as the signal says
    });
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

let slotCounter = 0;
async function pickBasePort(): Promise<number> {
  const first = (process.pid * 7 + slotCounter++ * 13) % SLOTS;
  for (let i = 0; i < SLOTS; i++) {
    const base = PORT_LO + ((first + i) % SLOTS) * SLOT;
    const ports = [0, 1, 2, 4, 5, 6].map((d) => base + d);
    let ok = true;
    for (const p of ports) if (!(await portFree(p))) ok = false;
    if (ok) return base;
  }
  throw new Error(`etcd harness: no free port slot in ${PORT_LO}-${PORT_HI}`);
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let clusterCounter = 0;

export interface EtcdClusterOptions {
  /** 1 or 3 members. Default 3. */
  readonly size?: 1 | 3;
  /** Time to wait for a healthy cluster. Default 15 s. */
  readonly startTimeoutMs?: number;
  /** Where the members keep their data (e.g. /dev/shm: no disk fsync latency). Default /tmp. */
  readonly dataRoot?: string;
}

export class EtcdCluster {
  readonly members: EtcdMember[];
  private readonly initialCluster: string;
  private readonly token: string;

  private constructor(
    readonly root: string,
    base: number,
    size: number,
  ) {
    this.members = [];
    for (let i = 0; i < size; i++) {
      const name = `m${i}`;
      const dataDir = `${root}/${name}`;
      this.members.push({
        name,
        clientUrl: `http://127.0.0.1:${base + i}`,
        peerUrl: `http://127.0.0.1:${base + 4 + i}`,
        dataDir,
        logFile: `${root}/${name}.log`,
        proc: undefined,
      });
    }
    this.initialCluster = this.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    this.token = `splitnve-${process.pid}-${base}`;
  }

  /** Starts the members and waits until they agree on a leader. */
  static async start(opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    const which = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
    if (which.status !== 0) {
      throw new Error('etcd harness: `etcd` is not on PATH (Debian package etcd-server)');
    }
    installExitHook();
    const base = await pickBasePort();
    const root = `${opts.dataRoot ?? '/tmp'}/splitnve-etcd-${process.pid}-${clusterCounter++}`;
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    roots.add(root);
    const c = new EtcdCluster(root, base, opts.size ?? 3);
    try {
      for (const m of c.members) c.spawnMember(m);
      await c.waitHealthy(opts.startTimeoutMs ?? 15000);
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  private spawnMember(m: EtcdMember): void {
    mkdirSync(m.dataDir, { recursive: true });
    const fd = openSync(m.logFile, 'a');
    const args = [
      '--name',
      m.name,
      '--data-dir',
      m.dataDir,
      '--listen-client-urls',
      m.clientUrl,
      '--advertise-client-urls',
      m.clientUrl,
      '--listen-peer-urls',
      m.peerUrl,
      '--initial-advertise-peer-urls',
      m.peerUrl,
      '--initial-cluster',
      this.initialCluster,
      '--initial-cluster-state',
      'new', // ignored when the data dir already holds a member (restart)
      '--initial-cluster-token',
      this.token,
      '--heartbeat-interval',
      '50',
      '--election-timeout',
      '300',
      '--logger',
      'zap',
      '--log-outputs',
      'stderr',
    ];
    const p = spawn('etcd', args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    live.add(p);
    p.once('exit', () => {
      live.delete(p);
      if (m.proc === p) m.proc = undefined;
    });
    m.proc = p;
  }

  /** Last lines of a member's log (for failure messages). */
  logTail(m: EtcdMember, lines = 20): string {
    try {
      return readFileSync(m.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Per running member: its id and the leader id it reports (undefined if unreachable). */
  async status(): Promise<{ member: EtcdMember; id: string; leader: string }[]> {
    const out: { member: EtcdMember; id: string; leader: string }[] = [];
    await Promise.all(
      this.members
        .filter((m) => m.proc)
        .map(async (m) => {
          const c = new Etcd3({
            hosts: m.clientUrl,
            dialTimeout: 300,
            defaultCallOptions: { deadline: Date.now() + 400 },
          });
          try {
            const s = await c.maintenance.status({ deadline: Date.now() + 400 });
            out.push({ member: m, id: s.header.member_id, leader: s.leader });
          } catch {
            /* not answering (yet) */
          } finally {
            c.close();
          }
        }),
    );
    return out;
  }

  /** Waits until every running member answers and all name the same, running, leader. */
  async waitHealthy(timeoutMs = 10000): Promise<EtcdMember> {
    const t0 = Date.now();
    for (;;) {
      const running = this.members.filter((m) => m.proc);
      const st = await this.status();
      if (st.length === running.length && st.length > 0) {
        const leader = st[0]!.leader;
        const lm = st.find((s) => s.id === leader);
        if (leader !== '0' && lm && st.every((s) => s.leader === leader)) return lm.member;
      }
      if (Date.now() - t0 > timeoutMs) {
        const dead = this.members.filter((m) => !m.proc).map((m) => m.name);
        throw new Error(
          `etcd harness: cluster in ${this.root} not healthy after ${timeoutMs} ms ` +
            `(answering: ${st.map((s) => `${s.member.name}->${s.leader}`).join(' ')}; stopped: ${dead.join(' ')})\n` +
            this.members.map((m) => `--- ${m.name}\n${this.logTail(m)}`).join('\n'),
        );
      }
      await delay(100);
    }
  }

  /** The current leader (waits for the cluster to agree on one). */
  leader(timeoutMs = 10000): Promise<EtcdMember> {
    return this.waitHealthy(timeoutMs);
  }

  /** Kills a member (default SIGKILL) and waits until its process has exited. */
  async kill(m: EtcdMember, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = m.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) {
      m.proc = undefined;
      return;
    }
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    await exited;
    m.proc = undefined;
  }

  /** Starts a stopped member again on its data dir. */
  async restart(m: EtcdMember, timeoutMs = 10000): Promise<void> {
    if (m.proc) throw new Error(`etcd harness: member ${m.name} is still running`);
    this.spawnMember(m);
    await this.waitHealthy(timeoutMs);
  }

  /** Stops every member and removes the data. */
  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => this.kill(m, 'SIGKILL')));
    rmSync(this.root, { recursive: true, force: true });
    roots.delete(this.root);
  }
}

/** Runs etcdctl (v3 API) against the cluster; returns stdout, throws with stderr on failure. */
export function etcdctl(endpoints: readonly string[], args: readonly string[]): string {
  const r = spawnSync(
    'etcdctl',
    ['--endpoints', endpoints.join(','), '--dial-timeout=1s', '--command-timeout=3s', ...args],
    { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' } },
  );
  if (r.status !== 0) {
    throw new Error(`etcdctl ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  }
  return r.stdout;
}
