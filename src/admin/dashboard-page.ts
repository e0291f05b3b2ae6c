import { dashboardScript } from './dashboard-script.js';
import { dashboardCss } from './dashboard-style.js';

/**
 * The operator dashboard served at `GET /` of the admin listener: one self-contained HTML
 * document (inline style and script, no external requests) that polls the admin JSON API.
 * Kept as a module so `tsc` ships it in dist/ with no build step of its own.
 */
export const dashboardHtml: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Switchyard</title>
<link rel="icon" href="data:,">
<style>${dashboardCss}</style>
</head>
<body data-api="loading">
<header>
  <div class="brand"><span class="dot"></span>Switchyard <small data-fact="version"></small></div>
  <div class="facts">
    <div class="fact"><span class="k">Uptime</span><span class="v" data-fact="uptime">&mdash;</span></div>
    <div class="fact"><span class="k">Listeners</span><span class="v mono" data-fact="listeners">&mdash;</span></div>
    <div class="fact"><span class="k">Config</span><span class="v mono" data-fact="digest">&mdash;</span></div>
    <div class="fact" data-certs hidden><span class="k">Certificates</span><span class="v" data-fact="certs">&mdash;</span></div>
    <div class="fact"><span class="k">Last reload</span><span class="v" data-fact="reload">&mdash;</span></div>
  </div>
  <button type="button" class="primary" data-action="reload">Reload config</button>
</header>
<div class="banner" data-banner role="alert"></div>
<main>
  <div class="listeners" data-listeners hidden></div>
  <div data-upstreams></div>
  <p class="empty" hidden>No upstreams configured.</p>
</main>
<div class="toast" data-toast role="status" aria-live="polite"></div>
<script>${dashboardScript}</script>
</body>
</html>
`;
