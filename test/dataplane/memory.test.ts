import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { DataPlaneOp, DataPlaneState } from '../../src/dataplane/dataplane.js';
import { MemoryDataPlane } from '../../src/dataplane/memory.js';
import { normalizeIp, normalizeMac } from '../../src/dataplane/state.js';
import { arbOps } from './arbitrary.js';

async function started(): Promise<MemoryDataPlane> {
  const dp = new MemoryDataPlane();
  await dp.start();
  return dp;
}

const EMPTY: DataPlaneState = { vaps: [], locals: [], remotes: [], floods: [] };

/** Reference semantics: last write per key wins, deletes remove, empty flood list = none. */
function reference(ops: readonly DataPlaneOp[]): DataPlaneState {
  const vaps = new Map<string, unknown>();
  const locals = new Map<string, unknown>();
  const remotes = new Map<string, unknown>();
  const floods = new Map<number, unknown>();
  const ipList = (l: readonly string[]) =>
    [...new Set(l.map((ip) => normalizeIp(ip)))].sort((a, b) =>
      a.includes(':') === b.includes(':') ? (a < b ? -1 : 1) : a.includes(':') ? 1 : -1,
    );
  for (const op of ops) {
    if (op.op === 'vap-set') vaps.set(`${op.vap.port}|${op.vap.vlan}`, { ...op.vap });
    if (op.op === 'vap-del') vaps.delete(`${op.port}|${op.vlan}`);
    if (op.op === 'local-set') {
      const mac = normalizeMac(op.local.mac);
      locals.set(`${op.local.port}|${op.local.vlan}|${mac}`, {
        ...op.local,
        mac,
        ips: ipList(op.local.ips),
      });
    }
    if (op.op === 'local-del') locals.delete(`${op.port}|${op.vlan}|${normalizeMac(op.mac)}`);
    if (op.op === 'remote-set') {
      const mac = normalizeMac(op.remote.mac);
      remotes.set(`${op.remote.vni}|${mac}`, { ...op.remote, mac });
    }
    if (op.op === 'remote-del') remotes.delete(`${op.vni}|${normalizeMac(op.mac)}`);
    if (op.op === 'flood-set') {
      const vteps = ipList(op.flood.vteps);
      if (vteps.length > 0) floods.set(op.flood.vni, { vni: op.flood.vni, vteps });
      else floods.delete(op.flood.vni);
    }
  }
  const by = <T>(m: Map<string | number, T>) =>
    [...m.entries()].sort(([a], [b]) => cmpKey(a, b)).map(([, v]) => v);
  return {
    vaps: by(vaps),
    locals: by(locals),
    remotes: by(remotes),
    floods: by(floods),
  } as DataPlaneState;
}

function cmpKey(a: string | number, b: string | number): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const pa = String(a).split('|');
  const pb = String(b).split('|');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const nx = Number(x);
    const ny = Number(y);
    const c = !isNaN(nx) && !isNaN(ny) ? nx - ny : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return c;
  }
  return 0;
}

