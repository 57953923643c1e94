/**
 * Inputs for the fuzz target: a seed corpus (captured frames plus frames of our own with every
 * feature), mutated by stacked, structure-aware mutators; and the run loop that records
 * failures with everything needed to reproduce them (seed, iteration, input).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { seededRandom, type Random } from '../core/random.js';
import { readU16 } from '../wire/bytes.js';
import { encodeEcp } from '../wire/ecp.js';
import { encodeEthernet, ETHERTYPE_ECP } from '../wire/ethernet.js';
import { readCapture } from '../wire/pcap.js';
import { encodeVdp, managerIdFromString, type VdpTlv } from '../wire/vdp.js';
import { lldpStationFrame, randomBytes, vdpRequestFrame } from './frames.js';
import { FuzzFailure, FuzzTarget, FUZZ_PORT0, FUZZ_STATION } from './target.js';

/** Every frame of every pcap/pcapng file in `dir`. */
export function loadCaptureCorpus(dir: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (!/\.(pcap|pcapng)$/.test(name)) continue;
    const c = readCapture(new Uint8Array(readFileSync(join(dir, name))));
    if (!c.ok) throw new Error(`${join(dir, name)}: ${c.error.message}`);
    for (const r of c.value) out.push(r.data);
  }
  return out;
}

/** Frames lldpad never sends: IP filter formats, Cisco TLVs, auth TLVs, every VSI type. */
export function ownCorpus(): Uint8Array[] {
  const rnd = seededRandom(1);
  const out: Uint8Array[] = [];
  const id = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
  for (const type of [1, 2, 3, 4] as const) {
    out.push(vdpRequestFrame({ source: FUZZ_STATION, ecpSequence: type, type, vsiId: id }));
    out.push(
      vdpRequestFrame({
        source: FUZZ_STATION,
        ecpSequence: 10 + type,
        type,
        vsiId: randomBytes(rnd, 16),
        sign: { keyId: 1, key: new Uint8Array(32), sequence: BigInt(type) },
      }),
    );
  }
  const tlvs: VdpTlv[] = [
    { kind: 'manager-id', managerId: managerIdFromString('nvemgr1') },
    {
      kind: 'vsi',
      type: 3,
      status: 0x10,
      typeId: 42,
      typeVersion: 1,
      idFormat: 5,
      id,
      filterFormat: 0xf1,
      entries: [
        { groupId: 5001, mac: '02:00:00:00:00:01', ipv6: '2001:db8::1', ps: 1, pcp: 5, vid: 100 },
      ],
    },
    { kind: 'cisco-vm-name', vsiIdFormat: 5, vsiId: id, vmIdFormat: 5, vmId: id, vmName: 'vm' },
    { kind: 'cisco-l3-addr', vsiIdFormat: 5, vsiId: id, afi: 1, address: '192.0.2.7' },
    {
      kind: 'vsi',
      type: 2,
      status: 0x40,
      typeId: 7,
      typeVersion: 2,
      idFormat: 3,
      id,
      filterFormat: 0xf0,
      entries: [{ groupId: 1, mac: '02:00:00:00:00:02', ipv4: '10.0.0.1', ps: 0, pcp: 0, vid: 7 }],
    },
    { kind: 'org', oui: 0x123456, subtype: 9, data: Uint8Array.of(1, 2, 3) },
    { kind: 'splitnve-auth', keyId: 3, sequence: 2n ** 63n, hmac: new Uint8Array(32).fill(7) },
  ];
  out.push(
    encodeEthernet(
      { destination: FUZZ_STATION, source: FUZZ_PORT0, ethertype: ETHERTYPE_ECP },
      encodeEcp({ version: 1, op: 0, subtype: 1, sequence: 77 }, encodeVdp(tlvs)),
    ),
  );
  out.push(
    encodeEthernet(
      { destination: FUZZ_PORT0, source: FUZZ_STATION, ethertype: ETHERTYPE_ECP },
      encodeEcp({ version: 1, op: 1, subtype: 1, sequence: 77 }),
    ),
  );
  out.push(lldpStationFrame(FUZZ_STATION, { splitnve: true }));
  out.push(lldpStationFrame(FUZZ_STATION, { ttl: 0 }));
  return out;
}

