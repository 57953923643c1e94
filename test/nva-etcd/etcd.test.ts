// The etcd NVA against a real 3-member etcd 3.4 cluster on loopback: two NVEs see each other's
// entries through watches, lease expiry removes a dead NVE, a lost lease is recovered, and a
// leader SIGKILL costs a publish about a second while watches and leases carry on.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdCluster, etcdctl } from '../harness/etcd.js';
import { EtcdNva, NvaUnavailableError } from '../../src/nva/etcd.js';
// Test-only switch of the client library (not exported from its index).
import { ConnectionPool } from 'etcd3/lib/connection-pool.js';
import type { NvaEntry, NvaEvent, NveInfo } from '../../src/nva/nva.js';

const TTL = 2; // s; lease of each test NVE
const A: NveInfo = { id: 'nve-a', vtep: '198.18.0.1' };
const B: NveInfo = { id: 'nve-b', vtep: '198.18.0.2' };
const mac = (n: number): string => `02:00:00:00:0b:${n.toString(16).padStart(2, '0')}`;

let cluster: EtcdCluster;
const open: EtcdNva[] = [];
let prefixCounter = 0;

before(async () => {
  cluster = await EtcdCluster.start({ size: 3 });
});

after(async () => {
  for (const n of open) await n.close().catch(() => undefined);
  await cluster?.stop();
});

/** A recording NVA for NVE `self` under a prefix of its own test. */
async function nva(prefix: string, self: NveInfo): Promise<{ nva: EtcdNva; events: NvaEvent[] }> {
  const n = new EtcdNva({ hosts: cluster.endpoints, prefix, leaseTtlSec: TTL });
  open.push(n);
  const events: NvaEvent[] = [];
  n.onEvent((e) => events.push(e));
  await n.start(self);
  return { nva: n, events };
}

function newPrefix(): string {
  return `/splitnve-test-${process.pid}-${prefixCounter++}`;
}

async function until(what: string, cond: () => boolean, timeoutMs = 3000): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now() - t0;
}

const remote = (n: EtcdNva, vni: number, m: string): NvaEntry | undefined =>
  n.remoteEntries(vni).find((e) => e.mac === m);

test('key layout; each NVE sees the other: mapping -> forwarding -> withdraw', async () => {
  const p = newPrefix();
  const { nva: a } = await nva(p, A);
  const { nva: b, events: evB } = await nva(p, B);
  await until('both NVEs live for A', () => a.nves().length === 2);
  assert.deepEqual(
    b.nves().map((n) => n.id),
    [A.id, B.id],
  );

  await a.putVn({ vni: 900, name: 'blue' });
  await until('B has VN 900', () => b.getVn(900)?.name === 'blue');
  await a.watchVn(900);
  await b.watchVn(900);

  await a.publish({ vni: 900, mac: mac(1), ips: ['10.9.0.1'], kind: 'mapping' });
  await until('B sees mapping', () => remote(b, 900, mac(1))?.kind === 'mapping');
  assert.deepEqual(remote(b, 900, mac(1)), {
    vni: 900,
    mac: mac(1),
    ips: ['10.9.0.1'],
    nve: A.id,
    vtep: A.vtep,
    kind: 'mapping',
  });
  await b.publish({ vni: 900, mac: mac(2), ips: [], kind: 'forwarding' });
  await until('A sees B forwarding', () => remote(a, 900, mac(2))?.kind === 'forwarding');
  assert.equal(remote(a, 900, mac(2))!.vtep, B.vtep);
  assert.deepEqual(
    a.remoteEntries(900).map((e) => e.nve),
    [B.id],
    'own entries are not remote',
  );

  // The documented layout, read back by an independent client.
  const keys = etcdctl(cluster.endpoints, ['get', '--prefix', `${p}/`, '--keys-only'])
    .split('\n')
    .filter((l) => l !== '')
    .sort();
  assert.deepEqual(keys, [
    `${p}/map/900/${A.id}/${mac(1)}`,
    `${p}/map/900/${B.id}/${mac(2)}`,
    `${p}/nve/${A.id}`,
    `${p}/nve/${B.id}`,
    `${p}/vn/900`,
  ]);
  const leaseOf = (key: string): number => {
    const j = JSON.parse(etcdctl(cluster.endpoints, ['get', key, '-w', 'json'])) as {
      kvs?: { lease?: number }[];
    };
    return j.kvs?.[0]?.lease ?? 0;
  };
  assert.notEqual(leaseOf(`${p}/map/900/${A.id}/${mac(1)}`), 0, 'entries live on a lease');
  assert.notEqual(leaseOf(`${p}/nve/${A.id}`), 0, 'registration lives on a lease');
  assert.equal(leaseOf(`${p}/vn/900`), 0, 'VNs do not');

  await a.publish({ vni: 900, mac: mac(1), ips: ['10.9.0.1'], kind: 'forwarding' });
  await until('B sees forwarding', () => remote(b, 900, mac(1))?.kind === 'forwarding');

  await a.withdraw(900, mac(1));
  await until('B sees withdraw', () => remote(b, 900, mac(1)) === undefined);
  assert.ok(
    evB.some((e) => e.type === 'entry-deleted' && e.mac === mac(1) && e.nve === A.id),
    'entry-deleted event',
  );
  assert.deepEqual(a.ownEntries(), []);
  await assert.rejects(
    a.publish({ vni: 901, mac: mac(9), ips: [], kind: 'mapping' }),
    /VN 901 does not exist/,
  );
});

