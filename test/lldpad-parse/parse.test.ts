/**
 * The harness's parsers and argument builders against real lldptool / vdptool output (captured
 * from lldpad 1.1+git20221028.aa18720 on Debian 12) and the frames in /work/shared/vectors.
 * Pure functions: no root, no lldpad needed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  evbArgs,
  evbTimerMs,
  formatFilter,
  lldpadConfig,
  parseEvbTlv,
  parseFilter,
  parseKeyValues,
  parseVsiList,
  vsiArgs,
  type VdpFilter,
} from '../harness/lldpad.js';
import { checkIfName } from '../harness/netns.js';

const tlv = (bridge: string, station: string, rr: string, mode: string, rka: string): string =>
  `EVB Configuration TLV\n\tbridge:${bridge}\n\tstation:${station}\n\t${rr}\n\t${mode}\n\t${rka}\n`;

test('parseEvbTlv rebuilds the TLV body octets of the captured frames', () => {
  // Steady state of capture 01-lldp-evb22: station 07 0d 6e b4 34, bridge 07 0d 6e 74 34.
  const st = parseEvbTlv(
    tlv(
      'bgid,rrcap,rrctr(0x7)',
      'sgid,rrreq,rrstat(0xd)',
      'retries:3 rte:14',
      'mode:station r/l:1 rwd:20',
      'r/l:1 rka:20',
    ),
  );
  assert.deepEqual(st?.octets, [0x07, 0x0d, 0x6e, 0xb4, 0x34]);
  assert.equal(st?.rrstat, 1);
  assert.equal(st?.mode, 'station');
  const br = parseEvbTlv(
    tlv(
      'bgid,rrcap,rrctr(0x7)',
      'sgid,rrreq,rrstat(0xd)',
      'retries:3 rte:14',
      'mode:bridge r/l:1 rwd:20',
      'r/l:1 rka:20',
    ),
  );
  assert.deepEqual(br?.octets, [0x07, 0x0d, 0x6e, 0x74, 0x34]);
  // "Station alone" 00 0f 6e 94 12: printf %#02x prints 0 for an empty status octet.
  const alone = parseEvbTlv(
    tlv(
      '(0)',
      'sgid,rrreq,rrstat(0xf)',
      'retries:3 rte:14',
      'mode:station r/l:0 rwd:20',
      'r/l:0 rka:18',
    ),
  );
  assert.deepEqual(alone?.octets, [0x00, 0x0f, 0x6e, 0x94, 0x12]);
  assert.equal(alone?.rrstat, 3);
  assert.equal(alone?.bgid, false);
  assert.equal(parseEvbTlv(''), null);
  assert.throws(() => parseEvbTlv('EVB Configuration TLV\n\tgarbage\n'), /unexpected lldptool/);
});

test('parseKeyValues reads lldptool -c output', () => {
  const kv = parseKeyValues(
    'vdprka=18\nvdprwd=20\necprte=14\necpretries=3\nevbrrreq=yes\nevbrrcap=no\nevbgpid=yes\nevbmode=station\nenableTx=yes\n',
  );
  assert.equal(kv['vdprka'], '18');
  assert.equal(kv['evbmode'], 'station');
  assert.equal(Object.keys(kv).length, 9);
});

const QUERY = `VSI  0:
\tmode = assoc
\tmgrid2 = nvemgr1
\ttypeid = 42
\ttypeidver = 1
\tuuid = a1b2c3d4-0001-4000-8000-00000000000c
\thints = 0
\tfilter = 0-02:00:00:00:00:03
VSI  1:
\tmode = assoc
\tmgrid2 = nvemgr1
\ttypeid = 42
\ttypeidver = 1
\tuuid = a1b2c3d4-0001-4000-8000-00000000000a
\thints = 255
\tfilter = 0-02:00:00:00:00:01-10000
`;

test('parseVsiList reads the query output of vdptool -t', () => {
  const list = parseVsiList(QUERY);
  assert.equal(list.length, 2);
  assert.equal(list[0]?.uuid, 'a1b2c3d4-0001-4000-8000-00000000000c');
  assert.equal(list[0]?.status, 0);
  assert.deepEqual(list[0]?.filters, [
    { vid: 0, pcp: 0, ps: false, vlanField: 0, format: 2, mac: '02:00:00:00:00:03' },
  ]);
  assert.equal(list[1]?.status, 255, 'no response yet');
  assert.equal(list[1]?.filters[0]?.group, 10000);
  assert.equal(list[1]?.filters[0]?.format, 4);
  assert.deepEqual(parseVsiList(''), []);
  assert.deepEqual(parseVsiList('FAILED: Command not applicable\n'), []);
});

test('parseVsiList reads -W responses, with the error lines vdptool prints for hints', () => {
  const ok = parseVsiList(
    'Response from VDP\n\tmode = assoc\n\tmgrid2 = nvemgr1\n\ttypeid = 42\n\ttypeidver = 1\n' +
      '\tuuid = A1B2C3D4-0001-4000-8000-00000000000A\n\tfilter = 100-02:00:00:00:00:06-0\n',
  );
  assert.equal(ok.length, 1);
  assert.equal(ok[0]?.uuid, 'a1b2c3d4-0001-4000-8000-00000000000a');
  assert.equal(ok[0]?.status, undefined);
  assert.deepEqual(ok[0]?.errors, []);
  // Quirk Q8: -W prints group 0; an assigned VID shows.
  assert.equal(ok[0]?.filters[0]?.vid, 100);
  const err = parseVsiList(
    'Response from VDP\n\tmode = assoc\n\tmgrid2 = nvemgr1\n\ttypeid = 42\n\ttypeidver = 1\n' +
      '\tuuid = a1b2c3d4-0001-4000-8000-000000000001\n' +
      '\tInternal Error : Ack not received from bridge\n' +
      '\tfilter = 0-02:00:00:00:01:01-10000\n',
  );
  assert.deepEqual(err[0]?.errors, ['Internal Error : Ack not received from bridge']);
  const br = parseVsiList(
    'Response from VDP\n\tmode = deassoc\n\tmgrid2 = nvemgr1\n\ttypeid = 208\n\ttypeidver = 19\n' +
      '\tuuid = a1b2c3d4-0001-4000-8000-000000000007\n' +
      '\tError returned by Bridge: Invalid VID, GroupID or MAC address field\n\tfilter = 45256-200\n',
  );
  assert.equal(br[0]?.errors.length, 1);
  assert.deepEqual(
    [br[0]?.filters[0]?.format, br[0]?.filters[0]?.group, br[0]?.filters[0]?.pcp],
    [3, 200, 3],
  );
});

test('parseFilter: the four input forms, printed fif 1 with PS/PCP and printed fif 3', () => {
  assert.deepEqual(parseFilter('45156'), {
    vid: 100,
    pcp: 3,
    ps: true,
    vlanField: 0xb064,
    format: 1,
  });
  assert.equal(parseFilter('0--10001').format, 3);
  assert.equal(parseFilter('0-10001').format, 3, 'printed form of fif 3 (quirk Q8)');
  assert.equal(parseFilter('0-10001').group, 10001);
  assert.equal(parseFilter('5-02:AA:00:00:00:01').mac, '02:aa:00:00:00:01');
  assert.equal(parseFilter('0-02:00:00:00:00:01-10000').format, 4);
  for (const bad of ['', 'x', '70000', '1-2-3-4', '1-zz:00:00:00:00:01', '1--x']) {
    assert.throws(() => parseFilter(bad), /VDP filter/, bad);
  }
});

test('formatFilter and parseFilter round-trip every filter', () => {
  const filter = fc.record(
    {
      vid: fc.integer({ min: 0, max: 4095 }),
      pcp: fc.integer({ min: 0, max: 7 }),
      ps: fc.boolean(),
      mac: fc
        .uint8Array({ minLength: 6, maxLength: 6 })
        .map((b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':')),
      group: fc.integer({ min: 1, max: 0xffffffff }),
    },
    { requiredKeys: ['vid', 'pcp', 'ps'] },
  );
  fc.assert(
    fc.property(filter, (f: VdpFilter) => {
      const p = parseFilter(formatFilter(f));
      assert.equal(p.vid, f.vid);
      assert.equal(p.pcp, f.pcp);
      assert.equal(p.ps, f.ps);
      assert.equal(p.mac, f.mac);
      assert.equal(p.group, f.group);
      assert.equal(p.format, 1 + (f.mac === undefined ? 0 : 1) + (f.group === undefined ? 0 : 2));
    }),
  );
});

test("vsiArgs builds the notes' vdptool command and refuses bad values", () => {
  const vsi = {
    mgrid2: 'nvemgr1',
    typeid: 42,
    typeidver: 1,
    uuid: 'a1b2c3d4-0001-4000-8000-00000000000a',
    hints: 'none' as const,
    filters: [{ vid: 0, mac: '02:00:00:00:00:01', group: 10000 }],
  };
  assert.equal(
    vsiArgs('assoc', vsi).join(' '),
    '-c mode=assoc -c mgrid2=nvemgr1 -c typeid=42 -c typeidver=1 ' +
      '-c uuid=a1b2c3d4-0001-4000-8000-00000000000a -c hints=none ' +
      '-c filter=0-02:00:00:00:00:01-10000',
  );
  assert.match(
    vsiArgs('preassoc-rr', {
      ...vsi,
      filters: [{ vid: 100, pcp: 3, ps: true }, { vid: 101 }],
    }).join(' '),
    /-c filter=45156 -c filter=101$/,
  );
  assert.throws(() => vsiArgs('assoc', { ...vsi, typeid: 1 << 24 }), /typeid/);
  assert.throws(() => vsiArgs('assoc', { ...vsi, typeidver: 256 }), /typeidver/);
  assert.throws(() => vsiArgs('assoc', { ...vsi, uuid: 'nope' }), /uuid/);
  assert.throws(() => vsiArgs('assoc', { ...vsi, mgrid2: 'a b' }), /mgrid2/);
  assert.throws(() => vsiArgs('assoc', { ...vsi, filters: [] }), /at least one filter/);
  assert.throws(() => vsiArgs('assoc', { ...vsi, filters: [{ vid: 4096 }] }), /VID/);
  assert.throws(() => vsiArgs('assoc', { ...vsi, filters: [{ vid: 1, group: 0 }] }), /group/);
  assert.throws(() => vsiArgs('assoc', { ...vsi, filters: [{ vid: 1, mac: '02:00' }] }), /MAC/);
});

test('evbArgs uses the role-specific reflective-relay key and lldptool ranges', () => {
  assert.deepEqual(evbArgs('station', { rte: 14, rka: 18 }), [
    '-c',
    'evbgpid=yes',
    '-c',
    'evbrrreq=yes',
    '-c',
    'ecprte=14',
    '-c',
    'vdprka=18',
  ]);
  assert.ok(evbArgs('bridge', { rr: false }).includes('evbrrcap=no'));
  assert.throws(() => evbArgs('station', { retries: 8 }), /0\.\.7/);
  assert.throws(() => evbArgs('station', { rka: 32 }), /0\.\.31/);
  assert.equal(evbTimerMs(20).toFixed(3), '10485.760');
  assert.equal(evbTimerMs(14).toFixed(2), '163.84');
});

test('lldpadConfig holds only evbmode for the ncb agent of the interface', () => {
  const conf = lldpadConfig('vst0', 'bridge');
  assert.match(conf, /nearest_customer_bridge :\n\{\n {2}vst0 :/);
  assert.match(conf, /tlvid0080c20d :\n\s*\{\n\s*evbmode = "bridge";/);
});

test('checkIfName enforces the kernel interface-name limit', () => {
  assert.equal(checkIfName('snl1234567890ab'), 'snl1234567890ab');
  assert.throws(() => checkIfName('snl1234567890abc'), /15 characters/);
  assert.throws(() => checkIfName('a/b'), /invalid/);
  assert.throws(() => checkIfName(''), /invalid/);
});
