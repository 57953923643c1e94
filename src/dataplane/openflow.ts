/**
 * OpenFlow 1.4 on one persistent connection, for the OVS data plane: the subset of the
 * ovs-ofctl flow syntax that ovs.ts compiles to, encoded as OFPT_FLOW_MOD messages and installed
 * as one atomic bundle (OFPT_BUNDLE_CONTROL open / OFPT_BUNDLE_ADD_MESSAGE / commit), as
 * `ovs-ofctl --bundle add-flows` would, without starting a process each time (a bundle costs a
 * round trip instead of tens of milliseconds).
 *
 * Flow text subset (anything else makes `parseFlowText` throw; the driver then uses ovs-ofctl):
 *   match:   table=N priority=N in_port=PORT dl_vlan=V vlan_tci=0x0000/0x1000 tun_id=N
 *            dl_src=MAC dl_dst=MAC[/MASK] dl_type=0xNNNN ip arp ipv6 nw_src=IPv4 arp_spa=IPv4
 *            ipv6_src=IPv6[/LEN]
 *   actions: drop output:PORT push_vlan:0x8100 pop_vlan resubmit(,T)
 *            set_field:V->tun_id|vlan_vid|tun_dst|tun_ipv6_dst
 * Ports are names resolved through a map to OpenFlow port numbers.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { connect, type Socket } from 'node:net';

const OFP14 = 0x05;
const T_HELLO = 0;
const T_ERROR = 1;
const T_ECHO_REQUEST = 2;
const T_ECHO_REPLY = 3;
const T_FLOW_MOD = 14;
const T_BARRIER_REQUEST = 20;
const T_BARRIER_REPLY = 21;
const T_BUNDLE_CONTROL = 33;
const T_BUNDLE_ADD = 34;
const BUNDLE_OPEN = 0;
const BUNDLE_COMMIT = 4;
const BUNDLE_COMMIT_REPLY = 5;
const BUNDLE_ATOMIC_ORDERED = 0x3;
const FC_ADD = 0;
const FC_DELETE = 3;
const ANY = 0xffffffff;
const OFPP_IN_PORT = 0xfff8;
const OFPVID_PRESENT = 0x1000;

const OXM_BASIC = 0x8000;
const NXM_1 = 0x0001;
const F_IN_PORT = 0;
const F_ETH_DST = 3;
const F_ETH_SRC = 4;
const F_ETH_TYPE = 5;
const F_VLAN_VID = 6;
const F_IPV4_SRC = 11;
const F_ARP_SPA = 22;
const F_IPV6_SRC = 26;
const F_TUNNEL_ID = 38;
const NX_TUN_IPV4_DST = 32;
const NX_TUN_IPV6_DST = 110;

export class OpenFlowError extends Error {
  override readonly name = 'OpenFlowError';
}

function u8(v: number): Buffer {
  return Buffer.from([v & 0xff]);
}
function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v & 0xffff);
  return b;
}
function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}
function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, v));
  return b;
}
function pad8(b: Buffer): Buffer {
  const n = (8 - (b.length % 8)) % 8;
  return n ? Buffer.concat([b, Buffer.alloc(n)]) : b;
}

function macBytes(text: string): Buffer {
  const parts = text.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new OpenFlowError(`not a MAC address: ${text}`);
  }
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

function ipv4Bytes(text: string): Buffer {
  if (!isIPv4(text)) throw new OpenFlowError(`not an IPv4 address: ${text}`);
  return Buffer.from(text.split('.').map(Number));
}

function ipv6Bytes(text: string): Buffer {
  if (!isIPv6(text) || text.includes('.')) {
    throw new OpenFlowError(`IPv6 address not supported here: ${text}`);
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g || '0', 16), i * 2));
  return out;
}

function prefixMask(bits: number, bytes: number): Buffer {
  const m = Buffer.alloc(bytes);
  for (let i = 0; i < bits; i++) m[i >> 3]! |= 0x80 >> (i & 7);
  return m;
}

function oxm(cls: number, field: number, value: Buffer, mask?: Buffer): Buffer {
  const len = value.length + (mask?.length ?? 0);
  return Buffer.concat([
    u32(((cls << 16) | (field << 9) | (mask ? 0x100 : 0) | len) >>> 0),
    value,
    ...(mask ? [mask] : []),
  ]);
}

function num(text: string, what: string): bigint {
  if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(text))
    throw new OpenFlowError(`${what}: not a number: ${text}`);
  return BigInt(text);
}

/** Splits at commas outside parentheses. */
function splitTop(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}

