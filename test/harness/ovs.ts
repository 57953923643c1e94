/**
 * Test harness for Open vSwitch with the userspace datapath (no kernel module here): isolated
 * OVS instances (ovsdb-server + ovs-vswitchd) inside network namespaces, each with its own
 * directory under /tmp, run as child processes WITHOUT --detach (a detached daemon is
 * re-parented to PID 1 and reaped late) and stopped by PID. Plus the namespace/veth plumbing the
 * OVS tests need: an underlay (a netdev bridge whose internal port holds the tunnel IP, veths
 * with MTU 1600 for the 50-byte VXLAN overhead) and "VM" NICs (checksum and segmentation
 * offloads off: with them, TCP through the userspace datapath stalls).
 *
 * Everything is registered in a Lab, whose cleanup() undoes it in reverse order (call it from
 * t.after / finally). Names must carry the caller's unique prefix (e.g. `sno${process.pid}`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program to completion; never throws for a non-zero exit (see `run`). */
export function exec(cmd: string, args: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => {});
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    child.stdin.end(input ?? '');
  });
}

/** Runs a program and returns stdout; throws with the command line and stderr on failure. */
export async function run(cmd: string, args: readonly string[], input?: string): Promise<string> {
  const r = await exec(cmd, args, input);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** Runs a program inside a network namespace. */
export function nsRun(
  ns: string,
  cmd: string,
  args: readonly string[],
  input?: string,
): Promise<string> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], input);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `ok` every 20 ms until it returns true; throws `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  ok: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Waits for a child to exit; SIGKILL after `graceMs`. */
async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Last-resort cleanup if the test process exits or is terminated before cleanup() ran:
 * synchronously SIGKILLs the daemons and deletes the namespaces and directories still listed.
 */
const leftovers = {
  pids: new Set<number>(),
  netns: new Set<string>(),
  dirs: new Set<string>(),
};
let emergencyInstalled = false;

function emergencyCleanup(): void {
  for (const pid of leftovers.pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const ns of leftovers.netns) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  for (const d of leftovers.dirs) rmSync(d, { recursive: true, force: true });
  leftovers.pids.clear();
  leftovers.netns.clear();
  leftovers.dirs.clear();
}

function installEmergencyCleanup(): void {
  if (emergencyInstalled) return;
  emergencyInstalled = true;
  process.on('exit', emergencyCleanup);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      emergencyCleanup();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

/** Collects undo steps; cleanup() runs them in reverse order and never throws. */
export class Lab {
  private readonly undo: { what: string; fn: () => Promise<unknown> | unknown }[] = [];

  constructor(readonly prefix: string) {
    installEmergencyCleanup();
  }

  /** A name with the lab prefix; interface names must fit in 15 characters. */
  name(suffix: string): string {
    const n = `${this.prefix}${suffix}`;
    if (n.length > 15) throw new Error(`name ${n} is longer than 15 characters`);
    return n;
  }

  defer(what: string, fn: () => Promise<unknown> | unknown): void {
    this.undo.push({ what, fn });
  }

  async cleanup(): Promise<void> {
    const errors: string[] = [];
    while (this.undo.length > 0) {
      const { what, fn } = this.undo.pop()!;
      try {
        await fn();
      } catch (e) {
        errors.push(`${what}: ${(e as Error).message}`);
      }
    }
    if (errors.length > 0) console.error(`# lab cleanup problems: ${errors.join('; ')}`);
  }

  /**
   * Creates a network namespace: lo up; IPv6 off (no ND/MLD chatter on test links); arp_ignore=1
   * so the kernel answers ARP only on the interface that holds the address. Without it the
   * kernel also answers for the tunnel IP on the underlay veth (an OVS port), OVS may learn
   * that veth's MAC as the VTEP's, and VXLAN then lands in the kernel instead of OVS.
   */
  async netns(suffix: string): Promise<string> {
    const ns = this.name(suffix);
    await run('ip', ['netns', 'add', ns]);
    leftovers.netns.add(ns);
    this.defer(`netns ${ns}`, async () => {
      await run('ip', ['netns', 'del', ns]);
      leftovers.netns.delete(ns);
    });
    await nsRun(ns, 'ip', ['link', 'set', 'lo', 'up']);
    await nsRun(ns, 'sh', [
      '-c',
      [
        'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6',
        'echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6',
        'echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore',
        'echo 1 > /proc/sys/net/ipv4/conf/default/arp_ignore',
      ].join('; '),
    ]);
    return ns;
  }

  /** A veth pair a@nsA <-> b@nsB, both up. Deleted with its namespace. */
  async veth(
    a: string,
    nsA: string,
    b: string,
    nsB: string,
    opts: { mtu?: number; macA?: string } = {},
  ): Promise<void> {
    const args = ['link', 'add', a, 'netns', nsA];
    if (opts.macA) args.push('address', opts.macA);
    args.push('type', 'veth', 'peer', 'name', b, 'netns', nsB);
    await run('ip', args);
    for (const [dev, ns] of [
      [a, nsA],
      [b, nsB],
    ] as const) {
      if (opts.mtu) await nsRun(ns, 'ip', ['link', 'set', dev, 'mtu', String(opts.mtu)]);
      await nsRun(ns, 'ip', ['link', 'set', dev, 'up']);
    }
  }

  /** Starts an isolated OVS instance in `ns`; stopped (by PID) and its directory removed at cleanup. */
  async ovs(suffix: string, ns: string): Promise<OvsInstance> {
    const inst = new OvsInstance(`/tmp/${this.name(suffix)}-ovs`, ns);
    this.defer(`ovs ${inst.dir}`, () => inst.stop());
    await inst.start();
    return inst;
  }

  /**
   * A "VM": namespace `suffix` with NIC `nic` (MAC, IPv4/24) whose peer `hostSide` lands in
   * `hostNs`; checksum and segmentation offloads off on the NIC.
   */
  async vm(
    suffix: string,
    opts: { nic: string; mac: string; ip: string; hostSide: string; hostNs: string },
  ): Promise<string> {
    const ns = await this.netns(suffix);
    await this.veth(opts.nic, ns, opts.hostSide, opts.hostNs, { macA: opts.mac });
    await nsRun(ns, 'ip', ['addr', 'add', `${opts.ip}/24`, 'dev', opts.nic]);
    await offloadsOff(ns, opts.nic);
    return ns;
  }
}

