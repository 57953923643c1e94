/**
 * Every frame of every lldpad capture in test/vectors, decoded in-process (decodeFrame +
 * frameJson) and by the built CLI (`splitnve decode FILE.pcap…`), checked field by field
 * against the independent decode written in the matching .txt.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromHex, readU16, toHex } from '../../src/wire/bytes.js';
import { decodeFrame } from '../../src/wire/frame.js';
import { frameJson } from '../../src/wire/json.js';
import { readCapture, type CaptureRecord } from '../../src/wire/pcap.js';
import {
  jsonLines,
  loadVectors,
  runCli,
  type Vector,
  type VectorFrame,
} from '../harness/wire-vectors.js';

/**
 * Frames per vector file. A file added to test/vectors must be added here: the table guards
 * against a pcap and its .txt both losing frames.
 */
const EXPECTED_FRAMES: Record<string, number> = {
  '01-lldp-evb22': 11,
  '02-assoc': 8,
  '03-keepalive': 10,
  '04-preassoc': 4,
  '05-deassoc': 4,
  '06-bridge-ka-timeout-after-deassoc': 12,
  '07-other-formats': 12,
};

type J = Record<string, unknown>;

function obj(v: unknown, what: string): J {
  assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), `${what}: not an object`);
  return v as J;
}

function arr(v: unknown, what: string): unknown[] {
  assert.ok(Array.isArray(v), `${what}: not an array`);
  return v;
}

function need<T>(v: T | undefined, what: string): T {
  assert.ok(v !== undefined, `${what}: missing in the .txt decode`);
  return v;
}

/** Counts the field comparisons so the test can show (and assert) how much it checked. */
class Checker {
  count = 0;
  constructor(private readonly ctx: string) {}
  eq(actual: unknown, expected: unknown, what: string): void {
    this.count++;
    assert.deepEqual(actual, expected, `${this.ctx}: ${what}`);
  }
}

const VDP_NAMES: Record<string, string> = {
  ManagerID: 'managerId',
  PreAssoc: 'pre-associate',
  'PreAssoc-RR': 'pre-associate-rr',
  Assoc: 'associate',
  DeAssoc: 'de-associate',
};

const asciiHex = (s: string, octets: number): string =>
  toHex(new TextEncoder().encode(s)).padEnd(2 * octets, '0');

/** Checks one frame's JSON (frameJson or a CLI line) against the .txt decode; returns #checks. */
function checkFrame(j: J, f: VectorFrame): number {
  const c = new Checker(`${f.file} #${f.index}`);
  const bytes = fromHex(f.hex);
  assert.ok(bytes, `${f.file} #${f.index}: hex`);
  c.eq(bytes.length, f.len, 'summary len = hex length');
  c.eq(j.length, f.len, 'length');
  c.eq(j.error, undefined, 'no decode error');
  const eth = obj(j.ethernet, 'ethernet');
  c.eq(eth.destination, f.dst, 'ethernet.destination');
  c.eq(eth.source, f.src, 'ethernet.source');
  c.eq(eth.ethertype, f.ethertype, 'ethernet.ethertype');
  c.eq(eth.vlan, undefined, 'ethernet.vlan');

  if (f.ethertype === 0x8940) {
    const e = need(f.ecp, 'ECP header line');
    const es = need(f.ecpSummary, 'ECP summary');
    const ecp = obj(j.ecp, 'ecp');
    c.eq(readU16(bytes, 14), e.header, 'ECP header word in the frame');
    c.eq((e.version << 12) | (e.op << 10) | e.subtype, e.header, '.txt header = fields');
    c.eq(ecp.version, e.version, 'ecp.version');
    c.eq(ecp.op, e.op, 'ecp.op');
    c.eq(ecp.opName, { REQ: 'request', ACK: 'ack' }[e.opName], 'ecp.opName');
    c.eq(e.opName, es.op, 'summary op');
    c.eq(ecp.subtype, e.subtype, 'ecp.subtype');
    c.eq(e.subtypeName, e.subtype === 1 ? 'VDP' : '?', 'subtype name');
    c.eq(ecp.sequence, e.seqno, 'ecp.sequence');
    c.eq(es.seq, e.seqno, 'summary seq');
    c.eq(ecp.payloadLength, f.len - 18, 'ecp.payloadLength');
    c.eq(j.lldp, undefined, 'no lldp');
    if (e.opName === 'ACK') {
      c.eq(ecp.payloadLength, need(f.ackPayloadBytes, 'ACK payload line'), 'ACK payload');
      c.eq(j.vdp, undefined, 'ACK has no vdp');
      c.eq(f.vdp.length, 0, '.txt: no VDP TLVs in an ACK');
    } else {
      c.eq(f.ackPayloadBytes, undefined, '.txt: no ACK line in a request');
      const vdp = arr(j.vdp, 'vdp');
      assert.ok(f.vdp.length > 0, `${f.file} #${f.index}: request without VDP TLV lines`);
      c.eq(vdp.length, f.vdp.length, 'number of VDP TLVs');
      c.eq(need(f.vdpEndsExactly, 'how the VDPDU ends'), true, 'ends exactly');
      c.eq(j.vdpEnd, false, 'vdpEnd (lldpad sends no End TLV)');
      const last = f.vdp[f.vdp.length - 1]!;
      c.eq(last.offset + 2 + last.length, f.len - 18, 'last TLV ends the frame');
      checkVdp(c, f, vdp, bytes);
    }
  } else if (f.ethertype === 0x88cc) {
    checkLldp(c, f, j, bytes);
  } else {
    assert.fail(`${f.file} #${f.index}: unexpected ethertype 0x${f.ethertype.toString(16)}`);
  }
  return c.count;
}

