import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { runDemo } from '../../src/cli/demo.js';

const VM = '6f1c2d3e-0000-4000-8000-00000000a001';

/** Each lifecycle step: who acts, what the nNVE prints (TSI states), what the station prints. */
const STEPS: { title: string; who: string; nnve: RegExp[]; station: RegExp[] }[] = [
  {
    title: 'create',
    who: 'hv1',
    nnve: [/swp1 .*Init -> Associated/],
    station: [
      /init -> pre-associated-rr \(response\)/,
      /pre-associate-rr accepted, local tag VID 1\d\d/,
    ],
  },
  {
    title: 'start',
    who: 'hv1',
    nnve: [/swp1 .*Associated -> Activated/],
    station: [/pre-associated-rr -> associated \(response\)/, /associate accepted/],
  },
  {
    title: 'suspend',
    who: 'hv1',
    nnve: [/swp1 .*Activated -> Associated/],
    station: [/associated -> pre-associated-rr \(response\)/],
  },
  {
    title: 'resume',
    who: 'hv1',
    nnve: [/swp1 .*Associated -> Activated/],
    station: [/pre-associated-rr -> associated \(response\)/],
  },
  {
    title: 'migrate: destination prepares',
    who: 'hv2',
    nnve: [/swp2 .*Init -> Associated/],
    station: [/init -> pre-associated-rr \(response\)/],
  },
  {
    title: 'migrate: destination runs',
    who: 'hv2',
    nnve: [/swp1 .*Activated -> Associated .*takeover/, /swp2 .*Associated -> Activated/],
    station: [/pre-associated-rr -> associated \(response\)/],
  },
  {
    title: 'migrate: source leaves',
    who: 'hv1',
    nnve: [/swp1 .*Associated -> Init/],
    station: [/-> init \(response\)/, /de-associate accepted/],
  },
  {
    title: 'stop',
    who: 'hv2',
    nnve: [/swp2 .*Activated -> Init/],
    station: [/associated -> init \(response\)/, /de-associate accepted/],
  },
];

/** Checks the demo's printout: every step is there, in order, and both sides print it. */
function checkOutput(lines: readonly string[]): void {
  const sections: { header: string; body: string[] }[] = [];
  for (const l of lines) {
    if (l.startsWith('== ')) sections.push({ header: l, body: [] });
    else sections.at(-1)?.body.push(l);
  }
  assert.equal(sections.length, STEPS.length, sections.map((s) => s.header).join('\n'));
  STEPS.forEach((step, i) => {
    const s = sections[i]!;
    assert.ok(s.header.startsWith(`== ${step.title}`), `step ${i}: ${s.header}`);
    assert.ok(s.header.includes(`${step.who} sends`), s.header);
    // the lines a node printed in this step: `t=1.234s  NODE  ...`
    const side = (who: string): string[] =>
      s.body.filter((l) => new RegExp(`^t=\\d+\\.\\d{3}s\\s+${who}\\s`).test(l));
    const nnve = side('nnve');
    assert.ok(nnve.length > 0 && nnve.every((l) => l.includes(`TSI ${VM}`)), s.body.join('\n'));
    const st = side(step.who);
    for (const re of step.nnve)
      assert.ok(
        nnve.some((l) => re.test(l)),
        `${step.title}: nNVE prints ${re}\n${s.body.join('\n')}`,
      );
    for (const re of step.station)
      assert.ok(
        st.some((l) => re.test(l)),
        `${step.title}: ${step.who} prints ${re}\n${s.body.join('\n')}`,
      );
    assert.ok(!s.body.some((l) => l.includes('FAILED')), `${step.title}: no failure`);
  });
  // the source learns of the takeover from the nNVE
  assert.ok(
    sections[5]!.body.some((l) =>
      /hv1\s+VSI .*associated -> pre-associated-rr \(bridge-deactivate\)/.test(l),
    ),
  );
  assert.match(
    lines.at(-1)!,
    /^done: nNVE holds 0 TSI\(s\); VLAN assignments left: 0; failed requests: 0$/,
  );
}

test('demo (in process): the VM walks its lifecycle and both sides print every step', () => {
  const printed: string[] = [];
  const r = runDemo({ write: (l) => printed.push(l) });
  assert.equal(r.ok, true);
  assert.deepEqual(printed, r.lines, 'what is written is what is returned');
  checkOutput(r.lines);
});

test('demo (the built CLI, what npm start runs): exits 0 with the same walk', async () => {
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [main, 'demo'], {
    timeout: 30_000,
  });
  checkOutput(stdout.trimEnd().split('\n'));
});
