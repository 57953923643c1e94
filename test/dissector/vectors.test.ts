/**
 * The Lua dissector against the captured lldpad frames in test/vectors/: every frame decodes
 * without expert warnings or errors, and the fields tshark extracts equal the independent
 * decode in the vector's .txt file (parsed here, not hard-coded).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fromHex, toHex } from '../../src/wire/bytes.js';
import { readCapture } from '../../src/wire/pcap.js';
import { dissect, problems, SCRIPT, VECTORS } from './tshark.js';

interface ExpectedFrame {
  readonly index: number;
  readonly hex: string;
  /** field -> values in order of occurrence (joined with ',' to compare with tshark). */
  readonly fields: Map<string, string[]>;
  readonly kind: 'ecp' | 'lldp';
  /** EVB times as printed by the reference decoder, e.g. "163.840 ms". */
  readonly times: string[];
}

const hex2 = (s: string): string => `0x${s.toLowerCase()}`;

/** Parses the "frames" section of a vector .txt into per-frame expected field values. */
function parseVectorText(text: string): ExpectedFrame[] {
  const start = text.indexOf('\n================ frames');
  const end = text.indexOf('\n================ tshark');
  assert.ok(start >= 0 && end > start, 'vector text has no frames section');
  const lines = text.slice(start, end).split('\n').slice(2);
  const frames: ExpectedFrame[] = [];
  let cur: { -readonly [K in keyof ExpectedFrame]: ExpectedFrame[K] } | undefined;
  const add = (field: string, value: string | number): void => {
    const list = cur!.fields.get(field) ?? [];
    list.push(String(value));
    cur!.fields.set(field, list);
  };
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '') continue;
    let m: RegExpExecArray | null;
    if ((m = /^#(\d+) t=\S+ .* type=0x(8940|88cc):/.exec(line))) {
      cur = {
        index: Number(m[1]),
        hex: '',
        fields: new Map(),
        kind: m[2] === '8940' ? 'ecp' : 'lldp',
        times: [],
      };
      frames.push(cur);
      continue;
    }
    assert.ok(cur, `decode line before any frame: ${line}`);
    if ((m = /^hex: ([0-9a-f]+)$/.exec(line))) {
      cur.hex = m[1]!;
    } else if (
      (m =
        /^ECP header 0x[0-9a-f]{4}: version=(\d+) op=(\d+) \(\w+\) subtype=(\d+) \(\w+\) seqno=(\d+)$/.exec(
          line,
        ))
    ) {
      add('snve.ecp.version', m[1]!);
      add('snve.ecp.op', m[2]!);
      add('snve.ecp.subtype', m[3]!);
      add('snve.ecp.seq', m[4]!);
    } else if ((m = /^VDP TLV type (\d+) \([\w-]+\) len (\d+) @off \d+: [0-9a-f]+$/.exec(line))) {
      add('snve.vdp.tlv.type', m[1]!);
      add('snve.vdp.tlv.len', m[2]!);
    } else if ((m = /^manager id '([^']*)' \(ASCII, NUL padded to 16\)$/.exec(line))) {
      add('snve.vdp.mgrid.name', m[1]!);
    } else if (
      (m =
        /^status 0x([0-9a-f]{2}) -> REQUEST .*: M\(migrate-to\)=(\d) S\(suspend\/migrate-from\)=(\d) low nibble=\d reserved-bit7=(\d)$/.exec(
          line,
        ))
    ) {
      add('snve.vdp.vsi.status', hex2(m[1]!));
      add('snve.vdp.vsi.status.response', 0);
      add('snve.vdp.vsi.status.m', m[2]!);
      add('snve.vdp.vsi.status.s', m[3]!);
    } else if (
      (m =
        /^status 0x([0-9a-f]{2}) -> RESPONSE: ack\/req-rsp=1 keep=(\d) hard=(\d) error=(\d+) \([^)]*\) reserved-bit7=(\d)$/.exec(
          line,
        ))
    ) {
      add('snve.vdp.vsi.status', hex2(m[1]!));
      add('snve.vdp.vsi.status.response', 1);
      add('snve.vdp.vsi.status.keep', m[2]!);
      add('snve.vdp.vsi.status.hard', m[3]!);
      add('snve.vdp.vsi.status.reason', m[4]!);
    } else if ((m = /^VSI type id (\d+) \(0x[0-9a-f]{6}\) version (\d+)$/.exec(line))) {
      add('snve.vdp.vsi.typeid', m[1]!);
      add('snve.vdp.vsi.version', m[2]!);
    } else if ((m = /^VSIID format (\d+) \(UUID\) VSIID ([0-9a-f-]{36})$/.exec(line))) {
      add('snve.vdp.vsi.idformat', m[1]!);
      add('snve.vdp.vsi.id.uuid', m[2]!);
    } else if ((m = /^filter info format (\d+) \([^)]*\), (\d+) entr(y|ies)$/.exec(line))) {
      add('snve.vdp.vsi.fif', `0x${Number(m[1]).toString(16).padStart(2, '0')}`);
      add('snve.vdp.vsi.num_entries', m[2]!);
    } else if ((m = /^entry \d+: (.*) \(raw 0x([0-9a-f]{4})\)\s+\[[0-9a-f]+\]$/.exec(line))) {
      const e = m[1]!;
      const g = /GroupID=(\d+)/.exec(e);
      if (g) {
        add('snve.vdp.vsi.groupid', g[1]!);
        add('snve.vdp.vsi.vni', Number(g[1]) & 0xffffff);
      }
      const mac = /MAC=([0-9a-f:]{17})/.exec(e);
      if (mac) add('snve.vdp.vsi.mac', mac[1]!);
      const f = /PS=(\d) PCP=(\d) VID=(\d+)$/.exec(e);
      assert.ok(f, `entry without PS/PCP/VID: ${line}`);
      add('snve.vdp.vsi.ps', f[1]!);
      add('snve.vdp.vsi.pcp', f[2]!);
      add('snve.vdp.vsi.vid', f[3]!);
      add('snve.vdp.vsi.field', hex2(m[2]!));
    } else if (/^ACK carries no payload \(0 bytes after header\)$/.test(line)) {
      add('snve.ecp.padding', '');
    } else if (/^VDPDU ends exactly after last TLV \(no End TLV, no padding\)$/.test(line)) {
      add('snve.vdp.padding', '');
    } else if (
      /^TLV 127 len 9 OUI 00-80-c2 subtype 0x0d \(EVB, [^)]*\): [0-9a-f]{18}$/.test(line)
    ) {
      add('snve.lldp.oui', '0x0080c2');
      add('snve.lldp.subtype', '0x0d');
      add('snve.lldp.tlv.len', 9);
    } else if (
      (m =
        /^EVB bridge status 0x([0-9a-f]{2}): BGID=(\d) RRCAP=(\d) RRCTR=(\d) \(reserved bits 0x00\)$/.exec(
          line,
        ))
    ) {
      add('snve.evb.bridge_status', hex2(m[1]!));
      add('snve.evb.bgid', m[2]!);
      add('snve.evb.rrcap', m[3]!);
      add('snve.evb.rrctr', m[4]!);
    } else if (
      (m =
        /^EVB station status 0x([0-9a-f]{2}): SGID=(\d) RRREQ=(\d) RRSTAT=(\d) \([^)]*(\))?\) \(reserved 0x00\)$/.exec(
          line,
        ))
    ) {
      add('snve.evb.station_status', hex2(m[1]!));
      add('snve.evb.sgid', m[2]!);
      add('snve.evb.rrreq', m[3]!);
      add('snve.evb.rrstat', m[4]!);
    } else if (
      (m =
        /^R\/RTE 0x[0-9a-f]{2}: R\(max retries\)=(\d+) RTE=(\d+) \(ECP ack timer 10us\*2\^RTE = ([\d.]+ m?s)\)$/.exec(
          line,
        ))
    ) {
      add('snve.evb.r', m[1]!);
      add('snve.evb.rte', m[2]!);
      cur.times.push(m[3]!);
    } else if (
      (m =
        /^mode\/ROL\/RWD 0x[0-9a-f]{2}: EVBmode=(\d) \([^)]*\) ROL=(\d) RWD=(\d+) \(10us\*2\^RWD = ([\d.]+ m?s)\)$/.exec(
          line,
        ))
    ) {
      add('snve.evb.mode', m[1]!);
      add('snve.evb.rol_rwd', m[2]!);
      add('snve.evb.rwd', m[3]!);
      cur.times.push(m[4]!);
    } else if (
      (m =
        /^ROL\/RKA 0x[0-9a-f]{2}: ROL=(\d) RKA=(\d+) \(10us\*2\^RKA = ([\d.]+ m?s)\) \(reserved 0x00\)$/.exec(
          line,
        ))
    ) {
      add('snve.evb.rol_rka', m[1]!);
      add('snve.evb.rka', m[2]!);
      cur.times.push(m[3]!);
    } else if (/^End TLV at LLDPDU offset \d+; \d+ trailing pad bytes$/.test(line)) {
      // tshark's own LLDP decoder handles End; nothing of ours to compare
    } else {
      assert.fail(`unrecognised decode line in frame #${cur.index}: ${line}`);
    }
  }
  return frames;
}

