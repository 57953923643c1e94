import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadNnveConfig, nveIdOf } from '../../src/nnve/config.js';
import { tmp } from './fixture.js';

test('nnve flags: data plane, NVA, identity, tag policy; the file and the flags merge', (t) => {
  const dir = tmp(t);
  const file = join(dir, 'nnve.json');
  writeFileSync(
    file,
    JSON.stringify({
      ports: [
        { name: 'swp1', segment: 'rack1', vlanPool: '200-299' },
        { name: 'swp2', segment: 'rack1' },
      ],
      stateDir: dir,
      etcd: { endpoints: ['http://127.0.0.1:1'], callTimeoutMs: 300 },
      vns: [{ vni: 5000, maxTsis: 4 }],
    }),
  );
  assert.throws(() => loadNnveConfig({ config: file }), /segment rack1 has two VLAN pools/);
  const c = loadNnveConfig({
    config: file,
    port: ['swp1'],
    dataplane: 'ovs',
    ovsBridge: 'nve0',
    ovsRundir: '/run/ovs',
    underlayIp: '198.18.0.1',
    nva: 'etcd',
    etcd: ['http://10.0.0.1:2379,http://10.0.0.2:2379', 'http://10.0.0.3:2379'],
    nvaLeaseTtl: 5,
    nveId: 'tor-a',
    vnAutoCreate: false,
    tagHold: 0,
    netns: 'tor',
  });
  assert.equal(c.dataplane, 'ovs');
  assert.deepEqual(c.ovs, { bridge: 'nve0', rundir: '/run/ovs' });
  assert.equal(c.underlayIp, '198.18.0.1');
  assert.equal(c.nva, 'etcd');
  assert.deepEqual(c.etcd, {
    endpoints: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379', 'http://10.0.0.3:2379'],
    callTimeoutMs: 300,
    leaseTtlS: 5,
  });
  assert.equal(nveIdOf(c), 'tor-a');
  assert.equal(c.vnAutoCreate, false);
  assert.equal(c.tagHoldS, 0);
  assert.equal(c.netns, 'tor');
  assert.deepEqual(c.ports, [{ name: 'swp1', segment: 'rack1', vlanPool: '200-299' }]);
  assert.deepEqual(c.vns, [{ vni: 5000, maxTsis: 4 }]);
  // defaults
  const d = loadNnveConfig({ port: ['eth1'], stateDir: dir });
  assert.equal(d.dataplane, 'memory');
  assert.equal(d.nva, 'embedded');
  assert.equal(d.vnAutoCreate, true);
  assert.equal(d.tagHoldS, 30);
  assert.ok(nveIdOf(d).length > 0);
});

test('nnve flags: what the ovs data plane and the etcd NVA need is named when missing', (t) => {
  const dir = tmp(t);
  assert.throws(
    () => loadNnveConfig({ port: ['eth1'], stateDir: dir, dataplane: 'ovs' }),
    /ovs\.bridge: the ovs data plane needs an OVS bridge \(--ovs-bridge\).*underlayIp: the ovs data plane needs the underlay/,
  );
  assert.throws(
    () => loadNnveConfig({ port: ['eth1'], stateDir: dir, nva: 'etcd' }),
    /etcd\.endpoints: the etcd NVA needs endpoints \(--etcd\)/,
  );
  assert.throws(
    () => loadNnveConfig({ port: ['eth1'], stateDir: dir, underlayIp: 'nope' }),
    /underlayIp: not an IP address/,
  );
  assert.throws(
    () => loadNnveConfig({ port: ['eth1'], stateDir: dir, dataplane: 'vpp' }),
    /dataplane/,
  );
});
