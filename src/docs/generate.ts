/**
 * Generates the reference parts of docs/ from the code (`npm run docs`; test/docs checks they
 * are up to date):
 *
 * - docs/config.md from the zod configuration schemas of both daemons: every field with its
 *   type, default, limits, and the description written next to it in the source (a `/** … *\/`
 *   comment on the property, or `.describe()`/`.meta()` on the schema);
 * - docs/cli.md from commander's help of every `splitnve` command.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { z, type ZodType } from 'zod';
import { CONFIG_NOTES } from './config-notes.js';
import { openApiPath, type RouteDocs } from '../daemon/openapi.js';

/** The repository root (this file is src/docs/ or dist/src/docs/). */
export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) throw new Error('docs: cannot find the repository root');
    d = up;
  }
  return d;
}

type Json = Record<string, unknown>;

/** Property comments of every `z.object({...})` literal in the sources, by its set of keys. */
export async function schemaComments(root = repoRoot()): Promise<Map<string, Map<string, string>>> {
  const ts = (await import('typescript')).default;
  const out = new Map<string, Map<string, string>>();
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const n of readdirSync(dir)) {
      const p = join(dir, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (n.endsWith('.ts')) files.push(p);
    }
  };
  walk(join(root, 'src'));
  for (const f of files.sort()) {
    const text = readFileSync(f, 'utf8');
    if (!text.includes("from 'zod'")) continue;
    const sf = ts.createSourceFile(f, text, ts.ScriptTarget.ES2022, true);
    const visit = (node: import('typescript').Node): void => {
      if (
        ts.isCallExpression(node) &&
        ts.isPropertyAccessExpression(node.expression) &&
        ['object', 'strictObject', 'looseObject'].includes(node.expression.name.text) &&
        node.arguments[0] &&
        ts.isObjectLiteralExpression(node.arguments[0])
      ) {
        const props = new Map<string, string>();
        const keys: string[] = [];
        for (const p of node.arguments[0].properties) {
          if (!p.name || !(ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))) continue;
          const key = p.name.text;
          keys.push(key);
          const ranges = ts.getLeadingCommentRanges(text, p.getFullStart()) ?? [];
          const doc = ranges
            .map((r) => text.slice(r.pos, r.end))
            .filter((c) => c.startsWith('/**'))
            .map((c) =>
              c
                .replace(/^\/\*\*|\*\/$/g, '')
                .split('\n')
                .map((l) => l.replace(/^\s*\*\s?/, '').trim())
                .join(' ')
                .trim(),
            )
            .join(' ');
          if (doc) props.set(key, doc);
        }
        const id = [...keys].sort().join(',');
        const prev = out.get(id);
        out.set(id, prev ? new Map([...props, ...prev]) : props);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return out;
}

interface Row {
  path: string;
  type: string;
  required: boolean;
  def: string;
  description: string;
}

function typeOf(s: Json): string {
  if (Array.isArray(s.anyOf) || Array.isArray(s.oneOf)) {
    return ((s.anyOf ?? s.oneOf) as Json[]).map(typeOf).join(' \\| ');
  }
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (Array.isArray(s.enum)) return (s.enum as unknown[]).map((v) => `\`${String(v)}\``).join(', ');
  const t = s.type as string | undefined;
  const limits: string[] = [];
  const safe = Number.MAX_SAFE_INTEGER;
  if (s.minimum !== undefined && s.minimum !== -safe) limits.push(`≥ ${String(s.minimum)}`);
  if (s.maximum !== undefined && s.maximum !== safe) limits.push(`≤ ${String(s.maximum)}`);
  if (s.minLength !== undefined) limits.push(`length ≥ ${String(s.minLength)}`);
  if (s.maxLength !== undefined) limits.push(`length ≤ ${String(s.maxLength)}`);
  if (s.minItems !== undefined) limits.push(`≥ ${String(s.minItems)} items`);
  if (s.pattern !== undefined) limits.push(`pattern \`${String(s.pattern)}\``);
  if (t === 'array') {
    const items = (s.items ?? {}) as Json;
    const inner = items.type === 'object' ? 'object' : typeOf(items);
    return `array of ${inner}${limits.length ? ` (${limits.join(', ')})` : ''}`;
  }
  return `${t ?? 'any'}${limits.length ? ` (${limits.join(', ')})` : ''}`;
}

function describe(
  s: Json,
  path: string,
  key: string,
  parentKeys: string[],
  comments: Map<string, Map<string, string>>,
): string {
  if (typeof s.description === 'string') return s.description;
  const c = comments.get([...parentKeys].sort().join(','))?.get(key);
  if (c) return c;
  const parts = path.split('.');
  for (let i = 0; i < parts.length; i++) {
    const note = CONFIG_NOTES[parts.slice(i).join('.')];
    if (note) return note;
  }
  return '';
}

function rows(
  s: Json,
  prefix: string,
  comments: Map<string, Map<string, string>>,
  out: Row[] = [],
): Row[] {
  const props = (s.properties ?? {}) as Record<string, Json>;
  const required = new Set((s.required ?? []) as string[]);
  const keys = Object.keys(props);
  for (const [k, p] of Object.entries(props)) {
    const path = `${prefix}${k}`;
    const obj = p.type === 'object' && p.properties ? p : undefined;
    const arr =
      p.type === 'array' && (p.items as Json | undefined)?.properties
        ? (p.items as Json)
        : undefined;
    const rec =
      p.type === 'object' && !p.properties && p.additionalProperties
        ? (p.additionalProperties as Json)
        : undefined;
    out.push({
      path,
      type: obj ? 'object' : rec ? `map of ${typeOf(rec)}` : typeOf(p),
      required: required.has(k) && p.default === undefined,
      def: p.default === undefined ? '' : `\`${JSON.stringify(p.default)}\``,
      description: describe(p, path, k, keys, comments),
    });
    if (obj) rows(obj, `${path}.`, comments, out);
    if (arr) rows(arr, `${path}[].`, comments, out);
  }
  return out;
}

function esc(t: string): string {
  return t.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function configTable(schema: ZodType, comments: Map<string, Map<string, string>>): string {
  const js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
  const lines = ['| field | type | default | description |', '|---|---|---|---|'];
  for (const r of rows(js, '', comments)) {
    lines.push(
      `| \`${r.path}\`${r.required ? ' **(required)**' : ''} | ${esc(r.type)} | ${r.def} | ${esc(r.description)} |`,
    );
  }
  return lines.join('\n');
}

export async function configReference(): Promise<string> {
  const comments = await schemaComments();
  const { NnveConfigSchema } = await import('../nnve/config.js');
  const { TnveConfigSchema } = await import('../tnve/config.js');
  return [
    '# Configuration reference',
    '',
    '<!-- Generated by `npm run docs` from the zod schemas (src/nnve/config.ts, src/tnve/config.ts',
    'and what they import). Do not edit: change the schema or its comments and regenerate. -->',
    '',
    'Both daemons read a JSON file (`--config FILE`) and lay their command-line flags over it;',
    'the result is validated before anything starts, and every error names the field. `SIGHUP`',
    '(or `splitnve ctl reload`, `POST /v1/reload`) re-reads it: the `config.reloaded` event',
    'lists what changed live and what needs a restart.',
    '',
    'Paths: `a.b` is a field of object `a`, `a[].b` a field of each element of array `a`.',
    'EVB exponents are in units of 10 µs·2^x (RKA 20 ≈ 10.5 s, RTE 8 ≈ 2.56 ms).',
    '',
    '## nNVE (`splitnve nnve`)',
    '',
    configTable(NnveConfigSchema, comments),
    '',
    '## tNVE (`splitnve tnve`)',
    '',
    configTable(TnveConfigSchema, comments),
    '',
  ].join('\n');
}

function allCommands(c: Command, path: string[] = []): { path: string[]; cmd: Command }[] {
  const me = { path: [...path, c.name()], cmd: c };
  return [me, ...c.commands.flatMap((s) => allCommands(s, me.path))];
}

export async function cliReference(): Promise<string> {
  const { buildProgram } = await import('../cli/main.js');
  const program = buildProgram();
  const parts = [
    '# CLI reference',
    '',
    "<!-- Generated by `npm run docs` from commander's help. Do not edit. -->",
    '',
    'Every subcommand of `splitnve`, with its options (`splitnve <command> --help` shows the',
    'same). Daemons: `nnve`, `tnve`. Operations on a running daemon: `ctl` (either daemon,',
    '`--api HOST:PORT` or `unix:/path`), `vm` (the tNVE lifecycle API). Integration: `libvirt-hook`,',
    '`cni`. Tools: `decode`, `demo`.',
    '',
  ];
  for (const { path, cmd } of allCommands(program)) {
    cmd.configureHelp({ helpWidth: 100 });
    parts.push(`## ${path.join(' ')}`, '', '```', cmd.helpInformation().trimEnd(), '```', '');
  }
  return parts.join('\n');
}

function routeTable(docs: RouteDocs): string {
  const lines = ['| method | path | what | body | errors |', '|---|---|---|---|---|'];
  const order = ['Views', 'VMs', 'Actions', 'Operations', 'Dashboard'];
  const rank = (t: string): number => (order.includes(t) ? order.indexOf(t) : order.length);
  const entries = Object.entries(docs).sort(
    ([a, x], [b, y]) => rank(x.tag) - rank(y.tag) || a.localeCompare(b),
  );
  for (const [key, d] of entries) {
    const [method, path] = key.split(' ') as [string, string];
    let body = '';
    if (d.body) {
      const js = z.toJSONSchema(d.body, { io: 'input', unrepresentable: 'any' }) as Json;
      const props = Object.keys((js.properties ?? {}) as Json);
      const req = new Set((js.required ?? []) as string[]);
      body = props.map((p) => (req.has(p) ? `**${p}**` : p)).join(', ');
    }
    const errors = [...new Set([...(d.body ? [400] : []), ...(d.errors ?? [])])].join(', ');
    lines.push(
      `| ${method} | \`${openApiPath(path)}\` | ${esc(d.summary)} | ${esc(body)} | ${errors} |`,
    );
  }
  return lines.join('\n');
}

export async function apiReference(): Promise<string> {
  const { OPS_ROUTE_DOCS } = await import('../daemon/ops.js');
  const { NNVE_ROUTE_DOCS } = await import('../nnve/ops.js');
  const { TNVE_ROUTE_DOCS } = await import('../tnve/ops.js');
  return [
    '# HTTP API reference',
    '',
    '<!-- Generated by `npm run docs` from the route tables (src/nnve/ops.ts, src/tnve/ops.ts,',
    'src/daemon/ops.ts). Do not edit. -->',
    '',
    'Both daemons serve JSON over HTTP on `--api` (`HOST:PORT`, or `unix:/path`): nNVE default',
    '`127.0.0.1:8740`, tNVE `127.0.0.1:8741`. Each serves its full OpenAPI 3.1 document, with the',
    'request and response schemas, at `GET /openapi.json` (tests check that every route is in it',
    'and that the answers of running daemons match it). Request bodies are validated; errors are',
    '`application/problem+json` (RFC 9457: `type`, `title`, `status`, `detail`, and for an',
    'invalid body `issues: [{path, message}]`). Body fields in **bold** are required.',
    '',
    '## nNVE (`splitnve nnve`)',
    '',
    routeTable(NNVE_ROUTE_DOCS),
    '',
    '## tNVE (`splitnve tnve`)',
    '',
    'The VM lifecycle calls are described in src/tnve/README.md.',
    '',
    routeTable(TNVE_ROUTE_DOCS),
    '',
    '## Both daemons',
    '',
    routeTable(OPS_ROUTE_DOCS),
    '',
  ].join('\n');
}

export async function generateAll(): Promise<Record<string, string>> {
  return {
    'docs/config.md': await configReference(),
    'docs/cli.md': await cliReference(),
    'docs/api.md': await apiReference(),
  };
}

async function main(): Promise<void> {
  const root = repoRoot();
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [rel, text] of Object.entries(await generateAll())) {
    const p = join(root, rel);
    const old = existsSync(p) ? readFileSync(p, 'utf8') : '';
    if (old === text) continue;
    if (check) {
      console.error(`${rel} is out of date: run npm run docs`);
      stale++;
    } else {
      writeFileSync(p, text);
      console.log(`wrote ${rel}`);
    }
  }
  if (stale) process.exitCode = 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