describe('MemoryDataPlane', () => {
  test('stores what it is told, in normal form', async () => {
    const dp = await started();
    await dp.apply([
      { op: 'vap-set', vap: { port: 'p1', vlan: 10, vni: 5000 } },
      {
        op: 'local-set',
        local: {
          port: 'p1',
          vlan: 10,
          vni: 5000,
          mac: '02:00:00:00:0A:01',
          ips: ['2001:0db8::0001', '192.0.2.11', '192.0.2.11'],
          active: true,
        },
      },
      { op: 'remote-set', remote: { vni: 5000, mac: '2-0-0-0-b-1', vtep: '198.18.0.2' } },
      { op: 'flood-set', flood: { vni: 5000, vteps: ['198.18.0.3', '198.18.0.2'] } },
    ]);
    assert.deepEqual(await dp.dump(), {
      vaps: [{ port: 'p1', vlan: 10, vni: 5000 }],
      locals: [
        {
          port: 'p1',
          vlan: 10,
          vni: 5000,
          mac: '02:00:00:00:0a:01',
          ips: ['192.0.2.11', '2001:db8::1'],
          active: true,
        },
      ],
      remotes: [{ vni: 5000, mac: '02:00:00:00:0b:01', vtep: '198.18.0.2' }],
      floods: [{ vni: 5000, vteps: ['198.18.0.2', '198.18.0.3'] }],
    });
  });

  test('operations are idempotent; deleting what is absent is a no-op', async () => {
    const dp = await started();
    const op: DataPlaneOp = { op: 'vap-set', vap: { port: 'p1', vlan: 10, vni: 5000 } };
    await dp.apply([op]);
    await dp.apply([op, op]);
    assert.equal(dp.changes, 1);
    await dp.apply([
      { op: 'vap-del', port: 'p9', vlan: 10 },
      { op: 'local-del', port: 'p1', vlan: 10, mac: '02:00:00:00:0a:01' },
      { op: 'remote-del', vni: 1, mac: '02:00:00:00:0a:01' },
      { op: 'flood-set', flood: { vni: 1, vteps: [] } },
    ]);
    assert.equal(dp.changes, 1);
  });

  test('an invalid op rejects the whole call and changes nothing', async () => {
    const dp = await started();
    const bad: DataPlaneOp[] = [
      { op: 'vap-set', vap: { port: 'p1', vlan: 10, vni: 5000 } },
      { op: 'vap-set', vap: { port: 'p1', vlan: 0, vni: 5000 } },
    ];
    await assert.rejects(dp.apply(bad), /vlan 0: must be an integer VLAN id 1\.\.4094/);
    for (const [op, re] of [
      [{ op: 'vap-set', vap: { port: '', vlan: 1, vni: 1 } }, /port ""/],
      [{ op: 'vap-set', vap: { port: 'p', vlan: 1, vni: 2 ** 24 } }, /vni 16777216/],
      [
        { op: 'remote-set', remote: { vni: 1, mac: 'ff:ff:ff:ff:ff:ff', vtep: '1.2.3.4' } },
        /group/,
      ],
      [
        { op: 'remote-set', remote: { vni: 1, mac: '00:00:00:00:00:00', vtep: '1.2.3.4' } },
        /all-zero/,
      ],
      [
        { op: 'remote-set', remote: { vni: 1, mac: '02:00:00:00:00:01', vtep: '1.2.3' } },
        /vtep "1\.2\.3"/,
      ],
      [
        { op: 'flood-set', flood: { vni: 1, vteps: ['10.0.0.0/8'] } },
        /vteps entry "10\.0\.0\.0\/8"/,
      ],
      [{ op: 'nope' }, /unknown operation/],
    ] as [DataPlaneOp, RegExp][]) {
      await assert.rejects(dp.apply([op]), re);
    }
    assert.deepEqual(await dp.dump(), EMPTY);
  });

  test('reconcile replaces the state and rejects duplicate keys', async () => {
    const dp = await started();
    await dp.apply([{ op: 'vap-set', vap: { port: 'p1', vlan: 10, vni: 5000 } }]);
    const s: DataPlaneState = { ...EMPTY, vaps: [{ port: 'p2', vlan: 20, vni: 6000 }] };
    await dp.reconcile(s);
    assert.deepEqual(await dp.dump(), s);
    await assert.rejects(
      dp.reconcile({ ...s, vaps: [...s.vaps, { ...s.vaps[0]!, vni: 1 }] }),
      /duplicate entry for vap p2\|20/,
    );
    assert.deepEqual(await dp.dump(), s);
  });

  test('closed: apply and reconcile reject', async () => {
    const dp = await started();
    await dp.close();
    await assert.rejects(dp.apply([]), /closed/);
    await assert.rejects(dp.reconcile(EMPTY), /closed/);
  });

  test('property: random op sequences end in the reference state; dump then reconcile is a no-op', async () => {
    await fc.assert(
      fc.asyncProperty(arbOps, arbOps, async (ops1, ops2) => {
        const dp = await started();
        await dp.apply(ops1);
        for (const op of ops2) await dp.apply([op]);
        const dumped = await dp.dump();
        assert.deepEqual(dumped, reference([...ops1, ...ops2]));
        const changes = dp.changes;
        await dp.reconcile(dumped);
        await dp.apply([]);
        assert.deepEqual(await dp.dump(), dumped);
        // re-applying the set ops of the dump changes nothing
        await dp.apply([
          ...dumped.vaps.map((vap): DataPlaneOp => ({ op: 'vap-set', vap })),
          ...dumped.locals.map((local): DataPlaneOp => ({ op: 'local-set', local })),
          ...dumped.remotes.map((remote): DataPlaneOp => ({ op: 'remote-set', remote })),
          ...dumped.floods.map((flood): DataPlaneOp => ({ op: 'flood-set', flood })),
        ]);
        assert.equal(dp.changes, changes);
      }),
      { numRuns: 200 },
    );
  });
});
