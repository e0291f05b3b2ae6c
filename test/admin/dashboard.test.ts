import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdirSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { cleanupFor } from '../helpers/cleanup.js';
import { startBackend, startLb } from '../helpers/servers.js';
import { echo, openWs, wsUrl, startWsBackend } from '../helpers/ws.js';

// Debian's Chromium, driven headless; .ci/run installs it. Missing, the test fails: never skips.
const chromiumPath = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const waitMs = 15_000;

async function launch(t: TestContext, cleanup: (fn: () => unknown) => void): Promise<Browser> {
  assert.ok(
    existsSync(chromiumPath),
    `Chromium not found at ${chromiumPath}: the dashboard test drives a real browser. ` +
      'Install it (apt-get install chromium, as .ci/run does) or set CHROMIUM_PATH.',
  );
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'], timeout: waitMs });
  cleanup(() => browser.close());
  t.diagnostic(`chromium ${browser.version()}`);
  return browser;
}

/** The little of the DOM a page-side predicate uses (this project compiles without DOM types). */
interface PageElement {
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageElement | null;
}
type PageGlobals = { document: PageElement };

/** Backend ids as the API names them (opaque to the page and to this test). */
async function backendIds(adminUrl: string): Promise<Map<string, string>> {
  const res = await fetch(`${adminUrl}/api/upstreams`);
  const body = (await res.json()) as { upstreams: { backends: { id: string; url: string }[] }[] };
  return new Map(body.upstreams.flatMap((u) => u.backends.map((b) => [b.url, b.id] as const)));
}

