/**
 * Picks an NVA driver from configuration: `embedded` (default; SQLite file) or `etcd`.
 */
import { EmbeddedNva, type EmbeddedNvaOptions } from './embedded.js';
import { EtcdNva, type EtcdNvaOptions } from './etcd.js';
import type { Nva } from './nva.js';

export type NvaConfig =
  | ({ readonly driver: 'embedded' } & EmbeddedNvaOptions)
  | ({ readonly driver: 'etcd' } & EtcdNvaOptions);

export function createNva(cfg: NvaConfig): Nva {
  switch (cfg.driver) {
    case 'embedded':
      return new EmbeddedNva(cfg);
    case 'etcd':
      return new EtcdNva(cfg);
  }
}

export type { Nva, NvaEntry, NvaEvent, NvaLogger, NveInfo, PutVnOptions, VnInfo } from './nva.js';
export { NvaError } from './common.js';
export { NvaUnavailableError } from './etcd.js';
export { EmbeddedNva, EtcdNva };
export type { EmbeddedNvaOptions, EtcdNvaOptions };
