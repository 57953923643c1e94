/**
 * The TLS link on its own (loopback TCP, real TLS 1.3 with certificates made by openssl):
 * frames both ways with the right certificates; refused without a certificate, with one from
 * another CA, or with an identity that maps to no station; spoofed source MACs dropped; a
 * client refuses a server it cannot verify and retries with backoff; bad framing closes the
 * connection; a client reconnects after the server comes back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as tls from 'node:tls';
import {
  readTlsCredentials,
  TlsClientLink,
  TlsServerLink,
  type TlsCredentials,
  type TlsLinkEvent,
} from '../../src/link/tls.js';
import { Pki } from '../harness/pki.js';

const SERVER_MAC = '02:00:00:00:bb:01';
const HV1 = '02:00:00:00:aa:01';
const HV2 = '02:00:00:00:aa:02';

let dir: string;
let ca: Pki;
let rogue: Pki;
let serverCreds: TlsCredentials;
let hv1: TlsCredentials;
let hv2: TlsCredentials;
let stranger: TlsCredentials;
let rogueHv1: TlsCredentials;
let rogueServer: TlsCredentials;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sns-tls-'));
  ca = Pki.create(dir, 'ca');
  rogue = Pki.create(dir, 'rogue');
  const creds = (p: Pki, cn: string, caOf: Pki = p): TlsCredentials =>
    readTlsCredentials({ ...p.issue(cn), ca: caOf.ca.cert });
  serverCreds = creds(ca, 'nnve.test');
  hv1 = creds(ca, 'hv1.test');
  hv2 = creds(ca, 'hv2.test');
  stranger = creds(ca, 'stranger.test');
  // Same name as hv1, but signed by another CA (trusting our CA, so only the server refuses).
  rogueHv1 = creds(rogue, 'hv1.test', ca);
  rogueServer = creds(rogue, 'nnve.test', ca);
});

after(() => rmSync(dir, { recursive: true, force: true }));

function frame(dst: string, src: string, tag: number): Uint8Array {
  const f = new Uint8Array(60);
  f.set(
    dst.split(':').map((h) => parseInt(h, 16)),
    0,
  );
  f.set(
    src.split(':').map((h) => parseInt(h, 16)),
    6,
  );
  f[12] = 0x89;
  f[13] = 0x40;
  f[14] = tag;
  return f;
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function server(
  t: { after(fn: () => Promise<void>): void },
  events: TlsLinkEvent[],
  creds = serverCreds,
  port = 0,
): Promise<TlsServerLink> {
  const s = await TlsServerLink.listen({
    name: 'tls',
    mac: SERVER_MAC,
    host: '127.0.0.1',
    port,
    credentials: creds,
    peers: [
      { identity: 'hv1.test', station: HV1 },
      { identity: 'hv2.test', station: HV2 },
    ],
    onEvent: (e) => events.push(e),
  });
  t.after(() => s.close());
  return s;
}

function client(
  t: { after(fn: () => Promise<void>): void },
  port: number,
  creds: TlsCredentials,
  mac = HV1,
  events: TlsLinkEvent[] = [],
  backoff = { initialMs: 50, maxMs: 400 },
): TlsClientLink {
  const c = new TlsClientLink({
    name: 'tls0',
    mac,
    host: '127.0.0.1',
    port,
    credentials: creds,
    serverName: 'nnve.test',
    backoff,
    onEvent: (e) => events.push(e),
  });
  t.after(() => c.close());
  return c;
}

test('right certificates: frames both ways, unicast to the station, group to all', async (t) => {
  const ev: TlsLinkEvent[] = [];
  const s = await server(t, ev);
  const got: Uint8Array[] = [];
  s.onFrames((f) => got.push(...f));
  const c1 = client(t, s.address().port, hv1, HV1);
  const c2 = client(t, s.address().port, hv2, HV2);
  const r1: Uint8Array[] = [];
  const r2: Uint8Array[] = [];
  c1.onFrames((f) => r1.push(...f));
  c2.onFrames((f) => r2.push(...f));
  await until(
    'both connected',
    () => s.connections().length === 2 && c1.status().up && c2.status().up,
  );
  c1.send([frame('01:80:c2:00:00:00', HV1, 1), frame(SERVER_MAC, HV1, 2)]);
  c2.send([frame(SERVER_MAC, HV2, 3)]);
  await until('3 frames at the server', () => got.length === 3);
  assert.deepEqual(got.map((f) => f[14]).sort(), [1, 2, 3]);
  s.send([frame(HV2, SERVER_MAC, 10), frame('01:80:c2:00:00:00', SERVER_MAC, 11)]);
  await until('frames at the clients', () => r1.length === 1 && r2.length === 2);
  assert.deepEqual(
    r1.map((f) => f[14]),
    [11],
  );
  assert.deepEqual(r2.map((f) => f[14]).sort(), [10, 11]);
  assert.deepEqual(
    s
      .connections()
      .map((c) => [c.identity, c.station])
      .sort(),
    [
      ['hv1.test', HV1],
      ['hv2.test', HV2],
    ],
  );
  const conn = ev.filter((e) => e.type === 'connected');
  assert.equal(conn.length, 2);
  // A frame to a station that is not connected counts as a transmit error.
  s.send([frame('02:00:00:00:aa:09', SERVER_MAC, 12)]);
  assert.equal(s.stats().txErrors, 1);
});

test('refused: no client certificate, a certificate of another CA, an identity mapped to no station', async (t) => {
  const ev: TlsLinkEvent[] = [];
  const s = await server(t, ev);
  const got: Uint8Array[] = [];
  s.onFrames((f) => got.push(...f));
  const port = s.address().port;

  // No certificate at all (a plain TLS client that trusts the server).
  const noCert = await new Promise<string>((resolve) => {
    const sock = tls.connect({
      host: '127.0.0.1',
      port,
      ca: serverCreds.ca,
      servername: 'nnve.test',
      minVersion: 'TLSv1.3',
    });
    sock.on('secureConnect', () => sock.write(Buffer.from([0, 60, ...frame(SERVER_MAC, HV1, 1)])));
    sock.on('error', (e) => resolve(e.message));
    sock.on('close', () => resolve('closed'));
  });
  assert.match(noCert, /certificate required|closed|ECONNRESET|alert/i);

  const rogueEv: TlsLinkEvent[] = [];
  const cr = client(t, port, rogueHv1, HV1, rogueEv);
  cr.send([frame(SERVER_MAC, HV1, 1)]);
  const cs = client(t, port, stranger, HV1);
  await until('three refusals', () => s.refused >= 3);
  const reasons = ev
    .filter((e) => e.type === 'refused')
    .map((e) => (e as { reason: string }).reason);
  const all = reasons.join(' | ');
  assert.ok(
    reasons.some((r) => /peer did not return a certificate/.test(r)),
    all,
  );
  assert.ok(
    reasons.some((r) => /client certificate not accepted: UNABLE_TO_VERIFY_LEAF_SIGNATURE/.test(r)),
    all,
  );
  assert.ok(
    reasons.some((r) => /stranger\.test is not mapped to a station/.test(r)),
    all,
  );
  assert.ok(
    ev.every((e) => e.type !== 'refused' || /^127\.0\.0\.1:\d+$/.test(e.remote)),
    'refusals name the remote address',
  );
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(got.length, 0, 'nothing from refused clients reached the port');
  assert.equal(s.connections().length, 0);
  assert.ok(!ev.some((e) => e.type === 'connected'));
  // The refused clients keep retrying with backoff, and keep being refused.
  await until('retries', () => cr.connects >= 2 && cs.connects >= 2);
  assert.ok(rogueEv.some((e) => e.type === 'retry'));
});

test('the client refuses a server it cannot verify (other CA), and retries with growing delays', async (t) => {
  const ev: TlsLinkEvent[] = [];
  const s = await server(t, [], rogueServer);
  const got: Uint8Array[] = [];
  s.onFrames((f) => got.push(...f));
  const c = client(t, s.address().port, hv1, HV1, ev, { initialMs: 20, maxMs: 160 });
  await until('four attempts', () => c.connects >= 4);
  assert.equal(c.status().up, false);
  const disc = ev.filter((e) => e.type === 'disconnected') as { reason: string }[];
  assert.ok(
    disc.some((d) => /self.signed|unable to verify|certificate/i.test(d.reason)),
    JSON.stringify(disc),
  );
  const delays = ev.filter((e) => e.type === 'retry').map((e) => (e as { inMs: number }).inMs);
  // 20, 40, 80, 160, 160... each within ±20 %.
  for (const [i, d] of delays.slice(0, 4).entries()) {
    const base = Math.min(160, 20 * 2 ** i);
    assert.ok(d >= base * 0.8 - 1 && d <= base * 1.2 + 1, `retry ${i}: ${d} ms`);
  }
  c.send([frame(SERVER_MAC, HV1, 1)]);
  assert.equal(got.length, 0);
});

test('a station cannot speak for another: spoofed source MACs are dropped and counted', async (t) => {
  const ev: TlsLinkEvent[] = [];
  const s = await server(t, ev);
  const got: Uint8Array[] = [];
  s.onFrames((f) => got.push(...f));
  const c = client(t, s.address().port, hv1, HV1);
  await until('connected', () => s.connections().length === 1);
  c.send([frame(SERVER_MAC, HV2, 1), frame(SERVER_MAC, HV1, 2), frame(SERVER_MAC, HV2, 3)]);
  await until('the genuine frame', () => got.length === 1);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(
    got.map((f) => f[14]),
    [2],
  );
  assert.equal(s.stats().rxDropped, 2);
  assert.ok(
    ev.some(
      (e) => e.type === 'frame-dropped' && /02:00:00:00:aa:02 is not 02:00:00:00:aa:01/.test(e.why),
    ),
  );
});

test('bad framing closes the connection; the client reconnects when the server comes back', async (t) => {
  const ev: TlsLinkEvent[] = [];
  let s = await server(t, ev);
  const port = s.address().port;
  const cev: TlsLinkEvent[] = [];
  const c = client(t, port, hv1, HV1, cev);
  await until('connected', () => s.connections().length === 1 && c.status().up);
  // Bad framing from the server side towards the client: length 5 is below 14.
  const sock = (s as unknown as { byStation: Map<string, { sock: tls.TLSSocket }> }).byStation.get(
    HV1,
  )!.sock;
  sock.write(Buffer.from([0, 5, 1, 2, 3, 4, 5]));
  await until('client dropped the connection', () =>
    cev.some((e) => e.type === 'frame-dropped' && /length 5 outside 14\.\.1518/.test(e.why)),
  );
  await until('client reconnected', () => c.status().up && s.connections().length === 1);
  // The server goes away and comes back on the same port: the client finds it again.
  await s.close();
  await until('client down', () => !c.status().up);
  s = await server(t, ev, serverCreds, port);
  await until('client up again', () => c.status().up && s.connections().length === 1, 8000);
  const got: Uint8Array[] = [];
  s.onFrames((f) => got.push(...f));
  c.send([frame(SERVER_MAC, HV1, 7)]);
  await until('frame after reconnect', () => got.length === 1);
});

test('readTlsCredentials refuses a private key others can read', async (t) => {
  const p = ca.issue('loose.test');
  const { chmodSync } = await import('node:fs');
  chmodSync(p.key, 0o644);
  t.after(() => chmodSync(p.key, 0o600));
  assert.throws(
    () => readTlsCredentials({ ...p, ca: ca.ca.cert }),
    /TLS key .*loose\.test\.key: mode 644 lets group or others access it/,
  );
});
