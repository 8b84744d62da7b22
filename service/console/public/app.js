// Tollgate console: talks to /admin/v1 with the admin token from sessionStorage. No secrets in the
// page; every value is inserted with textContent (never as HTML).
import { stackedBars } from './charts.js';

const TOKEN_KEY = 'tollgate.adminToken';
const $ = (s) => document.querySelector(s);
let tenants = [];

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
  }
}

async function api(method, path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const r = await fetch(`/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await r.json().catch(() => ({}));
  if (r.status === 401) signOut('Your credential was refused; sign in again.');
  if (!r.ok) throw new ApiError(r.status, json);
  return json;
}

function cell(tr, value, cls) {
  const td = document.createElement('td');
  if (value instanceof Node) td.append(value);
  else td.textContent = value ?? '';
  if (cls) td.className = cls;
  tr.append(td);
  return td;
}

function pill(text, cls) {
  const s = document.createElement('span');
  s.className = `pill ${cls ?? text}`;
  s.textContent = text;
  return s;
}

function button(text, onClick, cls) {
  const b = document.createElement('button');
  b.textContent = text;
  if (cls) b.className = cls;
  b.addEventListener('click', onClick);
  return b;
}

function usd(v) {
  return v ? v.toFixed(6) : '0';
}

// ── sign in ────────────────────────────────────────────────────────────────
function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  $('#nav').hidden = true;
  $('#logout').hidden = true;
  $('#who').textContent = '';
  for (const t of document.querySelectorAll('.tab')) t.hidden = true;
  $('#login-view').hidden = false;
  $('#login-error').textContent = message ?? '';
}

async function start() {
  try {
    const me = await api('GET', '/whoami');
    $('#who').textContent = me.role === 'admin' ? `admin (${me.name})` : `team admin: ${me.tenant}${me.team ? '/' + me.team : ''}`;
    $('#login-view').hidden = true;
    $('#nav').hidden = false;
    $('#logout').hidden = false;
    const t = await api('GET', '/tenants');
    tenants = t.data;
    fillTenants();
    show('keys');
  } catch (e) {
    if (e.status !== 401) signOut(e.message);
  }
}

$('#login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('#token').value.trim());
  $('#token').value = '';
  void start();
});
$('#logout').addEventListener('click', () => signOut());

// ── tabs ───────────────────────────────────────────────────────────────────
const loaders = { keys: loadKeys, spend: loadSpend, budgets: loadBudgets, requests: loadRequests, explain: async () => {}, audit: loadAudit };
function show(tab) {
  for (const b of document.querySelectorAll('#nav button')) b.classList.toggle('active', b.dataset.tab === tab);
  for (const t of document.querySelectorAll('.tab')) t.hidden = t.id !== `tab-${tab}`;
  location.hash = tab;
  void loaders[tab]().catch((e) => alert(e.message));
}
for (const b of document.querySelectorAll('#nav button')) b.addEventListener('click', () => show(b.dataset.tab));

// ── keys ───────────────────────────────────────────────────────────────────
function fillTenants() {
  const sel = $('#ck-tenant');
  sel.replaceChildren(...tenants.map((t) => new Option(t.name, t.name)));
  fillTeams();
}
function fillTeams() {
  const t = tenants.find((x) => x.name === $('#ck-tenant').value);
  $('#ck-team').replaceChildren(new Option('(none)', ''), ...(t?.teams ?? []).map((n) => new Option(n, n)));
}
$('#ck-tenant').addEventListener('change', fillTeams);

function limitsText(l) {
  if (!l) return '';
  const parts = [];
  if (l.models?.length) parts.push(`models: ${l.models.join(', ')}`);
  if (l.budget) parts.push(`$${l.budget.usd}/${l.budget.window}`);
  if (l.rateLimit?.rpm) parts.push(`${l.rateLimit.rpm} rpm`);
  if (l.rateLimit?.tpm) parts.push(`${l.rateLimit.tpm} tpm`);
  return parts.join(' · ');
}

async function loadKeys() {
  const tbody = $('#keys-table tbody');
  let data;
  try {
    data = (await api('GET', '/keys')).data;
  } catch (e) {
    $('#keys-note').textContent = e.message;
    tbody.replaceChildren();
    return;
  }
  $('#keys-note').textContent = data.length ? '' : 'No managed keys yet. Keys from the config files (policies/keys.yaml) are not listed here.';
  tbody.replaceChildren(
    ...data.map((k) => {
      const tr = document.createElement('tr');
      tr.dataset.keyId = k.id;
      cell(tr, k.id);
      cell(tr, k.name ?? '');
      cell(tr, k.team ? `${k.tenant} / ${k.team}` : k.tenant);
      cell(tr, k.user ?? '');
      cell(tr, pill(k.status));
      cell(tr, k.secrets.map((s) => `…${s.hint}${s.validUntil ? ` (until ${s.validUntil.slice(0, 19).replace('T', ' ')})` : ''}`).join(', '));
      cell(tr, limitsText(k.limits));
      cell(tr, k.createdAt.slice(0, 16).replace('T', ' '));
      const actions = document.createElement('span');
      if (k.status === 'active') actions.append(button('Disable', () => act(k, 'disable')));
      if (k.status === 'disabled') actions.append(button('Enable', () => act(k, 'enable')));
      if (k.status !== 'revoked') {
        actions.append(' ', button('Rotate', () => act(k, 'rotate')), ' ', button('Revoke', () => act(k, 'revoke'), 'danger'));
      }
      cell(tr, actions);
      return tr;
    }),
  );
}

async function act(k, verb) {
  if (verb === 'revoke' && !confirm(`Revoke ${k.id}? Its secrets stop working at once, for good.`)) return;
  let body;
  if (verb === 'rotate') {
    const h = prompt('Keep the old secret working for how many seconds?', '3600');
    if (h === null) return;
    body = { overlapSeconds: Number(h) };
  }
  try {
    const r = await api('POST', `/keys/${encodeURIComponent(k.id)}/${verb}`, body);
    if (r.secret) showSecret(r.secret);
  } catch (e) {
    alert(e.message);
  }
  await loadKeys();
}

function showSecret(secret) {
  $('#secret-value').textContent = secret;
  $('#secret-box').hidden = false;
}
$('#secret-done').addEventListener('click', () => {
  $('#secret-value').textContent = '';
  $('#secret-box').hidden = true;
});

$('#create-key').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('#ck-error').textContent = '';
  const v = (id) => $(id).value.trim();
  const body = { tenant: v('#ck-tenant') };
  if (v('#ck-team')) body.team = v('#ck-team');
  if (v('#ck-user')) body.user = v('#ck-user');
  if (v('#ck-name')) body.name = v('#ck-name');
  if (v('#ck-expires')) body.expiresAt = `${v('#ck-expires')}T00:00:00Z`;
  const limits = {};
  const models = v('#ck-models').split(',').map((s) => s.trim()).filter(Boolean);
  if (models.length) limits.models = models;
  if (v('#ck-budget')) limits.budget = { usd: Number(v('#ck-budget')), window: v('#ck-window') };
  if (v('#ck-rpm')) limits.rateLimit = { rpm: Number(v('#ck-rpm')) };
  if (Object.keys(limits).length) body.limits = limits;
  try {
    const r = await api('POST', '/keys', body);
    showSecret(r.secret);
    $('#create-key').reset();
    fillTenants();
    await loadKeys();
  } catch (e) {
    $('#ck-error').textContent = e.message;
  }
});

// ── spend ──────────────────────────────────────────────────────────────────
async function loadSpend() {
  const hours = Number($('#sp-hours').value);
  const r = await api('GET', `/spend?by=${encodeURIComponent($('#sp-by').value)}&hours=${hours}&buckets=${hours <= 1 ? 12 : 24}`);
  stackedBars($('#spend-chart'), r);
  $('#spend-table tbody').replaceChildren(
    ...r.series.map((s) => {
      const tr = document.createElement('tr');
      cell(tr, s.name);
      cell(tr, String(s.requests), 'num');
      cell(tr, usd(s.totalUsd), 'num');
      return tr;
    }),
  );
}
$('#sp-refresh').addEventListener('click', () => void loadSpend().catch((e) => alert(e.message)));
$('#sp-by').addEventListener('change', () => void loadSpend().catch((e) => alert(e.message)));
$('#sp-hours').addEventListener('change', () => void loadSpend().catch((e) => alert(e.message)));

// ── budgets ────────────────────────────────────────────────────────────────
async function loadBudgets() {
  const r = await api('GET', '/budgets');
  const box = $('#budget-bars');
  if (!r.data.length) {
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = 'No budget has been applied to a request yet.';
    box.replaceChildren(p);
    return;
  }
  box.replaceChildren(
    ...r.data.map((b) => {
      const d = document.createElement('div');
      d.className = 'budget';
      const title = document.createElement('div');
      const pct = Math.round(b.ratio * 1000) / 10;
      const unit = b.unit === 'usd' ? '$' : '';
      title.textContent = `${b.name} — ${b.scopeKey ?? ''}: ${unit}${round(b.used)} of ${unit}${round(b.limit)} ${b.unit === 'usd' ? '' : b.unit} (${pct}%)`;
      const bar = document.createElement('div');
      bar.className = 'bar';
      const fill = document.createElement('span');
      fill.style.width = `${Math.min(100, pct)}%`;
      if (b.ratio >= 1) fill.className = 'over';
      else if (b.ratio >= 0.8) fill.className = 'warn';
      bar.append(fill);
      d.append(title, bar);
      return d;
    }),
  );
}
function round(v) {
  return Math.abs(v) < 1 ? Number(v.toPrecision(3)) : Math.round(v * 100) / 100;
}

// ── requests ───────────────────────────────────────────────────────────────
async function loadRequests() {
  const r = await api('GET', '/requests?limit=100');
  $('#requests-table tbody').replaceChildren(
    ...r.data.map((q) => {
      const tr = document.createElement('tr');
      tr.dataset.requestId = q.requestId;
      cell(tr, q.time.slice(0, 19).replace('T', ' '));
      cell(tr, q.team ? `${q.tenant} / ${q.team}` : (q.tenant ?? ''));
      cell(tr, q.keyId ?? '');
      cell(tr, q.model ?? '');
      const status = cell(tr, pill(`${q.status} ${q.outcome}`, `s${String(q.status)[0]}`));
      if (q.errorCode) {
        const code = document.createElement('div');
        code.className = 'muted';
        code.textContent = q.errorCode;
        status.append(code);
      }
      cell(tr, q.route ? `${q.route.provider} → ${q.route.model}` : '');
      cell(tr, q.rules.map((x) => `${x.policy}/${x.rule}: ${x.outcome}`).join('\n'), 'lines');
      cell(tr, q.redactions.map((x) => `${x.detector} ×${x.count}`).join(', '));
      cell(tr, usd(q.costUsd), 'num');
      return tr;
    }),
  );
}
$('#rq-refresh').addEventListener('click', () => void loadRequests().catch((e) => alert(e.message)));

// ── explain ────────────────────────────────────────────────────────────────
$('#explain-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const out = $('#explain-out');
  try {
    const body = { path: $('#ex-path').value.trim(), body: JSON.parse($('#ex-body').value) };
    if ($('#ex-key').value.trim()) body.key = $('#ex-key').value.trim();
    if ($('#ex-claims').value.trim()) body.claims = JSON.parse($('#ex-claims').value);
    out.textContent = JSON.stringify(await api('POST', '/explain', body), null, 2);
  } catch (e) {
    out.textContent = `Error: ${e.message}`;
  }
});

// ── audit ──────────────────────────────────────────────────────────────────
async function loadAudit() {
  const r = await api('GET', '/audit?limit=100');
  $('#audit-table tbody').replaceChildren(
    ...r.data.map((a) => {
      const tr = document.createElement('tr');
      cell(tr, a.time.slice(0, 19).replace('T', ' '));
      cell(tr, a.action);
      cell(tr, a.target ?? '');
      cell(tr, a.team ? `${a.tenant} / ${a.team}` : (a.tenant ?? ''));
      cell(tr, a.actor);
      cell(tr, a.detail ? Object.entries(a.detail).map(([k, v]) => `${k}=${v}`).join(' ') : '');
      return tr;
    }),
  );
}

if (sessionStorage.getItem(TOKEN_KEY)) void start();
