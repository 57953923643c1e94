/**
 * The lldpad capture vectors in test/vectors: each NAME.pcap comes with NAME.txt, whose
 * "frames" section has, per frame, a summary line `#N t=+… len=… dst=… src=… type=…: …`, the
 * frame's hex and an independent decode (vdpdecode.py) as indented lines. This module reads the
 * files and parses that section into plain objects; every line of the section must be
 * understood (an unknown line throws, so a decode line can never be skipped silently).
 *
 * Also: the repo root, a pcapng writer (tests build pcapng files by hand) and a CLI runner.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Compiled to dist/test/harness/, so the repo root is three levels up. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const VECTORS_DIR = join(REPO_ROOT, 'test', 'vectors');
export const CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

export interface VectorEntry {
  readonly index: number;
  readonly groupId?: number;
  readonly mac?: string;
  readonly ps: number;
  readonly pcp: number;
  readonly vid: number;
  /** The PS|PCP|VID field as printed. */
  readonly raw: number;
  /** The entry's octets as printed. */
  readonly hex: string;
}

export type VectorStatus =
  | {
      readonly raw: number;
      readonly response: false;
      readonly m: number;
      readonly s: number;
      readonly lowNibble: number;
      readonly reserved: number;
    }
  | {
      readonly raw: number;
      readonly response: true;
      readonly flag: number;
      readonly keep: number;
      readonly hard: number;
      readonly error: number;
      readonly errorName: string;
      readonly reserved: number;
    };

export interface VectorVdpTlv {
  readonly type: number;
  readonly typeName: string;
  /** TLV length field (value octets). */
  readonly length: number;
  /** Offset of the TLV header in the VDP payload. */
  readonly offset: number;
  /** Header + value. */
  readonly hex: string;
  managerId?: { readonly text: string; readonly paddedTo: number };
  status?: VectorStatus;
  vsiTypeId?: number;
  vsiTypeIdHex?: number;
  typeVersion?: number;
  vsiIdFormat?: number;
  vsiIdFormatName?: string;
  vsiId?: string;
  filterInfoFormat?: number;
  filterInfoFormatName?: string;
  numberOfEntries?: number;
  readonly entries: VectorEntry[];
}

export interface VectorEvb {
  readonly tlvLength: number;
  readonly oui: string;
  readonly subtype: number;
  /** OUI + subtype + 5 body octets. */
  readonly hex: string;
  bridgeStatus?: {
    raw: number;
    bgid: number;
    rrcap: number;
    rrctr: number;
    reserved: number;
  };
  stationStatus?: {
    raw: number;
    sgid: number;
    rrreq: number;
    rrstat: number;
    reserved: number;
  };
  rRte?: { raw: number; r: number; rte: number };
  modeRwd?: { raw: number; evbMode: number; modeName: string; rol: number; rwd: number };
  rolRka?: { raw: number; rol: number; rka: number; reserved: number };
}

/** What the summary line says about an LLDP frame. */
export interface VectorLldpSummary {
  readonly chassisSubtype: number;
  readonly chassisId: string;
  readonly portSubtype: number;
  readonly portId: string;
  readonly ttl: number;
  readonly evb?: {
    readonly modeName: string;
    readonly bs: number;
    readonly ss: number;
    readonly r: number;
    readonly rte: number;
    readonly rolRwd: number;
    readonly rwd: number;
    readonly rolRka: number;
    readonly rka: number;
  };
}

/** What the summary line says about a VDP request. */
export interface VectorVdpSummary {
  readonly managerId: string;
  readonly tlvName: string;
  readonly kind: 'req' | 'rsp';
  readonly status: number;
  readonly hints: string[];
  readonly typeId: number;
  readonly typeVersion: number;
  readonly vsiId: string;
  readonly filterInfoFormat: number;
  readonly entries: string;
}

