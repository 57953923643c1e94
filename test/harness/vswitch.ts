/**
 * A hypervisor's virtual switch for the end-to-end world (e2e-world.ts): a userspace OVS bridge
 * with one trunk (802.1Q, towards the nNVE) and one access port per VM, programmed with static
 * flows from what the hypervisor knows about its VMs (port, VLAN = the local tag the nNVE
 * assigned, MAC), as SDN hypervisor switches are, over one persistent OpenFlow connection
 * (src/dataplane/openflow.ts), instead of flood-and-learn (userspace OVS's NORMAL learning
 * reacts to a MAC moving between ports after anything from milliseconds to seconds; the world
 * measures the nNVE, not that).
 *
 *   table 0  in_port=VM  -> tag with the VM's VLAN, goto 1;  in_port=trunk -> goto 1
 *   table 1  vlan=V,dl_dst=VM MAC              -> untag, output VM port
 *            vlan=V,broadcast/multicast         -> output trunk (tagged), untag, every VM of V
 *            vlan=V (unknown unicast)           -> output trunk (tagged)
 * OpenFlow never sends a frame back out of its input port. ECP/LLDP from the trunk (untagged)
 * match nothing in table 1 and are dropped; the tNVE sends and receives them on the trunk
 * interface itself.
 */
import { createHash } from 'node:crypto';
import {
  OpenFlowConnection,
  flowAddBody,
  flowDeleteCookieBody,
  parseFlowText,
} from '../../src/dataplane/openflow.js';
import type { OvsInstance } from './ovs.js';

interface Vm {
  readonly port: string;
  readonly vlan: number;
  readonly mac: string;
}

/** A flow's cookie: a hash of its text (so a flow is deleted by its cookie). */
function cookie(text: string): bigint {
  return BigInt(`0x7e${createHash('sha256').update(text).digest('hex').slice(0, 14)}`);
}

export class Vswitch {
  private readonly ofports = new Map<string, number>();
  private readonly vms = new Map<string, Vm>();
  private installed = new Set<string>();
  private of: OpenFlowConnection | undefined;

  constructor(
    readonly ovs: OvsInstance,
    readonly bridge: string,
    readonly trunk: string,
  ) {}

  async create(): Promise<void> {
    await this.ovs.vsctl(
      'add-br',
      this.bridge,
      '--',
      'set',
      'bridge',
      this.bridge,
      'datapath_type=netdev',
      'fail_mode=secure',
      'protocols=OpenFlow14',
      '--',
      'add-port',
      this.bridge,
      this.trunk,
    );
    await this.ovs.ofctl(this.bridge, 'del-flows');
    await this.learn(this.trunk);
    this.of = new OpenFlowConnection(this.ovs.mgmt(this.bridge).replace(/^unix:/, ''));
    await this.of.connect();
    await this.sync();
  }

  private async learn(port: string): Promise<void> {
    const out = await this.ovs.vsctl('get', 'Interface', port, 'ofport');
    const no = Number(out.trim());
    if (!(no > 0)) {
      throw new Error(
        `vswitch ${this.bridge}: port ${port} has no OpenFlow number (${out.trim()})`,
      );
    }
    this.ofports.set(port, no);
  }

  /** Adds a VM port (no traffic passes until the VM is plugged). */
  async addPort(port: string): Promise<void> {
    if (this.ofports.has(port)) return;
    await this.ovs.vsctl('add-port', this.bridge, port);
    await this.learn(port);
  }

  async removePort(port: string): Promise<void> {
    await this.ovs.vsctl('--if-exists', 'del-port', this.bridge, port);
    this.ofports.delete(port);
  }

  /** The VM runs here: its MAC is on `port`, in `vlan`. */
  async plug(name: string, vm: Vm): Promise<void> {
    await this.addPort(vm.port);
    this.vms.set(name, vm);
    await this.sync();
  }

  /** The VM does not run here any more. */
  async unplug(name: string): Promise<void> {
    this.vms.delete(name);
    await this.sync();
  }

  private desired(): Set<string> {
    const t = this.trunk;
    const out = new Set<string>([`table=0,priority=100,in_port=${t} actions=resubmit(,1)`]);
    const byVlan = new Map<number, string[]>();
    for (const vm of this.vms.values()) {
      const tag = `push_vlan:0x8100,set_field:${0x1000 | vm.vlan}->vlan_vid`;
      out.add(`table=0,priority=100,in_port=${vm.port} actions=${tag},resubmit(,1)`);
      out.add(
        `table=1,priority=100,dl_vlan=${vm.vlan},dl_dst=${vm.mac} actions=pop_vlan,output:${vm.port}`,
      );
      byVlan.set(vm.vlan, [...(byVlan.get(vm.vlan) ?? []), vm.port]);
    }
    for (const [v, ports] of byVlan) {
      const local = ports
        .sort()
        .map((p) => `output:${p}`)
        .join(',');
      out.add(
        `table=1,priority=50,dl_vlan=${v},dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=output:${t},pop_vlan,${local}`,
      );
      out.add(`table=1,priority=10,dl_vlan=${v} actions=output:${t}`);
    }
    return out;
  }

  /** Installs the difference as one bundle and waits for the switch to confirm it. */
  private async sync(): Promise<void> {
    const want = this.desired();
    const mods = [
      ...[...this.installed]
        .filter((f) => !want.has(f))
        .map((f) => flowDeleteCookieBody(cookie(f))),
      ...[...want]
        .filter((f) => !this.installed.has(f))
        .map((f) => flowAddBody(parseFlowText(f, this.ofports), cookie(f))),
    ];
    if (mods.length === 0) return;
    await this.of!.bundle(mods);
    this.installed = want;
  }

  close(): void {
    this.of?.close();
  }
}
