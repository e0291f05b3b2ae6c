import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

/**
 * undici is loaded only by what needs it (issue 12, memory): the header rewriting, the health
 * probes and the discovery sources do not load it at import, an HTTP health check loads it on
 * first use. Checked in a child process, whose module cache is its own (undici is CommonJS, so
 * it shows in require.cache once anything has imported it).
 */
const src = new URL('../src/', import.meta.url).href;

const probe = `
  import http from 'node:http';
  import { createRequire } from 'node:module';
  const require = createRequire(import.meta.url);
  const undiciLoaded = () => Object.keys(require.cache).some((file) => file.includes('/node_modules/undici/'));
  const modules = ['proxy/headers.js', 'proxy/header-names.js', 'health/probes.js', 'discovery/create.js', 'discovery/consul.js', 'discovery/kubernetes.js', 'undici-loader.js'];
  const { httpProbe } = await import(${JSON.stringify(src)} + 'health/probes.js');
  for (const m of modules) await import(${JSON.stringify(src)} + m);
  const afterImport = undiciLoaded();
  const server = http.createServer((req, res) => res.end('ok'));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = 'http://127.0.0.1:' + server.address().port;
  const backend = { origin, hostname: '127.0.0.1', port: server.address().port, tlsConnectOptions: null, multiplexed: false };
  const options = { path: '/', method: 'GET', host: '', timeoutMs: 5000, expectStatus: [[200, 399]], bodyContains: 'ok' };
  await httpProbe(backend, options, new AbortController().signal);
  server.close();
  console.log(JSON.stringify({ afterImport, afterHttpCheck: undiciLoaded() }));
`;

test('importing headers, probes and discovery does not load undici; an HTTP check loads it', () => {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { afterImport: false, afterHttpCheck: true });
});
