/**
 * Interop (c): our tNVE daemons against our nNVE daemon over veth pairs, splitnve profile,
 * every feature of the foundation on real links: null-VID assignment, keep-alive, packing many
 * VSIs per PDU, bridge-initiated de-associate and deactivate through `splitnve ctl`, migration
 * takeover between two stations, restart of either daemon after SIGKILL with state and VIDs
 * kept, keep-alive expiry, SIGTERM sending LLDP TTL 0, SIGHUP reload. Every frame sent by the
 * daemons decodes cleanly (e).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it, type TestContext } from 'node:test';
import { evbTimerMs } from '../harness/lldpad.js';
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
  twoStationsOneBridge,
  daemonTails,
  startOnTwoStations,
} from '../harness/splitnve.js';

const ST1 = '02:00:00:00:aa:01';
const ST2 = '02:00:00:00:aa:02';
const BR1 = '02:00:00:00:bb:01';
const BR2 = '02:00:00:00:bb:02';
// RTE 10: a 10 ms ACK timer; with RTE 8 (2.56 ms, 4 tries in 10 ms) a daemon stalled 10 ms by a
// loaded 2-core CI machine made lldpad give up a keep-alive (it never retries one).
const EVB = { r: 3, rte: 10, rwd: 14, rka: 16 };
const EXPIRY_MS = 1.5 * ((2 * EVB.r + 1) * evbTimerMs(EVB.rte) + evbTimerMs(EVB.rka));
const POOL = { min: 100, max: 199 };

function spec(n: number, vni: number, vid = 0): Record<string, unknown> {
  const hex = n.toString(16).padStart(4, '0');
  return {
    managerId: 'nvemgr1',
    typeId: 7,
    typeVersion: 1,
    idFormat: 5,
    id: `d1b2c3d4-0001-4000-8000-00000000${hex}`,
    filterFormat: 4,
    entries: [{ groupId: vni, mac: `02:00:00:01:${hex.slice(0, 2)}:${hex.slice(2)}`, vid }],
  };
}
const uuid = (n: number): string => (spec(n, 1).id as string).toLowerCase();

interface RequestOk {
  ok: true;
  state: string;
  entries: { vid: number; groupId?: number }[];
}
interface TnveVsi {
  vsi: string;
  state: string;
  vdpState: string;
  spec: { entries: { vid: number }[] } | null;
}
interface NnveVsi {
  port: string;
  station: string;
  vsi: string;
  state: string;
  vdpState: string;
  entries: { vid: number; groupId?: number }[];
}

describe('interop (c): splitnve tnve <-> splitnve nnve, splitnve profile', () => {
  let lab: Lab | undefined;
  let nnve: SplitnveDaemon;
  let tnve1: SplitnveDaemon;
  let tnve2: SplitnveDaemon;
  let capture: Capture;
  let nnveConfig: string;
  const roundTrips: number[] = [];

  const logs = daemonTails(() => ({ nnve, tnve1, tnve2 }));
  const step = (fn: (t: TestContext) => Promise<void>): ((t: TestContext) => Promise<void>) =>
    withLogs(() => lab, logs, fn);

  const request = async (
    d: SplitnveDaemon,
    mode: string,
    vsi: Record<string, unknown>,
    hints?: { m?: boolean; s?: boolean },
  ): Promise<RequestOk> => {
    const t0 = performance.now();
    const r = await d.post<RequestOk>('/v1/requests', {
      mode,
      vsi,
      ...(hints ? { hints } : {}),
      timeoutMs: 10_000,
    });
    roundTrips.push(performance.now() - t0);
    assert.equal(r.status, 200, `${mode} ${String(vsi.id)}: ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const tVsi = async (d: SplitnveDaemon, n: number): Promise<TnveVsi | undefined> =>
    (await d.get<TnveVsi[]>('/v1/vsis')).find((v) => v.vsi === uuid(n));
  const nVsis = async (): Promise<NnveVsi[]> => nnve.get<NnveVsi[]>('/v1/vsis');
  const nVsi = async (n: number, station: string): Promise<NnveVsi | undefined> =>
    (await nVsis()).find((v) => v.vsi === uuid(n) && v.station === station);

  const writeNnveConfig = (rka: number, logLevel: string): void => {
    writeFileSync(
      nnveConfig,
      JSON.stringify({
        ports: [{ name: 'vbr0' }, { name: 'vbr1' }],
        vlanPool: `${POOL.min}-${POOL.max}`,
        profile: 'splitnve',
        evb: { ...EVB, rka },
        logLevel,
      }),
    );
  };
  const tnveArgs = (ifname: string): string[] => [
    '--uplink',
    ifname,
    '--profile',
    'splitnve',
    ...evbFlags(EVB),
  ];

  before(async () => {
    lab = Lab.create('sni');
    const { brNs, st1Ns, st2Ns } = await twoStationsOneBridge(lab, {
      st1: ST1,
      st2: ST2,
      br1: BR1,
      br2: BR2,
    });
    capture = await Capture.start(lab, brNs, ['vbr0', 'vbr1'], 'c-bridge');
    nnveConfig = lab.file('nnve.json');
    writeNnveConfig(EVB.rka, 'info');
    ({ nnve, tnve1, tnve2 } = await startOnTwoStations(lab, { brNs, st1Ns, st2Ns }, nnveConfig, [
      tnveArgs('vst0'),
      tnveArgs('vst1'),
    ]));
  });

  after(async () => {
    await lab?.close();
  });

  it(
    'negotiates EVB and the splitnve profile on both sides',
    step(async () => {
      for (const d of [tnve1, tnve2]) {
        await d.waitEvent('negotiated', 'evb.negotiated', (e) => e.profile === 'splitnve', {
          timeoutMs: 20_000,
        });
        const [u] =
          await d.get<{ profile: string; groupId: boolean; bridge: string }[]>('/v1/uplinks');
        assert.equal(u?.profile, 'splitnve');
        assert.equal(u?.groupId, true);
      }
      await nnve.waitEvent(
        'negotiated with both',
        'evb.negotiated',
        (e) => e.peer === ST2 && e.profile === 'splitnve',
      );
      assert.ok(
        nnve.events('evb.negotiated').some((e) => e.peer === ST1 && e.profile === 'splitnve'),
      );
    }),
  );

  it(
    'assigns a VID for a null-VID request and keeps it alive',
    step(async (t) => {
      const r = await request(tnve1, 'associate', spec(1, 5001));
      const vid = r.entries[0]!.vid;
      assert.ok(vid >= POOL.min && vid <= POOL.max, `VID ${vid}`);
      assert.equal((await tVsi(tnve1, 1))?.spec?.entries[0]?.vid, vid, 'the station adopted it');
      assert.equal((await nVsi(1, ST1))?.state, 'Activated');
      const ka = async (): Promise<number> =>
        (await nnve.get<{ station: string; vdp: { keepAlives: number } }[]>('/v1/stations')).find(
          (s) => s.station === ST1,
        )!.vdp.keepAlives;
      const k0 = await ka();
      await sleep(5 * evbTimerMs(EVB.rka));
      const k1 = await ka();
      assert.ok(k1 - k0 >= 3, `keep-alives: ${k1 - k0}`);
      assert.equal((await nVsi(1, ST1))?.entries[0]?.vid, vid);
      t.diagnostic(`${k1 - k0} keep-alives in 5 periods`);
    }),
  );

  it(
    'packs many VSIs: 40 concurrent associations, several VSI TLVs per PDU',
    step(async (t) => {
      const ns = Array.from({ length: 40 }, (_, i) => 100 + i);
      const t0 = performance.now();
      const rs = await Promise.all(ns.map((n) => request(tnve1, 'associate', spec(n, 6000 + n))));
      const ms = performance.now() - t0;
      const vidsSeen = new Set(rs.map((r) => r.entries[0]!.vid));
      assert.equal(vidsSeen.size, 40, 'one VID per VN');
      assert.equal((await nVsis()).filter((v) => v.station === ST1).length, 41);
      const t1 = performance.now();
      await Promise.all(
        ns.map((n) =>
          request(tnve1, 'de-associate', spec(n, 6000 + n, rs[n - 100]!.entries[0]!.vid)),
        ),
      );
      const ms2 = performance.now() - t1;
      assert.equal((await nVsis()).filter((v) => v.station === ST1).length, 1);
      const vaps = await nnve.get<{ vni: number }[]>('/v1/vaps');
      assert.deepEqual(
        vaps.map((v) => v.vni),
        [5001],
        'the 40 VIDs were released',
      );
      t.diagnostic(`40 associations ${ms.toFixed(0)} ms, 40 de-associations ${ms2.toFixed(0)} ms`);
    }),
  );

  it(
    'bridge-initiated de-associate through splitnve ctl',
    step(async () => {
      await request(tnve1, 'associate', spec(2, 5002));
      const mark = tnve1.mark('vsi.state');
      const r = await nnve.ctl([
        'deassociate',
        '--port',
        'vbr0',
        '--station',
        ST1,
        '--vsi',
        uuid(2),
        '--json',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { deassociated: 1 });
      const e = await tnve1.waitEvent(
        'unsolicited De-Associate',
        'vsi.state',
        (x) => x.vsi === uuid(2),
        {
          since: mark,
        },
      );
      assert.equal(e.to, 'init');
      assert.equal(e.cause, 'bridge-deassociate');
      assert.equal(await tVsi(tnve1, 2), undefined);
      assert.equal(await nVsi(2, ST1), undefined);
    }),
  );

  it(
    'bridge-initiated deactivate through splitnve ctl keeps the VID; the station re-activates',
    step(async () => {
      const vid = (await nVsi(1, ST1))!.entries[0]!.vid;
      const mark = tnve1.mark('vsi.state');
      const r = await nnve.ctl([
        'deactivate',
        '--port',
        'vbr0',
        '--station',
        ST1,
        '--vsi',
        uuid(1),
        '--json',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { result: 'deactivated' });
      const e = await tnve1.waitEvent(
        'unsolicited Pre-Associate-RR',
        'vsi.state',
        (x) => x.vsi === uuid(1),
        {
          since: mark,
        },
      );
      assert.equal(e.to, 'pre-associated-rr');
      assert.equal(e.cause, 'bridge-deactivate');
      const b = await nVsi(1, ST1);
      assert.equal(b?.vdpState, 'pre-associated-rr');
      assert.equal(b?.entries[0]?.vid, vid, 'resources and tag kept');
      // Keep-alives of the deactivated VSI hold it; then the station activates it again.
      await sleep(2 * evbTimerMs(EVB.rka));
      assert.equal((await nVsi(1, ST1))?.vdpState, 'pre-associated-rr');
      const a = await request(tnve1, 'associate', spec(1, 5001, vid));
      assert.equal(a.state, 'Activated');
      assert.equal((await nVsi(1, ST1))?.state, 'Activated');
    }),
  );

  it(
    'migration: a VSI associated on station 2 with M=1 is taken over from station 1',
    step(async () => {
      const mark = tnve1.mark('vsi.state');
      const r = await request(tnve2, 'associate', spec(1, 5001), { m: true });
      assert.equal(r.state, 'Activated');
      const e = await tnve1.waitEvent(
        'station 1 deactivated',
        'vsi.state',
        (x) => x.vsi === uuid(1),
        {
          since: mark,
        },
      );
      assert.equal(e.cause, 'bridge-deactivate');
      assert.equal((await nVsi(1, ST2))?.state, 'Activated');
      assert.equal((await nVsi(1, ST1))?.state, 'Associated');
      assert.ok(nnve.events('tsi.state').some((x) => x.vsi === uuid(1) && x.cause === 'takeover'));
      // The VM has left station 1: its agent de-associates there.
      const d = await request(
        tnve1,
        'de-associate',
        spec(1, 5001, (await nVsi(1, ST1))!.entries[0]!.vid),
      );
      assert.equal(d.state, 'Init');
      assert.equal(await nVsi(1, ST1), undefined);
      assert.equal((await nVsi(1, ST2))?.state, 'Activated');
    }),
  );

  it(
    'restarts the nNVE after SIGKILL with every TSI and VID kept',
    step(async () => {
      await request(tnve1, 'associate', spec(3, 5003));
      await request(tnve1, 'pre-associate', spec(4, 5004));
      const snapshot = async (): Promise<string[]> =>
        (await nVsis())
          .map(
            (v) => `${v.station} ${v.vsi} ${v.vdpState} ${v.entries.map((x) => x.vid).join(',')}`,
          )
          .sort();
      const before = await snapshot();
      assert.equal(before.length, 3);
      await nnve.restart('SIGKILL');
      const restored = nnve.events('state.restored', nnve.proc.pid)[0];
      assert.equal(restored?.tsis, 3);
      assert.deepEqual(await snapshot(), before);
      // The stations notice nothing: keep-alives go on, no TSI expires.
      await sleep(3 * evbTimerMs(EVB.rka));
      assert.deepEqual(await snapshot(), before);
      assert.equal(
        nnve.events('tsi.state', nnve.proc.pid).filter((e) => e.to === 'Init').length,
        0,
      );
      assert.equal((await tVsi(tnve1, 3))?.state, 'Activated');
    }),
  );

  it(
    'restarts a tNVE after SIGKILL: it re-asserts its VSIs with the same VIDs',
    step(async () => {
      const vids = async (): Promise<string[]> =>
        (await tnve1.get<TnveVsi[]>('/v1/vsis'))
          .map((v) => `${v.vsi} ${v.vdpState} ${v.spec?.entries[0]?.vid}`)
          .sort();
      const before = await vids();
      assert.equal(before.length, 2);
      const nBefore = (await nVsis()).map((v) => `${v.vsi} ${v.entries[0]!.vid}`).sort();
      await tnve1.restart('SIGKILL');
      const pid = tnve1.proc.pid;
      await poll(
        're-assertion answered',
        () => tnve1.events('request.ok', pid).filter((e) => e.requestId === 'restore').length >= 2,
      );
      assert.deepEqual(await vids(), before);
      assert.deepEqual((await nVsis()).map((v) => `${v.vsi} ${v.entries[0]!.vid}`).sort(), nBefore);
      assert.equal(tnve1.events('request.failed', pid).length, 0);
    }),
  );

  it(
    'expires the VSIs of a station that stops sending keep-alives, and both sides agree after',
    step(async (t) => {
      const mark = nnve.mark('tsi.state');
      const t0 = performance.now();
      assert.ok(tnve2.proc.signal('SIGSTOP'));
      let ms: number;
      try {
        const e = await nnve.waitEvent(
          'expiry',
          'tsi.state',
          (x) => x.vsi === uuid(1) && x.to === 'Init',
          {
            since: mark,
            timeoutMs: EXPIRY_MS * 4 + 5000,
          },
        );
        ms = performance.now() - t0;
        assert.equal(e.cause, 'keepalive-expired');
        assert.equal(e.station, ST2);
        const vaps = await nnve.get<{ vni: number }[]>('/v1/vaps');
        assert.ok(!vaps.some((v) => v.vni === 5001), 'VN 5001 released');
        await sleep(EXPIRY_MS); // unsolicited De-Associate retransmissions run out
      } finally {
        tnve2.proc.signal('SIGCONT');
      }
      await tnve2.waitEvent(
        'unsolicited De-Associate seen',
        'vsi.state',
        (x) => x.vsi === uuid(1) && x.to === 'init',
      );
      // An overdue keep-alive may re-create it; either way both sides agree after a while.
      await sleep(2 * EXPIRY_MS);
      const tv = await tVsi(tnve2, 1);
      const nv = await nVsi(1, ST2);
      assert.equal(
        tv?.state,
        nv?.state,
        `station ${JSON.stringify(tv)} bridge ${JSON.stringify(nv)}`,
      );
      t.diagnostic(
        `SIGSTOP -> expiry after ${ms.toFixed(0)} ms (expiry timer ${EXPIRY_MS.toFixed(0)} ms)`,
      );
    }),
  );

  it(
    'SIGTERM: a tNVE leaves with LLDP TTL 0 and the nNVE sees it go at once',
    step(async () => {
      const mark = nnve.mark('peer.down');
      const ex = await tnve2.proc.stop(5000);
      assert.equal(ex.code, 0, 'clean exit');
      const e = await nnve.waitEvent('peer down', 'peer.down', (x) => x.peer === ST2, {
        since: mark,
        timeoutMs: 5000,
      });
      assert.equal(e.reason, 'ttl-zero');
      assert.ok(tnve2.events('daemon.stopped').length >= 1);
    }),
  );

  it(
    'SIGHUP: the nNVE reloads its configuration (log level, EVB timers) and renegotiates',
    step(async () => {
      writeNnveConfig(EVB.rka + 1, 'debug');
      const mark = tnve1.mark('evb.negotiated');
      assert.ok(nnve.proc.signal('SIGHUP'));
      const r = await nnve.waitEvent('reload', 'config.reloaded');
      assert.ok((r.changed as string[]).includes('logLevel'));
      assert.ok((r.changed as string[]).includes('ports.vbr0.evb'));
      const n = await tnve1.waitEvent(
        'renegotiated',
        'evb.negotiated',
        (e) => e.rka === EVB.rka + 1,
        {
          since: mark,
          timeoutMs: 10_000,
        },
      );
      assert.equal(n.peer, BR1);
      // A broken file is refused and the running configuration stays.
      writeFileSync(nnveConfig, '{ not json');
      nnve.proc.signal('SIGHUP');
      await nnve.waitEvent('refused reload', 'config.invalid');
      assert.equal((await nnve.get<{ ok: boolean }>('/v1/health')).ok, true);
      writeNnveConfig(EVB.rka + 1, 'info');
    }),
  );

  it(
    '(e) every frame of our daemons decodes cleanly; packing and TTL 0 seen on the wire',
    step(async (t) => {
      const file = await capture.stop();
      const r = await checkFrames(file, [ST1, ST2, BR1, BR2]);
      assert.deepEqual(r.problems, []);
      const frames = await decodeCapture(file);
      const maxTlvs = Math.max(
        ...frames
          .filter((f) => f.ethernet?.source === ST1 && f.ecp?.op === 0)
          .map((f) => (f.vdp ?? []).filter((x) => (x.type ?? 0) >= 1 && (x.type ?? 0) <= 4).length),
      );
      assert.ok(maxTlvs > 1, `most VSI TLVs in one PDU of station 1: ${maxTlvs}`);
      const ttl0 = frames.filter(
        (f) => f.ethernet?.source === ST2 && (f as { lldp?: { ttl?: number } }).lldp?.ttl === 0,
      );
      assert.ok(ttl0.length >= 1, 'LLDP TTL 0 from the stopped tNVE');
      t.diagnostic(
        `station request -> bridge response on the wire: ${describeMs(vdpLatencies(frames, ST1, BR1))}`,
      );
      t.diagnostic(`POST /v1/requests round trip: ${describeMs(roundTrips)}`);
      t.diagnostic(`up to ${maxTlvs} VSI TLVs per PDU; ${r.checked} of ${r.frames} frames ours`);
    }),
  );
});
