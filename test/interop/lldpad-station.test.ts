/**
 * Interop (a): lldpad as the VDP station, our nNVE daemon (`splitnve nnve`, 802.1Qbg profile)
 * as the bridge, over a veth pair. EVB negotiation seen by lldptool and by our API; vdptool
 * associate with GroupID 10000, a MAC and VID 0 gets a VID from our pool that lldpad adopts;
 * keep-alives hold it; pre-associate and pre-associate-RR; de-associate releases the VID;
 * malformed and invalid requests (hand-built on a raw socket in a namespace of their own, on a
 * second port of our bridge) get the right reason code or are dropped and never disturb other VSIs; lldpad
 * killed -> keep-alive expiry -> our bridge de-associates and releases. Every frame our bridge
 * sent is decoded by tshark (with and without splitnve.lua) and `splitnve decode` (e).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { Lldpad, evbTimerMs, type EvbTlv, type VsiSpec } from '../harness/lldpad.js';
import { Lab } from '../harness/netns.js';
import { sleep } from '../harness/proc.js';
import { RawStation, rawTlv, vdpPayload, vsiTlv } from '../harness/raw-station.js';
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
import { managerIdFromString, VSIID_UUID, type VsiTlv } from '../../src/wire/vdp.js';
import { bytesEqual, parseUuid } from '../../src/wire/bytes.js';

const ST_MAC = '02:00:00:00:aa:01';
const INJ_IF_MAC = '02:00:00:00:aa:11';
/** Raw stations on the second port: one with GroupID support (SGID), one without. */
const RAW_GID_MAC = '02:00:00:00:cc:01';
const RAW_NOGID_MAC = '02:00:00:00:cc:02';
const BR_MAC = '02:00:00:00:bb:01';
const BR2_MAC = '02:00:00:00:bb:02';
const POOL = { min: 100, max: 199 };

// lldpad and our bridge configure different values; both must end up sending the maxima.
// RTE 10: a 10 ms ACK timer. With RTE 8 (2.56 ms: 4 tries within 10 ms) a daemon stalled for
// 10 ms on a loaded 2-core machine made lldpad give up a keep-alive, which it never retries.
const LLDPAD_EVB = { retries: 3, rte: 9, rwd: 14, rka: 16 };
const OUR_EVB = { r: 2, rte: 10, rwd: 13, rka: 16 };
const AGREED = { r: 3, rte: 10, rwd: 14, rka: 16 };
/** Keep-alive expiry of our bridge: 1.5·((2R+1)·10µs·2^RTE + 10µs·2^RKA) in ms. */
const EXPIRY_MS = 1.5 * ((2 * AGREED.r + 1) * evbTimerMs(AGREED.rte) + evbTimerMs(AGREED.rka));

function vsi(n: number, group: number, mac: string): VsiSpec {
  return {
    mgrid2: 'nvemgr1',
    typeid: 42,
    typeidver: 1,
    uuid: `a1b2c3d4-0001-4000-8000-0000000000${n.toString(16).padStart(2, '0')}`,
    hints: 'none',
    filters: [{ vid: 0, mac, group }],
  };
}
function withVid(v: VsiSpec, vid: number): VsiSpec {
  return { ...v, filters: v.filters.map((f) => ({ ...f, vid })) };
}
const VSI_A = vsi(0x0a, 10000, '02:00:00:00:00:01');
const VSI_B = vsi(0x0b, 10001, '02:00:00:00:00:02');
const VSI_C = vsi(0x0c, 10000, '02:00:00:00:00:03');

interface VsiView {
  port: string;
  station: string;
  vsi: string;
  state: string;
  vdpState: string;
  entries: { vid: number; groupId?: number; mac?: string }[];
}
interface VapView {
  segment: string;
  vni: number;
  vid: number;
  tsis: number;
}
interface PeerView {
  port: string;
  peer: string;
  negotiated: { r: number; rte: number; rwd: number; rka: number; groupId: boolean } | null;
}

