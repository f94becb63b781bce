// fednode dashboard: renders the node's snapshot (GET snapshot.json, then the `snapshot`
// events of GET events). Plain browser JavaScript, no library, nothing loaded from elsewhere.
// Every value is written with textContent: member names and models come from the network.
'use strict';

const COLORS = ['#58a6ff', '#3fb950', '#d29922', '#f85149', '#bc8cff', '#39c5cf', '#ff7b72', '#e3b341'];
const colorOf = new Map();
function color(peerId) {
  if (!colorOf.has(peerId)) colorOf.set(peerId, COLORS[colorOf.size % COLORS.length]);
  return colorOf.get(peerId);
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function fmt(n, digits, unit) {
  if (n === null || n === undefined || Number.isNaN(n)) return '-';
  return Number(n).toFixed(digits === undefined ? 0 : digits) + (unit || '');
}
function short(id) {
  return id ? '…' + id.slice(-8) : '-';
}
function ago(ms) {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1000) return ms + ' ms';
  if (ms < 120000) return (ms / 1000).toFixed(0) + ' s';
  return (ms / 60000).toFixed(0) + ' min';
}
function dlRows(dl, rows) {
  dl.replaceChildren();
  for (const [k, v, id] of rows) {
    dl.append(el('dt', k));
    const dd = el('dd', v);
    if (id) dd.id = id;
    dl.append(dd);
  }
}

function gpuText(gpus) {
  if (!gpus || gpus.length === 0) return 'none';
  return gpus
    .map((g) => `${g.index}: ${g.name} ${fmt(g.memoryUsedMiB)}/${fmt(g.memoryTotalMiB)} MiB ${fmt(g.utilizationPct, 0, '%')} ${fmt(g.temperatureC, 0, ' C')} ${fmt(g.powerDrawW)}/${fmt(g.powerLimitW)} W`)
    .join('\n');
}
function powerText(p) {
  if (!p || p.source === null) return 'unknown';
  return p.source + (p.batteryPct !== null ? ` ${p.batteryPct}%${p.charging ? ' charging' : ''}` : '');
}

function renderMembers(s) {
  const tbody = document.querySelector('#members tbody');
  tbody.replaceChildren();
  const byId = new Map(s.nodes.map((n) => [n.peerId, n]));
  for (const n of s.nodes) {
    const tr = el('tr');
    tr.dataset.peer = n.peerId;
    tr.dataset.name = n.name;
    tr.dataset.state = n.state;
    const name = el('td', n.name + (n.self ? ' (this node)' : ''));
    const state = el('td', n.state, 'state');
    state.dataset.state = n.state;
    if (n.state !== 'live' && n.advertAgeMs !== null) state.title = 'last advert ' + ago(n.advertAgeMs) + ' ago';
    const prof = el('td', (n.profile || '-') + (n.profilePinned ? ' (pinned)' : ''));
    prof.append(el('div', n.profileWhy.join('; '), 'why'));
    const load = el('td', `${fmt(n.inFlight)} / ${fmt(n.queued)} / ${fmt(n.capacity)}`, 'load');
    const be = el('td', n.backends === null ? '-' : n.backends.ids.join(', ') || 'none');
    if (n.backends !== null) for (const [id, e] of Object.entries(n.backends.errors)) be.append(el('div', `${id}: ${e}`, 'err'));
    const gp = el('td', gpuText(n.gpus), 'mono');
    gp.style.whiteSpace = 'pre';
    tr.append(name, el('td', short(n.peerId), 'mono'), state, el('td', n.connected ? 'connected' : 'not connected'), el('td', fmt(n.rttMs, 0, ' ms')), gp, el('td', powerText(n.power)), prof, load, el('td', fmt(n.reqPerS, 1), 'reqps'), el('td', fmt(n.tokensPerS, 1), 'tps'), el('td', fmt(n.ttftMsP50, 0, ' ms')), el('td', n.models.join(', ') || '-'), be);
    tbody.append(tr);
  }
  document.getElementById('member-count').textContent = `${s.nodes.filter((n) => n.state === 'live').length} live of ${s.nodes.length}`;
  return byId;
}

function nameOf(byId, id) {
  if (id === null || id === undefined) return '-';
  const n = byId.get(id);
  return n ? n.name : short(id);
}

function renderConsensus(s, byId) {
  const c = s.consensus;
  const r = c.routing;
  dlRows(document.querySelector('#consensus dl'), [
    ['height', `${c.height} (round ${c.round}, ${c.step})`, 'height'],
    ['last decided', `${c.decidedHeight}${c.lastDecidedMs !== null ? ' at ' + new Date(c.lastDecidedMs).toLocaleTimeString() : ''}`, 'decided'],
    ['registry hash', c.registryHash],
    ['route policy', `${r.sourceText} (registry height ${r.registryHeight})`],
    ['weights', Object.entries(r.weights).map(([k, v]) => `${k} ${v}`).join(', ')],
    ['limits', `battery floor ${r.batteryFloorPct}%, GPU ceiling ${r.tempCeilingC} C`],
  ]);
  const v = document.getElementById('validators');
  v.replaceChildren(...c.validators.map((x) => el('li', `${x.name} (${short(x.peerId)}) power ${x.power}`)));
  const p = document.getElementById('pending');
  p.replaceChildren(...(c.pending.length === 0 ? [el('li', 'none')] : c.pending.map((x) => el('li', `${x.kind} ${x.name || short(x.peerId)} in force at height ${x.effectiveHeight}`))));
  void byId;
}

