/**
 * A minimal OpenFlow 1.3 client for the test's hypervisor switches: one persistent connection
 * to a bridge's management socket, flow add / strict delete, barrier. Only the matches and
 * actions vswitch.ts uses (in_port, vlan_vid, eth_dst with mask; output, push/pop VLAN, set
 * vlan_vid, goto_table). A hypervisor agent keeps its switch connection open; so does this, so
 * that plugging a VM costs a round trip, not the start of an ovs-ofctl process.
 */
import { connect, type Socket } from 'node:net';

const OFP13 = 0x04;
const T_HELLO = 0;
const T_ERROR = 1;
const T_ECHO_REQUEST = 2;
const T_ECHO_REPLY = 3;
const T_FLOW_MOD = 14;
const T_BARRIER_REQUEST = 20;
const T_BARRIER_REPLY = 21;
const OFPFC_ADD = 0;
const OFPFC_DELETE_STRICT = 4;
const OFPVID_PRESENT = 0x1000;
const ANY = 0xffffffff;

export interface OfMatch {
  readonly inPort?: number;
  /** VLAN id (the frame carries a tag with it). */
  readonly vlan?: number;
  readonly ethDst?: string;
  readonly ethDstMask?: string;
}

export type OfAction =
  { readonly output: number } | { readonly pushVlan: number } | { readonly popVlan: true };

export interface OfFlow {
  readonly table: number;
  readonly priority: number;
  readonly match: OfMatch;
  readonly actions: readonly OfAction[];
  readonly gotoTable?: number;
}

function mac(text: string): Buffer {
  return Buffer.from(text.split(':').map((x) => parseInt(x, 16)));
}

function oxm(field: number, value: Buffer, mask?: Buffer): Buffer {
  const h = Buffer.alloc(4);
  const len = value.length + (mask?.length ?? 0);
  h.writeUInt32BE(((0x8000 << 16) | (field << 9) | (mask ? 0x100 : 0) | len) >>> 0);
  return Buffer.concat([h, value, ...(mask ? [mask] : [])]);
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

function pad8(b: Buffer): Buffer {
  const n = (8 - (b.length % 8)) % 8;
  return n ? Buffer.concat([b, Buffer.alloc(n)]) : b;
}

function encodeMatch(m: OfMatch): Buffer {
  const fields: Buffer[] = [];
  if (m.inPort !== undefined) fields.push(oxm(0, u32(m.inPort)));
  if (m.ethDst !== undefined) {
    fields.push(oxm(3, mac(m.ethDst), m.ethDstMask ? mac(m.ethDstMask) : undefined));
  }
  if (m.vlan !== undefined) fields.push(oxm(6, u16(m.vlan | OFPVID_PRESENT)));
  const body = Buffer.concat(fields);
  return pad8(Buffer.concat([u16(1), u16(4 + body.length), body]));
}

function encodeAction(a: OfAction): Buffer {
  if ('output' in a) {
    return Buffer.concat([u16(0), u16(16), u32(a.output), u16(0xffff), Buffer.alloc(6)]);
  }
  if ('popVlan' in a) return Buffer.concat([u16(18), u16(8), Buffer.alloc(4)]);
  // push a tag, then set its VID
  const push = Buffer.concat([u16(17), u16(8), u16(0x8100), Buffer.alloc(2)]);
  const field = oxm(6, u16(a.pushVlan | OFPVID_PRESENT));
  const set = pad8(Buffer.concat([u16(25), u16(0), field]));
  set.writeUInt16BE(set.length, 2);
  return Buffer.concat([push, set]);
}

function message(type: number, xid: number, body: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt8(OFP13, 0);
  h.writeUInt8(type, 1);
  h.writeUInt16BE(8 + body.length, 2);
  h.writeUInt32BE(xid, 4);
  return Buffer.concat([h, body]);
}

function flowMod(f: OfFlow, command: number): Buffer {
  const fixed = Buffer.alloc(40);
  // cookie, cookie_mask = 0
  fixed.writeUInt8(f.table, 16);
  fixed.writeUInt8(command, 17);
  fixed.writeUInt16BE(f.priority, 22);
  fixed.writeUInt32BE(ANY, 24); // buffer_id
  fixed.writeUInt32BE(ANY, 28); // out_port
  fixed.writeUInt32BE(ANY, 32); // out_group
  const parts = [fixed, encodeMatch(f.match)];
  if (command === OFPFC_ADD) {
    if (f.actions.length > 0) {
      const acts = Buffer.concat(f.actions.map(encodeAction));
      parts.push(Buffer.concat([u16(4), u16(8 + acts.length), Buffer.alloc(4), acts]));
    }
    if (f.gotoTable !== undefined) {
      parts.push(Buffer.concat([u16(1), u16(8), Buffer.from([f.gotoTable, 0, 0, 0])]));
    }
  }
  return Buffer.concat(parts);
}

export class OpenFlowClient {
  private sock: Socket | undefined;
  private buf = Buffer.alloc(0);
  private xid = 1;
  private readonly barriers = new Map<number, () => void>();
  private errors: string[] = [];

  constructor(readonly path: string) {}

  async connect(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const s = connect({ path: this.path });
      s.once('connect', () => resolve());
      s.once('error', reject);
      s.on('data', (d: Buffer) => this.onData(d));
      this.sock = s;
    });
    this.sock!.write(message(T_HELLO, this.xid++, Buffer.alloc(0)));
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt16BE(2);
      if (this.buf.length < len) return;
      const type = this.buf.readUInt8(1);
      const xid = this.buf.readUInt32BE(4);
      const body = this.buf.subarray(8, len);
      this.buf = this.buf.subarray(len);
      if (type === T_ECHO_REQUEST) this.sock?.write(message(T_ECHO_REPLY, xid, Buffer.from(body)));
      else if (type === T_ERROR) {
        this.errors.push(
          `OpenFlow error type ${body.readUInt16BE(0)} code ${body.readUInt16BE(2)} (xid ${xid})`,
        );
      } else if (type === T_BARRIER_REPLY) {
        this.barriers.get(xid)?.();
        this.barriers.delete(xid);
      }
    }
  }

  /** Sends deletions then additions and waits for the switch to have applied them. */
  async apply(del: readonly OfFlow[], add: readonly OfFlow[]): Promise<void> {
    const s = this.sock;
    if (!s) throw new Error(`OpenFlow ${this.path}: not connected`);
    const msgs = [
      ...del.map((f) => message(T_FLOW_MOD, this.xid++, flowMod(f, OFPFC_DELETE_STRICT))),
      ...add.map((f) => message(T_FLOW_MOD, this.xid++, flowMod(f, OFPFC_ADD))),
    ];
    const bx = this.xid++;
    const done = new Promise<void>((r) => this.barriers.set(bx, r));
    s.write(Buffer.concat([...msgs, message(T_BARRIER_REQUEST, bx, Buffer.alloc(0))]));
    await done;
    if (this.errors.length > 0) {
      const e = this.errors.splice(0);
      throw new Error(`OpenFlow ${this.path}: ${e.join('; ')}`);
    }
  }

  close(): void {
    this.sock?.destroy();
    this.sock = undefined;
  }
}
