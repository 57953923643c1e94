/**
 * The Lua dissector against frames that splitnve's own encoders build: every TLV kind and
 * filter format decodes to the right values without expert warnings; malformed frames raise
 * the expected expert error; the configurable code points follow the Lua preferences.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writePcap } from '../../src/wire/pcap.js';
import {
  badFrames,
  CUSTOM_PREFS,
  customPrefFrames,
  goodFrames,
  mutatedFrames,
  type GenFrame,
} from './frames.js';
import { dissect, problems, SEVERITY_ERROR, type FrameFields } from './tshark.js';

function withPcap<T>(frames: readonly GenFrame[], fn: (path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), `snve-dissector-${process.pid}-`));
  try {
    const path = join(dir, 'frames.pcap');
    writeFileSync(
      path,
      writePcap(frames.map((f, i) => ({ time: 1_700_000_000 + i, data: f.data }))),
    );
    return fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function run(
  frames: readonly GenFrame[],
  prefs: Readonly<Record<string, string>> = {},
): FrameFields[] {
  const fields = new Set<string>();
  for (const f of frames) {
    for (const k of Object.keys(f.expect)) fields.add(k);
    for (const e of f.errors) fields.add(e);
  }
  fields.delete('frame.protocols');
  const got = withPcap(frames, (p) => dissect(p, [...fields].sort(), prefs));
  assert.equal(got.length, frames.length);
  return got;
}

function checkValues(f: GenFrame, g: FrameFields): void {
  for (const [field, want] of Object.entries(f.expect)) {
    assert.equal(g.fields[field], want, `${f.name}: ${field}`);
  }
}

test('frames built by src/wire decode cleanly with the right values', () => {
  const frames = goodFrames();
  const got = run(frames);
  frames.forEach((f, i) => {
    const g = got[i]!;
    assert.deepEqual(problems(g), [], `${f.name}: expert warnings/errors`);
    checkValues(f, g);
  });
});

test('every VDP TLV kind and filter format is covered by the good frames', () => {
  const got = run(goodFrames());
  const all = (field: string): Set<string> =>
    new Set(got.flatMap((g) => (g.fields[field] ? g.fields[field]!.split(',') : [])));
  assert.deepEqual([...all('snve.vdp.tlv.type')].sort(), ['0', '1', '127', '2', '3', '4', '5']);
  assert.deepEqual([...all('snve.vdp.vsi.fif')].sort(), [
    '0x01',
    '0x02',
    '0x03',
    '0x04',
    '0xf0',
    '0xf1',
  ]);
  assert.deepEqual([...all('snve.vdp.vsi.idformat')].sort(), ['1', '2', '3', '4', '5']);
  assert.ok(all('snve.ecp.op').has('0') && all('snve.ecp.op').has('1'));
});

test('malformed frames raise the expected expert error', () => {
  const frames = badFrames();
  const got = run(frames);
  frames.forEach((f, i) => {
    const g = got[i]!;
    assert.ok(f.errors.length > 0);
    for (const e of f.errors) assert.equal(g.fields[e], '1', `${f.name}: expert ${e} missing`);
    assert.ok(
      g.experts.some((x) => x.severity === SEVERITY_ERROR),
      `${f.name}: no expert error at all`,
    );
    checkValues(f, g);
  });
});

test('Lua preferences move the IP filter formats and the splitnve identifier', () => {
  const frames = customPrefFrames();
  const got = run(frames, CUSTOM_PREFS);
  frames.forEach((f, i) => {
    assert.deepEqual(problems(got[i]!), [], `${f.name}: expert warnings/errors`);
    checkValues(f, got[i]!);
  });
  // With the default preferences the same codes are unknown: proof the preferences act.
  const plain = run(frames);
  assert.equal(plain[0]!.fields['snve.vdp.vsi.ipv4'], '');
  assert.ok(problems(plain[0]!).some((p) => p.includes('Unknown filter info format 224')));
  assert.equal(plain[1]!.fields['snve.lldp.profile.flags'], '');
});

test('corrupted frames never make the Lua code fail', () => {
  const frames: GenFrame[] = mutatedFrames(2000, 0x5eed).map((data, i) => ({
    name: `mutation ${i}`,
    data,
    expect: {},
    errors: [],
  }));
  const got = run(frames);
  let ecp = 0;
  for (const g of got) {
    const lua = g.experts.filter((e) => e.message.includes('Lua Error'));
    assert.deepEqual(lua, [], `frame ${g.number}: Lua error`);
    // tshark's own LLDP decoder may throw on a cut LLDPDU; ECP frames are all ours.
    if (g.fields['frame.protocols'] === 'eth:ethertype:snve') {
      ecp++;
      assert.ok(
        !g.experts.some((e) => e.message.startsWith('Malformed Packet')),
        `frame ${g.number}: malformed-packet exception in the ECP/VDP decoder`,
      );
    }
  }
  assert.ok(ecp > 1000, `only ${ecp} ECP frames in the corpus`);
});
