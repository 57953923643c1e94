/**
 * lldpad (open-lldp, Debian package `lldpad`) as an EVB/ECP/VDP peer in a network namespace,
 * driven through lldptool and vdptool. See test/harness/README.md and
 * /work/shared/lab/LLDPAD-NOTES.md §1.
 *
 * One instance per namespace: the control socket (abstract unix socket /com/intel/lldpad) is
 * per network namespace, and the state lives in POSIX shm /dev/shm/lldpad.state, so each
 * instance gets a private mount namespace with its own tmpfs on /dev/shm:
 *   ip netns exec NS unshare --ipc --mount --propagation private \
 *     sh -c 'mount -t tmpfs tmpfs /dev/shm && exec lldpad -p -V7 -f CONF'
 * `ip netns exec`, `unshare` (without --fork) and `sh -c 'exec ...'` all exec, so the PID we
 * spawn is lldpad's own PID; readiness is `lldptool -p` answering with exactly that PID.
 */
import { writeFileSync, readFileSync } from 'node:fs';
import type { Lab } from './netns.js';
import { run, type ManagedProcess, type RunResult } from './proc.js';

export type EvbRole = 'station' | 'bridge';

/** EVB TLV parameters set with `lldptool -T -g ncb -V evb` (lldptool accepts the ranges shown). */
export interface EvbParams {
  /** evbgpid: group ids in VDP filters (BGID/SGID). Default true. */
  readonly gpid?: boolean;
  /** evbrrreq (station) / evbrrcap (bridge): reflective relay. Default true. */
  readonly rr?: boolean;
  /** ecpretries R, 0..7 (lldpad default 3). */
  readonly retries?: number;
  /** ecprte, 0..31: ECP ACK timer 10 µs·2^rte (lldpad default 8; the notes' lab used 14). */
  readonly rte?: number;
  /** vdprwd, 0..31: resource wait delay 10 µs·2^rwd (default 20 = 10.5 s). */
  readonly rwd?: number;
  /** vdprka, 0..31: keep-alive 10 µs·2^rka (default 20 = 10.5 s; 17 = 1.31 s; 16 = 0.66 s). */
  readonly rka?: number;
}

export interface LldpadOptions {
  readonly netns: string;
  readonly ifname: string;
  /** Latched from the config file's evbmode at the first EVB tick after start. */
  readonly role: EvbRole;
  readonly evb?: EvbParams;
  /** Set adminStatus=rxtx, the EVB parameters and enableTx=yes after start. Default true. */
  readonly configure?: boolean;
  /** lldpad -V level (default 7: debug; state machine transitions with µs timestamps). */
  readonly verbosity?: number;
  /**
   * Run lldpad under `stdbuf -oL` so its log reaches the file line by line (default true). Set
   * false for benchmarks at -V7 to save a write() per log line.
   */
  readonly lineBufferedLog?: boolean;
  /** Readiness timeout (default 10 s). */
  readonly readyTimeoutMs?: number;
  /** How to reach the namespace for lldptool/vdptool calls (default 'nsenter'; see VdpTool). */
  readonly enter?: NetnsEnter;
}

/** Seconds since the start of the lldpad process's spawn, per phase. */
export interface LldpadTimings {
  /** spawn → clif socket answers with our PID and the interface is known. */
  readonly readyMs: number;
  /** The three lldptool configuration calls. */
  readonly configureMs: number;
}

/** The EVB TLV as `lldptool -t [-n] -g ncb -V evb` prints it. */
export interface EvbTlv {
  readonly bridgeStatus: number;
  readonly stationStatus: number;
  readonly bgid: boolean;
  readonly rrcap: boolean;
  readonly rrctr: boolean;
  readonly sgid: boolean;
  readonly rrreq: boolean;
  /** 0 = no, 1 = yes, 3 = unknown (nothing received yet). */
  readonly rrstat: number;
  readonly retries: number;
  readonly rte: number;
  readonly mode: EvbRole;
  /** r/l of RWD: true when the value is the peer's (peer >= own). */
  readonly rwdRemote: boolean;
  readonly rwd: number;
  readonly rkaRemote: boolean;
  readonly rka: number;
  /** The 5 body octets reconstructed from the fields (as in the LLDP TLV after OUI+subtype). */
  readonly octets: readonly number[];
}

const EVB_RANGES: Record<'retries' | 'rte' | 'rwd' | 'rka', number> = {
  retries: 7,
  rte: 31,
  rwd: 31,
  rka: 31,
};

/** How lldptool/vdptool enter the namespace: nsenter (net ns only, cheaper) or ip netns exec. */
export type NetnsEnter = 'nsenter' | 'ip-netns-exec';

export function netnsCommand(
  enter: NetnsEnter,
  netns: string,
  cmd: string,
  args: readonly string[],
): [string, string[]] {
  return enter === 'nsenter'
    ? ['nsenter', [`--net=/run/netns/${netns}`, cmd, ...args]]
    : ['ip', ['netns', 'exec', netns, cmd, ...args]];
}

