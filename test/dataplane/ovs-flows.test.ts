/**
 * The OVS flow compiler and dump parser, without a switch: flows never collide, incremental
 * recompilation equals a full compile, and the dump parser inverts the compiler.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  baseFlows,
  compileAll,
  compileTouched,
  flowCookie,
  flowText,
  parseFlowDump,
  stateFromFlows,
  type Flow,
} from '../../src/dataplane/ovs.js';
import { StateModel, emptyTouched, normalizeOp } from '../../src/dataplane/state.js';
import { PORTS, arbOps } from './arbitrary.js';

const TUN = 'vx0';

function modelOf(ops: Parameters<typeof normalizeOp>[0][]): StateModel {
  const m = new StateModel();
  for (const op of ops) m.apply(normalizeOp(op));
  return m;
}

function allFlows(groups: Map<string, Flow[]>): Flow[] {
  return [...groups.values()].flat();
}

/** Renders flows the way `ovs-ofctl --no-stats dump-flows` prints them (modulo field order). */
function asDump(flows: readonly Flow[]): string {
  return flows
    .map((f) => {
      const t = f.table === 0 ? '' : ` table=${f.table},`;
      const m = f.match ? `,${f.match}` : '';
      return ` cookie=${flowCookie(flowText(f))},${t} priority=${f.priority}${m} actions=${f.actions}`;
    })
    .join('\n');
}

