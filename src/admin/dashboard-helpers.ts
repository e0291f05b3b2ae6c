/**
 * The dashboard script's DOM and number-formatting helpers, pasted into its function scope by
 * dashboard-script.ts (plain ES2020, no state of their own). The same rules hold here: no
 * backticks or dollar-brace sequences, since this text lives inside a template literal.
 */
export const dashboardHelpers = String.raw`  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function setText(e, text) { if (e.textContent !== text) e.textContent = text; }
  function setAttr(e, name, value) { if (e.getAttribute(name) !== value) e.setAttribute(name, value); }
  function svg(tag, attrs) {
    var e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function num(v) { return typeof v === 'number' && isFinite(v) ? v : 0; }
  function delta(now, before) { return now >= before ? now - before : now; } // a reset counter starts over
  function fmtRate(v) { return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2); }
  function fmtPct(v) { return v == null ? '\u2014' : v === 0 ? '0%' : (v * 100).toFixed(v >= 0.1 ? 0 : 1) + '%'; }
  function fmtMs(v) { return v >= 1000 ? (v / 1000).toFixed(2) + ' s' : v >= 10 ? v.toFixed(0) + ' ms' : v.toFixed(1) + ' ms'; }
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function fmtDuration(s) {
    s = Math.max(0, Math.floor(s));
    var d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d > 0) return d + 'd ' + pad(h) + 'h';
    if (h > 0) return h + 'h ' + pad(m) + 'm';
    if (m > 0) return m + 'm ' + pad(s % 60) + 's';
    return s + 's';
  }
  function ago(iso) { var t = Date.parse(iso); return isNaN(t) ? '' : fmtDuration((Date.now() - t) / 1000) + ' ago'; }
  // HTTPS certificates: the soonest expiry, flagged within 14 days (issue 11); each one in the title.
  function renderCerts(fact, certs) {
    var box = fact.parentNode, soonest = null, lines = [];
    box.hidden = certs.length === 0;
    certs.forEach(function (c) {
      var t = Date.parse(c.expiresAt);
      if (soonest === null || t < soonest) soonest = t;
      lines.push(':' + c.port + ' ' + (c.names || []).join(', ') + ' \u2014 expires ' + c.expiresAt + ' (' + c.cert + ')');
    });
    if (soonest === null) return;
    var days = (soonest - Date.now()) / 86400000, warn = days < 14;
    setText(fact, days <= 0 ? 'expired' : (warn ? 'expires in ' : 'ok \u00b7 ') + fmtDuration(days * 86400));
    fact.className = 'v ' + (warn ? 'bad' : 'ok');
    fact.title = (warn ? 'A certificate expires within 14 days\n' : '') + lines.join('\n');
  }`;
