import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MANAGER_ID_TLV_LEN, packPdu, type OutgoingTlv } from '../../src/vdp/pdu.js';
import { ECP_MAX_ULPDU } from '../../src/wire/ecp.js';
import { VdpStation, type StationEvent } from '../../src/vdp/station.js';
import type { VsiSpec } from '../../src/vdp/types.js';
import { DEFAULT_WIRE_OPTIONS } from '../../src/wire/options.js';
import { AUTH_TLV_LEN, managerIdFromString, VSIID_UUID, type OrgTlv } from '../../src/wire/vdp.js';

const MGR = managerIdFromString('mgr');
const END = 2;

/** A TLV-shaped blob of `size` octets (content is opaque to the packer), tagged `ref`. */
function tlv(size: number, ref: number, managerId = MGR): OutgoingTlv<number> {
  const bytes = new Uint8Array(size).fill(ref & 0xff);
  return { managerId, bytes, ref };
}

/** A signer that appends a fixed-size authentication TLV, as the splitnve profile does. */
const sign = (unsigned: Uint8Array): Uint8Array => {
  void unsigned;
  return new Uint8Array(AUTH_TLV_LEN).fill(0xaa);
};

/** Packs the whole queue into PDUs; returns each PDU's payload and the refs it carried. */
function packAll(
  queue: OutgoingTlv<number>[],
  opts: Parameters<typeof packPdu>[1] = {},
): { payload: Uint8Array; refs: number[] }[] {
  const pdus = [];
  let rest = queue;
  while (rest.length > 0) {
    const p = packPdu(rest, opts)!;
    assert.ok(p && p.count >= 1, 'every call makes progress');
    pdus.push({ payload: p.payload, refs: rest.slice(0, p.count).map((t) => t.ref) });
    rest = rest.slice(p.count);
  }
  return pdus;
}

test('TLVs that fill the 1494-octet ULPDU exactly share one PDU; one octet more starts a new one', () => {
  const room = ECP_MAX_ULPDU - MANAGER_ID_TLV_LEN - END; // 1474
  // three TLVs of 491 + 1 of 1 = 1474
  const exact = [tlv(491, 1), tlv(491, 2), tlv(491, 3), tlv(1, 4)];
  assert.equal(491 * 3 + 1, room);
  const one = packPdu([...exact, tlv(2, 5)])!;
  assert.equal(one.count, 4, 'everything up to the limit');
  assert.equal(one.payload.length, ECP_MAX_ULPDU);
  assert.deepEqual([...one.payload.subarray(one.payload.length - 2)], [0, 0], 'ends with End');
  const pdus = packAll([...exact, tlv(2, 5)]);
  assert.deepEqual(
    pdus.map((p) => p.refs),
    [[1, 2, 3, 4], [5]],
    'the next TLV goes to a new PDU',
  );
  assert.equal(pdus[1]!.payload.length, MANAGER_ID_TLV_LEN + 2 + END);
  // one octet over: the last TLV moves to the next PDU
  const over = packAll([tlv(491, 1), tlv(491, 2), tlv(491, 3), tlv(2, 4)]);
  assert.deepEqual(
    over.map((p) => p.refs),
    [[1, 2, 3], [4]],
  );
  assert.equal(over[0]!.payload.length, ECP_MAX_ULPDU - 1);
});

test('with signing the authentication TLV is reserved: exactly full includes it, one more octet splits', () => {
  const room = ECP_MAX_ULPDU - MANAGER_ID_TLV_LEN - END - AUTH_TLV_LEN; // 1426
  const exact = [tlv(500, 1), tlv(500, 2), tlv(room - 1000, 3)];
  const p = packPdu(exact, { sign })!;
  assert.equal(p.count, 3);
  assert.equal(p.payload.length, ECP_MAX_ULPDU);
  // the auth TLV sits right before End
  const authAt = p.payload.length - END - AUTH_TLV_LEN;
  assert.ok(p.payload.subarray(authAt, authAt + AUTH_TLV_LEN).every((b) => b === 0xaa));
  const over = packAll([tlv(500, 1), tlv(500, 2), tlv(room - 999, 3)], { sign });
  assert.deepEqual(
    over.map((x) => x.refs),
    [[1, 2], [3]],
  );
  // without signing the same three TLVs fit in one PDU: the reserve is only taken when signing
  assert.equal(packPdu([tlv(500, 1), tlv(500, 2), tlv(room - 999, 3)])!.count, 3);
});

