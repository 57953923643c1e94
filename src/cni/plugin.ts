/**
 * CNI plugin `splitnve` (CNI spec 1.0: ADD, DEL, CHECK, VERSION). A container interface is a
 * TSI: ADD creates a veth pair (container end CNI_IFNAME in CNI_NETNS, host end on the
 * hypervisor's Open vSwitch bridge when `ovsBridge` is set), asks the tNVE to define and start
 * a VM `cni:<container id>:<ifname>` with that interface and returns the interface with its
 * local tag (VLAN); the host port gets `tag=VLAN` (parked on 4095 until then). DEL
 * de-associates and removes everything (idempotent); CHECK verifies all of it.
 *
 * Network configuration (stdin):
 *   { "cniVersion": "1.0.0", "name": "vn5000", "type": "splitnve", "vni": 5000,
 *     "api": "unix:/run/splitnve/tnve.sock", "ovsBridge": "br-int", "ovsDb": "unix:/…/db.sock",
 *     "mtu": 1450, "typeId": 0, "typeVersion": 0, "managerId": "k8s",
 *     "ipam": { "type": "host-local", … } | "addresses": ["10.0.0.5/24"], "timeoutMs": 10000 }
 * CNI_ARGS may carry IP=10.0.0.5/24[,…] and MAC=… .
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { derivedUuid } from '../libvirt/domain.js';
import { apiCall, ApiCallError, DEFAULT_TNVE_API } from '../tnve/client.js';
import { isMac, normalizeMac } from '../wire/bytes.js';
import { canonicalIp } from '../tnve/model.js';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'];

/** CNI error codes (spec) and ours (100+). */
export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  Refused: 101,
  AgentUnreachable: 102,
  NotConnected: 103,
  CheckFailed: 104,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details?: string,
  ) {
    super(message);
  }
}

const ConfigSchema = z
  .object({
    cniVersion: z.string(),
    name: z.string().min(1),
    type: z.string().min(1),
    vni: z.number().int().min(1).max(0xffffff),
    api: z.string().min(1).optional(),
    ovsBridge: z.string().min(1).max(15).optional(),
    ovsDb: z.string().min(1).optional(),
    mtu: z.number().int().min(68).max(65535).optional(),
    typeId: z.number().int().min(0).max(0xffffff).optional(),
    typeVersion: z.number().int().min(0).max(255).optional(),
    managerId: z.string().min(1).optional(),
    addresses: z.array(z.string()).optional(),
    timeoutMs: z.number().int().min(100).max(600_000).optional(),
    ipam: z
      .object({ type: z.string().min(1) })
      .passthrough()
      .optional(),
    prevResult: z.unknown().optional(),
    runtimeConfig: z.unknown().optional(),
    args: z.unknown().optional(),
    dns: z.unknown().optional(),
  })
  .passthrough();

type Config = z.output<typeof ConfigSchema>;

interface IpConfig {
  address: string;
  gateway?: string;
  interface?: number;
}

interface IpamResult {
  ips?: IpConfig[];
  routes?: { dst: string; gw?: string }[];
  dns?: unknown;
}

type Env = Readonly<Record<string, string | undefined>>;

