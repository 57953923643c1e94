/**
 * A small OVSDB management-protocol client (RFC 7047): JSON-RPC 1.0 over a unix stream socket,
 * with `transact`, `list_dbs` and answers to the server's `echo` keep-alive. No monitor.
 *
 * RFC 7047 messages are JSON texts sent back to back with no framing, so the reader splits the
 * byte stream at the end of each top-level JSON value (JsonSplitter).
 */
import { connect, type Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';

export class OvsdbError extends Error {
  override readonly name = 'OvsdbError';
}

/** Splits a stream of concatenated JSON objects/arrays into individual texts. */
export class JsonSplitter {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = 0;
  private scanned = 0;

  /** Feeds more text; returns the complete top-level JSON texts it finished. */
  push(text: string): string[] {
    this.buf += text;
    const out: string[] = [];
    for (let i = this.scanned; i < this.buf.length; i++) {
      const c = this.buf[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
        continue;
      }
      if (c === '"') this.inString = true;
      else if (c === '{' || c === '[') {
        if (this.depth === 0) this.start = i;
        this.depth++;
      } else if (c === '}' || c === ']') {
        this.depth--;
        if (this.depth < 0) throw new OvsdbError(`unbalanced JSON from server near offset ${i}`);
        if (this.depth === 0) out.push(this.buf.slice(this.start, i + 1));
      } else if (this.depth === 0 && !/\s/.test(c!)) {
        throw new OvsdbError(`unexpected ${JSON.stringify(c)} between JSON messages`);
      }
    }
    if (this.depth === 0) {
      this.buf = '';
      this.scanned = 0;
    } else {
      this.buf = this.buf.slice(this.start);
      this.start = 0;
      this.scanned = this.buf.length;
    }
    return out;
  }
}

/** OVSDB JSON value encodings (RFC 7047 §5.1). */
export type OvsdbAtom = string | number | boolean | ['uuid' | 'named-uuid', string];
export type OvsdbValue = OvsdbAtom | ['set', OvsdbAtom[]] | ['map', [OvsdbAtom, OvsdbAtom][]];
export type OvsdbRow = Record<string, unknown>;
export type OvsdbCondition = [string, string, unknown];
export type OvsdbOp = Record<string, unknown> & { op: string };

export const uuid = (u: string): ['uuid', string] => ['uuid', u];
export const namedUuid = (n: string): ['named-uuid', string] => ['named-uuid', n];
export const ovsSet = (items: OvsdbAtom[]): ['set', OvsdbAtom[]] => ['set', items];
export const ovsMap = (m: Record<string, string>): ['map', [string, string][]] => [
  'map',
  Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
];

/** The members of a set column value (an atom alone is a one-member set). */
export function setItems(v: unknown): unknown[] {
  if (Array.isArray(v) && v[0] === 'set') return v[1] as unknown[];
  return [v];
}

/** A map column value as a plain object (string keys and values). */
export function mapEntries(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(v) && v[0] === 'map') {
    for (const [k, val] of v[1] as [unknown, unknown][]) out[String(k)] = String(val);
  }
  return out;
}

/** The uuid string of a `["uuid", u]` value. */
export function uuidOf(v: unknown): string {
  if (Array.isArray(v) && v[0] === 'uuid' && typeof v[1] === 'string') return v[1];
  throw new OvsdbError(`expected a uuid, got ${JSON.stringify(v)}`);
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
  method: string;
}

export interface OvsdbClientOptions {
  /** Per-request timeout (default 10 s). */
  readonly timeoutMs?: number;
}

export class OvsdbClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedError: Error | null = null;

  private constructor(
    private readonly socket: Socket,
    readonly path: string,
    private readonly timeoutMs: number,
  ) {
    const splitter = new JsonSplitter();
    const decoder = new StringDecoder('utf8');
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const text of splitter.push(decoder.write(chunk))) this.onMessage(JSON.parse(text));
      } catch (e) {
        this.fail(new OvsdbError(`OVSDB ${path}: bad message: ${(e as Error).message}`));
        socket.destroy();
      }
    });
    socket.on('error', (e) => this.fail(new OvsdbError(`OVSDB ${path}: ${e.message}`)));
    socket.on('close', () => this.fail(new OvsdbError(`OVSDB ${path}: connection closed`)));
  }

  /** Connects to an OVSDB server's unix socket (e.g. /var/run/openvswitch/db.sock). */
  static connect(path: string, opts: OvsdbClientOptions = {}): Promise<OvsdbClient> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const socket = connect({ path });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new OvsdbError(`OVSDB ${path}: connect timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(new OvsdbError(`OVSDB ${path}: cannot connect: ${e.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new OvsdbClient(socket, path, timeoutMs));
      });
    });
  }

  private onMessage(msg: {
    id?: unknown;
    method?: unknown;
    params?: unknown;
    result?: unknown;
    error?: unknown;
  }): void {
    if (typeof msg.method === 'string') {
      // A request or notification from the server; only echo needs an answer.
      if (msg.method === 'echo' && msg.id !== undefined && msg.id !== null) {
        this.send({ id: msg.id, result: msg.params ?? [], error: null });
      }
      return;
    }
    if (typeof msg.id !== 'number') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error !== null && msg.error !== undefined) {
      p.reject(
        new OvsdbError(`OVSDB ${this.path}: ${p.method} failed: ${JSON.stringify(msg.error)}`),
      );
    } else p.resolve(msg.result);
  }

  private send(msg: unknown): void {
    this.socket.write(JSON.stringify(msg));
  }

  private fail(e: Error): void {
    if (!this.closedError) this.closedError = e;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(e);
    }
  }

  /** Sends one JSON-RPC request and resolves with its `result`. */
  request(method: string, params: unknown[]): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new OvsdbError(`OVSDB ${this.path}: ${method} timed out after ${this.timeoutMs} ms`),
        );
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer, method });
      this.send({ method, params, id });
    });
  }

  listDbs(): Promise<string[]> {
    return this.request('list_dbs', []) as Promise<string[]>;
  }

  /**
   * Runs a transaction. Resolves with one result per operation; rejects with the server's error
   * text (and the operation that caused it) if any operation or the commit failed.
   */
  async transact(db: string, ops: readonly OvsdbOp[]): Promise<Record<string, unknown>[]> {
    const result = (await this.request('transact', [db, ...ops])) as (Record<
      string,
      unknown
    > | null)[];
    if (!Array.isArray(result)) {
      throw new OvsdbError(`OVSDB ${this.path}: transact returned ${JSON.stringify(result)}`);
    }
    result.forEach((r, i) => {
      if (r && typeof r.error === 'string') {
        const where =
          i < ops.length ? ` in op ${i} (${ops[i]!.op} ${String(ops[i]!.table ?? '')})` : '';
        const details = typeof r.details === 'string' ? `: ${r.details}` : '';
        throw new OvsdbError(
          `OVSDB ${this.path}: transaction failed${where}: ${r.error}${details}`,
        );
      }
    });
    return result.map((r) => r ?? {});
  }

  close(): Promise<void> {
    this.fail(new OvsdbError(`OVSDB ${this.path}: client closed`));
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1000).unref();
    });
  }
}