const vectorNames = readdirSync(VECTORS)
  .filter((f) => f.endsWith('.pcap'))
  .map((f) => f.slice(0, -'.pcap'.length))
  .sort();

test('the vectors are present', () => {
  assert.ok(vectorNames.length >= 7, `expected the lldpad vectors in ${VECTORS}`);
});

for (const name of vectorNames) {
  test(`vector ${name}: fields match the reference decode, no expert warnings`, () => {
    const pcapPath = join(VECTORS, `${name}.pcap`);
    const expected = parseVectorText(readFileSync(join(VECTORS, `${name}.txt`), 'utf8'));
    const cap = readCapture(readFileSync(pcapPath));
    assert.ok(cap.ok, `cannot read ${pcapPath}`);
    assert.equal(cap.value.length, expected.length, 'frames in pcap vs decodes in txt');
    expected.forEach((e, i) => {
      assert.equal(toHex(cap.value[i]!.data), e.hex, `frame ${i + 1} bytes vs hex line`);
      assert.ok(fromHex(e.hex));
    });

    const fieldNames = [...new Set(expected.flatMap((e) => [...e.fields.keys()]))].sort();
    const got = dissect(pcapPath, fieldNames);
    assert.equal(got.length, expected.length);
    let compared = 0;
    expected.forEach((e, i) => {
      const g = got[i]!;
      const where = `${name} frame ${g.number}`;
      assert.deepEqual(problems(g), [], `${where}: expert warnings/errors`);
      assert.equal(
        g.fields['frame.protocols'],
        e.kind === 'ecp' ? 'eth:ethertype:snve' : 'eth:ethertype:lldp:snve_lldp',
        `${where}: the splitnve dissector must own the frame (not ecp21/vdp21)`,
      );
      assert.ok(e.fields.size >= 4, `${where}: too little parsed from the reference decode`);
      for (const [field, values] of e.fields) {
        assert.equal(g.fields[field], values.join(','), `${where}: ${field}`);
        compared++;
      }
      // Every field the reference decode does not mention for this frame must be absent
      // (e.g. no M/S bits in a response, no EVB fields in ECP frames, no End TLV or padding).
      for (const field of fieldNames) {
        if (!e.fields.has(field)) assert.equal(g.fields[field], '', `${where}: ${field} absent`);
      }
    });
    assert.ok(compared >= expected.length * 4, `only ${compared} field comparisons`);
  });
}

test('EVB times are shown as 10us*2^x', () => {
  const name = '01-lldp-evb22';
  const expected = parseVectorText(readFileSync(join(VECTORS, `${name}.txt`), 'utf8'));
  const times = new Set(expected.flatMap((e) => e.times));
  assert.ok(times.size >= 2);
  const r = spawnSync(
    'tshark',
    ['-n', '-X', `lua_script:${SCRIPT}`, '-r', join(VECTORS, `${name}.pcap`), '-V'],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  assert.equal(r.status, 0);
  for (const t of times) assert.ok(r.stdout.includes(`${t})`), `time ${t} not shown`);
  assert.ok(r.stdout.includes('(ECP ACK timer 163.840 ms)'));
});
