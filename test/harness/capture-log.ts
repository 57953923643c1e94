/** A pino logger whose JSON lines are kept in memory, for asserting what a daemon logged. */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from '../../src/daemon/logger.js';

export interface CapturedLog {
  readonly log: Logger;
  readonly lines: Record<string, unknown>[];
  /** Lines whose `event` is `event` (and that match `where`, if given). */
  events(event: string, where?: Record<string, unknown>): Record<string, unknown>[];
}

export function captureLog(name: string, level = 'info'): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  const log = pino({ name, level, base: { daemon: name } }, stream);
  return {
    log,
    lines,
    events: (event, where = {}) =>
      lines.filter((l) => l.event === event && Object.entries(where).every(([k, v]) => l[k] === v)),
  };
}
