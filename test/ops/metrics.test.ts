import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseMetrics } from '../../src/cli/ctl-ops.js';
import { seededRandom } from '../../src/core/random.js';
import { createLogger } from '../../src/daemon/logger.js';
import { DaemonMetrics } from '../../src/daemon/metrics.js';
import { BridgeNode, type BridgeNodeOutput } from '../../src/node/bridge-node.js';
import { StationNode, type StationNodeOutput } from '../../src/node/station-node.js';
import { ECHO_POLICY } from '../../src/vdp/bridge.js';
import { specFromJson } from '../../src/vdp/spec-json.js';
import type { EventRecord } from '../../src/daemon/eventlog.js';
import { writeKey } from '../harness/keys.js';
import {
  http,
  startOpsPair,
  STATION_MAC,
  vsiSpec,
  waitFor,
  type OpsPair,
} from '../harness/ops-pair.js';

type Sample = ReturnType<typeof parseMetrics>[number];

async function scrape(base: string): Promise<Sample[]> {
  const r = await http(base, 'GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.type, /^text\/plain/);
  return parseMetrics(r.text);
}

/** Sum of a metric's samples whose labels include `labels`. */
function sum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}

async function log(base: string, event: string): Promise<EventRecord[]> {
  return (await http(base, 'GET', `/v1/log?event=${event}&limit=100000`)).body as EventRecord[];
}

