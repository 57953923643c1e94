/**
 * Two network namespaces joined by a veth pair, for tests that need real interfaces.
 * Names are `<prefix><pid><tag>` (namespaces end in a/b, interfaces in x/y) so that parallel test
 * files and other suites never collide. destroy() removes both namespaces (and so the veth) and
 * is safe to call twice; call it from t.after / finally.
 */
import { execFileSync } from 'node:child_process';

export interface VethPair {
  readonly nsA: string;
  readonly nsB: string;
  /** Interface in nsA. */
  readonly ifA: string;
  /** Interface in nsB. */
  readonly ifB: string;
  /** Runs `ip -n NS ARGS...` and returns its stdout. */
  ip(ns: string, ...args: string[]): string;
  /** (Re)creates the veth between the namespaces (after it was deleted) and sets both ends up. */
  recreate(): void;
  /** Waits (synchronously, up to 5 s) until the interface is operationally up or down. */
  waitOper(ns: string, ifname: string, up: boolean): void;
  destroy(): void;
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Waits until `ip link` shows the interface operationally up (or not), up to 5 s. */
export function waitOper(ns: string, ifname: string, up: boolean): void {
  const deadline = Date.now() + 5000;
  for (;;) {
    const [info] = JSON.parse(ip('-n', ns, '-j', 'link', 'show', 'dev', ifname)) as {
      operstate?: string;
    }[];
    if ((info?.operstate === 'UP') === up) return;
    if (Date.now() > deadline) {
      throw new Error(`${ifname} in ${ns} did not go ${up ? 'up' : 'down'} within 5 s`);
    }
    sleepMs(10);
  }
}

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Creates nsA/nsB with a veth pair ifA<->ifB, both up (unless `up` is false). */
export function createVethPair(prefix: string, tag: string, up = true): VethPair {
  const base = `${prefix}${process.pid}${tag}`;
  if (base.length + 1 > 15) throw new Error(`interface name prefix ${base} is too long`);
  const nsA = `${base}a`;
  const nsB = `${base}b`;
  const ifA = `${base}x`;
  const ifB = `${base}y`;
  let destroyed = false;
  const destroy = (): void => {
    if (destroyed) return;
    destroyed = true;
    for (const ns of [nsA, nsB]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
  };
  const recreate = (): void => {
    ip('link', 'add', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB);
    if (up) {
      ip('-n', nsA, 'link', 'set', ifA, 'up');
      ip('-n', nsB, 'link', 'set', ifB, 'up');
      waitOper(nsA, ifA, true);
      waitOper(nsB, ifB, true);
    }
  };
  try {
    ip('netns', 'add', nsA);
    ip('netns', 'add', nsB);
    recreate();
  } catch (e) {
    destroy();
    throw e;
  }
  return {
    nsA,
    nsB,
    ifA,
    ifB,
    ip: (ns, ...args) => ip('-n', ns, ...args),
    recreate,
    waitOper,
    destroy,
  };
}