const INTERESTING8 = [0, 1, 0x7f, 0x80, 0xff, 0x40, 0x10, 0x20];
const INTERESTING16 = [0, 1, 0x7fff, 0x8000, 0xffff, 0x01ff, 0x0200, 14, 60, 1514];

/** Offsets of VDP/LLDP TLV headers in a frame (best effort). */
function tlvHeaders(f: Uint8Array): number[] {
  const out: number[] = [];
  const start = f[12] === 0x89 && f[13] === 0x40 ? 18 : f[12] === 0x88 && f[13] === 0xcc ? 14 : -1;
  if (start < 0) return out;
  let off = start;
  while (off + 2 <= f.length && out.length < 64) {
    out.push(off);
    const len = readU16(f, off) & 0x1ff;
    if (readU16(f, off) >> 9 === 0) break;
    off += 2 + len;
  }
  return out;
}

export class Mutator {
  private readonly rnd: Random;

  constructor(
    private readonly corpus: readonly Uint8Array[],
    seed: number,
  ) {
    if (corpus.length === 0) throw new Error('fuzz corpus is empty');
    this.rnd = seededRandom(seed);
  }

  private int(n: number): number {
    return Math.floor(this.rnd() * n);
  }

  /** The next input: a corpus frame with 1-5 stacked mutations, or (rarely) random bytes. */
  next(): Uint8Array {
    if (this.rnd() < 0.03) return randomBytes(this.rnd, this.int(200));
    let f: Uint8Array = this.corpus[this.int(this.corpus.length)]!.slice();
    const n = 1 + this.int(5);
    for (let i = 0; i < n; i++) f = this.mutate(f);
    return f.length > 2000 ? f.subarray(0, 2000) : f;
  }

  private mutate(f: Uint8Array): Uint8Array {
    const len = f.length;
    switch (this.int(12)) {
      case 0: {
        // Flip a few bits.
        const g = f.slice();
        for (let k = 0, m = 1 + this.int(8); k < m && len > 0; k++)
          g[this.int(len)]! ^= 1 << this.int(8);
        return g;
      }
      case 1: {
        const g = f.slice();
        if (len > 0) g[this.int(len)] = INTERESTING8[this.int(INTERESTING8.length)]!;
        return g;
      }
      case 2: {
        const g = f.slice();
        if (len >= 2) {
          const at = this.int(len - 1);
          const v = INTERESTING16[this.int(INTERESTING16.length)]!;
          g[at] = v >> 8;
          g[at + 1] = v & 0xff;
        }
        return g;
      }
      case 3: {
        // Corrupt a TLV length field (type kept).
        const hs = tlvHeaders(f);
        if (hs.length === 0) return f;
        const at = hs[this.int(hs.length)]!;
        const g = f.slice();
        const type = g[at]! >> 1;
        const cur = ((g[at]! & 1) << 8) | g[at + 1]!;
        const choices = [0, 1, cur - 1, cur + 1, cur + 2, 511, this.int(512)];
        const nl = Math.max(0, Math.min(511, choices[this.int(choices.length)]!));
        g[at] = (type << 1) | (nl >> 8);
        g[at + 1] = nl & 0xff;
        return g;
      }
      case 4: {
        // Change a TLV's type.
        const hs = tlvHeaders(f);
        if (hs.length === 0) return f;
        const at = hs[this.int(hs.length)]!;
        const g = f.slice();
        const types = [0, 1, 2, 3, 4, 5, 6, 127, this.int(128)];
        g[at] = (types[this.int(types.length)]! << 1) | (g[at]! & 1);
        return g;
      }
      case 5:
        return len > 14 ? f.subarray(0, 14 + this.int(len - 14)) : f;
      case 6: {
        const extra =
          this.rnd() < 0.5
            ? new Uint8Array(1 + this.int(64))
            : randomBytes(this.rnd, 1 + this.int(64));
        const g = new Uint8Array(len + extra.length);
        g.set(f);
        g.set(extra, len);
        return g;
      }
      case 7: {
        // Insert bytes.
        const at = this.int(len + 1);
        const ins = randomBytes(this.rnd, 1 + this.int(8));
        const g = new Uint8Array(len + ins.length);
        g.set(f.subarray(0, at));
        g.set(ins, at);
        g.set(f.subarray(at), at + ins.length);
        return g;
      }
      case 8: {
        // Delete a range.
        if (len < 2) return f;
        const at = this.int(len);
        const n = 1 + this.int(Math.min(16, len - at));
        const g = new Uint8Array(len - n);
        g.set(f.subarray(0, at));
        g.set(f.subarray(at + n), at);
        return g;
      }
      case 9: {
        // Splice: head of this frame, tail of another.
        const o = this.corpus[this.int(this.corpus.length)]!;
        const a = this.int(len + 1);
        const b = this.int(o.length + 1);
        const g = new Uint8Array(a + o.length - b);
        g.set(f.subarray(0, a));
        g.set(o.subarray(b), a);
        return g;
      }
      case 10: {
        // Source MAC: random, group, or zero.
        const g = f.slice();
        if (len >= 12) {
          const k = this.int(3);
          for (let i = 6; i < 12; i++) g[i] = k === 0 ? this.int(256) : k === 1 ? 0xff : 0;
          if (k === 0) g[6] = g[6]! & 0xfe;
        }
        return g;
      }
      default: {
        // ECP header: op, version, subtype, sequence.
        const g = f.slice();
        if (len >= 18) {
          const w = this.int(3);
          if (w === 0) g[14] = (g[14]! & 0xf3) | (this.int(4) << 2);
          else if (w === 1) g[14] = (this.int(16) << 4) | (g[14]! & 0x0f);
          else {
            g[16] = this.int(256);
            g[17] = this.int(256);
          }
        }
        return g;
      }
    }
  }
}

