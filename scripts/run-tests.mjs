#!/usr/bin/env node
// The one test command (`npm test`, after `npm run build`).
//
// Every folder under test/ is a suite. A suite may carry a `suite.json` that says what it needs:
//   { "root": true, "commands": { "lldpad": "lldpad", "tshark": "tshark" }, "why": "..." }
// where "commands" maps a program that must be on PATH to the Debian package that provides it.
// As root, missing packages are installed with apt-get. A suite whose needs cannot be met is not
// run and the reason is printed. With SPLITNVE_REQUIRE_ALL=1 (set by .ci/run) a suite that
// could not run fails the whole run.
//
// Then lint + format are checked, and every selected test file runs in ONE `node --test`
// invocation so that its summary (# tests / # pass / # fail) covers everything.
//
// Options: --suite NAME (repeatable) runs only those suites; --no-lint skips lint/format.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const args = process.argv.slice(2);
const only = [];
let lint = true;
const passThrough = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--suite') only.push(args[++i]);
  else if (args[i] === '--no-lint') lint = false;
  else passThrough.push(args[i]);
}
const requireAll = process.env.SPLITNVE_REQUIRE_ALL === '1';
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function listTests(dir) {
  const out = [];
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listTests(p));
    else if (name.endsWith('.test.js') && hasSource(p)) out.push(p);
  }
  return out;
}

/** A compiled test whose .ts is gone (deleted or renamed since the last build) is not run. */
function hasSource(js) {
  const rel = js.slice(join(root, 'dist').length + 1).replace(/\.js$/, '.ts');
  return existsSync(join(root, rel));
}

const srcTestDir = join(root, 'test');
const suites = readdirSync(srcTestDir)
  .filter((d) => statSync(join(srcTestDir, d)).isDirectory())
  .filter((d) => only.length === 0 || only.includes(d))
  .sort()
  .map((name) => {
    const specPath = join(srcTestDir, name, 'suite.json');
    const spec = existsSync(specPath) ? JSON.parse(readFileSync(specPath, 'utf8')) : {};
    return { name, spec, files: listTests(join(root, 'dist', 'test', name)) };
  });

// Work out what each suite is missing; as root, install Debian packages for it.
let aptUpdated = false;
function aptInstall(pkgs) {
  if (!aptUpdated) {
    console.log('# apt-get update');
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    aptUpdated = true;
  }
  console.log(`# apt-get install ${pkgs.join(' ')}`);
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return r.status === 0;
}

const notRun = [];
const selected = [];
for (const s of suites) {
  if (s.files.length === 0) continue;
  const needs = s.spec;
  let why = null;
  if (needs.root && !isRoot) why = 'needs root (network namespaces, raw sockets)';
  if (!why && needs.commands) {
    let missing = Object.entries(needs.commands).filter(([cmd]) => !have(cmd));
    if (missing.length > 0 && isRoot) {
      aptInstall([...new Set(missing.map(([, pkg]) => pkg))]);
      missing = missing.filter(([cmd]) => !have(cmd));
    }
    if (missing.length > 0) {
      why = `missing ${missing.map(([c, p]) => `${c} (Debian package ${p})`).join(', ')}`;
    }
  }
  if (why) notRun.push({ name: s.name, why });
  else selected.push(s);
}

let failed = false;
if (lint && only.length === 0) {
  console.log('# lint: eslint + prettier --check');
  const l = spawnSync('npx', ['--no-install', 'eslint', '.'], { stdio: 'inherit', cwd: root });
  const f = spawnSync('npx', ['--no-install', 'prettier', '--check', '--log-level', 'warn', '.'], {
    stdio: 'inherit',
    cwd: root,
  });
  if (l.status !== 0 || f.status !== 0) {
    console.log('# lint: FAILED (run `npm run format` for formatting)');
    failed = true;
  }
}

const files = selected.flatMap((s) => s.files);
console.log(`# suites: ${selected.map((s) => `${s.name}(${s.files.length})`).join(' ')}`);
if (files.length > 0) {
  const concurrency = Math.max(2, cpus().length);
  const r = spawnSync(
    process.execPath,
    [
      '--test',
      `--test-concurrency=${concurrency}`,
      // A file whose tests are done must not hold the run (e.g. a client handle left open);
      // and no single test may hang the CI budget.
      '--test-force-exit',
      '--test-timeout=900000',
      ...passThrough,
      ...files.map((f) => relative(root, f)),
    ],
    { stdio: 'inherit', cwd: root, env: { ...process.env, SPLITNVE_TEST: '1' } },
  );
  if (r.status !== 0) failed = true;
}

for (const n of notRun) console.log(`# NOT RUN: suite ${n.name}: ${n.why}`);
if (notRun.length > 0 && requireAll) {
  console.log('# SPLITNVE_REQUIRE_ALL=1: a suite that cannot run is a failure');
  failed = true;
}
console.log(failed ? '# RESULT: FAIL' : '# RESULT: PASS');
process.exit(failed ? 1 : 0);
