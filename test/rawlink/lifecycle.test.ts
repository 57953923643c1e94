/**
 * Raw link, lifecycle: link up/down and removal reported through onStatus (and frames flowing
 * again afterwards), open errors with their codes, and close() letting the process exit.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RawLink } from '../../src/link/raw.js';
import { createVethPair, ip, type VethPair } from '../harness/veth-pair.js';
import { NEAREST_CUSTOMER_BRIDGE as NCB, PREFIX, Receiver, ecpFrame } from './util.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'child.js');

/** Runs a child process; fails if it has not exited by itself within `ms`. */
function runChild(
  argv: string[],
  ms = 15000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`child ${argv.join(' ')} did not exit within ${ms} ms: ${stdout} ${stderr}`),
      );
    }, ms);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function codeOf(fn: () => unknown): { code?: string; message: string } {
  try {
    fn();
  } catch (e) {
    return e as { code?: string; message: string };
  }
  assert.fail('expected an error');
}

describe('raw link status', () => {
  let pair: VethPair;
  let a: RawLink;
  let b: RawLink;
  let rxA: Receiver;
  let rxB: Receiver;
  let seq = 0;

  /** B sends a fresh ECP frame and A must receive it. */
  async function flowsBtoA(): Promise<void> {
    const f = ecpFrame(NCB, b.mac, 0, ++seq);
    b.send([f]);
    await rxA.frame(f, `frame ${seq} from B`);
  }

  before(() => {
    pair = createVethPair(PREFIX, 's');
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

  it('reports our end going administratively down and up, and receives again', async () => {
    await flowsBtoA();
    pair.ip(pair.nsA, 'link', 'set', pair.ifA, 'down');
    const down = await rxA.status((s) => !s.up, 'down');
    assert.deepEqual(down, { up: false, reason: 'administratively down' });
    assert.equal(a.status().up, false);
    pair.ip(pair.nsA, 'link', 'set', pair.ifA, 'up');
    await rxA.status((s) => s.up, 'up');
    assert.deepEqual(a.status(), { up: true });
    await flowsBtoA();
  });

  it('reports the peer going down as no carrier, and up again', async () => {
    pair.ip(pair.nsB, 'link', 'set', pair.ifB, 'down');
    const [down, bDown] = await Promise.all([
      rxA.status((s) => !s.up, 'no carrier'),
      rxB.status((s) => !s.up, 'B down'),
    ]);
    assert.deepEqual(down, { up: false, reason: 'no carrier' });
    assert.deepEqual(bDown, { up: false, reason: 'administratively down' });
    pair.ip(pair.nsB, 'link', 'set', pair.ifB, 'up');
    await Promise.all([rxA.status((s) => s.up, 'A up'), rxB.status((s) => s.up, 'B up')]);
    await flowsBtoA();
  });

  it('reports the interface removed, then binds to it again when it comes back', async () => {
    const oldIndex = a.ifindex;
    pair.ip(pair.nsB, 'link', 'del', pair.ifB); // removes both ends of the veth
    // the kernel first reports the interface administratively down, then removed
    const [gone] = await Promise.all([
      rxA.status((s) => s.reason === 'interface removed', 'removed'),
      rxB.status((s) => s.reason === 'interface removed', 'B removed'),
    ]);
    assert.deepEqual(gone, { up: false, reason: 'interface removed' });
    assert.equal(a.ifindex, -1);
    const errs = a.stats().txErrors;
    a.send([ecpFrame(NCB, a.mac, 0, 1)]); // nowhere to go: counted, not thrown
    assert.equal(a.stats().txErrors, errs + 1);

    pair.recreate();
    await rxA.until(() => a.status().up && b.status().up, 'both ends up again');
    assert.notEqual(a.ifindex, oldIndex);
    assert.notEqual(a.ifindex, -1);
    const [info] = JSON.parse(pair.ip(pair.nsA, '-j', 'link', 'show', 'dev', pair.ifA)) as {
      address: string;
    }[];
    assert.equal(a.mac, info!.address, 'the MAC of the new interface');
    const m = pair.ip(pair.nsA, 'maddr', 'show', 'dev', pair.ifA);
    for (const g of ['01:80:c2:00:00:00', '01:80:c2:00:00:0e', '01:80:c2:00:00:03']) {
      assert.match(m, new RegExp(`link\\s+${g}`), `${g} joined again:\n${m}`);
    }
    await flowsBtoA();
  });
});

describe('raw link open errors and close', () => {
  let pair: VethPair;
  before(() => {
    pair = createVethPair(PREFIX, 'e');
  });
  after(() => pair?.destroy());

  it('throws ENODEV for an interface that does not exist', () => {
    const e = codeOf(() => new RawLink(`${PREFIX}nosuch`, { netns: pair.nsA }));
    assert.equal(e.code, 'ENODEV');
    assert.match(e.message, new RegExp(`no such interface: ${PREFIX}nosuch`));
  });

  it('throws ENOENT for a network namespace that does not exist', () => {
    const e = codeOf(() => new RawLink(pair.ifA, { netns: `${PREFIX}${process.pid}nons` }));
    assert.equal(e.code, 'ENOENT');
    assert.match(e.message, /network namespace/);
  });

  it('refuses a down interface with ENETDOWN unless allowDown, then reports it coming up', async () => {
    const down = `${PREFIX}${process.pid}ez`;
    const peer = `${PREFIX}${process.pid}ew`;
    ip(
      'link',
      'add',
      down,
      'netns',
      pair.nsA,
      'type',
      'veth',
      'peer',
      'name',
      peer,
      'netns',
      pair.nsB,
    );
    const e = codeOf(() => new RawLink(down, { netns: pair.nsA }));
    assert.equal(e.code, 'ENETDOWN');
    assert.match(e.message, new RegExp(`interface ${down} is down \\(administratively down\\)`));

    pair.ip(pair.nsA, 'link', 'set', down, 'up'); // up, but the peer is down: no carrier
    pair.waitOper(pair.nsA, down, false);
    const e2 = codeOf(() => new RawLink(down, { netns: pair.nsA }));
    assert.equal(e2.code, 'ENETDOWN');
    assert.match(e2.message, /no carrier/);

    const link = new RawLink(down, { netns: pair.nsA, allowDown: true });
    try {
      const rx = new Receiver(link);
      assert.deepEqual(link.status(), { up: false, reason: 'no carrier' });
      pair.ip(pair.nsB, 'link', 'set', peer, 'up');
      await rx.status((s) => s.up, 'up after the peer came up');
      assert.deepEqual(link.status(), { up: true });
    } finally {
      await link.close();
    }
  });

  it('throws EPERM without CAP_NET_RAW', async () => {
    const r = await runChild([
      'setpriv',
      '--bounding-set=-net_raw',
      '--inh-caps=-net_raw',
      process.execPath,
      CHILD,
      'open',
      pair.nsA,
      pair.ifA,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { code?: string; message?: string };
    assert.equal(out.code, 'EPERM', r.stdout);
    assert.match(out.message!, /CAP_NET_RAW/);
  });

  it('lets the process exit after close', async () => {
    const r = await runChild([process.execPath, CHILD, 'open', pair.nsA, pair.ifA]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { ok: true });
  });

  it('lets the process exit after closing from inside a frame handler', async () => {
    const r = await runChild([
      process.execPath,
      CHILD,
      'close-in-handler',
      pair.nsA,
      pair.ifA,
      pair.nsB,
      pair.ifB,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      ok: boolean;
      received: number;
      txErrorsAfterClose: number;
    };
    assert.equal(out.ok, true);
    assert.ok(out.received > 0);
    assert.equal(out.txErrorsAfterClose, 1);
  });
});
