import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { NnveStore } from '../../src/nnve/store.js';
import type { BridgeNodeEvent } from '../../src/node/bridge-node.js';
import type { BridgeVsi } from '../../src/vdp/bridge.js';
import { managerIdFromString, vsiKey } from '../../src/wire/vdp.js';

function vsi(n: number, managerId: Uint8Array, hints: BridgeVsi['hints']): BridgeVsi {
  const id = new Uint8Array(16).fill(n);
  return {
    key: vsiKey(5, id),
    vsiId: `id-${n}`,
    managerId,
    typeId: 7,
    typeVersion: 1,
    idFormat: 5,
    id,
    filterFormat: 4,
    entries: [{ groupId: 5000 + n, mac: `52:54:00:00:00:0${n}`, ps: 0, pcp: n, vid: 300 + n }],
    state: n === 1 ? 'associated' : 'pre-associated-rr',
    hints,
    orgTlvs: [],
    since: 123,
  };
}

test('the nNVE store reloads every TSI as it was committed (ids, Manager IDs, filters, hints)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'snve-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const mgr = managerIdFromString('nvemgr1');
  const saved = [vsi(1, mgr, { m: true, s: false }), vsi(2, mgr, {}), vsi(3, mgr, { s: true })];
  const store = new NnveStore(dir);
  const events: BridgeNodeEvent[] = saved.map((v) => ({
    type: 'tsi',
    port: 'swp1',
    station: '02:00:00:00:aa:01',
    key: v.key,
    vsiId: v.vsiId,
    from: 'init',
    to: v.state,
    cause: 'request',
    vsi: v,
  }));
  store.apply(events, () => []);
  // VSI 3 leaves again: it must not come back.
  store.apply(
    [{ ...(events[2] as Extract<BridgeNodeEvent, { type: 'tsi' }>), to: 'init' }],
    () => [],
  );
  store.close();

  const again = new NnveStore(dir);
  const loaded = again.loadTsis();
  again.close();
  assert.equal(loaded.length, 2);
  for (const [i, l] of loaded.sort((a, b) => a.vsi.vsiId.localeCompare(b.vsi.vsiId)).entries()) {
    assert.equal(l.port, 'swp1');
    assert.equal(l.station, '02:00:00:00:aa:01');
    assert.deepEqual({ ...l.vsi, since: 123 }, saved[i]);
  }
  // Equal Manager IDs are one object after the reload.
  assert.equal(loaded[0]!.vsi.managerId, loaded[1]!.vsi.managerId);
});