function sh(cmd: string, args: string[], input?: string, env?: Env): string {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    ...(input !== undefined ? { input } : {}),
    ...(env ? { env: env as NodeJS.ProcessEnv } : {}),
    timeout: 30000,
  });
  if (r.error) throw new CniError(CniCode.IoFailure, `${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new CniError(
      CniCode.IoFailure,
      `${cmd} ${args.join(' ')} failed: ${(r.stderr || r.stdout || '').trim()}`,
    );
  }
  return r.stdout;
}

/** Runs a command in the container's network namespace. */
function inNs(netns: string, args: string[]): string {
  return sh('nsenter', [`--net=${netns}`, '--', ...args]);
}

function linkExists(name: string, netns?: string): boolean {
  const args = ['ip', '-j', 'link', 'show', 'dev', name];
  const r = netns
    ? spawnSync('nsenter', [`--net=${netns}`, '--', ...args], { encoding: 'utf8' })
    : spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  return r.status === 0;
}

function linkMac(name: string, netns?: string): string {
  const args = ['ip', '-j', 'link', 'show', 'dev', name];
  const out = netns ? inNs(netns, args) : sh(args[0]!, args.slice(1));
  const [info] = JSON.parse(out) as { address: string }[];
  return normalizeMac(info!.address);
}

function parseArgs(text: string | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of (text ?? '').split(';')) {
    const i = kv.indexOf('=');
    if (i > 0) m.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return m;
}

export function hostIfName(containerId: string, ifname: string): string {
  return 'sn' + createHash('sha1').update(`${containerId}/${ifname}`).digest('hex').slice(0, 11);
}

export function vmName(containerId: string, ifname: string): string {
  return `cni:${containerId}:${ifname}`;
}

function ovs(cfg: Config, args: string[]): string {
  return sh('ovs-vsctl', [...(cfg.ovsDb ? [`--db=${cfg.ovsDb}`] : []), '--timeout=10', ...args]);
}

function findPlugin(type: string, env: Env): string {
  for (const dir of (env.CNI_PATH ?? '').split(':').filter(Boolean)) {
    const p = join(dir, type);
    if (existsSync(p)) return p;
  }
  throw new CniError(
    CniCode.InvalidConfig,
    `IPAM plugin ${type} not found in CNI_PATH ${env.CNI_PATH ?? ''}`,
  );
}

/** Runs the IPAM plugin (delegation, as the CNI spec describes it). */
function ipam(cfg: Config, stdin: string, env: Env, command: 'ADD' | 'DEL' | 'CHECK'): IpamResult {
  const plugin = findPlugin(cfg.ipam!.type, env);
  const r = spawnSync(plugin, [], {
    input: stdin,
    encoding: 'utf8',
    env: { ...env, CNI_COMMAND: command } as NodeJS.ProcessEnv,
    timeout: 30000,
  });
  const out = (r.stdout ?? '').trim();
  if (r.status !== 0) {
    let e: { code?: number; msg?: string; details?: string } = {};
    try {
      e = JSON.parse(out) as typeof e;
    } catch {
      // not JSON
    }
    throw new CniError(
      e.code ?? CniCode.IoFailure,
      `IPAM ${cfg.ipam!.type} ${command}: ${e.msg ?? (r.stderr || out || `exit ${r.status}`).trim()}`,
      e.details,
    );
  }
  return out ? (JSON.parse(out) as IpamResult) : {};
}

function ipOf(cidr: string): string {
  const ip = cidr.split('/')[0]!;
  const c = canonicalIp(ip);
  if (!c) throw new CniError(CniCode.InvalidConfig, `not an IP address: ${cidr}`);
  return c;
}

interface Common {
  cfg: Config;
  stdin: string;
  env: Env;
  containerId: string;
  ifname: string;
  netns: string;
  api: string;
}

function common(env: Env, stdin: string, needNetns: boolean): Common {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(
      CniCode.DecodeFailure,
      `network configuration is not JSON: ${(e as Error).message}`,
    );
  }
  const r = ConfigSchema.safeParse(raw);
  if (!r.success) {
    throw new CniError(
      CniCode.InvalidConfig,
      `invalid network configuration: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  const cfg = r.data;
  if (!SUPPORTED_VERSIONS.includes(cfg.cniVersion)) {
    throw new CniError(
      CniCode.IncompatibleVersion,
      `CNI version ${cfg.cniVersion} is not supported (${SUPPORTED_VERSIONS.join(', ')})`,
    );
  }
  const containerId = env.CNI_CONTAINERID ?? '';
  const ifname = env.CNI_IFNAME ?? '';
  const netns = env.CNI_NETNS ?? '';
  if (!containerId) throw new CniError(CniCode.InvalidEnv, 'CNI_CONTAINERID is not set');
  if (!ifname) throw new CniError(CniCode.InvalidEnv, 'CNI_IFNAME is not set');
  if (ifname.length > 15 || !/^[A-Za-z0-9_.-]+$/.test(ifname))
    throw new CniError(CniCode.InvalidEnv, `CNI_IFNAME ${ifname} is not a valid interface name`);
  if (needNetns) {
    if (!netns) throw new CniError(CniCode.InvalidEnv, 'CNI_NETNS is not set');
    if (!existsSync(netns))
      throw new CniError(CniCode.UnknownContainer, `network namespace ${netns} does not exist`);
  }
  return {
    cfg,
    stdin,
    env,
    containerId,
    ifname,
    netns,
    api: cfg.api ?? env.SPLITNVE_TNVE_API ?? DEFAULT_TNVE_API,
  };
}

