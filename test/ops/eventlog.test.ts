import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import {
  EventLog,
  followLogFile,
  parseLogLines,
  wrapLogger,
  type EventRecord,
} from '../../src/daemon/eventlog.js';
import { http, startOpsPair, STATION_MAC, vsiSpec, waitFor } from '../harness/ops-pair.js';

test('ring buffer: keeps the last records in order, filters by type and prefix, since and limit', () => {
  const log = new EventLog('test', 3);
  for (let i = 1; i <= 5; i++)
    log.publish('info', { event: i % 2 ? 'tsi.state' : 'admin.drain', i });
  assert.deepEqual(
    log.recent().map((r) => r.seq),
    [3, 4, 5],
  );
  assert.deepEqual(
    log.recent({ events: ['admin.*'] }).map((r) => r.i),
    [4],
  );
  assert.deepEqual(
    log.recent({ since: 3, limit: 1 }).map((r) => r.seq),
    [5],
  );
  assert.equal(log.counts.get('tsi.state'), 3);
  const list = [1];
  const seq = log.publish(
    'warn',
    { event: 'x', bytes: new Uint8Array([1, 255]), big: 5n, err: new Error('boom'), list },
    'm',
  );
  list.push(2); // a record is what was logged, not what the object became
  const r = log.recent().at(-1)!;
  assert.equal(r.seq, seq);
  assert.deepEqual(
    [r.bytes, r.big, r.err, r.msg, r.level, r.list],
    ['01ff', '5', 'boom', 'm', 'warn', [1]],
  );
  assert.deepEqual(Object.keys(r), [
    'bytes',
    'big',
    'err',
    'list',
    'seq',
    'time',
    'level',
    'event',
    'msg',
  ]);
});

test('the daemon logger publishes every event line whatever its level, and passes it on', () => {
  const lines: string[] = [];
  const inner = pino({ level: 'warn' }, { write: (s: string) => void lines.push(s) });
  const events = new EventLog('test');
  const log = wrapLogger(inner, events);
  log.info({ event: 'tsi.state', to: 'Activated' }, 'TSI up');
  log.warn({ event: 'vsi.refused', reason: 2 }, 'refused');
  log.info('no event field: not a record');
  log.child({ port: 'swp1' }).error({ event: 'store.error' }, 'disk full');
  assert.deepEqual(
    events.recent().map((r) => [r.event, r.level, r.msg, r.port]),
    [
      ['tsi.state', 'info', 'TSI up', undefined],
      ['vsi.refused', 'warn', 'refused', undefined],
      ['store.error', 'error', 'disk full', 'swp1'],
    ],
  );
  // the inner logger wrote only what its level allows
  assert.deepEqual(
    lines.map((l) => (JSON.parse(l) as { event: string }).event),
    ['vsi.refused', 'store.error'],
  );
  log.level = 'info';
  assert.equal(inner.level, 'info');
  log.info({ event: 'peer.up' }, 'up');
  assert.equal(lines.length, 3);
  assert.equal(events.lastSeq, 4);
});

/** Reads SSE messages from GET path until `count` records came. */
function readStream(
  base: string,
  path: string,
  count: number,
  headers: Record<string, string> = {},
): { records: Promise<EventRecord[]>; close: () => void } {
  const out: EventRecord[] = [];
  let close = (): void => undefined;
  const records = new Promise<EventRecord[]>((resolve, reject) => {
    const req = request(`${base}${path}`, { headers }, (res) => {
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString('utf8');
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n');
          const id = /^id: (\d+)$/m.exec(block)?.[1];
          if (!data) continue;
          const r = JSON.parse(data) as EventRecord;
          assert.equal(String(r.seq), id);
          out.push(r);
          if (out.length === count) {
            resolve(out);
            req.destroy();
          }
        }
      });
    });
    req.on('error', (e) => (out.length >= count ? undefined : reject(e)));
    req.end();
    close = () => req.destroy();
  });
  return { records, close };
}

test('GET /v1/log/stream: buffered records, then live ones; resumes after Last-Event-ID', async (t) => {
  const p = await startOpsPair();
  t.after(() => p.close());
  const s = readStream(p.nUrl, '/v1/log/stream?limit=2&event=tsi.*,admin.*,daemon.*', 3);
  t.after(() => s.close());
  // one buffered record (daemon.started), then what happens
  await waitFor('the stream to be open', () => p.nnve.ops.events.streams === 1);
  const r = await http(p.tUrl, 'POST', '/v1/requests', { mode: 'associate', vsi: vsiSpec(1) });
  assert.equal(r.status, 200);
  await http(p.nUrl, 'POST', '/v1/deassociate', { port: 'swp1', station: STATION_MAC });
  const got = await s.records;
  assert.deepEqual(
    got.map((x) => x.event),
    ['daemon.started', 'tsi.state', 'tsi.state'],
  );
  assert.equal(got[1]!.to, 'Activated');
  assert.equal(got[2]!.cause, 'admin');
  // a client that saw up to the first TSI change resumes after it
  const again = readStream(p.nUrl, '/v1/log/stream?event=tsi.*,admin.*', 2, {
    'last-event-id': String(got[1]!.seq),
  });
  t.after(() => again.close());
  assert.deepEqual(
    (await again.records).map((x) => x.event),
    ['tsi.state', 'admin.deassociate'],
  );
  // stopping the daemon ends open streams (the server does not wait for them)
  const open = readStream(p.nUrl, '/v1/log/stream', 1000);
  await waitFor('a third stream', () => p.nnve.ops.events.streams >= 1);
  const t0 = Date.now();
  await p.nnve.stop();
  assert.ok(Date.now() - t0 < 3000);
  await open.records.catch(() => undefined);
});

test('log files: JSON lines read back as records, followed as they grow and after truncation', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'snve-ops-file-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'd.log');
  const line = (event: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      level: 'info',
      time: '2026-01-01T00:00:00.000Z',
      event,
      msg: event,
      ...extra,
    }) + '\n';
  writeFileSync(
    f,
    line('daemon.started') + 'not json\n' + JSON.stringify({ level: 30, msg: 'no event' }) + '\n',
  );
  assert.deepEqual(
    parseLogLines(line('a') + line('b', { level: 40, time: 0 })).map((r) => [
      r.event,
      r.level,
      r.seq,
      r.time,
    ]),
    [
      ['a', 'info', 1, '2026-01-01T00:00:00.000Z'],
      ['b', 'warn', 2, '1970-01-01T00:00:00.000Z'],
    ],
  );
  const seen: string[] = [];
  const stop = followLogFile(f, (r) => void seen.push(r.event));
  t.after(stop);
  appendFileSync(f, line('tsi.state'));
  appendFileSync(f, line('peer'));
  appendFileSync(f, line('peer.up'));
  await waitFor('three appended records', () => seen.length === 3);
  writeFileSync(f, line('after.rotation'));
  await waitFor('the record after truncation', () => seen.includes('after.rotation'));
  assert.deepEqual(seen, ['tsi.state', 'peer', 'peer.up', 'after.rotation']);
});
