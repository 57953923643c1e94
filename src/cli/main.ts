#!/usr/bin/env node
/** The `splitnve` command. Each subcommand lives in its own module. */
import { Command, InvalidArgumentError } from 'commander';
import { decodeInputs } from './decode.js';
import { runDemo } from './demo.js';

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

  return program;
}

await buildProgram().parseAsync(process.argv);