/** The lldpad config file: only evbmode for the ncb agent of one interface (notes §1). */
export function lldpadConfig(ifname: string, role: EvbRole): string {
  return [
    'nearest_customer_bridge :',
    '{',
    `  ${ifname} :`,
    '  {',
    '    tlvid0080c20d :',
    '    {',
    `      evbmode = "${role}";`,
    '    };',
    '  };',
    '};',
    '',
  ].join('\n');
}

/** `-c key=value` arguments for `lldptool -T -V evb`, range-checked. */
export function evbArgs(role: EvbRole, p: EvbParams): string[] {
  const kv: string[] = [];
  const yn = (b: boolean): string => (b ? 'yes' : 'no');
  kv.push(`evbgpid=${yn(p.gpid ?? true)}`);
  kv.push(`${role === 'station' ? 'evbrrreq' : 'evbrrcap'}=${yn(p.rr ?? true)}`);
  const names: Record<keyof typeof EVB_RANGES, string> = {
    retries: 'ecpretries',
    rte: 'ecprte',
    rwd: 'vdprwd',
    rka: 'vdprka',
  };
  for (const key of ['retries', 'rte', 'rwd', 'rka'] as const) {
    const v = p[key];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v < 0 || v > EVB_RANGES[key]) {
      throw new Error(`EVB ${key} (${names[key]}) = ${v}: lldptool accepts 0..${EVB_RANGES[key]}`);
    }
    kv.push(`${names[key]}=${v}`);
  }
  return kv.flatMap((x) => ['-c', x]);
}

/** Timer value 10 µs·2^exp in milliseconds (RTE, RWD, RKA). */
export function evbTimerMs(exp: number): number {
  return 0.01 * 2 ** exp;
}

/**
 * Parses the EVB TLV printout of lldptool (`-t [-n] -g ncb -V evb`); null when it holds none
 * (enableTx off, nothing received).
 */
export function parseEvbTlv(text: string): EvbTlv | null {
  if (!text.includes('EVB Configuration TLV')) return null;
  const m =
    /bridge:[a-z,]*\((0x[0-9a-f]+|[0-9a-f]+)\)\s+station:[a-z,]*\((0x[0-9a-f]+|[0-9a-f]+)\)\s+retries:(\d+) rte:(\d+)\s+mode:(station|bridge) r\/l:([01]) rwd:(\d+)\s+r\/l:([01]) rka:(\d+)/.exec(
      text,
    );
  if (!m) throw new Error(`unexpected lldptool EVB TLV output:\n${text}`);
  const num = (i: number): number => Number(m[i]);
  const bridgeStatus = parseInt(m[1]!, 16);
  const stationStatus = parseInt(m[2]!, 16);
  const retries = num(3);
  const rte = num(4);
  const mode = m[5] as EvbRole;
  const rwdRemote = m[6] === '1';
  const rwd = num(7);
  const rkaRemote = m[8] === '1';
  const rka = num(9);
  return {
    bridgeStatus,
    stationStatus,
    bgid: (bridgeStatus & 0x04) !== 0,
    rrcap: (bridgeStatus & 0x02) !== 0,
    rrctr: (bridgeStatus & 0x01) !== 0,
    sgid: (stationStatus & 0x08) !== 0,
    rrreq: (stationStatus & 0x04) !== 0,
    rrstat: stationStatus & 0x03,
    retries,
    rte,
    mode,
    rwdRemote,
    rwd,
    rkaRemote,
    rka,
    octets: [
      bridgeStatus,
      stationStatus,
      (retries << 5) | rte,
      ((mode === 'bridge' ? 1 : 2) << 6) | (rwdRemote ? 0x20 : 0) | rwd,
      (rkaRemote ? 0x20 : 0) | rka,
    ],
  };
}

/** `key=value` lines (as printed by `lldptool -t -V evb -c`). */
export function parseKeyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// vdptool

export type VdpMode = 'assoc' | 'preassoc' | 'preassoc-rr' | 'deassoc';
export type VdpHints = 'none' | 'to' | 'from';

/**
 * One filter entry. The format follows from the fields: vid only → fif 1 ("vlan"), +mac → fif 2
 * ("vlan-mac"), +group → fif 3 ("vlan--group"), +mac+group → fif 4 ("vlan-mac-group").
 * vdptool's "vlan" is the whole 16-bit field: PS(1) PCP(3) VID(12).
 */
export interface VdpFilter {
  readonly vid: number;
  readonly pcp?: number;
  readonly ps?: boolean;
  readonly mac?: string;
  readonly group?: number;
}

export interface ParsedFilter extends VdpFilter {
  readonly format: 1 | 2 | 3 | 4;
  /** The raw 16-bit field (PS|PCP|VID). */
  readonly vlanField: number;
}

