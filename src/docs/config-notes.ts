/**
 * Descriptions of configuration fields whose schema has no comment of its own (the schema's
 * comment, when there is one, wins). Keys are field paths or their last segments: a field
 * `ports[].evb.rka` takes the first of `ports[].evb.rka`, `evb.rka`, `rka` found here.
 */
export const CONFIG_NOTES: Record<string, string> = {
  ports: 'The nNVE ports: interfaces towards stations (`--port`, repeatable).',
  'ports[].name': 'Interface name (`tls` for the TLS port when one is configured).',
  uplinks: 'The uplinks towards nNVEs, in order of preference (`--uplink`, repeatable).',
  'uplinks[].name': 'Interface name, or `tlsN` for a `tls://` uplink.',
  'uplinks[].mac': 'Default: the interface’s own MAC.',
  mac: 'Our MAC on this link (default: the interface’s own).',
  evb: 'EVB values (LLDP EVB TLV) announced and negotiated with the peer.',
  'evb.r': 'R: ECP retransmissions before ECP gives up (default 3).',
  'evb.rte': 'RTE: ECP ACK timer exponent, 10 µs·2^RTE (default 8, 2.56 ms).',
  'evb.rwd':
    'RWD: resource wait delay exponent, how long a station waits for a response (default 20).',
  'evb.rka': 'RKA: keep-alive exponent, 10 µs·2^RKA (default 20, 10.5 s).',
  'evb.groupId': 'Announce GroupID (VNI) filter format support (default true).',
  'evb.rr': 'Announce resource reservation (Pre-Associate with RR) support (default true).',
  groupAddresses: 'Extra group MAC addresses to accept and answer to (a bridged network, Req-1).',
  maxStations:
    'Most stations (ECP/VDP sessions) on this port; the least recently heard without VSIs is evicted.',
  vlanPool: 'Local tags (VIDs) to assign, e.g. `100-3999` or `100-199,300`.',
  stateDir: 'Directory of the state (SQLite), kept across restarts (`--state-dir`).',
  api: 'HTTP API address `HOST:PORT` (tNVE also `unix:/path`); serves /openapi.json, /metrics, /ui/.',
  profile:
    '`802.1Qbg` (interoperates with lldpad) or `splitnve` (deactivate, IP filters, authentication) where both ends run splitnve.',
  logLevel:
    'Level of the JSON log on stdout; the event log (`ctl events`, /v1/log) has every event whatever the level.',
  multiHoming: 'Default multi-homing of a VN served by several uplinks (src/tnve/README.md).',
  vns: 'Per-VN multi-homing settings.',
  'vns[].vni': 'The VN (GroupID).',
  vswitch: 'Apply local tags to Open vSwitch access ports (`--ovs-db`).',
  'vswitch.type': 'Only `ovs`.',
  ecpMinGapUs:
    'Minimum µs between two ECP PDUs to the peer (default 5000 in the 802.1Qbg profile, for lldpad; else 0).',
  maxTlvsPerPdu:
    'Most VSI TLVs per PDU (default 1 in the 802.1Qbg profile, as lldpad sends; else as many as fit).',
  'vswitch.vsctl': 'The ovs-vsctl program (default: from PATH).',
  'vswitch.noWait': 'Pass --no-wait to ovs-vsctl (do not wait for ovs-vswitchd).',
  'vswitch.retryForMs': 'How long to retry a tag change that fails (ms).',
};
