/**
 * L3 transport (Req-11, "over L3, mutual TLS"): Ethernet frames carrying ECP (and LLDP, so EVB
 * negotiation and the profile work as on a wire) over TLS 1.3 on TCP, with mutual certificate
 * authentication (node:tls). Both ends are `Link`s, so the same sans-IO machines run above it.
 *
 * Framing, in each direction of one TLS connection, repeated:
 *
 * ```
 *   length:16 (big-endian) | Ethernet frame of `length` octets
 *   (destination MAC, source MAC, ethertype, payload; no FCS; 14 <= length <= 1518)
 * ```
 *
 * Nothing else is sent: no hello, no padding. A length outside 14..1518 is a protocol error
 * and closes the connection.
 *
 * - nNVE side (`TlsServerLink`, one "port"): listens; each client must present a certificate
 *   signed by the configured CA (TLS 1.3 only). The certificate's identity (subject CN, or any
 *   DNS/URI subjectAltName) must be in the configured map identity -> station MAC, otherwise
 *   the connection is closed. Frames from that connection must carry that station MAC as
 *   source (others are dropped and counted): a station cannot speak for another. Frames we
 *   send to a unicast MAC go to that station's connection, group-addressed frames to all.
 *   A newer connection of the same station replaces the older one.
 * - tNVE side (`TlsClientLink`, one uplink): connects, checks the server certificate against
 *   the CA and the expected server name, presents its own; reconnects with exponential
 *   backoff (with jitter) after any failure. The link is up while connected.
 *
 * Memory stays bounded: a connection buffers at most one partial frame on receive, and at
 * most `maxWriteBuffer` octets on send (beyond that frames are dropped as txErrors: a peer
 * that does not read cannot make us hold its frames). Handshakes time out.
 */
import { readFileSync, statSync } from 'node:fs';
import type * as net from 'node:net';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import { normalizeMac } from '../wire/bytes.js';
import type { Link, LinkStats, LinkStatus } from './link.js';

export const TLS_FRAME_MIN = 14;
export const TLS_FRAME_MAX = 1518;

/** PEM texts. */
export interface TlsCredentials {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** Reads PEM files; the private key must not be accessible to group or others. */
export function readTlsCredentials(files: {
  cert: string;
  key: string;
  ca: string;
}): TlsCredentials {
  const read = (what: string, path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      throw new Error(`TLS ${what} ${path}: ${(e as Error).message}`, { cause: e });
    }
  };
  let mode: number;
  try {
    mode = statSync(files.key).mode;
  } catch (e) {
    throw new Error(`TLS key ${files.key}: ${(e as Error).message}`, { cause: e });
  }
  if ((mode & 0o077) !== 0) {
    throw new Error(
      `TLS key ${files.key}: mode ${(mode & 0o777).toString(8)} lets group or others access it; chmod 600 it`,
    );
  }
  return {
    cert: read('certificate', files.cert),
    key: read('key', files.key),
    ca: read('CA', files.ca),
  };
}

export type TlsLinkEvent =
  | { readonly type: 'listening'; readonly address: string; readonly port: number }
  | {
      readonly type: 'connected';
      readonly remote: string;
      readonly identity: string;
      readonly station?: string;
    }
  | { readonly type: 'refused'; readonly remote: string; readonly reason: string }
  | {
      readonly type: 'disconnected';
      readonly remote: string;
      readonly station?: string;
      readonly reason: string;
    }
  | { readonly type: 'frame-dropped'; readonly remote: string; readonly why: string }
  | { readonly type: 'retry'; readonly inMs: number; readonly attempt: number };

/** Names a certificate answers to: subject CN, DNS and URI subjectAltNames. */
export function certificateIdentities(cert: tls.PeerCertificate | undefined): string[] {
  if (!cert || Object.keys(cert).length === 0) return [];
  const out: string[] = [];
  const cn = cert.subject?.CN;
  if (typeof cn === 'string') out.push(cn);
  else if (Array.isArray(cn)) out.push(...(cn as string[]));
  for (const part of (cert.subjectaltname ?? '').split(/,\s*/)) {
    const m = /^(DNS|URI):(.+)$/.exec(part.trim());
    if (m) out.push(m[2]!);
  }
  return out;
}

/** Splits a TCP byte stream into frames; keeps at most one partial frame. */
class Deframer {
  private buf: Buffer = Buffer.alloc(0);

  /** Frames completed by `chunk`, or an error message when the stream is not valid framing. */
  push(chunk: Buffer): Uint8Array[] | string {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const frames: Uint8Array[] = [];
    let off = 0;
    while (this.buf.length - off >= 2) {
      const len = this.buf.readUInt16BE(off);
      if (len < TLS_FRAME_MIN || len > TLS_FRAME_MAX)
        return `frame length ${len} outside ${TLS_FRAME_MIN}..${TLS_FRAME_MAX}`;
      if (this.buf.length - off - 2 < len) break;
      frames.push(new Uint8Array(this.buf.subarray(off + 2, off + 2 + len)));
      off += 2 + len;
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(off));
    return frames;
  }
}