export interface ParsedFlow {
  readonly table: number;
  readonly priority: number;
  /** ofp_match (OXM), padded. */
  readonly match: Buffer;
  /** Instructions (apply-actions), empty for drop. */
  readonly instructions: Buffer;
}

/** Parses one flow of the subset above; `ports` maps port names to OpenFlow numbers. */
export function parseFlowText(text: string, ports: ReadonlyMap<string, number>): ParsedFlow {
  const at = text.indexOf(' actions=');
  if (at < 0) throw new OpenFlowError(`flow without actions: ${text}`);
  const port = (name: string): number => {
    const n = ports.get(name) ?? (/^\d+$/.test(name) ? Number(name) : undefined);
    if (n === undefined) throw new OpenFlowError(`unknown port ${name}`);
    return n;
  };
  let table = 0;
  let priority = 0x8000;
  const f: {
    inPort?: Buffer;
    ethDst?: Buffer;
    ethSrc?: Buffer;
    ethType?: number;
    vlan?: Buffer;
    ipv4Src?: Buffer;
    arpSpa?: Buffer;
    ipv6Src?: Buffer;
    tunId?: Buffer;
  } = {};
  for (const tok of splitTop(text.slice(0, at))) {
    const eq = tok.indexOf('=');
    const k = eq < 0 ? tok : tok.slice(0, eq);
    const v = eq < 0 ? '' : tok.slice(eq + 1);
    switch (k) {
      case 'table':
        table = Number(num(v, 'table'));
        break;
      case 'priority':
        priority = Number(num(v, 'priority'));
        break;
      case 'in_port':
        f.inPort = oxm(OXM_BASIC, F_IN_PORT, u32(port(v)));
        break;
      case 'dl_vlan':
        f.vlan = oxm(OXM_BASIC, F_VLAN_VID, u16(Number(num(v, 'dl_vlan')) | OFPVID_PRESENT));
        break;
      case 'vlan_tci':
        if (v !== '0x0000/0x1000') throw new OpenFlowError(`vlan_tci ${v} not supported`);
        f.vlan = oxm(OXM_BASIC, F_VLAN_VID, u16(0), u16(OFPVID_PRESENT));
        break;
      case 'tun_id':
        f.tunId = oxm(OXM_BASIC, F_TUNNEL_ID, u64(num(v, 'tun_id')));
        break;
      case 'dl_src':
        f.ethSrc = oxm(OXM_BASIC, F_ETH_SRC, macBytes(v));
        break;
      case 'dl_dst': {
        const [m, mask] = v.split('/');
        f.ethDst = oxm(OXM_BASIC, F_ETH_DST, macBytes(m!), mask ? macBytes(mask) : undefined);
        break;
      }
      case 'dl_type':
        f.ethType = Number(num(v, 'dl_type'));
        break;
      case 'ip':
        f.ethType = 0x0800;
        break;
      case 'arp':
        f.ethType = 0x0806;
        break;
      case 'ipv6':
        f.ethType = 0x86dd;
        break;
      case 'nw_src':
        f.ipv4Src = oxm(OXM_BASIC, F_IPV4_SRC, ipv4Bytes(v));
        break;
      case 'arp_spa':
        f.arpSpa = oxm(OXM_BASIC, F_ARP_SPA, ipv4Bytes(v));
        break;
      case 'ipv6_src': {
        const [ip, len] = v.split('/');
        const bits = len === undefined ? 128 : Number(len);
        const addr = ipv6Bytes(ip!);
        if (bits === 128) f.ipv6Src = oxm(OXM_BASIC, F_IPV6_SRC, addr);
        else {
          const mask = prefixMask(bits, 16);
          for (let i = 0; i < 16; i++) addr[i]! &= mask[i]!;
          f.ipv6Src = oxm(OXM_BASIC, F_IPV6_SRC, addr, mask);
        }
        break;
      }
      default:
        throw new OpenFlowError(`match field ${k} not supported`);
    }
  }
  // OXM order: a prerequisite (eth_type) before what needs it.
  const fields = [
    f.inPort,
    f.ethDst,
    f.ethSrc,
    f.ethType === undefined ? undefined : oxm(OXM_BASIC, F_ETH_TYPE, u16(f.ethType)),
    f.vlan,
    f.ipv4Src,
    f.arpSpa,
    f.ipv6Src,
    f.tunId,
  ].filter((x): x is Buffer => x !== undefined);
  const body = Buffer.concat(fields);
  const match = pad8(Buffer.concat([u16(1), u16(4 + body.length), body]));

  const actions: Buffer[] = [];
  const acts = text.slice(at + ' actions='.length);
  if (acts !== 'drop') {
    for (const a of splitTop(acts)) {
      let m: RegExpExecArray | null;
      if ((m = /^output:(.+)$/.exec(a))) {
        actions.push(
          Buffer.concat([u16(0), u16(16), u32(port(m[1]!)), u16(0xffff), Buffer.alloc(6)]),
        );
      } else if (a === 'pop_vlan' || a === 'strip_vlan') {
        actions.push(Buffer.concat([u16(18), u16(8), Buffer.alloc(4)]));
      } else if ((m = /^push_vlan:(0x[0-9a-fA-F]+)$/.exec(a))) {
        actions.push(Buffer.concat([u16(17), u16(8), u16(parseInt(m[1]!, 16)), Buffer.alloc(2)]));
      } else if ((m = /^resubmit\(,(\d+)\)$/.exec(a))) {
        actions.push(
          Buffer.concat([
            u16(0xffff),
            u16(16),
            u32(0x00002320),
            u16(14), // NXAST_RESUBMIT_TABLE
            u16(OFPP_IN_PORT),
            u8(Number(m[1])),
            Buffer.alloc(3),
          ]),
        );
      } else if ((m = /^set_field:(.+)->(tun_id|vlan_vid|tun_dst|tun_ipv6_dst)$/.exec(a))) {
        const [, val, fld] = m;
        const field =
          fld === 'tun_id'
            ? oxm(OXM_BASIC, F_TUNNEL_ID, u64(num(val!, 'tun_id')))
            : fld === 'vlan_vid'
              ? oxm(OXM_BASIC, F_VLAN_VID, u16(Number(num(val!, 'vlan_vid'))))
              : fld === 'tun_dst'
                ? oxm(NXM_1, NX_TUN_IPV4_DST, ipv4Bytes(val!))
                : oxm(NXM_1, NX_TUN_IPV6_DST, ipv6Bytes(val!));
        const set = pad8(Buffer.concat([u16(25), u16(0), field]));
        set.writeUInt16BE(set.length, 2);
        actions.push(set);
      } else {
        throw new OpenFlowError(`action ${a} not supported`);
      }
    }
  }
  const list = Buffer.concat(actions);
  const instructions =
    list.length > 0
      ? Buffer.concat([u16(4), u16(8 + list.length), Buffer.alloc(4), list])
      : Buffer.alloc(0);
  return { table, priority, match, instructions };
}