/** Sends requests through the proxy one after another until stopped; resolves to the count. */
function keepSending(url: string): { stop(): Promise<number> } {
  let running = true;
  let sent = 0;
  const loop = (async () => {
    while (running) {
      const res = await fetch(url);
      await res.arrayBuffer();
      sent++;
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return sent;
    },
  };
}

/** Collects page errors and any request that leaves the admin origin (the page must be self-contained). */
function watch(page: Page, origin: string): { errors: string[]; foreign: string[] } {
  const seen = { errors: [] as string[], foreign: [] as string[] };
  page.on('pageerror', (err) => seen.errors.push(err.message));
  page.on('request', (req) => {
    if (!req.url().startsWith(`${origin}/`)) seen.foreign.push(req.url());
  });
  return seen;
}

test('the dashboard shows live backends, charts traffic, and drains and enables them', async (t) => {
  const cleanup = cleanupFor(t);
  const a = await startBackend('a');
  cleanup(() => a.close());
  const b = await startBackend('b');
  cleanup(() => b.close());
  const lb = await startLb({ backends: [a.url, b.url], admin: { port: 0 } });
  cleanup(() => lb.close());
  const adminUrl = lb.adminUrl;
  assert.ok(adminUrl !== null, 'the admin listener is on');
  const browser = await launch(t, cleanup);
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  const seen = watch(page, adminUrl);
  const ids = await backendIds(adminUrl);
  const idA = ids.get(a.url);
  const idB = ids.get(b.url);
  assert.ok(idA !== undefined && idB !== undefined, `both backends are in the API: ${[...ids.keys()].join(', ')}`);
  const cardA = `[data-backend="${idA}"]`;
  const cardB = `[data-backend="${idB}"]`;

  await page.goto(`${adminUrl}/`);
  await page.waitForSelector(`${cardA}[data-state="up"]`, { timeout: waitMs });
  await page.waitForSelector(`${cardB}[data-state="up"]`, { timeout: waitMs });
  assert.equal(await page.textContent(`${cardA} .url`), a.url);
  assert.equal(await page.textContent(`${cardA} .badge`), 'up');
  assert.equal(await page.textContent('[data-fact="version"]'), 'v0.1.0');
  assert.match((await page.textContent('[data-fact="listeners"]')) ?? '', new RegExp(lb.url.replace(/[.]/g, '\\.')));

  // Traffic through the proxy shows as a non-zero requests/s sample and a changed chart line.
  const rpsLine = `${cardA} [data-chart="rps"] polyline`;
  const quietPoints = await page.getAttribute(rpsLine, 'points');
  const traffic = keepSending(lb.url);
  try {
    await page.waitForFunction(
      ([sel, quiet]) => {
        const svg = (globalThis as unknown as PageGlobals).document.querySelector(sel);
        return svg !== null && Number(svg.getAttribute('data-last')) > 0 && svg.querySelector('polyline')?.getAttribute('points') !== quiet;
      },
      [`${cardA} [data-chart="rps"]`, quietPoints] as const,
      { timeout: waitMs },
    );
  } finally {
    assert.ok((await traffic.stop()) > 0, 'requests went through the proxy');
  }
  assert.notEqual(await page.getAttribute(rpsLine, 'points'), quietPoints);
  assert.ok(Number(await page.textContent(`${cardA} [data-stat="rps"]`)) > 0, 'requests/s shows the traffic');

  // Drain from the page: the API agrees, and the proxy sends nothing new to it.
  await page.click(`${cardA} [data-action="drain"]`);
  await page.waitForSelector(`${cardA}[data-state="draining"]`, { timeout: waitMs });
  assert.equal(await page.isEnabled(`${cardA} [data-action="enable"]`), true);
  assert.equal(await page.isEnabled(`${cardA} [data-action="drain"]`), false);
  const before = a.seen.length;
  for (let i = 0; i < 6; i++) {
    const res = await fetch(lb.url);
    assert.equal(res.headers.get('x-backend'), 'b');
    await res.arrayBuffer();
  }
  assert.equal(a.seen.length, before, 'a draining backend takes no new requests');

  await page.click(`${cardA} [data-action="enable"]`);
  await page.waitForSelector(`${cardA}[data-state="up"]`, { timeout: waitMs });
  for (let i = 0; i < 4; i++) await (await fetch(lb.url)).arrayBuffer();
  assert.ok(a.seen.length > before, 'an enabled backend is back in rotation');
  mkdirSync('test-results', { recursive: true });
  await page.screenshot({ path: 'test-results/dashboard.png', fullPage: true });

  // The admin server going away shows the banner; the page keeps its last data.
  await lb.close();
  await page.waitForSelector('body[data-api="down"] [data-banner].shown', { timeout: waitMs });
  assert.match((await page.textContent('[data-banner]')) ?? '', /unreachable/);
  assert.equal(await page.locator('[data-backend]').count(), 2);
  assert.deepEqual(seen.errors, [], 'no script errors');
  assert.deepEqual(seen.foreign, [], 'no requests outside the admin origin');
});

test('with an admin token the page sends it from ?token=, says when it is missing, and reports a failed reload', async (t) => {
  const cleanup = cleanupFor(t);
  const a = await startBackend('a');
  cleanup(() => a.close());
  const lb = await startLb({ backends: [a.url], admin: { port: 0, token: 's3cret' } });
  cleanup(() => lb.close());
  const adminUrl = lb.adminUrl;
  assert.ok(adminUrl !== null);
  const browser = await launch(t, cleanup);

  const bare = await browser.newPage();
  await bare.goto(`${adminUrl}/`);
  await bare.waitForSelector('body[data-api="unauthorized"] [data-banner].shown', { timeout: waitMs });
  assert.match((await bare.textContent('[data-banner]')) ?? '', /\?token=/);
  assert.equal(await bare.locator('[data-backend]').count(), 0);

  const page = await browser.newPage();
  await page.goto(`${adminUrl}/?token=s3cret`);
  await page.waitForSelector('[data-backend][data-state="up"]', { timeout: waitMs });
  assert.equal(new URL(page.url()).search, '', 'the token leaves the address bar');
  // A reload without ?token= keeps working from localStorage.
  await page.reload();
  await page.waitForSelector('body[data-api="ok"] [data-backend][data-state="up"]', { timeout: waitMs });

  // Reload config carries the token too; started from options there is no file, so it fails and says why.
  assert.equal(await page.textContent('[data-fact="reload"]'), 'none yet');
  await page.click('[data-action="reload"]');
  await page.waitForSelector('[data-toast].shown.bad', { timeout: waitMs });
  assert.match((await page.textContent('[data-toast]')) ?? '', /^Reload failed: \S/);
  await page.waitForSelector('[data-fact="reload"].bad', { timeout: waitMs });
  assert.match((await page.textContent('[data-fact="reload"]')) ?? '', /^failed/);
});

test('an open WebSocket tunnel shows on its backend\'s card and its listener, and goes when it closes', async (t) => {
  const cleanup = cleanupFor(t);
  const backend = await startWsBackend();
  cleanup(() => backend.close());
  const lb = await startLb({ backends: [backend.url], admin: { port: 0 } });
  cleanup(() => lb.close());
  const adminUrl = lb.adminUrl;
  assert.ok(adminUrl !== null);
  const id = (await backendIds(adminUrl)).get(backend.url);
  assert.ok(id !== undefined);
  const browser = await launch(t, cleanup);
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  const seen = watch(page, adminUrl);
  const card = `[data-backend="${id}"]`;
  const listener = `[data-listener="${lb.url}"]`;
  await page.goto(`${adminUrl}/`);
  await page.waitForSelector(`${card} .tunnels[data-open="0"]`, { timeout: waitMs });
  await page.waitForSelector(`${listener} .tunnels[data-open="0"]`, { timeout: waitMs });

  const ws = await openWs(wsUrl(lb.url));
  cleanup(() => ws.terminate());
  assert.equal(await echo(ws, 'hello'), 'hello');
  await page.waitForSelector(`${card} .tunnels[data-open="1"]`, { timeout: waitMs });
  await page.waitForSelector(`${listener} .tunnels[data-open="1"]`, { timeout: waitMs });
  assert.equal(await page.textContent(`${card} [data-tunnels-open]`), '1');
  // A masked 5-byte client frame is 11 bytes; the echo 7.
  assert.match((await page.textContent(`${card} .tunnels`)) ?? '', /1 open · 11 B in · 7 B out · 1 total/);
  assert.match((await page.textContent(`${listener} .tunnels`)) ?? '', /1 open · 11 B in · 7 B out · 1 total/);
  mkdirSync('test-results', { recursive: true });
  await page.screenshot({ path: 'test-results/dashboard-tunnels.png', fullPage: true });

  ws.close();
  await once(ws, 'close');
  await page.waitForSelector(`${card} .tunnels[data-open="0"]`, { timeout: waitMs });
  await page.waitForSelector(`${listener} .tunnels[data-open="0"]`, { timeout: waitMs });
  assert.match((await page.textContent(`${listener} .tunnels`)) ?? '', /0 open · .* · 1 total/);
  assert.deepEqual(seen.errors, [], 'no script errors');
});