test('VN create-if-absent, replace, delete: events on both; entries go with the VN', async () => {
  const p = newPrefix();
  const { nva: a, events: evA } = await nva(p, A);
  const { nva: b, events: evB } = await nva(p, B);

  assert.equal(await a.putVn({ vni: 10, name: 'ops' }), true);
  assert.equal(a.getVn(10)?.name, 'ops', 'read-your-writes');
  // The nNVE's auto-create must not overwrite the operator's VN.
  assert.equal(await b.putVn({ vni: 10 }, { ifAbsent: true }), false);
  assert.equal(await b.putVn({ vni: 11 }, { ifAbsent: true }), true);
  await until('A has VN 11', () => a.getVn(11) !== undefined);
  await until('B has VN 10', () => b.getVn(10)?.name === 'ops');
  await b.putVn({ vni: 10, name: 'ops', maxTsis: 3 });
  await until('A sees maxTsis', () => a.getVn(10)?.maxTsis === 3);
  assert.ok(evA.some((e) => e.type === 'vn-set' && e.vn.vni === 10 && e.vn.maxTsis === 3));

  await a.watchVn(10);
  await b.watchVn(10);
  await a.publish({ vni: 10, mac: mac(1), ips: [], kind: 'forwarding' });
  await b.publish({ vni: 10, mac: mac(2), ips: [], kind: 'mapping' });
  await until('B sees A entry', () => remote(b, 10, mac(1)) !== undefined);

  await b.deleteVn(10);
  await until('vn-deleted on A', () => evA.some((e) => e.type === 'vn-deleted' && e.vni === 10));
  assert.ok(
    evB.some((e) => e.type === 'vn-deleted' && e.vni === 10),
    'vn-deleted on B',
  );
  assert.equal(a.getVn(10), undefined);
  assert.deepEqual(
    a.listVns().map((v) => v.vni),
    [11],
  );
  await until('entries gone', () => b.remoteEntries(10).length + a.remoteEntries(10).length === 0);
  assert.deepEqual(a.ownEntries(), [], 'A forgot its entries in the deleted VN');
  assert.deepEqual(b.ownEntries(), []);
  const left = etcdctl(cluster.endpoints, ['get', '--prefix', `${p}/map/`, '--keys-only']);
  assert.equal(left.trim(), '', 'no entry keys left in etcd');
});