function agentError(e: unknown): CniError {
  if (e instanceof ApiCallError) {
    const code = e.body.error === 'refused' ? CniCode.Refused : CniCode.NotConnected;
    return new CniError(code, e.message, JSON.stringify({ failures: e.body.failures ?? [] }));
  }
  return new CniError(CniCode.AgentUnreachable, (e as Error).message);
}

interface StartAnswer {
  view: {
    interfaces: {
      vsiId: string;
      localTag: { uplink: string; vid: number } | null;
      tsiState: string;
    }[];
  };
}

async function add(c: Common): Promise<unknown> {
  const { cfg, containerId, ifname, netns } = c;
  const args = parseArgs(c.env.CNI_ARGS);
  const host = hostIfName(containerId, ifname);
  const tmp = `${host}c`.slice(0, 15);
  const name = vmName(containerId, ifname);
  if (linkExists(ifname, netns))
    throw new CniError(CniCode.InvalidConfig, `${ifname} exists already in ${netns}`);
  // Addresses: IPAM delegation, else CNI_ARGS IP=, else the configuration's addresses.
  let ipamResult: IpamResult;
  if (cfg.ipam) ipamResult = ipam(cfg, c.stdin, c.env, 'ADD');
  else {
    const list = args.get('IP')?.split(',').filter(Boolean) ?? cfg.addresses ?? [];
    ipamResult = {
      ips: list.map((a) => ({
        address: a.includes('/') ? a : `${a}/${a.includes(':') ? 128 : 32}`,
      })),
    };
  }
  const ips = ipamResult.ips ?? [];
  for (const ip of ips) ipOf(ip.address);
  const undo: (() => void)[] = [];
  const rollback = (): void => {
    for (const u of undo.reverse()) {
      try {
        u();
      } catch {
        // best effort
      }
    }
  };
  try {
    sh('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', tmp]);
    undo.push(() => sh('ip', ['link', 'del', host]));
    sh('ip', ['link', 'set', tmp, 'netns', netns]);
    inNs(netns, ['ip', 'link', 'set', tmp, 'name', ifname]);
    const wantMac = args.get('MAC');
    if (wantMac) {
      if (!isMac(wantMac))
        throw new CniError(CniCode.InvalidConfig, `CNI_ARGS MAC=${wantMac} is not a MAC address`);
      inNs(netns, ['ip', 'link', 'set', ifname, 'address', normalizeMac(wantMac)]);
    }
    if (cfg.mtu) {
      sh('ip', ['link', 'set', host, 'mtu', String(cfg.mtu)]);
      inNs(netns, ['ip', 'link', 'set', ifname, 'mtu', String(cfg.mtu)]);
    }
    for (const ip of ips) inNs(netns, ['ip', 'addr', 'add', ip.address, 'dev', ifname]);
    inNs(netns, ['ip', 'link', 'set', ifname, 'up']);
    for (const r of ipamResult.routes ?? []) {
      const gw =
        r.gw ??
        ips.find((i) => i.gateway && i.gateway.includes(':') === r.dst.includes(':'))?.gateway;
      inNs(netns, ['ip', 'route', 'add', r.dst, ...(gw ? ['via', gw] : []), 'dev', ifname]);
    }
    const mac = linkMac(ifname, netns);
    if (cfg.ovsBridge) {
      ovs(cfg, [
        '--may-exist',
        'add-port',
        cfg.ovsBridge,
        host,
        '--',
        'set',
        'port',
        host,
        'tag=4095',
      ]);
      undo.push(() => ovs(cfg, ['--if-exists', 'del-port', host]));
    }
    sh('ip', ['link', 'set', host, 'up']);
    const iface = {
      vsiId: derivedUuid(cfg.name, containerId, ifname),
      vni: cfg.vni,
      macs: [mac],
      ips: ips.map((i) => ipOf(i.address)),
      ...(cfg.typeId !== undefined ? { typeId: cfg.typeId } : {}),
      ...(cfg.typeVersion !== undefined ? { typeVersion: cfg.typeVersion } : {}),
      ...(cfg.managerId ? { managerId: cfg.managerId } : {}),
      ...(cfg.ovsBridge ? { port: host } : {}),
    };
    const t = cfg.timeoutMs !== undefined ? { timeoutMs: cfg.timeoutMs } : {};
    let started: StartAnswer;
    try {
      await apiCall(c.api, 'PUT', `/v1/vms/${encodeURIComponent(name)}`, {
        interfaces: [iface],
        ...t,
      });
      started = await apiCall<StartAnswer>(
        c.api,
        'POST',
        `/v1/vms/${encodeURIComponent(name)}/start`,
        t,
      );
    } catch (e) {
      // Leave nothing behind: the container must not run unconnected.
      await apiCall(c.api, 'DELETE', `/v1/vms/${encodeURIComponent(name)}`).catch(() => undefined);
      throw agentError(e);
    }
    undo.push(() => void apiCall(c.api, 'DELETE', `/v1/vms/${encodeURIComponent(name)}`));
    const tag = started.view.interfaces[0]?.localTag;
    if (!tag)
      throw new CniError(CniCode.NotConnected, `the nNVE assigned no local tag to ${iface.vsiId}`);
    if (cfg.ovsBridge) ovs(cfg, ['set', 'port', host, `tag=${tag.vid}`]);
    return {
      cniVersion: cfg.cniVersion,
      interfaces: [
        { name: host, mac: linkMac(host), vlan: tag.vid },
        { name: ifname, mac, sandbox: netns, vlan: tag.vid },
      ],
      ips: ips.map((i) => ({ ...i, interface: 1 })),
      ...(ipamResult.routes ? { routes: ipamResult.routes } : {}),
      ...(ipamResult.dns ? { dns: ipamResult.dns } : {}),
      splitnve: { vm: name, vsiId: iface.vsiId, vni: cfg.vni, vlan: tag.vid, uplink: tag.uplink },
    };
  } catch (e) {
    rollback();
    if (cfg.ipam) {
      try {
        ipam(cfg, c.stdin, c.env, 'DEL');
      } catch {
        // best effort
      }
    }
    throw e;
  }
}

