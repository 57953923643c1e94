/** Domain XML documents as `virsh dumpxml` prints them (libvirt 9.x, Debian 12 / QEMU 7.2). */

/** A running guest: one VEPA macvtap interface with an 802.1Qbg virtual port, one OVS port
 * named in the splitnve metadata, one libvirt NAT network interface (not ours). */
export const RUNNING_DOMAIN = `<domain type='kvm' id='7'>
  <name>web-01</name>
  <uuid>5a1c2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d</uuid>
  <metadata>
    <libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0">
      <libosinfo:os id="http://debian.org/debian/12"/>
    </libosinfo:libosinfo>
    <sn:splitnve xmlns:sn="https://splitnve.dev/xmlns/libvirt/1">
      <sn:interface mac="52:54:00:6d:90:03" vni="5001" ips="10.0.1.5 fd00:1::5"/>
      <sn:interface mac="52:54:00:6d:90:02" vni="5000">
        <sn:ip address="10.0.0.5"/>
      </sn:interface>
    </sn:splitnve>
  </metadata>
  <memory unit='KiB'>2097152</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <resource>
    <partition>/machine</partition>
  </resource>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
    <vmport state='off'/>
  </features>
  <cpu mode='host-passthrough' check='none' migratable='on'/>
  <clock offset='utc'>
    <timer name='rtc' tickpolicy='catchup'/>
    <timer name='pit' tickpolicy='delay'/>
    <timer name='hpet' present='no'/>
  </clock>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='/var/lib/libvirt/images/web-01.qcow2' index='1'/>
      <backingStore/>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <controller type='pci' index='0' model='pcie-root'>
      <alias name='pcie.0'/>
    </controller>
    <interface type='direct'>
      <mac address='52:54:00:6d:90:02'/>
      <source dev='ens1f0' mode='vepa'/>
      <virtualport type='802.1Qbg'>
        <parameters managerid='11' typeid='1193047' typeidversion='2' instanceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/>
      </virtualport>
      <target dev='macvtap0'/>
      <model type='virtio'/>
      <alias name='net0'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:6D:90:03'/>
      <source bridge='br-int'/>
      <virtualport type='openvswitch'>
        <parameters interfaceid='7f3e2a10-1c2d-4e5f-8a9b-0c1d2e3f4a5b'/>
      </virtualport>
      <target dev='vnet12'/>
      <model type='virtio'/>
      <mtu size='1450'/>
      <alias name='net1'/>
      <address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:cc'/>
      <source network='default' portid='e3b0c442-98fc-4c14-9afb-f4c8996fb924' bridge='virbr0'/>
      <target dev='vnet13'/>
      <model type='virtio'/>
      <alias name='net2'/>
      <address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x0'/>
    </interface>
    <serial type='pty'>
      <source path='/dev/pts/3'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
      <alias name='serial0'/>
    </serial>
    <console type='pty' tty='/dev/pts/3'>
      <source path='/dev/pts/3'/>
      <target type='serial' port='0'/>
      <alias name='serial0'/>
    </console>
    <graphics type='vnc' port='5900' autoport='yes' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <memballoon model='virtio'>
      <alias name='balloon0'/>
      <address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/>
    </memballoon>
  </devices>
  <seclabel type='dynamic' model='apparmor' relabel='yes'>
    <label>libvirt-5a1c2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d</label>
    <imagelabel>libvirt-5a1c2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d</imagelabel>
  </seclabel>
  <seclabel type='dynamic' model='dac' relabel='yes'>
    <label>+64055:+994</label>
    <imagelabel>+64055:+994</imagelabel>
  </seclabel>
</domain>
`;

/** An inactive definition (virsh dumpxml --inactive): no id, no aliases, an 802.1Qbg port
 * without instanceid (libvirt generates one at start), entities and a comment. */
export const INACTIVE_DOMAIN = `<?xml version="1.0" encoding="UTF-8"?>
<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
  virsh edit db&amp;cache
-->
<domain type='kvm'>
  <name>db&amp;cache</name>
  <uuid>0c6b4e1a-8f3b-4c1f-9e2d-7a5b3c1d2e4f</uuid>
  <description>Tier &lt;2&gt; &#x2014; &quot;primary&quot;</description>
  <memory unit='KiB'>4194304</memory>
  <vcpu placement='static'>4</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
  </os>
  <devices>
    <interface type='direct'>
      <mac address='52:54:00:11:22:33'/>
      <source dev='ens1f1' mode='vepa'/>
      <virtualport type='802.1Qbg'>
        <parameters managerid='12' typeid='42' typeidversion='1'/>
      </virtualport>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
`;

/** No interface of ours at all. */
export const PLAIN_DOMAIN = `<domain type='kvm' id='3'>
  <name>build-runner</name>
  <uuid>11111111-2222-4333-8444-555555555555</uuid>
  <devices>
    <interface type='network'>
      <mac address='52:54:00:01:02:03'/>
      <source network='default'/>
      <target dev='vnet0'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
`;

export const MALFORMED: readonly { name: string; xml: string; error: RegExp }[] = [
  {
    name: 'mismatched end tag',
    xml: `<domain type='kvm'>\n  <name>x</name>\n  <devices>\n  </domain>\n`,
    error: /line 4, column 3: <\/domain> closes <devices> opened at line 3/,
  },
  {
    name: 'unclosed root',
    xml: `<domain type='kvm'>\n  <name>x</name>\n`,
    error: /<domain> \(line 1\) is not closed/,
  },
  {
    name: 'unquoted attribute',
    xml: `<domain type=kvm><name>x</name></domain>`,
    error: /line 1, column 14: value of attribute type must be quoted/,
  },
  {
    name: 'duplicate attribute',
    xml: `<domain type='kvm' type='qemu'><name>x</name></domain>`,
    error: /attribute type appears twice in <domain>/,
  },
  {
    name: 'unknown entity',
    xml: `<domain><name>a&nbsp;b</name></domain>`,
    error: /unknown entity &nbsp;/,
  },
  {
    name: 'bare ampersand',
    xml: `<domain><name>a & b</name></domain>`,
    error: /"&" must start an entity/,
  },
  {
    name: 'two roots',
    xml: `<domain><name>a</name></domain>\n<domain/>`,
    error: /content after the root element/,
  },
  { name: 'empty', xml: `   `, error: /no root element/ },
  {
    name: 'unterminated comment',
    xml: `<domain><!-- oops <name>a</name></domain>`,
    error: /unterminated comment/,
  },
  {
    name: 'truncated in a tag',
    xml: `<domain type='kvm'><name>x</name><devices><interface type='dir`,
    error: /unterminated value of attribute type/,
  },
];
