/** The daemons' clock: monotonic microseconds (the protocol core only ever receives `now`). */
import { performance } from 'node:perf_hooks';

export function monotonicUs(): number {
  return Math.floor(performance.now() * 1000);
}