async function del(c: Common): Promise<void> {
  const { cfg, containerId, ifname } = c;
  const name = vmName(containerId, ifname);
  try {
    await apiCall(c.api, 'DELETE', `/v1/vms/${encodeURIComponent(name)}`);
  } catch (e) {
    // The runtime retries DEL: nothing is released until the nNVE has been told.
    throw new CniError(CniCode.TryAgainLater, `de-associating ${name}: ${(e as Error).message}`);
  }
  const host = hostIfName(containerId, ifname);
  if (cfg.ovsBridge) ovs(cfg, ['--if-exists', 'del-port', host]);
  if (linkExists(host)) sh('ip', ['link', 'del', host]);
  if (c.netns && existsSync(c.netns) && linkExists(ifname, c.netns))
    inNs(c.netns, ['ip', 'link', 'del', ifname]);
  if (cfg.ipam) ipam(cfg, c.stdin, c.env, 'DEL');
}

async function check(c: Common): Promise<void> {
  const { cfg, containerId, ifname, netns } = c;
  const prev = cfg.prevResult as
    | { interfaces?: { name: string; mac?: string; sandbox?: string }[]; ips?: IpConfig[] }
    | undefined;
  if (!prev) throw new CniError(CniCode.InvalidConfig, 'CHECK needs prevResult');
  const name = vmName(containerId, ifname);
  let vm: StartAnswer['view'] & { state: string };
  try {
    vm = await apiCall(c.api, 'GET', `/v1/vms/${encodeURIComponent(name)}`);
  } catch (e) {
    if (e instanceof ApiCallError && e.status === 404)
      throw new CniError(CniCode.CheckFailed, `the tNVE has no ${name}`);
    throw agentError(e);
  }
  const i = vm.interfaces[0];
  if (vm.state !== 'running' || !i || i.tsiState !== 'Activated')
    throw new CniError(
      CniCode.NotConnected,
      `${name} is ${vm.state}, its TSI ${i?.tsiState ?? 'missing'}`,
    );
  const want = prev.interfaces?.find((x) => x.name === ifname && x.sandbox);
  if (!linkExists(ifname, netns))
    throw new CniError(CniCode.CheckFailed, `${ifname} is missing in ${netns}`);
  const mac = linkMac(ifname, netns);
  if (want?.mac && normalizeMac(want.mac) !== mac)
    throw new CniError(CniCode.CheckFailed, `${ifname} has MAC ${mac}, not ${want.mac}`);
  const addrs = JSON.parse(inNs(netns, ['ip', '-j', 'addr', 'show', 'dev', ifname])) as {
    addr_info: { local: string; prefixlen: number }[];
  }[];
  const have = new Set(addrs[0]!.addr_info.map((a) => `${canonicalIp(a.local)}/${a.prefixlen}`));
  for (const ip of prev.ips ?? []) {
    const [a, p] = ip.address.split('/');
    if (!have.has(`${canonicalIp(a!)}/${p}`))
      throw new CniError(CniCode.CheckFailed, `${ifname} lacks ${ip.address}`);
  }
  if (cfg.ovsBridge) {
    const host = hostIfName(containerId, ifname);
    const tag = ovs(cfg, ['get', 'port', host, 'tag']).trim();
    if (Number(tag) !== i.localTag?.vid)
      throw new CniError(
        CniCode.CheckFailed,
        `port ${host} has tag ${tag}, the local tag is ${i.localTag?.vid}`,
      );
  }
  if (cfg.ipam) ipam(cfg, c.stdin, c.env, 'CHECK');
}

