/**
 * Network namespaces, veth pairs and Linux bridges for integration tests.
 *
 * A `Lab` names everything from a prefix plus the test process's PID (so two test files running
 * in parallel never collide), records everything it creates, and removes all of it in `close()`,
 * also after a failure half-way. Veth pairs are created directly inside their namespaces, so no
 * interface name ever exists in the root namespace (unless a test asks for a root-namespace end).
 *
 * Linux bridge and the IEEE 802.1 reserved group addresses 01:80:C2:00:00:0X (kernel
 * br_handle_frame(), checked on this machine's kernel):
 *  - :00 (nearest customer bridge: LLDP of the EVB TLV, and every ECP/VDP frame) is flooded like
 *    any multicast when STP is off (stp_state 0, the default and what `addSwitch` uses), whatever
 *    group_fwd_mask says. With STP on it is consumed by the bridge.
 *  - :01 (pause) and :02 (slow protocols) are never forwarded; their mask bits (0x0007) are
 *    restricted: writing them to /sys/class/net/BR/bridge/group_fwd_mask fails with EINVAL.
 *  - :03 (nearest non-TPMR bridge), :0E (nearest bridge, plain LLDP) and the rest are forwarded
 *    only if their bit is set in group_fwd_mask (e.g. 0x4000 for :0E, 0x0008 for :03).
 * So lldpad's EVB/ECP/VDP traffic crosses a Linux bridge without any mask; a station port
 * marked `isolated` only talks to non-isolated ports (the nNVE port), never to other stations.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runOk, spawnManaged, type ManagedProcess, type SpawnOptions } from './proc.js';

/** Linux IFNAMSIZ - 1. */
export const MAX_IFNAME = 15;

export interface VethEnd {
  /** Namespace for this end; undefined = the root namespace (tracked and deleted on close). */
  readonly netns: string | undefined;
  readonly name: string;
  /** Unicast MAC, e.g. 02:00:00:00:aa:01. Random if omitted. */
  readonly mac?: string;
}

export interface SwitchOptions {
  /** Suffix of the switch namespace name (default 'sw'). */
  readonly suffix?: string;
  /** The nNVE side: the bridge port toward it is not isolated. */
  readonly nve: VethEnd;
  /** One veth end per station; their bridge ports are isolated (see `isolateStations`). */
  readonly stations: readonly VethEnd[];
  /** Station ports may not talk to each other (bridge port flag `isolated`). Default true. */
  readonly isolateStations?: boolean;
  /** Written to the bridge's group_fwd_mask (bits 0-2 are refused by the kernel). Default 0. */
  readonly groupFwdMask?: number;
}

export interface SwitchInfo {
  readonly netns: string;
  readonly bridge: string;
  /** Bridge port (in the switch namespace) of the nNVE. */
  readonly nvePort: string;
  /** Bridge ports of the stations, in the order given. */
  readonly stationPorts: readonly string[];
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
let labSeq = 0;
const openLabs = new Set<Lab>();
let exitHookInstalled = false;

/**
 * If the test process exits without closing a lab (uncaught exception, EPIPE, process.exit), the
 * 'exit' hook removes its namespaces and root-namespace links synchronously. Its processes are
 * SIGKILLed by proc.ts's own 'exit' hook (they are tracked there too).
 */
function installLabExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const lab of openLabs) lab.closeSyncOnExit();
  });
}

export function checkIfName(name: string): string {
  if (name.length === 0 || name.length > MAX_IFNAME || /[\s/:]/.test(name)) {
    throw new Error(
      `interface name '${name}' is invalid: it needs 1..${MAX_IFNAME} characters without ` +
        `spaces, '/' or ':'`,
    );
  }
  return name;
}

function checkMac(mac: string, what: string): string {
  if (!MAC_RE.test(mac))
    throw new Error(`${what}: MAC '${mac}' is not of the form xx:xx:xx:xx:xx:xx`);
  if ((parseInt(mac.slice(0, 2), 16) & 1) !== 0) {
    throw new Error(`${what}: MAC '${mac}' is a group address; an interface needs a unicast MAC`);
  }
  return mac.toLowerCase();
}

