/** Pieces shared by the figures: our nNVE plus the load generator on the bench's veth pair. */
import type { EvbValues } from '../../src/evb/agent.js';
import type { Profile, VsiSpec } from '../../src/vdp/types.js';
import { uuidToString } from '../../src/wire/bytes.js';
import type { VsiSpec as VdptoolVsi } from '../../test/harness/lldpad.js';
import { waitUntil } from '../../test/harness/proc.js';
import { benchSpec, LoadGen } from '../lib/loadgen.js';
import { NnveProcess } from '../lib/nnve.js';
import { BRIDGE_IF, BRIDGE_MAC, STATION_IF, type BenchPair } from '../lib/pair.js';

let dirs = 0;

export interface Ours {
  readonly nnve: NnveProcess;
  readonly gen: LoadGen;
}

/** Starts our nNVE on vbr0 and `stations` generated stations on vst0; waits for EVB on both. */
export async function startOurs(
  pair: BenchPair,
  opts: {
    stations: number;
    profile: Profile;
    evb: EvbValues;
    cpuProfDir?: string;
    stateDir?: string;
  },
): Promise<Ours> {
  const nnve = await NnveProcess.start(pair.lab, pair.api, {
    netns: pair.br,
    ifname: BRIDGE_IF,
    stateDir: opts.stateDir ?? pair.lab.file(`state-${++dirs}`),
    profile: opts.profile,
    evb: opts.evb,
    ...(opts.cpuProfDir ? { cpuProfDir: opts.cpuProfDir } : {}),
  });
  let gen: LoadGen | undefined;
  try {
    gen = new LoadGen({
      netns: pair.st,
      ifname: STATION_IF,
      stations: opts.stations,
      bridgeMac: BRIDGE_MAC,
      profile: opts.profile,
      evb: opts.evb,
    });
    gen.start();
    const g = gen;
    await waitUntil(
      `EVB with ${opts.stations} stations`,
      async () => {
        if (g.negotiated < opts.stations) return false;
        const s = await nnve.stats();
        return (s.events['negotiated'] ?? 0) >= opts.stations;
      },
      { timeoutMs: 60_000, intervalMs: 20 },
    );
    return { nnve, gen };
  } catch (e) {
    await gen?.close();
    await nnve.stop();
    throw e;
  }
}

export async function stopOurs(o: Ours): Promise<void> {
  await o.gen.close();
  await o.nnve.stop();
}

/** VN of VSI number `k` when `vns` VNs are used. */
export function vniOf(k: number, vns: number): number {
  return 10_000 + (k % vns);
}

/** Specs of station i: `count` VSIs spread over `vns` VNs. */
export function stationSpecs(i: number, count: number, vns: number, offset = 0): VsiSpec[] {
  return Array.from({ length: count }, (_, j) => benchSpec(i, j, vniOf(offset + j, vns)));
}

/** The same VSI as vdptool takes it (for lldpad's station). */
export function vdptoolSpec(s: VsiSpec): VdptoolVsi {
  const e = s.entries[0]!;
  return {
    mgrid2: 'bench',
    typeid: s.typeId,
    typeidver: s.typeVersion,
    uuid: uuidToString(s.id),
    filters: [{ vid: e.vid, mac: e.mac!, group: e.groupId! }],
  };
}
