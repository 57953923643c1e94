/**
 * Interop (b): our tNVE daemon (`splitnve tnve`, 802.1Qbg profile) as the VDP station, lldpad
 * as the bridge, over a veth pair. Associate / pre-associate / pre-associate-RR / de-associate
 * through POST /v1/requests; lldpad's bridge echoes VID 0 (it never assigns) and our station
 * accepts that; keep-alives; lldpad's unsolicited De-Associate after keep-alive loss (our
 * daemon SIGSTOPped past lldpad's expiry); lldpad quirks tolerated: Q1 (a late unsolicited
 * De-Associate of a VSI we de-associated is ignored), Q2 (no End TLV from lldpad), Q4 (our
 * PDUs to lldpad >= 5 ms apart, one VSI TLV each), Q5 (a restarted tnve's first PDU is not a
 * duplicate for lldpad). Every frame our station sent decodes cleanly (e).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { Lldpad, evbTimerMs } from '../harness/lldpad.js';
import { Lab } from '../harness/netns.js';
import { sleep } from '../harness/proc.js';
import {
  Capture,
  SplitnveDaemon,
  checkFrames,
  decodeCapture,
  describeMs,
  poll,
  vdpLatencies,
  withLogs,
  evbFlags,
} from '../harness/splitnve.js';

const ST_MAC = '02:00:00:00:aa:01';
const BR_MAC = '02:00:00:00:bb:01';
// RTE 10: a 10 ms ACK timer; with RTE 8 (2.56 ms, 4 tries in 10 ms) a daemon stalled 10 ms by a
// loaded 2-core CI machine made lldpad give up a keep-alive (it never retries one).
const EVB = { r: 3, rte: 10, rwd: 14, rka: 16 };
/** lldpad's bridge expires a VSI 1.5·((2R+1)·10µs·2^RTE + 10µs·2^RKA) after its last reply. */
const LLDPAD_EXPIRY_MS = 1.5 * ((2 * EVB.r + 1) * evbTimerMs(EVB.rte) + evbTimerMs(EVB.rka));

type Mode = 'pre-associate' | 'pre-associate-rr' | 'associate' | 'de-associate';

function spec(n: number, vid = 0, group = 10000): Record<string, unknown> {
  const hex = n.toString(16).padStart(2, '0');
  return {
    managerId: 'nvemgr1',
    typeId: 42,
    typeVersion: 1,
    idFormat: 5,
    id: `c1b2c3d4-0001-4000-8000-0000000000${hex}`,
    filterFormat: 4,
    entries: [{ groupId: group, mac: `02:00:00:00:01:${hex}`, vid }],
  };
}
const uuid = (n: number): string => (spec(n).id as string).toLowerCase();

interface RequestOk {
  ok: true;
  key: string;
  state: string;
  entries: { vid: number; groupId?: number; mac?: string }[];
  attempts: number;
}
interface TnveVsi {
  vsi: string;
  state: string;
  vdpState: string;
  spec: { entries: { vid: number }[] } | null;
}
interface UplinkView {
  name: string;
  bridge: string | null;
  evb: { r: number; rte: number; rwd: number; rka: number };
  profile: string;
  groupId: boolean | null;
  vdp: { keepAlives: number; unsolicitedIgnored: number; unsolicitedDeassociate: number };
}

