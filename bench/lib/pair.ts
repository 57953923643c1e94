/**
 * The bench's wiring: two namespaces (`<id>-st`, `<id>-br`) joined by one veth pair, station end
 * `vst0`, bridge end `vbr0`. Every daemon of a comparison (our nNVE, lldpad's bridge, lldpad's
 * station, the load generator) runs on these same two interfaces, one after the other.
 */
import { Lab } from '../../test/harness/netns.js';
import { NnveProcess } from './nnve.js';

/** Namespace prefix of everything the benchmark creates. */
export const BENCH_PREFIX = 'snb';
export const STATION_IF = 'vst0';
export const BRIDGE_IF = 'vbr0';
export const STATION_IF_MAC = '02:5b:ff:00:00:01';
export const BRIDGE_MAC = '02:5b:ff:00:0b:01';

export interface BenchPair {
  readonly lab: Lab;
  readonly st: string;
  readonly br: string;
  /** Unix socket that reaches 127.0.0.1:8740 in the bridge namespace (the nNVE API). */
  readonly api: string;
}

export async function createPair(): Promise<BenchPair> {
  const lab = Lab.create(BENCH_PREFIX);
  try {
    const st = await lab.addNetns('st');
    const br = await lab.addNetns('br');
    await lab.addVeth(
      { netns: st, name: STATION_IF, mac: STATION_IF_MAC },
      { netns: br, name: BRIDGE_IF, mac: BRIDGE_MAC },
    );
    const api = NnveProcess.startProxy(lab, br);
    return { lab, st, br, api };
  } catch (e) {
    await lab.close();
    throw e;
  }
}
