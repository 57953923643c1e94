/**
 * Runs inside a network namespace: forwards connections on a unix socket (a filesystem path,
 * reachable from every namespace) to HOST:PORT in this namespace. The benchmark uses it to reach
 * a daemon's HTTP API on 127.0.0.1 inside the daemon's namespace.
 *
 *   node dist/bench/lib/uds-proxy.js /path/api.sock 127.0.0.1:8740
 */
import { createConnection, createServer } from 'node:net';
import { rmSync } from 'node:fs';

const [sockPath, target] = process.argv.slice(2);
if (!sockPath || !target) {
  console.error('usage: uds-proxy SOCKET HOST:PORT');
  process.exit(2);
}
const i = target.lastIndexOf(':');
const host = target.slice(0, i);
const port = Number(target.slice(i + 1));
rmSync(sockPath, { force: true });
const server = createServer((client) => {
  const upstream = createConnection({ host, port });
  client.pipe(upstream);
  upstream.pipe(client);
  const end = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', end);
  upstream.on('error', end);
  client.on('close', end);
  upstream.on('close', end);
});
server.listen(sockPath, () => console.log(`listening on ${sockPath} -> ${target}`));
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    server.close();
    rmSync(sockPath, { force: true });
    process.exit(0);
  });
}