function frameOut(frame: Uint8Array): Buffer | undefined {
  if (frame.length < TLS_FRAME_MIN || frame.length > TLS_FRAME_MAX) return undefined;
  const b = Buffer.allocUnsafe(2 + frame.length);
  b.writeUInt16BE(frame.length, 0);
  b.set(frame, 2);
  return b;
}

function macAt(frame: Uint8Array, off: number): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + frame[off + i]!.toString(16).padStart(2, '0');
  return s;
}

const remoteOf = (s: {
  remoteAddress?: string | undefined;
  remotePort?: number | undefined;
}): string => `${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`;

abstract class TlsLinkBase implements Link {
  protected frameHandlers: ((frames: readonly Uint8Array[]) => void)[] = [];
  protected statusHandlers: ((s: LinkStatus) => void)[] = [];
  protected st: LinkStatus;
  protected counters = { rxFrames: 0, txFrames: 0, rxDropped: 0, txErrors: 0 };

  constructor(
    readonly name: string,
    readonly mac: string,
    initial: LinkStatus,
    protected readonly onEvent: ((e: TlsLinkEvent) => void) | undefined,
    protected readonly maxWriteBuffer: number,
  ) {
    this.st = initial;
  }

  abstract send(frames: readonly Uint8Array[]): void;
  abstract close(): Promise<void>;

  onFrames(handler: (frames: readonly Uint8Array[]) => void): void {
    this.frameHandlers.push(handler);
  }

  onStatus(handler: (status: LinkStatus) => void): void {
    this.statusHandlers.push(handler);
  }

  status(): LinkStatus {
    return this.st;
  }

  stats(): LinkStats {
    return { ...this.counters };
  }

  protected setStatus(s: LinkStatus): void {
    if (s.up === this.st.up && s.reason === this.st.reason) return;
    this.st = s;
    for (const h of this.statusHandlers) h(s);
  }

  protected deliver(frames: Uint8Array[]): void {
    if (frames.length === 0) return;
    this.counters.rxFrames += frames.length;
    for (const h of this.frameHandlers) h(frames);
  }

  /** Writes frames to one socket unless it is backed up beyond the limit. */
  protected write(sock: tls.TLSSocket, frames: readonly Uint8Array[]): void {
    for (const f of frames) {
      const b = frameOut(f);
      if (!b || sock.destroyed || !sock.writable || sock.writableLength > this.maxWriteBuffer) {
        this.counters.txErrors++;
        continue;
      }
      sock.write(b);
      this.counters.txFrames++;
    }
  }
}

// ----------------------------------------------------------------------------------------------
// nNVE side

export interface TlsPeerMapping {
  /** Certificate subject CN, or a DNS/URI subjectAltName. */
  readonly identity: string;
  /** The station MAC this certificate speaks for. */
  readonly station: string;
}

export interface TlsServerOptions {
  /** Port name (as the nNVE knows it). */
  readonly name: string;
  /** Our MAC on this port (source of our frames). */
  readonly mac: string;
  readonly host: string;
  readonly port: number;
  readonly credentials: TlsCredentials;
  readonly peers: readonly TlsPeerMapping[];
  /** Most simultaneous connections (default 1024). */
  readonly maxConnections?: number;
  /** Handshake time limit (default 10 s). */
  readonly handshakeTimeoutMs?: number;
  /** Octets queued per connection before frames are dropped (default 1 MiB). */
  readonly maxWriteBuffer?: number;
  readonly onEvent?: (e: TlsLinkEvent) => void;
}

interface ServerConn {
  readonly sock: tls.TLSSocket;
  readonly remote: string;
  readonly identity: string;
  readonly station: string;
  spoofed: number;
}

export class TlsServerLink extends TlsLinkBase {
  private readonly server: tls.Server;
  private byStation = new Map<string, ServerConn>();
  private readonly conns = new Set<ServerConn>();
  private readonly peerMap: Map<string, string>;
  private closing: Promise<void> | undefined;
  /** Handshakes refused (bad/missing certificate, unknown identity). */
  refused = 0;

