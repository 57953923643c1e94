/**
 * In-process memory probe of the nNVE core, free of the machine's noise: heap bytes per VSI of
 * BridgeNode + VlanPoolPolicy after associating stations x VSIs (station machines discarded),
 * then the same VSIs written to an NnveStore and reloaded as after a restart (time and heap).
 *
 *   node --expose-gc dist/bench/heap-probe.js [--stations 1000] [--vsis 100]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRandom } from '../src/core/random.js';
import { NnveStore } from '../src/nnve/store.js';
import { BridgeNode, type BridgeNodeEvent } from '../src/node/bridge-node.js';
import { StationNode, type StationNodeOutput } from '../src/node/station-node.js';
import { VlanPoolPolicy } from '../src/policy/vlan-pool.js';
import { benchSpec, stationMac } from './lib/loadgen.js';
import { EVB } from './lib/config.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
}

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with node --expose-gc');
  process.exit(2);
}
const heap = (): number => {
  gc();
  return process.memoryUsage().heapUsed;
};

const S = arg('stations', 1000);
const PER = arg('vsis', 100);
const BR = '02:5b:ff:00:0b:01';
const port = 'p0';
const newBridge = (policy: VlanPoolPolicy): BridgeNode =>
  new BridgeNode({
    ports: [{ name: port, mac: BR, evb: { values: EVB } }],
    profile: 'splitnve',
    policy,
    random: seededRandom(1),
  });

let now = 1_000_000;

/** Associates every VSI, committing to `store` as the daemon does; heap per VSI of the bridge side. */
function associate(store: NnveStore): { n: number; bytesPerVsi: number } {
  const policy = new VlanPoolPolicy([{ min: 100, max: 3999 }]);
  const bridge = newBridge(policy);
  bridge.start(now);
  const h0 = heap();
  for (let i = 0; i < S; i++) {
    const st = new StationNode({
      uplinks: [{ name: 'e', mac: stationMac(i), peer: BR, evb: { values: EVB } }],
      profile: 'splitnve',
      random: seededRandom(i + 7),
    });
    let toBridge: Uint8Array[] = [];
    const take = (outs: readonly StationNodeOutput[]): void => {
      for (const o of outs) if (o.type === 'transmit') toBridge.push(o.frame);
    };
    take(st.start(now));
    for (let j = 0; j < PER; j++) {
      take(
        st.request('e', { mode: 3, spec: benchSpec(i, j, 10_000 + ((i * PER + j) % 1000)) }, now),
      );
    }
    for (let round = 0; round < 1000 && toBridge.length > 0; round++) {
      now += 100;
      const frames = toBridge;
      toBridge = [];
      const back: Uint8Array[] = [];
      for (const f of frames) {
        const events: BridgeNodeEvent[] = [];
        for (const o of bridge.handleFrame(port, f, now)) {
          if (o.type === 'transmit') back.push(o.frame);
          else events.push(o.event);
        }
        store.apply(events, () => bridge.rememberable());
      }
      for (const f of back) take(st.handleFrame('e', f, now));
    }
  }
  const n = bridge.vsis().length;
  const h1 = heap();
  return { n, bytesPerVsi: Math.round((h1 - h0) / n) };
}

const dir = mkdtempSync(join(tmpdir(), 'snb-heap-'));
try {
  const store = new NnveStore(dir);
  const { n, bytesPerVsi } = associate(store);
  store.close();
  const h2 = heap();
  const t0 = performance.now();
  const again = new NnveStore(dir);
  const tsis = again.loadTsis();
  const tLoad = performance.now() - t0;
  const policy2 = new VlanPoolPolicy([{ min: 100, max: 3999 }]);
  for (const t of tsis) policy2.restore(t.port, t.station, t.vsi);
  const bridge2 = newBridge(policy2);
  bridge2.restore(tsis, now, again.loadStations());
  const tRestore = performance.now() - t0;
  tsis.length = 0;
  again.close();
  const h3 = heap();
  console.log(
    JSON.stringify({
      stations: S,
      vsis: n,
      bridgeHeapBytesPerVsi: bytesPerVsi,
      reloaded: bridge2.vsis().length,
      reloadMs: Math.round(tLoad),
      reloadAndRestoreMs: Math.round(tRestore),
      restoredHeapBytesPerVsi: Math.round((h3 - h2) / n),
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
