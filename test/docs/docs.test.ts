import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { parseMetrics } from '../../src/cli/ctl-ops.js';
import { generateAll, repoRoot } from '../../src/docs/generate.js';
import { http, startOpsPair } from '../harness/ops-pair.js';

const root = repoRoot();
const read = (rel: string): string => readFileSync(join(root, rel), 'utf8');

function files(dir: string, ext: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...files(p, ext));
    else if (n.endsWith(ext)) out.push(p);
  }
  return out;
}

test('docs/config.md, cli.md and api.md are what `npm run docs` writes from the code', async () => {
  for (const [rel, text] of Object.entries(await generateAll())) {
    assert.ok(existsSync(join(root, rel)), `${rel} is missing: run npm run docs`);
    assert.ok(read(rel) === text, `${rel} is out of date: run npm run docs`);
  }
  // the generator found the schemas' comments and the commands
  assert.match(read('docs/config.md'), /\| `ports\[\]\.segment` \| string .*share local tags/);
  assert.match(read('docs/cli.md'), /## splitnve ctl events\n/);
  assert.match(read('docs/api.md'), /\| POST \| `\/v1\/drain` \|/);
});

test('every event type the code logs is documented in docs/events.md', () => {
  const doc = read('docs/events.md');
  const names = new Set<string>();
  for (const f of files(join(root, 'src'), '.ts')) {
    for (const m of readFileSync(f, 'utf8').matchAll(/\bevent:\s*([^,}\n]*)/g)) {
      if (m[1]!.startsWith('{')) continue; // a node event object, not a log line's event type
      for (const q of m[1]!.matchAll(/'([a-z][a-z0-9-]*(?:\.[a-z0-9-]+)*)'/g)) names.add(q[1]!);
    }
  }
  assert.ok(
    names.has('tsi.state') && names.has('admin.drain') && names.has('tag'),
    [...names].join(' '),
  );
  const missing = [...names].filter((n) => !doc.includes(`\`${n}\``));
  assert.deepEqual(missing, [], `not in docs/events.md: ${missing.join(', ')}`);
});

test('every metric both daemons export is documented in docs/metrics.md', async (t) => {
  const p = await startOpsPair();
  t.after(() => p.close());
  const doc = read('docs/metrics.md');
  const names = new Set<string>();
  for (const base of [p.nUrl, p.tUrl]) {
    const text = (await http(base, 'GET', '/metrics')).text;
    for (const m of text.matchAll(/^# TYPE (\S+) /gm)) names.add(m[1]!);
    assert.ok(parseMetrics(text).length > 20);
  }
  const ours = [...names].filter((n) => n.startsWith('splitnve_'));
  assert.ok(ours.length >= 30, ours.join(' '));
  const missing = ours.filter((n) => !doc.includes(`\`${n}\``));
  assert.deepEqual(missing, [], `not in docs/metrics.md: ${missing.join(', ')}`);
  assert.ok(names.has('nodejs_eventloop_lag_seconds'));
});

test('README keeps the two commands; relative links in the docs point at files that exist', () => {
  const readme = read('README.md');
  assert.match(readme, /^npm ci && npm start$/m);
  assert.match(readme, /^npm ci && npm test$/m);
  const docs = [join(root, 'README.md'), ...files(join(root, 'docs'), '.md')];
  const broken: string[] = [];
  for (const f of docs) {
    for (const m of readFileSync(f, 'utf8').matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      if (!existsSync(join(dirname(f), target))) broken.push(`${f}: ${target}`);
    }
  }
  assert.deepEqual(broken, []);
});
