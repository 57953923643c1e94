/**
 * The nNVE daemon in a process of its own for the flood test: its port is a raw socket in a
 * network namespace, its API on 127.0.0.1 of the root namespace (so the test reaches it).
 * Argument: JSON { netns, ifname, stateDir, keyDir, logFile, quotas?, plain? }. `plain`: one
 * ordinary raw socket for the port (no queue of its own for keyed stations), for comparison
 * in bench/flood.ts. Tells its parent
 * { ready, api } over IPC; answers 'mem' with process.memoryUsage(); 'stop' stops it; SIGHUP
 * reloads the configuration (keys), as `splitnve nnve` does. 'mem' collects garbage first
 * when run with --expose-gc, so heapUsed is what is retained.
 */
import { createLogger } from '../../src/daemon/logger.js';
import { RawLink } from '../../src/link/raw.js';
import { NnveConfigSchema } from '../../src/nnve/config.js';
import { NnveDaemon } from '../../src/nnve/daemon.js';

const o = JSON.parse(process.argv[2]!) as {
  netns: string;
  ifname: string;
  stateDir: string;
  keyDir: string;
  logFile: string;
  quotas?: Record<string, number>;
  plain?: boolean;
};
const cfg = NnveConfigSchema.parse({
  ports: [{ name: o.ifname }],
  stateDir: o.stateDir,
  api: '127.0.0.1:0',
  profile: 'splitnve',
  vlanPool: '100-999',
  evb: { r: 3, rte: 8, rwd: 14, rka: 16 },
  auth: { mode: 'require', keyDir: o.keyDir },
  ...(o.quotas ? { quotas: o.quotas } : {}),
});
const log = createLogger({ name: 'nnve', level: 'info', destination: o.logFile });
// Raw ports opened by the daemon itself (keyed stations get their own kernel queue).
const d = await NnveDaemon.start(cfg, {
  log,
  ...(o.plain
    ? { openLink: (p) => new RawLink(p.name, { netns: o.netns, allowDown: true }) }
    : { netns: o.netns }),
});
process.on('SIGHUP', () => d.reload(cfg));
let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void d.stop().finally(() => process.exit(0));
};
process.on('message', (m) => {
  if (m === 'stop') stop();
  else if (m === 'mem') {
    // Retained memory: collect first (the parent forks us with --expose-gc).
    (globalThis as { gc?: () => void }).gc?.();
    process.send!({ mem: process.memoryUsage() });
  }
});
process.on('disconnect', stop);
process.on('SIGTERM', stop);
process.send!({ ready: true, api: (d.api.server.address() as { port: number }).port });
