/** The raw link benchmark (bench/rawlink.ts) as a child process: frames/s and drops at 50k/s. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sizes } from '../lib/config.js';

const RAWLINK_JS = join(fileURLToPath(import.meta.url), '..', '..', 'rawlink.js');

export interface RawlinkResult {
  rateTarget: number;
  seconds: number;
  sent: number;
  received: number;
  lost: number;
  rxDroppedKernel: number;
  txErrors: number;
  txRate: number;
  rxRate: number;
  framesPerBatch: number;
  senderCpuMs: number;
  receiverCpuMs: number;
}

export function runRawlink(sizes: Sizes, rate = 50_000): Promise<RawlinkResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [RAWLINK_JS, '--rate', String(rate), '--seconds', String(sizes.rawlinkSeconds)],
      { timeout: 60_000 + sizes.rawlinkSeconds * 1000 },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`rawlink benchmark failed: ${err.message}\n${stderr}`));
          return;
        }
        try {
          const line = stdout.trim().split('\n').pop() ?? '';
          resolve(JSON.parse(line) as RawlinkResult);
        } catch (e) {
          reject(
            new Error(`rawlink benchmark printed no JSON: ${(e as Error).message}\n${stdout}`),
          );
        }
      },
    );
  });
}
