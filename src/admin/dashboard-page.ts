/** The dashboard page (placeholder until the live page lands). */
export const dashboardHtml = '<!doctype html><meta charset="utf-8"><title>Switchyard</title><p>Switchyard admin: see <a href="/api/upstreams">/api/upstreams</a>.</p>';
