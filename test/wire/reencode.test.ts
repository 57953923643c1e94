/**
 * Re-encoding the lldpad vector frames with our encoders, from our decode and, independently of
 * the decoder, from the values in the .txt. Two known differences, asserted explicitly:
 *  - VDP: lldpad appends no End TLV (LLDPAD-NOTES Q2); we always do. Ours = theirs + `00 00`,
 *    padded to 60 octets (their VDP frames are all longer than 60, so no padding there).
 *  - ECP ACK: lldpad sends 18 octets unpadded on veth; encodeEthernet pads to 60 with zeros.
 * LLDP frames are identical: lldpad sends End and pads to 60 with zeros, as we do.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { concatBytes, parseUuid, toHex } from '../../src/wire/bytes.js';
import { encodeEcp } from '../../src/wire/ecp.js';
import { encodeEthernet, MIN_FRAME } from '../../src/wire/ethernet.js';
import type { EvbTlv } from '../../src/wire/evb-tlv.js';
import type { FilterEntry } from '../../src/wire/filter.js';
import { decodeFrame } from '../../src/wire/frame.js';
import { encodeLldp } from '../../src/wire/lldp.js';
import { readCapture } from '../../src/wire/pcap.js';
import {
  encodeVdp,
  managerIdFromString,
  type VdpTlv,
  type VsiTlvType,
} from '../../src/wire/vdp.js';
import { loadVectors, type VectorFrame } from '../harness/wire-vectors.js';

const END_TLV = Uint8Array.of(0, 0);

function pad60(b: Uint8Array): Uint8Array {
  if (b.length >= MIN_FRAME) return b;
  const out = new Uint8Array(MIN_FRAME);
  out.set(b);
  return out;
}

/** What our encoder must produce for a frame lldpad sent as `theirs`. */
function expectedOurs(f: VectorFrame, theirs: Uint8Array): Uint8Array {
  if (f.ethertype === 0x8940 && f.ecp?.op === 0) return pad60(concatBytes([theirs, END_TLV]));
  return pad60(theirs);
}

/** Builds the frame from the .txt values alone (no decoder involved). */
function encodeFromText(f: VectorFrame): Uint8Array {
  const eth = { destination: f.dst, source: f.src, ethertype: f.ethertype };
  if (f.ethertype === 0x88cc) {
    const s = f.lldpSummary!;
    const e = f.evb!;
    const evb: EvbTlv = {
      bgid: e.bridgeStatus!.bgid === 1,
      rrcap: e.bridgeStatus!.rrcap === 1,
      rrctr: e.bridgeStatus!.rrctr === 1,
      sgid: e.stationStatus!.sgid === 1,
      rrreq: e.stationStatus!.rrreq === 1,
      rrstat: e.stationStatus!.rrstat,
      r: e.rRte!.r,
      rte: e.rRte!.rte,
      evbMode: e.modeRwd!.evbMode,
      rolRwd: e.modeRwd!.rol === 1,
      rwd: e.modeRwd!.rwd,
      rolRka: e.rolRka!.rol === 1,
      rka: e.rolRka!.rka,
    };
    const lldp = encodeLldp({
      chassisId: { subtype: s.chassisSubtype, id: s.chassisId },
      portId: { subtype: s.portSubtype, id: s.portId },
      ttl: s.ttl,
      evb,
    });
    return encodeEthernet(eth, lldp);
  }
  const e = f.ecp!;
  const header = { version: e.version, op: e.op, subtype: e.subtype, sequence: e.seqno };
  if (e.op === 1) return encodeEthernet(eth, encodeEcp(header));
  const tlvs: VdpTlv[] = f.vdp.map((t): VdpTlv => {
    if (t.type === 5)
      return { kind: 'manager-id', managerId: managerIdFromString(t.managerId!.text) };
    const id = parseUuid(t.vsiId!);
    assert.ok(id && t.vsiIdFormat === 5, `${f.file} #${f.index}: UUID VSIID`);
    return {
      kind: 'vsi',
      type: t.type as VsiTlvType,
      status: t.status!.raw,
      typeId: t.vsiTypeId!,
      typeVersion: t.typeVersion!,
      idFormat: t.vsiIdFormat,
      id,
      filterFormat: t.filterInfoFormat!,
      entries: t.entries.map((x): FilterEntry => ({
        ...(x.groupId !== undefined ? { groupId: x.groupId } : {}),
        ...(x.mac !== undefined ? { mac: x.mac } : {}),
        ps: x.ps,
        pcp: x.pcp,
        vid: x.vid,
      })),
    };
  });
  return encodeEthernet(eth, encodeEcp(header, encodeVdp(tlvs)));
}

const vectors = loadVectors();

test('every vector frame re-encoded from our decode equals lldpad’s (+ End TLV, + padding)', () => {
  const counts = { lldp: 0, vdp: 0, ack: 0 };
  for (const v of vectors) {
    const cap = readCapture(v.pcap);
    assert.ok(cap.ok);
    v.frames.forEach((f, i) => {
      const theirs = cap.value[i]!.data;
      const where = `${v.name} #${f.index}`;
      const d = decodeFrame(theirs);
      assert.equal(d.error, undefined, where);
      const eth = d.ethernet!;
      let ours: Uint8Array;
      if (d.lldp) {
        const l = d.lldp;
        ours = encodeEthernet(
          eth,
          encodeLldp({ chassisId: l.chassisId, portId: l.portId, ttl: l.ttl, evb: l.evb! }),
        );
        // Identical, End TLV and zero padding included.
        assert.equal(toHex(ours), toHex(theirs), where);
        counts.lldp++;
      } else if (d.vdp) {
        const vdp = encodeVdp(d.vdp.items.map((it) => it.tlv));
        // Our VDP payload is theirs plus an End TLV.
        assert.equal(toHex(vdp), toHex(theirs.subarray(18)) + '0000', where);
        ours = encodeEthernet(eth, encodeEcp(d.ecp!, vdp));
        assert.equal(ours.length, theirs.length + 2, `${where}: one End TLV longer`);
        assert.equal(toHex(ours.subarray(0, theirs.length)), toHex(theirs), where);
        assert.equal(toHex(ours.subarray(theirs.length)), '0000', `${where}: End TLV`);
        counts.vdp++;
      } else {
        assert.equal(d.ecp?.op, 1, where);
        ours = encodeEthernet(eth, encodeEcp(d.ecp!));
        assert.equal(theirs.length, 18, `${where}: lldpad ACKs are unpadded`);
        assert.equal(ours.length, MIN_FRAME, `${where}: ours is padded`);
        assert.equal(toHex(ours.subarray(0, 18)), toHex(theirs), where);
        assert.ok(
          ours.subarray(18).every((b) => b === 0),
          `${where}: zero padding`,
        );
        counts.ack++;
      }
      assert.equal(toHex(ours), toHex(expectedOurs(f, theirs)), where);
    });
  }
  assert.deepEqual(counts, { lldp: 19, vdp: 21, ack: 21 });
});

test('every vector frame encoded from the .txt values alone equals lldpad’s (+ End, + padding)', () => {
  let n = 0;
  for (const v of vectors) {
    const cap = readCapture(v.pcap);
    assert.ok(cap.ok);
    v.frames.forEach((f, i) => {
      const theirs = cap.value[i]!.data;
      assert.equal(
        toHex(encodeFromText(f)),
        toHex(expectedOurs(f, theirs)),
        `${v.name} #${f.index}`,
      );
      n++;
    });
  }
  assert.equal(n, 61);
});
