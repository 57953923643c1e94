/**
 * Flood generator for the flood test and bench: from a raw socket in a namespace, as fast as
 * it can (or at --rate), ECP/VDP Associate requests from random station MACs with random VSI
 * ids (to the nNVE's unicast MAC and to the group address, some with a made-up authentication
 * TLV), and some LLDPDUs from random MACs. Frames are made from templates with the random parts
 * patched in. Argument: JSON { netns, ifname, nnveMac, rate? (frames/s, 0 = max), batch? }.
 * 'stop' over IPC -> replies { sent, seconds, txErrors } and exits.
 */
import { randomFillSync } from 'node:crypto';
import { lldpStationFrame, vdpRequestFrame } from '../../src/fuzz/frames.js';
import { RawLink } from '../../src/link/raw.js';

const o = JSON.parse(process.argv[2]!) as {
  netns: string;
  ifname: string;
  nnveMac: string;
  rate?: number;
  batch?: number;
};
const link = new RawLink(o.ifname, { netns: o.netns, defaultGroups: false });
const SRC = '02:00:00:00:00:00';
const id = new Uint8Array(16);
const templates = [
  vdpRequestFrame({ source: SRC, destination: o.nnveMac, ecpSequence: 1, vsiId: id }),
  vdpRequestFrame({ source: SRC, ecpSequence: 1, vsiId: id }),
  vdpRequestFrame({
    source: SRC,
    destination: o.nnveMac,
    ecpSequence: 1,
    vsiId: id,
    sign: { keyId: 7, key: new Uint8Array(32), sequence: 1n },
  }),
];
const lldp = lldpStationFrame(SRC);
const pool = Buffer.alloc(1 << 20);
let poolAt = pool.length;
function rand(n: number): Buffer {
  if (poolAt + n > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  poolAt += n;
  return pool.subarray(poolAt - n, poolAt);
}

let sent = 0;
let seq = 0;
function frame(): Uint8Array {
  const k = seq++ % 64;
  if (k === 63) {
    const f = Buffer.from(lldp);
    rand(6).copy(f, 6);
    f[6] = (f[6]! & 0xfc) | 0x02;
    return f;
  }
  const f = Buffer.from(templates[k % 16 === 15 ? 2 : k & 1]!);
  const r = rand(22);
  r.copy(f, 6, 0, 6); // source MAC
  f[6] = (f[6]! & 0xfc) | 0x02; // unicast, locally administered
  f.writeUInt16BE(seq & 0xffff, 16); // ECP sequence
  r.copy(f, 44, 6, 22); // VSI id
  f.copy(f, 67, 6, 12); // the filter's MAC = the station MAC
  return f;
}

const batch = o.batch ?? 256;
const t0 = performance.now();
let running = true;
function tick(): void {
  if (!running) return;
  let n = batch;
  if (o.rate) {
    const due = Math.floor(((performance.now() - t0) / 1000) * o.rate) - sent;
    n = Math.max(0, Math.min(batch * 8, due));
  }
  if (n > 0) {
    const frames: Uint8Array[] = [];
    for (let i = 0; i < n; i++) frames.push(frame());
    link.send(frames);
    sent += n;
  }
  if (o.rate && n === 0) setTimeout(tick, 1);
  else setImmediate(tick);
}
process.on('message', (m) => {
  if (m !== 'stop') return;
  running = false;
  const seconds = (performance.now() - t0) / 1000;
  const st = link.stats();
  void link
    .close()
    .then(() =>
      process.send!({ sent: st.txFrames, seconds, txErrors: st.txErrors }, () => process.exit(0)),
    );
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true });
tick();