export interface VsiSpec {
  /** Manager id: up to 15 alphanumerics, or a UUID (see notes §3.3 for hex-only strings). */
  readonly mgrid2: string;
  readonly typeid: number;
  readonly typeidver: number;
  /** VSI instance id (UUID; lldpad checks only loosely, quirk Q9). */
  readonly uuid: string;
  readonly hints?: VdpHints;
  /** One or more entries of the same format. */
  readonly filters: readonly VdpFilter[];
  /** vdptool `oui=` values, e.g. 'cisco,...' (rarely needed). */
  readonly oui?: readonly string[];
}

/** A VSI as vdptool prints it (query `-t` or the `-W` "Response from VDP" event). */
export interface VsiRecord {
  readonly mode: string;
  readonly mgrid2: string;
  readonly typeid: number;
  readonly typeidver: number;
  readonly uuid: string;
  /**
   * Query output only: the last response status (not the hints, quirk Q8). 255 = no response
   * yet, 0 = accepted, else 0x40 bits stripped reason/flags as lldpad stores them.
   */
  readonly status: number | undefined;
  readonly filters: readonly ParsedFilter[];
  /** `-W` output: "Error returned by Bridge: ..." / "Internal Error : ..." lines. */
  readonly errors: readonly string[];
  /** Every key with all its values, as printed. */
  readonly fields: Readonly<Record<string, readonly string[]>>;
}

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function vlanField(f: VdpFilter): number {
  const pcp = f.pcp ?? 0;
  if (!Number.isInteger(f.vid) || f.vid < 0 || f.vid > 0xfff) {
    throw new Error(`VDP filter: VID ${f.vid} is not in 0..4095`);
  }
  if (!Number.isInteger(pcp) || pcp < 0 || pcp > 7)
    throw new Error(`VDP filter: PCP ${pcp} is not in 0..7`);
  return ((f.ps ? 1 : 0) << 15) | (pcp << 12) | f.vid;
}

/** vdptool filter syntax: `vlan`, `vlan-mac`, `vlan--group`, `vlan-mac-group`. */
export function formatFilter(f: VdpFilter): string {
  const vlan = vlanField(f);
  if (f.mac !== undefined && !MAC_RE.test(f.mac)) {
    throw new Error(`VDP filter: MAC '${f.mac}' is not xx:xx:xx:xx:xx:xx`);
  }
  if (
    f.group !== undefined &&
    (!Number.isInteger(f.group) || f.group < 1 || f.group > 0xffffffff)
  ) {
    throw new Error(`VDP filter: group id ${f.group} is not in 1..2^32-1`);
  }
  if (f.mac !== undefined && f.group !== undefined)
    return `${vlan}-${f.mac.toLowerCase()}-${f.group}`;
  if (f.mac !== undefined) return `${vlan}-${f.mac.toLowerCase()}`;
  if (f.group !== undefined) return `${vlan}--${f.group}`;
  return `${vlan}`;
}

/**
 * Parses a filter as vdptool prints it (or as it is typed). Printed fif 3 is `vlan-group` (one
 * dash, quirk Q8); it is told apart from fif 2 by the colons of a MAC.
 */
export function parseFilter(s: string): ParsedFilter {
  const parts = s.trim().split('-');
  const vlan = Number(parts[0]);
  if (!Number.isInteger(vlan) || vlan < 0 || vlan > 0xffff || parts[0] === '') {
    throw new Error(`VDP filter '${s}': bad vlan field`);
  }
  const base = {
    vid: vlan & 0xfff,
    pcp: (vlan >> 12) & 7,
    ps: (vlan & 0x8000) !== 0,
    vlanField: vlan,
  };
  const rest = parts.slice(1);
  const group = (g: string): number => {
    const n = Number(g);
    if (!/^\d+$/.test(g) || n < 0 || n > 0xffffffff)
      throw new Error(`VDP filter '${s}': bad group '${g}'`);
    return n;
  };
  if (rest.length === 0) return { ...base, format: 1 };
  if (rest.length === 1) {
    if (MAC_RE.test(rest[0]!)) return { ...base, format: 2, mac: rest[0]!.toLowerCase() };
    return { ...base, format: 3, group: group(rest[0]!) };
  }
  if (rest.length === 2) {
    if (rest[0] === '') return { ...base, format: 3, group: group(rest[1]!) };
    if (MAC_RE.test(rest[0]!)) {
      return { ...base, format: 4, mac: rest[0]!.toLowerCase(), group: group(rest[1]!) };
    }
  }
  throw new Error(`VDP filter '${s}' is none of vlan, vlan-mac, vlan--group, vlan-mac-group`);
}

