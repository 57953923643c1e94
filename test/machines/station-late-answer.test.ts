import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VdpStation, type StationEvent } from '../../src/vdp/station.js';
import { parseVdpPdu } from '../../src/vdp/pdu.js';
import { ByteWriter } from '../../src/wire/bytes.js';
import { DEFAULT_WIRE_OPTIONS } from '../../src/wire/options.js';
import { responseStatus } from '../../src/wire/status.js';
import { encodeManagerId, encodeVsi } from '../../src/wire/vdp.js';
import type { VsiSpec } from '../../src/vdp/types.js';
import { testEntry, testSpec } from '../harness/sim-pair.js';

const timing = { r: 3, rte: 10, rwd: 20, rka: 20 };

const spec = (n: number): VsiSpec => testSpec(n, [testEntry(1)], 4, { tag: 0x5b, typeId: 7 });

/** The bridge's answer to an Associate of `s`: success, VID 100. */
function answer(s: VsiSpec) {
  const w = new ByteWriter(128);
  encodeManagerId(w, s.managerId);
  encodeVsi(
    w,
    { type: 3, status: responseStatus(0), ...s, entries: [{ ...s.entries[0]!, vid: 100 }] },
    DEFAULT_WIRE_OPTIONS,
  );
  w.u16(0);
  const p = parseVdpPdu(w.finish(), DEFAULT_WIRE_OPTIONS);
  assert.ok(p.ok);
  return p.value;
}

function station(): VdpStation {
  return new VdpStation(
    { profile: 'splitnve', wire: DEFAULT_WIRE_OPTIONS, maxAttempts: 3 },
    timing,
    { profile: 'splitnve', groupId: true },
  );
}

test('a late answer to a PDU ECP gave up on completes the request queued for a retry', () => {
  const st = station();
  const out: StationEvent[] = [];
  st.request({ mode: 3, spec: spec(1), requestId: 'r1' }, 0, out);
  const pdu = st.pull(0)!;
  assert.ok(pdu);
  st.ecpFailed(pdu.token, 50_000, out); // no ACK: queued again for attempt 2
  assert.ok(st.hasQueued());
  st.receive(answer(spec(1)), 60_000, out); // ...but the bridge had it and answers now
  const r = out.find((e) => e.type === 'request-result');
  assert.ok(r && r.ok, JSON.stringify(out));
  assert.equal(r.attempts, 1);
  assert.equal(st.get(st.list()[0]!.key)!.state, 'associated');
  assert.equal(st.stats.responsesUnexpected, 0);
  assert.equal(st.pull(60_000), undefined, 'nothing is sent again');
});

test('an answer for a request that was never sent is still unexpected', () => {
  const st = station();
  const out: StationEvent[] = [];
  st.request({ mode: 3, spec: spec(2), requestId: 'r2' }, 0, out);
  st.receive(answer(spec(2)), 10, out);
  assert.equal(st.stats.responsesUnexpected, 1);
  assert.ok(!out.some((e) => e.type === 'request-result'));
  assert.ok(st.pull(20), 'the request still goes out');
});
