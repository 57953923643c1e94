#!/usr/bin/env node
/** The `splitnve` command. Each subcommand lives in its own module. */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { decodeInputs } from './decode.js';
import { runDemo } from './demo.js';
import { ctlFetch, renderTable } from './ctl.js';
import { registerCtlViews } from './ctl-views.js';
import { registerAgentCommands } from './vm.js';
import { registerCtlOps } from './ctl-ops.js';

function intArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`not an integer: ${v}`);
  return n;
}

export function buildProgram(): Command {
  const program = new Command();
  program.name('splitnve').description('Split-NVE control plane (RFC 8394) over VDP/ECP/LLDP-EVB');

  program
    .command('decode')
    .description(
      'decode frames from pcap/pcapng files or hex strings into JSON, one object per line',
    )
    .argument('[files...]', 'capture files (pcap or pcapng)')
    .option('--hex <hex...>', 'frames given as hex strings')
    .option(
      '--splitnve-oui <oui>',
      'identifier of splitnve org TLVs (24-bit, e.g. 0x02534e)',
      intArg,
    )
    .option('--ipv4-filter-format <code>', 'code of the GroupID/MAC/IPv4/VID filter format', intArg)
    .option('--ipv6-filter-format <code>', 'code of the GroupID/MAC/IPv6/VID filter format', intArg)
    .action(
      (
        files: string[],
        o: {
          hex?: string[];
          splitnveOui?: number;
          ipv4FilterFormat?: number;
          ipv6FilterFormat?: number;
        },
      ) => {
        if (files.length === 0 && !o.hex) {
          program.error('decode: give capture files or --hex');
        }
        const wire = {
          ...(o.splitnveOui !== undefined ? { splitnveOui: o.splitnveOui } : {}),
          ...(o.ipv4FilterFormat !== undefined ? { ipv4FilterFormat: o.ipv4FilterFormat } : {}),
          ...(o.ipv6FilterFormat !== undefined ? { ipv6FilterFormat: o.ipv6FilterFormat } : {}),
        };
        const { lines, failed } = decodeInputs({ files, hex: o.hex ?? [], wire });
        process.stdout.write(lines.map((l) => l + '\n').join(''));
        if (failed) process.exitCode = 1;
      },
    );

  program
    .command('demo')
    .description(
      'walk a VM through its lifecycle on an in-memory fabric (one nNVE, two hypervisors)',
    )
    .option('--profile <profile>', '802.1Qbg or splitnve', 'splitnve')
    .option('--seed <n>', 'seed of the simulation', intArg, 1)
    .action((o: { profile: string; seed: number }) => {
      if (o.profile !== '802.1Qbg' && o.profile !== 'splitnve')
        program.error('--profile: 802.1Qbg or splitnve');
      const r = runDemo({
        profile: o.profile as '802.1Qbg' | 'splitnve',
        seed: o.seed,
        write: (l) => console.log(l),
      });
      if (!r.ok) process.exitCode = 1;
    });

  const evbOptions = (c: Command): Command =>
    c
      .option('--r <n>', 'ECP retries (R)', intArg)
      .option('--rte <n>', 'ECP ACK timer exponent (10µs·2^RTE)', intArg)
      .option('--rwd <n>', 'resource wait delay exponent', intArg)
      .option('--rka <n>', 'keep-alive exponent (10µs·2^RKA)', intArg)
      .option('--log-level <level>', 'fatal, error, warn, info, debug, trace');

  const evbFlags = (o: Record<string, unknown>): Record<string, number> | undefined => {
    const e: Record<string, number> = {};
    for (const k of ['r', 'rte', 'rwd', 'rka']) if (typeof o[k] === 'number') e[k] = o[k] as number;
    return Object.keys(e).length > 0 ? e : undefined;
  };

  evbOptions(
    program
      .command('nnve')
      .description('run the external NVE (VDP bridge) daemon')
      .option('--port <ifname...>', 'an nNVE port (repeatable)')
      .option('--vlan-pool <ranges>', 'local tags to assign, e.g. 100-3999')
      .option('--state-dir <dir>', 'where state is kept')
      .option('--api <host:port|unix:path>', 'HTTP API address (TCP, or a unix socket)')
      .option('--profile <profile>', '802.1Qbg or splitnve')
      .option('--auth <mode>', 'PDU authentication: require, prefer or off (keys: --key-dir)')
      .option('--key-dir <dir>', 'station keys: files <station-mac-with-dashes>.<key-id>.key')
      .option(
        '--listen-tls <host:port>',
        'also accept stations over TLS (tls section: cert, key, ca, peers)',
      )
      .option('--config <file>', 'JSON configuration file')
      .option('--netns <name>', 'network namespace of the ports (the daemon stays where it runs)')
      .option('--dataplane <kind>', 'memory (default) or ovs')
      .option('--ovs-bridge <name>', 'OVS bridge of this nNVE (ovs data plane)')
      .option('--ovs-rundir <dir>', 'OVS run directory with db.sock and <bridge>.mgmt')
      .option('--ovs-db <socket>', 'OVSDB unix socket (default <rundir>/db.sock)')
      .option('--underlay-ip <ip>', 'underlay (VTEP) address of this nNVE')
      .option('--nve-id <id>', 'id of this NVE in the NVA (default: host name)')
      .option('--nva <kind>', 'embedded (default) or etcd')
      .option('--etcd <urls...>', 'etcd client endpoints (etcd NVA), comma-separated or repeated')
      .option('--etcd-prefix <prefix>', 'etcd key prefix (default /splitnve)')
      .option('--nva-lease-ttl <s>', 'liveness lease TTL in the etcd NVA (seconds)', intArg)
      .option(
        '--nva-file <path>',
        'SQLite file of the embedded NVA (default <state-dir>/nva.sqlite)',
      )
      .option('--vn-auto-create', 'create an unknown VN in the NVA on first use (default)')
      .option('--no-vn-auto-create', 'refuse an unknown GroupID with reason 5')
      .option('--tag-hold <s>', 'seconds an unused local tag stays reserved for its VN', Number),
  ).action(async (o: Record<string, unknown>) => {
    const { loadNnveConfig } = await import('../nnve/config.js');
    const { NnveDaemon } = await import('../nnve/daemon.js');
    const flags = {
      ...(o.config ? { config: o.config as string } : {}),
      ...(o.port ? { port: o.port as string[] } : {}),
      ...(o.vlanPool ? { vlanPool: o.vlanPool as string } : {}),
      ...(o.stateDir ? { stateDir: o.stateDir as string } : {}),
      ...(o.api ? { api: o.api as string } : {}),
      ...(o.profile ? { profile: o.profile as string } : {}),
      ...(o.logLevel ? { logLevel: o.logLevel as string } : {}),
      ...(evbFlags(o) ? { evb: evbFlags(o)! } : {}),
      ...(o.auth ? { auth: o.auth as string } : {}),
      ...(o.keyDir ? { keyDir: o.keyDir as string } : {}),
      ...(o.listenTls ? { listenTls: o.listenTls as string } : {}),
      ...(o.netns ? { netns: o.netns as string } : {}),
      ...(o.dataplane ? { dataplane: o.dataplane as string } : {}),
      ...(o.ovsBridge ? { ovsBridge: o.ovsBridge as string } : {}),
      ...(o.ovsRundir ? { ovsRundir: o.ovsRundir as string } : {}),
      ...(o.ovsDb ? { ovsDb: o.ovsDb as string } : {}),
      ...(o.underlayIp ? { underlayIp: o.underlayIp as string } : {}),
      ...(o.nveId ? { nveId: o.nveId as string } : {}),
      ...(o.nva ? { nva: o.nva as string } : {}),
      ...(o.etcd ? { etcd: o.etcd as string[] } : {}),
      ...(o.etcdPrefix ? { etcdPrefix: o.etcdPrefix as string } : {}),
      ...(o.nvaLeaseTtl !== undefined ? { nvaLeaseTtl: o.nvaLeaseTtl as number } : {}),
      ...(o.nvaFile ? { nvaFile: o.nvaFile as string } : {}),
      ...(typeof o.vnAutoCreate === 'boolean' ? { vnAutoCreate: o.vnAutoCreate } : {}),
      ...(o.tagHold !== undefined ? { tagHold: o.tagHold as number } : {}),
    };
    const d = await runDaemon('nnve', () => NnveDaemon.start(loadNnveConfig(flags)));
    d.ops.configSource = () => loadNnveConfig(flags);
    process.on('SIGHUP', () => {
      try {
        d.reload(loadNnveConfig(flags));
      } catch (e) {
        d.log.error(
          { event: 'config.invalid', err: (e as Error).message },
          `reload refused: ${(e as Error).message}`,
        );
      }
    });
  });

  evbOptions(
    program
      .command('tnve')
      .description('run the hypervisor agent (VDP station)')
      // `<x...>`: commander takes a value as variadic only after a word character
      .option(
        '--uplink <uplink...>',
        'an uplink towards an nNVE: IFNAME[@PEER_MAC] or tls://HOST:PORT (repeatable; tls:// uses the tls section)',
      )
      .option('--state-dir <dir>', 'where state is kept')
      .option('--api <host:port|unix:path>', 'HTTP API address (TCP, or a unix socket)')
      .option('--profile <profile>', '802.1Qbg or splitnve')
      .option('--auth <mode>', 'PDU authentication: require, prefer or off (keys: --key-dir)')
      .option('--key-dir <dir>', 'our keys: files <our-mac-with-dashes>.<key-id>.key')
      .option('--config <file>', 'JSON configuration file')
      .option('--multi-homing <mode>', 'active-standby or active-active')
      .option('--pre-associate', 'pre-associate with RR when a VM is defined')
      .option(
        '--ovs-db <db>',
        'apply local tags to Open vSwitch ports (e.g. unix:/run/openvswitch/db.sock)',
      )
      .option('--manager-id <name>', 'default VSI Manager ID'),
  ).action(async (o: Record<string, unknown>) => {
    const { loadTnveConfig } = await import('../tnve/config.js');
    const { TnveDaemon } = await import('../tnve/daemon.js');
    const flags = {
      ...(o.config ? { config: o.config as string } : {}),
      ...(o.uplink ? { uplink: o.uplink as string[] } : {}),
      ...(o.stateDir ? { stateDir: o.stateDir as string } : {}),
      ...(o.api ? { api: o.api as string } : {}),
      ...(o.profile ? { profile: o.profile as string } : {}),
      ...(o.logLevel ? { logLevel: o.logLevel as string } : {}),
      ...(evbFlags(o) ? { evb: evbFlags(o)! } : {}),
      ...(o.multiHoming ? { multiHoming: o.multiHoming as string } : {}),
      ...(o.preAssociate ? { preAssociate: true } : {}),
      ...(o.ovsDb ? { ovsDb: o.ovsDb as string } : {}),
      ...(o.managerId ? { managerId: o.managerId as string } : {}),
      ...(o.auth ? { auth: o.auth as string } : {}),
      ...(o.keyDir ? { keyDir: o.keyDir as string } : {}),
    };
    const d = await runDaemon('tnve', () => TnveDaemon.start(loadTnveConfig(flags)));
    d.ops.configSource = () => loadTnveConfig(flags);
    process.on('SIGHUP', () => {
      try {
        d.reload(loadTnveConfig(flags));
      } catch (e) {
        d.log.error(
          { event: 'config.invalid', err: (e as Error).message },
          `reload refused: ${(e as Error).message}`,
        );
      }
    });
  });

  const ctl = program
    .command('ctl')
    .description('see and change the state of a running daemon')
    .option('--api <host:port|unix:path>', 'the daemon API', '127.0.0.1:8740')
    .option('--json', 'JSON instead of tables');
  for (const what of [
    'stations',
    'vsis',
    'tsis',
    'vaps',
    'tags',
    'vns',
    'remotes',
    'nva',
    'stats',
    'peers',
    'ports',
    'uplinks',
    'health',
  ]) {
    ctl
      .command(what)
      .description(`show ${what}`)
      .action(async () => {
        const o = ctl.opts<{ api: string; json?: boolean }>();
        await ctlRun(async () => {
          const data = await ctlFetch(o.api, `/v1/${what}`);
          console.log(o.json ? JSON.stringify(data, null, 2) : renderTable(what, data));
        });
      });
  }
  ctl
    .command('deassociate')
    .description('de-associate one VSI, all VSIs of a VN, or every VSI of a station (nNVE)')
    .requiredOption('--port <port>', 'nNVE port')
    .requiredOption('--station <mac>', 'station MAC')
    .option('--vsi <id>', 'VSI id')
    .option('--vni <n>', 'every VSI of this VN', intArg)
    .action(async (a: { port: string; station: string; vsi?: string; vni?: number }) => {
      const o = ctl.opts<{ api: string; json?: boolean }>();
      await ctlRun(async () => {
        const r = await ctlFetch(o.api, '/v1/deassociate', a);
        console.log(o.json ? JSON.stringify(r) : renderTable('result', r));
      });
    });
  ctl
    .command('vn-set')
    .description('create or replace a VN in the NVA (nNVE)')
    .requiredOption('--vni <n>', 'VNI', intArg)
    .option('--name <name>', 'name')
    .option('--allowed <macs...>', 'stations allowed to attach (default: any)')
    .option('--max-tsis <n>', 'most TSIs of this VN per nNVE', intArg)
    .action(async (a: { vni: number; name?: string; allowed?: string[]; maxTsis?: number }) => {
      const o = ctl.opts<{ api: string; json?: boolean }>();
      await ctlRun(async () => {
        const body = {
          vni: a.vni,
          ...(a.name ? { name: a.name } : {}),
          ...(a.allowed ? { allowedStations: a.allowed.flatMap((x) => x.split(',')) } : {}),
          ...(a.maxTsis !== undefined ? { maxTsis: a.maxTsis } : {}),
        };
        const r = await ctlFetch(o.api, '/v1/vns', body);
        console.log(o.json ? JSON.stringify(r) : renderTable('result', r));
      });
    });
  ctl
    .command('vn-delete')
    .description('delete a VN from the NVA: every nNVE de-associates its TSIs (nNVE)')
    .requiredOption('--vni <n>', 'VNI', intArg)
    .action(async (a: { vni: number }) => {
      const o = ctl.opts<{ api: string; json?: boolean }>();
      await ctlRun(async () => {
        const r = await ctlFetch(o.api, '/v1/vns/delete', { vni: a.vni });
        console.log(o.json ? JSON.stringify(r) : renderTable('result', r));
      });
    });
  ctl
    .command('reconcile')
    .description('reconcile the data plane against the desired state now (nNVE)')
    .action(async () => {
      const o = ctl.opts<{ api: string; json?: boolean }>();
      await ctlRun(async () => {
        const r = await ctlFetch(o.api, '/v1/reconcile', {});
        console.log(o.json ? JSON.stringify(r) : renderTable('result', r));
      });
    });
  ctl
    .command('deactivate')
    .description('deactivate an Activated VSI (nNVE; splitnve profile, else de-associates)')
    .requiredOption('--port <port>', 'nNVE port')
    .requiredOption('--station <mac>', 'station MAC')
    .requiredOption('--vsi <id>', 'VSI id')
    .action(async (a: { port: string; station: string; vsi: string }) => {
      const o = ctl.opts<{ api: string; json?: boolean }>();
      await ctlRun(async () => {
        const r = await ctlFetch(o.api, '/v1/deactivate', a);
        console.log(o.json ? JSON.stringify(r) : renderTable('result', r));
      });
    });

  registerCtlOps(ctl);
  registerCtlViews(ctl);

  registerAgentCommands(program);
  return program;
}

async function ctlRun(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    console.error(`splitnve ctl: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}

/** Starts a daemon; SIGTERM/SIGINT stop it cleanly; a start failure exits 1 with the reason. */
async function runDaemon<D extends { stop(): Promise<void> }>(
  name: string,
  start: () => Promise<D>,
): Promise<D> {
  let d: D;
  try {
    d = await start();
  } catch (e) {
    console.error(`splitnve ${name}: ${(e as Error).message}`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    void d.stop().then(
      () => process.exit(0),
      (e: Error) => {
        console.error(`splitnve ${name}: stop after ${sig} failed: ${e.message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return d;
}

/** True when this file is the program being run (not imported, e.g. by the docs generator). */
function isMain(): boolean {
  const arg = process.argv[1];
  if (!arg) return false;
  try {
    return realpathSync(arg) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isMain()) await buildProgram().parseAsync(process.argv);
