/**
 * libvirt domain XML -> the tNVE's VM definition.
 *
 * An `<interface>` is a TSI of ours when it has an 802.1Qbg virtual port:
 *
 *   <interface type='direct'>
 *     <mac address='52:54:00:6d:90:02'/>
 *     <source dev='eth0' mode='vepa'/>
 *     <virtualport type='802.1Qbg'>
 *       <parameters managerid='11' typeid='1193047' typeidversion='2'
 *                   instanceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/>
 *     </virtualport>
 *   </interface>
 *
 * (VSI id = instanceid, VSI type = typeid/typeidversion, Manager ID = managerid as the first
 * octet of the 16-octet id), or when the domain's metadata names it:
 *
 *   <metadata>
 *     <sn:splitnve xmlns:sn='https://splitnve.dev/xmlns/libvirt/1'>
 *       <sn:interface mac='52:54:00:6d:90:03' vni='5001' ips='10.0.1.5 fd00:1::5'/>
 *     </sn:splitnve>
 *   </metadata>
 *
 * which also gives the VN (else the agent maps the VSI type id), addresses, and may override
 * the VSI id (`vsi=`), type, manager and vswitch port. An Open vSwitch interface's
 * `interfaceid` serves as VSI id, its `<target dev>` as the port to tag. Interfaces that are
 * neither are listed as skipped with the reason.
 */
import { createHash } from 'node:crypto';
import { isMac, normalizeMac, parseUuid, uuidToString } from '../wire/bytes.js';
import type { InterfaceInput } from '../tnve/model.js';
import { child, childrenNamed, localName, namespaceOf, parseXml, type XmlElement } from './xml.js';

export const SPLITNVE_XMLNS = 'https://splitnve.dev/xmlns/libvirt/1';

export interface DomainInfo {
  readonly name: string;
  readonly uuid: string | undefined;
  /** The interfaces that are TSIs of the tNVE, as its API takes them. */
  readonly interfaces: InterfaceInput[];
  /** Interfaces that are not ours, and why. */
  readonly skipped: {
    readonly mac: string | undefined;
    readonly type: string;
    readonly why: string;
  }[];
}

export class DomainXmlError extends Error {}

/** A name-based UUID (RFC 4122 version 5 layout over SHA-1) for an interface without one. */
export function derivedUuid(...parts: string[]): string {
  const h = createHash('sha1').update(parts.join('\u0000')).digest();
  const b = new Uint8Array(h.subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return uuidToString(b);
}

/** libvirt's numeric managerid (0-255) as a 16-octet Manager ID: that octet first, then zeros. */
export function managerIdOfNumber(n: number): string {
  return '0x' + n.toString(16).padStart(2, '0') + '00'.repeat(15);
}

interface MetaIface {
  mac: string;
  vni?: number;
  vsi?: string;
  ips: string[];
  typeId?: number;
  typeVersion?: number;
  managerId?: string;
  port?: string;
}

function intAttr(el: XmlElement, name: string, min: number, max: number): number | undefined {
  const v = el.attrs[name];
  if (v === undefined) return undefined;
  const n = /^0x[0-9a-f]+$/i.test(v) ? parseInt(v, 16) : /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new DomainXmlError(
      `<${el.name} ${name}='${v}'> (line ${el.line}): expected an integer ${min}..${max}`,
    );
  }
  return n;
}

function metadataInterfaces(domain: XmlElement): Map<string, MetaIface> {
  const out = new Map<string, MetaIface>();
  const md = child(domain, 'metadata');
  if (!md) return out;
  for (const top of md.children) {
    if (namespaceOf(top) !== SPLITNVE_XMLNS) continue;
    for (const e of top.children) {
      if (localName(e.name) !== 'interface' || namespaceOf(e) !== SPLITNVE_XMLNS) continue;
      const mac = e.attrs.mac;
      if (!mac || !isMac(mac))
        throw new DomainXmlError(`splitnve metadata interface (line ${e.line}) needs mac='…'`);
      const ips = (e.attrs.ips ?? '').split(/[\s,]+/).filter(Boolean);
      for (const c of e.children)
        if (localName(c.name) === 'ip' && c.attrs.address) ips.push(c.attrs.address);
      const m: MetaIface = { mac: normalizeMac(mac), ips };
      const vni = intAttr(e, 'vni', 1, 0xffffff);
      if (vni !== undefined) m.vni = vni;
      if (e.attrs.vsi) m.vsi = e.attrs.vsi;
      const t = intAttr(e, 'typeid', 0, 0xffffff);
      if (t !== undefined) m.typeId = t;
      const tv = intAttr(e, 'typeidversion', 0, 255);
      if (tv !== undefined) m.typeVersion = tv;
      if (e.attrs.manager) m.managerId = e.attrs.manager;
      if (e.attrs.port) m.port = e.attrs.port;
      out.set(m.mac, m);
    }
  }
  return out;
}