describe('interop (a): lldpad station <-> splitnve nnve bridge', () => {
  let lab: Lab | undefined;
  let station: Lldpad;
  let nnve: SplitnveDaemon;
  let capture: Capture;
  let rawGid: RawStation;
  let rawNoGid: RawStation;
  let injNs: string;
  const vids = new Map<string, number>();

  const logs = (): { name: string; tail: () => string }[] => [
    ...(nnve ? [{ name: 'nnve', tail: () => nnve.logTail() }] : []),
    ...(station ? [{ name: 'lldpad station', tail: () => station.proc.logTail(25) }] : []),
  ];
  const step = (fn: (t: TestContext) => Promise<void>): ((t: TestContext) => Promise<void>) =>
    withLogs(() => lab, logs, fn);

  const ourVsis = async (): Promise<VsiView[]> => nnve.get<VsiView[]>('/v1/vsis');
  const ourVsi = async (uuid: string, station = ST_MAC): Promise<VsiView | undefined> =>
    (await ourVsis()).find((v) => v.vsi === uuid && v.station === station);
  const vaps = async (): Promise<VapView[]> => nnve.get<VapView[]>('/v1/vaps');

  before(async () => {
    lab = Lab.create('sni');
    const stNs = await lab.addNetns('st');
    const brNs = await lab.addNetns('br');
    await lab.addVeth(
      { netns: stNs, name: 'vst0', mac: ST_MAC },
      { netns: brNs, name: 'vbr0', mac: BR_MAC },
    );
    // The raw stations get their own namespace: lldpad runs ECP/VDP on every interface of its
    // namespace and would ACK and answer frames meant for them.
    injNs = await lab.addNetns('inj');
    await lab.addVeth(
      { netns: injNs, name: 'vinj0', mac: INJ_IF_MAC },
      { netns: brNs, name: 'vbr1', mac: BR2_MAC },
    );
    capture = await Capture.start(lab, brNs, ['vbr0', 'vbr1'], 'a-bridge');
    nnve = await SplitnveDaemon.start(lab, {
      name: 'nnve',
      netns: brNs,
      kind: 'nnve',
      args: [
        '--port',
        'vbr0',
        '--port',
        'vbr1',
        '--vlan-pool',
        `${POOL.min}-${POOL.max}`,
        '--profile',
        '802.1Qbg',
        ...evbFlags(OUR_EVB),
        '--log-level',
        'debug',
      ],
    });
    station = await Lldpad.start(lab, {
      netns: stNs,
      ifname: 'vst0',
      role: 'station',
      evb: LLDPAD_EVB,
    });
  });

  after(async () => {
    await rawGid?.close();
    await rawNoGid?.close();
    await lab?.close();
  });

  it(
    'negotiates EVB: lldptool and GET /v1/peers show the agreed maxima',
    step(async (t) => {
      const t0 = performance.now();
      const settled = await poll(
        'lldpad station to settle EVB with our bridge',
        async () => {
          const sent = await station.getEvb();
          const got = await station.getEvb(true);
          if (!sent || !got || sent.rrstat === 3) return undefined;
          if (sent.rte !== AGREED.rte || sent.rwd !== AGREED.rwd || sent.retries !== AGREED.r)
            return undefined;
          return { sent, got };
        },
        20_000,
      );
      const ms = performance.now() - t0;
      const check = (tlv: EvbTlv, mode: 'station' | 'bridge'): void => {
        assert.equal(tlv.mode, mode);
        assert.equal(tlv.retries, AGREED.r, `${mode} R`);
        assert.equal(tlv.rte, AGREED.rte, `${mode} RTE`);
        assert.equal(tlv.rwd, AGREED.rwd, `${mode} RWD`);
        assert.equal(tlv.rka, AGREED.rka, `${mode} RKA`);
        assert.ok(tlv.bgid && tlv.rrcap, `${mode}: our bridge offers GroupID and RR`);
      };
      check(settled.sent, 'station');
      // What lldpad received from us, once we have heard its TLV too: the same maxima.
      const got = await poll('our bridge TLV with the maxima', async () => {
        const g = await station.getEvb(true);
        return g && g.rte === AGREED.rte && g.rwd === AGREED.rwd && g.rka === AGREED.rka
          ? g
          : undefined;
      });
      check(got, 'bridge');
      assert.equal(got.rrctr, true, 'RR granted to a station that asks for it');
      assert.equal(got.sgid, true, 'our bridge echoes the station status (SGID)');
      const peers = await poll('GET /v1/peers to show lldpad', async () =>
        (await nnve.get<PeerView[]>('/v1/peers')).find((p) => p.peer === ST_MAC && p.negotiated),
      );
      assert.equal(peers.port, 'vbr0');
      const n = peers.negotiated!;
      assert.deepEqual(
        { r: n.r, rte: n.rte, rwd: n.rwd, rka: n.rka, groupId: n.groupId },
        { ...AGREED, groupId: true },
      );
      const ctl = await nnve.ctl(['peers']);
      assert.equal(ctl.code, 0, ctl.stderr);
      assert.match(ctl.stdout, new RegExp(`vbr0\\s+${ST_MAC}\\s+3\\s+10\\s+14\\s+16\\s+true`));
      assert.ok(nnve.events('evb.negotiated').some((e) => e.peer === ST_MAC));
      // lldpad's VDP starts ~1 s after it (notes Q7).
      await station.waitVdpReady();
      t.diagnostic(`EVB settled ${ms.toFixed(0)} ms after lldpad was configured`);
    }),
  );

  it(
    'associates GroupID 10000 / MAC / VID 0: our bridge assigns a pool VID, lldpad adopts it',
    step(async (t) => {
      const r = await station.vdp.associate(VSI_A);
      assert.ok(r.ok, `vdptool assoc: ${r.stdout}`);
      const vid = r.response!.filters[0]!.vid;
      assert.ok(vid >= POOL.min && vid <= POOL.max, `assigned VID ${vid} from the pool`);
      vids.set(VSI_A.uuid, vid);
      // lldpad stored the VID (its query shows it with the group id; quirk Q8 hides it in -W).
      const [q] = await station.vdp.query('assoc', VSI_A.uuid);
      assert.equal(q?.status, 0);
      assert.deepEqual(
        q!.filters.map((f) => [f.vid, f.mac, f.group]),
        [[vid, '02:00:00:00:00:01', 10000]],
      );
      const ours = await ourVsi(VSI_A.uuid);
      assert.equal(ours?.state, 'Activated');
      assert.equal(ours?.entries[0]?.vid, vid);
      assert.deepEqual(
        (await vaps()).map((v) => [v.segment, v.vni, v.vid]),
        [['vbr0', 10000, vid]],
      );
      t.diagnostic(`vdptool -W associate (process + exchange) ${r.ms.toFixed(1)} ms`);
    }),
  );

  it(
    'keeps it with keep-alives over several periods',
    step(async (t) => {
      const kaMs = evbTimerMs(AGREED.rka);
      const stationsBefore =
        await nnve.get<{ station: string; vdp: { keepAlives: number } }[]>('/v1/stations');
      const k0 = stationsBefore.find((s) => s.station === ST_MAC)!.vdp.keepAlives;
      await sleep(5 * kaMs);
      const after = (
        await nnve.get<{ station: string; vdp: { keepAlives: number } }[]>('/v1/stations')
      ).find((s) => s.station === ST_MAC)!.vdp.keepAlives;
      assert.ok(after - k0 >= 3, `keep-alives in 5 periods: ${after - k0}`);
      assert.equal(
        nnve.events('tsi.state').filter((e) => e.cause === 'keepalive-expired').length,
        0,
      );
      const ours = await ourVsi(VSI_A.uuid);
      assert.equal(ours?.state, 'Activated');
      assert.equal(ours?.entries[0]?.vid, vids.get(VSI_A.uuid));
      const [q] = await station.vdp.query('assoc', VSI_A.uuid);
      assert.equal(q?.status, 0);
      assert.equal(q?.filters[0]?.vid, vids.get(VSI_A.uuid));
      t.diagnostic(`${after - k0} keep-alives in ${(5 * kaMs).toFixed(0)} ms (period ${kaMs} ms)`);
    }),
  );

  it(
    'pre-associates and pre-associates with RR; a pre-associated VSI is then associated',
    step(async () => {
      const b = await station.vdp.preassociate(VSI_B);
      assert.ok(b.ok, b.stdout);
      const vidB = b.response!.filters[0]!.vid;
      assert.ok(vidB >= POOL.min && vidB <= POOL.max && vidB !== vids.get(VSI_A.uuid));
      vids.set(VSI_B.uuid, vidB);
      const c = await station.vdp.preassociateRr(VSI_C);
      assert.ok(c.ok, c.stdout);
      // Same VN as VSI A on the same port: the same local tag (one VID per (port, VN)).
      assert.equal(c.response!.filters[0]!.vid, vids.get(VSI_A.uuid));
      assert.equal((await station.vdp.query('preassoc', VSI_B.uuid))[0]?.filters[0]?.vid, vidB);
      assert.equal(
        (await station.vdp.query('preassoc-rr', VSI_C.uuid))[0]?.filters[0]?.vid,
        vids.get(VSI_A.uuid),
      );
      assert.equal((await ourVsi(VSI_B.uuid))?.vdpState, 'pre-associated');
      assert.equal((await ourVsi(VSI_C.uuid))?.vdpState, 'pre-associated-rr');
      assert.equal((await ourVsi(VSI_C.uuid))?.state, 'Associated');
      // Pre-associated -> associated keeps the tag.
      // lldpad matches later requests against the stored filter, so they carry the VID assigned.
      const b2 = await station.vdp.associate(withVid(VSI_B, vidB));
      assert.ok(b2.ok, b2.stdout);
      assert.equal(b2.response!.filters[0]!.vid, vidB);
      assert.equal((await ourVsi(VSI_B.uuid))?.state, 'Activated');
      const v = await vaps();
      assert.deepEqual(
        v.map((x) => [x.vni, x.vid, x.tsis]).sort(),
        [
          [10000, vids.get(VSI_A.uuid), 2],
          [10001, vidB, 1],
        ].sort(),
      );
    }),
  );

  it(
    'de-associates: the VID of a VN nobody uses any more is released',
    step(async () => {
      const mark = nnve.mark('tsi.state');
      const r = await station.vdp.deassociate(withVid(VSI_B, vids.get(VSI_B.uuid)!));
      assert.ok(r.ok, r.stdout);
      const ev = await nnve.waitEvent(
        'tsi.state of VSI B to Init',
        'tsi.state',
        (e) => e.vsi === VSI_B.uuid && e.to === 'Init',
        { since: mark },
      );
      assert.equal(ev.cause, 'deassociate');
      assert.equal(await ourVsi(VSI_B.uuid), undefined);
      assert.deepEqual(
        (await vaps()).map((x) => [x.vni, x.vid]),
        [[10000, vids.get(VSI_A.uuid)]],
        'VN 10001 and its VID are released; VN 10000 is still used by A and C',
      );
      assert.deepEqual(await station.vdp.query('assoc', VSI_B.uuid), []);
    }),
  );

  it(
    'answers invalid and malformed requests with the right reason or drops them, disturbing nothing',
    step(async () => {
      const mgr = managerIdFromString('rawmgr');
      rawGid = RawStation.open(injNs, 'vinj0', RAW_GID_MAC, BR2_MAC);
      rawNoGid = RawStation.open(injNs, 'vinj0', RAW_NOGID_MAC, BR2_MAC);
      const evb = { r: 3, rte: 10, rwd: 14, rka: 16 };
      rawGid.sendLldp({ ...evb, sgid: true });
      rawNoGid.sendLldp({ ...evb, sgid: false });
      const peers = await poll('both raw stations negotiated on vbr1', async () => {
        const p = (await nnve.get<PeerView[]>('/v1/peers')).filter((x) => x.port === 'vbr1');
        return p.length === 2 && p.every((x) => x.negotiated) ? p : undefined;
      });
      assert.equal(peers.find((p) => p.peer === RAW_GID_MAC)?.negotiated?.groupId, true);
      assert.equal(peers.find((p) => p.peer === RAW_NOGID_MAC)?.negotiated?.groupId, false);

      const id = (n: number): Uint8Array =>
        parseUuid(`b0000000-0000-4000-8000-0000000000${n.toString(16).padStart(2, '0')}`)!;
      const base = (n: number, over: Partial<Omit<VsiTlv, 'kind'>> = {}): Omit<VsiTlv, 'kind'> => ({
        type: 3,
        status: 0,
        typeId: 7,
        typeVersion: 1,
        idFormat: VSIID_UUID,
        id: id(n),
        filterFormat: 4,
        entries: [
          {
            groupId: 20000,
            mac: `02:00:00:00:dd:${n.toString(16).padStart(2, '0')}`,
            ps: 0,
            pcp: 0,
            vid: 0,
          },
        ],
        ...over,
      });
      const one = async (
        st: RawStation,
        tlv: Uint8Array | Uint8Array[],
        what: string,
      ): Promise<VsiTlv> => {
        const tlvs = Array.isArray(tlv) ? tlv : [tlv];
        // Only answers about this VSI id (the keep-alive answers of VSI 1 run meanwhile).
        const first = tlvs.find((b) => b[0]! >> 1 >= 1 && b[0]! >> 1 <= 4)!;
        const vsiId = first.subarray(8, 24);
        const got = await st.exchange(vdpPayload(mgr, tlvs), {
          match: (t) => bytesEqual(t.id, vsiId),
        });
        assert.equal(
          got.length,
          1,
          `${what}: one response, got ${JSON.stringify(got.map((g) => g.status))}`,
        );
        return got[0]!;
      };
      const reasonOf = (t: VsiTlv): number => t.status & 0x0f;

      // A valid association of the raw station first: it must survive everything below.
      const okTlv = vsiTlv(base(1));
      const ok = await one(rawGid, okTlv, 'valid associate');
      assert.equal(ok.status, 0x40, 'accepted');
      const rawVid = ok.entries[0]!.vid;
      assert.ok(rawVid >= POOL.min && rawVid <= POOL.max);
      // Keep it alive from now on (every keep-alive period).
      rawGid.keepAlive(
        vdpPayload(mgr, [vsiTlv({ ...base(1), entries: ok.entries })]),
        evbTimerMs(AGREED.rka),
      );

      const cases: {
        what: string;
        st: RawStation;
        tlv: Uint8Array | Uint8Array[];
        reason: number;
        keep?: boolean;
        type?: number;
      }[] = [
        {
          what: 'VID 1',
          st: rawGid,
          tlv: vsiTlv(
            base(2, {
              entries: [{ groupId: 20000, mac: '02:00:00:00:dd:02', ps: 0, pcp: 0, vid: 1 }],
            }),
          ),
          reason: 5,
        },
        {
          what: 'VID 4095',
          st: rawGid,
          tlv: vsiTlv(
            base(3, {
              entries: [{ groupId: 20000, mac: '02:00:00:00:dd:03', ps: 0, pcp: 0, vid: 4095 }],
            }),
          ),
          reason: 5,
        },
        {
          what: 'GroupID 0',
          st: rawGid,
          tlv: vsiTlv(
            base(4, { entries: [{ groupId: 0, mac: '02:00:00:00:dd:04', ps: 0, pcp: 0, vid: 0 }] }),
          ),
          reason: 5,
        },
        {
          what: 'group MAC',
          st: rawGid,
          tlv: vsiTlv(
            base(5, {
              entries: [{ groupId: 20000, mac: '03:00:00:00:dd:05', ps: 0, pcp: 0, vid: 0 }],
            }),
          ),
          reason: 5,
        },
        {
          what: 'fif 4 (GroupID/MAC/VID) without GroupID support',
          st: rawNoGid,
          tlv: vsiTlv(base(6)),
          reason: 1,
        },
        {
          what: 'fif 3 (GroupID/VID) without GroupID support',
          st: rawNoGid,
          tlv: vsiTlv(
            base(7, { filterFormat: 3, entries: [{ groupId: 20000, ps: 0, pcp: 0, vid: 0 }] }),
          ),
          reason: 1,
        },
        {
          what: 'unknown filter info format 9',
          st: rawGid,
          tlv: rawTlv(
            3,
            vsiTlv(base(8))
              .subarray(2)
              .map((b, i) => (i === 22 ? 9 : b)),
          ),
          reason: 1,
        },
        {
          what: 'reserved VSI id format 7',
          st: rawGid,
          tlv: rawTlv(
            3,
            vsiTlv(base(9))
              .subarray(2)
              .map((b, i) => (i === 5 ? 7 : b)),
          ),
          reason: 1,
        },
        {
          what: 'n = 0 entries',
          st: rawGid,
          tlv: rawTlv(
            3,
            vsiTlv(base(10))
              .subarray(2, 2 + 25)
              .map((b, i) => (i === 23 || i === 24 ? 0 : b)),
          ),
          reason: 1,
        },
        {
          what: 'length 25 + 12 + 3 (entry count says 1)',
          st: rawGid,
          tlv: rawTlv(3, Uint8Array.from([...vsiTlv(base(11)).subarray(2), 0, 0, 0])),
          reason: 1,
        },
        {
          what: 'length 25 + 12 but 2 entries announced',
          st: rawGid,
          tlv: rawTlv(
            3,
            vsiTlv(base(12))
              .subarray(2)
              .map((b, i) => (i === 24 ? 2 : b)),
          ),
          reason: 1,
        },
        // The same VSI id as the raw station's associated VSI: refused with Keep, state kept.
        {
          what: 'VID 1 for the associated VSI',
          st: rawGid,
          tlv: vsiTlv(
            base(1, {
              entries: [{ groupId: 20000, mac: '02:00:00:00:dd:01', ps: 0, pcp: 0, vid: 1 }],
            }),
          ),
          reason: 5,
          keep: true,
          type: 3,
        },
        {
          what: 'wrong length for the associated VSI',
          st: rawGid,
          tlv: rawTlv(3, Uint8Array.from([...vsiTlv(base(1)).subarray(2), 0])),
          reason: 1,
          keep: true,
          type: 3,
        },
        // The same VSI id as lldpad's VSI A, from another station: refused, A untouched.
        {
          what: 'VID 1 for lldpad VSI A from another station',
          st: rawGid,
          tlv: vsiTlv(
            base(1, {
              id: parseUuid(VSI_A.uuid)!,
              entries: [{ groupId: 10000, mac: '02:00:00:00:00:01', ps: 0, pcp: 0, vid: 1 }],
            }),
          ),
          reason: 5,
        },
      ];
      for (const c of cases) {
        const r = await one(c.st, c.tlv, c.what);
        assert.equal(r.status & 0x40, 0x40, `${c.what}: response flag`);
        assert.equal(
          reasonOf(r),
          c.reason,
          `${c.what}: reason ${reasonOf(r)} (status 0x${r.status.toString(16)})`,
        );
        assert.equal((r.status & 0x20) !== 0, c.keep ?? false, `${c.what}: Keep`);
        if (c.type !== undefined) assert.equal(r.type, c.type, `${c.what}: type of the state kept`);
      }
      const refused = nnve.events('vsi.refused').length;
      assert.ok(refused >= cases.length, `vsi.refused logged ${refused} times`);

      // Dropped without an answer (still ECP-ACKed): nothing readable names a VSI.
      const drops: { what: string; payload: Uint8Array }[] = [
        {
          what: 'VSI TLV shorter than its fixed part',
          payload: vdpPayload(mgr, [rawTlv(3, vsiTlv(base(20)).subarray(2, 2 + 20))]),
        },
        {
          what: 'response flag in a station request',
          payload: vdpPayload(mgr, [vsiTlv(base(21, { status: 0x40 }))]),
        },
        { what: 'no Manager ID first', payload: Uint8Array.from([...vsiTlv(base(22)), 0, 0]) },
        {
          what: 'TLV length past the end of the PDU',
          payload: vdpPayload(mgr, [rawTlv(3, vsiTlv(base(23)).subarray(2), 300)], false),
        },
        {
          what: 'Manager ID of 15 octets',
          payload: Uint8Array.from([...rawTlv(5, new Uint8Array(15)), ...vsiTlv(base(24)), 0, 0]),
        },
      ];
      const stats0 = await nnve.get<{ node: { framesDropped: number }; vdp: { dropped: number } }>(
        '/v1/stats',
      );
      for (const d of drops) {
        const got = await rawGid.exchange(d.payload, {
          waitMs: 300,
          match: (t) => t.id[0] === 0xb0 && t.id[15] !== 1,
        });
        assert.deepEqual(
          got.map((t) => t.status),
          [],
          `${d.what}: no answer`,
        );
      }
      const stats1 = await nnve.get<{ node: { framesDropped: number }; vdp: { dropped: number } }>(
        '/v1/stats',
      );
      const counted =
        stats1.node.framesDropped -
        stats0.node.framesDropped +
        (stats1.vdp.dropped - stats0.vdp.dropped);
      assert.ok(counted >= drops.length, `drops counted: ${counted}`);

      // Unknown TLV types are skipped: the VSI TLV around them is processed normally.
      const unk = await one(
        rawGid,
        [rawTlv(9, Uint8Array.of(1, 2, 3)), vsiTlv(base(30)), rawTlv(99, new Uint8Array(4))],
        'unknown TLVs around a valid one',
      );
      assert.equal(unk.status, 0x40);
      assert.equal(unk.entries[0]!.vid, rawVid, 'same VN 20000 on the same port: same VID');
      // An unknown org TLV (OUI 00-11-22) after a VSI TLV is skipped too.
      const org = await one(
        rawGid,
        [vsiTlv(base(31)), rawTlv(127, Uint8Array.of(0, 0x11, 0x22, 1, 9, 9))],
        'unknown org TLV',
      );
      assert.equal(org.status, 0x40);

      // Nothing was disturbed: the raw station's VSI, lldpad's A and C keep state and VID.
      const raw1 = await ourVsi('b0000000-0000-4000-8000-000000000001', RAW_GID_MAC);
      assert.equal(raw1?.state, 'Activated');
      assert.equal(raw1?.entries[0]?.vid, rawVid);
      const a = await ourVsi(VSI_A.uuid);
      assert.equal(a?.state, 'Activated');
      assert.equal(a?.entries[0]?.vid, vids.get(VSI_A.uuid));
      assert.equal((await ourVsi(VSI_C.uuid))?.vdpState, 'pre-associated-rr');
      const [q] = await station.vdp.query('assoc', VSI_A.uuid);
      assert.equal(q?.status, 0);
      assert.equal(q?.filters[0]?.vid, vids.get(VSI_A.uuid));
      assert.equal(
        nnve.events('tsi.state').filter((e) => e.cause === 'keepalive-expired').length,
        0,
      );
      assert.equal(
        nnve.events('tsi.state').filter((e) => e.vsi === VSI_A.uuid).length,
        1,
        'VSI A changed state once (its association)',
      );
      rawGid.stopKeepAlive();
      // Let the raw station's VSIs go (de-associate them) so that only lldpad's remain.
      for (const n of [1, 30, 31]) {
        const r = await one(
          rawGid,
          vsiTlv(
            base(n, {
              type: 4,
              entries:
                n === 1
                  ? ok.entries
                  : [{ ...ok.entries[0]!, mac: `02:00:00:00:dd:${n.toString(16)}` }],
            }),
          ),
          `de-associate ${n}`,
        );
        assert.equal(r.status, 0x40);
      }
    }),
  );

  it(
    'lldpad killed: keep-alive expiry, our bridge de-associates and releases the VIDs',
    step(async (t) => {
      const mark = nnve.mark('tsi.state');
      const t0 = performance.now();
      station.proc.signal('SIGKILL');
      await station.proc.exited;
      const evs = await Promise.all(
        [VSI_A, VSI_C].map((v) =>
          nnve.waitEvent(
            `expiry of ${v.uuid}`,
            'tsi.state',
            (e) => e.vsi === v.uuid && e.to === 'Init',
            { since: mark, timeoutMs: EXPIRY_MS * 3 + 5000 },
          ),
        ),
      );
      const ms = performance.now() - t0;
      for (const e of evs) assert.equal(e.cause, 'keepalive-expired');
      assert.deepEqual(await vaps(), [], 'every VID released');
      assert.equal((await ourVsis()).length, 0);
      const stats = await nnve.get<{ vdp: { expiries: number; unsolicitedSent: number } }>(
        '/v1/stats',
      );
      assert.ok(stats.vdp.expiries >= 2 && stats.vdp.unsolicitedSent >= 2);
      t.diagnostic(
        `lldpad SIGKILL -> both TSIs expired after ${ms.toFixed(0)} ms (expiry timer ${EXPIRY_MS.toFixed(0)} ms after the last keep-alive)`,
      );
    }),
  );

  it(
    '(e) every frame our bridge sent decodes cleanly with tshark, splitnve.lua and splitnve decode',
    step(async (t) => {
      const file = await capture.stop();
      const r = await checkFrames(file, [BR_MAC, BR2_MAC], {
        // Refusals of the deliberately invalid requests echo the offending field (a malformed
        // filter is echoed as its fixed part with no entries).
        refusalEcho: /VID 1 and VIDs above 4094|nknown filter info format|without filter entries/,
      });
      assert.deepEqual(r.problems, []);
      assert.ok(r.checked >= 30, `frames of ours checked: ${r.checked} of ${r.frames}`);
      const protos = [...r.protocols].join(' ');
      assert.match(protos, /lldp/);
      assert.match(protos, /ecp|vdp/i);
      const frames = await decodeCapture(file);
      const lat = vdpLatencies(frames, ST_MAC, BR_MAC);
      assert.ok(lat.length >= 5);
      t.diagnostic(`our bridge: lldpad request -> our response on the wire: ${describeMs(lat)}`);
      t.diagnostic(`capture: ${r.frames} frames, ${r.checked} from our bridge; stacks: ${protos}`);
    }),
  );
});
