/**
 * `splitnve vm …`: the tNVE lifecycle API from the command line (what an orchestrator's
 * hypervisor-side script calls). Every subcommand is one HTTP call; the exit code is 0 when
 * the nNVE confirmed, 1 otherwise, with the reason (code, uplink) on stderr.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { apiCall, ApiCallError, DEFAULT_TNVE_API, followEvents } from '../tnve/client.js';
import type { InterfaceInput } from '../tnve/model.js';

function intArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`not an integer: ${v}`);
  return n;
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/**
 * An interface given as key=value pairs separated by commas:
 * `vsi=UUID,vni=5000,mac=52:54:00:00:00:01,ip=10.0.0.1,pair=MAC@IP,type=1,version=1,manager=NAME,port=vnet0`
 * (mac, ip and pair may repeat).
 */
export function parseIfaceSpec(text: string): InterfaceInput {
  const out: {
    vsiId?: string;
    vni?: number;
    macs: string[];
    ips: string[];
    pairs: { mac: string; ip: string }[];
    typeId?: number;
    typeVersion?: number;
    managerId?: string;
    port?: string;
  } = { macs: [], ips: [], pairs: [] };
  for (const part of text.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0)
      throw new InvalidArgumentError(`--iface: expected key=value, got ${JSON.stringify(part)}`);
    const k = part.slice(0, i).trim();
    const v = part.slice(i + 1).trim();
    const num = (): number => {
      const n = Number(v);
      if (!Number.isInteger(n))
        throw new InvalidArgumentError(`--iface ${k}: not an integer: ${v}`);
      return n;
    };
    switch (k) {
      case 'vsi':
      case 'vsiId':
        out.vsiId = v;
        break;
      case 'vni':
        out.vni = num();
        break;
      case 'mac':
        out.macs.push(v);
        break;
      case 'ip':
        out.ips.push(v);
        break;
      case 'pair': {
        const at = v.indexOf('@');
        if (at < 0) throw new InvalidArgumentError(`--iface pair: expected MAC@IP, got ${v}`);
        out.pairs.push({ mac: v.slice(0, at), ip: v.slice(at + 1) });
        break;
      }
      case 'type':
        out.typeId = num();
        break;
      case 'version':
        out.typeVersion = num();
        break;
      case 'manager':
        out.managerId = v;
        break;
      case 'port':
        out.port = v;
        break;
      default:
        throw new InvalidArgumentError(
          `--iface: unknown key ${k} (vsi, vni, mac, ip, pair, type, version, manager, port)`,
        );
    }
  }
  if (!out.vsiId) throw new InvalidArgumentError('--iface: vsi=UUID is required');
  return out as InterfaceInput;
}

