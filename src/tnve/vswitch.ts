/**
 * Applies local tags to the hypervisor's vswitch: an Open vSwitch access port gets `tag=VID`
 * (`ovs-vsctl set port PORT tag=VID`), or the parking VLAN (4095 by default, never forwarded)
 * when the interface has no tag. Changes of one port are applied in order; a port that does
 * not exist yet (libvirt adds its tap device after the start hook) is retried for a while.
 */
import { execFile } from 'node:child_process';

export interface VswitchConfig {
  /** The OVS database (e.g. unix:/run/openvswitch/db.sock); default: ovs-vsctl's own. */
  readonly db?: string;
  /** The ovs-vsctl program. */
  readonly vsctl?: string;
  /** VLAN given to a port without a local tag. */
  readonly parkVid?: number;
  /** Do not wait for ovs-vswitchd to apply the change (--no-wait). */
  readonly noWait?: boolean;
  /** How long to keep retrying a port that does not exist yet, ms. */
  readonly retryForMs?: number;
}

export type TagOutcome =
  | { readonly ok: true; readonly port: string; readonly vid: number; readonly attempts: number }
  | {
      readonly ok: false;
      readonly port: string;
      readonly vid: number;
      readonly attempts: number;
      readonly error: string;
    };

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error((stderr || err.message).trim()));
      else resolve(stdout);
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class OvsVswitch {
  private readonly chains = new Map<string, Promise<void>>();
  private readonly latest = new Map<string, number>();
  private closed = false;

  constructor(readonly cfg: VswitchConfig = {}) {}

  private base(): string[] {
    return [
      ...(this.cfg.db ? [`--db=${this.cfg.db}`] : []),
      '--timeout=5',
      ...(this.cfg.noWait ? ['--no-wait'] : []),
    ];
  }

  /** Reads a port's tag (null: none). */
  async getTag(port: string): Promise<number | null> {
    const out = (
      await run(this.cfg.vsctl ?? 'ovs-vsctl', [...this.base(), 'get', 'port', port, 'tag'], 10000)
    ).trim();
    return out === '[]' ? null : Number(out);
  }

  /** Sets a port's tag (null: the parking VLAN); resolves with the outcome, never rejects. */
  setTag(port: string, vid: number | null): Promise<TagOutcome> {
    const v = vid ?? this.cfg.parkVid ?? 4095;
    const gen = (this.latest.get(port) ?? 0) + 1;
    this.latest.set(port, gen);
    let outcome!: TagOutcome;
    const prev = this.chains.get(port) ?? Promise.resolve();
    const next = prev.then(async () => {
      outcome = await this.apply(port, v, gen);
    });
    this.chains.set(port, next);
    return next.then(() => outcome);
  }

  private async apply(port: string, vid: number, gen: number): Promise<TagOutcome> {
    const deadline = Date.now() + (this.cfg.retryForMs ?? 30000);
    let attempts = 0;
    let wait = 100;
    for (;;) {
      attempts++;
      try {
        await run(
          this.cfg.vsctl ?? 'ovs-vsctl',
          [...this.base(), 'set', 'port', port, `tag=${vid}`],
          10000,
        );
        return { ok: true, port, vid, attempts };
      } catch (e) {
        const error = (e as Error).message;
        const missing = /no row|does not exist/i.test(error);
        // A newer tag for this port replaces this one; give up when closed or out of time.
        if (
          !missing ||
          this.closed ||
          this.latest.get(port) !== gen ||
          Date.now() + wait > deadline
        )
          return { ok: false, port, vid, attempts, error };
        await sleep(wait);
        wait = Math.min(wait * 2, 2000);
      }
    }
  }

  close(): void {
    this.closed = true;
  }
}