  private constructor(private readonly o: TlsServerOptions) {
    super(
      o.name,
      normalizeMac(o.mac, `TLS port ${o.name} mac`),
      { up: false, reason: 'not listening' },
      o.onEvent,
      o.maxWriteBuffer ?? 1 << 20,
    );
    this.peerMap = new Map(
      o.peers.map((p) => [p.identity, normalizeMac(p.station, `TLS peer ${p.identity} station`)]),
    );
    this.server = tls.createServer({
      cert: o.credentials.cert,
      key: o.credentials.key,
      ca: o.credentials.ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
      handshakeTimeout: o.handshakeTimeoutMs ?? 10_000,
    });
    this.server.maxConnections = o.maxConnections ?? 1024;
    this.server.on('secureConnection', (sock) => this.accept(sock));
    // A refused handshake's socket is gone by the time we hear of it: note addresses early.
    const remotes = new WeakMap<object, string>();
    this.server.on('connection', (raw: net.Socket) => remotes.set(raw, remoteOf(raw)));
    this.server.on('tlsClientError', (err, sock) => {
      this.refused++;
      const parent = (sock as unknown as { _parent?: object })._parent;
      const remote = sock.remoteAddress
        ? remoteOf(sock)
        : ((parent && remotes.get(parent)) ?? 'unknown');
      const reason = sock.authorizationError
        ? `client certificate not accepted: ${String(sock.authorizationError)}`
        : err.message.trim();
      this.onEvent?.({ type: 'refused', remote, reason });
    });
  }

  /** Starts listening; resolves once bound. */
  static async listen(o: TlsServerOptions): Promise<TlsServerLink> {
    const l = new TlsServerLink(o);
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: Error): void =>
        reject(new Error(`TLS port ${o.name}: cannot listen on ${o.host}:${o.port}: ${e.message}`));
      l.server.once('error', onErr);
      l.server.listen(o.port, o.host, () => {
        l.server.off('error', onErr);
        resolve();
      });
    });
    l.server.on('error', (e) => l.setStatus({ up: false, reason: e.message }));
    l.setStatus({ up: true });
    const a = l.address();
    l.onEvent?.({ type: 'listening', address: a.host, port: a.port });
    return l;
  }

  address(): { host: string; port: number } {
    const a = this.server.address();
    if (a && typeof a === 'object') return { host: a.address, port: a.port };
    return { host: this.o.host, port: this.o.port };
  }

  /** Stations connected now. */
  connections(): { station: string; identity: string; remote: string }[] {
    return [...this.byStation.values()].map((c) => ({
      station: c.station,
      identity: c.identity,
      remote: c.remote,
    }));
  }

  private accept(sock: tls.TLSSocket): void {
    const remote = remoteOf(sock);
    const ids = certificateIdentities(sock.getPeerCertificate());
    const identity = ids.find((i) => this.peerMap.has(i));
    if (identity === undefined) {
      this.refused++;
      this.onEvent?.({
        type: 'refused',
        remote,
        reason: `certificate identity ${ids.length ? ids.join(', ') : '(none)'} is not mapped to a station`,
      });
      sock.destroy();
      return;
    }
    const station = this.peerMap.get(identity)!;
    const c: ServerConn = { sock, remote, identity, station, spoofed: 0 };
    const old = this.byStation.get(station);
    this.byStation.set(station, c);
    this.conns.add(c);
    if (old) old.sock.destroy();
    this.onEvent?.({ type: 'connected', remote, identity, station });
    sock.setNoDelay(true);
    const deframer = new Deframer();
    sock.on('data', (chunk: Buffer) => {
      const r = deframer.push(chunk);
      if (typeof r === 'string') {
        this.onEvent?.({ type: 'frame-dropped', remote, why: r });
        sock.destroy();
        return;
      }
      const ok: Uint8Array[] = [];
      for (const f of r) {
        if (macAt(f, 6) !== station) {
          this.counters.rxDropped++;
          if (c.spoofed++ === 0) {
            this.onEvent?.({
              type: 'frame-dropped',
              remote,
              why: `source MAC ${macAt(f, 6)} is not ${station}, the station of certificate ${identity}`,
            });
          }
          continue;
        }
        ok.push(f);
      }
      this.deliver(ok);
    });
    let reason = 'closed';
    sock.on('error', (e) => (reason = e.message));
    sock.on('close', () => {
      this.conns.delete(c);
      if (this.byStation.get(station) === c) this.byStation.delete(station);
      this.onEvent?.({ type: 'disconnected', remote, station, reason });
    });
  }

  send(frames: readonly Uint8Array[]): void {
    if (!this.st.up) {
      this.counters.txErrors += frames.length;
      return;
    }
    const group: Uint8Array[] = [];
    const byConn = new Map<ServerConn, Uint8Array[]>();
    for (const f of frames) {
      if (f.length < TLS_FRAME_MIN) {
        this.counters.txErrors++;
        continue;
      }
      if ((f[0]! & 1) === 1) {
        group.push(f);
        continue;
      }
      const c = this.byStation.get(macAt(f, 0));
      if (!c) {
        this.counters.txErrors++;
        continue;
      }
      const l = byConn.get(c) ?? [];
      l.push(f);
      byConn.set(c, l);
    }
    if (group.length > 0) for (const c of this.byStation.values()) this.write(c.sock, group);
    for (const [c, l] of byConn) this.write(c.sock, l);
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.setStatus({ up: false, reason: 'closed' });
      this.server.close(() => resolve());
      for (const c of this.conns) c.sock.destroy();
    });
    return this.closing;
  }
}

