// The hotocr dashboard: plain ES modules served by the server itself (no build step, no CDN).
import uPlot from '/dashboard/vendor/uPlot.esm.js';

const TOKEN_KEY = 'hotocr-admin-token';
const $ = (id) => document.getElementById(id);

/** Creates an element: h('td', {class: 'x'}, 'text', child...). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === undefined || v === null) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

const state = { models: [], default: null, routings: {}, stats: [], events: [] };
const short = (hex) => (hex ? hex.slice(0, 12) : '');
const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');

function token() {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

function showAdminMessage(text, ok) {
  const box = $('admin-message');
  box.hidden = !text;
  box.textContent = text ?? '';
  box.dataset.result = ok ? 'ok' : 'refused';
}

/** An admin call; shows the server's code and sentence when it is refused. */
async function admin(method, path, body) {
  const headers = { authorization: `Bearer ${token()}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = answer.error ?? { code: `HTTP_${res.status}`, message: res.statusText };
    showAdminMessage(`Refused: ${e.code}: ${e.message}`, false);
    return undefined;
  }
  showAdminMessage(`${method} ${path}: done.`, true);
  await refresh();
  return answer;
}

/** Who signed a version: a key, a certificate, or for OpenSSF Model Signing also a keyless identity. */
function describeSigner(signer) {
  if (!signer) return '';
  const oms = signer.kind.startsWith('oms-') ? 'OMS ' : '';
  switch (signer.kind) {
    case 'certificate':
    case 'oms-certificate':
      return `${oms}${signer.subject} (${short(signer.fingerprint)})`;
    case 'oms-sigstore':
      return `OMS keyless ${signer.identity} (${signer.issuer})`;
    default:
      return `${oms}key ${short(signer.fingerprint)} ${signer.source ?? ''}`;
  }
}

/**
 * One card per model, kept across refreshes (its charts live in it): the head (active
 * version, default, roll back, retire), the versions, the routing, the traffic.
 */
const cards = new Map();

function cardOf(name) {
  let card = cards.get(name);
  if (!card) {
    const head = h('div', { class: 'model-head' });
    const versions = h('div', { class: 'scroll' });
    const routing = h('form', { class: 'routing', 'aria-label': `Routing of ${name}` });
    const charts = h('div', { class: 'charts' }, h('p', { class: 'muted' }, 'No requests yet.'));
    const root = h(
      'section',
      { class: 'model', 'data-model': name, 'aria-label': `Model ${name}` },
      head,
      versions,
      h('h4', {}, 'Routing'),
      routing,
      h('h4', {}, 'Traffic, last 5 minutes'),
      charts,
    );
    card = { root, head, versions, routing, charts, plots: undefined };
    cards.set(name, card);
  }
  return card;
}

function renderModels() {
  const box = $('models');
  const names = new Set(state.models.map((m) => m.name));
  for (const [name, card] of cards)
    if (!names.has(name)) {
      card.plots?.l.destroy();
      card.plots?.r.destroy();
      cards.delete(name);
    }
  box.replaceChildren(
    ...(state.models.length === 0 ? [h('p', { class: 'muted' }, 'No model version yet.')] : []),
    ...state.models.map((model) => {
      const card = cardOf(model.name);
      renderModel(card, model);
      renderRouting(card, model);
      return card.root;
    }),
  );
  renderPicker();
}

function renderModel(card, model) {
  const hasToken = token() !== '';
  const routing = state.routings[model.name];
  const weights = new Map((routing?.split ?? []).map((s) => [s.version, s.weight]));
  const stats = new Map(state.stats.map((s) => [s.version, s]));
  card.head.replaceChildren(
    ...[
      h('h3', {}, model.name),
      state.default === model.name
        ? h('span', { class: 'tag', 'data-testid': 'default-model' }, 'default')
        : null,
      h('span', {}, 'active: ', h('strong', { 'data-testid': 'active-version' }, model.active ?? 'none')),
      h(
        'button',
        {
          type: 'button',
          disabled: !hasToken,
          onclick: () => void admin('POST', `/v1/models/${encodeURIComponent(model.name)}/rollback`),
        },
        'Roll back',
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'danger',
          disabled: !hasToken,
          onclick: () => {
            if (
              confirm(
                `Retire ${model.name}? Its versions drain and are released, and its history is forgotten.`,
              )
            )
              void admin('DELETE', `/v1/models/${encodeURIComponent(model.name)}`);
          },
        },
        'Retire',
      ),
    ].filter(Boolean),
  );
  card.versions.replaceChildren(
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['version', 'state', 'hash', 'signer', 'loaded', 'in flight', 'req/s', 'p99', ''].map((t) =>
            h('th', { scope: 'col' }, t),
          ),
        ),
      ),
      h(
        'tbody',
        {},
        model.versions.map((v) => {
          const s = stats.get(`${v.name}/${v.version}`);
          const weight = weights.get(v.version);
          const serving = v.state === 'active' || v.state === 'ready';
          return h(
            'tr',
            { class: `state-${v.state}`, 'data-version': v.version },
            h(
              'td',
              {},
              h('strong', {}, v.version),
              v.state === 'active' ? h('span', { class: 'tag' }, '★ active') : null,
              weight !== undefined ? h('span', { class: 'tag canary' }, `${weight}% of traffic`) : null,
            ),
            h(
              'td',
              {},
              h('span', { class: `state state-${v.state}` }, v.state),
              v.failure ? h('div', { class: 'failure' }, `${v.failure.code}: ${v.failure.message}`) : null,
            ),
            h('td', { class: 'mono', title: v.sha256 }, short(v.sha256)),
            h('td', { class: 'mono' }, describeSigner(v.signer)),
            h(
              'td',
              {},
              time(v.loadedAt),
              v.loader ? h('div', { class: 'mono', title: 'loader' }, v.loader.name) : null,
            ),
            h('td', { class: 'num' }, String(v.inflight)),
            h('td', { class: 'num' }, s ? s.perSecond.toFixed(1) : '–'),
            h('td', { class: 'num' }, s?.p99 ? `${s.p99} ms` : '–'),
            h(
              'td',
              { class: 'actions' },
              v.state === 'ready'
                ? h(
                    'button',
                    {
                      type: 'button',
                      disabled: !hasToken,
                      onclick: () =>
                        void admin(
                          'POST',
                          `/v1/models/${encodeURIComponent(v.name)}/versions/${encodeURIComponent(v.version)}/activate`,
                        ),
                    },
                    'Activate',
                  )
                : null,
              serving && v.state !== 'active'
                ? h(
                    'button',
                    {
                      type: 'button',
                      disabled: !hasToken,
                      onclick: () =>
                        void admin(
                          'DELETE',
                          `/v1/models/${encodeURIComponent(v.name)}/versions/${encodeURIComponent(v.version)}`,
                        ),
                    },
                    'Unload',
                  )
                : null,
            ),
          );
        }),
      ),
    ),
  );
}

function renderRouting(card, model) {
  const form = card.routing;
  // Not while someone is typing weights: the next refresh after they leave the form shows the change.
  if (form.contains(document.activeElement) && form.dataset.model === model.name) return;
  form.dataset.model = model.name;
  const routing = state.routings[model.name];
  const path = `/v1/models/${encodeURIComponent(model.name)}/routing`;
  const weights = new Map((routing?.split ?? []).map((s) => [s.version, s.weight]));
  const candidates = model.versions.filter((v) => v.state === 'ready' || v.state === 'active');
  const hasToken = token() !== '';
  form.replaceChildren(
    h(
      'p',
      { 'data-testid': 'routing-summary' },
      routing?.split?.length
        ? `Split: ${routing.split.map((s) => `${s.version} ${s.weight}%`).join(', ')}.`
        : `Every request goes to the active version (${model.active ?? 'none'}).`,
      ` Pinning with X-Model-Version is ${routing?.allowPinning ? 'allowed' : 'off'}.`,
    ),
    h(
      'div',
      { class: 'weights' },
      candidates.map((v) =>
        h(
          'label',
          {},
          `${v.version} `,
          h('input', {
            type: 'number',
            min: 0,
            max: 100,
            step: 1,
            name: v.version,
            value: weights.get(v.version) ?? (routing?.split?.length ? 0 : v.state === 'active' ? 100 : 0),
          }),
          ' %',
        ),
      ),
    ),
    h(
      'label',
      { class: 'pinning' },
      h('input', { type: 'checkbox', name: 'allowPinning', checked: routing?.allowPinning ?? false }),
      ' allow pinning with X-Model-Version',
    ),
    h(
      'div',
      { class: 'row' },
      h('button', { type: 'submit', disabled: !hasToken }, 'Apply weights'),
      h(
        'button',
        {
          type: 'button',
          disabled: !hasToken,
          onclick: () => admin('PUT', path, { split: {}, allowPinning: form.elements.allowPinning.checked }),
        },
        'End the split',
      ),
    ),
  );
  form.onsubmit = (event) => {
    event.preventDefault();
    const split = {};
    for (const v of candidates) split[v.version] = Number(form.elements[v.version].value);
    void admin('PUT', path, { split, allowPinning: form.elements.allowPinning.checked });
  };
}

/** The "try it" model picker: the default model, or any model by name. */
function renderPicker() {
  const picker = $('try-model');
  const chosen = picker.value;
  picker.replaceChildren(
    h('option', { value: '' }, state.default ? `default (${state.default})` : 'default model'),
    ...state.models.map((m) => h('option', { value: m.name }, m.name)),
  );
  picker.value = state.models.some((m) => m.name === chosen) ? chosen : '';
}

function describeEvent(e) {
  const who = [e.name, e.version].filter(Boolean).join(' ');
  switch (e.type) {
    case 'rejected':
      return `${who || (e.path ?? '').split('/').pop()} refused (${e.source}): ${e.code}: ${e.message}`;
    case 'failed':
      return `${who} failed: ${e.code}: ${e.message}`;
    case 'activated':
      return `${who} activated${e.previous ? ` (was ${e.previous})` : ''}`;
    case 'ready':
      return `${who} ready (load ${e.loadMs} ms, warm-up ${e.warmupMs} ms)`;
    case 'verified':
      return `${who} verified in ${e.verifyMs} ms`;
    case 'draining':
      return `${who} draining (${e.inflight} in flight)`;
    case 'routing':
      return `routing: ${e.split.length ? e.split.map((s) => `${s.version} ${s.weight}%`).join(', ') : 'all to the active version'} (${e.reason})`;
    case 'package-seen':
    case 'verifying':
      return `${(e.path ?? '').split('/').pop()} (${e.source})`;
    default:
      return who;
  }
}

function addEvent(e) {
  const item = h(
    'li',
    {
      class: `event event-${e.type}${e.rollback ? ' event-rollback' : ''}`,
      'data-type': e.type,
      ...(e.code ? { 'data-code': e.code } : {}),
      ...(e.rollback ? { 'data-cause': e.rollback.cause } : {}),
    },
    h('time', { datetime: e.ts }, time(e.ts)),
    h('span', { class: 'event-type' }, e.rollback ? 'canary rolled back' : e.type),
    h('span', {}, describeEvent(e)),
  );
  const list = $('events');
  list.prepend(item);
  while (list.children.length > 200) list.lastElementChild.remove();
}

let refreshTimer;
async function refresh() {
  clearTimeout(refreshTimer);
  try {
    const json = (p) => fetch(p).then((r) => r.json());
    const [models, stats] = await Promise.all([json('/v1/models'), json('/v1/stats')]);
    const routings = await Promise.all(
      models.models.map((m) => json(`/v1/models/${encodeURIComponent(m.name)}/routing`)),
    );
    state.models = models.models;
    state.default = models.default ?? null;
    state.routings = Object.fromEntries(routings.filter((r) => r.name).map((r) => [r.name, r]));
    state.stats = stats.versions;
    renderModels();
    renderCharts();
  } catch {
    // The server is restarting: the event stream reconnects and calls this again.
  }
  refreshTimer = setTimeout(refresh, 2000);
}

let refreshSoon;
function connect(delay = 1000) {
  const live = $('live');
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/events`);
  ws.onopen = () => {
    live.dataset.state = 'live';
    live.textContent = 'live';
    delay = 1000;
  };
  ws.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === 'snapshot') {
      state.models = event.models;
      state.routings = Object.fromEntries((event.routings ?? []).map((r) => [r.name, r]));
      $('events').replaceChildren();
      for (const e of event.recent ?? []) addEvent(e);
      renderModels();
      return;
    }
    addEvent(event);
    if (event.type === 'routing' && event.name)
      state.routings[event.name] = { ...state.routings[event.name], ...event };
    clearTimeout(refreshSoon);
    refreshSoon = setTimeout(refresh, 50);
  };
  ws.onclose = () => {
    live.dataset.state = 'reconnecting';
    live.textContent = 'reconnecting…';
    setTimeout(() => connect(Math.min(delay * 2, 8000)), delay);
  };
}

