/**
 * The end-to-end world of the nNVE (used by test/nnve-e2e and by `npm run bench`'s P5): two
 * hypervisors with splitnve stations (tNVE) and VMs, two nNVE daemons each with its own Open
 * vSwitch (userspace datapath), a 3-member etcd on loopback as the NVA.
 *
 *   VM a1 ─┐                                                          ┌─ VM b1
 *   VM a2 ─┤ vswitch hva ══ trunk ka─ta ══ nNVE A ~~ VXLAN ~~ nNVE B ══ tb─kb ══ vswitch hvb ├─ VM b2
 *           tNVE A (station on ka)   OVS xa, 198.18.0.1   OVS xb, 198.18.0.2   tNVE B         └─ VM b3
 *                                        \                    /
 *                                         etcd m0 m1 m2 on 127.0.0.1
 *
 * Each nNVE runs as its own process (`splitnve nnve --dataplane ovs --nva etcd`, ports opened
 * in the nNVE's namespace), so it can be SIGKILLed. The tNVEs run in this process
 * (TnveDaemon.request is what the orchestrator calls). The kernel has no VLAN devices: each
 * hypervisor's vswitch is a userspace OVS bridge (vswitch.ts) that tags a VM's frames with the
 * VID the nNVE assigned to its VN, programmed with static per-VM flows (the hypervisor knows
 * where its VMs are; nothing is flood-and-learn).
 *
 * VM a1 migrates, back and forth (`migrateA1`). Its namespace holds the VM NIC and a "patch
 * panel" (a Linux bridge) with one uplink to each hypervisor's vswitch; only the uplink where the
 * VM runs is a port of it. Migrating moves the VM's link from one vswitch to the other in one
 * command (the VM's NIC keeps its carrier, as a live-migrated guest's NIC does), while the
 * source hypervisor unplugs the VM from its vswitch and the destination plugs it into its own
 * (its port was provisioned when the migration was prepared), and the VM is announced with RARP
 * as QEMU does. The signalling is RFC 8394's, through the tNVEs: destination Pre-Associate-RR
 * M=1 (prepare), Associate M=1 (the orchestrator waits for the nNVE's answer, then the VM runs
 * there), source De-Associate S=1. VMs ping the migrating one at 100 pps through the whole
 * sequence and `ping` counts what was lost.
 *
 * Everything is created under one prefix (`<prefix><pid>`: namespaces, interfaces, OVS
 * directories, the etcd key prefix) and removed by `close()`, also after a failed `create()`.
 * Needs root, Open vSwitch (ovsdb-server, ovs-vswitchd, ovs-vsctl, ovs-ofctl, ovsdb-tool),
 * etcd + etcdctl, iproute2, ping, ethtool.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../src/daemon/logger.js';
import { openRawLink, type RawLink } from '../../src/link/raw.js';
import { TnveConfigSchema } from '../../src/tnve/config.js';
import { TnveDaemon } from '../../src/tnve/daemon.js';
import { specFromJson } from '../../src/vdp/spec-json.js';
import type { VsiMode } from '../../src/vdp/types.js';
import { EtcdCluster, etcdctl } from './etcd.js';
import { Lab, OvsInstance, exec, nsRun, offloadsOff, sleep, waitFor } from './ovs.js';
import { spawnManaged, type ManagedProcess } from './proc.js';
import { Vswitch } from './vswitch.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The CLI the nNVE processes run (built). */
export const MAIN_JS = join(ROOT, 'dist', 'src', 'cli', 'main.js');

export type Side = 'a' | 'b';
export const VNI = 5000;
export const TIP = { a: '198.18.0.1', b: '198.18.0.2' } as const;
export const POOL = { a: '100-199', b: '200-299' } as const;
/** ECP ACK timeout 41 ms (RTE 12: a loaded CI machine can answer late), keep-alive 1.3 s. */
export const WORLD_EVB = { r: 3, rte: 12, rwd: 17, rka: 17 } as const;