// ----------------------------------------------------------------------------------------------
// tNVE side

export interface TlsClientOptions {
  /** Uplink name. */
  readonly name: string;
  /** Our station MAC (the one the nNVE maps our certificate to). */
  readonly mac: string;
  readonly host: string;
  readonly port: number;
  readonly credentials: TlsCredentials;
  /** Name the server certificate must carry (default: `host` unless it is an IP address). */
  readonly serverName?: string;
  /** Reconnect backoff: first delay and cap (default 250 ms, 30 s), ±20 % jitter. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  readonly maxWriteBuffer?: number;
  readonly onEvent?: (e: TlsLinkEvent) => void;
  /** Jitter source in [0, 1) (default Math.random). */
  readonly random?: () => number;
}

export class TlsClientLink extends TlsLinkBase {
  private sock: tls.TLSSocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private closed = false;
  /** Connection attempts made (for tests and views). */
  connects = 0;

  constructor(private readonly o: TlsClientOptions) {
    super(
      o.name,
      normalizeMac(o.mac, `TLS uplink ${o.name} mac`),
      { up: false, reason: 'connecting' },
      o.onEvent,
      o.maxWriteBuffer ?? 1 << 20,
    );
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    this.connects++;
    const serverName = this.o.serverName ?? (isIP(this.o.host) ? undefined : this.o.host);
    const sock = tls.connect({
      host: this.o.host,
      port: this.o.port,
      cert: this.o.credentials.cert,
      key: this.o.credentials.key,
      ca: this.o.credentials.ca,
      minVersion: 'TLSv1.3',
      rejectUnauthorized: true,
      ...(serverName !== undefined ? { servername: serverName } : {}),
      ...(this.o.serverName !== undefined
        ? {
            // Verify against the configured name even when connecting to an address.
            checkServerIdentity: (_host: string, cert: tls.PeerCertificate) =>
              tls.checkServerIdentity(this.o.serverName!, cert),
          }
        : {}),
    });
    this.sock = sock;
    const remote = `${this.o.host}:${this.o.port}`;
    const deframer = new Deframer();
    let reason = 'closed';
    sock.setNoDelay(true);
    sock.on('secureConnect', () => {
      this.setStatus({ up: true });
      const ids = certificateIdentities(sock.getPeerCertificate());
      this.onEvent?.({ type: 'connected', remote, identity: ids[0] ?? '' });
    });
    sock.on('data', (chunk: Buffer) => {
      const r = deframer.push(chunk);
      if (typeof r === 'string') {
        reason = r;
        this.onEvent?.({ type: 'frame-dropped', remote, why: r });
        sock.destroy();
        return;
      }
      // The server accepted us (it sends): later failures start the backoff afresh.
      if (r.length > 0) this.attempt = 0;
      this.deliver(r);
    });
    sock.on('error', (e) => (reason = e.message));
    sock.on('close', () => {
      if (this.sock === sock) this.sock = undefined;
      this.setStatus({ up: false, reason });
      this.onEvent?.({ type: 'disconnected', remote, reason });
      this.retry();
    });
  }

  private retry(): void {
    if (this.closed) return;
    const b = this.o.backoff ?? { initialMs: 250, maxMs: 30_000 };
    const base = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(this.attempt, 30));
    const jitter = 0.8 + 0.4 * (this.o.random ?? Math.random)();
    const inMs = Math.round(base * jitter);
    this.attempt++;
    this.onEvent?.({ type: 'retry', inMs, attempt: this.attempt });
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, inMs);
  }

  send(frames: readonly Uint8Array[]): void {
    const s = this.sock;
    if (!s || !this.st.up) {
      this.counters.txErrors += frames.length;
      return;
    }
    this.write(s, frames);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const s = this.sock;
    this.sock = undefined;
    this.setStatus({ up: false, reason: 'closed' });
    if (s && !s.destroyed) {
      await new Promise<void>((resolve) => {
        s.once('close', () => resolve());
        s.destroy();
      });
    }
  }
}

/** Parses `tls://host:port` (IPv6 hosts in brackets). */
export function parseTlsUrl(url: string): { host: string; port: number } {
  const m = /^tls:\/\/(\[[0-9a-fA-F:.]+\]|[^:/\s]+):(\d{1,5})\/?$/.exec(url);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new Error(`expected tls://HOST:PORT, got ${JSON.stringify(url)}`);
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}
