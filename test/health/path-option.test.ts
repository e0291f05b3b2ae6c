import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { optionsFromFlags } from '../../src/args.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startBackend, startLb } from '../helpers/servers.js';

test('healthPath (--health-path) switches to HTTP checks: a backend whose check path fails is down from the start', async (t) => {
  const cleanup = cleanupFor(t);
  const healthy = await startBackend('healthy');
  const sick = await startBackend('sick', (req, res) => {
    req.resume();
    res.writeHead(req.url === '/healthz' ? 500 : 200);
    res.end('sick');
  });
  cleanup(() => healthy.close());
  cleanup(() => sick.close());
  const options = optionsFromFlags(new Map([['backends', `${healthy.url},${sick.url}`], ['health-path', '/healthz']]));
  assert.equal(options.healthPath, '/healthz');
  const lb = await startLb({ backends: options.backends ?? [], healthPath: '/healthz' });
  cleanup(() => lb.close());
  const [up, down] = lb.upstream.backends;
  assert.equal(up?.available, true);
  assert.equal(down?.available, false, 'the HTTP check saw 500 on /healthz');
  assert.equal(down?.lastHealthCheck?.ok, false);
  assert.ok(sick.seen.some((seen) => seen.url === '/healthz' && seen.method === 'GET'), 'the check asked the health path');
  for (let i = 0; i < 4; i++) assert.equal(await (await request(`${lb.url}/`)).body.text(), 'healthy');
});