/** `-c key=value` arguments for vdptool -T (mode, mgrid2, typeid, typeidver, uuid, hints, filter). */
export function vsiArgs(mode: VdpMode, vsi: VsiSpec): string[] {
  if (!/^[A-Za-z0-9-]{1,36}$/.test(vsi.mgrid2)) {
    throw new Error(`VSI mgrid2 '${vsi.mgrid2}' must be up to 15 alphanumerics or a UUID`);
  }
  if (!Number.isInteger(vsi.typeid) || vsi.typeid < 0 || vsi.typeid > 0xffffff) {
    throw new Error(`VSI typeid ${vsi.typeid} is not in 0..2^24-1`);
  }
  if (!Number.isInteger(vsi.typeidver) || vsi.typeidver < 0 || vsi.typeidver > 255) {
    throw new Error(`VSI typeidver ${vsi.typeidver} is not in 0..255`);
  }
  if (!UUID_RE.test(vsi.uuid)) throw new Error(`VSI uuid '${vsi.uuid}' is not a UUID`);
  if (vsi.filters.length === 0) throw new Error(`VSI ${vsi.uuid}: at least one filter is needed`);
  const kv = [
    `mode=${mode}`,
    `mgrid2=${vsi.mgrid2}`,
    `typeid=${vsi.typeid}`,
    `typeidver=${vsi.typeidver}`,
    `uuid=${vsi.uuid}`,
    `hints=${vsi.hints ?? 'none'}`,
    ...vsi.filters.map((f) => `filter=${formatFilter(f)}`),
    ...(vsi.oui ?? []).map((o) => `oui=${o}`),
  ];
  return kv.flatMap((x) => ['-c', x]);
}

/**
 * Parses vdptool output: blocks headed `VSI  N:` (query) or `Response from VDP` (-W event), each
 * followed by tab-indented `key = value` lines and, for -W errors, `Error returned by Bridge: …`.
 */
export function parseVsiList(text: string): VsiRecord[] {
  const out: VsiRecord[] = [];
  let cur: { fields: Record<string, string[]>; errors: string[] } | undefined;
  const flush = (): void => {
    if (!cur) return;
    const f = cur.fields;
    const one = (k: string): string => f[k]?.[0] ?? '';
    out.push({
      mode: one('mode'),
      mgrid2: one('mgrid2'),
      typeid: Number(one('typeid')),
      typeidver: Number(one('typeidver')),
      uuid: one('uuid').toLowerCase(),
      status: f['hints'] ? Number(one('hints')) : undefined,
      filters: (f['filter'] ?? []).map(parseFilter),
      errors: cur.errors,
      fields: f,
    });
    cur = undefined;
  };
  for (const line of text.split('\n')) {
    if (/^VSI\s+\d+:\s*$/.test(line) || /^Response from VDP\s*$/.test(line)) {
      flush();
      cur = { fields: {}, errors: [] };
      continue;
    }
    if (!cur) continue;
    const err = /^\t((?:Error returned by Bridge|Internal Error)\s*:\s*.*)$/.exec(line);
    if (err) {
      cur.errors.push(err[1]!.trim());
      continue;
    }
    const kv = /^\t([A-Za-z0-9_-]+) = (.*)$/.exec(line);
    if (kv) (cur.fields[kv[1]!] ??= []).push(kv[2]!.trim());
  }
  flush();
  return out;
}

export interface VdpResult {
  /** The `-W` response event for this VSI (undefined without wait, or if none came in 5 s). */
  readonly response: VsiRecord | undefined;
  /** Response present, for this VSI, without error lines. */
  readonly ok: boolean;
  /** Wall time of the vdptool process (spawn to exit). */
  readonly ms: number;
  readonly stdout: string;
}

export interface BulkResult {
  readonly ms: number;
  readonly issued: number;
  readonly failures: readonly { readonly uuid: string; readonly error: string }[];
}

const SHELL_TOKEN_RE = /^[A-Za-z0-9=:,._-]+$/;
const SHELL_RC_RE = /\n@@snl-rc=(\d+)@@\n/;

/**
 * A long-lived `sh` in the namespace that runs one vdptool per input line, so a call costs one
 * fork+exec inside the namespace instead of a Node spawn plus namespace entry. Requests are
 * answered in order; several may be queued.
 */
export class VdptoolShell {
  #buf = '';
  #queue: { resolve: (r: RunResult) => void; reject: (e: Error) => void; t0: number }[] = [];
  #dead: string | undefined;

  private constructor(readonly proc: ManagedProcess) {
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => this.#onData(chunk));
    void proc.exited.then((e) => this.#fail(`vdptool shell exited (${e.code ?? e.signal})`));
  }

  static start(lab: Lab, netns: string, name: string): VdptoolShell {
    const script =
      'set -f; while IFS= read -r line; do vdptool $line 2>&1; printf "\\n@@snl-rc=%d@@\\n" "$?"; done';
    const proc = lab.spawn({ name, netns, cmd: 'sh', args: ['-c', script], pipe: true });
    return new VdptoolShell(proc);
  }

  /** Requests sent and not yet answered. */
  get pending(): number {
    return this.#queue.length;
  }

  run(args: readonly string[]): Promise<RunResult> {
    if (this.#dead) return Promise.reject(new Error(this.#dead));
    for (const a of args) {
      if (!SHELL_TOKEN_RE.test(a)) {
        return Promise.reject(
          new Error(`vdptool argument '${a}' has characters the shell pool does not pass`),
        );
      }
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ resolve, reject, t0: performance.now() });
      this.proc.stdin!.write(`${args.join(' ')}\n`);
    });
  }

  #onData(chunk: string): void {
    this.#buf += chunk;
    let m: RegExpExecArray | null;
    while ((m = SHELL_RC_RE.exec(this.#buf)) !== null) {
      const out = this.#buf.slice(0, m.index + 1);
      this.#buf = this.#buf.slice(m.index + m[0].length);
      const req = this.#queue.shift();
      req?.resolve({
        code: Number(m[1]),
        signal: null,
        stdout: out,
        stderr: '',
        ms: performance.now() - req.t0,
      });
    }
  }

  #fail(why: string): void {
    this.#dead = why;
    for (const q of this.#queue.splice(0)) q.reject(new Error(why));
  }

  async stop(): Promise<void> {
    this.proc.stdin!.end();
    await this.proc.stop(1000);
  }
}

