import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * Dependencies are loaded only by what needs them (issue 12, memory): the header rewriting, the
 * health probes and the discovery sources do not load undici at import, a plain HTTP/1.1 health
 * check (node:http) never does, an h2c one on first use; yaml is loaded by the first config file. Checked in child
 * processes, whose module caches are their own (both packages are CommonJS, so they show in
 * require.cache once anything has imported them).
 */
const src = new URL('../src/', import.meta.url).href;

const probe = `
  import http from 'node:http';
  import http2 from 'node:http2';
  import { createRequire } from 'node:module';
  const require = createRequire(import.meta.url);
  const undiciLoaded = () => Object.keys(require.cache).some((file) => file.includes('/node_modules/undici/'));
  const modules = ['proxy/headers.js', 'health/probes.js', 'discovery/create.js', 'discovery/consul.js', 'discovery/kubernetes.js', 'undici-loader.js'];
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
  const afterHttpCheck = undiciLoaded();
  const h2c = http2.createServer((req, res) => res.end('ok'));
  await new Promise((resolve) => h2c.listen(0, '127.0.0.1', resolve));
  const h2cPort = h2c.address().port;
  await httpProbe({ ...backend, origin: 'http://127.0.0.1:' + h2cPort, port: h2cPort, multiplexed: true }, options, new AbortController().signal);
  h2c.close();
  console.log(JSON.stringify({ afterImport, afterHttpCheck, afterH2cCheck: undiciLoaded() }));
`;

test('importing headers, probes and discovery does not load undici, nor does a plain HTTP check; an h2c check does', () => {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { afterImport: false, afterHttpCheck: false, afterH2cCheck: true });
});

const example = fileURLToPath(new URL('../../examples/basic.yaml', import.meta.url));

const configProbe = `
  import { createRequire } from 'node:module';
  const require = createRequire(import.meta.url);
  const yamlLoaded = () => Object.keys(require.cache).some((file) => file.includes('/node_modules/yaml/'));
  const { loadConfig } = await import(${JSON.stringify(src)} + 'config/load.js');
  await import(${JSON.stringify(src)} + 'index.js');
  const afterImport = yamlLoaded();
  const config = loadConfig(${JSON.stringify(example)});
  console.log(JSON.stringify({ afterImport, afterParse: yamlLoaded(), upstreams: Object.keys(config.upstreams) }));
`;

test('importing the library does not load yaml; parsing a config file does', () => {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', configProbe], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { afterImport: false, afterParse: true, upstreams: ['web'] });
});

const serveProbe = `
  import http from 'node:http';
  import { createRequire } from 'node:module';
  const require = createRequire(import.meta.url);
  const undiciLoaded = () => Object.keys(require.cache).some((file) => file.includes('/node_modules/undici/'));
  const { start } = await import(${JSON.stringify(src)} + 'index.js');
  let gets = 0;
  const server = http.createServer((req, res) => {
    if (req.method === 'GET') gets++;
    req.resume().on('end', () => res.end('ok ' + req.method));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const lb = await start({ backends: ['http://127.0.0.1:' + server.address().port], port: 0, host: '127.0.0.1', healthPath: '/', healthIntervalMs: 50, log: { level: 'silent' } });
  const base = lb.url;
  const replies = [];
  for (const method of ['GET', 'POST']) {
    const res = await new Promise((resolve, reject) => {
      const req = http.request(base + '/', { method }, resolve).on('error', reject);
      req.end(method === 'POST' ? 'body' : undefined);
    });
    let text = '';
    for await (const chunk of res) text += chunk;
    replies.push(res.statusCode + ' ' + text);
  }
  // Health checks too: the proxied GET and at least two checks, within 5 s.
  for (let waited = 0; gets < 3 && waited < 5000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
  await lb.close();
  server.close();
  console.log(JSON.stringify({ replies, checked: gets >= 3, undici: undiciLoaded() }));
`;

test('a proxy of plain HTTP/1.1 backends with HTTP checks serves without loading undici', () => {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', serveProbe], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { replies: ['200 ok GET', '200 ok POST'], checked: true, undici: false });
});