function checkVdp(c: Checker, f: VectorFrame, vdp: unknown[], bytes: Uint8Array): void {
  let vsiSeen: J | undefined;
  f.vdp.forEach((t, i) => {
    const item = obj(vdp[i], `vdp[${i}]`);
    const w = `vdp[${i}]`;
    c.eq(item.type, t.type, `${w}.type`);
    c.eq(item.length, t.length, `${w}.length`);
    c.eq(item.offset, t.offset, `${w}.offset`);
    c.eq(toHex(bytes, 18 + t.offset, 18 + t.offset + 2 + t.length), t.hex, `${w} octets`);
    c.eq(readU16(bytes, 18 + t.offset), (t.type << 9) | t.length, `${w} header octets`);
    c.eq(item.name, need(VDP_NAMES[t.typeName], `name of ${t.typeName}`), `${w}.name`);
    if (t.type === 5) {
      const m = need(t.managerId, 'manager id line');
      c.eq(m.paddedTo, t.length, 'manager id padded to the TLV length');
      c.eq(item.managerId, m.text, `${w}.managerId`);
      c.eq(item.hex, asciiHex(m.text, m.paddedTo), `${w}.hex`);
      return;
    }
    assert.ok(t.type >= 1 && t.type <= 4, `${f.file} #${f.index}: VDP TLV type ${t.type}`);
    vsiSeen = item;
    const st = need(t.status, 'status line');
    const js = obj(item.status, `${w}.status`);
    c.eq(bytes[18 + t.offset + 2], st.raw, 'status octet in the frame');
    c.eq(js.raw, st.raw, `${w}.status.raw`);
    c.eq(js.response, st.response, `${w}.status.response`);
    c.eq(js.reserved, st.reserved, `${w}.status.reserved`);
    if (st.response) {
      c.eq(st.flag, 1, '.txt response flag');
      c.eq(js.keep, st.keep === 1, `${w}.status.keep`);
      c.eq(js.hard, st.hard === 1, `${w}.status.hard`);
      c.eq(js.reason, st.error, `${w}.status.reason`);
      c.eq(js.reasonName, st.errorName, `${w}.status.reasonName`);
    } else {
      c.eq(js.m, st.m === 1, `${w}.status.m`);
      c.eq(js.s, st.s === 1, `${w}.status.s`);
      c.eq(st.raw & 0x0f, st.lowNibble, '.txt low nibble');
    }
    c.eq(item.vsiTypeId, need(t.vsiTypeId, 'type id line'), `${w}.vsiTypeId`);
    c.eq(t.vsiTypeIdHex, t.vsiTypeId, '.txt type id decimal = hex');
    c.eq(item.typeVersion, t.typeVersion, `${w}.typeVersion`);
    c.eq(item.vsiIdFormat, need(t.vsiIdFormat, 'VSIID line'), `${w}.vsiIdFormat`);
    c.eq(item.vsiIdFormatName, t.vsiIdFormatName, `${w}.vsiIdFormatName`);
    c.eq(item.vsiId, t.vsiId, `${w}.vsiId`);
    c.eq(item.filterInfoFormat, need(t.filterInfoFormat, 'filter line'), `${w}.filterInfoFormat`);
    c.eq(item.filterInfoFormatName, t.filterInfoFormatName, `${w}.filterInfoFormatName`);
    c.eq(item.numberOfEntries, t.numberOfEntries, `${w}.numberOfEntries`);
    c.eq(t.entries.length, t.numberOfEntries, '.txt entry lines = number of entries');
    const entries = arr(item.entries, `${w}.entries`);
    c.eq(entries.length, t.entries.length, `${w}.entries.length`);
    let at = 18 + t.offset + 2 + 25;
    t.entries.forEach((e, k) => {
      const je = obj(entries[k], `${w}.entries[${k}]`);
      const we = `${w}.entries[${k}]`;
      c.eq(e.index, k, '.txt entry index');
      c.eq(je.groupId, e.groupId, `${we}.groupId`);
      c.eq(je.mac, e.mac, `${we}.mac`);
      c.eq(je.ps, e.ps, `${we}.ps`);
      c.eq(je.pcp, e.pcp, `${we}.pcp`);
      c.eq(je.vid, e.vid, `${we}.vid`);
      c.eq((e.ps << 15) | (e.pcp << 12) | e.vid, e.raw, '.txt raw field = PS|PCP|VID');
      c.eq(toHex(bytes, at, at + e.hex.length / 2), e.hex, `${we} octets`);
      at += e.hex.length / 2;
    });
    c.eq(at, 18 + t.offset + 2 + t.length, `${w}: entries fill the TLV`);
  });
  // The summary line repeats the main fields; it must agree with the decode lines.
  const s = need(f.vdpSummary, 'VDP summary');
  const vsi = need(vsiSeen, 'a VSI TLV');
  const vsiTlv = f.vdp.find((t) => t.type >= 1 && t.type <= 4)!;
  c.eq(s.managerId, f.vdp[0]!.managerId?.text, 'summary MgrID');
  c.eq(s.tlvName, vsiTlv.typeName, 'summary TLV name');
  c.eq(s.status, obj(vsi.status, 'status').raw, 'summary st');
  c.eq(s.kind === 'rsp', obj(vsi.status, 'status').response, 'summary req/rsp');
  const hints = [
    ...(s.status & 0x40 ? [] : s.status & 0x10 ? ['M'] : []),
    ...(s.status & 0x40 ? [] : s.status & 0x20 ? ['S'] : []),
  ];
  c.eq(s.hints, hints, 'summary M/S hints');
  c.eq(s.typeId, vsi.vsiTypeId, 'summary type');
  c.eq(s.typeVersion, vsi.typeVersion, 'summary version');
  c.eq(s.vsiId, vsi.vsiId, 'summary id');
  c.eq(s.filterInfoFormat, vsi.filterInfoFormat, 'summary fif');
}