export interface VmDef {
  readonly mac: string;
  readonly ip: string;
  readonly uuid: string;
}
export const VMS: Record<string, VmDef> = {
  a1: { mac: '02:00:00:00:0a:01', ip: '192.0.2.11', uuid: '00000000-0000-4000-8000-0000000000a1' },
  a2: { mac: '02:00:00:00:0a:02', ip: '192.0.2.12', uuid: '00000000-0000-4000-8000-0000000000a2' },
  b1: { mac: '02:00:00:00:0b:01', ip: '192.0.2.21', uuid: '00000000-0000-4000-8000-0000000000b1' },
  b2: { mac: '02:00:00:00:0b:02', ip: '192.0.2.22', uuid: '00000000-0000-4000-8000-0000000000b2' },
  b3: { mac: '02:00:00:00:0b:03', ip: '192.0.2.23', uuid: '00000000-0000-4000-8000-0000000000b3' },
};
const MODE: Record<string, VsiMode> = {
  'pre-associate-rr': 2,
  associate: 3,
  'de-associate': 4,
};
export type VdpMode = 'pre-associate-rr' | 'associate' | 'de-associate';

/** Where VM a1 can run: its uplink (in its namespace) and its port at each hypervisor. */
const A1_LINK = { a: { uplink: 'u1', port: 'pa' }, b: { uplink: 'u2', port: 'pb' } } as const;

/** Hypervisor of each VM but a1 (a1 has the patch panel instead). */
const FIXED_VMS = [
  ['a2', 'a'],
  ['b1', 'b'],
  ['b2', 'b'],
  ['b3', 'b'],
] as const;

export interface Hypervisor {
  readonly ns: string;
  readonly vswitch: Vswitch;
  readonly uplink: string;
  readonly tnve: TnveDaemon;
}

export interface NnveRun {
  readonly proc: ManagedProcess;
  readonly api: number;
  readonly spawnedAt: number;
  readonly startedAt: number;
}

export interface WorldOptions {
  /** Prefix of every name (2-5 letters); the process id is appended. */
  readonly prefix: string;
  /** Log level of the nNVE processes (default debug). */
  readonly nnveLogLevel?: string;
}

export interface PingResult {
  readonly sent: number;
  readonly received: number;
  readonly lost: number;
  /** The longest time without a reply: wall-clock ms of the reply before and after it. */
  readonly gap: readonly [number, number];
  /** Wall-clock ms of every reply. */
  readonly at: readonly number[];
}

export interface PingerResult {
  readonly sent: number;
  readonly lost: number;
  /** Longest time between two replies, ms. */
  readonly longestGapMs: number;
  /** The replies around it, ms from the moment the Associate M=1 was sent. */
  readonly longestGapAt: readonly [number, number];
}

export interface MigrationResult {
  readonly from: Side;
  readonly to: Side;
  /** Wall-clock ms at which the destination's Associate M=1 was sent. */
  readonly wall0: number;
  readonly pingers: Record<string, PingerResult>;
  /**
   * The yardstick: a2 -> b2 at 100 pps meanwhile, through the same four switches, nothing of it
   * changing. What it lost, and its longest time without a reply from 100 ms before the
   * Associate to 300 ms after (10 ms when nothing stalls).
   */
  readonly control: { readonly lost: number; readonly gapMs: number };
  /** Duration of each step, ms (the VDP requests: until the nNVE's answer). */
  readonly steps: Record<string, number>;
}

/**
 * Whether the machine was quiet around a migration: the emulated network did not stall (the
 * control pinger lost nothing and never waited more than 40 ms for a reply, see
 * MigrationResult.control) and the two cores were not starved: the destination nNVE answered
 * its Associate and the VM's link moved within 12 ms each (3-7 ms when the machine is not
 * overloaded; seen at 14.5 ms with a CPU hog on one of the two cores, when a pinger lost 2).
 */
export function quietAround(m: MigrationResult): boolean {
  return (
    m.control.lost === 0 &&
    m.control.gapMs <= 40 &&
    (m.steps.associateMs ?? Infinity) <= 12 &&
    (m.steps.moveMs ?? Infinity) <= 12
  );
}

/** Packets each pinger sends during one migration (1.5 s at 100 pps). */
export const MIGRATION_PINGS = 150;

/** ping at 100 pps for `count` packets: how many were sent and answered, the longest reply gap. */
export async function pingRun(ns: string, dst: string, count: number): Promise<PingResult> {
  const r = await exec('ip', [
    'netns',
    'exec',
    ns,
    'ping',
    '-n',
    '-D',
    '-i',
    '0.01',
    '-c',
    String(count),
    '-W',
    '1',
    dst,
  ]);
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  if (!m) throw new Error(`ping ${dst} from ${ns}: ${r.stdout} ${r.stderr}`);
  const sent = Number(m[1]);
  const received = Number(m[2]);
  const at = [...r.stdout.matchAll(/^\[(\d+\.\d+)\].*icmp_seq=\d+ ttl/gm)].map(
    (x) => Number(x[1]) * 1000,
  );
  let gap: [number, number] = [0, 0];
  for (let i = 1; i < at.length; i++) {
    if (at[i]! - at[i - 1]! > gap[1] - gap[0]) gap = [at[i - 1]!, at[i]!];
  }
  return { sent, received, lost: sent - received, gap, at };
}

