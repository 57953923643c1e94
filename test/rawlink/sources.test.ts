/**
 * Raw link source filters and pausing (native setSources / setPaused) and the priority link
 * built on them: two sockets on one interface split the frames by source MAC (each frame to
 * exactly one of them, tagged frames too), the split changes at run time, a paused socket
 * delivers nothing and then what the kernel kept, and the priority link reads other sources
 * only within its budget while known sources get through.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PriorityRawLink } from '../../src/link/priority.js';
import { RawLink } from '../../src/link/raw.js';
import { createVethPair, type VethPair } from '../harness/veth-pair.js';
import { ecpFrame, Receiver, taggedFrame } from './util.js';

const NCB = '01:80:c2:00:00:00';
const S1 = '02:00:00:00:51:01';
const S2 = '02:00:00:00:51:02';
const S3 = '02:00:00:00:51:03';

const sources = (r: Receiver): string[] =>
  r.frames.map((f) => [...f.subarray(6, 12)].map((x) => x.toString(16).padStart(2, '0')).join(':'));

describe('raw link source filters', () => {
  let pair: VethPair;
  let tx: RawLink;

  before(() => {
    pair = createVethPair('sns', 'q');
    tx = new RawLink(pair.ifA, { netns: pair.nsA });
  });

  after(async () => {
    await tx?.close();
    pair?.destroy();
  });

  it('include and exclude of the same sources split the frames, each to exactly one socket', async () => {
    const fast = new RawLink(pair.ifB, {
      netns: pair.nsB,
      sources: { mode: 'include', macs: [S1] },
    });
    const main = new RawLink(pair.ifB, {
      netns: pair.nsB,
      sources: { mode: 'exclude', macs: [S1] },
    });
    try {
      const rf = new Receiver(fast);
      const rm = new Receiver(main);
      tx.send([
        ecpFrame(NCB, S1, 0, 1),
        ecpFrame(NCB, S2, 0, 2),
        taggedFrame(NCB, S1, 7, 0x8940, Buffer.from([0x10, 0x01, 0, 3])),
        ecpFrame(NCB, S3, 0, 4),
        ecpFrame(NCB, S1, 0, 5),
      ]);
      await rm.until(() => rm.frames.length >= 2 && rf.frames.length >= 3, 'five frames');
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(sources(rf), [S1, S1, S1]);
      assert.deepEqual(sources(rm), [S2, S3]);
      // At run time: S2 gets its own queue, S1 joins the others.
      fast.setSources({ mode: 'include', macs: [S2] });
      main.setSources({ mode: 'exclude', macs: [S2] });
      tx.send([ecpFrame(NCB, S1, 0, 6), ecpFrame(NCB, S2, 0, 7)]);
      await rm.until(() => rm.frames.length >= 3 && rf.frames.length >= 4, 'two more');
      assert.deepEqual(sources(rf).slice(3), [S2]);
      assert.deepEqual(sources(rm).slice(2), [S1]);
      // No rule: everything.
      fast.setSources(undefined);
      tx.send([ecpFrame(NCB, S3, 0, 8)]);
      await rf.until(() => sources(rf).includes(S3), 'S3 without a rule');
    } finally {
      await fast.close();
      await main.close();
    }
  });

  it('refuses more than 512 sources', async () => {
    const l = new RawLink(pair.ifB, { netns: pair.nsB });
    try {
      const many = Array.from(
        { length: 513 },
        (_, i) =>
          `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`,
      );
      assert.throws(
        () => l.setSources({ mode: 'include', macs: many }),
        /at most 512 source addresses in a filter, got 513/,
      );
    } finally {
      await l.close();
    }
  });

  it('a paused socket delivers nothing, then what the kernel kept; the excess is dropped', async () => {
    const l = new RawLink(pair.ifB, { netns: pair.nsB, rcvBufBytes: 64 * 1024 });
    try {
      const r = new Receiver(l);
      l.setPaused(true);
      const burst = Array.from({ length: 2000 }, (_, i) => ecpFrame(NCB, S2, 0, i));
      for (let i = 0; i < burst.length; i += 100) tx.send(burst.slice(i, i + 100));
      await new Promise((res) => setTimeout(res, 200));
      assert.equal(r.frames.length, 0, 'nothing while paused');
      l.setPaused(false);
      await r.until(() => r.frames.length > 0, 'frames after resume');
      await new Promise((res) => setTimeout(res, 100));
      const st = l.stats();
      assert.ok(r.frames.length < 2000, `${r.frames.length} kept`);
      assert.equal(st.rxFrames + st.rxDropped, 2000, JSON.stringify(st));
    } finally {
      await l.close();
    }
  });

  it('priority link: known sources always through, others only within the budget', async () => {
    const p = new PriorityRawLink(pair.ifB, { netns: pair.nsB }, [S1], 2000);
    try {
      const got: string[] = [];
      p.onFrames((fs) => {
        for (const f of fs)
          got.push([...f.subarray(6, 12)].map((x) => x.toString(16).padStart(2, '0')).join(':'));
      });
      const t0 = performance.now();
      let sent = 0;
      let sentS1 = 0;
      // Bursts of 200 frames from S2 every ~10 ms for 0.5 s, each followed by one from S1.
      while (performance.now() - t0 < 500) {
        tx.send(Array.from({ length: 200 }, (_, i) => ecpFrame(NCB, S2, 0, sent + i)));
        sent += 200;
        tx.send([ecpFrame(NCB, S1, 0, sent)]);
        sentS1++;
        await new Promise((r) => setTimeout(r, 10));
      }
      await new Promise((r) => setTimeout(r, 150));
      const fromS1 = got.filter((s) => s === S1).length;
      const fromS2 = got.filter((s) => s === S2).length;
      const st = p.stats();
      assert.equal(fromS1, sentS1, 'every frame of the known source');
      assert.equal(st.fast.rxDropped, 0);
      // The budget: 200 per 100 ms (plus at most one read batch of 256 past it per window).
      const seconds = (performance.now() - t0) / 1000;
      assert.ok(fromS2 <= 2000 * seconds + 256 * 8, `${fromS2} from S2 of ${sent} in ${seconds} s`);
      assert.ok(st.budgetPauses > 0);
      assert.ok(sent > fromS2 * 3);
    } finally {
      await p.close();
    }
  });
});