// Charts, per model: latency (p50, p99) and throughput per version, one point per 5 s.
function renderCharts() {
  for (const model of state.models) renderChartsOf(cardOf(model.name), model.name);
}

function renderChartsOf(card, name) {
  const box = card.charts;
  const versions = state.stats.filter((s) => s.series.length > 0 && s.version.startsWith(`${name}/`));
  if (versions.length === 0) return;
  const label = (v) => v.version.slice(name.length + 1);
  const xs = [...new Set(versions.flatMap((v) => v.series.map((p) => p.t)))].sort((a, b) => a - b);
  const column = (v, f) => {
    const byT = new Map(v.series.map((p) => [p.t, p]));
    return xs.map((t) => (byT.has(t) ? f(byT.get(t)) : null));
  };
  const latency = [
    xs.map((t) => t / 1000),
    ...versions.flatMap((v) => [column(v, (p) => p.p50), column(v, (p) => p.p99)]),
  ];
  const rate = [xs.map((t) => t / 1000), ...versions.map((v) => column(v, (p) => p.count / 5))];
  const key = versions.map((v) => v.version).join(',');
  const width = Math.max(260, box.clientWidth - 8);
  // Always the last five minutes, however few points there are.
  const now = Date.now() / 1000;
  const scales = { x: { time: true, range: () => [now - 300, now] } };
  if (card.plots?.key !== key) {
    card.plots?.l.destroy();
    card.plots?.r.destroy();
    const dashes = [[], [6, 4]];
    box.replaceChildren();
    const l = new uPlot(
      {
        title: 'Latency (ms): p50 solid, p99 dashed',
        width,
        scales,
        height: 180,
        series: [
          {},
          ...versions.flatMap((v, i) =>
            ['p50', 'p99'].map((q, j) => ({
              label: `${label(v)} ${q}`,
              stroke: PALETTE[i % PALETTE.length],
              dash: dashes[j],
              spanGaps: true,
            })),
          ),
        ],
      },
      latency,
      box,
    );
    const r = new uPlot(
      {
        title: 'Requests per second',
        width,
        scales,
        height: 140,
        series: [
          {},
          ...versions.map((v, i) => ({
            label: label(v),
            stroke: PALETTE[i % PALETTE.length],
            spanGaps: true,
          })),
        ],
      },
      rate,
      box,
    );
    card.plots = { key, l, r };
  } else {
    card.plots.l.setData(latency);
    card.plots.r.setData(rate);
  }
}
const PALETTE = ['#1f6feb', '#c2410c', '#15803d', '#7e22ce', '#b91c1c'];

