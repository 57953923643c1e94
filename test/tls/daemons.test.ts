/**
 * nNVE and tNVE daemons over the L3 transport: the nNVE listens with TLS (`--listen-tls`), the
 * tNVE's uplink is `tls://127.0.0.1:PORT`; both also require PDU authentication. A station with
 * the right certificate associates; one with a certificate of another CA is refused and never
 * gets anything associated; after the nNVE restarts the station reconnects by itself.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TlsServerLink } from '../../src/link/tls.js';
import { loadNnveConfig } from '../../src/nnve/config.js';
import { NnveDaemon } from '../../src/nnve/daemon.js';
import { loadTnveConfig } from '../../src/tnve/config.js';
import { TnveDaemon } from '../../src/tnve/daemon.js';
import { captureLog } from '../harness/capture-log.js';
import { apiPort, FAST_EVB, get, post, vsiBody } from '../harness/daemon-pair.js';
import { writeKey } from '../harness/keys.js';
import { Pki } from '../harness/pki.js';

const HV1 = '02:00:00:00:aa:01';

async function until(
  what: string,
  cond: () => Promise<boolean> | boolean,
  ms = 8000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('associate over TLS between the daemons; a wrong certificate is refused; reconnect after an nNVE restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sns-tlsd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = Pki.create(dir, 'ca');
  const rogue = Pki.create(dir, 'rogue');
  const server = ca.issue('nnve.test');
  const hv1 = ca.issue('hv1.test');
  const fake = rogue.issue('hv1.test');
  const keyDir = join(dir, 'keys');
  mkdirSync(keyDir, { mode: 0o700 });
  const key = randomBytes(32);
  const nKey = writeKey(keyDir, 'nnve-hv1.key', key);
  const sKey = writeKey(keyDir, 'tnve.key', key);

  const nlog = captureLog('nnve');
  const nfile = join(dir, 'nnve.json');
  writeFileSync(
    nfile,
    JSON.stringify({
      stateDir: join(dir, 'nnve'),
      api: '127.0.0.1:0',
      profile: 'splitnve',
      vlanPool: '200-210',
      evb: FAST_EVB,
      auth: { mode: 'require', keys: [{ station: HV1, keyId: 1, keyFile: nKey }] },
      tls: {
        cert: server.cert,
        key: server.key,
        ca: ca.ca.cert,
        mac: '02:00:00:00:bb:01',
        peers: [{ identity: 'hv1.test', station: HV1 }],
      },
    }),
  );
  // As `splitnve nnve --config nnve.json --listen-tls 127.0.0.1:0` would: the TLS port joins.
  const ncfg = loadNnveConfig({ config: nfile, listenTls: '127.0.0.1:0' });
  assert.deepEqual(
    ncfg.ports.map((p) => p.name),
    ['tls'],
  );
  let nnve = await NnveDaemon.start(ncfg, { log: nlog.log });
  t.after(() => nnve.stop());
  const port = (nnve.security.tlsLinks.get('tls') as TlsServerLink).address().port;

  const tnveFor = (name: string, cert: { cert: string; key: string }): string => {
    const f = join(dir, `${name}.json`);
    writeFileSync(
      f,
      JSON.stringify({
        stateDir: join(dir, name),
        api: '127.0.0.1:0',
        profile: 'splitnve',
        evb: FAST_EVB,
        requestTimeoutMs: 2000,
        auth: { mode: 'require', keys: [{ keyId: 1, keyFile: sKey }] },
        tls: {
          cert: cert.cert,
          key: cert.key,
          ca: ca.ca.cert,
          serverName: 'nnve.test',
          mac: HV1,
          backoffInitialMs: 50,
          backoffMaxMs: 500,
        },
      }),
    );
    return f;
  };
  // As `splitnve tnve --config tnve.json --uplink tls://127.0.0.1:PORT`.
  const tcfg = loadTnveConfig({
    config: tnveFor('tnve', hv1),
    uplink: [`tls://127.0.0.1:${port}`],
  });
  assert.equal(tcfg.uplinks[0]!.name, 'tls0');
  const tlog = captureLog('tnve');
  const tnve = await TnveDaemon.start(tcfg, { log: tlog.log });
  t.after(() => tnve.stop());
  await until('TLS up', () => tnve.links.get('tls0')!.status().up);

  const r = await post(apiPort(tnve), '/v1/requests', { mode: 'associate', vsi: vsiBody(1) });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal((r.body.entries as { vid: number }[])[0]!.vid, 200);
  const view = await get<{
    tls: { connections: { identity: string; station: string }[] }[];
    peers: { peer: string; status: string }[];
    totals: Record<string, number>;
  }>(apiPort(nnve), '/v1/auth');
  assert.deepEqual(
    view.tls[0]!.connections.map((c) => [c.identity, c.station]),
    [['hv1.test', HV1]],
  );
  assert.equal(view.peers.find((p) => p.peer === HV1)?.status, 'authenticated');
  assert.ok(nlog.events('tls.connected', { identity: 'hv1.test', station: HV1 }).length >= 1);

  // A station with a certificate for the same name from another CA: refused, nothing happens.
  const rlog = captureLog('rogue');
  const impostor = await TnveDaemon.start(
    loadTnveConfig({ config: tnveFor('rogue', fake), uplink: [`tls://127.0.0.1:${port}`] }),
    { log: rlog.log },
  );
  t.after(() => impostor.stop());
  const bad = await post(apiPort(impostor), '/v1/requests', { mode: 'associate', vsi: vsiBody(9) });
  assert.notEqual(bad.status, 200, JSON.stringify(bad.body));
  await until('refusal logged', () =>
    nlog
      .events('tls.refused')
      .some((l) => /UNABLE_TO_VERIFY_LEAF_SIGNATURE/.test(String(l.reason))),
  );
  const vsis = await get<{ vsi: string }[]>(apiPort(nnve), '/v1/vsis');
  assert.equal(vsis.length, 1);
  await impostor.stop();

  // The nNVE restarts on the same port: the station reconnects by itself and carries on.
  await nnve.stop();
  await until('station sees the link down', () => !tnve.links.get('tls0')!.status().up);
  nnve = await NnveDaemon.start(
    { ...ncfg, api: '127.0.0.1:0', tls: { ...ncfg.tls!, listen: `127.0.0.1:${port}` } },
    { log: nlog.log },
  );
  await until('reconnected', () => tnve.links.get('tls0')!.status().up);
  const r2 = await post(apiPort(tnve), '/v1/requests', { mode: 'associate', vsi: vsiBody(2) });
  assert.equal(r2.status, 200, JSON.stringify(r2.body));
  await until('both VSIs on the restarted nNVE', async () => {
    const v = await get<{ state: string }[]>(apiPort(nnve), '/v1/vsis');
    return v.length === 2 && v.every((x) => x.state === 'Activated');
  });
});
