// Shoal's dashboard: renders the snapshots GET /v1/namespaces/NS/dashboard streams (server-sent
// events), keeps each app's recent figures for its charts, and follows the selected app's log.
// Text from the API is only ever set as text (textContent), never parsed as HTML.
'use strict';

const HISTORY = 90; // snapshots kept per app: three minutes at one every 2 s
const LOG_LINES = 1000;

const params = new URLSearchParams(location.search);
const state = {
  namespace: params.get('namespace'),
  selected: params.get('app'),
  history: new Map(), // app name -> [{rate, p99, errors}]
  source: null,
  log: null, // AbortController of the followed log
  servingShown: null, // the revision the revisions table was read at
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ''));
  return node;
}

const num = (v, digits = 1) => (v == null ? '-' : v.toFixed(digits));
function duration(seconds) {
  if (seconds == null) return '-';
  if (seconds < 1e-3) return `${(seconds * 1e6).toFixed(0)}µs`;
  if (seconds < 1) return `${(seconds * 1e3).toFixed(1)}ms`;
  return `${seconds.toFixed(2)}s`;
}
const percent = (v) => (v == null ? '-' : `${(v * 100).toFixed(1)}%`);
function bytes(n) {
  if (!n) return '0';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
const time = (t) => (t ? new Date(t).toLocaleTimeString() : '-');

// Draws `values` into the polyline of `svg`, scaled to the largest; records what it drew in
// data-points (how many) and data-last (the newest value) so a reader can check it.
function plot(svg, values) {
  const [, , w, h] = svg.getAttribute('viewBox').split(' ').map(Number);
  const max = Math.max(...values, 1e-9);
  const step = values.length > 1 ? w / (HISTORY - 1) : 0;
  const start = w - step * (values.length - 1);
  const points = values.map((v, i) => `${(start + i * step).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`);
  svg.querySelector('polyline').setAttribute('points', points.join(' '));
  svg.dataset.points = String(values.length);
  svg.dataset.last = String(values.length ? values[values.length - 1] : 0);
  svg.dataset.max = String(max);
}

function spark() {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 90 22');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'spark');
  svg.append(document.createElementNS('http://www.w3.org/2000/svg', 'polyline'));
  return svg;
}

function remember(apps) {
  const seen = new Set();
  for (const a of apps) {
    seen.add(a.name);
    const h = state.history.get(a.name) ?? [];
    h.push({ rate: a.rate ?? 0, p99: a.p99 ?? 0, errors: a.errorRatio ?? 0 });
    if (h.length > HISTORY) h.shift();
    state.history.set(a.name, h);
  }
  for (const name of [...state.history.keys()]) if (!seen.has(name)) state.history.delete(name);
}

function renderApps(snap) {
  const body = $('apps').tBodies[0];
  body.replaceChildren(...snap.apps.map((a) => {
    const chart = spark();
    plot(chart, state.history.get(a.name).map((p) => p.rate));
    const row = el('tr', { 'data-app': a.name, class: a.name === state.selected ? 'selected' : '' },
      el('td', { class: 'name' }, a.name),
      el('td', { class: `phase ${a.phase}`, title: a.message ?? '' }, a.phase),
      el('td', { class: 'revision num' }, String(a.serving || '-')),
      el('td', { class: 'routes' }, a.routes.length ? a.routes.join(' ') : '(private)'),
      el('td', { class: 'rate num', 'data-value': String(a.rate ?? 0) }, num(a.rate)),
      el('td', { class: 'chart' }, chart),
      el('td', { class: 'p99 num' }, duration(a.p99)),
      el('td', { class: 'errors num' }, percent(a.errorRatio)),
      el('td', { class: 'in-flight num' }, String(a.inFlight)),
      el('td', { class: 'instances num' }, String(a.instances)),
      el('td', { class: 'memory num' }, bytes(a.memory)));
    row.addEventListener('click', () => select(a.name));
    return row;
  }));
  $('apps-empty').hidden = snap.appsTotal > 0;
  $('apps-count').textContent = snap.appsTotal > snap.apps.length
    ? `${snap.apps.length} busiest of ${snap.appsTotal}` : `${snap.appsTotal}`;
}

function renderDetail(snap) {
  const app = snap.apps.find((a) => a.name === state.selected);
  $('app-detail').hidden = !app;
  if (!app) return;
  $('detail-name').textContent = app.name;
  $('detail-message').hidden = !app.message;
  $('detail-message').textContent = app.message ?? '';
  const h = state.history.get(app.name);
  plot($('chart-rate'), h.map((p) => p.rate));
  plot($('chart-p99'), h.map((p) => p.p99));
  plot($('chart-errors'), h.map((p) => p.errors));
  $('chart-rate-now').textContent = `${num(app.rate)} now`;
  $('chart-p99-now').textContent = `${duration(app.p99)} now`;
  $('chart-errors-now').textContent = `${percent(app.errorRatio)} now`;
  if (state.servingShown !== `${app.name}@${app.generation}`) {
    state.servingShown = `${app.name}@${app.generation}`;
    showRevisions(app);
  }
}

async function showRevisions(app) {
  const revisions = await api(`/v1/namespaces/${enc(state.namespace)}/apps/${enc(app.name)}/revisions`);
  $('revisions').tBodies[0].replaceChildren(...revisions.reverse().map((r) => el('tr', { 'data-revision': String(r.revision) },
    el('td', { class: 'num' }, String(r.revision)),
    el('td', {}, time(r.metadata.creationTimestamp)),
    el('td', {}, String(r.spec.componentSource ?? r.spec.component ?? '')),
    el('td', {}, r.revision === app.serving ? 'serving' : ''))));
}

function renderNodes(snap) {
  $('nodes-hidden').hidden = snap.nodes != null;
  $('nodes').hidden = snap.nodes == null;
  $('nodes').tBodies[0].replaceChildren(...(snap.nodes ?? []).map((n) => el('tr', { 'data-node': n.metadata.name },
    el('td', { class: 'name' }, n.metadata.name),
    el('td', { class: `phase ${n.status.phase}`, title: n.status.message ?? '' }, n.status.phase),
    el('td', {}, n.spec.address),
    el('td', { class: 'apps num' }, String(n.status.apps ?? 0)),
    el('td', { class: 'num' }, bytes(n.status.memoryReserved)),
    el('td', { class: 'num' }, bytes(n.spec.capacityMemory)),
    el('td', { class: 'num' }, String(n.spec.maxInstances)),
    el('td', {}, time(n.status.lastHeartbeat)))));
}

function renderJobs(snap) {
  $('jobs-empty').hidden = snap.jobs.length > 0;
  $('jobs').tBodies[0].replaceChildren(...snap.jobs.map((j) => el('tr', { 'data-job': j.name },
    el('td', { class: 'name' }, j.name),
    el('td', {}, j.schedule ?? 'once'),
    el('td', { class: 'runs message' }, ...(j.runs.length ? j.runs.map((r) => el('span', {
      class: `run ${r.phase}`,
      'data-run': String(r.number),
      title: r.message ?? '',
    }, `#${r.number} ${r.phase}${r.exitCode != null ? ` (exit ${r.exitCode})` : ''} `)) : [j.message ?? 'no runs yet'])))));
}

function renderEvents(snap) {
  $('events').tBodies[0].replaceChildren(...snap.events.map((e) => el('tr', { 'data-event': e.metadata.name },
    el('td', {}, time(e.timestamp)),
    el('td', { class: e.type }, e.type),
    el('td', {}, e.reason),
    el('td', {}, `${e.involvedObject.kind}/${e.involvedObject.name}`),
    el('td', { class: 'message' }, e.message))));
}

function render(snap) {
  remember(snap.apps);
  renderApps(snap);
  renderDetail(snap);
  renderNodes(snap);
  renderJobs(snap);
  renderEvents(snap);
  setLive(true, `live · ${time(snap.time)}`);
  $('problem').hidden = true;
  document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots ?? 0) + 1);
}

