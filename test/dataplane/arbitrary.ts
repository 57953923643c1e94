/**
 * fast-check generators for data-plane ops and states over a small universe of ports, VLANs,
 * VNIs, MACs and addresses, so that random sequences hit the same keys often.
 */
import fc from 'fast-check';
import type {
  DataPlaneOp,
  LocalEndpoint,
  RemoteEndpoint,
  Vap,
} from '../../src/dataplane/dataplane.js';

export const PORTS = ['p1', 'p2', 'p3'];
const port = fc.constantFrom(...PORTS);
const vlan = fc.constantFrom(10, 20, 30);
const vni = fc.constantFrom(5000, 6000, 16777215);
const mac = fc.constantFrom(
  '02:00:00:00:0a:01',
  '02:00:00:00:0A:02',
  '2-0-0-0-b-1',
  '02:00:00:00:0b:02',
);
const v4 = fc.constantFrom('192.0.2.1', '192.0.2.2', '198.51.100.7');
const v6 = fc.constantFrom('2001:db8::1', '2001:0db8:0:0:0:0:0:2', 'fe80::1');
const ips = fc.array(fc.oneof(v4, v6), { maxLength: 3 });
const vtep = fc.constantFrom('198.18.0.2', '198.18.0.3', '198.18.0.4');

export const arbVap: fc.Arbitrary<Vap> = fc.record({ port, vlan, vni });
export const arbLocal: fc.Arbitrary<LocalEndpoint> = fc.record({
  port,
  vlan,
  vni,
  mac,
  ips,
  active: fc.boolean(),
});
export const arbRemote: fc.Arbitrary<RemoteEndpoint> = fc.record({ vni, mac, vtep });

export const arbOp: fc.Arbitrary<DataPlaneOp> = fc.oneof(
  arbVap.map((v): DataPlaneOp => ({ op: 'vap-set', vap: v })),
  fc.record({ port, vlan }).map((k): DataPlaneOp => ({ op: 'vap-del', ...k })),
  arbLocal.map((l): DataPlaneOp => ({ op: 'local-set', local: l })),
  fc.record({ port, vlan, mac }).map((k): DataPlaneOp => ({ op: 'local-del', ...k })),
  arbRemote.map((r): DataPlaneOp => ({ op: 'remote-set', remote: r })),
  fc.record({ vni, mac }).map((k): DataPlaneOp => ({ op: 'remote-del', ...k })),
  fc
    .record({ vni, vteps: fc.array(vtep, { maxLength: 3 }) })
    .map((f): DataPlaneOp => ({ op: 'flood-set', flood: f })),
);

export const arbOps = fc.array(arbOp, { maxLength: 40 });