/** A RARP announcement of `mac` (what QEMU sends for a guest NIC after a migration). */
function rarp(mac: string): Uint8Array {
  const m = mac.split(':').map((x) => parseInt(x, 16));
  const f = new Uint8Array(60);
  f.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0);
  f.set(m, 6);
  f.set([0x80, 0x35, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x03], 12);
  f.set(m, 22); // sender hardware address; sender IP 0
  f.set(m, 32); // target hardware address; target IP 0
  return f;
}

/**
 * The patch panel of VM a1: one long-running `ip -batch` in its namespace, so that moving the
 * link costs no process start (each command is run as its line arrives; `link show` afterwards
 * says it is done).
 */
class PatchPanel {
  private readonly proc: ChildProcess;
  private out = '';
  private waiters: (() => void)[] = [];

  constructor(
    ns: string,
    private readonly bridge: string,
  ) {
    this.proc = spawn('ip', ['-n', ns, '-force', '-batch', '-'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.proc.stdout!.on('data', (d: Buffer) => {
      this.out += d.toString();
      if (this.out.includes('\n')) {
        this.out = '';
        for (const w of this.waiters.splice(0)) w();
      }
    });
  }

  /** Makes `uplink` the bridge port instead of `old`; resolves once done. */
  move(old: string, uplink: string): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.proc.stdin!.write(
        `link set dev ${uplink} master ${this.bridge}\nlink set dev ${old} nomaster\nlink show dev ${this.bridge}\n`,
      );
    });
  }

  close(): void {
    this.proc.kill();
  }
}

export class E2eWorld {
  readonly lab: Lab;
  /** Logs and state of the daemons (removed at close unless SPLITNVE_KEEP_LAB=1). */
  readonly dir: string;
  /** etcd key prefix of this world. */
  readonly etcdPrefix: string;
  readonly nsOf: Record<string, string> = {};
  readonly ovsN = {} as Record<Side, OvsInstance>;
  readonly hv = {} as Record<Side, Hypervisor>;
  readonly nnve = {} as Record<Side, NnveRun>;
  /** Where VM a1 runs (once started). */
  a1At: Side = 'a';
  /** Time from the start of create() until everything ran, ms. */
  setupMs = 0;
  private etcdCluster: EtcdCluster | undefined;
  private announcer: RawLink | undefined;
  private panel: PatchPanel | undefined;
  private spawns = 0;

  private constructor(private readonly opts: WorldOptions) {
    this.lab = new Lab(`${opts.prefix}${process.pid}`);
    this.etcdPrefix = `/${opts.prefix}${process.pid}`;
    this.dir = mkdtempSync(join(tmpdir(), `${opts.prefix}-e2e-`));
    this.lab.defer('tmp', () => {
      if (process.env.SPLITNVE_KEEP_LAB === '1')
        console.error(`# e2e world: logs kept in ${this.dir}`);
      else rmSync(this.dir, { recursive: true, force: true });
    });
  }

  /** Builds the world (namespaces, OVS, etcd, both nNVEs, both tNVEs); no VM runs yet. */
  static async create(opts: WorldOptions): Promise<E2eWorld> {
    const w = new E2eWorld(opts);
    try {
      await w.build();
    } catch (e) {
      await w.close();
      throw e;
    }
    return w;
  }

  /** A name with the world's prefix (interfaces: at most 15 characters). */
  n(s: string): string {
    return this.lab.name(s);
  }

  get etcd(): EtcdCluster {
    if (!this.etcdCluster) throw new Error('e2e world: etcd is not running');
    return this.etcdCluster;
  }

