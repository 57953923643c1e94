// The splitnve dashboard: plain JavaScript, no build step. It reads the daemon's JSON API and
// follows its event log (server-sent events, GET /v1/log/stream): every event refreshes the
// tables, so what is shown follows the daemon live. Without the stream it polls every 5 s.

const $ = (sel) => document.querySelector(sel);

/** Column spec: "a.b|c:Label" = the first defined of fields a.b and c, titled Label. */
const SECTIONS = {
  bridge: [
    {
      id: 'tsis',
      title: 'TSIs',
      paths: ['/v1/tsis', '/v1/vsis'],
      columns: [
        'port',
        'station',
        'vsi|vsiId:VSI',
        'state',
        'entries|endpoints:filter',
        'expiresInMs:expires in (ms)',
      ],
    },
    {
      id: 'stations',
      title: 'Stations',
      paths: ['/v1/stations'],
      columns: [
        'port',
        'station',
        'vsis:VSIs',
        'profile',
        'groupId:GroupID',
        'evb.rka:RKA',
        'lastHeardMsAgo:heard (ms ago)',
        'auth',
      ],
    },
    {
      id: 'vaps',
      title: 'VAPs',
      paths: ['/v1/vaps'],
      query: '?all=1',
      columns: [
        'segment',
        'vni:VNI',
        'vid:VID',
        'state',
        'heldUntil:held until',
        'tsis:TSIs',
        'stations',
        'ports',
      ],
    },
    {
      id: 'pools',
      title: 'VLAN pool',
      paths: ['/v1/pools'],
      columns: ['segment', 'ports', 'ranges', 'used', 'held', 'free', 'size', '@bar:use'],
    },
    {
      id: 'peers',
      title: 'EVB peers',
      paths: ['/v1/peers'],
      columns: [
        'port',
        'peer',
        'negotiated.r:R',
        'negotiated.rte:RTE',
        'negotiated.rwd:RWD',
        'negotiated.rka:RKA',
        'negotiated.groupId:GroupID',
        'ttlLeftS:TTL (s)',
      ],
    },
    {
      id: 'drains',
      title: 'Drained stations',
      paths: ['/v1/drains'],
      columns: ['port', 'station', 'since', 'reason'],
    },
  ],
  station: [
    {
      id: 'vms',
      title: 'VMs',
      paths: ['/v1/vms'],
      rows: (vms) =>
        vms.flatMap((v) =>
          (v.interfaces.length ? v.interfaces : [null]).map((i) => ({
            vm: v.name,
            state: v.state,
            vsi: i && i.vsiId,
            vni: i && i.vni,
            tsi: i && i.tsiState,
            tag: i && i.localTag ? `${i.localTag.vid} on ${i.localTag.uplink}` : null,
            note: v.note,
          })),
        ),
      columns: ['vm:VM', 'state', 'vsi:VSI', 'vni:VNI', 'tsi:TSI', 'tag:local tag', 'note'],
    },
    {
      id: 'tsis',
      title: 'TSIs',
      paths: ['/v1/vsis'],
      columns: [
        'uplink',
        'vsi:VSI',
        'state',
        'spec.entries:filter',
        'pending',
        'nextKeepAliveInMs:next keep-alive (ms)',
      ],
    },
    {
      id: 'uplinks',
      title: 'Uplinks',
      paths: ['/v1/uplinks'],
      columns: [
        'name',
        'status.up:link up',
        'health.healthy:healthy',
        'bridge:nNVE',
        'profile',
        'evb.rka:RKA',
        'ecp.txRequests:ECP tx',
        'ecp.txRetransmissions:retransmissions',
      ],
    },
    {
      id: 'vns',
      title: 'VNs',
      paths: ['/v1/vns'],
      columns: ['vni:VNI', 'mode', 'active', 'tsis:TSIs', 'uplinks'],
    },
    {
      id: 'peers',
      title: 'EVB peers',
      paths: ['/v1/peers'],
      columns: [
        'uplink',
        'peer',
        'negotiated.r:R',
        'negotiated.rte:RTE',
        'negotiated.rwd:RWD',
        'negotiated.rka:RKA',
        'ttlLeftS:TTL (s)',
      ],
    },
  ],
};

const MAX_EVENTS = 200;
let sections = [];
let refreshTimer;
let pollTimer;

