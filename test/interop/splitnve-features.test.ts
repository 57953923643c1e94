/**
 * Interop (c), the features splitnve-pair.test.ts leaves out, between our tNVE and nNVE daemons
 * over veth pairs in namespaces: PDU authentication (Req-11) with keys on both sides (every VDP
 * PDU on the wire signed; a station with the wrong key refused and counted as bad-hmac), the
 * splitnve IPv4 filter format 0xF0 (Req-10), and refusals as the station API reports them: with
 * Keep (an update to a VN the exhausted VLAN pool has no tag for; the old state stays) and Hard
 * (VID 1). Every frame the daemons sent decodes cleanly (e).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { after, before, describe, it, type TestContext } from 'node:test';
import { dashed, writeKey } from '../harness/keys.js';
import { evbTimerMs } from '../harness/lldpad.js';
import { Lab } from '../harness/netns.js';
import { sleep } from '../harness/proc.js';
import {
  Capture,
  SplitnveDaemon,
  checkFrames,
  decodeCapture,
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
const EVB = { r: 3, rte: 10, rwd: 14, rka: 16 };
/** Two tags: VN 5001 and VN 5002 take them, VN 5003 finds the pool exhausted. */
const POOL = { min: 100, max: 101 };
const IPV4_FORMAT = 0xf0;

function spec(
  n: number,
  vni: number,
  vid = 0,
  ip?: string,
): { id: string } & Record<string, unknown> {
  const hex = n.toString(16).padStart(4, '0');
  const mac = `02:00:00:03:${hex.slice(0, 2)}:${hex.slice(2)}`;
  return {
    managerId: 'nvemgr1',
    typeId: 7,
    typeVersion: 1,
    idFormat: 5,
    id: `d1b2c3d4-0003-4000-8000-00000000${hex}`,
    filterFormat: ip === undefined ? 4 : IPV4_FORMAT,
    entries: [{ groupId: vni, mac, vid, ...(ip === undefined ? {} : { ipv4: ip }) }],
  };
}
const uuid = (n: number): string => spec(n, 1).id.toLowerCase();

interface RequestOk {
  ok: true;
  state: string;
  entries: { vid: number; groupId?: number; ipv4?: string }[];
}
interface RequestRefused {
  error: string;
  reason?: number;
  reasonName?: string;
  keep?: boolean;
  hard?: boolean;
}
interface TnveVsi {
  vsi: string;
  state: string;
  vdpState: string;
  spec: { filterFormat: number; entries: { vid: number; groupId?: number }[] } | null;
}
interface NnveVsi {
  port: string;
  station: string;
  vsi: string;
  state: string;
  vdpState: string;
  filterFormat?: number;
  entries: { vid: number; groupId?: number; mac?: string; ipv4?: string }[];
}
interface AuthView {
  totals: Record<string, number>;
  peers: { local: string; peer: string; status: string; failures: Record<string, number> }[];
}