function header(type: number, xid: number, bodyLen: number): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt8(OFP14, 0);
  h.writeUInt8(type, 1);
  h.writeUInt16BE(8 + bodyLen, 2);
  h.writeUInt32BE(xid >>> 0, 4);
  return h;
}

function msg(type: number, xid: number, body: Buffer): Buffer {
  return Buffer.concat([header(type, xid, body.length), body]);
}

/** OFPT_FLOW_MOD body adding a flow with `cookie`. */
export function flowAddBody(f: ParsedFlow, cookie: bigint): Buffer {
  return Buffer.concat([
    u64(cookie),
    u64(0n),
    u8(f.table),
    u8(FC_ADD),
    u16(0),
    u16(0),
    u16(f.priority),
    u32(ANY),
    u32(ANY),
    u32(ANY),
    u16(0),
    u16(0),
    f.match,
    f.instructions,
  ]);
}

/** OFPT_FLOW_MOD body deleting every flow (all tables) whose cookie is exactly `cookie`. */
export function flowDeleteCookieBody(cookie: bigint): Buffer {
  return Buffer.concat([
    u64(cookie),
    u64(0xffffffffffffffffn),
    u8(0xff),
    u8(FC_DELETE),
    u16(0),
    u16(0),
    u16(0),
    u32(ANY),
    u32(ANY),
    u32(ANY),
    u16(0),
    u16(0),
    pad8(Buffer.concat([u16(1), u16(4)])),
  ]);
}

/** A whole OFPT_FLOW_MOD message (for tests: `ovs-ofctl ofp-print`). */
export function flowModMessage(body: Buffer, xid = 1): Buffer {
  return msg(T_FLOW_MOD, xid, body);
}

const ERROR_TYPES: Record<number, string> = {
  1: 'bad request',
  2: 'bad action',
  3: 'bad instruction',
  4: 'bad match',
  5: 'flow mod failed',
  17: 'bundle failed',
};