async function getJson(path) {
  const r = await fetch(path, { headers: { accept: 'application/json' } });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

function field(obj, spec) {
  for (const alt of spec.split('|')) {
    let v = obj;
    for (const p of alt.split('.')) v = v === null || v === undefined ? undefined : v[p];
    if (v !== undefined) return v;
  }
  return undefined;
}

/** Filter entries and similar objects: the usual fields first, in a stable order. */
const ORDER = ['groupId', 'vni', 'mac', 'ipv4', 'ipv6', 'ip', 'vid'];

function text(v) {
  if (v === undefined || v === null) return '–';
  if (Array.isArray(v)) {
    return v
      .map((x) =>
        x && typeof x === 'object'
          ? Object.entries(x)
              .filter(
                ([k, val]) =>
                  val !== undefined &&
                  !(Array.isArray(val) && val.length === 0) &&
                  !['ps', 'pcp'].includes(k),
              )
              .sort(([a], [b]) => rank(a) - rank(b))
              .map(([k, val]) => `${k === 'groupId' ? 'vni' : k}=${text(val)}`)
              .join(' ')
          : String(x),
      )
      .join('; ');
  }
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function rank(k) {
  const i = ORDER.indexOf(k);
  return i < 0 ? ORDER.length : i;
}

function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function columnsOf(section) {
  return section.columns.map((c) => {
    const i = c.indexOf(':');
    return i < 0
      ? { spec: c, label: c.split('|')[0] }
      : { spec: c.slice(0, i), label: c.slice(i + 1) };
  });
}

function cell(row, col) {
  if (col.spec === '@bar') {
    const size = row.size || 0;
    const used = (row.used || 0) + (row.held || 0);
    const pct = size ? Math.round((100 * used) / size) : 0;
    return el('td', {}, [
      el('span', { class: 'bar', title: `${pct}%` }, [el('span', { style: `width:${pct}%` })]),
    ]);
  }
  const v = field(row, col.spec);
  const td = el('td', { text: text(v) });
  if (col.label === 'state' || col.label === 'TSI') td.className = `state state-${text(v)}`;
  return td;
}

function renderSection(section, data) {
  const rows = section.rows ? section.rows(data) : data;
  const cols = columnsOf(section);
  const tbody = section.tbody;
  tbody.replaceChildren();
  for (const r of rows) {
    const tr = el('tr');
    for (const c of cols) tr.append(cell(r, c));
    tbody.append(tr);
  }
  section.count.textContent = String(rows.length);
  section.empty.hidden = rows.length > 0;
}

function buildSections(role, paths) {
  const host = $('#sections');
  host.replaceChildren();
  sections = [];
  for (const s of SECTIONS[role] || []) {
    const path = s.paths.find((p) => paths.has(p));
    if (!path) continue;
    const tbody = el('tbody');
    const count = el('span', { class: 'count', text: '0' });
    const empty = el('p', { class: 'empty', text: 'none' });
    const head = el(
      'tr',
      {},
      columnsOf(s).map((c) => el('th', { text: c.label })),
    );
    host.append(
      el('section', { class: 'card', id: `section-${s.id}` }, [
        el('h2', {}, [el('span', { text: `${s.title} ` }), count]),
        el('table', {}, [el('thead', {}, [head]), tbody]),
        empty,
      ]),
    );
    sections.push({ ...s, path, tbody, count, empty });
  }
}

function flattenCounters(stats) {
  const out = [];
  for (const [k, v] of Object.entries(stats)) {
    if (k === 'events') continue;
    if (typeof v === 'number') out.push([k, v]);
    else if (v && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k2, v2] of Object.entries(v)) {
        if (typeof v2 === 'number') out.push([`${k}.${k2}`, v2]);
      }
    }
  }
  return out.slice(0, 48);
}

async function refresh() {
  await Promise.all(
    sections.map(async (s) => {
      try {
        renderSection(s, await getJson(s.path + (s.query || '')));
      } catch (e) {
        s.empty.hidden = false;
        s.empty.textContent = String(e.message || e);
      }
    }),
  );
  try {
    const stats = await getJson('/v1/stats');
    const grid = $('#counter-grid');
    grid.replaceChildren(
      ...flattenCounters(stats).map(([k, v]) =>
        el('div', { class: 'counter' }, [
          el('span', { class: 'value', text: String(v) }),
          el('span', { class: 'name', text: k }),
        ]),
      ),
    );
  } catch {
    // the counters come back with the next refresh
  }
  document.body.dataset.refreshed = String(Date.now());
}

function refreshSoon() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = undefined;
    refresh();
  }, 100);
}

function addEvent(r) {
  const time = (r.time || '').replace(/^.*T/, '').replace(/Z$/, '');
  const tr = el('tr', { class: `level-${r.level}`, 'data-seq': String(r.seq) }, [
    el('td', { text: time }),
    el('td', { text: r.level }),
    el('td', { class: 'event', text: r.event }),
    el('td', { text: r.msg || '' }),
  ]);
  const rows = $('#event-rows');
  rows.prepend(tr);
  while (rows.children.length > MAX_EVENTS) rows.lastElementChild.remove();
}

function setLive(on, why) {
  const b = $('#live');
  b.textContent = on ? 'live' : why || 'disconnected';
  b.className = `badge ${on ? 'on' : 'off'}`;
  if (on) {
    clearInterval(pollTimer);
    pollTimer = undefined;
  } else if (!pollTimer) pollTimer = setInterval(refresh, 5000);
}

function follow() {
  let last = 0;
  const es = new EventSource('/v1/log/stream?limit=50');
  es.onopen = () => {
    setLive(true);
    refreshSoon();
  };
  es.onerror = () => setLive(false, 'reconnecting');
  es.onmessage = (m) => {
    const r = JSON.parse(m.data);
    if (r.seq <= last) return;
    last = r.seq;
    addEvent(r);
    refreshSoon();
  };
}

async function main() {
  const info = await getJson('/v1/info');
  $('#daemon').textContent = info.daemon;
  document.title = `splitnve ${info.daemon}`;
  $('#about').textContent = `${info.role} · v${info.version} · pid ${info.pid}`;
  const doc = await getJson('/openapi.json');
  buildSections(info.role, new Set(Object.keys(doc.paths)));
  await refresh();
  follow();
  document.body.dataset.ready = 'true';
}

main().catch((e) => {
  setLive(false, 'error');
  $('#counter-grid').textContent = String(e.message || e);
});
