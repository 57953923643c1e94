/**
 * Raw link benchmark: one process sends ECP frames at a fixed rate over a veth pair between two
 * network namespaces, a second process (forked from this file) receives them; prints one JSON
 * object with sent/received/lost, kernel drops, achieved rates and CPU time. Needs root.
 *
 *   node dist/bench/rawlink.js [--rate 50000] [--seconds 3] [--bytes 64]
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RawLink } from '../src/link/raw.js';
import { createVethPair } from '../test/harness/veth-pair.js';

interface RxReport {
  received: number;
  outOfOrder: number;
  rxDroppedKernel: number;
  batches: number;
  cpuMs: number;
}

const GROUP = Buffer.from('0180c2000000', 'hex');

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

async function receiver(ns: string, ifname: string): Promise<void> {
  const link = new RawLink(ifname, { netns: ns });
  let received = 0;
  let batches = 0;
  let next = 0;
  let outOfOrder = 0;
  link.onFrames((frames) => {
    batches++;
    for (const f of frames) {
      const seq = Buffer.from(f.buffer, f.byteOffset, f.byteLength).readUInt32BE(18);
      if (seq !== next) outOfOrder++;
      next = seq + 1;
      received++;
    }
  });
  const cpu0 = process.cpuUsage();
  process.on('message', (m) => {
    if (m !== 'stop') return;
    const cpu = process.cpuUsage(cpu0);
    const report: RxReport = {
      received,
      outOfOrder,
      rxDroppedKernel: link.stats().rxDropped,
      batches,
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    };
    void link.close().then(() => {
      process.send!(report, () => process.disconnect());
    });
  });
  process.send!('ready');
}

async function sender(): Promise<void> {
  const rate = arg('rate', 50000);
  const seconds = arg('seconds', 3);
  const bytes = Math.max(18, Math.floor(arg('bytes', 64)));
  const pair = createVethPair('snrb', 'k');
  try {
    const child = fork(fileURLToPath(import.meta.url), ['--receiver', pair.nsB, pair.ifB], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const reportP = new Promise<RxReport>((resolve, reject) => {
      child.on('message', (m) => {
        if (typeof m === 'object') resolve(m as RxReport);
      });
      child.on('exit', (code) => reject(new Error(`receiver exited with ${code}`)));
    });
    await new Promise<void>((resolve, reject) => {
      child.once('message', (m) => (m === 'ready' ? resolve() : reject(new Error(String(m)))));
      child.once('exit', (code) => reject(new Error(`receiver exited with ${code}`)));
    });

    const link = new RawLink(pair.ifA, { netns: pair.nsA });
    const src = Buffer.from(link.mac.replace(/:/g, ''), 'hex');
    const makeFrame = (seq: number): Buffer => {
      const f = Buffer.alloc(bytes);
      GROUP.copy(f, 0);
      src.copy(f, 6);
      f.writeUInt16BE(0x8940, 12);
      f.writeUInt16BE(0x1001, 14); // ECP v1 request, subtype VDP
      f.writeUInt16BE(seq & 0xffff, 16);
      if (bytes >= 22) f.writeUInt32BE(seq, 18);
      return f;
    };
    const total = Math.round(rate * seconds);
    let sent = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
        if (due > sent) {
          const batch: Buffer[] = [];
          for (; sent < due; sent++) batch.push(makeFrame(sent));
          link.send(batch);
        }
        if (sent >= total) resolve();
        else setTimeout(tick, 1);
      };
      tick();
    });
    const txSeconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    await new Promise((r) => setTimeout(r, 500)); // let the receiver drain
    child.send('stop');
    const rx = await reportP;
    const txStats = link.stats();
    await link.close();
    console.log(
      JSON.stringify({
        rateTarget: rate,
        seconds,
        frameBytes: bytes,
        sent: txStats.txFrames,
        received: rx.received,
        lost: txStats.txFrames - rx.received,
        outOfOrder: rx.outOfOrder,
        rxDroppedKernel: rx.rxDroppedKernel,
        txErrors: txStats.txErrors,
        txRate: Math.round(txStats.txFrames / txSeconds),
        rxRate: Math.round(rx.received / txSeconds),
        rxBatches: rx.batches,
        framesPerBatch: Math.round((rx.received / Math.max(1, rx.batches)) * 10) / 10,
        senderCpuMs: Math.round((cpu.user + cpu.system) / 1000),
        receiverCpuMs: rx.cpuMs,
      }),
    );
  } finally {
    pair.destroy();
  }
}

if (process.argv[2] === '--receiver') {
  await receiver(process.argv[3]!, process.argv[4]!);
} else {
  await sender();
}
