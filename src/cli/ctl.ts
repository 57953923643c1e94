/** `splitnve ctl`: reads and changes a running daemon's state over its HTTP API. */
import { apiCall, ApiCallError } from '../tnve/client.js';

export interface CtlOptions {
  readonly api: string;
  readonly json?: boolean;
}

/** GET (no body) or POST (body) on the daemon's API at HOST:PORT or unix:/path. */
export async function ctlFetch(api: string, path: string, body?: unknown): Promise<unknown> {
  const addr = api.replace(/^https?:\/\//, '').replace(/\/$/, '');
  try {
    return await apiCall(addr, body === undefined ? 'GET' : 'POST', path, body, 60_000);
  } catch (e) {
    if (e instanceof ApiCallError) throw new Error(`${e.status} ${e.message}`, { cause: e });
    throw new Error(`cannot reach the daemon at ${api}: ${(e as Error).message}`, { cause: e });
  }
}

/** Columns shown in the human table of each listing. */
const COLUMNS: Record<string, string[]> = {
  stations: [
    'port',
    'station',
    'vsis',
    'profile',
    'groupId',
    'lastHeardMsAgo',
    'evb.rka',
    'ecp.txRequests',
    'ecp.rxRequests',
    'vdp.refused',
  ],
  vsis: [
    'port',
    'station',
    'uplink',
    'vsi',
    'state',
    'vdpState',
    'entries',
    'expiresInMs',
    'nextKeepAliveInMs',
  ],
  vaps: ['segment', 'vni', 'vid', 'tsis', 'stations', 'ports'],
  peers: [
    'port',
    'uplink',
    'peer',
    'negotiated.r',
    'negotiated.rte',
    'negotiated.rwd',
    'negotiated.rka',
    'negotiated.groupId',
    'ttlLeftS',
  ],
  ports: ['name', 'mac', 'status.up', 'stats.rxFrames', 'stats.txFrames', 'stats.rxDropped'],
  uplinks: [
    'name',
    'mac',
    'status.up',
    'bridge',
    'profile',
    'groupId',
    'evb.rka',
    'ecp.txRequests',
    'vdp.requests',
  ],
};

function get(o: unknown, path: string): unknown {
  let cur: unknown = o;
  for (const p of path.split('.'))
    cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[p] : undefined;
  return cur;
}

function cell(v: unknown): string {
  if (v === undefined || v === null) return '-';
  if (Array.isArray(v)) {
    return v
      .map((x) =>
        x && typeof x === 'object'
          ? Object.entries(x)
              .filter(([k]) => ['groupId', 'mac', 'vid', 'ipv4', 'ipv6'].includes(k))
              .map(([k, val]) => `${k === 'groupId' ? 'vni' : k}=${String(val)}`)
              .join(' ')
          : String(x),
      )
      .join('; ');
  }
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function renderTable(what: string, data: unknown): string {
  if (!Array.isArray(data)) return renderObject(data);
  if (data.length === 0) return `(no ${what})`;
  const cols = (COLUMNS[what] ?? Object.keys(data[0] as object)).filter((c) =>
    data.some((r) => get(r, c) !== undefined),
  );
  const rows = data.map((r) => cols.map((c) => cell(get(r, c))));
  const widths = cols.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((x, i) => x.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(cols.map((c) => c.toUpperCase())), ...rows.map(line)].join('\n');
}

function renderObject(o: unknown, indent = ''): string {
  if (!o || typeof o !== 'object') return `${indent}${String(o)}`;
  const lines: string[] = [];
  for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      lines.push(`${indent}${k}:`);
      lines.push(renderObject(v, indent + '  '));
    } else lines.push(`${indent}${k}: ${cell(v)}`);
  }
  return lines.join('\n');
}