describe('OVS flow compiler', () => {
  test('base flows drop ECP and LLDP first, in table 0', () => {
    const base = baseFlows(TUN);
    const top = base.filter((f) => f.table === 0 && f.priority === 1000).map((f) => f.match);
    assert.ok(top.includes('dl_type=0x8940'));
    assert.ok(top.includes('dl_type=0x88cc'));
    assert.ok(base.filter((f) => f.priority === 1000).every((f) => f.actions === 'drop'));
    assert.ok(Math.max(...base.map((f) => f.priority)) === 1000);
  });

  test('an inactive endpoint has its filters built but every one drops; active passes', () => {
    const local = {
      port: 'p1',
      vlan: 10,
      vni: 5000,
      mac: '02:00:00:00:0a:01',
      ips: ['192.0.2.1', '2001:db8::1'],
    };
    const m = modelOf([{ op: 'local-set', local: { ...local, active: false } }]);
    const off = allFlows(compileAll(m, TUN)).filter((f) => f.table === 1 && f.priority > 0);
    assert.ok(off.length >= 7);
    assert.ok(off.every((f) => f.actions === 'drop'));
    assert.equal(
      allFlows(compileAll(m, TUN)).filter((f) => f.table === 2 && f.priority > 0).length,
      0,
    );
    m.apply(normalizeOp({ op: 'local-set', local: { ...local, active: true } }));
    const on = allFlows(compileAll(m, TUN));
    const egress = on.filter((f) => f.table === 2 && f.priority === 100);
    assert.deepEqual(
      egress.map((f) => f.actions),
      ['push_vlan:0x8100,set_field:4106->vlan_vid,output:p1'],
    );
    const pass = on.filter((f) => f.table === 1 && f.actions !== 'drop').map((f) => f.match);
    assert.ok(pass.some((mt) => mt.includes('nw_src=192.0.2.1')));
    assert.ok(pass.some((mt) => mt.includes('arp_spa=192.0.2.1')));
    assert.ok(pass.some((mt) => mt.includes('ipv6_src=2001:db8::1')));
    assert.ok(pass.some((mt) => mt.includes('ipv6_src=fe80::/10')));
  });

  test('hairpin: a frame for an active endpoint from its own port goes to its other port, else to the flood list', () => {
    const a1 = { vni: 5000, mac: '02:00:00:00:0a:01', ips: [], active: true };
    const m = modelOf([{ op: 'local-set', local: { ...a1, port: 'p1', vlan: 10 } }]);
    const hairpin = () =>
      allFlows(compileAll(m, TUN)).filter((f) => f.table === 2 && f.priority === 110);
    assert.deepEqual(
      hairpin().map((f) => [f.match, f.actions]),
      [['in_port=p1,tun_id=5000,dl_dst=02:00:00:00:0a:01', 'resubmit(,4)']],
    );
    // moving between two ports of this nNVE: from the winner's port to the other one
    m.apply(normalizeOp({ op: 'local-set', local: { ...a1, port: 'p2', vlan: 20 } }));
    assert.deepEqual(
      hairpin().map((f) => [f.match, f.actions]),
      [
        [
          'in_port=p1,tun_id=5000,dl_dst=02:00:00:00:0a:01',
          'push_vlan:0x8100,set_field:4116->vlan_vid,output:p2',
        ],
      ],
    );
    // inactive (superseded, or only associated): no static MAC, no hairpin
    m.apply(
      normalizeOp({ op: 'local-set', local: { ...a1, port: 'p1', vlan: 10, active: false } }),
    );
    m.apply(
      normalizeOp({ op: 'local-set', local: { ...a1, port: 'p2', vlan: 20, active: false } }),
    );
    assert.deepEqual(hairpin(), []);
  });

  test('BUM from a local port goes to the other VAPs of the VN and to the flood list; from the tunnel only to local VAPs', () => {
    const m = modelOf([
      { op: 'vap-set', vap: { port: 'p1', vlan: 10, vni: 5000 } },
      { op: 'vap-set', vap: { port: 'p2', vlan: 20, vni: 5000 } },
      { op: 'vap-set', vap: { port: 'p3', vlan: 30, vni: 6000 } },
      { op: 'flood-set', flood: { vni: 5000, vteps: ['198.18.0.2', '198.18.0.3'] } },
    ]);
    const flows = allFlows(compileAll(m, TUN));
    const bum = (match: string) => flows.find((f) => f.table === 3 && f.match === match)?.actions;
    assert.equal(
      bum('in_port=p1,tun_id=5000'),
      'push_vlan:0x8100,set_field:4116->vlan_vid,output:p2,pop_vlan,resubmit(,4)',
    );
    assert.equal(
      bum(`in_port=${TUN},tun_id=5000`),
      'push_vlan:0x8100,set_field:4106->vlan_vid,output:p1,pop_vlan,push_vlan:0x8100,set_field:4116->vlan_vid,output:p2',
    );
    assert.equal(bum('in_port=p3,tun_id=6000'), 'resubmit(,4)');
    assert.equal(
      flows.find((f) => f.table === 4 && f.match === 'tun_id=5000')?.actions,
      `set_field:198.18.0.2->tun_dst,output:${TUN},set_field:198.18.0.3->tun_dst,output:${TUN}`,
    );
    assert.ok(
      !flows.some(
        (f) =>
          f.table === 3 &&
          f.match === `in_port=${TUN},tun_id=5000` &&
          f.actions.includes('resubmit(,4)'),
      ),
    );
  });

  test('property: no two flows share (table, priority, match); cookies are unique', () => {
    fc.assert(
      fc.property(arbOps, (ops) => {
        const flows = allFlows(compileAll(modelOf(ops), TUN));
        const keys = flows.map((f) => `${f.table}/${f.priority}/${f.match}`);
        assert.equal(new Set(keys).size, keys.length, 'flow keys collide');
        const cookies = flows.map((f) => flowCookie(flowText(f)));
        assert.equal(new Set(cookies).size, cookies.length);
        assert.ok(cookies.every((c) => /^0x5e[0-9a-f]{14}$/.test(c)));
      }),
      { numRuns: 300 },
    );
  });

  test('property: incremental recompilation of touched groups equals a full compile', () => {
    fc.assert(
      fc.property(fc.array(arbOps, { maxLength: 6 }), (batches) => {
        const m = new StateModel();
        const groups = new Map<string, Flow[]>([['base', baseFlows(TUN)]]);
        for (const batch of batches) {
          const t = emptyTouched();
          for (const op of batch) m.apply(normalizeOp(op), t);
          for (const [k, flows] of compileTouched(m, t, TUN)) {
            if (flows.length > 0) groups.set(k, flows);
            else groups.delete(k);
          }
          const inc = allFlows(groups).map(flowText).sort();
          const full = allFlows(compileAll(m, TUN)).map(flowText).sort();
          assert.deepEqual(inc, full);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('property: parsing the dump of the compiled flows gives the state back', () => {
    fc.assert(
      fc.property(arbOps, (ops) => {
        const m = modelOf(ops);
        const parsed = stateFromFlows(
          parseFlowDump(asDump(allFlows(compileAll(m, TUN)))),
          TUN,
          new Set(PORTS),
        );
        assert.deepEqual(parsed, m.snapshot());
      }),
      { numRuns: 300 },
    );
  });

  test('parses real ovs-ofctl output (hex tun_id, names, no table=0)', () => {
    const dump = [
      'OFPST_FLOW reply (OF1.4) (xid=0x2):',
      ' cookie=0x5e20e38b16fc2320, priority=100,in_port=tb,dl_vlan=20 actions=set_field:0x1388->tun_id,resubmit(,1)',
      ' cookie=0x5e80e88c04884fc4, table=1, priority=120,ip,tun_id=0x1388,in_port=tb,dl_vlan=20,dl_src=02:00:00:00:0b:01,nw_src=192.0.2.12 actions=pop_vlan,resubmit(,2)',
      ' cookie=0x5e646aa56e7fa948, table=1, priority=100,tun_id=0x1388,in_port=tb,dl_vlan=20,dl_src=02:00:00:00:0b:01 actions=pop_vlan,resubmit(,2)',
      ' cookie=0x5e924b12fed2d3b4, table=2, priority=90,tun_id=0x1388,dl_dst=02:00:00:00:0a:01 actions=set_field:198.18.0.1->tun_dst,output:vx',
      ' cookie=0x5eeb9e9c34d98fa1, table=4, priority=100,tun_id=0x1388 actions=set_field:198.18.0.1->tun_dst,output:vx',
      ' cookie=0x0, table=4, priority=5,in_port=9 actions=drop',
      ' cookie=0x5e0b32c05467dc83, duration=1.2s, table=0, n_packets=0, n_bytes=0, priority=100,in_port=99,dl_vlan=7 actions=set_field:0x1->tun_id,resubmit(,1)',
    ].join('\n');
    const flows = parseFlowDump(dump);
    assert.equal(flows.length, 7);
    assert.equal(flows[0]!.table, 0);
    assert.equal(flows[5]!.cookie, '0x0');
    assert.deepEqual(stateFromFlows(flows, 'vx', new Set(['tb'])), {
      vaps: [{ port: 'tb', vlan: 20, vni: 5000 }],
      locals: [
        {
          port: 'tb',
          vlan: 20,
          vni: 5000,
          mac: '02:00:00:00:0b:01',
          ips: ['192.0.2.12'],
          active: true,
        },
      ],
      remotes: [{ vni: 5000, mac: '02:00:00:00:0a:01', vtep: '198.18.0.1' }],
      floods: [{ vni: 5000, vteps: ['198.18.0.1'] }],
    });
  });
});