test('an NVE that dies without revoking vanishes with its entries after the lease TTL', async (t) => {
  const p = newPrefix();
  const { nva: a } = await nva(p, A);
  const { nva: b, events: evB } = await nva(p, B);
  await a.putVn({ vni: 20 });
  await a.watchVn(20);
  await b.watchVn(20);
  await a.publish({ vni: 20, mac: mac(1), ips: [], kind: 'forwarding' });
  await a.publish({ vni: 20, mac: mac(2), ips: [], kind: 'mapping' });
  await until('B sees both', () => b.remoteEntries(20).length === 2);

  await a.abandon(); // no revoke, no withdraw: as if the process had died
  const t0 = Date.now();
  assert.equal(b.remoteEntries(20).length, 2, 'still there right after the "crash"');
  await until('A down for B', () => !b.nves().some((n) => n.id === A.id), (TTL + 4) * 1000);
  await until('entries gone', () => b.remoteEntries(20).length === 0, 1000);
  const gone = Date.now() - t0;
  t.diagnostic(`dead NVE gone for the other after ${gone} ms (lease TTL ${TTL} s)`);
  assert.ok(gone >= 500, `vanished after ${gone} ms: that is not lease expiry`);
  assert.ok(evB.some((e) => e.type === 'nve-down' && e.id === A.id));
  assert.equal(evB.filter((e) => e.type === 'entry-deleted' && e.nve === A.id).length, 2);
});

test('a lost lease: the NVE registers again and re-publishes what it owns', async (t) => {
  const p = newPrefix();
  const { nva: a, events: evA } = await nva(p, A);
  const { nva: b, events: evB } = await nva(p, B);
  await a.putVn({ vni: 30 });
  await b.watchVn(30);
  await a.watchVn(30);
  const e1 = { vni: 30, mac: mac(1), ips: ['10.3.0.1'], kind: 'forwarding' as const };
  const e2 = { vni: 30, mac: mac(2), ips: [], kind: 'mapping' as const };
  await a.publish(e1);
  await a.publish(e2);
  await until('B sees both', () => b.remoteEntries(30).length === 2);
  const own = a.ownEntries();

  // Revoke A's lease behind its back (what an etcd partition longer than the TTL does).
  const old = a.leaseId!;
  etcdctl(cluster.endpoints, ['lease', 'revoke', BigInt(old).toString(16)]);
  await until('B sees A down', () => evB.some((e) => e.type === 'nve-down' && e.id === A.id));
  const t0 = Date.now();
  await until('A back', () => b.nves().some((n) => n.id === A.id), 5000);
  await until('entries back', () => b.remoteEntries(30).length === 2, 3000);
  t.diagnostic(`lease revoked: NVE and entries re-published after ${Date.now() - t0} ms`);
  assert.notEqual(a.leaseId, old);
  assert.deepEqual(remote(b, 30, mac(1)), { ...e1, nve: A.id, vtep: A.vtep });
  assert.deepEqual(a.ownEntries(), own);
  assert.ok(
    evA.some((e) => e.type === 'nve-down' && e.id === A.id),
    'A saw itself go',
  );
  assert.equal(a.nves().length, 2);
  // And it works as before.
  await a.withdraw(30, mac(2));
  await until('withdraw seen', () => remote(b, 30, mac(2)) === undefined);
});

