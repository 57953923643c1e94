/**
 * A small non-validating XML parser, enough for libvirt documents (domain XML as `virsh
 * dumpxml` prints it): elements, attributes, text, CDATA, comments, processing instructions,
 * a DOCTYPE, the five predefined entities and character references. Malformed input is an
 * XmlError naming the line and column.
 */

export interface XmlElement {
  /** Qualified name as written (prefix:local). */
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: XmlElement[];
  /** Concatenated character data directly inside this element. */
  text: string;
  readonly line: number;
  readonly col: number;
  readonly parent: XmlElement | undefined;
}

export class XmlError extends Error {
  constructor(
    readonly why: string,
    readonly line: number,
    readonly col: number,
  ) {
    super(`malformed XML at line ${line}, column ${col}: ${why}`);
  }
}

const NAME_START = /[A-Za-z_:\u00C0-\uFFFF]/;
const NAME_CHAR = /[A-Za-z0-9_:.\-\u00B7\u00C0-\uFFFF]/;

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

export function parseXml(input: string): XmlElement {
  const s = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  let i = 0;
  let line = 1;
  let lineStart = 0;

  const fail = (why: string, at = i): never => {
    // recompute line/col for `at`
    let l = 1;
    let ls = 0;
    for (let k = 0; k < at && k < s.length; k++) {
      if (s.charCodeAt(k) === 10) {
        l++;
        ls = k + 1;
      }
    }
    throw new XmlError(why, l, at - ls + 1);
  };
  const advance = (n: number): void => {
    for (let k = 0; k < n; k++) {
      if (s.charCodeAt(i) === 10) {
        line++;
        lineStart = i + 1;
      }
      i++;
    }
  };
  const startsWith = (t: string): boolean => s.startsWith(t, i);
  const skipWs = (): void => {
    while (i < s.length && /\s/.test(s[i]!)) advance(1);
  };
  const readName = (): string => {
    const start = i;
    if (i >= s.length || !NAME_START.test(s[i]!)) fail('expected a name');
    while (i < s.length && NAME_CHAR.test(s[i]!)) advance(1);
    return s.slice(start, i);
  };
  const decode = (raw: string, at: number): string =>
    raw.replace(/&([^;&\s]*);?/g, (m, body: string, off: number) => {
      if (!m.endsWith(';')) fail('"&" must start an entity or character reference', at + off);
      if (body.startsWith('#x') || body.startsWith('#X')) {
        const n = parseInt(body.slice(2), 16);
        if (!/^[0-9a-fA-F]+$/.test(body.slice(2)) || n > 0x10ffff)
          fail(`bad character reference &${body};`, at + off);
        return String.fromCodePoint(n);
      }
      if (body.startsWith('#')) {
        const n = Number(body.slice(1));
        if (!/^[0-9]+$/.test(body.slice(1)) || n > 0x10ffff)
          fail(`bad character reference &${body};`, at + off);
        return String.fromCodePoint(n);
      }
      const e = ENTITIES[body];
      if (e === undefined) fail(`unknown entity &${body};`, at + off);
      return e!;
    });
  const skipUntil = (end: string, what: string): void => {
    const j = s.indexOf(end, i);
    if (j < 0) fail(`unterminated ${what}`);
    advance(j + end.length - i);
  };
  const skipMisc = (): void => {
    for (;;) {
      skipWs();
      if (startsWith('<?')) skipUntil('?>', 'processing instruction');
      else if (startsWith('<!--')) skipUntil('-->', 'comment');
      else if (startsWith('<!DOCTYPE')) {
        // A DOCTYPE, possibly with an internal subset in [...]
        let depth = 0;
        for (;;) {
          if (i >= s.length) fail('unterminated DOCTYPE');
          const c = s[i]!;
          if (c === '[') depth++;
          else if (c === ']') depth--;
          else if (c === '>' && depth === 0) {
            advance(1);
            break;
          }
          advance(1);
        }
      } else return;
    }
  };

  skipMisc();
  if (!startsWith('<') || i >= s.length) fail('no root element');
  const root = parseElement(undefined);
  skipMisc();
  if (i < s.length) fail('content after the root element');
  return root;

  function parseElement(parent: XmlElement | undefined): XmlElement {
    const at = { line, col: i - lineStart + 1 };
    advance(1); // <
    const name = readName();
    const attrs: Record<string, string> = {};
    for (;;) {
      const hadWs = i < s.length && /\s/.test(s[i]!);
      skipWs();
      if (i >= s.length) fail(`end of input inside <${name}>`);
      if (startsWith('/>') || startsWith('>')) break;
      if (!hadWs) fail(`expected whitespace before an attribute of <${name}>`);
      const an = readName();
      skipWs();
      if (s[i] !== '=') fail(`attribute ${an} of <${name}> has no value`);
      advance(1);
      skipWs();
      const q = s[i];
      if (q !== '"' && q !== "'") fail(`value of attribute ${an} must be quoted`);
      advance(1);
      const vs = i;
      const ve = s.indexOf(q!, i);
      if (ve < 0) fail(`unterminated value of attribute ${an}`);
      const raw = s.slice(vs, ve);
      const lt = raw.indexOf('<');
      if (lt >= 0) fail(`"<" in the value of attribute ${an}`, vs + lt);
      if (Object.prototype.hasOwnProperty.call(attrs, an))
        fail(`attribute ${an} appears twice in <${name}>`);
      attrs[an] = decode(raw, vs).replace(/[\t\n\r]/g, ' ');
      advance(ve + 1 - i);
    }
    const el: XmlElement = { name, attrs, children: [], text: '', ...at, parent };
    if (startsWith('/>')) {
      advance(2);
      return el;
    }
    advance(1); // >
    for (;;) {
      if (i >= s.length) fail(`<${name}> (line ${at.line}) is not closed`);
      if (startsWith('</')) {
        const closeAt = i;
        advance(2);
        const end = readName();
        skipWs();
        if (s[i] !== '>') fail(`expected ">" to close </${end}>`);
        advance(1);
        if (end !== name) fail(`</${end}> closes <${name}> opened at line ${at.line}`, closeAt);
        return el;
      }
      if (startsWith('<!--')) {
        skipUntil('-->', 'comment');
        continue;
      }
      if (startsWith('<![CDATA[')) {
        advance(9);
        const j = s.indexOf(']]>', i);
        if (j < 0) fail('unterminated CDATA section');
        el.text += s.slice(i, j);
        advance(j + 3 - i);
        continue;
      }
      if (startsWith('<?')) {
        skipUntil('?>', 'processing instruction');
        continue;
      }
      if (startsWith('<')) {
        el.children.push(parseElement(el));
        continue;
      }
      const ts = i;
      const j = s.indexOf('<', i);
      const end = j < 0 ? s.length : j;
      const raw = s.slice(ts, end);
      if (raw.includes(']]>')) fail('"]]>" in character data', ts + raw.indexOf(']]>'));
      el.text += decode(raw, ts);
      advance(end - ts);
    }
  }
}

/** Local part of a qualified name. */
export function localName(name: string): string {
  const c = name.indexOf(':');
  return c < 0 ? name : name.slice(c + 1);
}

/** The namespace URI of an element (its prefix's xmlns declaration in scope), or ''. */
export function namespaceOf(el: XmlElement): string {
  const c = el.name.indexOf(':');
  const attr = c < 0 ? 'xmlns' : `xmlns:${el.name.slice(0, c)}`;
  for (let e: XmlElement | undefined = el; e; e = e.parent) {
    const v = e.attrs[attr];
    if (v !== undefined) return v;
  }
  return '';
}

export function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

export function childrenNamed(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}