/** One OpenFlow 1.4 connection to a bridge's management socket (a unix socket path). */
export class OpenFlowConnection {
  private sock: Socket | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private xid = 1;
  private bundleId = 1;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  /** xid range of the messages a waiter covers: an error in it fails that waiter. */
  private readonly ranges: { from: number; to: number; key: number }[] = [];

  constructor(
    readonly path: string,
    private readonly timeoutMs = 10_000,
  ) {}

  get connected(): boolean {
    return this.sock !== undefined && !this.sock.destroyed;
  }

  async connect(): Promise<void> {
    const s = await new Promise<Socket>((resolve, reject) => {
      const c = connect({ path: this.path });
      c.once('connect', () => resolve(c));
      c.once('error', reject);
    });
    s.on('data', (d: Buffer) => this.onData(d));
    s.on('error', () => undefined);
    s.on('close', () => this.fail(new OpenFlowError(`OpenFlow connection ${this.path} closed`)));
    this.sock = s;
    s.write(msg(T_HELLO, this.xid++, Buffer.alloc(0)));
    await this.barrier();
  }

  private fail(e: Error): void {
    this.sock = undefined;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
    this.ranges.length = 0;
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt16BE(2);
      if (len < 8) {
        this.sock?.destroy();
        return;
      }
      if (this.buf.length < len) return;
      const type = this.buf.readUInt8(1);
      const xid = this.buf.readUInt32BE(4);
      const body = this.buf.subarray(8, len);
      this.buf = this.buf.subarray(len);
      if (type === T_ECHO_REQUEST) {
        this.sock?.write(msg(T_ECHO_REPLY, xid, Buffer.from(body)));
      } else if (type === T_ERROR) {
        const et = body.readUInt16BE(0);
        const code = body.readUInt16BE(2);
        const r = this.ranges.find((x) => xid >= x.from && xid <= x.to);
        const err = new OpenFlowError(
          `OpenFlow error on ${this.path}: ${ERROR_TYPES[et] ?? `type ${et}`} (code ${code}, xid ${xid})`,
        );
        if (r) this.settle(r.key, err);
      } else if (type === T_BARRIER_REPLY) {
        this.settle(xid);
      } else if (type === T_BUNDLE_CONTROL && body.length >= 6) {
        if (body.readUInt16BE(4) === BUNDLE_COMMIT_REPLY) this.settle(xid);
      }
    }
  }

  private settle(key: number, err?: Error): void {
    const w = this.waiting.get(key);
    if (!w) return;
    this.waiting.delete(key);
    const i = this.ranges.findIndex((x) => x.key === key);
    if (i >= 0) this.ranges.splice(i, 1);
    if (err) w.reject(err);
    else w.resolve();
  }

  private wait(key: number, from: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.settle(
          key,
          new OpenFlowError(`OpenFlow ${this.path}: no answer within ${this.timeoutMs} ms`),
        );
      }, this.timeoutMs);
      this.waiting.set(key, {
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.ranges.push({ from, to: key, key });
    });
  }

  private need(): Socket {
    if (!this.sock || this.sock.destroyed)
      throw new OpenFlowError(`OpenFlow ${this.path}: not connected`);
    return this.sock;
  }

  async barrier(): Promise<void> {
    const s = this.need();
    const x = this.xid++;
    const p = this.wait(x, x);
    s.write(msg(T_BARRIER_REQUEST, x, Buffer.alloc(0)));
    await p;
  }

  /** Installs FLOW_MOD bodies as one atomic, ordered bundle; rejects (nothing applied) on an error. */
  async bundle(flowMods: readonly Buffer[]): Promise<void> {
    const s = this.need();
    const id = this.bundleId++;
    const control = (type: number, xid: number): Buffer =>
      msg(T_BUNDLE_CONTROL, xid, Buffer.concat([u32(id), u16(type), u16(BUNDLE_ATOMIC_ORDERED)]));
    const from = this.xid;
    const out: Buffer[] = [control(BUNDLE_OPEN, this.xid++)];
    for (const fm of flowMods) {
      const x = this.xid++;
      const inner = msg(T_FLOW_MOD, x, fm);
      out.push(
        msg(T_BUNDLE_ADD, x, Buffer.concat([u32(id), u16(0), u16(BUNDLE_ATOMIC_ORDERED), inner])),
      );
    }
    const commit = this.xid++;
    out.push(control(BUNDLE_COMMIT, commit));
    const p = this.wait(commit, from);
    s.write(Buffer.concat(out));
    await p;
  }

  close(): void {
    const s = this.sock;
    this.sock = undefined;
    s?.destroy();
  }
}
