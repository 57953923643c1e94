/** Sizes of the full and the smoke run, and the EVB timers every comparison uses on both sides. */
import type { EvbValues } from '../../src/evb/agent.js';
import type { EvbParams } from '../../test/harness/lldpad.js';

/**
 * ECP/VDP timers of every comparison, on both sides: R=3, ACK timer 10µs·2^10 = 10.2 ms,
 * resource wait 10µs·2^20 = 10.5 s, keep-alive 10µs·2^20 = 10.5 s. RTE 10 is the smallest ACK
 * timer at which lldpad <-> lldpad loses (almost) no VSIs of a bulk (test/harness/README.md).
 */
export const EVB: EvbValues = { r: 3, rte: 10, rwd: 20, rka: 20 };
export const LLDPAD_EVB: EvbParams = { retries: 3, rte: 10, rwd: 20, rka: 20 };
/** lldpad log level for the benchmark (6 = info, as our daemon logs). */
export const LLDPAD_VERBOSITY = 6;

export interface Sizes {
  /** P1: VSIs associated by one station (splitnve) / by lldpad's station through vdptool. */
  readonly p1Vsis: number;
  readonly p1LldpadVsis: number;
  /** P1 many stations, P3, P4: stations x VSIs each. */
  readonly stations: number;
  readonly vsisPerStation: number;
  /** Stations whose requests are in flight at once while setting up (closed loop). */
  readonly concurrency: number;
  /** P2: request rate, duration and number of stations for splitnve. */
  readonly p2Rate: number;
  readonly p2Seconds: number;
  readonly p2Stations: number;
  /** P2 against lldpad's bridge (and ours in the same conditions): one station at this rate. */
  readonly p2LldpadRate: number;
  readonly p2LldpadSeconds: number;
  /** P3: keep-alive exponent and the CPU measurement window (rounded to whole keep-alive periods). */
  readonly p3Rka: number;
  readonly p3WindowS: number;
  readonly rawlinkSeconds: number;
  /** P5: live migrations of one VM back and forth (rounded up to an even count). */
  readonly p5Migrations: number;
}

export const FULL: Sizes = {
  p1Vsis: 10_000,
  p1LldpadVsis: 300,
  stations: 1000,
  vsisPerStation: 100,
  concurrency: 4,
  p2Rate: 1000,
  p2Seconds: 10,
  p2Stations: 10,
  p2LldpadRate: 50,
  p2LldpadSeconds: 10,
  p3Rka: 20,
  p3WindowS: 30,
  rawlinkSeconds: 3,
  p5Migrations: 10,
};

export const SMOKE: Sizes = {
  p1Vsis: 500,
  p1LldpadVsis: 20,
  stations: 20,
  vsisPerStation: 10,
  concurrency: 4,
  p2Rate: 1000,
  p2Seconds: 1,
  p2Stations: 10,
  p2LldpadRate: 50,
  p2LldpadSeconds: 1,
  p3Rka: 16,
  p3WindowS: 2,
  rawlinkSeconds: 1,
  p5Migrations: 2,
};

export const GOALS = {
  p1Ratio: 25,
  p2P99Ms: 1,
  p3RssMb: 300,
  p4RecoveryS: 5,
  p5LostPackets: 1,
} as const;

export interface Goal {
  readonly text: string;
  readonly met: boolean | null;
}