/**
 * Checksums and segmentation in software on a VM's NIC: a veth hands OVS (AF_PACKET) whatever
 * the stack built, and the userspace datapath neither completes partial checksums nor splits
 * 64 KiB GSO frames. On this kernel `tx off` no longer turns sg/tso/gso off by itself.
 */
export async function offloadsOff(ns: string, nic: string): Promise<void> {
  await nsRun(ns, 'ethtool', ['-K', nic, 'tx', 'off', 'sg', 'off', 'tso', 'off', 'gso', 'off']);
}

/** ovsdb-server + ovs-vswitchd (userspace datapath) with all state in `dir`. */
export class OvsInstance {
  private server: ChildProcess | null = null;
  private vswitchd: ChildProcess | null = null;

  constructor(
    readonly dir: string,
    readonly ns: string,
  ) {}

  get dbSocket(): string {
    return join(this.dir, 'db.sock');
  }

  get db(): string {
    return `unix:${this.dbSocket}`;
  }

  /** OpenFlow management target of a bridge of this instance. */
  mgmt(bridge: string): string {
    return `unix:${join(this.dir, `${bridge}.mgmt`)}`;
  }

  private env(): NodeJS.ProcessEnv {
    const d = this.dir;
    return { ...process.env, OVS_RUNDIR: d, OVS_LOGDIR: d, OVS_DBDIR: d, OVS_SYSCONFDIR: d };
  }