export interface VectorFrame {
  readonly file: string;
  /** 1-based line number of the summary line in the .txt. */
  readonly line: number;
  readonly index: number;
  /** Seconds, relative to the first frame of the full capture. */
  readonly t: number;
  readonly direction: string;
  readonly len: number;
  readonly dst: string;
  readonly src: string;
  readonly ethertype: number;
  readonly hex: string;
  ecpSummary?: { readonly op: 'REQ' | 'ACK'; readonly seq: number };
  vdpSummary?: VectorVdpSummary;
  lldpSummary?: VectorLldpSummary;
  ecp?: {
    readonly header: number;
    readonly version: number;
    readonly op: number;
    readonly opName: string;
    readonly subtype: number;
    readonly subtypeName: string;
    readonly seqno: number;
  };
  ackPayloadBytes?: number;
  readonly vdp: VectorVdpTlv[];
  /** "VDPDU ends exactly after last TLV (no End TLV, no padding)". */
  vdpEndsExactly?: boolean;
  evb?: VectorEvb;
  lldpEnd?: { readonly offset: number; readonly padBytes: number };
  /** Decode lines (indented) that were parsed, for diagnostics. */
  readonly decodeLines: number;
}

export interface Vector {
  readonly name: string;
  readonly pcapPath: string;
  readonly txtPath: string;
  readonly pcap: Uint8Array;
  readonly frames: VectorFrame[];
  /** Number of `#N t=` summary lines in the frames section, counted independently of the parser. */
  readonly summaryLineCount: number;
}

const int = (s: string | undefined): number => {
  if (s === undefined) throw new Error('missing number');
  return Number.parseInt(s, 10);
};
const hexInt = (s: string | undefined): number => {
  if (s === undefined) throw new Error('missing hex number');
  return Number.parseInt(s, 16);
};

const RE = {
  summary:
    /^#(\d+) t=\+(\d+\.\d+) (\S+) len=(\d+) dst=([0-9a-f:]{17}) src=([0-9a-f:]{17}) type=0x([0-9a-f]{4}): (.*)$/,
  sumLldp:
    /^LLDP ChassisID\(sub (\d+)\)=(\S+) PortID\(sub (\d+)\)=(\S+) TTL=(\d+)(?: EVB22\[EVB (Bridge|Station) bs=([0-9a-f]{2}) ss=([0-9a-f]{2}) R=(\d+) RTE=(\d+) ROL\/RWD=(\d)\/(\d+) ROL\/RKA=(\d)\/(\d+)\])?$/,
  sumAck: /^ECP ACK seq=(\d+)$/,
  sumReq:
    /^ECP REQ seq=(\d+) VDP MgrID='([^']*)' \+ ([\w-]+)\((req|rsp) st=0x([0-9a-f]{2})((?: [MS])*) type=(\d+) v(\d+) id=(\S+) fif=(\d+) \[(.*)\]\)$/,
  hex: /^ {2}hex: ([0-9a-f]+)$/,
  ecp: /^ECP header 0x([0-9a-f]{4}): version=(\d+) op=(\d+) \((\w+)\) subtype=(\d+) \((\w+)\) seqno=(\d+)$/,
  ack: /^ACK carries no payload \((\d+) bytes after header\)$/,
  vdpTlv: /^VDP TLV type (\d+) \(([\w-]+)\) len (\d+) @off (\d+): ([0-9a-f]+)$/,
  mgr: /^manager id '([^']*)' \(ASCII, NUL padded to (\d+)\)$/,
  stReq:
    /^status 0x([0-9a-f]{2}) -> REQUEST \(req-rsp bit 0x40 clear\): M\(migrate-to\)=(\d) S\(suspend\/migrate-from\)=(\d) low nibble=(\d+) reserved-bit7=(\d)$/,
  stRsp:
    /^status 0x([0-9a-f]{2}) -> RESPONSE: ack\/req-rsp=(\d) keep=(\d) hard=(\d) error=(\d+) \(([^)]*)\) reserved-bit7=(\d)$/,
  typeId: /^VSI type id (\d+) \(0x([0-9a-f]+)\) version (\d+)$/,
  vsiId: /^VSIID format (\d+) \((\w+)\) VSIID (\S+)$/,
  fif: /^filter info format (\d+) \(([^)]+)\), (\d+) entr(?:y|ies)$/,
  entry: /^entry (\d+): (.*?) \(raw 0x([0-9a-f]{4})\)\s+\[([0-9a-f]+)\]$/,
  vdpExact: /^VDPDU ends exactly after last TLV \(no End TLV, no padding\)$/,
  evbTlv:
    /^TLV 127 len (\d+) OUI ([0-9a-f]{2}-[0-9a-f]{2}-[0-9a-f]{2}) subtype 0x([0-9a-f]{2}) \(EVB, [^)]*\): ([0-9a-f]+)$/,
  evbBs:
    /^EVB bridge status 0x([0-9a-f]{2}): BGID=(\d) RRCAP=(\d) RRCTR=(\d) \(reserved bits 0x([0-9a-f]{2})\)$/,
  evbSs:
    /^EVB station status 0x([0-9a-f]{2}): SGID=(\d) RRREQ=(\d) RRSTAT=(\d) \(.*\) \(reserved 0x([0-9a-f]{2})\)$/,
  evbRte: /^R\/RTE 0x([0-9a-f]{2}): R\(max retries\)=(\d+) RTE=(\d+) \(.*\)$/,
  evbRwd:
    /^mode\/ROL\/RWD 0x([0-9a-f]{2}): EVBmode=(\d) \(EVB (Bridge|Station)\) ROL=(\d) RWD=(\d+) \(.*\)$/,
  evbRka: /^ROL\/RKA 0x([0-9a-f]{2}): ROL=(\d) RKA=(\d+) \(.*\) \(reserved 0x([0-9a-f]{2})\)$/,
  lldpEnd: /^End TLV at LLDPDU offset (\d+); (\d+) trailing pad bytes$/,
};

