/**
 * The dashboard script's WebSocket tunnel views (issue 11), pasted into its function scope by
 * dashboard-script.ts: a line per backend card and a strip with one entry per listener, each
 * with the open tunnels and the bytes each way. Same rules: no backticks or dollar-brace
 * sequences, since this text lives inside a template literal.
 */
export const dashboardTunnels = String.raw`  function fmtBytes(v) {
    var units = ['B', 'kB', 'MB', 'GB', 'TB'], i = 0;
    while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return (i === 0 ? String(v) : v >= 100 ? v.toFixed(0) : v.toFixed(1)) + ' ' + units[i];
  }
  // One line of tunnel figures: the open count stands out, the rest follows.
  function makeTunnelLine() {
    var line = el('div', 'tunnels'), open = el('b', '', '0'), rest = el('span', '', '');
    open.setAttribute('data-tunnels-open', '');
    line.append(el('span', 'k', 'tunnels'), open, el('span', '', ' open'), rest);
    return { line: line, open: open, rest: rest };
  }
  function renderTunnels(view, t) {
    t = t || {};
    var open = num(t.open);
    setText(view.open, String(open));
    setAttr(view.line, 'data-open', String(open));
    setText(view.rest, ' \u00b7 ' + fmtBytes(num(t.bytesIn)) + ' in \u00b7 ' + fmtBytes(num(t.bytesOut)) + ' out \u00b7 ' + num(t.total) + ' total');
    view.line.title = 'WebSocket tunnels: ' + open + ' open, ' + num(t.total) + ' opened since start\nin: client to backend ' + num(t.bytesIn) + ' bytes\nout: backend to client ' + num(t.bytesOut) + ' bytes';
  }
  var listenerViews = new Map();
  // Listeners served by worker processes carry no tunnel figures: those are left out.
  function renderListeners(box, all) {
    var keep = new Set(), listeners = all.filter(function (l) { return l.tunnels; });
    listeners.forEach(function (l, i) {
      var key = l.url || l.address + ':' + l.port, v = listenerViews.get(key);
      if (!v) {
        var root = el('div', 'listener');
        root.setAttribute('data-listener', key);
        v = makeTunnelLine();
        v.root = root;
        root.append(el('span', 'url', key), v.line);
        listenerViews.set(key, v);
      }
      if (box.children[i] !== v.root) box.insertBefore(v.root, box.children[i] || null);
      keep.add(key);
      renderTunnels(v, l.tunnels);
    });
    listenerViews.forEach(function (v, key) { if (!keep.has(key)) { v.root.remove(); listenerViews.delete(key); } });
    box.hidden = listeners.length === 0;
  }`;
