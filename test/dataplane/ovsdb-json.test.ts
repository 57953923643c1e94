import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { JsonSplitter, mapEntries, ovsMap, setItems } from '../../src/dataplane/ovsdb.js';

describe('OVSDB JSON stream splitting', () => {
  test('splits back-to-back messages, with braces and escapes inside strings', () => {
    const msgs = [
      { id: 1, result: [{ rows: [{ name: 'a}b{' }] }], error: null },
      { method: 'echo', params: ['"\\"}'], id: 'echo' },
      [1, [2, { x: ']' }]],
    ];
    const s = new JsonSplitter();
    assert.deepEqual(
      s.push(msgs.map((m) => JSON.stringify(m)).join('\n')).map((t) => JSON.parse(t)),
      msgs,
    );
  });

  test('rejects garbage between messages', () => {
    assert.throws(() => new JsonSplitter().push('{"a":1} x {"b":2}'), /unexpected "x"/);
  });

  test('property: any chunking of a stream yields the same messages', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.object(), fc.array(fc.jsonValue())), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (values, cuts) => {
          const text = values.map((v) => JSON.stringify(v)).join('');
          const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
          const s = new JsonSplitter();
          const out: unknown[] = [];
          let at = 0;
          for (const p of [...points, text.length]) {
            for (const t of s.push(text.slice(at, p))) out.push(JSON.parse(t));
            at = p;
          }
          assert.deepEqual(out, JSON.parse(JSON.stringify(values)));
        },
      ),
    );
  });

  test('set and map helpers', () => {
    assert.deepEqual(setItems('x'), ['x']);
    assert.deepEqual(setItems(['set', [1, 2]]), [1, 2]);
    assert.deepEqual(mapEntries(ovsMap({ b: '2', a: '1' })), { a: '1', b: '2' });
    assert.deepEqual(ovsMap({ b: '2', a: '1' }), [
      'map',
      [
        ['a', '1'],
        ['b', '2'],
      ],
    ]);
  });
});