export class Lab {
  /** Prefix + PID (base 36) + per-process counter, e.g. 'snl2fk0'. */
  readonly id: string;
  /** Private directory for config and log files, removed on close unless SPLITNVE_KEEP_LAB=1. */
  readonly dir: string;
  readonly #namespaces: string[] = [];
  readonly #rootLinks: string[] = [];
  readonly #procs: ManagedProcess[] = [];
  readonly #cleanups: (() => Promise<void> | void)[] = [];
  #closed = false;

  private constructor(prefix: string) {
    if (!/^[a-z][a-z0-9]{0,5}$/.test(prefix)) {
      throw new Error(`lab prefix '${prefix}' must be 1-6 lowercase letters/digits`);
    }
    this.id = `${prefix}${process.pid.toString(36)}${(labSeq++).toString(36)}`;
    this.dir = mkdtempSync(join(tmpdir(), `${this.id}-`));
    openLabs.add(this);
    installLabExitHook();
  }

  /** Last-resort cleanup from the process 'exit' hook: synchronous, best effort, quiet. */
  closeSyncOnExit(): void {
    // Also runs when an async close() was interrupted: it deletes whatever is still recorded.
    if (!openLabs.has(this)) return;
    this.#closed = true;
    openLabs.delete(this);
    for (const p of this.#procs) p.signal('SIGKILL');
    const quiet = { stdio: 'ignore' as const, timeout: 5000 };
    for (const link of this.#rootLinks) spawnSync('ip', ['link', 'del', link], quiet);
    for (const ns of [...this.#namespaces].reverse()) spawnSync('ip', ['netns', 'del', ns], quiet);
    if (process.env.SPLITNVE_KEEP_LAB !== '1') rmSync(this.dir, { recursive: true, force: true });
  }

  /** A new, empty lab. Call `close()` when done (e.g. in `t.after` / `after`). */
  static create(prefix: string): Lab {
    return new Lab(prefix);
  }

  /** Namespace name for `suffix`: `<id>-<suffix>`. */
  nsName(suffix: string): string {
    return `${this.id}-${suffix}`;
  }

  /** Interface name `<id><suffix>`, checked against the 15-character limit. */
  ifName(suffix: string): string {
    return checkIfName(`${this.id}${suffix}`);
  }

  /** Path of a file in the lab's private directory. */
  file(name: string): string {
    return join(this.dir, name);
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error(`lab ${this.id} is already closed`);
  }

  /**
   * Creates namespace `<id>-<suffix>` with lo up and IPv6 disabled (for every interface created
   * in it later too, so no router/neighbour solicitations disturb captures). Returns its name.
   */
  async addNetns(suffix: string): Promise<string> {
    this.#checkOpen();
    const ns = this.nsName(suffix);
    let r = await run('ip', ['netns', 'add', ns]);
    if (r.code !== 0 && /exists/i.test(r.stderr)) {
      // The name holds our PID, so this is a leftover of a dead process that had the same PID.
      process.stderr.write(`# lab ${this.id}: removing stale namespace ${ns}\n`);
      await run('ip', ['netns', 'del', ns]);
      r = await run('ip', ['netns', 'add', ns]);
    }
    if (r.code !== 0) throw new Error(`ip netns add ${ns} failed: ${r.stderr.trim()}`);
    this.#namespaces.push(ns);
    await runOk('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await disableIpv6(ns, ['all', 'default', 'lo']);
    return ns;
  }

  /**
   * Creates a veth pair with its ends directly in their namespaces, sets the MACs, disables IPv6
   * on the ends and brings both up.
   */
  async addVeth(a: VethEnd, b: VethEnd): Promise<void> {
    this.#checkOpen();
    checkIfName(a.name);
    checkIfName(b.name);
    const end = (e: VethEnd): string[] => [
      e.name,
      ...(e.netns === undefined ? [] : ['netns', e.netns]),
      ...(e.mac === undefined ? [] : ['address', checkMac(e.mac, e.name)]),
    ];
    await runOk('ip', ['link', 'add', ...end(a), 'type', 'veth', 'peer', 'name', ...end(b)]);
    // Track root-namespace ends before anything else can fail.
    for (const e of [a, b]) if (e.netns === undefined) this.#rootLinks.push(e.name);
    for (const e of [a, b]) {
      await disableIpv6(e.netns, [e.name]);
      await runOk('ip', [...nsArgs(e.netns), 'link', 'set', e.name, 'up']);
    }
  }

  /**
   * A Linux bridge in its own namespace joining several stations and one nNVE port: each station
   * and the nNVE get a veth pair whose far end is a bridge port. Frames to 01:80:C2:00:00:00
   * (LLDP/EVB, ECP) are flooded because STP is off; station ports are isolated by default, so a
   * station's frames reach only the nNVE, while the nNVE's multicast frames reach every station.
   */
  async addSwitch(opts: SwitchOptions): Promise<SwitchInfo> {
    this.#checkOpen();
    const ns = await this.addNetns(opts.suffix ?? 'sw');
    const bridge = 'br0';
    await runOk('ip', ['-n', ns, 'link', 'add', bridge, 'type', 'bridge', 'stp_state', '0']);
    await disableIpv6(ns, [bridge]);
    if (opts.groupFwdMask !== undefined) await setGroupFwdMask(ns, bridge, opts.groupFwdMask);
    await runOk('ip', ['-n', ns, 'link', 'set', bridge, 'up']);
    const attach = async (end: VethEnd, port: string, isolated: boolean): Promise<void> => {
      await this.addVeth(end, { netns: ns, name: port });
      await runOk('ip', ['-n', ns, 'link', 'set', port, 'master', bridge]);
      if (isolated) {
        await runOk('ip', [
          '-n',
          ns,
          'link',
          'set',
          port,
          'type',
          'bridge_slave',
          'isolated',
          'on',
        ]);
      }
    };
    const nvePort = 'pnve';
    await attach(opts.nve, nvePort, false);
    const stationPorts: string[] = [];
    for (const [i, st] of opts.stations.entries()) {
      const port = `pst${i}`;
      await attach(st, port, opts.isolateStations ?? true);
      stationPorts.push(port);
    }
    return { netns: ns, bridge, nvePort, stationPorts };
  }

  /** Starts a tracked process whose log goes to `<dir>/<logName>` (stopped on close). */
  spawn(opts: Omit<SpawnOptions, 'logFile'> & { logName?: string }): ManagedProcess {
    this.#checkOpen();
    const p = spawnManaged({ ...opts, logFile: this.file(opts.logName ?? `${opts.name}.log`) });
    this.#procs.push(p);
    return p;
  }

  /** Runs `fn` during close(), before namespaces are deleted (last registered runs first). */
  onClose(fn: () => Promise<void> | void): void {
    this.#cleanups.push(fn);
  }

  /**
   * Stops this lab's processes (SIGTERM, SIGKILL after `graceMs`), runs onClose callbacks,
   * deletes its namespaces and root-namespace links, and removes its directory. Every step runs
   * even if an earlier one fails; the failures are reported together at the end. Idempotent.
   */
  close(graceMs = 3000): Promise<void> {
    this.#closing ??= this.#close(graceMs);
    return this.#closing;
  }

  #closing: Promise<void> | undefined;

  async #close(graceMs: number): Promise<void> {
    // The lab stays in openLabs until the end, so the exit hook still cleans up if the process
    // dies half-way through; each link/namespace leaves the records once it has been deleted.
    this.#closed = true;
    const errors: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown> | unknown): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        errors.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    await Promise.all(this.#procs.map((p) => attempt(`stop ${p.name}`, () => p.stop(graceMs))));
    for (const fn of this.#cleanups.reverse()) await attempt('onClose callback', fn);
    for (const link of [...this.#rootLinks]) {
      await attempt(`delete link ${link}`, async () => {
        const r = await run('ip', ['link', 'del', link]);
        // Deleting one veth end also deletes its peer; a missing link is fine.
        if (r.code !== 0 && !/Cannot find device/i.test(r.stderr)) throw new Error(r.stderr.trim());
        this.#rootLinks.splice(this.#rootLinks.indexOf(link), 1);
      });
    }
    for (const ns of [...this.#namespaces].reverse()) {
      await attempt(`delete netns ${ns}`, async () => {
        await runOk('ip', ['netns', 'del', ns]);
        this.#namespaces.splice(this.#namespaces.indexOf(ns), 1);
      });
    }
    openLabs.delete(this);
    if (process.env.SPLITNVE_KEEP_LAB === '1') {
      process.stderr.write(`# lab ${this.id}: files kept in ${this.dir}\n`);
    } else {
      await attempt(`remove ${this.dir}`, () => rmSync(this.dir, { recursive: true, force: true }));
    }
    if (errors.length > 0) throw new Error(`lab ${this.id} cleanup: ${errors.join('; ')}`);
  }

  /** Namespaces this lab created and has not yet deleted. */
  get namespaces(): readonly string[] {
    return [...this.#namespaces];
  }
}

function nsArgs(netns: string | undefined): string[] {
  return netns === undefined ? [] : ['-n', netns];
}

/** Sets disable_ipv6=1 for the given conf entries (interfaces, 'all', 'default'), if IPv6 exists. */
async function disableIpv6(netns: string | undefined, entries: readonly string[]): Promise<void> {
  const script = entries
    .map((e) => `f=/proc/sys/net/ipv6/conf/${e}/disable_ipv6; [ ! -e $f ] || echo 1 > $f`)
    .join('; ');
  const args = ['-c', script];
  await runOk('sh', args, netns === undefined ? {} : { netns });
}

/**
 * Writes /sys/class/net/BR/bridge/group_fwd_mask inside `netns` (via `ip link set ... type bridge
 * group_fwd_mask`). The kernel refuses bits 0-2 (01:80:C2:00:00:00-02) with EINVAL.
 */
export async function setGroupFwdMask(netns: string, bridge: string, mask: number): Promise<void> {
  if (!Number.isInteger(mask) || mask < 0 || mask > 0xffff) {
    throw new Error(`group_fwd_mask ${mask} for bridge ${bridge} is not a 16-bit value`);
  }
  if ((mask & 0x7) !== 0) {
    throw new Error(
      `group_fwd_mask 0x${mask.toString(16)} for bridge ${bridge}: bits 0-2 (01:80:C2:00:00:00-02) ` +
        `are restricted by the kernel; 01:80:C2:00:00:00 is forwarded anyway while STP is off`,
    );
  }
  await runOk('ip', [
    '-n',
    netns,
    'link',
    'set',
    bridge,
    'type',
    'bridge',
    'group_fwd_mask',
    `${mask}`,
  ]);
}

/** Reads /sys/class/net/BR/bridge/group_fwd_mask as seen inside `netns`. */
export async function getGroupFwdMask(netns: string, bridge: string): Promise<number> {
  const r = await runOk('cat', [`/sys/class/net/${bridge}/bridge/group_fwd_mask`], { netns });
  return parseInt(r.stdout.trim(), 16);
}

export interface LinkCounters {
  readonly rxPackets: number;
  readonly txPackets: number;
  readonly rxBytes: number;
  readonly txBytes: number;
}

/** Interface packet/byte counters (from `ip -s -j link show`). */
export async function linkCounters(
  netns: string | undefined,
  ifname: string,
): Promise<LinkCounters> {
  const r = await runOk('ip', [...nsArgs(netns), '-s', '-j', 'link', 'show', 'dev', ifname]);
  const parsed = JSON.parse(r.stdout) as {
    stats64?: { rx: { packets: number; bytes: number }; tx: { packets: number; bytes: number } };
  }[];
  const s = parsed[0]?.stats64;
  if (!s) throw new Error(`no statistics for ${ifname} in netns ${netns ?? '(root)'}`);
  return {
    rxPackets: s.rx.packets,
    txPackets: s.tx.packets,
    rxBytes: s.rx.bytes,
    txBytes: s.tx.bytes,
  };
}

/** Lists the network namespaces whose names start with `prefix` (for leak checks). */
export async function listNetns(prefix: string): Promise<string[]> {
  const r = await runOk('ip', ['netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}
