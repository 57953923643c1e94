/**
 * The tNVE's state store failing for real (a full tmpfs under its state directory): calls that
 * would add state it must re-assert after a restart are refused (503); stops still work; once
 * the store can be written, everything (the stop included) is in it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiCall, ApiCallError } from '../../src/tnve/client.js';
import { TnveStore } from '../../src/tnve/store.js';
import { apiPort, rig, vm } from '../nnve/fixture.js';
import { smallDisk, until } from './tmpfs.js';

const VNI = 5000;
const iface = (n: number) => ({
  vsiId: `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`,
  vni: VNI,
  macs: [`52:54:00:00:00:${n.toString(16).padStart(2, '0')}`],
});

async function failure(p: Promise<unknown>): Promise<ApiCallError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  assert.ok(e instanceof ApiCallError, `expected an API error, got ${String(e)}`);
  return e;
}

test('tNVE on a full disk: starts and associations refused (503), stops work, all written once it can be', async (t) => {
  const disk = smallDisk('snst-');
  const r = await rig(t, { tnve: { stateDir: disk.dir } });
  t.after(async () => {
    await r.close();
    disk.remove();
  });
  const api = `127.0.0.1:${apiPort(r.tnve)}`;
  await apiCall(api, 'PUT', '/v1/vms/a', { interfaces: [iface(1)] });
  await apiCall(api, 'POST', '/v1/vms/a/start', {});
  await apiCall(api, 'PUT', '/v1/vms/b', { interfaces: [iface(2)] });

  disk.fill();
  // The first write that fails is that of the next step: a pause changes the VM record.
  await apiCall(api, 'POST', '/v1/vms/a/pause', {});
  const h = await apiCall<{ store: { ok: boolean; error?: string } }>(api, 'GET', '/v1/health');
  assert.equal(h.store.ok, false);
  const start = await failure(apiCall(api, 'POST', '/v1/vms/b/start', {}));
  assert.equal(start.status, 503);
  assert.match(String(start.body.detail), /state store/);
  const define = await failure(apiCall(api, 'PUT', '/v1/vms/c', { interfaces: [iface(3)] }));
  assert.equal(define.status, 503);
  const raw = await r.request('associate', vm(9, VNI));
  assert.equal(raw.status, 503);
  // Stopping a VM needs nothing re-asserted later: it runs.
  const stop = await apiCall<{ state: string }>(api, 'POST', '/v1/vms/a/stop', {});
  assert.equal(stop.state, 'shutoff');
  const vms = await apiCall<{ name: string; state: string }[]>(api, 'GET', '/v1/vms');
  assert.deepEqual(
    vms.map((v) => `${v.name}:${v.state}`),
    ['a:shutoff', 'b:shutoff'],
  );

  disk.free();
  await until('the tNVE store is written again', async () => {
    const x = await apiCall<{ store: { ok: boolean } }>(api, 'GET', '/v1/health');
    return x.store.ok;
  });
  const b = await apiCall<{ state: string }>(api, 'POST', '/v1/vms/b/start', {});
  assert.equal(b.state, 'running');

  await r.tnve.stop();
  const s = new TnveStore(disk.dir);
  try {
    assert.deepEqual(
      s.loadVms().map((v) => `${v.name}:${v.state}`),
      ['a:shutoff', 'b:running'],
      'the stop made while the store failed is in the store',
    );
  } finally {
    s.close();
  }
});
