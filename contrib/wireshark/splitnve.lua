-- splitnve.lua: Wireshark/tshark dissector for the Split-NVE control plane (RFC 8394)
--
--   * LLDP EVB TLV (org TLV 00-80-C2 / 0x0D) and the splitnve profile LLDP TLV
--     (org TLV 02-53-4E / 0x01), registered on the LLDP "lldp.orgtlv.oui" table;
--   * ECP (ethertype 0x8940) and the VDP TLVs it carries, replacing tshark's own
--     ecp21/vdp21 on the "ethertype" table.
--
-- Byte semantics: docs in the splitnve repository (WIRE.md). Every field lives under the
-- "snve." display-filter namespace (snve.ecp.*, snve.vdp.*, snve.evb.*, snve.lldp.*).
-- Usage: tshark -X lua_script:contrib/wireshark/splitnve.lua -r file.pcap
-- Preferences (decimal or 0x-hex): -o snve.ipv4_fif:0xF0 -o snve.ipv6_fif:0xF1
--                                   -o snve.oui:02-53-4E
--
-- Written for Lua 5.2 (Wireshark 3.x/4.0) and 5.4 (Wireshark 4.2+): no bit library is used.

local snve = Proto('snve', 'splitnve ECP/VDP')
local snve_lldp = Proto('snve_lldp', 'splitnve LLDP TLVs')

---------------------------------------------------------------------------------------------
-- Helpers (integer arithmetic only, so that the script runs on Lua 5.2 and 5.4)

local function has(v, mask) -- mask is a single power of two
  return math.floor(v / mask) % 2 == 1
end

local function all_zero(tvb, off, len)
  for i = off, off + len - 1 do
    if tvb(i, 1):uint() ~= 0 then
      return false
    end
  end
  return true
end

-- 10 us * 2^x, the EVB time unit, as text.
local function evb_time(x)
  local us = 10 * 2 ^ x
  if us < 1000 then
    return string.format('%d us', us)
  elseif us < 1000000 then
    return string.format('%.3f ms', us / 1000)
  end
  return string.format('%.3f s', us / 1000000)
end

local function parse_number(text, default)
  if text == nil then
    return default
  end
  local s = tostring(text):gsub('%s', '')
  local n
  if s:match('^0[xX]%x+$') then
    n = tonumber(s:sub(3), 16)
  elseif s:match('^%d+$') then
    n = tonumber(s, 10)
  end
  if n == nil then
    return default
  end
  return n
end

-- "02-53-4E", "02:53:4e", "02534E" or "0x02534e".
local function parse_oui(text, default)
  if text == nil then
    return default
  end
  local s = tostring(text):gsub('%s', '')
  if s:match('^0[xX]%x+$') then
    local n = tonumber(s:sub(3), 16)
    if n and n <= 0xFFFFFF then
      return n
    end
    return default
  end
  s = s:gsub('[-:.]', '')
  if s:match('^%x%x%x%x%x%x$') then
    return tonumber(s, 16)
  end
  return default
end

local function oui_text(oui)
  return string.format(
    '%02X-%02X-%02X',
    math.floor(oui / 65536),
    math.floor(oui / 256) % 256,
    oui % 256
  )
end

---------------------------------------------------------------------------------------------
-- Preferences

local DEFAULT_IPV4_FIF = 0xF0
local DEFAULT_IPV6_FIF = 0xF1
local DEFAULT_OUI = 0x02534E
local CISCO_OUI = 0x00000C
local IEEE_8021_OUI = 0x0080C2

snve.prefs.ipv4_fif = Pref.string(
  'IPv4 filter info format',
  '0xF0',
  'Filter info format code of GroupID(4) MAC(6) IPv4(4) field(2) entries (decimal or 0x-hex)'
)
snve.prefs.ipv6_fif = Pref.string(
  'IPv6 filter info format',
  '0xF1',
  'Filter info format code of GroupID(4) MAC(6) IPv6(16) field(2) entries (decimal or 0x-hex)'
)
snve.prefs.oui = Pref.string(
  'splitnve identifier (OUI/CID)',
  '02-53-4E',
  'Identifier of the splitnve organizationally specific VDP and LLDP TLVs'
)

local cfg = { ipv4_fif = DEFAULT_IPV4_FIF, ipv6_fif = DEFAULT_IPV6_FIF, oui = DEFAULT_OUI }

---------------------------------------------------------------------------------------------
-- Value names

local ecp_op_names = { [0] = 'Request', [1] = 'ACK' }
local ecp_subtype_names = { [1] = 'VDP', [2] = 'PE-CSP' }

local TLV_END, TLV_MGRID, TLV_ORG = 0, 5, 127
local vdp_tlv_names = {
  [0] = 'End',
  [1] = 'Pre-Associate',
  [2] = 'Pre-Associate with RR',
  [3] = 'Associate',
  [4] = 'De-Associate',
  [5] = 'VSI Manager ID',
  [127] = 'Organizationally specific',
}
local vdp_tlv_short = {
  [1] = 'PreAssoc',
  [2] = 'PreAssoc-RR',
  [3] = 'Assoc',
  [4] = 'DeAssoc',
}
local reason_names = {
  [0] = 'success',
  [1] = 'invalid format',
  [2] = 'insufficient resources',
  [3] = 'VSI manager unreachable',
  [4] = 'other failure',
  [5] = 'invalid VID, GroupID or MAC',
}
local idformat_names = { [1] = 'IPv4', [2] = 'IPv6', [3] = 'MAC', [4] = 'Local', [5] = 'UUID' }
local afi_names = { [1] = 'IPv4', [2] = 'IPv6' }
local evb_mode_names = {
  [0] = 'Not set',
  [1] = 'EVB Bridge',
  [2] = 'EVB Station',
  [3] = 'Reserved',
}
local rrstat_names = {
  [0] = 'RR not enabled',
  [1] = 'RR enabled',
  [2] = 'Reserved',
  [3] = 'Unknown (no bridge TLV yet)',
}

