/**
 * The OpenFlow 1.4 encoder of the OVS data plane against ovs-ofctl itself: every flow the driver
 * compiles, encoded by openflow.ts and decoded by `ovs-ofctl ofp-print`, reads exactly as
 * ovs-ofctl's own encoding of the same text (`ovs-ofctl parse-flow`).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileAll, flowCookie, flowText } from '../../src/dataplane/ovs.js';
import {
  OpenFlowError,
  flowAddBody,
  flowDeleteCookieBody,
  flowModMessage,
  parseFlowText,
} from '../../src/dataplane/openflow.js';
import { StateModel } from '../../src/dataplane/state.js';
import { run } from '../harness/ovs.js';

const ports = new Map([
  ['p1', 3],
  ['p2', 4],
  ['tun', 7],
]);

function numbered(text: string): string {
  return text.replace(
    /(in_port=|output:)([A-Za-z0-9_.-]+)/g,
    (_a, w: string, n: string) => `${w}${ports.get(n)}`,
  );
}

function decoded(printed: string): string {
  const line = printed.split('\n').find((l) => l.includes('OFPT_FLOW_MOD'));
  assert.ok(line, printed);
  return line.replace(/^.*?: /, '').trim();
}

test('every compiled flow encodes as ovs-ofctl encodes it', async () => {
  const model = StateModel.from({
    vaps: [
      { port: 'p1', vlan: 10, vni: 5000 },
      { port: 'p2', vlan: 30, vni: 5000 },
      { port: 'p2', vlan: 31, vni: 6000 },
    ],
    locals: [
      {
        port: 'p1',
        vlan: 10,
        vni: 5000,
        mac: '02:00:00:00:0a:01',
        ips: ['192.0.2.11', '2001:db8::11'],
        active: true,
      },
      { port: 'p2', vlan: 30, vni: 5000, mac: '02:00:00:00:0a:03', ips: [], active: false },
      {
        port: 'p2',
        vlan: 31,
        vni: 6000,
        mac: '02:00:00:00:0c:01',
        ips: ['198.51.100.7'],
        active: true,
      },
    ],
    remotes: [{ vni: 5000, mac: '02:00:00:00:0b:01', vtep: '198.18.0.2' }],
    floods: [{ vni: 5000, vteps: ['198.18.0.2', '198.18.0.3'] }],
  });
  const texts = [...compileAll(model, 'tun').values()].flat().map(flowText);
  assert.ok(texts.length > 30, `${texts.length} flows`);
  for (const text of texts) {
    const cookie = BigInt(flowCookie(text));
    const hex = flowModMessage(flowAddBody(parseFlowText(text, ports), cookie)).toString('hex');
    const ours = decoded(await run('ovs-ofctl', ['ofp-print', hex]));
    const theirs = decoded(
      await run('ovs-ofctl', [
        '-O',
        'OpenFlow14',
        'parse-flow',
        `cookie=${cookie},${numbered(text)}`,
      ]),
    );
    assert.equal(ours, theirs, text);
  }
});

test('delete by cookie, and syntax the encoder does not know is refused (the driver falls back)', async () => {
  const hex = flowModMessage(flowDeleteCookieBody(0x5e0123456789abcdn)).toString('hex');
  assert.match(
    decoded(await run('ovs-ofctl', ['ofp-print', hex])),
    /^DEL table:255 .*cookie:0x5e0123456789abcd\/0xffffffffffffffff actions=drop$/,
  );
  assert.throws(() => parseFlowText('priority=1,tcp actions=drop', ports), OpenFlowError);
  assert.throws(() => parseFlowText('priority=1 actions=controller', ports), OpenFlowError);
  assert.throws(() => parseFlowText('priority=1,in_port=nope actions=drop', ports), /unknown port/);
});