function checkLldp(c: Checker, f: VectorFrame, j: J, bytes: Uint8Array): void {
  const s = need(f.lldpSummary, 'LLDP summary');
  const l = obj(j.lldp, 'lldp');
  c.eq(j.ecp, undefined, 'no ecp');
  c.eq(obj(l.chassisId, 'chassisId').subtype, s.chassisSubtype, 'lldp.chassisId.subtype');
  c.eq(obj(l.chassisId, 'chassisId').id, s.chassisId, 'lldp.chassisId.id');
  c.eq(obj(l.portId, 'portId').subtype, s.portSubtype, 'lldp.portId.subtype');
  c.eq(obj(l.portId, 'portId').id, s.portId, 'lldp.portId.id');
  c.eq(l.ttl, s.ttl, 'lldp.ttl');
  c.eq(j.warnings, undefined, 'no warnings');
  const tlvs = arr(l.tlvs, 'lldp.tlvs').map((t, i) => obj(t, `lldp.tlvs[${i}]`));
  const names = ['chassisId', 'portId', 'ttl', ...(f.evb ? ['evb'] : []), 'end'];
  c.eq(
    tlvs.map((t) => t.name),
    names,
    'LLDP TLV list',
  );
  if (f.evb) {
    const e = f.evb;
    const evb = obj(j.evb, 'evb');
    const tlv = tlvs.find((t) => t.name === 'evb')!;
    c.eq(tlv.oui, e.oui, 'evb TLV oui');
    c.eq(tlv.subtype, e.subtype, 'evb TLV subtype');
    const header = ((127 << 9) | e.tlvLength).toString(16).padStart(4, '0');
    assert.ok(
      toHex(bytes).includes(header + e.hex),
      `${f.file} #${f.index}: EVB TLV octets in the frame`,
    );
    c.eq(
      e.hex.slice(0, 8),
      e.oui.replaceAll('-', '') + e.subtype.toString(16).padStart(2, '0'),
      '.txt',
    );
    const body = fromHex(e.hex.slice(8))!;
    c.eq(body.length, 5, '.txt EVB body length');
    const bs = need(e.bridgeStatus, 'EVB bridge status line');
    const ss = need(e.stationStatus, 'EVB station status line');
    const rr = need(e.rRte, 'R/RTE line');
    const md = need(e.modeRwd, 'mode/ROL/RWD line');
    const rk = need(e.rolRka, 'ROL/RKA line');
    c.eq([bs.raw, ss.raw, rr.raw, md.raw, rk.raw], [...body], '.txt octets = EVB body');
    c.eq(evb.bgid, bs.bgid === 1, 'evb.bgid');
    c.eq(evb.rrcap, bs.rrcap === 1, 'evb.rrcap');
    c.eq(evb.rrctr, bs.rrctr === 1, 'evb.rrctr');
    c.eq(bs.reserved, bs.raw & 0xf8, '.txt bridge reserved bits');
    c.eq(evb.sgid, ss.sgid === 1, 'evb.sgid');
    c.eq(evb.rrreq, ss.rrreq === 1, 'evb.rrreq');
    c.eq(evb.rrstat, ss.rrstat, 'evb.rrstat');
    c.eq(ss.reserved, ss.raw & 0xf0, '.txt station reserved bits');
    c.eq(evb.r, rr.r, 'evb.r');
    c.eq(evb.rte, rr.rte, 'evb.rte');
    c.eq(evb.evbMode, md.evbMode, 'evb.evbMode');
    c.eq(md.modeName, { 1: 'Bridge', 2: 'Station' }[md.evbMode], '.txt mode name');
    c.eq(evb.rolRwd, md.rol === 1, 'evb.rolRwd');
    c.eq(evb.rwd, md.rwd, 'evb.rwd');
    c.eq(evb.rolRka, rk.rol === 1, 'evb.rolRka');
    c.eq(evb.rka, rk.rka, 'evb.rka');
    c.eq(rk.reserved, rk.raw & 0xc0, '.txt ROL/RKA reserved bits');
    // The same values in the lldp.tlvs entry and in the summary line.
    for (const k of Object.keys(evb)) c.eq(tlv[k], evb[k], `lldp.tlvs evb.${k}`);
    const se = need(s.evb, 'EVB22 summary');
    c.eq(se.modeName, md.modeName, 'summary mode');
    c.eq([se.bs, se.ss, se.r, se.rte], [bs.raw, ss.raw, rr.r, rr.rte], 'summary bs/ss/R/RTE');
    c.eq([se.rolRwd, se.rwd, se.rolRka, se.rka], [md.rol, md.rwd, rk.rol, rk.rka], 'summary ROL');
  }
  const end = need(f.lldpEnd, 'LLDP End line');
  c.eq(toHex(bytes, 14 + end.offset, 14 + end.offset + 2), '0000', 'End TLV octets');
  c.eq(f.len - 14 - end.offset - 2, end.padBytes, 'pad bytes after End');
  c.eq(
    bytes.subarray(14 + end.offset).every((b) => b === 0),
    true,
    'padding is zero',
  );
}

