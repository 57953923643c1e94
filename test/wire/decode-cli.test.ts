/**
 * `splitnve decode` as a user runs it (the built CLI, spawned): --hex input, malformed frames,
 * unreadable inputs, pcapng input written here by hand (SHB + IDB + EPB/SPB blocks).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { toHex } from '../../src/wire/bytes.js';
import { decodeFrame } from '../../src/wire/frame.js';
import { frameJson } from '../../src/wire/json.js';
import { readCapture } from '../../src/wire/pcap.js';
import { jsonLines, loadVectors, REPO_ROOT, runCli, writePcapng } from '../harness/wire-vectors.js';

const ASSOC =
  '0180c200000002000000aa018940100100010a106e76656d67723100000000000000000006250000002a0105a1b2c3d400014000800000000000000a040001000027100200000000010000';

test('--hex: one JSON object per frame, hex with separators accepted', () => {
  const spaced = ASSOC.match(/../g)!.join(' ');
  const colons = ASSOC.match(/../g)!.join(':');
  const r = runCli(['decode', '--hex', ASSOC, spaced, colons]);
  assert.equal(r.status, 0, r.stderr);
  const lines = jsonLines(r.stdout);
  assert.equal(lines.length, 3);
  const expected = JSON.parse(JSON.stringify(frameJson(decodeFrame(Buffer.from(ASSOC, 'hex')))));
  lines.forEach((l, i) => {
    const { input, ...rest } = l;
    assert.equal(input, i + 1);
    assert.deepEqual(rest, expected);
  });
  const vdp = lines[0]!.vdp as Record<string, unknown>[];
  assert.equal(vdp[0]!.managerId, 'nvemgr1');
  assert.equal(vdp[1]!.vsiId, 'a1b2c3d4-0001-4000-8000-00000000000a');
  assert.deepEqual(vdp[1]!.entries, [
    { groupId: 10000, mac: '02:00:00:00:00:01', ps: 0, pcp: 0, vid: 0 },
  ]);
});

test('--hex: a malformed frame prints an error object with field and offset', () => {
  // VSI TLV length 37 -> 38 (runs past the PDU), and a truncated Ethernet header.
  const longer = ASSOC.slice(0, 72) + '0626' + ASSOC.slice(76);
  const r = runCli(['decode', '--hex', longer, '0180c2']);
  assert.equal(r.status, 0, 'decodable input, malformed frames: exit 0');
  const [a, b] = jsonLines(r.stdout);
  const ea = a!.error as Record<string, unknown>;
  assert.equal(ea.field, 'vdp.tlv.length');
  assert.equal(ea.offset, 36);
  assert.match(String(ea.message), /runs past/);
  assert.equal((a!.ecp as Record<string, unknown>).sequence, 1, 'fields before the error kept');
  assert.deepEqual(
    { ...(b!.error as object), message: undefined },
    { field: 'ethernet', offset: 0, message: undefined },
  );
  assert.equal(b!.length, 3);
  // Not hex at all: an error for that input and exit status 1.
  const bad = runCli(['decode', '--hex', 'xyz1', ASSOC]);
  assert.equal(bad.status, 1);
  const [x, y] = jsonLines(bad.stdout);
  assert.deepEqual(x, { input: 1, error: { field: 'hex', offset: 0, message: 'not hex' } });
  assert.equal(y!.input, 2);
  assert.equal(y!.error, undefined, 'the next input is still decoded');
});

test('unreadable inputs exit 1 with a clear message; the other files are still decoded', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'splitnve-wiretests-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const missing = join(dir, 'no-such.pcap');
  const notCapture = join(dir, 'text.pcap');
  writeFileSync(notCapture, 'this is not a capture file\n');
  const good = loadVectors().find((v) => v.name === '02-assoc')!;
  const r = runCli(['decode', missing, notCapture, good.pcapPath]);
  assert.equal(r.status, 1);
  const lines = jsonLines(r.stdout);
  assert.equal(lines[0]!.file, missing);
  const e0 = lines[0]!.error as Record<string, unknown>;
  assert.equal(e0.field, 'file');
  assert.match(String(e0.message), /ENOENT: no such file or directory/);
  assert.ok(String(e0.message).includes(missing), 'the message names the file');
  assert.equal(lines[1]!.file, notCapture);
  assert.equal((lines[1]!.error as Record<string, unknown>).field, 'pcap.magic');
  assert.equal(lines.length, 2 + good.frames.length);
  assert.ok(lines.slice(2).every((l) => l.file === good.pcapPath && l.error === undefined));
  // No input at all: usage error on stderr.
  const none = runCli(['decode']);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /give capture files or --hex/);
  assert.equal(none.stdout, '');
});

test('pcapng input (both byte orders, µs/ns, EPB and SPB) decodes the same as pcap', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'splitnve-wiretests-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const v = loadVectors().find((x) => x.name === '07-other-formats')!;
  const cap = readCapture(v.pcap);
  assert.ok(cap.ok);
  const records = cap.value.map((r) => ({ time: r.time!, data: r.data }));
  const variants = [
    { name: 'le-us.pcapng', o: { littleEndian: true } },
    { name: 'le-us-opt.pcapng', o: { littleEndian: true, tsresol: 6 } },
    { name: 'be-ns.pcapng', o: { littleEndian: false, tsresol: 9 } },
    { name: 'le-spb.pcapng', o: { littleEndian: true, simple: true } },
  ];
  for (const x of variants) writeFileSync(join(dir, x.name), writePcapng(records, x.o));
  // In-process reader first: same bytes, same times (µs) as the pcap.
  for (const x of variants) {
    const r = readCapture(writePcapng(records, x.o));
    assert.ok(r.ok, x.name);
    assert.equal(r.value.length, records.length, x.name);
    r.value.forEach((rec, i) => {
      assert.equal(toHex(rec.data), toHex(records[i]!.data), `${x.name} #${i + 1}`);
      assert.equal(rec.linktype, 1);
      assert.equal(rec.originalLength, records[i]!.data.length);
      if (x.o.simple) assert.equal(rec.time, undefined);
      else assert.ok(Math.abs(rec.time! - records[i]!.time) < 1e-6, `${x.name} time`);
    });
  }
  // Written by Wireshark's editcap (`editcap -F pcapng 07-other-formats.pcap`): SHB with an
  // shb_userappl option, an IDB, EPBs; an independent pcapng writer.
  const editcap = join(REPO_ROOT, 'test', 'wire', 'fixtures', '07-other-formats.editcap.pcapng');
  const r = runCli(['decode', v.pcapPath, ...variants.map((x) => join(dir, x.name)), editcap]);
  assert.equal(r.status, 0, r.stderr);
  const lines = jsonLines(r.stdout);
  const n = records.length;
  assert.equal(lines.length, n * (2 + variants.length));
  const strip = (l: Record<string, unknown>): Record<string, unknown> => {
    const { file: _f, time: _t, ...rest } = l;
    return rest;
  };
  variants.forEach((x, k) => {
    for (let i = 0; i < n; i++) {
      const ng = lines[n * (k + 1) + i]!;
      const pc = lines[i]!;
      assert.equal(ng.file, join(dir, x.name));
      assert.deepEqual(strip(ng), strip(pc), `${x.name} frame ${i + 1}`);
      if (x.o.simple) assert.equal(ng.time, undefined);
      else assert.ok(Math.abs((ng.time as number) - (pc.time as number)) < 1e-6);
    }
  });
  for (let i = 0; i < n; i++) {
    const ed = lines[n * (1 + variants.length) + i]!;
    assert.equal(ed.file, editcap);
    assert.deepEqual(ed, { ...lines[i]!, file: editcap }, `editcap frame ${i + 1}`);
  }
  // A non-Ethernet interface: each frame reports the linktype instead of a decode.
  const other = join(dir, 'linktype.pcapng');
  writeFileSync(other, writePcapng(records.slice(0, 1), { linktype: 113 }));
  const o = runCli(['decode', other]);
  assert.equal(o.status, 0);
  const [l] = jsonLines(o.stdout);
  assert.deepEqual(l!.error, { field: 'linktype', offset: 0, message: 'linktype 113' });
});

test('--ipv4-filter-format and --splitnve-oui change how frames are read', () => {
  // Associate with filter format 0xE0, one GroupID/MAC/IPv4/VID entry, then an org TLV under
  // 00-11-22 with sub-type 1 and 46 octets (an authentication TLV under that identifier).
  const head = ASSOC.slice(0, 72);
  const vsi =
    '0629' +
    '00' +
    '00002a' +
    '01' +
    '05' +
    'a1b2c3d400014000800000000000000a' +
    'e0' +
    '0001' +
    '00002710' +
    '020000000001' +
    'c0000201' +
    '0064';
  const auth = 'fe2e' + '001122' + '01' + '0007' + '0000000000000009' + 'ab'.repeat(32);
  const frame = head + vsi + auth;
  const plain = runCli(['decode', '--hex', frame]);
  const custom = runCli([
    'decode',
    '--ipv4-filter-format',
    '0xe0',
    '--splitnve-oui',
    '0x001122',
    '--hex',
    frame,
  ]);
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(custom.status, 0, custom.stderr);
  const p = jsonLines(plain.stdout)[0]!.vdp as Record<string, unknown>[];
  const c = jsonLines(custom.stdout)[0]!.vdp as Record<string, unknown>[];
  assert.equal(p[1]!.name, 'malformed');
  assert.equal((p[1]!.error as Record<string, unknown>).field, 'vdp.vsi.filterInfoFormat');
  assert.equal(p[2]!.name, 'org');
  assert.equal(c[1]!.name, 'associate');
  assert.equal(c[1]!.filterInfoFormatName, 'GroupID/MAC/IPv4/VID');
  assert.deepEqual(c[1]!.entries, [
    { groupId: 10000, mac: '02:00:00:00:00:01', ipv4: '192.0.2.1', ps: 0, pcp: 0, vid: 100 },
  ]);
  assert.equal(c[2]!.name, 'splitnveAuth');
  assert.equal(c[2]!.oui, '00-11-22');
  assert.equal(c[2]!.keyId, 7);
  assert.equal(c[2]!.sequence, 9);
  assert.equal(c[2]!.hmac, 'ab'.repeat(32));
  const bad = runCli(['decode', '--splitnve-oui', 'abc', '--hex', frame]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /not an integer: abc/);
});