/**
 * vdptool bound to one namespace and interface. By default each call is one process (Node spawn
 * + nsenter + vdptool, a few ms); `startShells` switches to long-lived shells in the namespace,
 * which makes a call about one vdptool fork+exec. `issueMany` issues requests without waiting;
 * `waitAnswered` then polls per-VSI queries (a full query is capped at ~4 KB of text by lldpad,
 * about 25 VSIs, and silently returns nothing beyond that).
 */
export class VdpTool {
  #shells: VdptoolShell[] = [];

  constructor(
    readonly netns: string,
    readonly ifname: string,
    readonly enter: NetnsEnter = 'nsenter',
  ) {}

  /** Runs later calls through `count` long-lived shells in the namespace (stopped by lab.close). */
  startShells(lab: Lab, count = 2): void {
    for (let i = 0; i < count; i++) {
      this.#shells.push(VdptoolShell.start(lab, this.netns, `vdptool-shell-${this.ifname}-${i}`));
    }
  }

  /** Back to one process per call; stops the shells. */
  async stopShells(): Promise<void> {
    const shells = this.#shells.splice(0);
    await Promise.all(shells.map((s) => s.stop()));
  }

  /** Runs vdptool with `args` (the `-i IF` is added); never throws for a non-zero exit. */
  raw(args: readonly string[], timeoutMs = 10_000): Promise<RunResult> {
    const full = ['-i', this.ifname, ...args];
    if (this.#shells.length > 0) {
      const shell = this.#shells.reduce((a, b) => (b.pending < a.pending ? b : a));
      return shell.run(full);
    }
    const [cmd, a] = netnsCommand(this.enter, this.netns, 'vdptool', full);
    return run(cmd, a, { timeoutMs });
  }

  /**
   * vdptool -T [-W] -V MODE -c ...: throws if vdptool refuses the request (e.g. "FAILED: Invalid
   * parameters" for a mode downgrade or an unknown VSI on deassoc). With `wait` (default), also
   * throws if no response event for this VSI came within vdptool's 5 s.
   */
  async request(mode: VdpMode, vsi: VsiSpec, opts: { wait?: boolean } = {}): Promise<VdpResult> {
    const wait = opts.wait ?? true;
    const args = ['-T', ...(wait ? ['-W'] : []), '-V', mode, ...vsiArgs(mode, vsi)];
    const r = await this.raw(args);
    const text = r.stdout + r.stderr;
    if (r.code !== 0 || /FAILED/.test(text)) {
      throw new Error(
        `vdptool ${mode} of VSI ${vsi.uuid} on ${this.ifname} (netns ${this.netns}) failed ` +
          `(exit ${r.code ?? r.signal}): ${text.trim()}`,
      );
    }
    let response: VsiRecord | undefined;
    if (wait) {
      response = parseVsiList(r.stdout).find((v) => v.uuid === vsi.uuid.toLowerCase());
      if (!response) {
        throw new Error(
          `vdptool ${mode} of VSI ${vsi.uuid} on ${this.ifname} (netns ${this.netns}): no ` +
            `response for this VSI within vdptool's 5 s wait; output: ${text.trim() || '(none)'}`,
        );
      }
    }
    return { response, ok: !!response && response.errors.length === 0, ms: r.ms, stdout: r.stdout };
  }

  associate(vsi: VsiSpec, opts?: { wait?: boolean }): Promise<VdpResult> {
    return this.request('assoc', vsi, opts);
  }
  preassociate(vsi: VsiSpec, opts?: { wait?: boolean }): Promise<VdpResult> {
    return this.request('preassoc', vsi, opts);
  }
  preassociateRr(vsi: VsiSpec, opts?: { wait?: boolean }): Promise<VdpResult> {
    return this.request('preassoc-rr', vsi, opts);
  }
  deassociate(vsi: VsiSpec, opts?: { wait?: boolean }): Promise<VdpResult> {
    return this.request('deassoc', vsi, opts);
  }