function definition(o: {
  iface?: string[];
  file?: string;
  reserve?: boolean;
}): Record<string, unknown> {
  let def: Record<string, unknown>;
  if (o.file) {
    try {
      def = JSON.parse(readFileSync(o.file, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`--file ${o.file}: ${(e as Error).message}`, { cause: e });
    }
  } else if (o.iface && o.iface.length > 0) {
    def = { interfaces: o.iface.map(parseIfaceSpec) };
  } else {
    throw new Error('give the interfaces with --iface (repeatable) or --file');
  }
  if (o.reserve !== undefined) def.reserve = o.reserve;
  return def;
}

interface Global {
  api: string;
  json?: boolean;
}

function summary(r: Record<string, unknown>): string {
  const view = r.view as {
    interfaces?: {
      vsiId: string;
      localTag: { uplink: string; vid: number } | null;
      tsiState: string;
    }[];
  } | null;
  const ifs = (view?.interfaces ?? [])
    .map(
      (i) =>
        `${i.vsiId} ${i.tsiState}${i.localTag ? ` tag ${i.localTag.vid} on ${i.localTag.uplink}` : ''}`,
    )
    .join('; ');
  return `${r.op} ${r.vm}: ${r.state ?? 'gone'} (${r.tookMs} ms)${ifs ? ` — ${ifs}` : ''}`;
}

async function call(
  g: Global,
  method: string,
  path: string,
  body?: unknown,
  print: (r: Record<string, unknown>) => string = summary,
): Promise<void> {
  try {
    const r = await apiCall<Record<string, unknown>>(g.api, method, path, body);
    console.log(g.json ? JSON.stringify(r, null, 2) : print(r));
  } catch (e) {
    if (e instanceof ApiCallError) {
      if (g.json) console.log(JSON.stringify(e.body, null, 2));
      console.error(`splitnve vm: ${e.message}`);
    } else console.error(`splitnve vm: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** `splitnve vm`, `splitnve libvirt-hook` and `splitnve cni`: the tNVE's clients. */
export function registerAgentCommands(program: Command): void {
  registerVmCommands(program);
  program
    .command('libvirt-hook')
    .description(
      'libvirt qemu hook: /etc/libvirt/hooks/qemu <domain> <operation> <sub-operation> <extra>, domain XML on stdin',
    )
    .argument('<domain>')
    .argument('<operation>')
    .argument('[sub-operation]')
    .argument('[extra...]')
    .option(
      '--api <addr>',
      'tNVE API (host:port or unix:/path)',
      process.env.SPLITNVE_TNVE_API ?? DEFAULT_TNVE_API,
    )
    .option('--timeout <ms>', 'how long a lifecycle call may wait for the nNVE', intArg)
    .action(
      async (
        domain: string,
        op: string,
        sub: string | undefined,
        extra: string[],
        o: { api: string; timeout?: number },
      ) => {
        const { runHook } = await import('../libvirt/hook.js');
        const xml = await readStdin();
        const r = await runHook([domain, op, sub ?? '-', extra[0] ?? '-'], xml, {
          api: o.api,
          ...(o.timeout !== undefined
            ? { timeoutMs: o.timeout }
            : process.env.SPLITNVE_HOOK_TIMEOUT_MS
              ? { timeoutMs: Number(process.env.SPLITNVE_HOOK_TIMEOUT_MS) }
              : {}),
        });
        for (const l of r.lines) process.stderr.write(`splitnve libvirt-hook: ${l}\n`);
        process.exitCode = r.code;
      },
    );
  program
    .command('cni')
    .description(
      'CNI plugin (spec 1.0): CNI_COMMAND and friends in the environment, network config on stdin',
    )
    .action(async () => {
      const { runCni } = await import('../cni/plugin.js');
      const r = await runCni(process.env, await readStdin());
      process.stdout.write(r.stdout);
      if (r.stderr) process.stderr.write(r.stderr);
      process.exitCode = r.code;
    });
}

function registerVmCommands(program: Command): void {
  const vm = program
    .command('vm')
    .description('VM lifecycle on the hypervisor agent (tNVE): define, start, migrate, …')
    .option(
      '--api <addr>',
      'tNVE API (host:port or unix:/path)',
      process.env.SPLITNVE_TNVE_API ?? DEFAULT_TNVE_API,
    )
    .option('--json', 'print the JSON answer');
  const g = (): Global => vm.opts<Global>();
  const enc = (n: string): string => encodeURIComponent(n);
  const timeout = (o: { timeout?: number }): Record<string, unknown> =>
    o.timeout !== undefined ? { timeoutMs: o.timeout } : {};

  vm.command('list')
    .description('list the VMs')
    .action(() =>
      call(g(), 'GET', '/v1/vms', undefined, (r) =>
        (r as unknown as { name: string; state: string }[])
          .map((v) => `${v.name}\t${v.state}`)
          .join('\n'),
      ),
    );
  vm.command('show')
    .argument('<name>')
    .description('show a VM, its interfaces, their uplinks and local tags')
    .action((name: string) => call({ ...g(), json: true }, 'GET', `/v1/vms/${enc(name)}`));
  vm.command('vns')
    .description('VNs with their active uplink and local tags')
    .action(() => call({ ...g(), json: true }, 'GET', '/v1/vns'));

  const defOpts = (c: Command): Command =>
    c
      .option(
        '--iface <spec>',
        'vsi=UUID,vni=N,mac=M[,ip=IP][,pair=MAC@IP][,type=N,version=N,manager=NAME,port=IF]',
        collect,
      )
      .option('--file <json>', 'the definition as JSON ({"interfaces": [...]})')
      .option('--timeout <ms>', 'how long to wait for the nNVE', intArg);

  defOpts(vm.command('define').argument('<name>'))
    .option('--reserve', 'pre-associate with resource reservation while shut off')
    .description('define a VM (or redefine it while shut off)')
    .action(
      async (
        name: string,
        o: { iface?: string[]; file?: string; reserve?: boolean; timeout?: number },
      ) => {
        let def;
        try {
          def = definition(o);
        } catch (e) {
          console.error(`splitnve vm: ${(e as Error).message}`);
          process.exitCode = 1;
          return;
        }
        await call(g(), 'PUT', `/v1/vms/${enc(name)}`, { ...def, ...timeout(o) });
      },
    );

  for (const op of ['start', 'pause', 'suspend', 'resume', 'stop', 'destroy']) {
    vm.command(op)
      .argument('<name>')
      .option('--timeout <ms>', 'how long to wait for the nNVE', intArg)
      .description(`${op} a VM`)
      .action((name: string, o: { timeout?: number }) =>
        call(g(), 'POST', `/v1/vms/${enc(name)}/${op}`, timeout(o)),
      );
  }

  const mi = vm.command('migrate-in').description('the destination side of a live migration');
  defOpts(mi.command('begin').argument('<name>'))
    .description('pre-associate with RR, M=1 (before the memory copy)')
    .action(async (name: string, o: { iface?: string[]; file?: string; timeout?: number }) => {
      let def;
      try {
        def = definition(o);
      } catch (e) {
        console.error(`splitnve vm: ${(e as Error).message}`);
        process.exitCode = 1;
        return;
      }
      await call(g(), 'POST', `/v1/vms/${enc(name)}/migrate-in/begin`, { ...def, ...timeout(o) });
    });
  for (const [sub, what] of [
    ['commit', 'associate M=1 (the VM runs here now)'],
    ['abort', 'de-associate and forget the incoming VM'],
  ] as const) {
    mi.command(sub)
      .argument('<name>')
      .option('--timeout <ms>', 'how long to wait for the nNVE', intArg)
      .description(what)
      .action((name: string, o: { timeout?: number }) =>
        call(g(), 'POST', `/v1/vms/${enc(name)}/migrate-in/${sub}`, timeout(o)),
      );
  }
  const mo = vm.command('migrate-out').description('the source side of a live migration');
  for (const [sub, what] of [
    ['begin', 'mark the VM as migrating (stays Activated)'],
    ['switchover', 'deactivate S=1 before the destination commits (needed across nNVEs)'],
    ['commit', 'de-associate S=1 after the destination runs'],
    ['abort', 'stay here: re-activate if needed'],
  ] as const) {
    mo.command(sub)
      .argument('<name>')
      .option('--timeout <ms>', 'how long to wait for the nNVE', intArg)
      .description(what)
      .action((name: string, o: { timeout?: number }) =>
        call(g(), 'POST', `/v1/vms/${enc(name)}/migrate-out/${sub}`, timeout(o)),
      );
  }

  vm.command('set-addresses')
    .argument('<name>')
    .requiredOption('--vsi <uuid>', 'the interface (VSI id)')
    .option('--mac <mac>', 'a MAC address (repeatable; replaces the list)', collect)
    .option('--ip <ip>', 'an IPv4/IPv6 address (repeatable; replaces the list)', collect)
    .option('--pair <mac@ip>', 'an IP-MAC pair (repeatable; replaces the list)', collect)
    .option('--timeout <ms>', 'how long to wait for the nNVE', intArg)
    .description("change an interface's addresses (re-associates with the new filter)")
    .action(
      (
        name: string,
        o: { vsi: string; mac?: string[]; ip?: string[]; pair?: string[]; timeout?: number },
      ) =>
        call(g(), 'POST', `/v1/vms/${enc(name)}/addresses`, {
          vsiId: o.vsi,
          ...(o.mac ? { macs: o.mac } : {}),
          ...(o.ip ? { ips: o.ip } : {}),
          ...(o.pair
            ? {
                pairs: o.pair.map((p) => {
                  const at = p.indexOf('@');
                  return { mac: p.slice(0, at), ip: p.slice(at + 1) };
                }),
              }
            : {}),
          ...timeout(o),
        }),
    );

  vm.command('reconcile')
    .requiredOption('--file <json>', '{"vms": [{"name", "state", "definition"?}]}')
    .option('--prune', 'destroy the VMs the list does not have')
    .description("make the agent's VMs match the orchestrator's list")
    .action(async (o: { file: string; prune?: boolean }) => {
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(readFileSync(o.file, 'utf8')) as Record<string, unknown>;
      } catch (e) {
        console.error(`splitnve vm: --file ${o.file}: ${(e as Error).message}`);
        process.exitCode = 1;
        return;
      }
      if (o.prune) body.prune = true;
      await call({ ...g(), json: true }, 'POST', '/v1/reconcile', body);
    });

  vm.command('events')
    .option('--count <n>', 'stop after n events', intArg)
    .description('follow the event stream (one JSON object per line)')
    .action(async (o: { count?: number }) => {
      const ac = new AbortController();
      let n = 0;
      try {
        await followEvents(
          g().api,
          (e) => {
            console.log(JSON.stringify({ event: e.event, ...(e.data as object) }));
            if (o.count !== undefined && ++n >= o.count) ac.abort();
          },
          ac.signal,
        );
      } catch (e) {
        console.error(`splitnve vm: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}