test('metrics follow the events: TSIs, reason codes sent and received, keep-alive expiry, ECP failures, wire counters, latency', async (t) => {
  const p: OpsPair = await startOpsPair({ nnve: { vlanPool: '300-301' } });
  t.after(() => p.close());

  // three VNs, two tags: the third is refused with reason 2 (insufficient resources)
  for (const [n, vni] of [
    [1, 5000],
    [2, 5001],
  ]) {
    const r = await http(p.tUrl, 'POST', '/v1/requests', {
      mode: 'associate',
      vsi: vsiSpec(n!, vni),
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  const refused = await http(p.tUrl, 'POST', '/v1/requests', {
    mode: 'associate',
    vsi: vsiSpec(3, 7777),
  });
  assert.equal(refused.status, 409);
  assert.equal((refused.body as { reason: number }).reason, 2);

  let n = await scrape(p.nUrl);
  let tn = await scrape(p.tUrl);
  assert.equal(sum(n, 'splitnve_tsis', { state: 'Activated' }), 2);
  assert.equal(sum(n, 'splitnve_vaps', { state: 'connected' }), 2);
  assert.equal(sum(n, 'splitnve_vlan_pool_size', { segment: 'swp1' }), 2);
  assert.equal(sum(n, 'splitnve_vlan_pool_used', { segment: 'swp1' }), 2);
  assert.equal(sum(n, 'splitnve_tsi_transitions_total', { from: 'Init', to: 'Activated' }), 2);
  // one source of truth: the counters equal the event log's records of the same events
  const sent = sum(n, 'splitnve_vdp_reasons_total', { direction: 'sent', reason: '2' });
  assert.ok(sent >= 1);
  assert.equal(sent, (await log(p.nUrl, 'vsi.refused')).filter((r) => r.reason === 2).length);
  assert.equal(
    sum(n, 'splitnve_events_total', { event: 'tsi.state' }),
    (await log(p.nUrl, 'tsi.state')).length,
  );
  assert.equal(sum(tn, 'splitnve_vdp_reasons_total', { direction: 'received', reason: '2' }), 1);
  assert.equal(sum(tn, 'splitnve_vdp_requests_total', { mode: 'associate', result: 'ok' }), 2);
  assert.equal(sum(tn, 'splitnve_vdp_requests_total', { mode: 'associate', result: 'refused' }), 1);
  assert.equal(sum(tn, 'splitnve_tsis', { state: 'Activated' }), 2);
  // latency: every answered request was timed on both sides
  assert.ok(
    sum(n, 'splitnve_vdp_request_duration_seconds_count', { role: 'bridge', mode: 'associate' }) >=
      3,
  );
  assert.ok(
    sum(tn, 'splitnve_vdp_request_duration_seconds_count', {
      role: 'station',
      mode: 'associate',
    }) >= 3,
  );
  const bridgeS = sum(n, 'splitnve_vdp_request_duration_seconds_sum', { role: 'bridge' });
  const stationS = sum(tn, 'splitnve_vdp_request_duration_seconds_sum', { role: 'station' });
  assert.ok(bridgeS > 0 && stationS > 0);
  // PDUs by type, and both ends agree on what crossed the cable once nothing is in flight
  await waitFor('both ends to count the same ECP requests and TLVs', async () => {
    n = await scrape(p.nUrl);
    tn = await scrape(p.tUrl);
    const agree = (a: Sample[], b: Sample[], name: string, labels: Record<string, string>) =>
      sum(a, name, { ...labels, direction: 'tx' }) === sum(b, name, { ...labels, direction: 'rx' });
    return (
      agree(tn, n, 'splitnve_ecp_pdus_total', { op: 'request' }) &&
      agree(n, tn, 'splitnve_ecp_pdus_total', { op: 'request' }) &&
      agree(n, tn, 'splitnve_frames_total', { protocol: 'lldp' }) &&
      agree(tn, n, 'splitnve_vdp_tlvs_total', { tlv: 'associate', kind: 'request' })
    );
  });
  assert.ok(
    sum(n, 'splitnve_vdp_tlvs_total', { direction: 'tx', tlv: 'associate', kind: 'response' }) >= 3,
  );
  assert.ok(sum(n, 'nodejs_eventloop_lag_seconds') >= 0);
  assert.ok(n.some((s) => s.name === 'nodejs_eventloop_lag_p99_seconds'));

  // Cut the cable: the bridge expires both VSIs (keep-alive), the station's ECP gives up.
  p.hv.setUp(false);
  await waitFor(
    'keep-alive expiries',
    async () => sum(await scrape(p.nUrl), 'splitnve_keepalive_expiries_total') === 2,
  );
  n = await scrape(p.nUrl);
  assert.equal(sum(n, 'splitnve_tsis'), 0);
  assert.equal(sum(n, 'splitnve_tsi_transitions_total', { cause: 'keepalive-expired' }), 2);
  assert.equal(
    (await log(p.nUrl, 'tsi.state')).filter((r) => r.cause === 'keepalive-expired').length,
    2,
  );
  await waitFor('ECP failures on the station', async () => {
    tn = await scrape(p.tUrl);
    return sum(tn, 'splitnve_ecp_failures_total', { port: 'eth0' }) >= 1;
  });
  assert.equal(sum(tn, 'splitnve_ecp_failures_total'), (await log(p.tUrl, 'ecp.failed')).length);
  assert.ok(sum(tn, 'splitnve_ecp_retransmissions_total', { direction: 'tx' }) >= 3);
});

test('the event log and metrics do not depend on the log level', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'snve-ops-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'nnve.log');
  const p = await startOpsPair({
    nnveLog: createLogger({ name: 'nnve', level: 'warn', destination: file }),
  });
  t.after(() => p.close());
  const r = await http(p.tUrl, 'POST', '/v1/requests', { mode: 'associate', vsi: vsiSpec(1) });
  assert.equal(r.status, 200);
  const recs = await log(p.nUrl, 'tsi.state');
  assert.equal(recs.length, 1);
  assert.equal(recs[0]!.to, 'Activated');
  assert.equal(recs[0]!.level, 'info');
  assert.equal(sum(await scrape(p.nUrl), 'splitnve_tsi_transitions_total'), 1);
  // the file got only warnings and above
  await http(p.nUrl, 'POST', '/v1/deassociate', { port: 'swp1', station: 'nope' });
  assert.doesNotMatch(readFileSync(file, 'utf8'), /tsi\.state/);
  // raising the level through the daemon (SIGHUP path) changes what is written, not the event log
  p.nnve.reload({ ...p.nnveCfg, logLevel: 'debug' });
  assert.equal(p.nnve.log.level, 'debug');
  await http(p.tUrl, 'POST', '/v1/requests', { mode: 'de-associate', vsi: vsiSpec(1) });
  await waitFor('the de-association in the file', () =>
    /"event":"tsi.state"/.test(readFileSync(file, 'utf8')),
  );
  assert.equal((await log(p.nUrl, 'tsi.state')).length, 2);
  assert.equal((await log(p.nUrl, 'config.reloaded')).length, 1);
});

test('authentication failures are counted by reason from the node events', () => {
  // A bridge that requires signed PDUs and a station that signs nothing, as sans-IO nodes.
  const key = new Uint8Array(32).fill(7);
  const bridge = new BridgeNode({
    ports: [
      { name: 'p1', mac: '02:00:00:00:bb:01', evb: { values: { r: 3, rte: 8, rwd: 14, rka: 14 } } },
    ],
    profile: 'splitnve',
    policy: ECHO_POLICY,
    random: seededRandom(1),
    auth: {
      mode: () => 'require',
      signer: () => ({ keyId: 1, key, sequence: 1n }),
      key: () => key,
      lastAccepted: () => undefined,
      accepted: () => undefined,
    },
  });
  const station = new StationNode({
    uplinks: [
      { name: 'u1', mac: '02:00:00:00:aa:01', evb: { values: { r: 3, rte: 8, rwd: 14, rka: 14 } } },
    ],
    profile: 'splitnve',
    random: seededRandom(2),
  });
  const m = new DaemonMetrics('nnve', 'bridge', { defaultMetrics: false });
  let now = 0;
  let toBridge: Uint8Array[] = [];
  let toStation: Uint8Array[] = [];
  const fromB = (o: BridgeNodeOutput[]): void => {
    for (const x of o) {
      if (x.type === 'transmit') toStation.push(x.frame);
      else m.bridgeEvent(x.event);
    }
  };
  const fromS = (o: StationNodeOutput[]): void => {
    for (const x of o) if (x.type === 'transmit') toBridge.push(x.frame);
  };
  fromB(bridge.start(now));
  fromS(station.start(now));
  fromS(
    station.request(
      'u1',
      { mode: 3, spec: specFromJson(vsiSpec(1)), hints: {}, requestId: 'r1' },
      now,
    ),
  );
  for (let i = 0; i < 50; i++) {
    const b = toBridge;
    const s = toStation;
    toBridge = [];
    toStation = [];
    for (const f of b) {
      m.tap.frame('rx', 'p1', f);
      fromB(bridge.handleFrame('p1', f, now));
    }
    for (const f of s) fromS(station.handleFrame('u1', f, now));
    now += 1000;
    fromB(bridge.handleTimeout(now));
    fromS(station.handleTimeout(now));
  }
  return m.text().then((text) => {
    const samples = parseMetrics(text);
    assert.ok(
      sum(samples, 'splitnve_auth_failures_total', { port: 'p1', reason: 'unsigned' }) >= 1,
    );
    assert.equal(sum(samples, 'splitnve_auth_failures_total', { reason: 'bad-hmac' }), 0);
    assert.equal(sum(samples, 'splitnve_tsi_transitions_total'), 0);
    assert.ok(sum(samples, 'splitnve_vdp_tlvs_total', { direction: 'rx', tlv: 'associate' }) >= 1);
  });
});

test('authentication failures between the daemons: counted by reason, equal to /v1/auth, every one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'snve-ops-keys-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bridgeKey = writeKey(dir, 'bridge.key');
  const stationKey = writeKey(dir, 'station.key'); // another key: every PDU fails its HMAC
  const p = await startOpsPair({
    nnve: {
      auth: { mode: 'require', keys: [{ station: STATION_MAC, keyId: 1, keyFile: bridgeKey }] },
    },
    tnve: {
      auth: { mode: 'require', keys: [{ keyId: 1, keyFile: stationKey }] },
      requestTimeoutMs: 1500,
    },
  });
  t.after(() => p.close());
  const r = await http(p.tUrl, 'POST', '/v1/requests', { mode: 'associate', vsi: vsiSpec(1) });
  assert.notEqual(r.status, 200);
  const n = await scrape(p.nUrl);
  const failed = sum(n, 'splitnve_auth_failures_total', { port: 'swp1', reason: 'bad-hmac' });
  assert.ok(failed >= 1, `bad-hmac failures: ${failed}`);
  assert.equal(sum(n, 'splitnve_tsis'), 0);
  const view = (await http(p.nUrl, 'GET', '/v1/auth')).body as { totals: Record<string, number> };
  assert.equal(view.totals['bad-hmac'], failed);
  const { NNVE_ROUTE_DOCS } = await import('../../src/nnve/ops.js');
  assert.ok(NNVE_ROUTE_DOCS['GET /v1/auth']!.response!.safeParse(view).success);
  assert.ok((await log(p.nUrl, 'auth.failed')).length >= 1);
});