  /**
   * vdptool -t -V MODE [-c uuid=...]: the station's VSIs in that mode. Station side only (the
   * bridge answers "Command not applicable"). Without uuid, lldpad returns nothing at all once the
   * answer would exceed ~4 KB (about 25 VSIs); query by uuid for more.
   */
  async query(mode: Exclude<VdpMode, 'deassoc'> = 'assoc', uuid?: string): Promise<VsiRecord[]> {
    const args = ['-t', '-V', mode, ...(uuid ? ['-c', `uuid=${uuid}`] : [])];
    const r = await this.raw(args);
    if (r.code !== 0 || /FAILED/.test(r.stdout)) {
      throw new Error(
        `vdptool query ${mode} on ${this.ifname} (netns ${this.netns}) failed ` +
          `(exit ${r.code ?? r.signal}): ${(r.stdout + r.stderr).trim()}`,
      );
    }
    return parseVsiList(r.stdout);
  }

  /** VSIs of all three modes (assoc, preassoc, preassoc-rr). */
  async queryAll(): Promise<VsiRecord[]> {
    const lists = await Promise.all(
      (['assoc', 'preassoc', 'preassoc-rr'] as const).map((m) => this.query(m)),
    );
    return lists.flat();
  }

  /** The VSI with this uuid in any mode, or undefined. */
  async find(uuid: string): Promise<VsiRecord | undefined> {
    for (const m of ['assoc', 'preassoc', 'preassoc-rr'] as const) {
      const hit = (await this.query(m, uuid)).find((v) => v.uuid === uuid.toLowerCase());
      if (hit) return hit;
    }
    return undefined;
  }

  /**
   * Issues many requests without waiting for the bridge (one vdptool process each, `concurrency`
   * at a time; lldpad queues them and ECP sends them one by one). Use `waitAnswered` afterwards.
   */
  async issueMany(
    requests: readonly { readonly mode: VdpMode; readonly vsi: VsiSpec }[],
    concurrency = 4,
  ): Promise<BulkResult> {
    const t0 = performance.now();
    const failures: { uuid: string; error: string }[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < requests.length) {
        const req = requests[next++]!;
        try {
          await this.request(req.mode, req.vsi, { wait: false });
        } catch (err) {
          failures.push({
            uuid: req.vsi.uuid,
            error: err instanceof Error ? err.message : String(err),
          });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
    return { ms: performance.now() - t0, issued: requests.length, failures };
  }

  /**
   * Polls per-uuid queries until every VSI in `uuids` has a response (status != 255) in `mode`, or
   * is gone (deassoc, or lldpad ended it). Returns the final records (absent = gone).
   */
  async waitAnswered(
    uuids: readonly string[],
    mode: Exclude<VdpMode, 'deassoc'>,
    opts: { timeoutMs?: number; concurrency?: number; intervalMs?: number } = {},
  ): Promise<Map<string, VsiRecord | undefined>> {
    const deadline = performance.now() + (opts.timeoutMs ?? 30_000);
    const pending = new Set(uuids.map((u) => u.toLowerCase()));
    const result = new Map<string, VsiRecord | undefined>();
    while (pending.size > 0) {
      const batch = [...pending];
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < batch.length) {
          const uuid = batch[next++]!;
          const rec = (await this.query(mode, uuid)).find((v) => v.uuid === uuid);
          if (!rec || rec.status !== 255) {
            result.set(uuid, rec);
            pending.delete(uuid);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, worker));
      if (pending.size === 0) break;
      if (performance.now() > deadline) {
        throw new Error(
          `${pending.size} of ${uuids.length} VSIs on ${this.ifname} (netns ${this.netns}) still ` +
            `unanswered (status 255) after ${opts.timeoutMs ?? 30_000} ms, e.g. ${[...pending][0]}`,
        );
      }
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
    }
    return result;
  }
}

// ---------------------------------------------------------------------------------------------
// lldpad

/** A running lldpad in a namespace, configured for one interface and one EVB role. */
export class Lldpad {
  readonly vdp: VdpTool;
  private constructor(
    readonly lab: Lab,
    readonly proc: ManagedProcess,
    readonly netns: string,
    readonly ifname: string,
    readonly role: EvbRole,
    readonly configFile: string,
    readonly enter: NetnsEnter,
    public timings: LldpadTimings,
  ) {
    this.vdp = new VdpTool(netns, ifname, enter);
  }

  get pid(): number {
    return this.proc.pid;
  }
  get logFile(): string {
    return this.proc.logFile;
  }

