/**
 * P5 migration: ping loss at 100 pps while a VM live-migrates between two hypervisors, through
 * two nNVEs with Open vSwitch (userspace datapath) and VXLAN between them, etcd as the NVA.
 *
 * The world is the end-to-end test's (test/harness/e2e-world.ts): VM a1 goes back and forth
 * `p5Migrations` times while a2 (on hypervisor A) and b1 (on hypervisor B) ping it; a control
 * pinger (a2 -> b2, same four switches, nothing of it changes) tells the migrations the emulated
 * network was quiet around from those inside a stall of a userspace switch. The goal is judged
 * on the quiet ones; everything is reported. lldpad has no counterpart (its bridge programs no
 * data plane), so there is no ratio.
 */
import { spawnSync } from 'node:child_process';
import { GOALS, type Goal, type Sizes } from '../lib/config.js';
import {
  E2eWorld,
  VMS,
  quietAround,
  type MigrationResult,
  type Side,
} from '../../test/harness/e2e-world.js';
import { pingEventually } from '../../test/harness/ovs.js';

export interface P5Migration {
  readonly from: Side;
  readonly to: Side;
  /** Lost pings per pinger (a2 on hypervisor A, b1 on hypervisor B). */
  readonly lost: Record<string, number>;
  readonly quiet: boolean;
  readonly control_gap_ms: number;
  /** Longest time without a reply over both pingers, ms. */
  readonly longest_gap_ms: number;
  /** Associate M=1 at the destination until the nNVE answered; moving the VM's link. */
  readonly associate_ms: number;
  readonly move_ms: number;
}

export type P5Result =
  | {
      measured: false;
      /** Why not, in one sentence. */
      reason: string;
      goal: Goal;
    }
  | {
      measured: true;
      migrations: number;
      quiet_migrations: number;
      /** Over the quiet migrations, every pinger: pings lost / sent. */
      lost_packets: number;
      sent_packets: number;
      /** The most one pinger lost in one quiet migration (the goal's figure). */
      max_lost_per_migration: number;
      /** Longest gap between two answered pings in a quiet migration, ms. */
      max_gap_ms: number;
      /** The same over every migration, quiet or not. */
      lost_packets_all: number;
      sent_packets_all: number;
      per_migration: P5Migration[];
      lldpad: string;
      goal: Goal;
    };

/** Commands the world needs (Debian: openvswitch-switch, etcd-server, etcd-client, ...). */
const NEEDS = ['ovs-vswitchd', 'ovsdb-server', 'ovs-vsctl', 'ovs-ofctl', 'etcd', 'etcdctl', 'ping'];

const goalText = `<= ${GOALS.p5LostPackets} lost packet per pinger per migration at 100 pps`;

export async function runP5(sizes: Sizes): Promise<P5Result> {
  const missing = NEEDS.filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0);
  if (missing.length > 0) {
    return {
      measured: false,
      reason: `not measured: ${missing.join(', ')} not installed (Debian: openvswitch-switch, etcd-server, etcd-client, iputils-ping)`,
      goal: { text: goalText, met: null },
    };
  }
  const w = await E2eWorld.create({ prefix: 'snb', nnveLogLevel: 'info' });
  try {
    await w.startVm('a', 'a1');
    await w.startVm('a', 'a2');
    await w.startVm('b', 'b1');
    await w.startVm('b', 'b2');
    for (const [from, to] of [
      ['a2', 'b1'],
      ['b1', 'a1'],
      ['a2', 'b2'],
    ] as const) {
      if (!(await pingEventually(w.nsOf[from]!, VMS[to]!.ip, 20))) {
        throw new Error(`P5: ${from} cannot reach ${to} before the migrations`);
      }
    }
    const runs: MigrationResult[] = [];
    let at: Side = 'a';
    // An even count, so a1 ends where it started.
    const count = Math.max(2, sizes.p5Migrations + (sizes.p5Migrations % 2));
    for (let i = 0; i < count; i++) {
      const to: Side = at === 'a' ? 'b' : 'a';
      runs.push(await w.migrateA1(at, to, ['a2', 'b1']));
      at = to;
    }
    const per = runs.map((m): P5Migration => ({
      from: m.from,
      to: m.to,
      lost: Object.fromEntries(Object.entries(m.pingers).map(([k, v]) => [k, v.lost])),
      quiet: quietAround(m),
      control_gap_ms: m.control.gapMs,
      longest_gap_ms: Math.max(...Object.values(m.pingers).map((p) => p.longestGapMs)),
      associate_ms: m.steps.associateMs ?? NaN,
      move_ms: m.steps.moveMs ?? NaN,
    }));
    const quiet = runs.filter(quietAround);
    const sum = (ms: MigrationResult[], f: (p: { sent: number; lost: number }) => number): number =>
      ms.reduce((s, m) => s + Object.values(m.pingers).reduce((t, p) => t + f(p), 0), 0);
    const maxLost = Math.max(
      0,
      ...quiet.flatMap((m) => Object.values(m.pingers).map((p) => p.lost)),
    );
    const bothWays = quiet.some((m) => m.from === 'a') && quiet.some((m) => m.from === 'b');
    return {
      measured: true,
      migrations: runs.length,
      quiet_migrations: quiet.length,
      lost_packets: sum(quiet, (p) => p.lost),
      sent_packets: sum(quiet, (p) => p.sent),
      max_lost_per_migration: maxLost,
      max_gap_ms: Math.max(
        0,
        ...quiet.flatMap((m) => Object.values(m.pingers).map((p) => p.longestGapMs)),
      ),
      lost_packets_all: sum(runs, (p) => p.lost),
      sent_packets_all: sum(runs, (p) => p.sent),
      per_migration: per,
      lldpad: 'no counterpart: lldpad’s bridge programs no data plane',
      goal: {
        text: goalText,
        met: bothWays ? maxLost <= GOALS.p5LostPackets : null,
      },
    };
  } finally {
    await w.close();
  }
}
