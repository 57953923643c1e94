/** The XML parser and the domain XML -> VM definition mapping, on real libvirt documents. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  derivedUuid,
  managerIdOfNumber,
  parseDomainXml,
  DomainXmlError,
} from '../../src/libvirt/domain.js';
import { parseXml, XmlError } from '../../src/libvirt/xml.js';
import { InterfaceSchema } from '../../src/tnve/model.js';
import { INACTIVE_DOMAIN, MALFORMED, PLAIN_DOMAIN, RUNNING_DOMAIN } from './fixtures.js';

describe('domain XML', () => {
  it('a running domain: the 802.1Qbg port and the OVS port named in the metadata are ours', () => {
    const d = parseDomainXml(RUNNING_DOMAIN);
    assert.equal(d.name, 'web-01');
    assert.equal(d.uuid, '5a1c2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d');
    assert.deepEqual(d.interfaces, [
      {
        vsiId: '09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f',
        vni: 5000,
        macs: ['52:54:00:6d:90:02'],
        ips: ['10.0.0.5'],
        typeId: 1193047,
        typeVersion: 2,
        managerId: '0x0b000000000000000000000000000000',
      },
      {
        vsiId: '7f3e2a10-1c2d-4e5f-8a9b-0c1d2e3f4a5b',
        vni: 5001,
        macs: ['52:54:00:6d:90:03'],
        ips: ['10.0.1.5', 'fd00:1::5'],
        typeId: 0,
        typeVersion: 0,
        port: 'vnet12',
      },
    ]);
    assert.deepEqual(d.skipped, [
      {
        mac: '52:54:00:aa:bb:cc',
        type: 'network',
        why: 'no 802.1Qbg virtualport and no splitnve metadata',
      },
    ]);
    // what the hook sends is what the API accepts
    for (const i of d.interfaces) assert.equal(InterfaceSchema.safeParse(i).success, true);
  });

  it('an inactive definition: entities decoded, a stable VSI id derived when instanceid is absent', () => {
    const d = parseDomainXml(INACTIVE_DOMAIN);
    assert.equal(d.name, 'db&cache');
    assert.equal(d.interfaces.length, 1);
    const i = d.interfaces[0]!;
    assert.equal(i.vsiId, derivedUuid('0c6b4e1a-8f3b-4c1f-9e2d-7a5b3c1d2e4f', '52:54:00:11:22:33'));
    assert.equal(parseDomainXml(INACTIVE_DOMAIN).interfaces[0]!.vsiId, i.vsiId, 'stable');
    assert.equal(i.vni, undefined, 'the agent maps typeid 42');
    assert.equal(i.typeId, 42);
    assert.equal(i.managerId, managerIdOfNumber(12));
    const desc = parseXml(INACTIVE_DOMAIN).children.find((c) => c.name === 'description')!;
    assert.equal(desc.text, 'Tier <2> \u2014 "primary"');
  });

  it('a domain without interfaces of ours', () => {
    const d = parseDomainXml(PLAIN_DOMAIN);
    assert.deepEqual(d.interfaces, []);
    assert.equal(d.skipped.length, 1);
  });

  for (const m of MALFORMED) {
    it(`malformed: ${m.name}`, () => {
      assert.throws(
        () => parseDomainXml(m.xml),
        (e: unknown) => e instanceof XmlError && m.error.test(e.message),
      );
    });
  }

  it('not a domain, or a bad virtual port, is a DomainXmlError naming the line', () => {
    assert.throws(() => parseDomainXml('<network><name>x</name></network>'), DomainXmlError);
    assert.throws(() => parseDomainXml('<domain><uuid>x</uuid></domain>'), /has no <name>/);
    const bad = RUNNING_DOMAIN.replace("typeid='1193047'", "typeid='abc'");
    assert.throws(() => parseDomainXml(bad), /typeid='abc'> \(line \d+\): expected an integer/);
    const badInst = RUNNING_DOMAIN.replace("instanceid='09b11c53", "instanceid='zz11c53");
    assert.throws(() => parseDomainXml(badInst), /instanceid 'zz11c53.* is not a UUID/);
  });

  it('the parser never throws anything but XmlError on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        try {
          parseXml(s);
        } catch (e) {
          if (!(e instanceof XmlError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
    // truncations of a real document
    for (let n = 0; n < RUNNING_DOMAIN.length; n += 37) {
      try {
        parseDomainXml(RUNNING_DOMAIN.slice(0, n));
      } catch (e) {
        assert.ok(e instanceof XmlError || e instanceof DomainXmlError, String(e));
      }
    }
  });
});