  /**
   * Starts lldpad in `netns` for `ifname` with `role`, waits until its control socket answers,
   * and (unless configure: false) sets adminStatus=rxtx, the EVB parameters and enableTx=yes.
   * The process is tracked by `lab` and stopped by `lab.close()`.
   */
  static async start(lab: Lab, opts: LldpadOptions): Promise<Lldpad> {
    const enter = opts.enter ?? 'nsenter';
    const tag = `lldpad-${opts.role}-${opts.ifname}`;
    const configFile = lab.file(`${tag}.conf`);
    writeFileSync(configFile, lldpadConfig(opts.ifname, opts.role));
    const verbosity = opts.verbosity ?? 7;
    if (!Number.isInteger(verbosity) || verbosity < 0 || verbosity > 7) {
      throw new Error(`lldpad verbosity ${verbosity} is not in 0..7`);
    }
    const proc = lab.spawn({
      name: tag,
      netns: opts.netns,
      cmd: 'unshare',
      args: [
        '--ipc',
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        'mount -t tmpfs tmpfs /dev/shm && exec $3 lldpad -p -V"$1" -f "$2"',
        'sh',
        String(verbosity),
        configFile,
        // lldpad logs with printf to stdout, block-buffered into a file: line-buffer it so that
        // logLines() sees events as they happen (stdbuf execs lldpad; the PID stays lldpad's).
        (opts.lineBufferedLog ?? true) ? 'stdbuf -oL' : '',
      ],
    });
    const d = new Lldpad(lab, proc, opts.netns, opts.ifname, opts.role, configFile, enter, {
      readyMs: NaN,
      configureMs: NaN,
    });
    await d.waitReady(opts.readyTimeoutMs ?? 10_000);
    const readyMs = performance.now() - proc.startedAt;
    let configureMs = 0;
    if (opts.configure ?? true) {
      const t0 = performance.now();
      await d.configure(opts.evb ?? {});
      configureMs = performance.now() - t0;
    }
    d.timings = { readyMs, configureMs };
    return d;
  }

  /** Waits until `lldptool -p` answers with our PID and the interface's ncb agent is known. */
  async waitReady(timeoutMs = 10_000): Promise<void> {
    await this.proc.waitFor(
      `lldpad control socket in netns ${this.netns}`,
      async () => {
        const p = await this.lldptoolRaw(['-p']);
        if (p.code !== 0) return false;
        if (p.stdout.trim() !== String(this.pid)) {
          throw new Error(
            `lldptool -p in netns ${this.netns} answered '${p.stdout.trim()}', not our PID ` +
              `${this.pid}: another lldpad runs in this namespace`,
          );
        }
        const a = await this.lldptoolRaw(['-l', '-i', this.ifname, '-g', 'ncb', 'adminStatus']);
        return a.code === 0;
      },
      { timeoutMs, intervalMs: 10 },
    );
  }

  /**
   * Waits until lldpad's VDP module runs on the interface: it starts at the first EVB timer tick
   * after start (about 1 s); before that vdptool says "Device not found or inactive".
   */
  async waitVdpReady(timeoutMs = 10_000): Promise<number> {
    const t0 = performance.now();
    await this.proc.waitFor(
      `VDP on ${this.ifname} (netns ${this.netns})`,
      async () => {
        const r = await this.vdp.raw(['-t', '-V', 'assoc']);
        const text = r.stdout + r.stderr;
        if (/not found or inactive/i.test(text)) return false;
        // The bridge side answers queries with "Command not applicable": VDP runs there too.
        return r.code === 0 || /not applicable/i.test(text);
      },
      { timeoutMs, intervalMs: 50 },
    );
    return performance.now() - t0;
  }

  /** lldptool adminStatus=rxtx, EVB parameters, then enableTx=yes (notes §1). */
  async configure(evb: EvbParams): Promise<void> {
    await this.lldptool(['-L', '-i', this.ifname, '-g', 'ncb', 'adminStatus=rxtx']);
    await this.setEvb(evb);
    await this.lldptool(['-T', '-i', this.ifname, '-g', 'ncb', '-V', 'evb', '-c', 'enableTx=yes']);
  }

  /** Sets EVB parameters at runtime (they reach the peer with the next LLDPDU). */
  async setEvb(evb: EvbParams): Promise<void> {
    await this.lldptool([
      '-T',
      '-i',
      this.ifname,
      '-g',
      'ncb',
      '-V',
      'evb',
      ...evbArgs(this.role, evb),
    ]);
  }

  lldptoolRaw(args: readonly string[], timeoutMs = 10_000): Promise<RunResult> {
    const [cmd, a] = netnsCommand(this.enter, this.netns, 'lldptool', args);
    return run(cmd, a, { timeoutMs });
  }

  /** Runs lldptool in the namespace; throws with its output unless it exits 0. */
  async lldptool(args: readonly string[]): Promise<string> {
    const r = await this.lldptoolRaw(args);
    if (r.code !== 0 || /FAILED|Invalid command/.test(r.stdout)) {
      throw new Error(
        `lldptool ${args.join(' ')} (netns ${this.netns}) failed (exit ${r.code ?? r.signal}): ` +
          `${(r.stdout + r.stderr).trim()}`,
      );
    }
    return r.stdout;
  }

  /** The EVB TLV we send (`neighbor: false`, negotiated values) or last received (`true`). */
  async getEvb(neighbor = false): Promise<EvbTlv | null> {
    const r = await this.lldptoolRaw([
      '-t',
      ...(neighbor ? ['-n'] : []),
      '-i',
      this.ifname,
      '-g',
      'ncb',
      '-V',
      'evb',
    ]);
    if (r.code !== 0) return null;
    return parseEvbTlv(r.stdout);
  }

