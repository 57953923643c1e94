/** `splitnve ctl`: reads and changes a running daemon's state over its HTTP API. */
import { request } from 'node:http';

export interface CtlOptions {
  readonly api: string;
  readonly json?: boolean;
}

function baseUrl(api: string): string {
  return api.startsWith('http') ? api.replace(/\/$/, '') : `http://${api}`;
}

/** One HTTP exchange over a unix socket (fetch cannot use one). */
function unixRequest(
  path: string,
  url: string,
  body: string | undefined,
): Promise<{ status: number; ok: boolean; statusText: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: path,
        path: url,
        method: body === undefined ? 'GET' : 'POST',
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          resolve({
            status,
            ok: status >= 200 && status < 300,
            statusText: res.statusMessage ?? '',
            text: Buffer.concat(chunks).toString('utf8'),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** GET (no body) or POST (JSON body) to a daemon API: HOST:PORT, http(s)://…, or unix:PATH. */
export async function ctlFetch(api: string, path: string, body?: unknown): Promise<unknown> {
  let res: { status: number; ok: boolean; statusText: string; text: string };
  const json = body === undefined ? undefined : JSON.stringify(body);
  try {
    if (api.startsWith('unix:')) {
      res = await unixRequest(api.slice(5), path, json);
    } else {
      const r = await fetch(`${baseUrl(api)}${path}`, {
        method: json === undefined ? 'GET' : 'POST',
        headers: json === undefined ? {} : { 'content-type': 'application/json' },
        ...(json === undefined ? {} : { body: json }),
      });
      res = { status: r.status, ok: r.ok, statusText: r.statusText, text: await r.text() };
    }
  } catch (e) {
    throw new Error(
      `cannot reach the daemon at ${api}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`,
      { cause: e },
    );
  }
  const text = res.text;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = text;
  }
  if (!res.ok) {
    const p = data as { title?: string; detail?: string };
    throw new Error(`${res.status} ${p.title ?? res.statusText}: ${p.detail ?? text}`);
  }
  return data;
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
  vaps: ['segment', 'vni', 'vn.name', 'vid', 'state', 'tsis', 'explicit', 'stations', 'ports'],
  tags: ['segment', 'vni', 'vid', 'refs', 'heldUntil'],
  tsis: ['port', 'station', 'vsiId', 'state', 'endpoints', 'connects', 'migration', 'superseded'],
  vns: ['vni', 'name', 'allowedStations', 'maxTsis'],
  remotes: ['vni', 'mac', 'nve', 'vtep', 'kind', 'programmed'],
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
    if (v.length === 0) return '(none)';
    return v
      .map((x) =>
        x && typeof x === 'object'
          ? Object.entries(x)
              .filter(([k]) => ['groupId', 'vni', 'mac', 'vid', 'ipv4', 'ipv6', 'ips'].includes(k))
              .map(([k, val]) => `${k === 'groupId' ? 'vni' : k}=${String(val)}`)
              .join(' ')
          : String(x),
      )
      .join('; ');
  }
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Rows under a header line of the column names; columns padded to their widest cell. */
function grid(cols: readonly string[], data: readonly unknown[]): string {
  const rows = data.map((r) => cols.map((c) => cell(get(r, c))));
  const widths = cols.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((x, i) => x.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(cols.map((c) => c.toUpperCase())), ...rows.map(line)].join('\n');
}

export function renderTable(what: string, data: unknown): string {
  if (!Array.isArray(data)) return renderObject(data);
  if (data.length === 0) return `(no ${what})`;
  const cols = (COLUMNS[what] ?? Object.keys(data[0] as object)).filter((c) =>
    data.some((r) => get(r, c) !== undefined),
  );
  return grid(cols, data);
}

/**
 * An object as `key: value` lines; nested objects indented under their key, and a list of
 * objects (the VAPs of `ctl dataplane`, the NVEs of `ctl nva`) as a table of every field any
 * of its rows has.
 */
function renderObject(o: unknown, indent = ''): string {
  if (!isRecord(o)) return `${indent}${cell(o)}`;
  const lines: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (Array.isArray(v) && v.length > 0 && v.every(isRecord)) {
      const cols = [...new Set(v.flatMap((r) => Object.keys(r)))];
      lines.push(`${indent}${k}:`);
      for (const l of grid(cols, v).split('\n')) lines.push(`${indent}  ${l}`);
    } else if (isRecord(v) && Object.keys(v).length > 0) {
      lines.push(`${indent}${k}:`);
      lines.push(renderObject(v, indent + '  '));
    } else lines.push(`${indent}${k}: ${isRecord(v) ? '(none)' : cell(v)}`);
  }
  return lines.join('\n');
}
