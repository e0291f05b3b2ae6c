import { dashboardCharts } from './dashboard-charts.js';
import { dashboardHelpers } from './dashboard-helpers.js';
import { dashboardTunnels } from './dashboard-tunnels.js';

/**
 * The dashboard's browser script (plain ES2020, no build step). It polls the admin JSON API every
 * second, derives rates from counter differences, and updates a DOM it builds once per backend;
 * all text goes in through textContent, so names and URLs from config are never parsed as HTML.
 * No backticks or dollar-brace sequences below but the one that pastes in the helpers: this
 * text lives inside a template literal.
 */
export const dashboardScript = String.raw`
'use strict';
(function () {
  var POLL_MS = 1000, SAMPLES = 60, TIMEOUT_MS = 3000, TICKS = 48, W = 120, H = 40;
  var REASONS = { 'health-check': 'health check failing', 'failed-attempts': 'requests failing',
    'draining': 'draining: finishing in-flight, taking nothing new', 'disabled': 'disabled by an operator' };

  // The token comes from ?token= once (then kept in localStorage and dropped from the address bar).
  var token = new URLSearchParams(location.search).get('token');
  try {
    if (token) localStorage.setItem('switchyard.token', token);
    else token = localStorage.getItem('switchyard.token');
  } catch (e) { /* storage may be off; the in-memory token still works */ }
  if (location.search.indexOf('token=') >= 0) history.replaceState(null, '', location.pathname);

  var $ = function (sel) { return document.querySelector(sel); };
  var body = document.body, main = $('main'), board = $('[data-upstreams]'), listenerBox = $('[data-listeners]'), banner = $('[data-banner]'), dot = $('.brand .dot');
  var facts = {};
  document.querySelectorAll('[data-fact]').forEach(function (e) { facts[e.getAttribute('data-fact')] = e; });
  var sections = new Map(), cards = new Map(), lastOkAt = 0, polls = 0;

${dashboardHelpers}
${dashboardCharts}
${dashboardTunnels}

  async function api(method, path) {
    var headers = { accept: 'application/json' };
    if (token) headers.authorization = 'Bearer ' + token;
    var ctl = new AbortController(), timer = setTimeout(function () { ctl.abort(); }, TIMEOUT_MS);
    try {
      var res = await fetch(path, { method: method, headers: headers, signal: ctl.signal, cache: 'no-store' });
      var text = await res.text(), json = null;
      try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
      return { status: res.status, ok: res.ok, json: json };
    } finally { clearTimeout(timer); }
  }

  var toastTimer = 0;
  function toast(text, ok) {
    var t = $('[data-toast]');
    setText(t, text);
    t.className = 'toast shown ' + (ok ? 'ok' : 'bad');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { t.className = 'toast'; }, 4000);
  }

  function setApiState(state, message) {
    body.setAttribute('data-api', state);
    var down = state !== 'ok';
    banner.classList.toggle('shown', down);
    main.classList.toggle('stale', down && lastOkAt > 0);
    dot.classList.toggle('live', !down);
    if (down) setText(banner, message);
  }

  function renderStatus(s) {
    setText(facts.version, 'v' + s.version);
    setText(facts.uptime, fmtDuration(num(s.uptimeSeconds)));
    var listeners = (s.listeners || []).map(function (l) { return l.url || l.address + ':' + l.port; });
    setText(facts.listeners, listeners.join(', ') || 'none');
    facts.listeners.title = listeners.join('\n');
    var c = s.config || {};
    setText(facts.digest, String(c.digest || '').slice(0, 12) || '\u2014');
    facts.digest.title = 'sha256 ' + (c.digest || '') + '\nsource: ' + (c.source || '') + '\nloaded: ' + (c.loadedAt || '');
    var r = s.reloads || { ok: 0, failed: 0, last: null }, last = r.last;
    setText(facts.reload, last ? (last.ok ? 'ok' : 'failed') + ' \u00b7 ' + ago(last.at) : 'none yet');
    facts.reload.className = 'v' + (last ? (last.ok ? ' ok' : ' bad') : '');
    facts.reload.title = r.ok + ' ok, ' + r.failed + ' failed' + (last && last.error ? '\nlast error: ' + last.error : '');
    renderCerts(facts.certs, s.certificates || []);
    renderListeners(listenerBox, s.listeners || []);
  }

  function makeSection(name) {
    var s = { root: el('section', 'upstream'), meta: el('span'), grid: el('div', 'grid') }, head = el('div', 'upstream-head');
    s.root.setAttribute('data-upstream', name);
    head.append(el('h2', '', name), s.meta);
    s.root.append(head, s.grid);
    sections.set(name, s);
    return s;
  }

  function stat(parent, label, key) {
    var box = el('div', 'stat'), v = el('div', 'v', '\u2014');
    box.append(el('div', 'k', label), v);
    v.setAttribute('data-stat', key);
    parent.append(box);
    return v;
  }

  function makeCard(upstream, b) {
    var root = el('article', 'card'), head = el('div', 'card-head'), stats = el('div', 'stats');
    root.setAttribute('data-backend', b.id);
    root.setAttribute('data-upstream', upstream);
    var url = el('div', 'url'), weight = el('div', 'weight'), badge = el('div', 'badge'), reasons = el('div', 'reasons');
    head.append(url, weight, badge);
    var c = { root: root, upstream: upstream, id: b.id, url: url, weight: weight, badge: badge, reasons: reasons, prev: null,
      rps: stat(stats, 'req/s', 'rps'), inFlight: stat(stats, 'in flight', 'inFlight'), errors: stat(stats, 'errors', 'errors'),
      p50: stat(stats, 'p50', 'p50'), p99: stat(stats, 'p99', 'p99'), share5: stat(stats, '5xx', '5xx') };
    var charts = el('div', 'charts');
    c.rpsChart = makeChart(charts, 'rps', 'requests/s');
    c.p99Chart = makeChart(charts, 'p99', 'p99 latency');
    var health = el('div', 'health');
    c.ticks = el('div', 'ticks');
    c.ticks.setAttribute('data-health', '');
    c.lastCheck = el('div', 'last');
    health.append(el('span', 'k', 'health'), c.ticks, c.lastCheck);
    var actions = el('div', 'actions');
    c.buttons = {};
    [['drain', 'Drain'], ['disable', 'Disable'], ['enable', 'Enable']].forEach(function (a) {
      var button = el('button', '', a[1]);
      button.type = 'button';
      button.setAttribute('data-action', a[0]);
      button.addEventListener('click', function () { act(c, a[0], button); });
      c.buttons[a[0]] = button;
      actions.append(button);
    });
    c.tunnels = makeTunnelLine();
    root.append(head, reasons, stats, c.tunnels.line, charts, health, actions);
    cards.set(upstream + '\n' + b.id, c);
    return c;
  }

  // Badge, reasons and buttons: everything an action's answer can change.
  function applyState(c, b) {
    var reasons = Array.isArray(b.reasons) ? b.reasons : [];
    c.root.setAttribute('data-state', b.state);
    c.badge.setAttribute('data-state', b.state);
    setText(c.badge, b.state);
    var lastErr = b.health && b.health.last && !b.health.last.ok ? b.health.last.error : '';
    var words = reasons.map(function (r) { return (REASONS[r] || r) + (r === 'health-check' && lastErr ? ': ' + lastErr : ''); });
    if (b.state === 'up' && b.available === false) words.push('at its in-flight limit');
    setText(c.reasons, words.join(' \u00b7 '));
    c.reasons.title = c.reasons.textContent;
    c.buttons.drain.disabled = reasons.indexOf('draining') >= 0;
    c.buttons.disable.disabled = reasons.indexOf('disabled') >= 0;
    c.buttons.enable.disabled = reasons.indexOf('draining') < 0 && reasons.indexOf('disabled') < 0;
  }

  function updateCard(c, b, now) {
    setText(c.url, b.url);
    c.url.title = b.url;
    setText(c.weight, 'w ' + b.weight);
    applyState(c, b);
    var resp = b.responses || {}, r5 = num(resp['5xx']);
    var respTotal = num(resp['1xx']) + num(resp['2xx']) + num(resp['3xx']) + num(resp['4xx']) + r5;
    var cur = { t: now, req: num(b.requestsTotal), fail: num(b.failuresTotal), resp: respTotal, r5: r5 };
    var lat = b.latencyMs || {}, p50 = num(lat.p50), p99 = num(lat.p99), seen = cur.req > 0;
    setText(c.inFlight, String(num(b.inFlight)));
    setText(c.p50, seen ? fmtMs(p50) : '\u2014');
    setText(c.p99, seen ? fmtMs(p99) : '\u2014');
    if (c.prev !== null && now > c.prev.t) {
      var p = c.prev, dReq = delta(cur.req, p.req), dResp = delta(cur.resp, p.resp);
      var rps = dReq / ((now - p.t) / 1000);
      var err = dReq > 0 ? Math.min(1, delta(cur.fail, p.fail) / dReq) : null;
      var share5 = dResp > 0 ? Math.min(1, delta(cur.r5, p.r5) / dResp) : null;
      setText(c.rps, fmtRate(rps));
      setText(c.errors, fmtPct(err));
      c.errors.className = 'v' + (err == null || err === 0 ? '' : err < 0.05 ? ' warn' : ' bad');
      setText(c.share5, fmtPct(share5));
      c.share5.className = 'v' + (share5 == null || share5 === 0 ? '' : share5 < 0.05 ? ' warn' : ' bad');
      draw(c.rpsChart, rps, 1, fmtRate);
      draw(c.p99Chart, seen ? p99 : 0, 1, fmtMs);
    }
    c.prev = cur;
    renderHealth(c, b.health || { last: null, history: [] });
    renderTunnels(c.tunnels, b.tunnels);
  }

  function renderHealth(c, h) {
    var history = (Array.isArray(h.history) ? h.history : []).slice(-TICKS), ticks = c.ticks;
    while (ticks.children.length < history.length) ticks.append(el('span', 'tick'));
    while (ticks.children.length > history.length) ticks.lastChild.remove();
    // Newest first: the strip lays ticks out from the right and hides what does not fit on the left.
    for (var i = 0; i < history.length; i++) {
      var tick = ticks.children[i], result = history[history.length - 1 - i], ok = !!result.ok;
      tick.className = ok ? 'tick' : 'tick fail';
      setAttr(tick, 'data-ok', String(ok));
      tick.title = result.at + (ok ? '  ok' : '  failed');
    }
    var last = h.last;
    setText(c.lastCheck, last ? (last.ok ? fmtMs(num(last.durationMs)) : 'failed') : 'no checks');
    c.lastCheck.title = last ? ago(last.at) + (last.error ? '\n' + last.error : '') : '';
  }

  function renderUpstreams(data, now) {
    var list = data && Array.isArray(data.upstreams) ? data.upstreams : [], keep = new Set();
    list.forEach(function (u, i) {
      var s = sections.get(u.name) || makeSection(u.name), up = 0, backends = u.backends || [];
      if (board.children[i] !== s.root) board.insertBefore(s.root, board.children[i] || null);
      keep.add(s);
      backends.forEach(function (b, j) {
        var c = cards.get(u.name + '\n' + b.id) || makeCard(u.name, b);
        if (s.grid.children[j] !== c.root) s.grid.insertBefore(c.root, s.grid.children[j] || null);
        keep.add(c);
        updateCard(c, b, now);
        if (b.state === 'up') up++;
      });
      var d = u.discovery, found = d ? ' \u00b7 ' + d.source + ' gen ' + d.generation + (d.state === 'error' ? ' \u00b7 discovery failing, last good set kept' : '') : '';
      setText(s.meta, u.balancer + ' \u00b7 ' + up + ' of ' + backends.length + ' up' + found);
      s.meta.title = d ? 'updated ' + (d.lastUpdate ? ago(d.lastUpdate) : 'never') + (d.lastError ? '\nlast error: ' + d.lastError.message + ' (' + ago(d.lastError.at) + ')' : '') : '';
    });
    sections.forEach(function (s, name) { if (!keep.has(s)) { s.root.remove(); sections.delete(name); } });
    cards.forEach(function (c, key) { if (!keep.has(c)) { c.root.remove(); cards.delete(key); } });
    $('.empty').hidden = list.length > 0;
  }

  var timer = 0, busy = false, again = false;
  async function poll() {
    if (busy) { again = true; return; }
    busy = true;
    clearTimeout(timer);
    try {
      var r = await Promise.all([api('GET', 'api/status'), api('GET', 'api/upstreams')]);
      var bad = r[0].ok ? r[1] : r[0];
      if (r[0].status === 401 || r[1].status === 401) {
        setApiState('unauthorized', 'The admin API ' + (token ? 'rejected the token' : 'wants a token') + ': open this page as /?token=YOUR_TOKEN.');
      } else if (!bad.ok) {
        setApiState('error', 'The admin API answered ' + bad.status + ': ' + ((bad.json && bad.json.error) || 'no details') + '. Retrying every second.');
      } else {
        renderStatus(r[0].json);
        renderUpstreams(r[1].json, performance.now());
        lastOkAt = Date.now();
        body.setAttribute('data-polls', String(++polls));
        setApiState('ok', '');
      }
    } catch (e) {
      var since = lastOkAt ? ' Last update ' + fmtDuration((Date.now() - lastOkAt) / 1000) + ' ago;' : '';
      setApiState('down', 'Admin API unreachable.' + since + ' retrying every second.');
    }
    busy = false;
    if (again) { again = false; poll(); } else timer = setTimeout(poll, POLL_MS);
  }

  async function post(path, what) {
    try {
      var r = await api('POST', path);
      if (!r.ok) toast(what + ' failed: ' + ((r.json && r.json.error) || 'HTTP ' + r.status), false);
      return r;
    } catch (e) {
      toast(what + ' failed: the admin API is unreachable', false);
      return null;
    }
  }

  async function act(c, action, button) {
    button.disabled = true;
    // The id is already a URL-safe path segment (the API's contract); the name may need escaping.
    var path = 'api/upstreams/' + encodeURIComponent(c.upstream) + '/backends/' + c.id + '/' + action;
    var r = await post(path, action + ' ' + c.url.textContent);
    if (r && r.ok && r.json && r.json.backend) {
      applyState(c, r.json.backend);
      toast(action + ': ' + c.url.textContent + ' is now ' + r.json.backend.state, true);
    }
    poll();
  }

  $('[data-action="reload"]').addEventListener('click', async function () {
    var r = await post('api/reload', 'Reload');
    if (r && r.ok) toast('Config reloaded \u00b7 digest ' + String((r.json && r.json.digest) || '').slice(0, 12), true);
    poll();
  });

  poll();
})();
`;
