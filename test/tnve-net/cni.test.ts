/**
 * The CNI plugin run as a runtime runs it (CNI_* environment, network configuration on stdin,
 * result or error JSON on stdout) against a real container namespace, a hypervisor with a
 * userspace Open vSwitch and a running tNVE, and an nNVE over veth. ADD must leave the
 * container connected with the nNVE's local tag on its vswitch port, and its frames must
 * leave the hypervisor tagged with it; DEL must leave nothing behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startOvsHv, type OvsHv } from '../harness/ovs-hv.js';
import { hostIfName, vmName } from '../../src/cni/plugin.js';
import { ip, Lab, MAIN, type Daemon } from './lab.js';

interface Run {
  code: number;
  json: Record<string, unknown> | null;
  stderr: string;
}

function plugin(netns: string, env: Record<string, string>, config: unknown): Promise<Run> {
  return new Promise((resolve, reject) => {
    const c = spawn('ip', ['netns', 'exec', netns, process.execPath, MAIN, 'cni'], {
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('error', reject);
    c.on('exit', (code) =>
      resolve({
        code: code ?? -1,
        json: out.trim() ? (JSON.parse(out) as Record<string, unknown>) : null,
        stderr: err,
      }),
    );
    c.stdin.end(typeof config === 'string' ? config : JSON.stringify(config));
  });
}

/** Waits for one frame matching a tcpdump filter on an interface; resolves with tcpdump's line. */
function capture(
  netns: string,
  ifname: string,
  filter: string,
): { ready: Promise<void>; frame: Promise<string>; stop: () => void } {
  const c = spawn(
    'ip',
    ['netns', 'exec', netns, 'tcpdump', '-i', ifname, '-nn', '-e', '-l', '-c', '1', filter],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let ready!: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  c.stderr.on('data', (d: Buffer) => {
    if (d.toString().includes('listening on')) ready();
  });
  const frame = new Promise<string>((resolve, reject) => {
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('exit', () => (out ? resolve(out) : reject(new Error('tcpdump saw nothing'))));
  });
  return { ready: readyP, frame, stop: () => c.kill('SIGTERM') };
}

describe('CNI plugin with a real namespace, OVS and the tNVE', () => {
  const lab = new Lab();
  let ovs: OvsHv;
  let nnve: Daemon;
  const ns: Record<string, string> = {};
  let uplink: string;
  let port: string;
  let config: Record<string, unknown>;
  let env: Record<string, string>;

  before(async () => {
    for (const t of ['n', 'h', 'c']) ns[t] = lab.ns(t);
    [uplink, port] = lab.veth(ns.h!, ns.n!, 'u');
    ovs = await startOvsHv(ns.h!, join(lab.dir, 'ovs'), ['br-hv']);
    // the uplink is the vswitch's trunk towards the nNVE too
    ovs.vsctl('add-port', 'br-hv', uplink);
    nnve = await lab.nnve('n', ns.n!, [port]);
    await lab.tnve('h', ns.h!, [uplink], ['--ovs-db', ovs.db]);
    config = {
      cniVersion: '1.0.0',
      name: 'vn7000',
      type: 'splitnve',
      vni: 7000,
      api: lab.api('h'),
      ovsBridge: 'br-hv',
      ovsDb: ovs.db,
      ipam: { type: 'static', addresses: [{ address: '10.7.0.2/24' }] },
    };
    env = {
      CNI_CONTAINERID: 'ctr-0123456789abcdef',
      CNI_NETNS: `/var/run/netns/${ns.c}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/usr/lib/cni',
    };
  });

  after(async () => {
    await lab.destroy();
    await ovs?.stop();
  });

  let result: Record<string, unknown>;

  it('VERSION', async () => {
    const r = await plugin(ns.h!, { CNI_COMMAND: 'VERSION' }, { cniVersion: '1.0.0' });
    assert.equal(r.code, 0);
    assert.deepEqual(r.json, {
      cniVersion: '1.0.0',
      supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'],
    });
  });

  it('ADD: a veth into the container, static IPAM, associated; the result carries the VLAN', async () => {
    const r = await plugin(ns.h!, { ...env, CNI_COMMAND: 'ADD' }, config);
    assert.equal(r.code, 0, JSON.stringify(r.json) + r.stderr);
    result = r.json!;
    const ifs = result.interfaces as {
      name: string;
      mac: string;
      sandbox?: string;
      vlan: number;
    }[];
    const sn = result.splitnve as { vlan: number; vni: number; vm: string };
    assert.equal(ifs[1]!.name, 'eth0');
    assert.equal(ifs[1]!.sandbox, env.CNI_NETNS);
    assert.equal(ifs[1]!.vlan, sn.vlan);
    assert.ok(sn.vlan >= 100 && sn.vlan <= 199);
    assert.deepEqual(result.ips, [{ address: '10.7.0.2/24', interface: 1 }]);
    const addr = ip('-n', ns.c!, '-j', 'addr', 'show', 'dev', 'eth0');
    assert.match(addr, /"local":"10\.7\.0\.2","prefixlen":24/);
    assert.match(addr, new RegExp(`"address":"${ifs[1]!.mac}"`));
    assert.equal(ovs.vsctl('get', 'port', ifs[0]!.name, 'tag').trim(), String(sn.vlan));
    // the nNVE holds the TSI Activated with the container's MAC and IP (IPv4 filter format)
    await lab.until(
      () => nnve.tsiLogs().some((l) => l.to === 'Activated'),
      'Activated on the nNVE',
    );
    const tsi = nnve.tsiLogs().find((l) => l.to === 'Activated')!;
    assert.deepEqual(tsi.vids, [sn.vlan]);
    assert.deepEqual((tsi as unknown as { macs: string[] }).macs, [ifs[1]!.mac]);
  });

  it("the container's frames leave the hypervisor tagged with the local tag", async () => {
    const vlan = (result.splitnve as { vlan: number }).vlan;
    const cap = capture(ns.n!, port, `vlan ${vlan} and arp`);
    await cap.ready;
    ip('-n', ns.c!, 'neigh', 'flush', 'dev', 'eth0');
    const ping = spawn('ip', ['netns', 'exec', ns.c!, 'ping', '-c', '2', '-W', '1', '10.7.0.99'], {
      stdio: 'ignore',
    });
    const timer = setTimeout(cap.stop, 5000);
    try {
      const line = await cap.frame;
      assert.match(
        line,
        new RegExp(
          `vlan ${vlan}, p 0, ethertype ARP .*Request who-has 10\\.7\\.0\\.99 tell 10\\.7\\.0\\.2`,
        ),
      );
    } finally {
      clearTimeout(timer);
      ping.kill();
    }
  });

  it('CHECK passes, and fails when the vswitch port lost its tag', async () => {
    let r = await plugin(
      ns.h!,
      { ...env, CNI_COMMAND: 'CHECK' },
      { ...config, prevResult: result },
    );
    assert.equal(r.code, 0, JSON.stringify(r.json));
    const host = (result.interfaces as { name: string }[])[0]!.name;
    const vlan = (result.splitnve as { vlan: number }).vlan;
    ovs.vsctl('set', 'port', host, 'tag=999');
    r = await plugin(ns.h!, { ...env, CNI_COMMAND: 'CHECK' }, { ...config, prevResult: result });
    assert.equal(r.code, 1);
    assert.equal(r.json!.code, 104);
    assert.match(String(r.json!.msg), new RegExp(`has tag 999, the local tag is ${vlan}`));
    ovs.vsctl('set', 'port', host, `tag=${vlan}`);
  });

  it('DEL: de-associated, veth and port gone; a second DEL succeeds too', async () => {
    const host = (result.interfaces as { name: string }[])[0]!.name;
    let r = await plugin(ns.h!, { ...env, CNI_COMMAND: 'DEL' }, { ...config, prevResult: result });
    assert.equal(r.code, 0, JSON.stringify(r.json));
    assert.equal(r.json, null);
    await lab.until(() => nnve.tsiStates().size === 0, 'Init on the nNVE');
    assert.throws(() => ip('-n', ns.c!, 'link', 'show', 'eth0'));
    assert.throws(() => ip('-n', ns.h!, 'link', 'show', host));
    assert.doesNotMatch(ovs.vsctl('list-ports', 'br-hv'), new RegExp(host));
    r = await plugin(ns.h!, { ...env, CNI_COMMAND: 'DEL' }, config);
    assert.equal(r.code, 0, JSON.stringify(r.json));
  });

  it('errors are CNI error JSON; a failed ADD leaves nothing behind', async () => {
    let r = await plugin(ns.h!, { ...env, CNI_COMMAND: 'ADD', CNI_NETNS: '' }, config);
    assert.equal(r.code, 1);
    assert.equal(r.json!.code, 4);
    assert.match(String(r.json!.msg), /CNI_NETNS is not set/);
    r = await plugin(
      ns.h!,
      { ...env, CNI_COMMAND: 'ADD', CNI_NETNS: '/var/run/netns/snt-none' },
      config,
    );
    assert.equal(r.json!.code, 3);
    r = await plugin(ns.h!, { ...env, CNI_COMMAND: 'ADD' }, { ...config, cniVersion: '9.9.9' });
    assert.equal(r.json!.code, 1);
    r = await plugin(ns.h!, { ...env, CNI_COMMAND: 'ADD' }, '{"cniVersion": "1.0.0", ');
    assert.equal(r.json!.code, 6);
    r = await plugin(ns.h!, { ...env, CNI_COMMAND: 'ADD' }, { ...config, vni: undefined });
    assert.equal(r.json!.code, 7);
    // the tNVE cannot be reached: no interface, no port stays
    r = await plugin(
      ns.h!,
      { ...env, CNI_COMMAND: 'ADD' },
      { ...config, api: `unix:${join(lab.dir, 'none.sock')}` },
    );
    assert.equal(r.code, 1);
    assert.equal(r.json!.code, 102);
    assert.match(String(r.json!.msg), /tNVE API at unix:/);
    assert.throws(() => ip('-n', ns.c!, 'link', 'show', 'eth0'));
    assert.deepEqual(ovs.vsctl('list-ports', 'br-hv').trim().split('\n'), [uplink]);
  });
  it('ADD refused by the nNVE: CNI error 101 with the reason and the uplink, nothing left behind', async () => {
    // the nNVE admits no TSI in VN 7001
    await lab.nnveCall('n', 'POST', '/v1/vns', { vni: 7001, maxTsis: 0 });
    const id = 'ctr-refused-0123456789';
    const r = await plugin(
      ns.h!,
      { ...env, CNI_COMMAND: 'ADD', CNI_CONTAINERID: id },
      {
        ...config,
        name: 'vn7001',
        vni: 7001,
        ipam: { type: 'static', addresses: [{ address: '10.7.1.2/24' }] },
      },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.json!.cniVersion, '1.0.0');
    assert.equal(r.json!.code, 101);
    assert.match(
      String(r.json!.msg),
      new RegExp(`uplink ${uplink}: refused reason 2 \\(insufficient resources\\)`),
    );
    const details = JSON.parse(String(r.json!.details)) as {
      failures: { uplink: string; reason: number }[];
    };
    assert.deepEqual(
      details.failures.map((f) => [f.uplink, f.reason]),
      [[uplink, 2]],
    );
    const refused = nnve.lines.filter((l) => l.event === 'vsi.refused');
    assert.match(String(refused.at(-1)!.detail), /VN 7001 has its maximum of 0 TSIs/);
    // nothing behind: no interface in the container or on the host, no vswitch port, no VM,
    // nothing on the nNVE
    assert.throws(() => ip('-n', ns.c!, 'link', 'show', 'eth0'));
    assert.throws(() => ip('-n', ns.h!, 'link', 'show', hostIfName(id, 'eth0')));
    assert.deepEqual(ovs.vsctl('list-ports', 'br-hv').trim().split('\n'), [uplink]);
    const vms = await lab.call<{ name: string }[]>('h', 'GET', '/v1/vms');
    assert.equal(
      vms.find((v) => v.name === vmName(id, 'eth0')),
      undefined,
    );
    assert.deepEqual(await lab.nnveCall('n', 'GET', '/v1/tsis'), []);
  });
});