/** The file last tried: read again when a PDF password is typed in after it was refused. */
let lastTried;

/** A header carries bytes: the password's UTF-8, each byte as one character. */
function headerBytes(text) {
  let out = '';
  for (const byte of new TextEncoder().encode(text)) out += String.fromCharCode(byte);
  return out;
}

/** Each try is numbered: an answer to an older one, still on its way, is not drawn. */
let tries = 0;

// Try it: send an image or a document, draw the boxes over each page, list the lines.
async function tryImage(file) {
  lastTried = file;
  const attempt = ++tries;
  const answer = $('answer');
  answer.textContent = `Reading ${file.name}…`;
  const form = new FormData();
  form.append('image', file, file.name);
  const model = $('try-model').value;
  const path = model ? `/v1/models/${encodeURIComponent(model)}/ocr` : '/v1/ocr';
  const password = $('try-password').value;
  // A document's pages come back as the server rendered them: the browser draws neither PDF nor TIFF.
  const res = await fetch(`${path}?pageImages=true`, {
    method: 'POST',
    body: form,
    headers: password ? { 'X-Document-Password': headerBytes(password) } : {},
  });
  const body = await res.json().catch(() => ({}));
  if (attempt !== tries) return;
  if (!res.ok) {
    answer.textContent = `Refused: ${body.error?.code ?? res.status}: ${body.error?.message ?? ''}`;
    $('result').hidden = true;
    return;
  }
  const pages = body.pages
    ? body.pages.map((p) => ({ ...p, src: p.image, label: `page ${p.page}` }))
    : [{ src: URL.createObjectURL(file), lines: body.lines, label: '' }];
  const select = (key) => {
    for (const el of document.querySelectorAll('[data-line]'))
      el.classList.toggle('selected', el.dataset.line === key);
  };
  const figures = [];
  const items = [];
  for (const [n, page] of pages.entries()) {
    const img = h('img', { src: page.src, alt: page.label ? `${file.name}, ${page.label}` : file.name });
    await new Promise((resolve) => {
      img.onload = resolve;
      img.onerror = resolve;
    });
    const svgNs = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(svgNs, 'svg');
    svg.setAttribute('viewBox', `0 0 ${page.width ?? img.naturalWidth} ${page.height ?? img.naturalHeight}`);
    svg.setAttribute('preserveAspectRatio', 'none');
    // Lines are keyed by their index, and by page too in a document.
    const keyOf = (i) => (body.pages ? `${n}.${i}` : String(i));
    page.lines.forEach((line, i) => {
      const key = keyOf(i);
      const poly = document.createElementNS(svgNs, 'polygon');
      poly.setAttribute('points', line.box.map(([x, y]) => `${x},${y}`).join(' '));
      poly.dataset.line = key;
      poly.addEventListener('click', () => select(key));
      svg.append(poly);
    });
    figures.push(
      page.label
        ? h('figure', {}, h('figcaption', {}, page.label), h('div', { class: 'overlay' }, img, svg))
        : h('div', { class: 'overlay' }, img, svg),
    );
    if (page.label) items.push(h('li', { class: 'page-heading' }, h('strong', {}, page.label)));
    items.push(
      ...page.lines.map((line, i) =>
        h(
          'li',
          // Numbered within the page: the page headings are items of the list too.
          { 'data-line': keyOf(i), value: i + 1 },
          h('button', { type: 'button', onclick: () => select(keyOf(i)) }, line.text || '(empty)'),
          h('span', { class: 'muted' }, ` ${(line.score * 100).toFixed(1)}%`),
        ),
      ),
    );
  }
  if (attempt !== tries) return;
  $('figure').replaceChildren(...figures);
  $('lines').replaceChildren(...items);
  const t = body.timings;
  const count = pages.reduce((n, p) => n + p.lines.length, 0);
  const what = body.pages ? `${count} lines on ${pages.length} of ${body.pageCount} pages` : `${count} lines`;
  answer.textContent = `${what}, read by ${body.model.name} ${body.model.version} in ${t.total} ms (queue ${t.queue}, decode ${t.decode}${t.render !== undefined ? `, rendering ${t.render}` : ''}, detection ${t.det}, recognition ${t.rec}).`;
  $('result').hidden = false;
}

function setUp() {
  const input = $('token');
  input.value = token();
  $('token-form').onsubmit = (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    showAdminMessage(input.value.trim() ? 'Token kept for this tab only.' : '', true);
    renderModels();
  };
  $('forget').onclick = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    input.value = '';
    showAdminMessage('', true);
    renderModels();
  };
  $('try-password').onchange = () => {
    if (lastTried) void tryImage(lastTried);
  };
  $('file').onchange = (event) => {
    const file = event.target.files?.[0];
    if (file) void tryImage(file);
  };
  const drop = $('drop');
  drop.ondragover = (event) => {
    event.preventDefault();
    drop.classList.add('over');
  };
  drop.ondragleave = () => drop.classList.remove('over');
  drop.ondrop = (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const file = event.dataTransfer?.files?.[0];
    if (file) void tryImage(file);
  };
  connect();
  void refresh();
}

setUp();