  private spawnDaemon(prog: string, args: string[], log: string): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns, prog, ...args], {
      env: this.env(),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    // `ip netns exec` execs the program: this PID is the daemon's.
    const pid = child.pid;
    if (pid !== undefined) {
      leftovers.pids.add(pid);
      child.once('exit', () => leftovers.pids.delete(pid));
    }
    const err: Buffer[] = [];
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('exit', (code, sig) => {
      if (code !== 0 && sig === null && code !== null) {
        console.error(
          `# ${prog} in ${this.ns} exited ${code}: ${Buffer.concat(err).toString().trim()} (log ${log})`,
        );
      }
    });
    return child;
  }

  private alive(child: ChildProcess | null): boolean {
    return !!child && child.exitCode === null && child.signalCode === null;
  }

  async start(): Promise<void> {
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    leftovers.dirs.add(this.dir);
    const conf = join(this.dir, 'conf.db');
    await run('ovsdb-tool', ['create', conf, '/usr/share/openvswitch/vswitch.ovsschema']);
    const log = join(this.dir, 'ovsdb-server.log');
    this.server = this.spawnDaemon(
      'ovsdb-server',
      [
        conf,
        `--remote=punix:${this.dbSocket}`,
        `--unixctl=${join(this.dir, 'ovsdb-server.ctl')}`,
        `--log-file=${log}`,
      ],
      log,
    );
    await waitFor(`ovsdb-server socket ${this.dbSocket}`, async () => {
      if (!this.alive(this.server)) throw new Error(`ovsdb-server exited: ${this.logTail(log)}`);
      return existsSync(this.dbSocket) && canConnect(this.dbSocket);
    });
    await this.vsctl('--no-wait', 'init');
    await this.startVswitchd();
  }

  async startVswitchd(): Promise<void> {
    const ctl = join(this.dir, 'ovs-vswitchd.ctl');
    rmSync(ctl, { force: true });
    const log = join(this.dir, 'ovs-vswitchd.log');
    this.vswitchd = this.spawnDaemon(
      'ovs-vswitchd',
      [this.db, `--unixctl=${ctl}`, `--log-file=${log}`],
      log,
    );
    await waitFor(`ovs-vswitchd control socket ${ctl}`, async () => {
      if (!this.alive(this.vswitchd)) throw new Error(`ovs-vswitchd exited: ${this.logTail(log)}`);
      return existsSync(ctl) && canConnect(ctl);
    });
  }

  /** Waits until a bridge accepts OpenFlow connections (e.g. after ovs-vswitchd restarts). */
  async bridgeReady(bridge: string): Promise<void> {
    const sock = join(this.dir, `${bridge}.mgmt`);
    await waitFor(`OpenFlow socket ${sock}`, () => existsSync(sock) && canConnect(sock));
  }

  /** SIGKILLs ovs-vswitchd (its flows are lost; the database stays). */
  async killVswitchd(): Promise<void> {
    const c = this.vswitchd;
    if (!c || !this.alive(c)) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGKILL');
    await exited;
    this.vswitchd = null;
  }

  get vswitchdPid(): number | undefined {
    return this.vswitchd?.pid;
  }

  async stop(): Promise<void> {
    if (this.vswitchd) await stopChild(this.vswitchd);
    if (this.server) await stopChild(this.server);
    this.vswitchd = this.server = null;
    rmSync(this.dir, { recursive: true, force: true });
    leftovers.dirs.delete(this.dir);
  }

  private logTail(path: string): string {
    try {
      return readFileSync(path, 'utf8').trim().split('\n').slice(-5).join(' | ');
    } catch {
      return '(no log)';
    }
  }

  vsctl(...args: string[]): Promise<string> {
    return run('ovs-vsctl', [`--db=${this.db}`, '--timeout=10', ...args]);
  }

  /** ovs-ofctl against a bridge of this instance: ofctl(bridge, 'dump-flows'). */
  ofctl(bridge: string, command: string, ...args: string[]): Promise<string> {
    return run('ovs-ofctl', ['-O', 'OpenFlow14', '--names', command, this.mgmt(bridge), ...args]);
  }

  /**
   * An underlay: netdev bridge `bridge` holding the veth `port`, with the tunnel address `cidr`
   * on the bridge's internal port (OVS routes VXLAN through it and ARPs itself).
   */
  async underlay(bridge: string, port: string, cidr: string): Promise<void> {
    await this.vsctl(
      'add-br',
      bridge,
      '--',
      'set',
      'bridge',
      bridge,
      'datapath_type=netdev',
      '--',
      'add-port',
      bridge,
      port,
    );
    await nsRun(this.ns, 'ip', ['addr', 'add', cidr, 'dev', bridge]);
    await nsRun(this.ns, 'ip', ['link', 'set', bridge, 'up']);
  }

  /** A plain learning netdev bridge (stands in for a hypervisor vswitch). */
  async hypervisorBridge(
    bridge: string,
    trunk: string,
    access: readonly { port: string; vlan: number }[],
  ): Promise<void> {
    const args = [
      'add-br',
      bridge,
      '--',
      'set',
      'bridge',
      bridge,
      'datapath_type=netdev',
      '--',
      'add-port',
      bridge,
      trunk,
    ];
    for (const a of access) args.push('--', 'add-port', bridge, a.port, `tag=${a.vlan}`);
    await this.vsctl(...args);
  }
}

/** `ping` from a namespace; true if at least one reply came back. */
export async function ping(
  ns: string,
  dst: string,
  opts: { count?: number; src?: string } = {},
): Promise<boolean> {
  const args = [
    'netns',
    'exec',
    ns,
    'ping',
    '-n',
    '-q',
    '-c',
    String(opts.count ?? 2),
    '-i',
    '0.2',
    '-W',
    '1',
  ];
  if (opts.src) args.push('-I', opts.src);
  args.push(dst);
  return (await exec('ip', args)).code === 0;
}

/** Pings until one succeeds (the first may wait for ARP through a fresh path). */
export async function pingEventually(ns: string, dst: string, tries = 5): Promise<boolean> {
  for (let i = 0; i < tries; i++) if (await ping(ns, dst, { count: 1 })) return true;
  return false;
}
