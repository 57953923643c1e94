/** `splitnve decode FILE.pcap… | --hex HEX…`: one JSON object per frame on stdout. */
import { readFileSync } from 'node:fs';
import { fromHex } from '../wire/bytes.js';
import { decodeFrame } from '../wire/frame.js';
import { frameJson } from '../wire/json.js';
import { DEFAULT_WIRE_OPTIONS, type WireOptions } from '../wire/options.js';
import { LINKTYPE_ETHERNET, readCapture } from '../wire/pcap.js';

export interface DecodeArgs {
  readonly files: readonly string[];
  readonly hex: readonly string[];
  readonly wire?: Partial<WireOptions>;
}

/** Returns the JSON lines and whether any input was unreadable (exit status 1 then). */
export function decodeInputs(a: DecodeArgs): { lines: string[]; failed: boolean } {
  const opts: WireOptions = { ...DEFAULT_WIRE_OPTIONS, ...a.wire };
  const lines: string[] = [];
  let failed = false;
  a.hex.forEach((h, i) => {
    const bytes = fromHex(h);
    if (!bytes) {
      lines.push(
        JSON.stringify({ input: i + 1, error: { field: 'hex', offset: 0, message: 'not hex' } }),
      );
      failed = true;
      return;
    }
    lines.push(JSON.stringify({ input: i + 1, ...frameJson(decodeFrame(bytes, opts), opts) }));
  });
  for (const file of a.files) {
    let data: Uint8Array;
    try {
      data = readFileSync(file);
    } catch (e) {
      lines.push(
        JSON.stringify({
          file,
          error: { field: 'file', offset: 0, message: (e as Error).message },
        }),
      );
      failed = true;
      continue;
    }
    const cap = readCapture(data);
    if (!cap.ok) {
      lines.push(JSON.stringify({ file, error: cap.error }));
      failed = true;
      continue;
    }
    cap.value.forEach((r, i) => {
      const head = { file, frame: i + 1, ...(r.time !== undefined ? { time: r.time } : {}) };
      if (r.linktype !== LINKTYPE_ETHERNET) {
        lines.push(
          JSON.stringify({
            ...head,
            error: { field: 'linktype', offset: 0, message: `linktype ${r.linktype}` },
          }),
        );
        return;
      }
      lines.push(JSON.stringify({ ...head, ...frameJson(decodeFrame(r.data, opts), opts) }));
    });
  }
  return { lines, failed };
}