function renderTraffic(s, byId) {
  const t = s.traffic;
  document.getElementById('window').textContent = String(t.windowMs / 1000);
  dlRows(document.querySelector('#traffic dl'), [
    ['requests/s', fmt(t.reqPerS, 2), 'req-rate'],
    ['tokens/s out', fmt(t.tokensOutPerS, 1)],
    ['TTFT p50', fmt(t.ttftMsP50, 0, ' ms')],
    ['requests', String(t.totals.requests), 'total-requests'],
    ['failovers', String(t.totals.failovers), 'failovers'],
    ['429 busy', String(t.totals.busy)],
    ['errors', String(t.totals.errors)],
  ]);
  const tbody = document.querySelector('#decisions tbody');
  tbody.replaceChildren(
    ...t.decisions
      .slice()
      .reverse()
      .map((d) => {
        const tr = el('tr');
        tr.append(el('td', new Date(d.atMs).toLocaleTimeString()), el('td', d.requested === d.model ? d.model : `${d.requested} → ${d.model}`), el('td', nameOf(byId, d.chosen)), el('td', nameOf(byId, d.runnerUp)), el('td', String(d.attempts)), el('td', d.reason, 'why'));
        return tr;
      }),
  );
}

function plot(canvasId, series, pick, fixedMax) {
  const cv = document.getElementById(canvasId);
  const g = cv.getContext('2d');
  const w = cv.width;
  const h = cv.height;
  g.clearRect(0, 0, w, h);
  let tMin = Infinity;
  let tMax = -Infinity;
  let vMax = fixedMax || 0;
  for (const pts of Object.values(series)) {
    for (const p of pts) {
      tMin = Math.min(tMin, p.t);
      tMax = Math.max(tMax, p.t);
      const v = pick(p);
      if (v !== null && v !== undefined) vMax = Math.max(vMax, v);
    }
  }
  if (!Number.isFinite(tMin) || vMax <= 0) vMax = 1;
  const span = Math.max(1, tMax - tMin);
  g.strokeStyle = '#2a3440';
  g.fillStyle = '#8a96a3';
  g.font = '10px sans-serif';
  g.beginPath();
  g.moveTo(30, 4);
  g.lineTo(30, h - 14);
  g.lineTo(w, h - 14);
  g.stroke();
  g.fillText(fmt(vMax, vMax < 10 ? 1 : 0), 2, 12);
  g.fillText('0', 18, h - 14);
  if (Number.isFinite(tMin)) g.fillText(`last ${Math.round(span / 1000)} s`, w - 60, h - 2);
  for (const [peer, pts] of Object.entries(series)) {
    g.strokeStyle = color(peer);
    g.lineWidth = 1.5;
    g.beginPath();
    let pen = false;
    for (const p of pts) {
      const v = pick(p);
      if (v === null || v === undefined) {
        pen = false;
        continue;
      }
      const x = 30 + ((p.t - tMin) / span) * (w - 32);
      const y = h - 14 - (v / vMax) * (h - 20);
      if (pen) g.lineTo(x, y);
      else g.moveTo(x, y);
      pen = true;
    }
    g.stroke();
  }
}

function renderPlots(s, byId) {
  const series = s.history.series;
  plot('plot-load', series, (p) => p.load, 1);
  plot('plot-temp', series, (p) => p.tempC, 0);
  plot('plot-tps', series, (p) => p.tokensPerS, 0);
  const legend = document.getElementById('legend');
  legend.replaceChildren(
    ...Object.keys(series).map((peer) => {
      const li = el('li', nameOf(byId, peer));
      li.style.setProperty('--c', color(peer));
      return li;
    }),
  );
}

let last = null;
function render(s) {
  last = s;
  document.getElementById('cluster').textContent = `cluster ${s.self.cluster} · seen from ${s.self.name} · ${new Date(s.atMs).toLocaleTimeString()}`;
  const byId = renderMembers(s);
  renderConsensus(s, byId);
  renderTraffic(s, byId);
  renderPlots(s, byId);
  document.body.dataset.renderedAt = String(s.atMs);
}

function setConn(state, text) {
  const c = document.getElementById('conn');
  c.dataset.conn = state;
  c.textContent = text;
}

function connect() {
  const es = new EventSource('events');
  es.addEventListener('snapshot', (e) => {
    setConn('live', 'live');
    try {
      render(JSON.parse(e.data));
    } catch (err) {
      setConn('lost', 'bad snapshot: ' + err.message);
    }
  });
  es.onerror = () => {
    // EventSource reconnects by itself (retry: 2000); say so meanwhile.
    setConn('lost', 'connection lost, reconnecting…' + (last ? ' (showing ' + new Date(last.atMs).toLocaleTimeString() + ')' : ''));
  };
}

fetch('snapshot.json', { cache: 'no-store' })
  .then((r) => (r.ok ? r.json() : Promise.reject({ message: 'HTTP ' + r.status })))
  .then(render)
  .catch((e) => setConn('lost', 'snapshot failed: ' + e.message))
  .finally(connect);
