/**
 * Raw link, frames: ECP and LLDP both ways over a veth between two namespaces, short frames,
 * the kernel filter (other ethertypes never arrive), VLAN tags, group memberships, bursts and
 * the send queue when the socket's send buffer is full.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { RawLink } from '../../src/link/raw.js';
import { createVethPair, type VethPair } from '../harness/veth-pair.js';
import {
  NEAREST_CUSTOMER_BRIDGE as NCB,
  PREFIX,
  Receiver,
  ecpFrame,
  ethFrame,
  lldpFrame,
  taggedFrame,
} from './util.js';

describe('raw link frames', () => {
  let pair: VethPair;
  let a: RawLink;
  let b: RawLink;
  let rxA: Receiver;
  let rxB: Receiver;

  before(() => {
    pair = createVethPair(PREFIX, 'f');
    try {
      a = new RawLink(pair.ifA, { netns: pair.nsA, groups: ['01:80:c2:00:00:03'] });
      b = new RawLink(pair.ifB, { netns: pair.nsB });
    } catch (e) {
      pair.destroy();
      throw e;
    }
    rxA = new Receiver(a);
    rxB = new Receiver(b);
  });

  after(async () => {
    await a?.close();
    await b?.close();
    pair?.destroy();
  });

  it('opens up, with the interface MAC and index', () => {
    assert.deepEqual(a.status(), { up: true });
    assert.deepEqual(b.status(), { up: true });
    const [info] = JSON.parse(pair.ip(pair.nsA, '-j', 'link', 'show', 'dev', pair.ifA)) as {
      address: string;
      ifindex: number;
    }[];
    assert.equal(a.mac, info!.address);
    assert.equal(a.ifindex, info!.ifindex);
    assert.equal(a.name, pair.ifA);
  });

  it('carries ECP and LLDP frames both ways, intact and in order', async () => {
    const toA = [
      ecpFrame(NCB, b.mac, 0, 1, Buffer.from('0201020304050607', 'hex')),
      lldpFrame(NCB, b.mac),
      ecpFrame(NCB, b.mac, 0, 2, Buffer.alloc(200, 0xab)),
    ];
    const toB = [lldpFrame('01:80:c2:00:00:0e', a.mac), ecpFrame(NCB, a.mac, 1, 1)];
    b.send(toA);
    a.send(toB);
    await rxA.until(() => rxA.frames.length >= 3, '3 frames at A');
    await rxB.until(() => rxB.frames.length >= 2, '2 frames at B');
    assert.deepEqual(rxA.frames.slice(0, 3), toA);
    assert.deepEqual(rxB.frames.slice(0, 2), toB);
    // our own transmissions are never delivered back to us
    for (const f of rxA.frames)
      assert.equal(f.subarray(6, 12).toString('hex'), b.mac.replace(/:/g, ''));
    for (const f of rxB.frames)
      assert.equal(f.subarray(6, 12).toString('hex'), a.mac.replace(/:/g, ''));
    assert.ok(a.stats().txFrames >= 2);
    assert.ok(a.stats().rxFrames >= 3);
  });

  it('receives and sends an 18-byte ECP ACK as it is', async () => {
    const ack = ecpFrame(NCB, b.mac, 1, 0x1234);
    assert.equal(ack.length, 18);
    b.send([ack]);
    await rxA.frame(ack, 'the ECP ACK');
    const got = rxA.frames.find((f) => f.equals(ack))!;
    assert.equal(got.length, 18);
  });

  it('drops other ethertypes in the kernel filter, and has a large receive buffer', async () => {
    const before = rxA.frames.length;
    const rxBefore = a.stats().rxFrames;
    const ipv4 = ethFrame(
      a.mac,
      b.mac,
      0x0800,
      Buffer.from('450000140000000040ff0000c6120001c6120002', 'hex'),
    );
    const arp = ethFrame('ff:ff:ff:ff:ff:ff', b.mac, 0x0806, Buffer.alloc(28, 1));
    const ipv6 = ethFrame('33:33:00:00:00:01', b.mac, 0x86dd, Buffer.alloc(40, 0x60));
    const vlanIpv4 = taggedFrame(a.mac, b.mac, 7, 0x0800, Buffer.alloc(20, 0x45));
    const otherToGroup = ethFrame(NCB, b.mac, 0x88f7, Buffer.alloc(44));
    const marker = ecpFrame(NCB, b.mac, 0, 0x7777);
    b.send([ipv4, arp, ipv6, vlanIpv4, otherToGroup, ipv4, marker]);
    await rxA.frame(marker, 'the marker after the filtered frames');
    assert.deepEqual(rxA.frames.slice(before), [marker]);
    assert.equal(a.stats().rxFrames - rxBefore, 1);
    // the filter is attached in the kernel: ss shows it on our packet socket
    const ss = execFileSync('ip', ['netns', 'exec', pair.nsA, 'ss', '-0', '-b', '-m', '-p'], {
      encoding: 'utf8',
    });
    const ours = ss.split(/\n(?=\S)/).find((s) => s.includes(`pid=${process.pid},`));
    assert.ok(ours, `our packet socket in ss output:\n${ss}`);
    assert.match(ours, /bpf filter/);
    assert.match(ours, /\b35136\b/); // 0x8940
    assert.match(ours, /\b35020\b/); // 0x88cc
    // and its receive buffer is large (8 MiB asked; the kernel doubles it)
    const rb = /\brb(\d+)/.exec(ours);
    assert.ok(rb && Number(rb[1]) >= 8 << 20, `receive buffer of 8 MiB or more: ${ours}`);
  });

  it('keeps an 802.1Q tag that the kernel strips on receive', async () => {
    const tagged = taggedFrame(NCB, b.mac, 42, 0x8940, Buffer.from('10010005cafe', 'hex'));
    const prio = taggedFrame(NCB, b.mac, 0, 0x88cc, Buffer.from('0000', 'hex'));
    b.send([tagged, prio]);
    await rxA.frame(tagged, 'the tagged ECP frame');
    await rxA.frame(prio, 'the priority-tagged LLDP frame');
  });

  it('joins the default and configured groups, and more at run time', async () => {
    const maddr = (): string => pair.ip(pair.nsA, 'maddr', 'show', 'dev', pair.ifA);
    let m = maddr();
    for (const g of ['01:80:c2:00:00:00', '01:80:c2:00:00:0e', '01:80:c2:00:00:03']) {
      assert.match(m, new RegExp(`link\\s+${g}`), `${g} joined:\n${m}`);
    }
    const group = '01:80:c2:00:00:0d';
    assert.doesNotMatch(m, new RegExp(group));
    a.join(group);
    m = maddr();
    assert.match(m, new RegExp(`link\\s+${group}`));
    assert.ok(a.groups().includes(group));
    const f = ecpFrame(group, b.mac, 0, 9);
    b.send([f]);
    await rxA.frame(f, 'the frame to the joined group');
    a.leave(group);
    assert.doesNotMatch(maddr(), new RegExp(group));
    assert.ok(!a.groups().includes(group));
    assert.throws(() => a.join('01:80:c2:00:00'), TypeError);
  });

  it('moves a burst of 3000 frames in order without loss', async () => {
    const start = rxA.frames.length;
    const burst = Array.from({ length: 3000 }, (_, i) =>
      ecpFrame(NCB, b.mac, 0, i, Buffer.from([i >> 8, i & 0xff, 0, 0, 0, 0, 0, 0])),
    );
    const tx0 = b.stats().txFrames;
    b.send(burst);
    await rxA.until(() => rxA.frames.length - start >= 3000, '3000 frames');
    assert.deepEqual(rxA.frames.slice(start), burst);
    assert.equal(b.stats().txFrames - tx0, 3000);
    assert.equal(a.stats().rxDropped, 0);
  });

  it('counts bad frames as tx errors and sends the rest of the batch', async () => {
    const errs = b.stats().txErrors;
    const good = ecpFrame(NCB, b.mac, 0, 0x4242);
    b.send([new Uint8Array(5), good, new Uint8Array(20000)]);
    await rxA.frame(good, 'the good frame between two bad ones');
    assert.equal(b.stats().txErrors - errs, 2);
  });
});

describe('raw link send queue', () => {
  it('queues frames while the send buffer is full and sends them in order', async () => {
    const pair = createVethPair(PREFIX, 'q');
    try {
      // A slow qdisc on B holds the frames (and the socket's send buffer) until they leave.
      execFileSync('tc', [
        '-n',
        pair.nsB,
        'qdisc',
        'add',
        'dev',
        pair.ifB,
        'root',
        'tbf',
        'rate',
        '8mbit',
        'burst',
        '4kb',
        'limit',
        '1mb',
      ]);
      const a = new RawLink(pair.ifA, { netns: pair.nsA });
      const b = new RawLink(pair.ifB, { netns: pair.nsB, sndBufBytes: 1 });
      try {
        const rx = new Receiver(a);
        const frames = Array.from({ length: 1500 }, (_, i) =>
          ecpFrame(NCB, b.mac, 0, i, Buffer.alloc(46, i & 0xff)),
        );
        b.send(frames.slice(0, 700));
        b.send(frames.slice(700));
        assert.ok(b.stats().txQueued > 0, 'some frames wait for the send buffer');
        await rx.until(() => rx.frames.length >= 1500, '1500 frames through the slow qdisc');
        assert.deepEqual(rx.frames, frames);
        const s = b.stats();
        assert.equal(s.txQueued, 0);
        assert.equal(s.txFrames, 1500);
        assert.equal(s.txErrors, 0);
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      pair.destroy();
    }
  });
});