  /** Configured EVB values (`-c`): vdprka, vdprwd, ecprte, ecpretries, evbmode, enableTx, ... */
  async getEvbConfig(): Promise<Record<string, string>> {
    return parseKeyValues(
      await this.lldptool(['-t', '-i', this.ifname, '-g', 'ncb', '-V', 'evb', '-c']),
    );
  }

  /** Lines of the lldpad log matching `re`, with lldpad's own timestamp in seconds of the day. */
  logLines(re: RegExp): { t: number; line: string }[] {
    const text = readFileSync(this.logFile, 'utf8');
    const out: { t: number; line: string }[] = [];
    for (const line of text.split('\n')) {
      if (!re.test(line)) continue;
      const m = /^(\d\d):(\d\d):(\d\d\.\d+) /.exec(line);
      const t = m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) : NaN;
      out.push({ t, line });
    }
    return out;
  }

  /** Stops this lldpad (SIGTERM, SIGKILL after `graceMs`); nothing outside its mount ns is touched. */
  stop(graceMs = 3000): Promise<unknown> {
    return this.proc.stop(graceMs);
  }
}

/**
 * Waits until station and bridge show a settled EVB negotiation: the station's TLV carries the
 * bridge status it received and RRSTAT != 3 (unknown), and the bridge's TLV echoes the station
 * status. Returns both TLVs as sent (negotiated values) and how long the wait took.
 */
export async function waitEvbNegotiated(
  station: Lldpad,
  bridge: Lldpad,
  timeoutMs = 15_000,
): Promise<{ station: EvbTlv; bridge: EvbTlv; ms: number }> {
  const t0 = performance.now();
  return station.proc.waitFor(
    `EVB negotiation between ${station.ifname} (netns ${station.netns}) and ${bridge.ifname} (netns ${bridge.netns})`,
    async () => {
      const [st, br] = await Promise.all([station.getEvb(), bridge.getEvb()]);
      if (!st || !br) return undefined;
      const settled =
        st.rrstat !== 3 &&
        st.bridgeStatus === br.bridgeStatus &&
        br.stationStatus === st.stationStatus &&
        st.rte === br.rte &&
        st.retries === br.retries &&
        st.rwd === br.rwd &&
        st.rka === br.rka;
      return settled ? { station: st, bridge: br, ms: performance.now() - t0 } : undefined;
    },
    { timeoutMs, intervalMs: 25 },
  );
}

export interface LldpadPairOptions {
  /** EVB parameters of each side (defaults: lldpad's). */
  readonly stationEvb?: EvbParams;
  readonly bridgeEvb?: EvbParams;
  /** Interface names and MACs (defaults vst0 02:00:00:00:aa:01, vbr0 02:00:00:00:bb:01). */
  readonly stationIf?: string;
  readonly bridgeIf?: string;
  readonly stationMac?: string;
  readonly bridgeMac?: string;
  readonly verbosity?: number;
  readonly lineBufferedLog?: boolean;
  /** Wait for EVB negotiation and the station's VDP before returning (default true). */
  readonly waitNegotiated?: boolean;
}

export interface LldpadPair {
  readonly station: Lldpad;
  readonly bridge: Lldpad;
  /** Namespaces `<lab id>-st` and `<lab id>-br`. */
  readonly stationNs: string;
  readonly bridgeNs: string;
  /** Time from the start of the call until EVB was settled (NaN without waitNegotiated). */
  readonly readyMs: number;
}

/**
 * lldpad station <-> lldpad bridge in two new namespaces joined by a veth pair (e.g. for
 * lldpad <-> lldpad benchmarks). Both daemons are tracked by `lab`.
 */
export async function startLldpadPair(lab: Lab, opts: LldpadPairOptions = {}): Promise<LldpadPair> {
  const t0 = performance.now();
  const stationNs = await lab.addNetns('st');
  const bridgeNs = await lab.addNetns('br');
  const stationIf = opts.stationIf ?? 'vst0';
  const bridgeIf = opts.bridgeIf ?? 'vbr0';
  await lab.addVeth(
    { netns: stationNs, name: stationIf, mac: opts.stationMac ?? '02:00:00:00:aa:01' },
    { netns: bridgeNs, name: bridgeIf, mac: opts.bridgeMac ?? '02:00:00:00:bb:01' },
  );
  const common = { verbosity: opts.verbosity, lineBufferedLog: opts.lineBufferedLog };
  const [station, bridge] = await Promise.all([
    Lldpad.start(lab, {
      ...common,
      netns: stationNs,
      ifname: stationIf,
      role: 'station',
      evb: opts.stationEvb,
    }),
    Lldpad.start(lab, {
      ...common,
      netns: bridgeNs,
      ifname: bridgeIf,
      role: 'bridge',
      evb: opts.bridgeEvb,
    }),
  ]);
  let readyMs = NaN;
  if (opts.waitNegotiated ?? true) {
    await waitEvbNegotiated(station, bridge, 20_000);
    await station.waitVdpReady();
    readyMs = performance.now() - t0;
  }
  return { station, bridge, stationNs, bridgeNs, readyMs };
}
