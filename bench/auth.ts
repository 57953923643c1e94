/**
 * Cost of PDU authentication: signing and verifying one PDU (a one-VSI PDU as sent for most
 * requests, and a full 1494-octet PDU), the key store's sequence reservation and the
 * write-through of the last accepted sequence (SQLite), per PDU. Prints one JSON line.
 *
 *   node dist/bench/auth.js [--n 20000]
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyStore } from '../src/auth/keystore.js';
import { authTlvBytes, verifyPdu } from '../src/vdp/auth.js';
import { MemoryAuthHooks } from '../src/auth/memory.js';
import { parseVdpPdu } from '../src/vdp/pdu.js';
import { ECP_SUBTYPE_VDP } from '../src/wire/ecp.js';
import { DEFAULT_WIRE_OPTIONS } from '../src/wire/options.js';
import { encodeVdp, managerIdFromString, type VdpTlv } from '../src/wire/vdp.js';
import { writeKey } from '../test/harness/keys.js';

const i = process.argv.indexOf('--n');
const N = i < 0 ? 20_000 : Number(process.argv[i + 1]);
const ST = '02:00:00:00:aa:01';
const BR = '02:00:00:00:bb:01';
const key = new Uint8Array(32).fill(3);

function pdu(vsis: number): Uint8Array {
  const tlvs: VdpTlv[] = [{ kind: 'manager-id', managerId: managerIdFromString('bench') }];
  for (let v = 0; v < vsis; v++) {
    tlvs.push({
      kind: 'vsi',
      type: 3,
      status: 0,
      typeId: 1,
      typeVersion: 1,
      idFormat: 5,
      id: Uint8Array.from({ length: 16 }, (_, k) => k + v),
      filterFormat: 4,
      entries: [{ groupId: 5000, mac: '52:54:00:00:00:01', vid: 0, ps: 0, pcp: 0 }],
    });
  }
  const b = encodeVdp(tlvs);
  return b.subarray(0, b.length - 2); // without End: what gets signed
}

function time(n: number, fn: (k: number) => void): number {
  for (let k = 0; k < Math.min(1000, n); k++) fn(k); // warm up
  const t0 = performance.now();
  for (let k = 0; k < n; k++) fn(k);
  return ((performance.now() - t0) * 1000) / n;
}

const out: Record<string, number> = {};
for (const [name, vsis] of [
  ['oneVsi', 1],
  ['full', 36],
] as const) {
  const unsigned = pdu(vsis);
  out[`${name}Octets`] = unsigned.length + 48 + 2;
  out[`${name}SignUs`] = +time(N, (k) =>
    authTlvBytes(
      { keyId: 1, key, sequence: BigInt(k + 1) },
      ST,
      BR,
      ECP_SUBTYPE_VDP,
      unsigned,
      DEFAULT_WIRE_OPTIONS,
    ),
  ).toFixed(2);
  // Verify: parse + HMAC + replay check, with in-memory sequences.
  const hooks = new MemoryAuthHooks({
    role: 'bridge',
    mode: 'require',
    keys: new Map([[ST, new Map([[1, key]])]]),
  });
  const signed: Uint8Array[] = [];
  for (let k = 0; k < N + 1000; k++) {
    const a = authTlvBytes(
      { keyId: 1, key, sequence: BigInt(k + 1) },
      ST,
      BR,
      ECP_SUBTYPE_VDP,
      unsigned,
      DEFAULT_WIRE_OPTIONS,
    );
    const p = new Uint8Array(unsigned.length + a.length + 2);
    p.set(unsigned);
    p.set(a, unsigned.length);
    signed.push(p);
  }
  out[`${name}VerifyUs`] = +time(N, (k) => {
    const p = parseVdpPdu(signed[k]!, DEFAULT_WIRE_OPTIONS);
    if (!p.ok) throw new Error('parse');
    const r = verifyPdu(hooks, 'p', ST, ST, BR, ECP_SUBTYPE_VDP, signed[k]!, p.value.auth);
    if (!r.ok && k >= 1000) throw new Error(r.reason);
  }).toFixed(2);
  out[`${name}ParseOnlyUs`] = +time(N, (k) =>
    parseVdpPdu(signed[k]!, DEFAULT_WIRE_OPTIONS),
  ).toFixed(2);
}
// The key store: a sequence for each signed PDU (SQLite write once per block) and the
// write-through of each accepted sequence.
const dir = mkdtempSync(join(tmpdir(), 'sns-bench-auth-'));
try {
  mkdirSync(join(dir, 'k'), { mode: 0o700 });
  const kf = writeKey(join(dir, 'k'), 'a.key');
  const ks = KeyStore.open(
    { keys: [{ station: ST, keyId: 1, keyFile: kf }] },
    { role: 'bridge', stateDir: dir },
  );
  out.keystoreSignerUs = +time(N, () => ks.signer('p', ST)).toFixed(2);
  out.keystoreAcceptedUs = +time(N, (k) => ks.accepted('p', ST, BigInt(k + 1))).toFixed(2);
  ks.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify({ n: N, ...out }));