function captureOf(v: Vector): CaptureRecord[] {
  const cap = readCapture(v.pcap);
  assert.ok(cap.ok, `${v.name}.pcap: ${cap.ok ? '' : cap.error.message}`);
  return cap.value;
}

const vectors = loadVectors();

test('the vector set: every pcap has its .txt, frame counts agree', () => {
  assert.deepEqual(
    vectors.map((v) => v.name),
    Object.keys(EXPECTED_FRAMES).sort(),
    'test/vectors and EXPECTED_FRAMES list the same files',
  );
  for (const v of vectors) {
    const records = captureOf(v);
    const n = need(EXPECTED_FRAMES[v.name], `${v.name} in EXPECTED_FRAMES`);
    assert.equal(records.length, n, `${v.name}.pcap frames`);
    assert.equal(v.summaryLineCount, n, `${v.name}.txt summary lines`);
    assert.equal(v.frames.length, n, `${v.name}.txt parsed frames`);
    assert.deepEqual(
      v.frames.map((f) => f.index),
      Array.from({ length: n }, (_, i) => i + 1),
      `${v.name}.txt frame numbers`,
    );
    v.frames.forEach((f, i) => {
      assert.equal(f.hex, toHex(records[i]!.data), `${v.name} #${f.index}: .txt hex = pcap bytes`);
      assert.equal(records[i]!.originalLength, f.len, `${v.name} #${f.index}: original length`);
      assert.equal(records[i]!.linktype, 1, `${v.name} #${f.index}: linktype`);
      assert.ok(f.decodeLines >= 2, `${v.name} #${f.index}: has decode lines`);
    });
  }
});

