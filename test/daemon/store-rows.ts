/** TSI events for store tests (also imported by a child process). */
import type { BridgeNodeEvent } from '../../src/node/bridge-node.js';
import type { BridgeVsi } from '../../src/vdp/bridge.js';
import { managerIdFromString, vsiKey } from '../../src/wire/vdp.js';

const MGR = managerIdFromString('nvemgr1');

export function tsiEvent(n: number): BridgeNodeEvent {
  const id = new Uint8Array(16);
  new DataView(id.buffer).setUint32(12, n);
  const vsi: BridgeVsi = {
    key: vsiKey(5, id),
    vsiId: `id-${n}`,
    managerId: MGR,
    typeId: 7,
    typeVersion: 1,
    idFormat: 5,
    id,
    filterFormat: 4,
    entries: [{ groupId: 5000, mac: '52:54:00:00:00:01', ps: 0, pcp: 0, vid: 300 }],
    state: 'associated',
    hints: {},
    orgTlvs: [],
    since: 0,
  };
  return {
    type: 'tsi',
    port: 'swp1',
    station: `02:00:00:00:${(n >> 8) & 0xff}:${n & 0xff}`,
    key: vsi.key,
    vsiId: vsi.vsiId,
    from: 'init',
    to: 'associated',
    cause: 'request',
    vsi,
  };
}