export interface FuzzCrash {
  readonly seed: number;
  /** Index of the input (0-based) in the run of this seed. */
  readonly iteration: number;
  readonly input: string;
  readonly where: string;
  readonly message: string;
}

export interface FuzzRunResult {
  readonly seed: number;
  readonly iterations: number;
  readonly elapsedMs: number;
  readonly perSecond: number;
  readonly crashes: FuzzCrash[];
  readonly stats: FuzzTarget['stats'];
}

/**
 * Runs `iterations` inputs (or until `deadlineMs` of wall time passed). After a failure the
 * machines are made afresh and the run goes on; every failure is returned.
 */
export function runFuzz(opts: {
  seed: number;
  corpus: readonly Uint8Array[];
  iterations: number;
  deadlineMs?: number;
  onCrash?: (c: FuzzCrash) => void;
}): FuzzRunResult {
  const target = new FuzzTarget(opts.seed);
  const mut = new Mutator(opts.corpus, opts.seed);
  const crashes: FuzzCrash[] = [];
  const t0 = performance.now();
  let i = 0;
  for (; i < opts.iterations; i++) {
    if (
      opts.deadlineMs !== undefined &&
      (i & 1023) === 0 &&
      performance.now() - t0 > opts.deadlineMs
    )
      break;
    const input = mut.next();
    try {
      target.run(input);
    } catch (e) {
      const f = e instanceof FuzzFailure ? e : new FuzzFailure('run', String(e));
      const c: FuzzCrash = {
        seed: opts.seed,
        iteration: i,
        input: Buffer.from(input).toString('hex'),
        where: f.where,
        message: f.message,
      };
      crashes.push(c);
      opts.onCrash?.(c);
      target.reset();
    }
  }
  const elapsedMs = performance.now() - t0;
  return {
    seed: opts.seed,
    iterations: i,
    elapsedMs: Math.round(elapsedMs),
    perSecond: Math.round((i / elapsedMs) * 1000),
    crashes,
    stats: { ...target.stats },
  };
}