function parseEntry(m: RegExpExecArray, where: string): VectorEntry {
  const fields = new Map<string, string>();
  for (const kv of m[2]!.split(' ')) {
    const eq = kv.indexOf('=');
    if (eq < 0) throw new Error(`${where}: bad entry field ${JSON.stringify(kv)}`);
    fields.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  const known = new Set(['GroupID', 'MAC', 'PS', 'PCP', 'VID']);
  for (const k of fields.keys()) {
    if (!known.has(k)) throw new Error(`${where}: unknown entry field ${k}`);
  }
  const g = fields.get('GroupID');
  const mac = fields.get('MAC');
  return {
    index: int(m[1]),
    ...(g !== undefined ? { groupId: int(g) } : {}),
    ...(mac !== undefined ? { mac } : {}),
    ps: int(fields.get('PS')),
    pcp: int(fields.get('PCP')),
    vid: int(fields.get('VID')),
    raw: hexInt(m[3]),
    hex: m[4]!,
  };
}

/** Parses the frames section of a vector .txt; throws on any line it does not understand. */
export function parseVectorText(file: string, text: string): VectorFrame[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith('================ frames'));
  if (start < 0) throw new Error(`${file}: no "================ frames" section`);
  let end = lines.findIndex((l, i) => i > start && l.startsWith('================ '));
  if (end < 0) end = lines.length;
  const frames: VectorFrame[] = [];
  let cur: VectorFrame | undefined;
  let decodeLines = 0;
  let tlv: VectorVdpTlv | undefined;
  const finish = (): void => {
    if (cur) frames.push({ ...cur, decodeLines });
    cur = undefined;
    tlv = undefined;
    decodeLines = 0;
  };
  for (let i = start + 1; i < end; i++) {
    const raw = lines[i]!;
    const where = `${file}:${i + 1}`;
    if (raw.trim() === '') continue;
    let m: RegExpExecArray | null;
    if ((m = RE.summary.exec(raw))) {
      finish();
      const f: VectorFrame = {
        file,
        line: i + 1,
        index: int(m[1]),
        t: Number(m[2]),
        direction: m[3]!,
        len: int(m[4]),
        dst: m[5]!,
        src: m[6]!,
        ethertype: hexInt(m[7]),
        hex: '',
        vdp: [],
        decodeLines: 0,
      };
      const rest = m[8]!;
      let s: RegExpExecArray | null;
      if ((s = RE.sumLldp.exec(rest))) {
        f.lldpSummary = {
          chassisSubtype: int(s[1]),
          chassisId: s[2]!,
          portSubtype: int(s[3]),
          portId: s[4]!,
          ttl: int(s[5]),
          ...(s[6] !== undefined
            ? {
                evb: {
                  modeName: s[6],
                  bs: hexInt(s[7]),
                  ss: hexInt(s[8]),
                  r: int(s[9]),
                  rte: int(s[10]),
                  rolRwd: int(s[11]),
                  rwd: int(s[12]),
                  rolRka: int(s[13]),
                  rka: int(s[14]),
                },
              }
            : {}),
        };
      } else if ((s = RE.sumAck.exec(rest))) {
        f.ecpSummary = { op: 'ACK', seq: int(s[1]) };
      } else if ((s = RE.sumReq.exec(rest))) {
        f.ecpSummary = { op: 'REQ', seq: int(s[1]) };
        f.vdpSummary = {
          managerId: s[2]!,
          tlvName: s[3]!,
          kind: s[4] as 'req' | 'rsp',
          status: hexInt(s[5]),
          hints: s[6]!.trim() === '' ? [] : s[6]!.trim().split(' '),
          typeId: int(s[7]),
          typeVersion: int(s[8]),
          vsiId: s[9]!,
          filterInfoFormat: int(s[10]),
          entries: s[11]!,
        };
      } else {
        throw new Error(`${where}: summary not understood: ${rest}`);
      }
      cur = f;
      continue;
    }
    if (!cur) throw new Error(`${where}: line before the first frame: ${raw}`);
    if ((m = RE.hex.exec(raw))) {
      if (cur.hex !== '') throw new Error(`${where}: second hex line`);
      cur = { ...cur, hex: m[1]! };
      continue;
    }
    if (!raw.startsWith('    ')) throw new Error(`${where}: line not understood: ${raw}`);
    const l = raw.trim();
    decodeLines++;
    if ((m = RE.ecp.exec(l))) {
      cur.ecp = {
        header: hexInt(m[1]),
        version: int(m[2]),
        op: int(m[3]),
        opName: m[4]!,
        subtype: int(m[5]),
        subtypeName: m[6]!,
        seqno: int(m[7]),
      };
    } else if ((m = RE.ack.exec(l))) {
      cur.ackPayloadBytes = int(m[1]);
    } else if ((m = RE.vdpTlv.exec(l))) {
      tlv = {
        type: int(m[1]),
        typeName: m[2]!,
        length: int(m[3]),
        offset: int(m[4]),
        hex: m[5]!,
        entries: [],
      };
      cur.vdp.push(tlv);
    } else if (RE.vdpExact.test(l)) {
      cur.vdpEndsExactly = true;
      tlv = undefined;
    } else if ((m = RE.evbTlv.exec(l))) {
      cur.evb = { tlvLength: int(m[1]), oui: m[2]!, subtype: hexInt(m[3]), hex: m[4]! };
    } else if ((m = RE.lldpEnd.exec(l))) {
      cur.lldpEnd = { offset: int(m[1]), padBytes: int(m[2]) };
    } else if (
      cur.evb &&
      (RE.evbBs.test(l) ||
        RE.evbSs.test(l) ||
        RE.evbRte.test(l) ||
        RE.evbRwd.test(l) ||
        RE.evbRka.test(l))
    ) {
      const e = cur.evb;
      if ((m = RE.evbBs.exec(l))) {
        e.bridgeStatus = {
          raw: hexInt(m[1]),
          bgid: int(m[2]),
          rrcap: int(m[3]),
          rrctr: int(m[4]),
          reserved: hexInt(m[5]),
        };
      } else if ((m = RE.evbSs.exec(l))) {
        e.stationStatus = {
          raw: hexInt(m[1]),
          sgid: int(m[2]),
          rrreq: int(m[3]),
          rrstat: int(m[4]),
          reserved: hexInt(m[5]),
        };
      } else if ((m = RE.evbRte.exec(l))) {
        e.rRte = { raw: hexInt(m[1]), r: int(m[2]), rte: int(m[3]) };
      } else if ((m = RE.evbRwd.exec(l))) {
        e.modeRwd = {
          raw: hexInt(m[1]),
          evbMode: int(m[2]),
          modeName: m[3]!,
          rol: int(m[4]),
          rwd: int(m[5]),
        };
      } else if ((m = RE.evbRka.exec(l))) {
        e.rolRka = { raw: hexInt(m[1]), rol: int(m[2]), rka: int(m[3]), reserved: hexInt(m[4]) };
      }
    } else if (tlv) {
      if ((m = RE.mgr.exec(l))) {
        tlv.managerId = { text: m[1]!, paddedTo: int(m[2]) };
      } else if ((m = RE.stReq.exec(l))) {
        tlv.status = {
          raw: hexInt(m[1]),
          response: false,
          m: int(m[2]),
          s: int(m[3]),
          lowNibble: int(m[4]),
          reserved: int(m[5]),
        };
      } else if ((m = RE.stRsp.exec(l))) {
        tlv.status = {
          raw: hexInt(m[1]),
          response: true,
          flag: int(m[2]),
          keep: int(m[3]),
          hard: int(m[4]),
          error: int(m[5]),
          errorName: m[6]!,
          reserved: int(m[7]),
        };
      } else if ((m = RE.typeId.exec(l))) {
        tlv.vsiTypeId = int(m[1]);
        tlv.vsiTypeIdHex = hexInt(m[2]);
        tlv.typeVersion = int(m[3]);
      } else if ((m = RE.vsiId.exec(l))) {
        tlv.vsiIdFormat = int(m[1]);
        tlv.vsiIdFormatName = m[2]!;
        tlv.vsiId = m[3]!;
      } else if ((m = RE.fif.exec(l))) {
        tlv.filterInfoFormat = int(m[1]);
        tlv.filterInfoFormatName = m[2]!;
        tlv.numberOfEntries = int(m[3]);
      } else if ((m = RE.entry.exec(l))) {
        tlv.entries.push(parseEntry(m, where));
      } else {
        throw new Error(`${where}: VDP decode line not understood: ${l}`);
      }
    } else {
      throw new Error(`${where}: decode line not understood: ${l}`);
    }
  }
  finish();
  return frames;
}

