/**
 * A small client of the tNVE HTTP API for the CLI, the libvirt hook and the CNI plugin:
 * `HOST:PORT` or `unix:/path/to.sock`, JSON in and out, problem+json errors turned into
 * exceptions that carry the answer, and the server-sent event stream.
 */
import { request, type IncomingMessage } from 'node:http';
import { parseListen } from '../daemon/api.js';

export const DEFAULT_TNVE_API = '127.0.0.1:8741';

export type ApiAddress =
  { readonly socketPath: string } | { readonly host: string; readonly port: number };

export function parseApiAddress(text: string): ApiAddress {
  const a = parseListen(text);
  return 'path' in a ? { socketPath: a.path } : a;
}

export class ApiCallError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    message: string,
  ) {
    super(message);
  }
}

function open(
  api: string,
  method: string,
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<IncomingMessage> {
  const addr = parseApiAddress(api);
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...addr,
        agent: false,
        method,
        path,
        headers: {
          accept: 'application/json',
          ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}),
        },
        timeout: timeoutMs,
      },
      resolve,
    );
    req.on('timeout', () =>
      req.destroy(new Error(`no answer from the tNVE at ${api} within ${timeoutMs} ms`)),
    );
    req.on('error', (e) =>
      reject(new Error(`tNVE API at ${api}: ${(e as Error).message}`, { cause: e })),
    );
    if (data) req.write(data);
    req.end();
  });
}

/** Calls the API; resolves with the JSON answer, rejects with ApiCallError on a 4xx/5xx. */
export async function apiCall<T = unknown>(
  api: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 120_000,
): Promise<T> {
  const res = await open(api, method, path, body, timeoutMs);
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { detail: text };
  }
  const status = res.statusCode ?? 0;
  if (status >= 400) {
    const b = (json ?? {}) as Record<string, unknown>;
    const detail = typeof b.detail === 'string' ? b.detail : text;
    throw new ApiCallError(status, b, `${b.title ?? `HTTP ${status}`}: ${detail}`);
  }
  return json as T;
}

export interface SseEvent {
  readonly id?: string;
  readonly event: string;
  readonly data: unknown;
}

/**
 * Follows GET /v1/events (or `path`) until `signal` aborts or the server closes; calls `onEvent` for each
 * event. Resolves when the stream ends.
 */
export async function followEvents(
  api: string,
  onEvent: (e: SseEvent) => void,
  signal?: AbortSignal,
  /** Another event stream of the daemon, e.g. `/v1/log/stream?limit=10`. */
  path = '/v1/events',
): Promise<void> {
  const res = await open(api, 'GET', path, undefined, 0);
  if ((res.statusCode ?? 0) !== 200) throw new Error(`GET ${path}: HTTP ${res.statusCode}`);
  const stop = (): void => {
    res.destroy();
  };
  signal?.addEventListener('abort', stop, { once: true });
  let buf = '';
  try {
    for await (const chunk of res) {
      buf += (chunk as Buffer).toString('utf8');
      for (;;) {
        const end = buf.indexOf('\n\n');
        if (end < 0) break;
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let event = 'message';
        let id: string | undefined;
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const i = line.indexOf(':');
          const k = i < 0 ? line : line.slice(0, i);
          const v = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
          if (k === 'event') event = v;
          else if (k === 'id') id = v;
          else if (k === 'data') data.push(v);
        }
        if (data.length === 0) continue;
        let parsed: unknown = data.join('\n');
        try {
          parsed = JSON.parse(parsed as string);
        } catch {
          // plain text data
        }
        onEvent({ ...(id !== undefined ? { id } : {}), event, data: parsed });
      }
    }
  } catch (e) {
    if (!signal?.aborted) throw e;
  } finally {
    signal?.removeEventListener('abort', stop);
  }
}
