/**
 * Validation, normalisation and event fan-out shared by the NVA drivers.
 */
import { isIP } from 'node:net';
import type { NvaEntry, NvaEvent, NvaLogger, NveInfo, VnInfo } from './nva.js';

/** A request the NVA refuses (bad value, missing VN, wrong state); retrying will not help. */
export class NvaError extends Error {
  override readonly name = 'NvaError';
}

export const MAX_VNI = 0xffffff;

export function checkVni(vni: unknown, what = 'VNI'): number {
  if (typeof vni !== 'number' || !Number.isInteger(vni) || vni < 0 || vni > MAX_VNI) {
    throw new NvaError(`${what} ${String(vni)} is not an integer in 0..${MAX_VNI}`);
  }
  return vni;
}

const MAC_RE = /^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/i;

/** `AA:BB:CC:DD:EE:FF`, `aa-bb-cc-dd-ee-ff` or `aabbccddeeff` -> `aa:bb:cc:dd:ee:ff`. */
export function normMac(mac: unknown): string {
  if (typeof mac !== 'string' || !MAC_RE.test(mac)) {
    throw new NvaError(`MAC ${JSON.stringify(mac)} is not of the form aa:bb:cc:dd:ee:ff`);
  }
  const hex = mac.replace(/[:-]/g, '').toLowerCase();
  return hex.match(/../g)!.join(':');
}

const NVE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

export function checkNve(nve: unknown): NveInfo {
  const n = nve as Partial<NveInfo> | undefined;
  if (!n || typeof n.id !== 'string' || !NVE_ID_RE.test(n.id)) {
    throw new NvaError(
      `NVE id ${JSON.stringify(n?.id)} must be 1-128 characters of [A-Za-z0-9._:@-] (no '/')`,
    );
  }
  if (typeof n.vtep !== 'string' || isIP(n.vtep) === 0) {
    throw new NvaError(`NVE ${n.id}: vtep ${JSON.stringify(n.vtep)} is not an IP address`);
  }
  return { id: n.id, vtep: n.vtep };
}

export function checkVn(vn: unknown): VnInfo {
  const v = vn as Partial<VnInfo> | undefined;
  if (!v || typeof v !== 'object') throw new NvaError(`VN ${JSON.stringify(vn)} is not an object`);
  const vni = checkVni(v.vni);
  const out: { -readonly [K in keyof VnInfo]: VnInfo[K] } = { vni };
  if (v.name !== undefined) {
    if (typeof v.name !== 'string') throw new NvaError(`VN ${vni}: name is not a string`);
    out.name = v.name;
  }
  if (v.allowedStations !== undefined) {
    if (!Array.isArray(v.allowedStations)) {
      throw new NvaError(`VN ${vni}: allowedStations is not an array of MACs`);
    }
    out.allowedStations = v.allowedStations.map((m) => normMac(m));
  }
  if (v.maxTsis !== undefined) {
    if (typeof v.maxTsis !== 'number' || !Number.isInteger(v.maxTsis) || v.maxTsis < 0) {
      throw new NvaError(`VN ${vni}: maxTsis ${String(v.maxTsis)} is not a non-negative integer`);
    }
    out.maxTsis = v.maxTsis;
  }
  return out;
}

export type PublishedEntry = Omit<NvaEntry, 'nve' | 'vtep'>;

export function checkPublish(e: unknown): PublishedEntry {
  const x = e as Partial<PublishedEntry> | undefined;
  if (!x || typeof x !== 'object')
    throw new NvaError(`entry ${JSON.stringify(e)} is not an object`);
  const vni = checkVni(x.vni);
  const mac = normMac(x.mac);
  if (x.kind !== 'mapping' && x.kind !== 'forwarding') {
    throw new NvaError(
      `entry ${vni}/${mac}: kind ${JSON.stringify(x.kind)} is not mapping|forwarding`,
    );
  }
  if (!Array.isArray(x.ips)) throw new NvaError(`entry ${vni}/${mac}: ips is not an array`);
  for (const ip of x.ips) {
    if (typeof ip !== 'string' || isIP(ip) === 0) {
      throw new NvaError(`entry ${vni}/${mac}: ${JSON.stringify(ip)} is not an IP address`);
    }
  }
  return { vni, mac, ips: [...x.ips], kind: x.kind };
}

/** Parses stored VN JSON; undefined (and a warning) if it is not a valid VN. */
export function parseVn(raw: string, where: string, log?: NvaLogger): VnInfo | undefined {
  try {
    return checkVn(JSON.parse(raw));
  } catch (err) {
    log?.warn({ where, err: String(err) }, 'nva: ignoring invalid VN record');
    return undefined;
  }
}

export function parseEntry(raw: string, where: string, log?: NvaLogger): NvaEntry | undefined {
  try {
    const x = JSON.parse(raw) as Partial<NvaEntry>;
    const p = checkPublish(x);
    const n = checkNve({ id: x.nve, vtep: x.vtep });
    return { ...p, nve: n.id, vtep: n.vtep };
  } catch (err) {
    log?.warn({ where, err: String(err) }, 'nva: ignoring invalid entry record');
    return undefined;
  }
}

export function parseNve(raw: string, where: string, log?: NvaLogger): NveInfo | undefined {
  try {
    return checkNve(JSON.parse(raw));
  } catch (err) {
    log?.warn({ where, err: String(err) }, 'nva: ignoring invalid NVE record');
    return undefined;
  }
}

/** Stable JSON for comparisons (fixed key order). */
export function entryJson(e: NvaEntry): string {
  return JSON.stringify({
    vni: e.vni,
    mac: e.mac,
    ips: e.ips,
    nve: e.nve,
    vtep: e.vtep,
    kind: e.kind,
  });
}

export function vnJson(v: VnInfo): string {
  return JSON.stringify({
    vni: v.vni,
    name: v.name,
    allowedStations: v.allowedStations,
    maxTsis: v.maxTsis,
  });
}

/**
 * Delivers events to handlers. A throwing handler does not stop the others nor the driver: the
 * error goes to the logger, or (no logger) is re-thrown on a later tick so it is not lost.
 */
export class EventHub {
  private readonly handlers = new Set<(e: NvaEvent) => void>();
  constructor(private readonly log?: NvaLogger) {}

  on(h: (e: NvaEvent) => void): () => void {
    const wrapped = (e: NvaEvent): void => h(e);
    this.handlers.add(wrapped);
    return () => {
      this.handlers.delete(wrapped);
    };
  }

  emit(e: NvaEvent): void {
    for (const h of [...this.handlers]) {
      try {
        h(e);
      } catch (err) {
        if (this.log)
          this.log.error({ err: String(err), event: e.type }, 'nva: event handler threw');
        else
          setImmediate(() => {
            throw err;
          });
      }
    }
  }
}
