import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import vm from 'node:vm';
import { chromium } from 'playwright-core';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { dashboardHtml } from '../../src/admin/dashboard-page.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { startBackend } from '../helpers/servers.js';
import { makeCa, type IssuedCert, type TestCa } from '../helpers/tls.js';

let ca: TestCa;
let certA: IssuedCert;
let certB: IssuedCert;

before(async () => {
  ca = await makeCa();
  certA = await ca.issue('a.test', ['DNS:a.test']);
  certB = await ca.issue('b.test', ['DNS:b.test', 'DNS:*.wild.test'], { days: 30 });
});

after(() => ca.remove());

test("each HTTPS certificate's names and expiry are in /api/status and /metrics", async (t) => {
  const cleanup = cleanupFor(t);
  const backend = await startBackend('web');
  cleanup(() => backend.close());
  const tls = { certificates: [{ cert: certA.certFile, key: certA.keyFile }, { cert: certB.certFile, key: certB.keyFile }] };
  const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url] } }, { listeners: [{ host: '127.0.0.1', port: 0, tls }], admin: { host: '127.0.0.1', port: 0 } }) });
  cleanup(() => lb.close());
  const port = lb.address.port;
  const status = (await (await request(`${lb.adminUrl}/api/status`)).body.json()) as { certificates: { port: number; cert: string; names: string[]; expiresAt: string }[] };
  assert.deepEqual(status.certificates.map((c) => [c.port, c.cert, c.names]), [
    [port, certA.certFile, ['a.test']],
    [port, certB.certFile, ['b.test', '*.wild.test']],
  ]);
  const days = (iso: string) => (Date.parse(iso) - Date.now()) / 86_400_000;
  const [a, b] = status.certificates;
  assert.ok(a !== undefined && days(a.expiresAt) > 1 && days(a.expiresAt) <= 2, a?.expiresAt);
  assert.ok(b !== undefined && days(b.expiresAt) > 29 && days(b.expiresAt) <= 30, b?.expiresAt);
  const metrics = await (await request(`${lb.adminUrl}/metrics`)).body.text();
  const line = metrics.split('\n').find((l) => l.startsWith('switchyard_tls_certificate_expiry_timestamp_seconds{') && l.includes(certB.certFile));
  assert.ok(line !== undefined, metrics);
  assert.equal(line, `switchyard_tls_certificate_expiry_timestamp_seconds{port="${port}",cert="${certB.certFile}"} ${Date.parse(b.expiresAt) / 1000}`);
});

test('the dashboard script still parses with the certificate fact in it', () => {
  const script = /<script>([\s\S]*)<\/script>/.exec(dashboardHtml)?.[1] ?? '';
  assert.ok(script.includes('renderCerts(facts.certs'));
  assert.doesNotThrow(() => new vm.Script(script));
  assert.match(dashboardHtml, /data-fact="certs"/);
});

test('the dashboard warns of a certificate expiring within 14 days', async (t) => {
  const chromiumPath = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
  assert.ok(existsSync(chromiumPath), `Chromium not found at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH)`);
  const cleanup = cleanupFor(t);
  const backend = await startBackend('web');
  cleanup(() => backend.close());
  // certA lives 2 days, certB 30: the soonest one is shown, as a warning.
  const tls = { certificates: [{ cert: certB.certFile, key: certB.keyFile }, { cert: certA.certFile, key: certA.keyFile }] };
  const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url] } }, { listeners: [{ host: '127.0.0.1', port: 0, tls }], admin: { host: '127.0.0.1', port: 0 } }) });
  cleanup(() => lb.close());
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'], timeout: 15_000 });
  cleanup(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`${lb.adminUrl}/`);
  const fact = page.locator('[data-fact="certs"]');
  await fact.filter({ hasText: /^expires in 1d/ }).waitFor({ timeout: 15_000 });
  assert.equal(await fact.getAttribute('class'), 'v bad');
  assert.match(String(await fact.getAttribute('title')), /expires within 14 days[\s\S]*a\.test/);
  assert.equal(await page.locator('[data-certs]').isVisible(), true);
});
