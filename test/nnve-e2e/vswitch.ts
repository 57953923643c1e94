/**
 * A hypervisor's virtual switch for the end-to-end test: a userspace OVS bridge with one trunk
 * (802.1Q, towards the nNVE) and one access port per VM, programmed with static flows from what
 * the hypervisor knows about its VMs (port, VLAN = the local tag the nNVE assigned, MAC), as
 * SDN hypervisor switches are, over one persistent OpenFlow connection (openflow.ts), instead of
 * flood-and-learn (userspace OVS's NORMAL learning reacts to a MAC moving between ports after
 * anything from milliseconds to seconds; the test measures the nNVE, not that).
 *
 *   table 0  in_port=VM  -> tag with the VM's VLAN, goto 1;  in_port=trunk -> goto 1
 *   table 1  vlan=V,dl_dst=VM MAC              -> untag, output VM port
 *            vlan=V,broadcast/multicast         -> output trunk (tagged), untag, every VM of V
 *            vlan=V (unknown unicast)           -> output trunk (tagged)
 * OpenFlow never sends a frame back out of its input port. ECP/LLDP from the trunk (untagged)
 * match nothing in table 1 and are dropped; the tNVE sends and receives them on the trunk
 * interface itself.
 */
import type { OvsInstance } from '../harness/ovs.js';
import { OpenFlowClient, type OfFlow } from './openflow.js';

interface Vm {
  readonly port: string;
  readonly vlan: number;
  readonly mac: string;
}

function key(f: OfFlow): string {
  return JSON.stringify([f.table, f.priority, f.match]);
}

export class Vswitch {
  private readonly ofports = new Map<string, number>();
  private readonly vms = new Map<string, Vm>();
  private installed = new Map<string, OfFlow>();
  private of: OpenFlowClient | undefined;

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
      'protocols=OpenFlow13,OpenFlow14',
      '--',
      'add-port',
      this.bridge,
      this.trunk,
    );
    await this.ovs.ofctl(this.bridge, 'del-flows');
    await this.learn(this.trunk);
    this.of = new OpenFlowClient(this.ovs.mgmt(this.bridge).replace(/^unix:/, ''));
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

  private no(port: string): number {
    const n = this.ofports.get(port);
    if (n === undefined) throw new Error(`vswitch ${this.bridge}: unknown port ${port}`);
    return n;
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

  private desired(): Map<string, OfFlow> {
    const t = this.no(this.trunk);
    const flows: OfFlow[] = [
      { table: 0, priority: 100, match: { inPort: t }, actions: [], gotoTable: 1 },
    ];
    const byVlan = new Map<number, number[]>();
    for (const vm of this.vms.values()) {
      const p = this.no(vm.port);
      flows.push({
        table: 0,
        priority: 100,
        match: { inPort: p },
        actions: [{ pushVlan: vm.vlan }],
        gotoTable: 1,
      });
      flows.push({
        table: 1,
        priority: 100,
        match: { vlan: vm.vlan, ethDst: vm.mac },
        actions: [{ popVlan: true }, { output: p }],
      });
      byVlan.set(vm.vlan, [...(byVlan.get(vm.vlan) ?? []), p]);
    }
    for (const [v, ports] of byVlan) {
      flows.push({
        table: 1,
        priority: 50,
        match: { vlan: v, ethDst: '01:00:00:00:00:00', ethDstMask: '01:00:00:00:00:00' },
        actions: [{ output: t }, { popVlan: true }, ...ports.sort().map((p) => ({ output: p }))],
      });
      flows.push({ table: 1, priority: 10, match: { vlan: v }, actions: [{ output: t }] });
    }
    return new Map(flows.map((f) => [key(f), f]));
  }

  /** Installs the difference and waits for the switch to confirm (barrier). */
  private async sync(): Promise<void> {
    const want = this.desired();
    const del: OfFlow[] = [];
    const add: OfFlow[] = [];
    for (const [k, f] of this.installed) if (!want.has(k)) del.push(f);
    for (const [k, f] of want) {
      const cur = this.installed.get(k);
      if (!cur || JSON.stringify(cur) !== JSON.stringify(f)) add.push(f);
    }
    if (del.length === 0 && add.length === 0) return;
    await this.of!.apply(del, add);
    this.installed = want;
  }

  close(): void {
    this.of?.close();
  }
}