function setLive(live, text) {
  $('live').className = live ? 'live' : 'stale';
  $('live').textContent = text;
}

const enc = encodeURIComponent;

async function api(path, init) {
  const response = await fetch(path, init);
  if (response.status === 401) location.reload(); // the login expired: the page asks again
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

function connect() {
  state.source?.close();
  const source = new EventSource(`/v1/namespaces/${enc(state.namespace)}/dashboard`);
  state.source = source;
  source.addEventListener('snapshot', (e) => render(JSON.parse(e.data)));
  source.addEventListener('problem', (e) => {
    $('problem').hidden = false;
    $('problem').textContent = e.data;
  });
  source.onerror = () => {
    setLive(false, 'reconnecting…');
    // A refused stream is not retried by the browser: find out why (an expired login reloads).
    if (source.readyState === EventSource.CLOSED) {
      api('/v1/info').then(() => setTimeout(connect, 2000)).catch((e) => {
        $('problem').hidden = false;
        $('problem').textContent = String(e.message);
      });
    }
  };
}

// Follows the selected app's log: the API's log route, read as it streams.
async function follow(name) {
  state.log?.abort();
  const controller = new AbortController();
  state.log = controller;
  const pre = $('log');
  pre.textContent = '';
  try {
    const response = await fetch(`/v1/namespaces/${enc(state.namespace)}/apps/${enc(name)}/logs?tail=200&follow=true`, { signal: controller.signal });
    if (!response.ok) {
      pre.textContent = await response.text();
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(value);
      const lines = pre.textContent.split('\n');
      if (lines.length > LOG_LINES) pre.textContent = lines.slice(-LOG_LINES).join('\n');
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }
  } catch (e) {
    if (e.name !== 'AbortError') pre.append(`\n[log stopped: ${e.message}]`);
  }
}

function select(name) {
  state.selected = name;
  state.servingShown = null;
  const url = new URL(location.href);
  if (name) url.searchParams.set('app', name); else url.searchParams.delete('app');
  history.replaceState(null, '', url);
  for (const row of $('apps').tBodies[0].rows) row.classList.toggle('selected', row.dataset.app === name);
  $('app-detail').hidden = !name;
  if (name) {
    $('detail-name').textContent = name;
    follow(name);
  } else {
    state.log?.abort();
  }
}

async function start() {
  const namespaces = await api('/v1/namespaces');
  const names = namespaces.map((n) => n.metadata.name);
  if (!state.namespace || !names.includes(state.namespace)) state.namespace = names[0] ?? 'default';
  $('namespace').replaceChildren(...names.map((n) => el('option', { value: n, selected: n === state.namespace }, n)));
  $('namespace').addEventListener('change', (e) => {
    const url = new URL(location.href);
    url.searchParams.set('namespace', e.target.value);
    url.searchParams.delete('app');
    location.assign(url);
  });
  $('detail-close').addEventListener('click', () => select(null));
  connect();
  if (state.selected) select(state.selected);
}

start().catch((e) => {
  $('problem').hidden = false;
  $('problem').textContent = String(e.message);
});
