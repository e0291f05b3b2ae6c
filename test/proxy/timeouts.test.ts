import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { startBackend } from '../helpers/servers.js';

describe('upstream timeouts from the config', () => {
  test('responseHeaders bounds the wait for headers (504); bodyIdle bounds a pause mid-body (cut)', async (t) => {
    const cleanup = cleanupFor(t);
    const timers = new Set<NodeJS.Timeout>();
    cleanup(() => timers.forEach(clearTimeout));
    const backend = await startBackend('slow', (req, res) => {
      req.resume();
      if (req.url === '/slow-head') {
        timers.add(setTimeout(() => res.end('late'), 3000));
        return;
      }
      res.writeHead(200, { 'content-length': '10' });
      res.write('hello');
      timers.add(setTimeout(() => res.end('world'), 3000));
    });
    cleanup(() => backend.close());
    const lb = await startConfigured({
      config: localConfig({ web: { backends: [backend.url], timeouts: { upstream: '30s', responseHeaders: '300ms', bodyIdle: '300ms' } } }),
    });
    cleanup(() => lb.close());

    const head = await request(`${lb.url}/slow-head`);
    assert.equal(head.statusCode, 504);
    await head.body.text();

    const body = await request(`${lb.url}/slow-body`);
    assert.equal(body.statusCode, 200);
    await assert.rejects(body.body.text(), 'the response is cut, not completed');
    assert.equal(backend.seen.length, 2, 'a timeout is not retried');
  });
});