test('a different Manager ID starts a new PDU', () => {
  const other = managerIdFromString('other');
  const pdus = packAll([tlv(30, 1), tlv(30, 2, other), tlv(30, 3, other), tlv(30, 4)]);
  assert.deepEqual(
    pdus.map((p) => p.refs),
    [[1], [2, 3], [4]],
  );
});

test('property: no packed PDU exceeds the ULPDU limit, order is kept, and each PDU is as full as allowed', () => {
  fc.assert(
    fc.property(
      // VSI TLVs are 2..513 octets (9-bit length); a VSI with org TLVs can be up to ~1000
      fc.array(fc.integer({ min: 2, max: 1000 }), { minLength: 1, maxLength: 40 }),
      fc.boolean(),
      fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
      (sizes, signed, maxTlvs) => {
        const queue = sizes.map((s, i) => tlv(s, i));
        const opts = { ...(signed ? { sign } : {}), ...(maxTlvs ? { maxTlvs } : {}) };
        const pdus = packAll(queue, opts);
        const reserve = END + (signed ? AUTH_TLV_LEN : 0);
        let next = 0;
        for (let k = 0; k < pdus.length; k++) {
          const p = pdus[k]!;
          assert.ok(p.payload.length <= ECP_MAX_ULPDU, `PDU ${k}: ${p.payload.length} octets`);
          const body = p.refs.reduce((a, r) => a + sizes[r]!, 0);
          assert.equal(p.payload.length, MANAGER_ID_TLV_LEN + body + reserve);
          assert.deepEqual(
            p.refs,
            sizes.slice(next, next + p.refs.length).map((_, i) => next + i),
            'in queue order',
          );
          next += p.refs.length;
          if (maxTlvs) assert.ok(p.refs.length <= maxTlvs);
          // greedy: the following TLV did not fit (or the TLV cap was reached)
          if (next < sizes.length && p.refs.length !== maxTlvs)
            assert.ok(p.payload.length + sizes[next]! > ECP_MAX_ULPDU);
        }
        assert.equal(next, sizes.length, 'every TLV was packed once');
      },
    ),
    { numRuns: 300 },
  );
});

test('station: a VSI whose org TLVs cannot fit one ECPDU is refused as invalid, one that just fits is sent', () => {
  const st = new VdpStation(
    { profile: 'splitnve', wire: DEFAULT_WIRE_OPTIONS, maxAttempts: 3 },
    { r: 3, rte: 8, rwd: 14, rka: 16 },
    { profile: 'splitnve', groupId: true },
  );
  const id = new Uint8Array(16).fill(7);
  const org = (data: number): OrgTlv => ({
    kind: 'org',
    oui: 0x02534e,
    subtype: 0x77,
    data: new Uint8Array(data),
  });
  const base: VsiSpec = {
    managerId: MGR,
    typeId: 1,
    typeVersion: 1,
    idFormat: VSIID_UUID,
    id,
    filterFormat: 4,
    entries: [{ groupId: 10000, mac: '52:54:00:00:00:01', ps: 0, pcp: 0, vid: 0 }],
  };
  // room for the VSI TLV and its org TLVs: 1494 - Manager ID - auth - End = 1426;
  // the VSI TLV is 2 + 25 + 12 = 39, org TLVs are 6 + data octets
  const room = ECP_MAX_ULPDU - MANAGER_ID_TLV_LEN - AUTH_TLV_LEN - END;
  const fits = room - 39 - 2 * 513 - 6;
  const out: StationEvent[] = [];
  st.request(
    {
      mode: 3,
      spec: { ...base, id: id.map(() => 8), orgTlvs: [org(507), org(507), org(fits + 1)] },
      requestId: 'big',
    },
    0,
    out,
  );
  const big = out.find((e) => e.type === 'request-result');
  assert.ok(big && !big.ok && big.error === 'invalid', JSON.stringify(big));
  assert.match(big.message, /1427 octets, more than the 1426/);
  assert.equal(st.pull(0), undefined, 'nothing queued for it');
  st.request({ mode: 3, spec: { ...base, orgTlvs: [org(507), org(507), org(fits)] } }, 0, out);
  assert.equal(out.length, 1, 'accepted for sending');
  const signed = st.pull(0, { sign })!;
  assert.equal(signed.payload.length, ECP_MAX_ULPDU, 'exactly full with the authentication TLV');
});
