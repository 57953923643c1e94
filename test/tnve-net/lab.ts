/**
 * A lab of real daemons for the tNVE tests: network namespaces joined by veth pairs, `splitnve
 * nnve` / `splitnve tnve` spawned inside them with `ip netns exec` (raw sockets on the veths),
 * the tNVE and nNVE APIs on unix sockets. Each nNVE's JSON log is followed to know every TSI's state
 * on it and to check that no VSI is ever Activated twice on it. Everything created is named
 * `snt<pid>…` (or another tag than snt) and removed by destroy() (namespaces, hence their veths; children by PID).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiCall } from '../../src/tnve/client.js';

export const MAIN = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'src',
  'cli',
  'main.js',
);
/** EVB timers for the tests: keep-alive 10µs·2^15 = 328 ms, ECP ACK 10 ms. */
export const EVB_ARGS = ['--r', '3', '--rte', '10', '--rwd', '15', '--rka', '15'];
export const KA_MS = 327.68;

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface TsiLog {
  time: number;
  port: string;
  station: string;
  vsi: string;
  from: string;
  to: string;
  cause: string;
  vids: number[];
  migration?: string;
}

export class Daemon {
  readonly lines: Record<string, unknown>[] = [];
  private buf = '';
  private waiters: (() => void)[] = [];
  exited: number | null = null;
  stderr = '';

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const l = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        try {
          this.lines.push(JSON.parse(l) as Record<string, unknown>);
        } catch {
          this.lines.push({ raw: l });
        }
        this.wake();
      }
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    child.on('exit', (code) => {
      this.exited = code ?? -1;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits for a log line matching `pred` (from `from` on). */
  async waitLog(
    pred: (l: Record<string, unknown>) => boolean,
    what: string,
    ms = 10000,
    from = 0,
  ): Promise<Record<string, unknown>> {
    const end = Date.now() + ms;
    for (;;) {
      const hit = this.lines.slice(from).find(pred);
      if (hit) return hit;
      if (this.exited !== null)
        throw new Error(`${this.name} exited (${this.exited}) waiting for ${what}: ${this.stderr}`);
      if (Date.now() > end) throw new Error(`${this.name}: no ${what} within ${ms} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  tsiLogs(): TsiLog[] {
    return this.lines
      .filter((l) => l.event === 'tsi.state')
      .map((l) => ({ ...(l as unknown as TsiLog), time: Date.parse(l.time as string) }));
  }

  /** TSI states on this nNVE from its log: "port|station|vsi" -> Activated/Associated. */
  tsiStates(): Map<string, string> {
    const m = new Map<string, string>();
    for (const l of this.tsiLogs()) {
      const k = `${l.port}|${l.vsi}`;
      if (l.to === 'Init') m.delete(k);
      else m.set(k, l.to);
    }
    return m;
  }

  /** Times a VSI was Activated on two ports of this nNVE at once (must be none). */
  doubleActivations(): string[] {
    const active = new Map<string, Set<string>>();
    const out: string[] = [];
    for (const l of this.tsiLogs()) {
      const set = active.get(l.vsi) ?? new Set<string>();
      const where = `${l.port}/${l.station}`;
      if (l.to === 'Activated') {
        set.add(where);
        if (set.size > 1) out.push(`${l.vsi} Activated at ${[...set].join(' and ')}`);
      } else set.delete(where);
      active.set(l.vsi, set);
    }
    return out;
  }

  /** SIGKILL: no goodbye, no last write; resolves once the process is gone. */
  async kill(): Promise<void> {
    if (this.exited !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }

  async stop(): Promise<void> {
    if (this.exited !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      this.child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      this.child.kill('SIGTERM');
    });
  }
}

/** A VM as `GET /v1/vms/:name` shows it (the fields the tests read). */
export interface VmView {
  state: string;
  interfaces: {
    vsiId: string;
    tsiState: string;
    macs: string[];
    ips: string[];
    localTag: { uplink: string; vid: number } | null;
    uplinks: { uplink: string; role: string; state: string }[];
  }[];
}

export class Lab {
  /** Names of namespaces and interfaces: `tag` (default snt), then this process's pid. */
  readonly prefix: string;
  /** EVB arguments of every daemon of this lab. */
  constructor(
    readonly evbArgs: readonly string[] = EVB_ARGS,
    tag = 'snt',
  ) {
    this.prefix = `${tag}${process.pid}`;
  }
  readonly dir = mkdtempSync(join(tmpdir(), 'snt-lab-'));
  private readonly namespaces: string[] = [];
  private readonly daemons: Daemon[] = [];

  /** A namespace named prefix+tag (tags: one or two characters). */
  ns(tag: string): string {
    const n = `${this.prefix}${tag}`;
    ip('netns', 'add', n);
    this.namespaces.push(n);
    ip('-n', n, 'link', 'set', 'lo', 'up');
    return n;
  }

  /** A veth pair between two namespaces, both ends up; returns the two interface names. */
  veth(nsA: string, nsB: string, tag: string): [string, string] {
    const a = `${this.prefix}${tag}a`;
    const b = `${this.prefix}${tag}b`;
    if (a.length > 15) throw new Error(`interface name ${a} is too long`);
    ip('link', 'add', a, 'netns', nsA, 'type', 'veth', 'peer', 'name', b, 'netns', nsB);
    ip('-n', nsA, 'link', 'set', a, 'up');
    ip('-n', nsB, 'link', 'set', b, 'up');
    return [a, b];
  }

  spawn(name: string, netns: string, args: string[]): Daemon {
    const c = spawn('ip', ['netns', 'exec', netns, process.execPath, MAIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const d = new Daemon(name, c);
    this.daemons.push(d);
    return d;
  }

  async nnve(name: string, netns: string, ports: string[], extra: string[] = []): Promise<Daemon> {
    const d = this.spawn(name, netns, [
      'nnve',
      ...ports.flatMap((p) => ['--port', p]),
      '--state-dir',
      join(this.dir, name),
      '--api',
      this.nnveApi(name),
      '--profile',
      'splitnve',
      '--vlan-pool',
      '100-199',
      ...this.evbArgs,
      ...extra,
    ]);
    await d.waitLog((l) => l.event === 'daemon.started', 'nnve start');
    return d;
  }

  api(name: string): string {
    return `unix:${join(this.dir, `${name}.sock`)}`;
  }

  /** The nNVE `name`'s API (a unix socket, reachable from outside its namespace). */
  nnveApi(name: string): string {
    return `unix:${join(this.dir, `${name}.nnve.sock`)}`;
  }

  /** A call to the API of the nNVE `name` (e.g. GET /v1/tsis, POST /v1/vns). */
  async nnveCall<T = Record<string, unknown>>(
    name: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<T> {
    return apiCall<T>(this.nnveApi(name), method, path, body);
  }

  /** The MAC address of an interface (a station's id is its uplink's MAC). */
  mac(netns: string, ifname: string): string {
    const j = JSON.parse(ip('-n', netns, '-j', 'link', 'show', 'dev', ifname)) as {
      address: string;
    }[];
    return j[0]!.address;
  }

  /**
   * One hypervisor (namespace `hv`) with an uplink to each of two nNVEs (`na`, `nb`), all
   * started; `ns` gets the three namespaces.
   */
  async dualHomed(
    ns: Record<string, string>,
    tnveExtra: string[] = [],
  ): Promise<{ a: Daemon; b: Daemon; hv: Daemon; u1: string; u2: string; pa: string; pb: string }> {
    for (const t of ['na', 'nb', 'hv']) ns[t] = this.ns(t);
    const [u1, pa] = this.veth(ns.hv!, ns.na!, 'a');
    const [u2, pb] = this.veth(ns.hv!, ns.nb!, 'b');
    const [a, b] = await Promise.all([
      this.nnve('na', ns.na!, [pa]),
      this.nnve('nb', ns.nb!, [pb]),
    ]);
    const hv = await this.tnve('hv', ns.hv!, [u1, u2], tnveExtra);
    return { a, b, hv, u1, u2, pa, pb };
  }

  async tnve(
    name: string,
    netns: string,
    uplinks: string[],
    extra: string[] = [],
  ): Promise<Daemon> {
    const d = this.spawn(name, netns, [
      'tnve',
      ...uplinks.flatMap((u) => ['--uplink', u]),
      '--state-dir',
      join(this.dir, name),
      '--api',
      this.api(name),
      '--profile',
      'splitnve',
      ...this.evbArgs,
      ...extra,
    ]);
    await d.waitLog((l) => l.event === 'daemon.started', 'tnve start');
    // LLDP exchanged: the profile is known before the first request
    for (const u of uplinks)
      await d.waitLog((l) => l.event === 'evb.negotiated' && l.uplink === u, `EVB on ${u}`);
    return d;
  }

  async call<T = Record<string, unknown>>(
    name: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<T> {
    return apiCall<T>(this.api(name), method, path, body);
  }

  async until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async destroy(): Promise<void> {
    for (const d of this.daemons) await d.stop().catch(() => undefined);
    for (const n of this.namespaces) {
      try {
        ip('netns', 'del', n);
      } catch {
        // gone
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