  private async build(): Promise<void> {
    const { lab, nsOf } = this;
    const n = (s: string): string => this.n(s);
    const t0 = performance.now();
    for (const s of ['na', 'nb', 'ha', 'hb']) nsOf[s] = await lab.netns(s);
    // underlay and trunks
    await lab.veth(n('ua'), nsOf.na!, n('ub'), nsOf.nb!, { mtu: 1600 });
    await lab.veth(n('ta'), nsOf.na!, n('ka'), nsOf.ha!);
    await lab.veth(n('tb'), nsOf.nb!, n('kb'), nsOf.hb!);
    // VMs with one link each
    for (const [vm, side] of FIXED_VMS) {
      nsOf[vm] = await lab.vm(vm, {
        nic: n('e'),
        mac: VMS[vm]!.mac,
        ip: VMS[vm]!.ip,
        hostSide: n(`m${vm}`),
        hostNs: nsOf[`h${side}`]!,
      });
    }
    // VM a1: NIC + patch panel with an uplink to each hypervisor (only the one to A forwards)
    const a1 = await lab.netns('a1');
    nsOf.a1 = a1;
    await lab.veth(n('e'), a1, n('k'), a1, { macA: VMS.a1!.mac });
    await nsRun(a1, 'ip', ['addr', 'add', `${VMS.a1!.ip}/24`, 'dev', n('e')]);
    await offloadsOff(a1, n('e'));
    await lab.veth(n(A1_LINK.a.uplink), a1, n(A1_LINK.a.port), nsOf.ha!);
    await lab.veth(n(A1_LINK.b.uplink), a1, n(A1_LINK.b.port), nsOf.hb!);
    // The patch panel: only the uplink in use is a port of the bridge (a detached uplink cannot
    // be re-enabled behind our back by a carrier change, as a disabled bridge port would be).
    await nsRun(a1, 'ip', ['link', 'add', n('br'), 'type', 'bridge']);
    for (const p of [n('k'), n(A1_LINK.a.uplink)]) {
      await nsRun(a1, 'ip', ['link', 'set', p, 'master', n('br')]);
    }
    await nsRun(a1, 'ip', ['link', 'set', n('br'), 'up']);
    // Open vSwitch: one per nNVE (with the underlay), one per hypervisor
    const [oa, ob, oha, ohb] = await Promise.all([
      lab.ovs('A', nsOf.na!),
      lab.ovs('B', nsOf.nb!),
      lab.ovs('HA', nsOf.ha!),
      lab.ovs('HB', nsOf.hb!),
    ]);
    this.ovsN.a = oa;
    this.ovsN.b = ob;
    await oa.underlay(n('la'), n('ua'), `${TIP.a}/24`);
    await ob.underlay(n('lb'), n('ub'), `${TIP.b}/24`);
    const vsA = new Vswitch(oha, n('hva'), n('ka'));
    const vsB = new Vswitch(ohb, n('hvb'), n('kb'));
    lab.defer('vswitch connections', () => {
      vsA.close();
      vsB.close();
    });
    await Promise.all([vsA.create(), vsB.create()]);
    // etcd on tmpfs: the world measures the nNVEs, not this machine's disk fsync
    this.etcdCluster = await EtcdCluster.start({ size: 3, dataRoot: '/dev/shm' });
    lab.defer('etcd', () => this.etcdCluster?.stop());
    lab.defer('nnve processes', async () => {
      for (const s of ['a', 'b'] as const) await this.nnve[s]?.proc.stop();
    });
    await Promise.all([this.startNnve('a'), this.startNnve('b')]);
    for (const [side, vswitch] of [
      ['a', vsA],
      ['b', vsB],
    ] as const) {
      this.hv[side] = {
        ns: nsOf[`h${side}`]!,
        vswitch,
        uplink: n(`k${side}`),
        tnve: await this.startTnve(side),
      };
    }
    this.announcer = openRawLink(n('e'), { netns: a1, allowDown: true, defaultGroups: false });
    lab.defer('announcer', () => this.announcer?.close());
    const panel = new PatchPanel(a1, n('br'));
    this.panel = panel;
    lab.defer('patch panel', () => panel.close());
    this.setupMs = Math.round(performance.now() - t0);
  }

  /** The VSI of a VM as the orchestrator describes it (GroupID = its VN, MAC, IPv4). */
  spec(vm: string): ReturnType<typeof specFromJson> {
    const v = VMS[vm]!;
    return specFromJson({
      managerId: 'e2e',
      typeId: 7,
      typeVersion: 1,
      idFormat: 5,
      id: v.uuid,
      filterFormat: 0xf0, // GroupID/MAC/IPv4/VID (splitnve profile): source-IP filters too
      entries: [{ groupId: VNI, mac: v.mac, ipv4: v.ip, vid: 0 }],
    });
  }