test('decodeFrame + frameJson agree with the .txt decode of every vector frame', (t) => {
  let frames = 0;
  let checks = 0;
  const kinds = { lldp: 0, vdp: 0, ack: 0 };
  for (const v of vectors) {
    const records = captureOf(v);
    v.frames.forEach((f, i) => {
      const j = frameJson(decodeFrame(records[i]!.data));
      const n = checkFrame(j, f);
      // Each frame kind has a floor of checks; a frame whose decode lines were lost fails.
      const floor = f.ethertype === 0x88cc ? 40 : f.ecp?.op === 1 ? 16 : 60;
      assert.ok(n >= floor, `${v.name} #${f.index}: only ${n} checks`);
      if (f.ethertype === 0x88cc) kinds.lldp++;
      else if (f.ecp?.op === 1) kinds.ack++;
      else kinds.vdp++;
      checks += n;
      frames++;
    });
  }
  const total = Object.values(EXPECTED_FRAMES).reduce((a, b) => a + b, 0);
  assert.equal(frames, total, 'every vector frame was checked');
  assert.deepEqual(kinds, { lldp: 19, vdp: 21, ack: 21 });
  assert.ok(checks > 3000, `${checks} field checks`);
  t.diagnostic(`${frames} frames, ${checks} field checks`);
});

test('splitnve decode FILE.pcap… (the built CLI) prints the same, checked against the .txt', () => {
  const r = runCli(['decode', ...vectors.map((v) => v.pcapPath)]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const lines = jsonLines(r.stdout);
  let k = 0;
  let frames = 0;
  for (const v of vectors) {
    const records = captureOf(v);
    const t0 = records[0]!.time!;
    v.frames.forEach((f, i) => {
      const line = lines[k++];
      assert.ok(line, `${v.name} #${f.index}: no CLI line`);
      const { file, frame, time, ...rest } = line;
      assert.equal(file, v.pcapPath);
      assert.equal(frame, f.index);
      assert.equal(time, records[i]!.time);
      // Times relative to the file's first frame match the .txt's (µs resolution).
      const dt = (time as number) - t0 - (f.t - v.frames[0]!.t);
      assert.ok(Math.abs(dt) < 2e-6, `${v.name} #${f.index}: time off by ${dt}`);
      assert.deepEqual(rest, JSON.parse(JSON.stringify(frameJson(decodeFrame(records[i]!.data)))));
      checkFrame(rest, f);
      frames++;
    });
  }
  assert.equal(k, lines.length, 'no extra CLI lines');
  assert.equal(
    frames,
    Object.values(EXPECTED_FRAMES).reduce((a, b) => a + b, 0),
  );
});