-- Filter info formats: size and which parts an entry has. The IP codes come from preferences.
local function fif_layout(fif)
  if fif == 1 then
    return { name = 'VID', size = 2 }
  elseif fif == 2 then
    return { name = 'MAC/VID', size = 8, mac = true }
  elseif fif == 3 then
    return { name = 'GroupID/VID', size = 6, group = true }
  elseif fif == 4 then
    return { name = 'GroupID/MAC/VID', size = 12, group = true, mac = true }
  elseif fif == cfg.ipv4_fif then
    return { name = 'GroupID/MAC/IPv4/VID', size = 16, group = true, mac = true, ip = 4 }
  elseif fif == cfg.ipv6_fif then
    return { name = 'GroupID/MAC/IPv6/VID', size = 28, group = true, mac = true, ip = 6 }
  end
  return nil
end

---------------------------------------------------------------------------------------------
-- Fields: ECP and VDP (protocol snve)

local F = {
  ecp_header = ProtoField.none('snve.ecp', 'ECP header'),
  ecp_version = ProtoField.uint16('snve.ecp.version', 'Version', base.DEC, nil, 0xF000),
  ecp_op = ProtoField.uint16('snve.ecp.op', 'Operation', base.DEC, ecp_op_names, 0x0C00),
  ecp_subtype = ProtoField.uint16(
    'snve.ecp.subtype',
    'Subtype',
    base.DEC,
    ecp_subtype_names,
    0x03FF
  ),
  ecp_seq = ProtoField.uint16('snve.ecp.seq', 'Sequence number', base.DEC),
  ecp_padding = ProtoField.bytes('snve.ecp.padding', 'Padding'),
  ecp_data = ProtoField.bytes('snve.ecp.data', 'Data'),

  vdp = ProtoField.none('snve.vdp', 'VDP'),
  tlv = ProtoField.none('snve.vdp.tlv', 'VDP TLV'),
  tlv_type = ProtoField.uint16('snve.vdp.tlv.type', 'Type', base.DEC, vdp_tlv_names, 0xFE00),
  tlv_len = ProtoField.uint16('snve.vdp.tlv.len', 'Length', base.DEC, nil, 0x01FF),
  tlv_data = ProtoField.bytes('snve.vdp.data', 'Data'),
  padding = ProtoField.bytes('snve.vdp.padding', 'Padding'),

  mgrid = ProtoField.bytes('snve.vdp.mgrid', 'VSI Manager ID'),
  mgrid_name = ProtoField.string('snve.vdp.mgrid.name', 'VSI Manager ID (text)'),

  status = ProtoField.uint8('snve.vdp.vsi.status', 'Status', base.HEX),
  st_reserved = ProtoField.bool('snve.vdp.vsi.status.reserved', 'Reserved', 8, nil, 0x80),
  st_response = ProtoField.bool(
    'snve.vdp.vsi.status.response',
    'Response',
    8,
    { 'Response', 'Request' },
    0x40
  ),
  st_s = ProtoField.bool('snve.vdp.vsi.status.s', 'S (suspended / migrating away)', 8, nil, 0x20),
  st_m = ProtoField.bool('snve.vdp.vsi.status.m', 'M (migrating to this bridge)', 8, nil, 0x10),
  st_req_low = ProtoField.uint8(
    'snve.vdp.vsi.status.req_reserved',
    'Reserved (request)',
    base.HEX,
    nil,
    0x0F
  ),
  st_keep = ProtoField.bool('snve.vdp.vsi.status.keep', 'Keep', 8, nil, 0x20),
  st_hard = ProtoField.bool('snve.vdp.vsi.status.hard', 'Hard error', 8, nil, 0x10),
  st_reason = ProtoField.uint8(
    'snve.vdp.vsi.status.reason',
    'Reason',
    base.DEC,
    reason_names,
    0x0F
  ),

  typeid = ProtoField.uint24('snve.vdp.vsi.typeid', 'VSI type id', base.DEC),
  typever = ProtoField.uint8('snve.vdp.vsi.version', 'VSI type version', base.DEC),
  idformat = ProtoField.uint8('snve.vdp.vsi.idformat', 'VSI id format', base.DEC, idformat_names),
  vsiid = ProtoField.bytes('snve.vdp.vsi.id', 'VSI id'),
  vsiid_uuid = ProtoField.guid('snve.vdp.vsi.id.uuid', 'VSI id (UUID)'),
  vsiid_ipv4 = ProtoField.ipv4('snve.vdp.vsi.id.ipv4', 'VSI id (IPv4)'),
  vsiid_ipv6 = ProtoField.ipv6('snve.vdp.vsi.id.ipv6', 'VSI id (IPv6)'),
  vsiid_mac = ProtoField.ether('snve.vdp.vsi.id.mac', 'VSI id (MAC)'),
  vsiid_local = ProtoField.bytes('snve.vdp.vsi.id.local', 'VSI id (local)'),
  fif = ProtoField.uint8('snve.vdp.vsi.fif', 'Filter info format', base.HEX),
  num_entries = ProtoField.uint16('snve.vdp.vsi.num_entries', 'Number of entries', base.DEC),

  entry = ProtoField.none('snve.vdp.vsi.entry', 'Filter entry'),
  groupid = ProtoField.uint32('snve.vdp.vsi.groupid', 'GroupID', base.DEC),
  vni = ProtoField.uint32('snve.vdp.vsi.vni', 'VNI', base.DEC, nil, 0x00FFFFFF),
  mac = ProtoField.ether('snve.vdp.vsi.mac', 'MAC'),
  ipv4 = ProtoField.ipv4('snve.vdp.vsi.ipv4', 'IPv4 address'),
  ipv6 = ProtoField.ipv6('snve.vdp.vsi.ipv6', 'IPv6 address'),
  field = ProtoField.uint16('snve.vdp.vsi.field', 'PS/PCP/VID', base.HEX),
  ps = ProtoField.uint16('snve.vdp.vsi.ps', 'PS (priority significant)', base.DEC, nil, 0x8000),
  pcp = ProtoField.uint16('snve.vdp.vsi.pcp', 'PCP', base.DEC, nil, 0x7000),
  vid = ProtoField.uint16('snve.vdp.vsi.vid', 'VID', base.DEC, nil, 0x0FFF),

  org_oui = ProtoField.uint24('snve.vdp.org.oui', 'OUI', base.HEX),
  org_subtype = ProtoField.uint8('snve.vdp.org.subtype', 'Subtype', base.HEX),
  org_data = ProtoField.bytes('snve.vdp.org.data', 'Data'),

  cisco_vsi_idformat = ProtoField.uint8(
    'snve.vdp.cisco.vsi_idformat',
    'VSI id format',
    base.DEC,
    idformat_names
  ),
  cisco_vsi_id = ProtoField.bytes('snve.vdp.cisco.vsi_id', 'VSI id'),
  cisco_vm_idformat = ProtoField.uint8(
    'snve.vdp.cisco.vm_idformat',
    'VM id format',
    base.DEC,
    idformat_names
  ),
  cisco_vm_id = ProtoField.bytes('snve.vdp.cisco.vm_id', 'VM id'),
  cisco_vm_name = ProtoField.string('snve.vdp.cisco.vm_name', 'VM name'),
  cisco_afi = ProtoField.uint16('snve.vdp.cisco.afi', 'Address family', base.DEC, afi_names),
  cisco_ipv4 = ProtoField.ipv4('snve.vdp.cisco.ipv4', 'IPv4 address'),
  cisco_ipv6 = ProtoField.ipv6('snve.vdp.cisco.ipv6', 'IPv6 address'),

  auth_keyid = ProtoField.uint16('snve.vdp.auth.keyid', 'Key id', base.DEC),
  auth_seq = ProtoField.uint64('snve.vdp.auth.seq', 'Sequence', base.DEC),
  auth_hmac = ProtoField.bytes('snve.vdp.auth.hmac', 'HMAC-SHA-256'),
}

