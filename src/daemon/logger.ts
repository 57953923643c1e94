/** Structured JSON logs (pino). Every state change is one line with a stable `event` name. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(opts: {
  level?: string;
  name: string;
  destination?: number | string;
}): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level ?? 'info',
      base: { pid: process.pid, daemon: opts.name },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: opts.destination ?? 1, sync: true }),
  );
}
