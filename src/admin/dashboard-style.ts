/**
 * The dashboard's stylesheet: a dark theme meant to be read from across a desk. Every number
 * uses tabular figures and every value box has a fixed size, so nothing shifts as values change.
 */
export const dashboardCss = String.raw`
:root {
  --bg: #0e1116; --panel: #161a21; --panel-2: #1c212a; --line: #2a303b;
  --text: #e4e8ee; --muted: #8a93a2; --faint: #5d6573; --accent: #6cb6ff;
  --up: #3ecf7a; --down: #ff5d5d; --draining: #f0b03c; --disabled: #7d8796;
  --mono: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace;
  color-scheme: dark;
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
html, body { margin: 0; background: var(--bg); color: var(--text); }
body {
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", "Liberation Sans", "DejaVu Sans", sans-serif;
  font-variant-numeric: tabular-nums;
  -webkit-font-smoothing: antialiased;
}
header {
  position: sticky; top: 0; z-index: 2;
  display: flex; flex-wrap: wrap; align-items: center; gap: 10px 28px;
  padding: 12px 24px; background: rgba(22, 26, 33, 0.96); border-bottom: 1px solid var(--line);
}
.brand { display: flex; align-items: baseline; gap: 8px; font-size: 18px; font-weight: 650; letter-spacing: 0.2px; }
.brand .dot { width: 10px; height: 10px; border-radius: 50%; background: var(--faint); align-self: center; transition: background 0.3s; }
.brand .dot.live { background: var(--up); box-shadow: 0 0 8px rgba(62, 207, 122, 0.6); }
.brand small { color: var(--muted); font-size: 12px; font-weight: 500; }
.facts { display: flex; flex-wrap: wrap; gap: 6px 24px; flex: 1; }
.fact { display: flex; flex-direction: column; min-width: 0; }
.fact .k { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: 0.6px; }
.fact .v { font-size: 14px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 36ch; }
.fact .v.mono { font-family: var(--mono); font-size: 13px; }
.fact [data-fact="uptime"] { min-width: 8ch; }
.fact [data-fact="reload"] { min-width: 14ch; }
.fact .v.ok { color: var(--up); }
.fact .v.bad { color: var(--down); }
button {
  font: inherit; font-size: 13px; color: var(--text); background: var(--panel-2);
  border: 1px solid var(--line); border-radius: 6px; padding: 5px 12px; cursor: pointer;
}
button:hover:not(:disabled) { border-color: var(--accent); }
button:disabled { opacity: 0.4; cursor: default; }
button.primary { background: #1f3b5c; border-color: #2f5a8a; }
.banner {
  display: none; margin: 16px 24px 0; padding: 10px 14px; border-radius: 8px;
  background: rgba(255, 93, 93, 0.12); border: 1px solid rgba(255, 93, 93, 0.5); color: #ffb3b3; font-weight: 550;
}
.banner.shown { display: block; }
main { padding: 8px 24px 32px; transition: opacity 0.3s; }
main.stale { opacity: 0.45; }
.empty { color: var(--muted); padding: 24px 0; }
section.upstream { margin-top: 18px; }
.upstream-head { display: flex; align-items: baseline; gap: 12px; margin: 0 0 10px; }
.upstream-head h2 { margin: 0; font-size: 16px; font-weight: 650; }
.upstream-head span { color: var(--muted); font-size: 12px; }
.grid { display: grid; gap: 14px; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); }
.card {
  background: var(--panel); border: 1px solid var(--line); border-left: 4px solid var(--faint);
  border-radius: 10px; padding: 12px 14px; display: flex; flex-direction: column; gap: 10px; min-width: 0;
}
.card[data-state="up"] { border-left-color: var(--up); }
.card[data-state="down"] { border-left-color: var(--down); }
.card[data-state="draining"] { border-left-color: var(--draining); }
.card[data-state="disabled"] { border-left-color: var(--disabled); }
.card-head { display: flex; align-items: center; gap: 10px; min-width: 0; }
.url { font-family: var(--mono); font-size: 13px; flex: 1; min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.weight { color: var(--muted); font-size: 12px; white-space: nowrap; }
.badge {
  width: 84px; text-align: center; flex: none; font-size: 11px; font-weight: 700; letter-spacing: 0.8px;
  text-transform: uppercase; padding: 3px 0; border-radius: 999px; border: 1px solid currentColor;
}
.badge[data-state="up"] { color: var(--up); background: rgba(62, 207, 122, 0.1); }
.badge[data-state="down"] { color: var(--down); background: rgba(255, 93, 93, 0.12); }
.badge[data-state="draining"] { color: var(--draining); background: rgba(240, 176, 60, 0.12); }
.badge[data-state="disabled"] { color: var(--disabled); background: rgba(125, 135, 150, 0.12); }
.reasons { min-height: 17px; font-size: 12px; color: var(--muted); margin-top: -6px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.reasons b { color: var(--down); font-weight: 600; }
.stats { display: grid; grid-template-columns: repeat(3, 1fr); gap: 8px 12px; }
.stat .k { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: 0.5px; }
.stat .v { font-size: 20px; font-weight: 600; white-space: nowrap; }
.stat .v small { font-size: 12px; color: var(--muted); font-weight: 500; margin-left: 2px; }
.stat .v.warn { color: var(--draining); }
.stat .v.bad { color: var(--down); }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; }
.chart { background: var(--panel-2); border-radius: 6px; padding: 6px 8px 4px; min-width: 0; }
.chart .k { display: flex; justify-content: space-between; color: var(--muted); font-size: 11px; }
.chart svg { display: block; width: 100%; height: 40px; margin-top: 2px; }
.chart polyline { fill: none; stroke-width: 1.6; vector-effect: non-scaling-stroke; stroke-linejoin: round; }
.chart path { stroke: none; opacity: 0.18; }
.chart line { stroke: var(--line); stroke-width: 1; vector-effect: non-scaling-stroke; }
.chart.rps polyline { stroke: var(--accent); }
.chart.rps path { fill: var(--accent); }
.chart.p99 polyline { stroke: #c792ea; }
.chart.p99 path { fill: #c792ea; }
.health { display: flex; align-items: center; gap: 8px; }
.health .k { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: 0.5px; flex: none; }
.ticks { display: flex; flex-flow: row-reverse wrap; gap: 4px 2px; height: 14px; flex: 1; min-width: 0; overflow: hidden; }
.tick { height: 14px; }
.tick { width: 5px; flex: none; border-radius: 1px; background: var(--up); }
.tick.fail { background: var(--down); }
.health .last { color: var(--muted); font-size: 12px; white-space: nowrap; width: 9ch; text-align: right; }
.tunnels { font-size: 12px; color: var(--muted); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.tunnels .k { font-size: 11px; text-transform: uppercase; letter-spacing: 0.5px; margin-right: 8px; }
.tunnels b { color: var(--text); font-weight: 600; }
.tunnels[data-open]:not([data-open="0"]) b { color: var(--accent); }
.listeners { display: flex; flex-wrap: wrap; gap: 8px 24px; margin: 0 0 18px; }
.listener { display: flex; gap: 12px; align-items: baseline; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 6px 12px; }
.actions { display: flex; gap: 8px; }
.actions button { flex: 1; }
.toast {
  position: fixed; right: 20px; bottom: 20px; max-width: 60ch; padding: 10px 14px; border-radius: 8px;
  background: var(--panel-2); border: 1px solid var(--line); opacity: 0; transition: opacity 0.25s; pointer-events: none;
}
.toast.shown { opacity: 1; }
.toast.bad { border-color: var(--down); color: #ffb3b3; }
.toast.ok { border-color: var(--up); }
@media (max-width: 520px) {
  header, main { padding-left: 12px; padding-right: 12px; }
  header { justify-content: space-between; }
  .facts { order: 3; flex-basis: 100%; }
  .grid { grid-template-columns: 1fr; }
}
`;
