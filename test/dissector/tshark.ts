/**
 * Runs tshark with contrib/wireshark/splitnve.lua and returns the extracted fields per frame.
 * Shared by the dissector suite's test files (not a test itself).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (this file runs from dist/test/dissector/). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const SCRIPT = join(ROOT, 'contrib', 'wireshark', 'splitnve.lua');
export const VECTORS = join(ROOT, 'test', 'vectors');

/** Expert severities as tshark prints `_ws.expert.severity` in -T fields. */
export const SEVERITY_NOTE = 0x00400000;
export const SEVERITY_WARN = 0x00600000;
export const SEVERITY_ERROR = 0x00800000;

export interface FrameFields {
  /** 1-based frame number. */
  readonly number: number;
  /** Field abbreviation -> tshark text, occurrences joined with ','. '' when absent. */
  readonly fields: Readonly<Record<string, string>>;
  /** Expert infos of the frame (all layers). */
  readonly experts: readonly { severity: number; message: string }[];
}

const EXPERT_FIELDS = ['_ws.expert.severity', '_ws.expert.message'];

/**
 * Dissects `pcap` with the splitnve script and extracts `fields` (plus frame.protocols and the
 * expert infos) for every frame. `prefs` are passed as `-o name:value`.
 */
export function dissect(
  pcap: string,
  fields: readonly string[],
  prefs: Readonly<Record<string, string>> = {},
): FrameFields[] {
  assert.ok(existsSync(SCRIPT), `dissector script missing: ${SCRIPT}`);
  const all = ['frame.number', 'frame.protocols', ...EXPERT_FIELDS, ...fields];
  const args = ['-n', '-X', `lua_script:${SCRIPT}`, '-r', pcap];
  for (const [k, v] of Object.entries(prefs)) args.push('-o', `${k}:${v}`);
  args.push('-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,', '-E', 'separator=/t');
  for (const f of all) args.push('-e', f);
  const r = spawnSync('tshark', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.error, undefined, `tshark could not run: ${r.error?.message}`);
  // Root prints "Running as user root ..."; a Lua load error prints "tshark: Lua: ..." and
  // tshark then silently falls back to its own decoders, so treat it as a failure here.
  const stderr = r.stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('Running as user'));
  assert.deepEqual(stderr, [], `tshark ${args.join(' ')} printed errors`);
  assert.equal(r.status, 0, `tshark exited ${r.status}`);
  const out: FrameFields[] = [];
  for (const line of r.stdout.split('\n')) {
    if (line === '') continue;
    const cols = line.split('\t');
    const rec: Record<string, string> = {};
    all.forEach((f, i) => (rec[f] = cols[i] ?? ''));
    const sev = rec['_ws.expert.severity']!;
    const msg = rec['_ws.expert.message']!;
    const sevs = sev === '' ? [] : sev.split(',').map(Number);
    // Messages may contain commas; keep them whole when the counts do not line up.
    const msgs = msg === '' ? [] : msg.split(',');
    const experts = sevs.map((s, i) => ({
      severity: s,
      message: sevs.length === msgs.length ? msgs[i]! : msg,
    }));
    out.push({ number: Number(rec['frame.number']), fields: rec, experts });
  }
  return out;
}

/** Warnings and errors of a frame (notes such as tshark's own LLDP trailer remark are allowed). */
export function problems(f: FrameFields): string[] {
  return f.experts
    .filter((e) => e.severity >= SEVERITY_WARN)
    .map((e) => `${e.severity === SEVERITY_ERROR ? 'error' : 'warn'}: ${e.message}`);
}