/** Parses a domain XML document; throws XmlError (malformed) or DomainXmlError (not a domain). */
export function parseDomainXml(xml: string): DomainInfo {
  const domain = parseXml(xml);
  if (domain.name !== 'domain')
    throw new DomainXmlError(`the root element is <${domain.name}>, not <domain>`);
  const nameEl = child(domain, 'name');
  const name = nameEl?.text.trim();
  if (!name) throw new DomainXmlError('the domain has no <name>');
  const uuidText = child(domain, 'uuid')?.text.trim();
  const uuid = uuidText && parseUuid(uuidText) ? uuidToString(parseUuid(uuidText)!) : undefined;
  const meta = metadataInterfaces(domain);
  const interfaces: InterfaceInput[] = [];
  const skipped: DomainInfo['skipped'][number][] = [];
  const devices = child(domain, 'devices');
  for (const it of devices ? childrenNamed(devices, 'interface') : []) {
    const type = it.attrs.type ?? '';
    const macAttr = child(it, 'mac')?.attrs.address;
    const mac = macAttr && isMac(macAttr) ? normalizeMac(macAttr) : undefined;
    const vp = child(it, 'virtualport');
    const vpType = vp?.attrs.type;
    const params = vp ? child(vp, 'parameters') : undefined;
    const m = mac ? meta.get(mac) : undefined;
    if (!mac) {
      skipped.push({
        mac: macAttr,
        type,
        why: macAttr ? `bad MAC address ${macAttr}` : 'no <mac address>',
      });
      continue;
    }
    if (vpType !== '802.1Qbg' && !m) {
      skipped.push({
        mac,
        type,
        why: vpType
          ? `virtualport type ${vpType}, not 802.1Qbg, and no splitnve metadata`
          : 'no 802.1Qbg virtualport and no splitnve metadata',
      });
      continue;
    }
    let vsiId: string | undefined;
    let typeId = 0;
    let typeVersion = 0;
    let managerId: string | undefined;
    if (vpType === '802.1Qbg' && params) {
      const inst = params.attrs.instanceid;
      if (inst !== undefined) {
        const u = parseUuid(inst);
        if (!u)
          throw new DomainXmlError(
            `interface ${mac}: instanceid '${inst}' (line ${params.line}) is not a UUID`,
          );
        vsiId = uuidToString(u);
      }
      typeId = intAttr(params, 'typeid', 0, 0xffffff) ?? 0;
      typeVersion = intAttr(params, 'typeidversion', 0, 255) ?? 0;
      const mgr = intAttr(params, 'managerid', 0, 255);
      if (mgr !== undefined) managerId = managerIdOfNumber(mgr);
    } else if (vpType === 'openvswitch' && params?.attrs.interfaceid) {
      const u = parseUuid(params.attrs.interfaceid);
      if (u) vsiId = uuidToString(u);
    }
    if (m?.vsi !== undefined) {
      const u = parseUuid(m.vsi);
      if (!u) throw new DomainXmlError(`splitnve metadata of ${mac}: vsi '${m.vsi}' is not a UUID`);
      vsiId = uuidToString(u);
    }
    // libvirt fills instanceid in; an interface without one gets an id stable per domain and MAC.
    vsiId ??= derivedUuid(uuid ?? name, mac);
    const target = child(it, 'target')?.attrs.dev;
    const port = m?.port ?? (vpType === 'openvswitch' || type === 'bridge' ? target : undefined);
    interfaces.push({
      vsiId,
      ...(m?.vni !== undefined ? { vni: m.vni } : {}),
      macs: [mac],
      ips: m?.ips ?? [],
      typeId: m?.typeId ?? typeId,
      typeVersion: m?.typeVersion ?? typeVersion,
      ...((m?.managerId ?? managerId) !== undefined
        ? { managerId: m?.managerId ?? managerId }
        : {}),
      ...(port !== undefined ? { port } : {}),
    });
  }
  return { name, uuid, interfaces, skipped };
}