describe('interop (c): splitnve tnve <-> splitnve nnve: authentication, IPv4 filters, refusals', () => {
  let lab: Lab | undefined;
  let nnve: SplitnveDaemon;
  let tnve1: SplitnveDaemon;
  let tnve2: SplitnveDaemon;
  let capture: Capture;

  const logs = daemonTails(() => ({ nnve, tnve1, tnve2 }));
  const step = (fn: (t: TestContext) => Promise<void>): ((t: TestContext) => Promise<void>) =>
    withLogs(() => lab, logs, fn);

  const post = (d: SplitnveDaemon, mode: string, vsi: Record<string, unknown>, timeoutMs: number) =>
    d.post<RequestOk & RequestRefused>('/v1/requests', { mode, vsi, timeoutMs }, timeoutMs + 5000);
  const request = async (
    d: SplitnveDaemon,
    mode: string,
    vsi: Record<string, unknown>,
  ): Promise<RequestOk> => {
    const r = await post(d, mode, vsi, 10_000);
    assert.equal(r.status, 200, `${mode} ${String(vsi.id)}: ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const tVsi = async (d: SplitnveDaemon, n: number): Promise<TnveVsi | undefined> =>
    (await d.get<TnveVsi[]>('/v1/vsis')).find((v) => v.vsi === uuid(n));
  const nVsis = async (): Promise<NnveVsi[]> => nnve.get<NnveVsi[]>('/v1/vsis');
  const nVsi = async (n: number, station: string): Promise<NnveVsi | undefined> =>
    (await nVsis()).find((v) => v.vsi === uuid(n) && v.station === station);

  const tnveArgs = (ifname: string, keyDir: string): string[] => [
    '--uplink',
    ifname,
    '--profile',
    'splitnve',
    '--auth',
    'require',
    '--key-dir',
    keyDir,
    ...evbFlags(EVB),
  ];

  before(async () => {
    lab = Lab.create('snt3');
    const { brNs, st1Ns, st2Ns } = await twoStationsOneBridge(lab, {
      st1: ST1,
      st2: ST2,
      br1: BR1,
      br2: BR2,
    });
    // The nNVE holds key 1 of both stations; station 1 has the same key, station 2 another one.
    const dir = (name: string): string => {
      const d = lab!.file(name);
      mkdirSync(d, { mode: 0o700 });
      return d;
    };
    const nKeys = dir('nnve-keys');
    const t1Keys = dir('tnve1-keys');
    const t2Keys = dir('tnve2-keys');
    const k1 = randomBytes(32);
    writeKey(nKeys, `${dashed(ST1)}.1.key`, k1);
    writeKey(nKeys, `${dashed(ST2)}.1.key`, randomBytes(32));
    writeKey(t1Keys, `${dashed(ST1)}.1.key`, k1);
    writeKey(t2Keys, `${dashed(ST2)}.1.key`, randomBytes(32));

    capture = await Capture.start(lab, brNs, ['vbr0', 'vbr1'], 'features-bridge');
    const nnveConfig = lab.file('nnve.json');
    writeFileSync(
      nnveConfig,
      JSON.stringify({
        ports: [{ name: 'vbr0' }, { name: 'vbr1' }],
        vlanPool: `${POOL.min}-${POOL.max}`,
        profile: 'splitnve',
        evb: EVB,
        auth: { mode: 'require', keyDir: nKeys },
        logLevel: 'info',
      }),
    );
    ({ nnve, tnve1, tnve2 } = await startOnTwoStations(lab, { brNs, st1Ns, st2Ns }, nnveConfig, [
      tnveArgs('vst0', t1Keys),
      tnveArgs('vst1', t2Keys),
    ]));
    for (const d of [tnve1, tnve2]) {
      await d.waitEvent('negotiated', 'evb.negotiated', (e) => e.profile === 'splitnve', {
        timeoutMs: 20_000,
      });
    }
  });

  after(async () => {
    await lab?.close();
  });

  it(
    'authenticated association: both daemons verify each other with the shared key',
    step(async () => {
      const r = await request(tnve1, 'associate', spec(1, 5001));
      assert.equal(r.state, 'Activated');
      const vid = r.entries[0]!.vid;
      assert.ok(vid >= POOL.min && vid <= POOL.max, `VID ${vid}`);
      assert.equal((await nVsi(1, ST1))?.state, 'Activated');
      const nv = await nnve.get<AuthView>('/v1/auth');
      const tv = await tnve1.get<AuthView>('/v1/auth');
      const p1 = nv.peers.find((p) => p.peer === ST1);
      assert.equal(p1?.status, 'authenticated', JSON.stringify(nv));
      assert.deepEqual(
        Object.values(p1.failures).filter((n) => n > 0),
        [],
      );
      assert.equal(tv.peers.find((p) => p.peer === BR1)?.status, 'authenticated');
      assert.deepEqual(tv.totals, { unsigned: 0, 'unknown-key': 0, 'bad-hmac': 0, replay: 0 });
    }),
  );

  it(
    'a station with the wrong key is refused: nothing associated, the nNVE counts bad-hmac',
    step(async () => {
      const mark = nnve.mark('auth.failed');
      const r = await post(tnve2, 'associate', spec(9, 5009), 2000);
      assert.notEqual(r.status, 200, JSON.stringify(r.body));
      const e = await nnve.waitEvent('auth failure logged', 'auth.failed', (x) => x.peer === ST2, {
        since: mark,
      });
      assert.equal(e.reason, 'bad-hmac');
      assert.equal((await nVsis()).filter((v) => v.station === ST2).length, 0);
      const nv = await nnve.get<AuthView>('/v1/auth');
      const p2 = nv.peers.find((p) => p.peer === ST2);
      assert.ok((p2?.failures['bad-hmac'] ?? 0) >= 1, JSON.stringify(nv));
      assert.notEqual(p2?.status, 'authenticated');
      assert.ok((nv.totals['bad-hmac'] ?? 0) >= 1);
      assert.notEqual((await tVsi(tnve2, 9))?.state, 'Activated');
    }),
  );

  it(
    'IPv4 filter format 0xF0: associated, the nNVE TSI carries the address',
    step(async () => {
      const r = await request(tnve1, 'associate', spec(2, 5001, 0, '192.0.2.17'));
      assert.equal(r.state, 'Activated');
      assert.equal(r.entries[0]?.ipv4, '192.0.2.17');
      const v = await nVsi(2, ST1);
      assert.equal(v?.state, 'Activated');
      assert.equal(v?.entries[0]?.ipv4, '192.0.2.17', JSON.stringify(v));
      assert.equal(v?.entries[0]?.groupId, 5001);
      assert.equal(v?.entries[0]?.vid, r.entries[0]?.vid, 'same VN, same tag');
      assert.equal((await tVsi(tnve1, 2))?.spec?.filterFormat, IPV4_FORMAT);
    }),
  );

  it(
    'refusal with Keep: an update to a VN the exhausted pool has no tag for; the old state stays',
    step(async () => {
      // VN 5002 takes the second (last) tag.
      await request(tnve1, 'associate', spec(3, 5002));
      const before = await nVsi(1, ST1);
      assert.equal(before?.state, 'Activated');
      const vid = before.entries[0]!.vid;
      const r = await post(tnve1, 'associate', spec(1, 5003), 10_000);
      assert.equal(r.status, 409, JSON.stringify(r.body));
      assert.equal(r.body.error, 'refused');
      assert.equal(r.body.reason, 2, JSON.stringify(r.body));
      assert.equal(r.body.keep, true);
      assert.equal(r.body.hard, false);
      const t = await tVsi(tnve1, 1);
      assert.equal(t?.state, 'Activated', JSON.stringify(t));
      assert.equal(t.spec?.entries[0]?.groupId, 5001);
      assert.equal(t.spec?.entries[0]?.vid, vid);
      const b = await nVsi(1, ST1);
      assert.equal(b?.state, 'Activated');
      assert.equal(b.entries[0]?.groupId, 5001);
      assert.equal(b.entries[0]?.vid, vid);
      // Kept for good: the station keeps the old state alive, the nNVE does not expire it.
      await sleep(3 * evbTimerMs(EVB.rka));
      assert.equal((await nVsi(1, ST1))?.state, 'Activated');
      assert.equal((await tVsi(tnve1, 1))?.state, 'Activated');
      assert.deepEqual(
        nnve.events('tsi.state').filter((e) => e.vsi === uuid(1) && e.to === 'Init'),
        [],
      );
    }),
  );

  it(
    'hard refusal: VID 1 is refused with reason 5 and nothing is created',
    step(async () => {
      const r = await post(tnve1, 'associate', spec(4, 5001, 1), 10_000);
      assert.equal(r.status, 409, JSON.stringify(r.body));
      assert.equal(r.body.error, 'refused');
      assert.equal(r.body.reason, 5, JSON.stringify(r.body));
      assert.equal(r.body.hard, true);
      assert.equal(r.body.keep, false);
      assert.equal(await nVsi(4, ST1), undefined);
      assert.notEqual((await tVsi(tnve1, 4))?.state, 'Activated');
    }),
  );

  it(
    '(e) every frame decodes cleanly; every VDP PDU on the wire carries the auth TLV',
    step(async (t) => {
      const file = await capture.stop();
      const r = await checkFrames(file, [ST1, ST2, BR1, BR2], {
        refusalEcho: /VID 1 and VIDs above 4094/,
      });
      const frames = await decodeCapture(file);
      // The station's own VID 1 request (sent on purpose, refused hard) is the one frame of ours
      // a decoder may flag, for exactly that field.
      const vid1 = frames
        .filter(
          (f) =>
            f.ethernet?.source === ST1 &&
            (f.vdp ?? []).some((x) => x.vsiId === uuid(4) && x.entries?.[0]?.vid === 1),
        )
        .map((f) => f.frame);
      assert.ok(vid1.length >= 1, 'the VID 1 request on the wire');
      const echo = new RegExp(
        `: frame (${vid1.join('|')}) .*: expert VID 1 and VIDs above 4094 are invalid$`,
      );
      assert.deepEqual(
        r.problems.filter((p) => !echo.test(p)),
        [],
      );
      const pdus = frames.filter(
        (f) =>
          f.ecp?.op === 0 &&
          f.ethernet !== undefined &&
          [ST1, ST2, BR1].includes(f.ethernet.source),
      );
      const bySource = new Map<string, number>();
      for (const f of pdus) {
        const src = f.ethernet!.source;
        bySource.set(src, (bySource.get(src) ?? 0) + 1);
        const tlvs = (f.vdp ?? []) as { name?: string; keyId?: number }[];
        const auth = tlvs.filter((x) => x.name === 'splitnveAuth');
        assert.equal(auth.length, 1, `frame ${f.frame} from ${src}: ${JSON.stringify(tlvs)}`);
        assert.equal(auth[0]!.keyId, 1);
      }
      for (const src of [ST1, ST2, BR1])
        assert.ok((bySource.get(src) ?? 0) >= 1, `VDP PDUs from ${src}: ${bySource.get(src)}`);
      const ip = pdus.some((f) =>
        (f.vdp ?? []).some(
          (x) =>
            (x as { filterInfoFormat?: number }).filterInfoFormat === IPV4_FORMAT &&
            (x as { entries?: { ipv4?: string }[] }).entries?.[0]?.ipv4 === '192.0.2.17',
        ),
      );
      assert.ok(ip, 'the 0xF0 filter with its IPv4 address on the wire');
      t.diagnostic(
        `${pdus.length} signed VDP PDUs (${[...bySource].map(([s, n]) => `${s}: ${n}`).join(', ')}); ${r.checked} of ${r.frames} frames ours`,
      );
    }),
  );
});