test('leader SIGKILL: a publish right after takes about a second; watches and leases survive', async (t) => {
  const p = newPrefix();
  const { nva: a, events: evA } = await nva(p, A);
  const { nva: b, events: evB } = await nva(p, B);
  await a.putVn({ vni: 40 });
  await a.watchVn(40);
  await b.watchVn(40);
  await a.publish({ vni: 40, mac: mac(1), ips: [], kind: 'mapping' });
  await until('B sees it', () => remote(b, 40, mac(1)) !== undefined);

  // A third NVE whose watch and keep-alive streams certainly sit on the leader: etcd3 picks
  // members at random unless told to go through its host list from the end.
  ConnectionPool.deterministicOrder = true;
  t.after(() => {
    ConnectionPool.deterministicOrder = false;
  });

  const times: number[] = [];
  const pinnedEvents: NvaEvent[] = [];
  for (let round = 0; round < 2; round++) {
    const leader = await cluster.leader();
    const others = cluster.members.filter((m) => m !== leader).map((m) => m.clientUrl);
    const logged: string[] = [];
    const note = (_o: object, msg?: string): void => {
      logged.push(msg ?? '');
    };
    const pinned = new EtcdNva({
      hosts: [...others, leader.clientUrl],
      prefix: p,
      leaseTtlSec: TTL,
      logger: { info: note, warn: note, error: note },
    });
    open.push(pinned);
    pinned.onEvent((e) => pinnedEvents.push(e));
    await pinned.start({ id: `nve-pinned-${round}`, vtep: `198.18.1.${round + 1}` });
    await pinned.watchVn(40);
    await until('pinned NVE sees the entry', () => remote(pinned, 40, mac(1)) !== undefined);

    await cluster.kill(leader, 'SIGKILL');
    const t0 = Date.now();
    // Association-like step: the mapping becomes forwarding right after the leader died.
    const kind = round === 0 ? 'forwarding' : 'mapping';
    await a.publish({ vni: 40, mac: mac(1), ips: [], kind });
    const took = Date.now() - t0;
    times.push(took);
    const seen = await until(
      'B sees the change through its watch',
      () => remote(b, 40, mac(1))?.kind === kind,
    );
    const seenPinned = await until(
      'the NVE whose watch was on the dead leader sees it too',
      () => remote(pinned, 40, mac(1))?.kind === kind,
    );
    // A new association on the other side after the failover reaches A.
    await b.publish({ vni: 40, mac: mac(10 + round), ips: [], kind: 'mapping' });
    const seenA = await until(
      'A sees B publish',
      () => remote(a, 40, mac(10 + round)) !== undefined,
    );
    t.diagnostic(
      `leader ${leader.name} SIGKILLed: publish took ${took} ms; seen by the other NVE ` +
        `${seen} ms later, by the one watching via the dead leader ${seenPinned} ms later; ` +
        `reverse publish seen in ${seenA} ms`,
    );
    // Issue 8: per-call deadlines so that a leader failover costs under 1 s (with etcd's
    // election timeout at 300 ms; the write waits for the new leader).
    assert.ok(took < 1000, `publish after leader failover took ${took} ms`);
    assert.ok(
      logged.includes('nva: etcd watch reconnected'),
      `the pinned NVE's watches did go through the dead leader (log: ${logged.join('; ')})`,
    );
    // Its keep-alive stream was on the dead leader too; the lease must have survived.
    const pinnedId = `nve-pinned-${round}`;
    assert.ok(
      ![...evA, ...pinnedEvents].some((e) => e.type === 'nve-down' && e.id === pinnedId),
      'the NVE whose keep-alive went through the dead leader kept its lease',
    );
    await cluster.restart(leader);
    await pinned.close();
  }
  t.diagnostic(`failover publish times: ${times.join(', ')} ms`);

  // Keep-alives went on through both failovers: nobody lost their lease.
  const downs = [...evA, ...evB].filter((e) => e.type === 'nve-down' && !e.id.includes('pinned'));
  assert.deepEqual(downs, [], 'no NVE went down during the failovers');
  await until('only A and B left', () => a.nves().length === 2);
  assert.deepEqual(
    a.nves().map((n) => n.id),
    [A.id, B.id],
  );
  // The VN and NVE watches still deliver too.
  await b.putVn({ vni: 41, name: 'after' });
  await until('A sees VN after failovers', () => a.getVn(41)?.name === 'after');
});

test('start fails in bounded time, naming the endpoint, when etcd is not there', async () => {
  // The port after the last member's client port is in our slot and never listened on.
  const last = new URL(cluster.members[cluster.members.length - 1]!.clientUrl);
  const nowhere = `http://127.0.0.1:${Number(last.port) + 1}`;
  const n = new EtcdNva({ hosts: nowhere, prefix: newPrefix(), writeTimeoutMs: 800 });
  const t0 = Date.now();
  await assert.rejects(
    n.start(A),
    (e: unknown) =>
      e instanceof NvaUnavailableError && e.message.includes(nowhere) && e.message.includes(A.id),
  );
  const took = Date.now() - t0;
  assert.ok(took < 5000, `start gave up after ${took} ms`);
  await assert.rejects(n.publish({ vni: 1, mac: mac(1), ips: [], kind: 'mapping' }), /closed/);
});