  /** The orchestrator's call: one VDP request through the tNVE; resolves when the nNVE answered. */
  async vdp(
    side: Side,
    mode: VdpMode,
    vm: string,
    hints: { m?: boolean; s?: boolean } = {},
  ): Promise<{ ms: number; vid: number }> {
    const t0 = performance.now();
    const h = this.hv[side];
    const r = await h.tnve.request(h.uplink, MODE[mode]!, this.spec(vm), hints);
    const ms = performance.now() - t0;
    if (!r.ok) throw new Error(`${mode} ${vm} at ${side} failed: ${r.error}: ${r.message}`);
    return { ms, vid: r.entries[0]!.vid };
  }

  /** GET (or POST with `body`) on an nNVE's API. */
  async api<T>(side: Side, path: string, body?: unknown): Promise<T> {
    const r = await fetch(`http://127.0.0.1:${this.nnve[side].api}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const j = (await r.json()) as T;
    if (!r.ok) throw new Error(`${path}: ${r.status} ${JSON.stringify(j)}`);
    return j;
  }

  /** Starts (or restarts, with the same state) the nNVE of one side as its own process. */
  async startNnve(side: Side): Promise<void> {
    const n = (s: string): string => this.n(s);
    const logFile = join(this.dir, `nnve-${side}-${++this.spawns}.log`);
    const spawnedAt = performance.now();
    const proc = spawnManaged({
      name: `nnve-${side}`,
      cmd: process.execPath,
      cwd: ROOT,
      logFile,
      args: [
        MAIN_JS,
        'nnve',
        '--port',
        n(`t${side}`),
        '--netns',
        this.nsOf[`n${side}`]!,
        '--state-dir',
        join(this.dir, `state-${side}`),
        '--api',
        '127.0.0.1:0',
        '--profile',
        'splitnve',
        '--vlan-pool',
        POOL[side],
        '--dataplane',
        'ovs',
        '--ovs-bridge',
        n(`x${side}`),
        '--ovs-rundir',
        this.ovsN[side].dir,
        '--underlay-ip',
        TIP[side],
        '--nva',
        'etcd',
        '--etcd',
        this.etcd.endpoints.join(','),
        '--etcd-prefix',
        this.etcdPrefix,
        '--nve-id',
        `nve-${side}`,
        '--nva-lease-ttl',
        '2',
        '--r',
        String(WORLD_EVB.r),
        '--rte',
        String(WORLD_EVB.rte),
        '--rwd',
        String(WORLD_EVB.rwd),
        '--rka',
        String(WORLD_EVB.rka),
        '--log-level',
        this.opts.nnveLogLevel ?? 'debug',
      ],
    });
    const started = await proc.waitFor(
      'nnve daemon.started',
      () => {
        for (const line of readFileSync(logFile, 'utf8').split('\n')) {
          if (!line.includes('"daemon.started"')) continue;
          return JSON.parse(line) as { apiPort: number };
        }
        return undefined;
      },
      { timeoutMs: 30_000, intervalMs: 10 },
    );
    this.nnve[side] = { proc, api: started.apiPort, spawnedAt, startedAt: performance.now() };
  }

  private async startTnve(side: Side): Promise<TnveDaemon> {
    const uplink = this.n(`k${side}`);
    const ns = this.nsOf[`h${side}`]!;
    const d = await TnveDaemon.start(
      TnveConfigSchema.parse({
        uplinks: [{ name: uplink }],
        stateDir: join(this.dir, `tnve-${side}`),
        api: '127.0.0.1:0',
        profile: 'splitnve',
        evb: WORLD_EVB,
        requestTimeoutMs: 5000,
      }),
      {
        log: createLogger({
          name: `tnve-${side}`,
          level: 'info',
          destination: join(this.dir, `tnve-${side}.log`),
        }),
        openLink: (u) => openRawLink(u.name, { netns: ns, allowDown: true }),
      },
    );
    this.lab.defer(`tnve ${side}`, () => d.stop());
    await waitFor(
      `EVB (splitnve profile, GroupID) between tNVE ${side} and nNVE ${side}`,
      () => {
        const u = d.node.uplinkInfo(uplink);
        return u?.caps.profile === 'splitnve' && u.caps.groupId === true;
      },
      15_000,
    );
    return d;
  }

  /**
   * VM start: associate (the VM must not run before it succeeds), then plug it into the
   * hypervisor's vswitch with the VID (`port`: its host-side interface; default: a1's port on
   * that side, `m<vm>` for the others).
   */
  async startVm(side: Side, vm: string, port?: string): Promise<{ ms: number; vid: number }> {
    const p = port ?? (vm === 'a1' ? this.n(A1_LINK[side].port) : this.n(`m${vm}`));
    const r = await this.vdp(side, 'associate', vm);
    await this.hv[side].vswitch.plug(vm, { port: p, vlan: r.vid, mac: VMS[vm]!.mac });
    if (vm === 'a1') this.a1At = side;
    return r;
  }

  /**
   * Live migration of a1 from `from` to `to` (see the module comment), while the VMs `pingers`
   * ping it at 100 pps (MIGRATION_PINGS each). Returns what each pinger sent and lost, its
   * longest time without a reply, and how long each step took.
   */
  async migrateA1(from: Side, to: Side, pingers: readonly string[]): Promise<MigrationResult> {
    const n = (s: string): string => this.n(s);
    const runs = pingers.map((vm) => pingRun(this.nsOf[vm]!, VMS.a1!.ip, MIGRATION_PINGS));
    const control = pingRun(this.nsOf.a2!, VMS.b2!.ip, MIGRATION_PINGS);
    const steps: Record<string, number> = {};
    const mark = (k: string, t0: number): void => {
      steps[k] = Math.round((performance.now() - t0) * 10) / 10;
    };
    await sleep(150);
    // prepare: the destination reserves (Associated, M=1) and provisions the VM's port
    let t = performance.now();
    const pre = await this.vdp(to, 'pre-associate-rr', 'a1', { m: true });
    mark('preAssociateMs', t);
    await this.hv[to].vswitch.addPort(n(A1_LINK[to].port)).catch(() => undefined);
    await sleep(250);
    // the destination runs the VM: Associate M=1; once answered, the link moves
    const wall0 = Date.now();
    t = performance.now();
    const act = await this.vdp(to, 'associate', 'a1', { m: true });
    mark('associateMs', t);
    if (act.vid !== pre.vid) {
      throw new Error(`a1 at ${to}: Associate gave VID ${act.vid}, Pre-Associate ${pre.vid}`);
    }
    t = performance.now();
    await Promise.all([
      this.panel!.move(n(A1_LINK[from].uplink), n(A1_LINK[to].uplink)).then(() =>
        mark('panelMs', t),
      ),
      this.hv[from].vswitch.unplug('a1').then(() => mark('unplugMs', t)),
      this.hv[to].vswitch
        .plug('a1', { port: n(A1_LINK[to].port), vlan: act.vid, mac: VMS.a1!.mac })
        .then(() => mark('plugMs', t)),
    ]);
    mark('moveMs', t);
    this.a1At = to;
    const frame = rarp(VMS.a1!.mac);
    for (const at of [0, 50, 200, 450]) setTimeout(() => this.announcer!.send([frame]), at).unref();
    // the source lets go
    await sleep(100);
    t = performance.now();
    await this.vdp(from, 'de-associate', 'a1', { s: true });
    mark('deassociateMs', t);
    const results = await Promise.all(runs);
    const ctl = await control;
    const near = ctl.at.filter((x) => x >= wall0 - 100 && x <= wall0 + 300);
    let gapMs = near.length === 0 ? Infinity : 0;
    for (let i = 1; i < near.length; i++) gapMs = Math.max(gapMs, near[i]! - near[i - 1]!);
    const out: Record<string, PingerResult> = {};
    for (const [i, vm] of pingers.entries()) {
      const r = results[i]!;
      if (r.sent < MIGRATION_PINGS - 1) {
        throw new Error(`${vm}: ping sent only ${r.sent} of ${MIGRATION_PINGS} packets`);
      }
      out[vm] = {
        sent: r.sent,
        lost: r.lost,
        longestGapMs: Math.round(r.gap[1] - r.gap[0]),
        longestGapAt: [Math.round(r.gap[0] - wall0), Math.round(r.gap[1] - wall0)],
      };
    }
    return {
      from,
      to,
      wall0,
      pingers: out,
      control: { lost: ctl.lost, gapMs: Math.round(gapMs) },
      steps,
    };
  }

  /** The flows of an nNVE's OVS bridge (ovs-ofctl dump-flows). */
  flows(side: Side): Promise<string> {
    return this.ovsN[side].ofctl(this.n(`x${side}`), 'dump-flows');
  }

  /** Keys of the forwarding entries in etcd. */
  mapKeys(): string[] {
    return etcdctl(this.etcd.endpoints, [
      'get',
      '--prefix',
      `${this.etcdPrefix}/map/`,
      '--keys-only',
    ])
      .split('\n')
      .filter(Boolean);
  }

  /** Stops everything and removes what was created (never throws). */
  async close(): Promise<void> {
    await this.lab.cleanup();
  }
}