export interface CniOutcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function runCni(env: Env, stdin: string): Promise<CniOutcome> {
  const command = env.CNI_COMMAND ?? '';
  let version = '1.0.0';
  try {
    const v = (JSON.parse(stdin || '{}') as { cniVersion?: unknown }).cniVersion;
    if (typeof v === 'string') version = v;
  } catch {
    // reported below
  }
  try {
    switch (command) {
      case 'VERSION':
        return {
          code: 0,
          stdout:
            JSON.stringify({ cniVersion: '1.0.0', supportedVersions: SUPPORTED_VERSIONS }) + '\n',
          stderr: '',
        };
      case 'ADD': {
        const r = await add(common(env, stdin, true));
        return { code: 0, stdout: JSON.stringify(r) + '\n', stderr: '' };
      }
      case 'DEL':
        await del(common(env, stdin, false));
        return { code: 0, stdout: '', stderr: '' };
      case 'CHECK':
        await check(common(env, stdin, true));
        return { code: 0, stdout: '', stderr: '' };
      default:
        throw new CniError(
          CniCode.InvalidEnv,
          command ? `unknown CNI_COMMAND ${command}` : 'CNI_COMMAND is not set',
        );
    }
  } catch (e) {
    const err = e instanceof CniError ? e : new CniError(CniCode.IoFailure, (e as Error).message);
    return {
      code: 1,
      stdout:
        JSON.stringify({
          cniVersion: version,
          code: err.code,
          msg: err.message,
          ...(err.details ? { details: err.details } : {}),
        }) + '\n',
      stderr: '',
    };
  }
}