local fields = {}
for _, f in pairs(F) do
  fields[#fields + 1] = f
end
snve.fields = fields

local E = {
  truncated = ProtoExpert.new(
    'snve.expert.truncated',
    'Truncated',
    expert.group.MALFORMED,
    expert.severity.ERROR
  ),
  tlv_past_end = ProtoExpert.new(
    'snve.expert.tlv_past_end',
    'TLV length runs past the end of the PDU',
    expert.group.MALFORMED,
    expert.severity.ERROR
  ),
  vsi_length = ProtoExpert.new(
    'snve.expert.vsi_length',
    'VSI TLV length does not match its entries',
    expert.group.MALFORMED,
    expert.severity.ERROR
  ),
  unknown_fif = ProtoExpert.new(
    'snve.expert.unknown_fif',
    'Unknown filter info format',
    expert.group.MALFORMED,
    expert.severity.ERROR
  ),
  mgrid_length = ProtoExpert.new(
    'snve.expert.mgrid_length',
    'Manager ID length is not 16',
    expert.group.MALFORMED,
    expert.severity.ERROR
  ),
  org_length = ProtoExpert.new(
    'snve.expert.org_length',
    'Organizationally specific TLV has a bad length',
    expert.group.MALFORMED,
    expert.severity.ERROR
  ),
  ack_payload = ProtoExpert.new(
    'snve.expert.ack_payload',
    'ECP ACK carries payload beyond zero padding',
    expert.group.MALFORMED,
    expert.severity.ERROR
  ),
  after_end = ProtoExpert.new(
    'snve.expert.after_end',
    'Non-zero data after the End TLV',
    expert.group.PROTOCOL,
    expert.severity.WARN
  ),
  end_length = ProtoExpert.new(
    'snve.expert.end_length',
    'End TLV with a non-zero length',
    expert.group.PROTOCOL,
    expert.severity.WARN
  ),
  unknown_tlv = ProtoExpert.new(
    'snve.expert.unknown_tlv',
    'Unknown VDP TLV type',
    expert.group.UNDECODED,
    expert.severity.WARN
  ),
  first_not_mgrid = ProtoExpert.new(
    'snve.expert.first_not_mgrid',
    'The first VDP TLV is not a Manager ID',
    expert.group.PROTOCOL,
    expert.severity.WARN
  ),
  no_entries = ProtoExpert.new(
    'snve.expert.no_entries',
    'VSI TLV without filter entries',
    expert.group.PROTOCOL,
    expert.severity.WARN
  ),
  bad_vid = ProtoExpert.new(
    'snve.expert.bad_vid',
    'VID 1 and VIDs above 4094 are invalid',
    expert.group.PROTOCOL,
    expert.severity.WARN
  ),
  ecp_version = ProtoExpert.new(
    'snve.expert.ecp_version',
    'ECP version is not 1',
    expert.group.PROTOCOL,
    expert.severity.WARN
  ),
  ecp_op = ProtoExpert.new(
    'snve.expert.ecp_op',
    'Reserved ECP operation',
    expert.group.PROTOCOL,
    expert.severity.WARN
  ),
}
local experts = {}
for _, e in pairs(E) do
  experts[#experts + 1] = e
end
snve.experts = experts

---------------------------------------------------------------------------------------------
-- Fields: LLDP (protocol snve_lldp)

local L = {
  tlv_type = ProtoField.uint16('snve.lldp.tlv.type', 'TLV type', base.DEC, nil, 0xFE00),
  tlv_len = ProtoField.uint16('snve.lldp.tlv.len', 'TLV length', base.DEC, nil, 0x01FF),
  oui = ProtoField.uint24('snve.lldp.oui', 'OUI', base.HEX),
  subtype = ProtoField.uint8('snve.lldp.subtype', 'Subtype', base.HEX),

  bridge_status = ProtoField.uint8('snve.evb.bridge_status', 'EVB bridge status', base.HEX),
  bgid = ProtoField.bool('snve.evb.bgid', 'BGID (bridge supports GroupID)', 8, nil, 0x04),
  rrcap = ProtoField.bool('snve.evb.rrcap', 'RRCAP (bridge can do reflective relay)', 8, nil, 0x02),
  rrctr = ProtoField.bool('snve.evb.rrctr', 'RRCTR (reflective relay controlled)', 8, nil, 0x01),
  station_status = ProtoField.uint8('snve.evb.station_status', 'EVB station status', base.HEX),
  sgid = ProtoField.bool('snve.evb.sgid', 'SGID (station supports GroupID)', 8, nil, 0x08),
  rrreq = ProtoField.bool('snve.evb.rrreq', 'RRREQ (reflective relay requested)', 8, nil, 0x04),
  rrstat = ProtoField.uint8('snve.evb.rrstat', 'RRSTAT', base.DEC, rrstat_names, 0x03),
  r = ProtoField.uint8('snve.evb.r', 'R (ECP max retries)', base.DEC, nil, 0xE0),
  rte = ProtoField.uint8('snve.evb.rte', 'RTE (ECP ACK timer exponent)', base.DEC, nil, 0x1F),
  mode = ProtoField.uint8('snve.evb.mode', 'EVB mode', base.DEC, evb_mode_names, 0xC0),
  rol_rwd = ProtoField.bool('snve.evb.rol_rwd', 'ROL (RWD)', 8, nil, 0x20),
  rwd = ProtoField.uint8('snve.evb.rwd', 'RWD (resource wait delay exponent)', base.DEC, nil, 0x1F),
  rol_rka = ProtoField.bool('snve.evb.rol_rka', 'ROL (RKA)', 8, nil, 0x20),
  rka = ProtoField.uint8('snve.evb.rka', 'RKA (keep-alive exponent)', base.DEC, nil, 0x1F),

  profile_version = ProtoField.uint8('snve.lldp.profile.version', 'Version', base.DEC),
  profile_flags = ProtoField.uint8('snve.lldp.profile.flags', 'Flags', base.HEX),
  profile_auth = ProtoField.bool('snve.lldp.profile.auth', 'Authentication', 8, nil, 0x01),
  profile_ip = ProtoField.bool('snve.lldp.profile.ipfilters', 'IP filter formats', 8, nil, 0x02),
  profile_deact = ProtoField.bool('snve.lldp.profile.deactivate', 'Deactivate', 8, nil, 0x04),
  data = ProtoField.bytes('snve.lldp.data', 'Data'),
}
local lfields = {}
for _, f in pairs(L) do
  lfields[#lfields + 1] = f
end
snve_lldp.fields = lfields

local LE = {
  evb_length = ProtoExpert.new(
    'snve_lldp.expert.evb_length',
    'EVB TLV length is not 9',
    expert.group.MALFORMED,
    expert.severity.ERROR
  ),
  profile_length = ProtoExpert.new(
    'snve_lldp.expert.profile_length',
    'splitnve profile TLV is too short',
    expert.group.MALFORMED,
    expert.severity.ERROR
  ),
}
snve_lldp.experts = { LE.evb_length, LE.profile_length }

---------------------------------------------------------------------------------------------
-- VDP

-- Text of a 16-octet VSI/VM id in its format (shorter ids are left-aligned).
local function id_text(format, r)
  if format == 5 then
    return (
      tostring(r:bytes()):lower():gsub(
        '^(%x%x%x%x%x%x%x%x)(%x%x%x%x)(%x%x%x%x)(%x%x%x%x)(%x+)$',
        '%1-%2-%3-%4-%5'
      )
    )
  elseif format == 1 then
    return tostring(r(0, 4):ipv4())
  elseif format == 2 then
    return tostring(r:ipv6())
  elseif format == 3 then
    return tostring(r(0, 6):ether())
  end
  return tostring(r:bytes()):lower()
end

-- Adds the VSI id field matching its format; returns its text.
local function add_vsi_id(tree, format, r)
  if format == 5 then
    tree:add(F.vsiid_uuid, r)
  elseif format == 1 then
    tree:add(F.vsiid_ipv4, r(0, 4))
  elseif format == 2 then
    tree:add(F.vsiid_ipv6, r)
  elseif format == 3 then
    tree:add(F.vsiid_mac, r(0, 6))
  else
    tree:add(F.vsiid_local, r)
  end
  return id_text(format, r)
end

local function dissect_status(tree, r)
  local v = r:uint()
  local item = tree:add(F.status, r)
  if has(v, 0x40) then
    local reason = v % 16
    item:append_text(
      string.format(' (response: %s%s%s)', reason_names[reason] or ('reserved reason ' .. reason),
        has(v, 0x20) and ', keep' or '', has(v, 0x10) and ', hard' or '')
    )
    item:add(F.st_reserved, r)
    item:add(F.st_response, r)
    item:add(F.st_keep, r)
    item:add(F.st_hard, r)
    item:add(F.st_reason, r)
    return string.format('rsp 0x%02x %s', v, reason_names[reason] or ('reason ' .. reason))
  end
  local hints = {}
  if has(v, 0x10) then
    hints[#hints + 1] = 'M'
  end
  if has(v, 0x20) then
    hints[#hints + 1] = 'S'
  end
  item:append_text(' (request' .. (#hints > 0 and (': ' .. table.concat(hints, ' ')) or '') .. ')')
  item:add(F.st_reserved, r)
  item:add(F.st_response, r)
  item:add(F.st_s, r)
  item:add(F.st_m, r)
  if v % 16 ~= 0 then
    item:add(F.st_req_low, r)
  end
  local s = string.format('req 0x%02x', v)
  if #hints > 0 then
    s = s .. ' ' .. table.concat(hints, '')
  end
  return s
end

local function dissect_entry(tree, r, layout, index)
  local item = tree:add(F.entry, r)
  item:set_text(string.format('Filter entry %d', index))
  local o = 0
  local parts = {}
  if layout.group then
    local g = r(o, 4):uint()
    local gi = item:add(F.groupid, r(o, 4))
    gi:append_text(string.format(' (VNI %d)', g % 16777216))
    item:add(F.vni, r(o, 4)):set_generated()
    parts[#parts + 1] = string.format('GroupID=%d', g)
    o = o + 4
  end
  if layout.mac then
    item:add(F.mac, r(o, 6))
    parts[#parts + 1] = 'MAC=' .. tostring(r(o, 6):ether())
    o = o + 6
  end
  if layout.ip == 4 then
    item:add(F.ipv4, r(o, 4))
    parts[#parts + 1] = 'IPv4=' .. tostring(r(o, 4):ipv4())
    o = o + 4
  elseif layout.ip == 6 then
    item:add(F.ipv6, r(o, 16))
    parts[#parts + 1] = 'IPv6=' .. tostring(r(o, 16):ipv6())
    o = o + 16
  end
  local fr = r(o, 2)
  local fv = fr:uint()
  local fi = item:add(F.field, fr)
  fi:add(F.ps, fr)
  fi:add(F.pcp, fr)
  local vi = fi:add(F.vid, fr)
  local vid = fv % 4096
  local ps = math.floor(fv / 32768)
  local pcp = math.floor(fv / 4096) % 8
  if vid == 0 then
    vi:append_text(' (null VID: the bridge assigns one)')
  elseif vid == 1 or vid > 4094 then
    vi:add_proto_expert_info(E.bad_vid)
  end
  parts[#parts + 1] = string.format('PS=%d PCP=%d VID=%d', ps, pcp, vid)
  local text = table.concat(parts, ' ')
  item:append_text(': ' .. text)
  return text
end

local function dissect_vsi(tree, tvb, ttype, body, blen, item)
  -- body: offset of the TLV value in tvb; blen: its length
  if blen < 25 then
    item:add_proto_expert_info(
      E.vsi_length,
      string.format('VSI TLV of %d octets is shorter than its 25-octet fixed part', blen)
    )
    if blen > 0 then
      tree:add(F.tlv_data, tvb(body, blen))
    end
    return vdp_tlv_short[ttype] .. '(short)'
  end
  local st = dissect_status(tree, tvb(body, 1))
  local typeid = tvb(body + 1, 3):uint()
  tree:add(F.typeid, tvb(body + 1, 3))
  tree:add(F.typever, tvb(body + 4, 1))
  local idf = tvb(body + 5, 1):uint()
  tree:add(F.idformat, tvb(body + 5, 1))
  local idi = tree:add(F.vsiid, tvb(body + 6, 16))
  local idtext = add_vsi_id(idi, idf, tvb(body + 6, 16))
  idi:append_text(' (' .. idtext .. ')')
  local fif = tvb(body + 22, 1):uint()
  local fi = tree:add(F.fif, tvb(body + 22, 1))
  local count = tvb(body + 23, 2):uint()
  local ci = tree:add(F.num_entries, tvb(body + 23, 2))
  local summary =
    string.format('%s(%s type=%d id=%s fif=%d', vdp_tlv_short[ttype], st, typeid, idtext, fif)
  local layout = fif_layout(fif)
  if layout == nil then
    fi:append_text(' (unknown)')
    fi:add_proto_expert_info(
      E.unknown_fif,
      string.format('Unknown filter info format %d (0x%02x)', fif, fif)
    )
    if blen > 25 then
      tree:add(F.tlv_data, tvb(body + 25, blen - 25))
    end
    return summary .. ' unknown)'
  end
  fi:append_text(' (' .. layout.name .. ')')
  local want = 25 + count * layout.size
  if count == 0 then
    ci:add_proto_expert_info(E.no_entries)
  end
  if blen ~= want then
    item:add_proto_expert_info(
      E.vsi_length,
      string.format(
        'VSI TLV length %d does not equal 25 + %d x %d = %d',
        blen,
        count,
        layout.size,
        want
      )
    )
  end
  local fit = math.floor((blen - 25) / layout.size)
  local n = math.min(count, fit)
  local texts = {}
  for i = 0, n - 1 do
    local er = tvb(body + 25 + i * layout.size, layout.size)
    texts[#texts + 1] = dissect_entry(tree, er, layout, i)
  end
  local used = 25 + n * layout.size
  if used < blen then
    tree:add(F.tlv_data, tvb(body + used, blen - used))
  end
  return summary .. ' [' .. table.concat(texts, '; ') .. '])'
end

local function dissect_org(tree, tvb, body, blen, item)
  if blen < 3 then
    item:add_proto_expert_info(E.org_length, 'Organizationally specific TLV without an OUI')
    if blen > 0 then
      tree:add(F.tlv_data, tvb(body, blen))
    end
    return 'Org(short)'
  end
  local oui = tvb(body, 3):uint()
  local oi = tree:add(F.org_oui, tvb(body, 3))
  if blen < 4 then
    oi:append_text(' (' .. oui_text(oui) .. ')')
    return 'Org(' .. oui_text(oui) .. ')'
  end
  local sub = tvb(body + 3, 1):uint()
  tree:add(F.org_subtype, tvb(body + 3, 1))
  local d = body + 4
  local dlen = blen - 4
  if oui == CISCO_OUI and sub == 0xF1 then
    oi:append_text(' (Cisco)')
    item:append_text(': Cisco VM name/VM id')
    if dlen < 34 then
      item:add_proto_expert_info(
        E.org_length,
        string.format('Cisco VM TLV needs at least 38 octets, got %d', blen)
      )
      if dlen > 0 then
        tree:add(F.tlv_data, tvb(d, dlen))
      end
      return 'Cisco-VM(short)'
    end
    local f1 = tvb(d, 1):uint()
    tree:add(F.cisco_vsi_idformat, tvb(d, 1))
    tree:add(F.cisco_vsi_id, tvb(d + 1, 16)):append_text(' (' .. id_text(f1, tvb(d + 1, 16)) .. ')')
    local f2 = tvb(d + 17, 1):uint()
    tree:add(F.cisco_vm_idformat, tvb(d + 17, 1))
    local vm = tvb(d + 18, 16)
    tree:add(F.cisco_vm_id, vm):append_text(' (' .. id_text(f2, vm) .. ')')
    local name = ''
    if dlen > 34 then
      name = tvb(d + 34, dlen - 34):string(ENC_UTF_8)
      tree:add(F.cisco_vm_name, tvb(d + 34, dlen - 34), name)
    end
    return 'Cisco-VM(' .. name .. ')'
  elseif oui == CISCO_OUI and sub == 0xF2 then
    oi:append_text(' (Cisco)')
    item:append_text(': Cisco L3 address')
    if dlen ~= 23 and dlen ~= 35 then
      item:add_proto_expert_info(
        E.org_length,
        string.format('Cisco L3 address TLV must be 27 or 39 octets, got %d', blen)
      )
      if dlen > 0 then
        tree:add(F.tlv_data, tvb(d, dlen))
      end
      return 'Cisco-L3(bad length)'
    end
    local f1 = tvb(d, 1):uint()
    tree:add(F.cisco_vsi_idformat, tvb(d, 1))
    tree:add(F.cisco_vsi_id, tvb(d + 1, 16)):append_text(' (' .. id_text(f1, tvb(d + 1, 16)) .. ')')
    local afi = tvb(d + 17, 2):uint()
    local ai = tree:add(F.cisco_afi, tvb(d + 17, 2))
    local alen = dlen - 19
    if alen == 4 then
      tree:add(F.cisco_ipv4, tvb(d + 19, 4))
      if afi ~= 1 then
        ai:add_proto_expert_info(E.org_length, 'A 4-octet address needs AFI 1 (IPv4)')
      end
      return 'Cisco-L3(' .. tostring(tvb(d + 19, 4):ipv4()) .. ')'
    end
    tree:add(F.cisco_ipv6, tvb(d + 19, 16))
    if afi ~= 2 then
      ai:add_proto_expert_info(E.org_length, 'A 16-octet address needs AFI 2 (IPv6)')
    end
    return 'Cisco-L3(' .. tostring(tvb(d + 19, 16):ipv6()) .. ')'
  elseif oui == cfg.oui and sub == 0x01 then
    oi:append_text(' (splitnve)')
    item:append_text(': splitnve authentication')
    if dlen ~= 42 then
      item:add_proto_expert_info(
        E.org_length,
        string.format('splitnve authentication TLV must be 46 octets, got %d', blen)
      )
      if dlen > 0 then
        tree:add(F.tlv_data, tvb(d, dlen))
      end
      return 'Auth(bad length)'
    end
    tree:add(F.auth_keyid, tvb(d, 2))
    tree:add(F.auth_seq, tvb(d + 2, 8))
    tree:add(F.auth_hmac, tvb(d + 10, 32))
    return string.format('Auth(key=%d seq=%s)', tvb(d, 2):uint(), tostring(tvb(d + 2, 8):uint64()))
  end
  oi:append_text(' (' .. oui_text(oui) .. ')')
  if dlen > 0 then
    tree:add(F.org_data, tvb(d, dlen))
  end
  return string.format('Org(%s/0x%02x)', oui_text(oui), sub)
end

-- Dissects VDP TLVs in tvb[off, off+len). Returns a summary for the Info column.
local function dissect_vdp(tvb, root, off, len)
  local vtree = root:add(F.vdp, tvb(off, len))
  vtree:set_text('VDP')
  local stop = off + len
  local summaries = {}
  local first = true
  while off < stop do
    local rem = stop - off
    if rem < 2 then
      if all_zero(tvb, off, rem) then
        vtree:add(F.padding, tvb(off, rem))
      else
        local di = vtree:add(F.tlv_data, tvb(off, rem))
        di:add_proto_expert_info(E.truncated, 'Truncated VDP TLV header')
      end
      break
    end
    local hdr = tvb(off, 2):uint()
    local ttype = math.floor(hdr / 512)
    local tlen = hdr % 512
    if ttype == TLV_END then
      local ti = vtree:add(F.tlv, tvb(off, 2))
      ti:set_text('VDP TLV: End')
      ti:add(F.tlv_type, tvb(off, 2))
      ti:add(F.tlv_len, tvb(off, 2))
      if tlen ~= 0 then
        ti:add_proto_expert_info(E.end_length)
      end
      off = off + 2
      if off < stop then
        if all_zero(tvb, off, stop - off) then
          vtree:add(F.padding, tvb(off, stop - off))
        else
          vtree:add(F.tlv_data, tvb(off, stop - off)):add_proto_expert_info(E.after_end)
        end
      end
      break
    end
    local total = 2 + tlen
    local past = off + total > stop
    local avail = past and rem or total
    local ti = vtree:add(F.tlv, tvb(off, avail))
    ti:set_text('VDP TLV: ' .. (vdp_tlv_names[ttype] or ('Unknown type ' .. ttype)))
    ti:add(F.tlv_type, tvb(off, 2))
    local li = ti:add(F.tlv_len, tvb(off, 2))
    if first and ttype ~= TLV_MGRID then
      ti:add_proto_expert_info(E.first_not_mgrid)
    end
    first = false
    if past then
      li:add_proto_expert_info(
        E.tlv_past_end,
        string.format(
          'TLV type %d length %d runs past the end of the PDU (%d octets left)',
          ttype,
          tlen,
          rem - 2
        )
      )
      if rem > 2 then
        ti:add(F.tlv_data, tvb(off + 2, rem - 2))
      end
      summaries[#summaries + 1] = (vdp_tlv_short[ttype] or ('TLV' .. ttype)) .. '(truncated)'
      break
    end
    local body = off + 2
    if ttype >= 1 and ttype <= 4 then
      local s = dissect_vsi(ti, tvb, ttype, body, tlen, ti)
      ti:append_text(': ' .. s)
      summaries[#summaries + 1] = s
    elseif ttype == TLV_MGRID then
      if tlen ~= 16 then
        li:add_proto_expert_info(
          E.mgrid_length,
          string.format('Manager ID length %d is not 16', tlen)
        )
      end
      if tlen > 0 then
        local r = tvb(body, tlen)
        local mi = ti:add(F.mgrid, r)
        -- printable ASCII followed by NULs is shown as text
        local b = r:bytes()
        local n = b:len()
        while n > 0 and b:get_index(n - 1) == 0 do
          n = n - 1
        end
        local printable = n > 0
        for i = 0, n - 1 do
          local c = b:get_index(i)
          if c < 0x20 or c > 0x7e then
            printable = false
          end
        end
        if printable then
          local name = r(0, n):string()
          mi:add(F.mgrid_name, r(0, n), name)
          mi:append_text(" ('" .. name .. "')")
          ti:append_text(": '" .. name .. "'")
          summaries[#summaries + 1] = "MgrID='" .. name .. "'"
        else
          summaries[#summaries + 1] = 'MgrID=0x' .. tostring(b):lower()
        end
      else
        summaries[#summaries + 1] = 'MgrID(empty)'
      end
    elseif ttype == TLV_ORG then
      summaries[#summaries + 1] = dissect_org(ti, tvb, body, tlen, ti)
    else
      ti:add_proto_expert_info(E.unknown_tlv, string.format('Unknown VDP TLV type %d', ttype))
      if tlen > 0 then
        ti:add(F.tlv_data, tvb(body, tlen))
      end
      summaries[#summaries + 1] = 'TLV' .. ttype
    end
    off = off + total
  end
  return table.concat(summaries, ' + ')
end

---------------------------------------------------------------------------------------------
-- ECP

function snve.dissector(tvb, pinfo, tree)
  local len = tvb:len()
  pinfo.cols.protocol = 'ECP'
  local root = tree:add(snve, tvb())
  if len < 4 then
    root:add_proto_expert_info(E.truncated, string.format('ECP header needs 4 octets, got %d', len))
    pinfo.cols.info = 'ECP (truncated)'
    return len
  end
  local w0 = tvb(0, 2):uint()
  local version = math.floor(w0 / 4096)
  local op = math.floor(w0 / 1024) % 4
  local subtype = w0 % 1024
  local seq = tvb(2, 2):uint()
  local h = root:add(F.ecp_header, tvb(0, 4))
  h:set_text(string.format('ECP %s, seq %d', ecp_op_names[op] or ('op ' .. op), seq))
  local vi = h:add(F.ecp_version, tvb(0, 2))
  h:add(F.ecp_op, tvb(0, 2))
  h:add(F.ecp_subtype, tvb(0, 2))
  h:add(F.ecp_seq, tvb(2, 2))
  if version ~= 1 then
    vi:add_proto_expert_info(E.ecp_version, string.format('ECP version %d is not 1', version))
  end
  local info
  local rest = len - 4
  if op == 1 then
    info = string.format('ECP ACK seq=%d', seq)
    if rest > 0 then
      if all_zero(tvb, 4, rest) then
        root:add(F.ecp_padding, tvb(4, rest))
      else
        root:add(F.ecp_data, tvb(4, rest)):add_proto_expert_info(
          E.ack_payload,
          string.format('ECP ACK carries %d octets after its header that are not all zero', rest)
        )
      end
    end
  elseif op == 0 and subtype == 1 then
    pinfo.cols.protocol = 'ECP/VDP'
    info = string.format('ECP REQ seq=%d', seq)
    if rest > 0 then
      local s = dissect_vdp(tvb, root, 4, rest)
      if s ~= '' then
        info = info .. ' VDP ' .. s
      end
    end
  else
    if op > 1 then
      h:add_proto_expert_info(E.ecp_op, string.format('Reserved ECP operation %d', op))
    end
    info = string.format('ECP %s seq=%d subtype=%s', ecp_op_names[op] or ('op ' .. op), seq,
      ecp_subtype_names[subtype] or tostring(subtype))
    if rest > 0 then
      root:add(F.ecp_data, tvb(4, rest))
    end
  end
  root:append_text(', ' .. info)
  pinfo.cols.info = info
  return len
end

---------------------------------------------------------------------------------------------
-- LLDP org TLVs. The lldp.orgtlv.oui table hands over the whole TLV (header included);
-- returning 0 gives it back to tshark's own LLDP decoder (other 802.1 subtypes).

function snve_lldp.dissector(tvb, pinfo, tree)
  local len = tvb:len()
  if len < 6 then
    return 0
  end
  local hdr = tvb(0, 2):uint()
  if math.floor(hdr / 512) ~= 127 then
    return 0
  end
  local tlen = hdr % 512
  local oui = tvb(2, 3):uint()
  local sub = tvb(5, 1):uint()
  local is_evb = oui == IEEE_8021_OUI and sub == 0x0D
  local is_profile = oui == cfg.oui and sub == 0x01
  if not (is_evb or is_profile) then
    return 0
  end
  local total = math.min(2 + tlen, len)
  local t = tree:add(snve_lldp, tvb(0, total))
  t:add(L.tlv_type, tvb(0, 2))
  local li = t:add(L.tlv_len, tvb(0, 2))
  t:add(L.oui, tvb(2, 3))
  t:add(L.subtype, tvb(5, 1))
  if is_evb then
    t:set_text('EVB TLV (IEEE 802.1Q, 00-80-C2 / 0x0D)')
    if tlen ~= 9 or len < 11 then
      li:add_proto_expert_info(LE.evb_length, string.format('EVB TLV length %d is not 9', tlen))
      if total > 6 then
        t:add(L.data, tvb(6, total - 6))
      end
      return total
    end
    local b = tvb(6, 1)
    local bi = t:add(L.bridge_status, b)
    bi:add(L.bgid, b)
    bi:add(L.rrcap, b)
    bi:add(L.rrctr, b)
    local s = tvb(7, 1)
    local si = t:add(L.station_status, s)
    si:add(L.sgid, s)
    si:add(L.rrreq, s)
    si:add(L.rrstat, s)
    local o3 = tvb(8, 1)
    local v3 = o3:uint()
    t:add(L.r, o3)
    t:add(L.rte, o3):append_text(' (ECP ACK timer ' .. evb_time(v3 % 32) .. ')')
    local o4 = tvb(9, 1)
    local v4 = o4:uint()
    t:add(L.mode, o4)
    t:add(L.rol_rwd, o4)
    t:add(L.rwd, o4):append_text(' (' .. evb_time(v4 % 32) .. ')')
    local o5 = tvb(10, 1)
    local v5 = o5:uint()
    t:add(L.rol_rka, o5)
    t:add(L.rka, o5):append_text(' (' .. evb_time(v5 % 32) .. ')')
    t:append_text(
      string.format(
        ': %s, R=%d RTE=%d RWD=%d RKA=%d',
        evb_mode_names[math.floor(v4 / 64)],
        math.floor(v3 / 32),
        v3 % 32,
        v4 % 32,
        v5 % 32
      )
    )
    return total
  end
  t:set_text('splitnve profile TLV (' .. oui_text(oui) .. ' / 0x01)')
  if tlen < 6 or len < 8 then
    li:add_proto_expert_info(
      LE.profile_length,
      string.format('profile TLV length %d is below 6', tlen)
    )
    if total > 6 then
      t:add(L.data, tvb(6, total - 6))
    end
    return total
  end
  t:add(L.profile_version, tvb(6, 1))
  local f = tvb(7, 1)
  local fi = t:add(L.profile_flags, f)
  fi:add(L.profile_auth, f)
  fi:add(L.profile_ip, f)
  fi:add(L.profile_deact, f)
  if total > 8 then
    t:add(L.data, tvb(8, total - 8))
  end
  return total
end

---------------------------------------------------------------------------------------------
-- Registration

local ethertype = DissectorTable.get('ethertype')
local orgtlv = DissectorTable.get('lldp.orgtlv.oui')
-- Replaces ecp21 (and with it vdp21) for ethertype 0x8940.
ethertype:add(0x8940, snve)
orgtlv:add(IEEE_8021_OUI, snve_lldp)
local registered_oui = nil

local function apply_prefs()
  cfg.ipv4_fif = parse_number(snve.prefs.ipv4_fif, DEFAULT_IPV4_FIF)
  cfg.ipv6_fif = parse_number(snve.prefs.ipv6_fif, DEFAULT_IPV6_FIF)
  cfg.oui = parse_oui(snve.prefs.oui, DEFAULT_OUI)
  if registered_oui ~= cfg.oui then
    if registered_oui ~= nil and registered_oui ~= IEEE_8021_OUI then
      orgtlv:remove(registered_oui, snve_lldp)
    end
    if cfg.oui ~= IEEE_8021_OUI then
      orgtlv:add(cfg.oui, snve_lldp)
    end
    registered_oui = cfg.oui
  end
end

function snve.prefs_changed()
  apply_prefs()
end

apply_prefs()