describe('interop (b): splitnve tnve station <-> lldpad bridge', () => {
  let lab: Lab | undefined;
  let bridge: Lldpad;
  let tnve: SplitnveDaemon;
  let capture: Capture;
  const latencies: number[] = [];

  const logs = (): { name: string; tail: () => string }[] => [
    ...(tnve ? [{ name: 'tnve', tail: () => tnve.logTail() }] : []),
    ...(bridge ? [{ name: 'lldpad bridge', tail: () => bridge.proc.logTail(25) }] : []),
  ];
  const step = (fn: (t: TestContext) => Promise<void>): ((t: TestContext) => Promise<void>) =>
    withLogs(() => lab, logs, fn);

  const request = async (mode: Mode, vsi: Record<string, unknown>): Promise<RequestOk> => {
    const t0 = performance.now();
    const r = await tnve.post<RequestOk>('/v1/requests', { mode, vsi, timeoutMs: 10_000 });
    latencies.push(performance.now() - t0);
    assert.equal(r.status, 200, `${mode} ${String(vsi.id)}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.ok, true);
    return r.body;
  };
  const vsis = async (): Promise<TnveVsi[]> => tnve.get<TnveVsi[]>('/v1/vsis');
  const ourVsi = async (n: number): Promise<TnveVsi | undefined> =>
    (await vsis()).find((v) => v.vsi === uuid(n));
  const uplink = async (): Promise<UplinkView> => (await tnve.get<UplinkView[]>('/v1/uplinks'))[0]!;
  /** lldpad bridge log lines about a VSI (its uuid in upper or lower case). */
  const bridgeSaw = (n: number, re: RegExp): number =>
    bridge.logLines(re).filter((l) => l.line.toLowerCase().includes(uuid(n))).length;

  before(async () => {
    lab = Lab.create('sni');
    const stNs = await lab.addNetns('st');
    const brNs = await lab.addNetns('br');
    await lab.addVeth(
      { netns: stNs, name: 'vst0', mac: ST_MAC },
      { netns: brNs, name: 'vbr0', mac: BR_MAC },
    );
    capture = await Capture.start(lab, stNs, 'vst0', 'b-station');
    bridge = await Lldpad.start(lab, {
      netns: brNs,
      ifname: 'vbr0',
      role: 'bridge',
      evb: { retries: EVB.r, rte: EVB.rte, rwd: EVB.rwd, rka: EVB.rka },
    });
    tnve = await SplitnveDaemon.start(lab, {
      name: 'tnve',
      netns: stNs,
      kind: 'tnve',
      args: ['--uplink', 'vst0', '--profile', '802.1Qbg', ...evbFlags(EVB)],
    });
  });

  after(async () => {
    await lab?.close();
  });

  it(
    'negotiates EVB with lldpad as bridge',
    step(async () => {
      const u = await poll(
        'tnve to negotiate with lldpad',
        async () => {
          const x = await uplink();
          return x.bridge === BR_MAC && x.groupId === true ? x : undefined;
        },
        20_000,
      );
      assert.deepEqual({ r: u.evb.r, rte: u.evb.rte, rwd: u.evb.rwd, rka: u.evb.rka }, EVB);
      assert.equal(u.profile, '802.1Qbg');
      // What lldpad received from us: a station TLV with GroupID support and the same timers.
      const got = await poll('lldpad to hear our station TLV', async () => {
        const g = await bridge.getEvb(true);
        return g?.mode === 'station' ? g : undefined;
      });
      assert.equal(got.sgid, true);
      assert.equal(got.rte, EVB.rte);
      assert.equal(got.rka, EVB.rka);
      assert.ok(tnve.events('evb.negotiated').some((e) => e.peer === BR_MAC));
      await bridge.waitVdpReady();
    }),
  );

  it(
    'associates: lldpad echoes VID 0 (it never assigns) and our station accepts it',
    step(async () => {
      const r = await request('associate', spec(1));
      assert.equal(r.state, 'Activated');
      assert.equal(r.entries[0]?.vid, 0, 'VID 0 as lldpad echoed it');
      assert.equal((await ourVsi(1))?.state, 'Activated');
      // A fixed VID is echoed as well.
      const r2 = await request('associate', spec(2, 200, 10002));
      assert.equal(r2.entries[0]?.vid, 200);
      assert.ok(bridgeSaw(1, /vdp22br_addvsi|vsi:/) > 0, 'lldpad logged the VSI');
    }),
  );

  it(
    'keeps VSIs with keep-alives; lldpad never expires them',
    step(async (t) => {
      const k0 = (await uplink()).vdp.keepAlives;
      await sleep(5 * evbTimerMs(EVB.rka));
      const k1 = (await uplink()).vdp.keepAlives;
      assert.ok(k1 - k0 >= 6, `keep-alives (2 VSIs, 5 periods): ${k1 - k0}`);
      assert.equal(tnve.events('keepalive.failed').length, 0);
      assert.equal((await uplink()).vdp.unsolicitedDeassociate, 0, 'no unsolicited De-Associate');
      assert.equal((await ourVsi(1))?.state, 'Activated');
      assert.equal((await ourVsi(2))?.state, 'Activated');
      t.diagnostic(`${k1 - k0} keep-alives in 5 periods of ${evbTimerMs(EVB.rka)} ms for 2 VSIs`);
    }),
  );

  it(
    'pre-associates, pre-associates with RR, then associates the pre-associated VSI',
    step(async () => {
      const p = await request('pre-associate', spec(3));
      assert.equal(p.state, 'Associated');
      assert.equal((await ourVsi(3))?.vdpState, 'pre-associated');
      const rr = await request('pre-associate-rr', spec(4));
      assert.equal(rr.state, 'Associated');
      assert.equal((await ourVsi(4))?.vdpState, 'pre-associated-rr');
      const a = await request('associate', spec(3));
      assert.equal(a.state, 'Activated');
      assert.equal((await ourVsi(3))?.vdpState, 'associated');
    }),
  );

  it(
    'paces PDUs to lldpad (Q4): a burst of requests all succeed',
    step(async () => {
      const burst = [10, 11, 12, 13, 14, 15].map((n) =>
        request('associate', spec(n, 0, 10010 + n)),
      );
      const rs = await Promise.all(burst);
      for (const r of rs) assert.equal(r.state, 'Activated');
      // Each lldpad got exactly one request per VSI processed (no PDU lost to Q4's overwrite).
      for (const n of [10, 11, 12, 13, 14, 15]) assert.equal((await ourVsi(n))?.state, 'Activated');
      for (const n of [10, 11, 12, 13, 14, 15])
        await request('de-associate', spec(n, 0, 10010 + n));
    }),
  );

  it(
    "de-associates, and ignores lldpad's late unsolicited De-Associate of it (Q1)",
    step(async (t) => {
      const ign0 = (await uplink()).vdp.unsolicitedIgnored;
      const mark = tnve.mark('vsi.state');
      const t0 = performance.now();
      const r = await request('de-associate', spec(4));
      assert.equal(r.state, 'Init');
      assert.equal(await ourVsi(4), undefined);
      // lldpad keeps the VSI and sends an unsolicited De-Associate when its timer runs out.
      await poll(
        "lldpad's late unsolicited De-Associate",
        async () => (await uplink()).vdp.unsolicitedIgnored > ign0,
        LLDPAD_EXPIRY_MS * 3 + 5000,
      );
      const ms = performance.now() - t0;
      assert.equal(await ourVsi(4), undefined, 'still gone, nothing re-created');
      const changes = tnve.events('vsi.state').slice(mark);
      assert.deepEqual(
        changes.map((e) => [e.vsi, e.to, e.cause]),
        [[uuid(4), 'init', 'response']],
        'no state change other than the de-association itself',
      );
      for (const n of [1, 2, 3]) assert.equal((await ourVsi(n))?.state, 'Activated');
      t.diagnostic(
        `Q1: lldpad's unsolicited De-Associate came ${ms.toFixed(0)} ms after ours (its expiry ${LLDPAD_EXPIRY_MS.toFixed(0)} ms)`,
      );
    }),
  );

  it(
    "handles lldpad's unsolicited De-Associate after keep-alive loss (tnve SIGSTOPped)",
    step(async (t) => {
      const mark = tnve.mark('vsi.state');
      assert.ok(tnve.proc.signal('SIGSTOP'));
      try {
        await sleep(LLDPAD_EXPIRY_MS * 2.5);
      } finally {
        tnve.proc.signal('SIGCONT');
      }
      const evs = await Promise.all(
        [1, 2, 3].map((n) =>
          tnve.waitEvent(
            `unsolicited De-Associate of VSI ${n}`,
            'vsi.state',
            (e) => e.vsi === uuid(n) && e.to === 'init',
            { since: mark },
          ),
        ),
      );
      for (const e of evs) assert.equal(e.cause, 'bridge-deassociate');
      assert.ok((await uplink()).vdp.unsolicitedDeassociate >= 3);
      // After SIGCONT the overdue keep-alives may leave before the De-Associates are read; lldpad
      // then re-creates the VSI and answers, and our station follows. Either way both sides
      // must agree: over two more lldpad expiry periods nothing fails or is de-associated, and
      // each VSI is either gone or Activated (kept alive).
      const settle = tnve.mark('vsi.state');
      await sleep(LLDPAD_EXPIRY_MS * 2);
      assert.deepEqual(
        tnve
          .events('vsi.state')
          .slice(settle)
          .filter((e) => e.cause === 'bridge-deassociate'),
        [],
      );
      assert.equal(tnve.events('keepalive.failed').length, 0);
      const left = await vsis();
      for (const v of left) assert.equal(v.state, 'Activated', JSON.stringify(v));
      const again = await request('associate', spec(1));
      assert.equal(again.state, 'Activated');
      t.diagnostic(
        `SIGSTOP ${(LLDPAD_EXPIRY_MS * 2.5).toFixed(0)} ms -> 3 unsolicited De-Associates handled; ` +
          `${left.length} VSIs re-created by overdue keep-alives`,
      );
    }),
  );

  it(
    'restarts (SIGKILL, then SIGTERM): the first PDU is new to lldpad (Q5), VSIs re-asserted',
    step(async () => {
      await request('pre-associate', spec(5));
      for (const sig of ['SIGKILL', 'SIGTERM'] as const) {
        const before = tnve.proc.pid;
        await tnve.restart(sig);
        assert.notEqual(tnve.proc.pid, before);
        const pid = tnve.proc.pid;
        // The restored requests are answered by lldpad: it did not drop our first PDU as a
        // duplicate of the previous process's last sequence.
        await poll(`re-assertion answered after ${sig}`, async () => {
          const oks = tnve.events('request.ok', pid).filter((e) => e.requestId === 'restore');
          const [v1, v5] = [await ourVsi(1), await ourVsi(5)];
          return oks.length >= 2 && v1?.state === 'Activated' && v5?.vdpState === 'pre-associated';
        });
        assert.equal(tnve.events('request.failed', pid).length, 0);
      }
      await request('de-associate', spec(1));
      await request('de-associate', spec(5));
    }),
  );

  it(
    '(e) every frame our station sent decodes cleanly; Q2 and Q4 seen on the wire',
    step(async (t) => {
      const file = await capture.stop();
      const r = await checkFrames(file, [ST_MAC]);
      assert.deepEqual(r.problems, []);
      assert.ok(r.checked >= 40, `frames of ours checked: ${r.checked} of ${r.frames}`);
      const frames = await decodeCapture(file);
      // Q2: lldpad's VDP PDUs carry no End TLV; ours always do.
      const vdpFrom = (mac: string): typeof frames =>
        frames.filter((f) => f.ethernet?.source === mac && f.ecp?.op === 0 && f.vdp);
      const lldpadPdus = vdpFrom(BR_MAC);
      const ourPdus = vdpFrom(ST_MAC);
      assert.ok(lldpadPdus.length > 10 && ourPdus.length > 10);
      assert.ok(
        lldpadPdus.every((f) => !f.vdp!.some((x) => x.type === 0)),
        'lldpad sends no End',
      );
      assert.ok(
        ourPdus.every((f) => f.vdp!.at(-1)?.type === 0),
        'we always end with End',
      );
      // Q4: one VSI TLV per PDU to lldpad, and >= 5 ms between our PDUs.
      assert.ok(
        ourPdus.every(
          (f) => f.vdp!.filter((x) => (x.type ?? 0) >= 1 && (x.type ?? 0) <= 4).length === 1,
        ),
      );
      const gaps = ourPdus
        .slice(1)
        .map((f, i) => ((f.time ?? 0) - (ourPdus[i]!.time ?? 0)) * 1000)
        .sort((a, b) => a - b);
      // 5 ms by our clock (from when a PDU really left); capture timestamps jitter by a few
      // tenths. One clean-clone run on a loaded 2-core machine saw one gap of 2.7 ms on the wire
      // among dozens (the first frame's delivery delayed, not our pacing): one gap may be shorter,
      // never below lldpad's own 2 ms.
      assert.ok(gaps[0]! >= 2, `smallest gap between our ECP PDUs ${gaps[0]!.toFixed(2)} ms`);
      assert.ok(gaps[1]! >= 4.5, `second smallest gap ${gaps[1]!.toFixed(2)} ms (${gaps.length})`);
      const lat = vdpLatencies(frames, ST_MAC, BR_MAC);
      t.diagnostic(`our request -> lldpad's response on the wire: ${describeMs(lat)}`);
      t.diagnostic(`POST /v1/requests round trip: ${describeMs(latencies)}`);
      t.diagnostic(
        `smallest gap between our PDUs ${gaps[0]!.toFixed(2)} ms, next ${gaps[1]!.toFixed(2)} ms; ${r.checked} of ${r.frames} frames ours`,
      );
    }),
  );
});