/** Every test/vectors/NAME.pcap with its NAME.txt (throws if either is missing). */
export function loadVectors(): Vector[] {
  const names = readdirSync(VECTORS_DIR);
  const pcaps = names.filter((n) => n.endsWith('.pcap')).sort();
  const txts = names.filter((n) => n.endsWith('.txt')).sort();
  const stems = (l: string[], ext: string): string[] => l.map((n) => n.slice(0, -ext.length));
  if (JSON.stringify(stems(pcaps, '.pcap')) !== JSON.stringify(stems(txts, '.txt'))) {
    throw new Error(`test/vectors: .pcap and .txt files do not pair up: ${names.join(' ')}`);
  }
  return pcaps.map((p) => {
    const name = p.slice(0, -'.pcap'.length);
    const pcapPath = join(VECTORS_DIR, p);
    const txtPath = join(VECTORS_DIR, `${name}.txt`);
    const text = readFileSync(txtPath, 'utf8');
    const section = text.split('\n================ tshark')[0]!.split('================ frames')[1];
    return {
      name,
      pcapPath,
      txtPath,
      pcap: new Uint8Array(readFileSync(pcapPath)),
      frames: parseVectorText(`${name}.txt`, text),
      summaryLineCount: (section?.match(/^#\d+ t=/gm) ?? []).length,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// pcapng writer (pcapng spec, draft-ietf-opsawg-pcapng): SHB, IDB, EPB or SPB blocks.

export interface PcapngOptions {
  readonly littleEndian?: boolean;
  /** if_tsresol option value (6 = µs, 9 = ns); omitted when undefined (then µs). */
  readonly tsresol?: number;
  /** Write simple packet blocks (no timestamps) instead of enhanced packet blocks. */
  readonly simple?: boolean;
  readonly linktype?: number;
}

function block(type: number, body: Uint8Array, le: boolean): Uint8Array {
  const padded = (body.length + 3) & ~3;
  const len = 12 + padded;
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, type, le);
  dv.setUint32(4, len, le);
  out.set(body, 8);
  dv.setUint32(len - 4, len, le);
  return out;
}

/** A one-section, one-interface pcapng file of Ethernet frames. */
export function writePcapng(
  records: readonly { time: number; data: Uint8Array }[],
  o: PcapngOptions = {},
): Uint8Array {
  const le = o.littleEndian ?? true;
  if (o.tsresol !== undefined && o.tsresol !== 6 && o.tsresol !== 9) {
    throw new Error('writePcapng: tsresol 6 (µs) or 9 (ns)');
  }
  const blocks: Uint8Array[] = [];
  // SHB body: byte-order magic, version 1.0, section length -1 (unknown).
  const shb = new Uint8Array(16);
  const sdv = new DataView(shb.buffer);
  sdv.setUint32(0, 0x1a2b3c4d, le);
  sdv.setUint16(4, 1, le);
  sdv.setUint16(6, 0, le);
  sdv.setInt32(8, -1, le);
  sdv.setInt32(12, -1, le);
  blocks.push(block(0x0a0d0d0a, shb, le));
  // IDB body: linktype, reserved, snaplen, options (if_tsresol, opt_endofopt).
  const idb = new Uint8Array(o.tsresol === undefined ? 8 : 8 + 8 + 4);
  const idv = new DataView(idb.buffer);
  idv.setUint16(0, o.linktype ?? 1, le);
  idv.setUint32(4, 262144, le);
  if (o.tsresol !== undefined) {
    idv.setUint16(8, 9, le);
    idv.setUint16(10, 1, le);
    idb[12] = o.tsresol;
    // opt_endofopt: code 0, length 0 (already zero).
  }
  blocks.push(block(1, idb, le));
  const perSec = o.tsresol === undefined ? 1e6 : 10 ** o.tsresol;
  for (const r of records) {
    if (o.simple) {
      const body = new Uint8Array(4 + r.data.length);
      new DataView(body.buffer).setUint32(0, r.data.length, le);
      body.set(r.data, 4);
      blocks.push(block(3, body, le));
      continue;
    }
    const ts = BigInt(Math.round(r.time * 1e6)) * BigInt(perSec / 1e6);
    const body = new Uint8Array(20 + r.data.length);
    const bdv = new DataView(body.buffer);
    bdv.setUint32(0, 0, le);
    bdv.setUint32(4, Number(ts >> 32n), le);
    bdv.setUint32(8, Number(ts & 0xffffffffn), le);
    bdv.setUint32(12, r.data.length, le);
    bdv.setUint32(16, r.data.length, le);
    body.set(r.data, 20);
    blocks.push(block(6, body, le));
  }
  const total = blocks.reduce((n, b) => n + b.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const b of blocks) {
    out.set(b, off);
    off += b.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

export interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built `splitnve` CLI (dist/src/cli/main.js) with `args`. */
export function runCli(args: readonly string[]): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Parses JSON-lines output; every non-empty line must be a JSON object. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
