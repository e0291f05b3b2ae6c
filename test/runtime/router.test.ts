import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostWithoutPort, Router } from '../../src/router.js';
import type { Upstream } from '../../src/upstream/upstream.js';

// The router only hands upstreams back; plain tagged objects stand in for them.
const u = (name: string) => ({ name }) as unknown as Upstream;

test('hostWithoutPort drops the port, keeps IPv6 brackets, lower-cases', () => {
  assert.equal(hostWithoutPort('Example.COM:8080'), 'example.com');
  assert.equal(hostWithoutPort('[::1]:3030'), '[::1]');
  assert.equal(hostWithoutPort('plain'), 'plain');
});

test('host routes before any-host routes, longest prefix first, then file order', () => {
  const a = u('a');
  const b = u('b');
  const c = u('c');
  const d = u('d');
  const router = new Router([
    { pathPrefix: '/', upstream: a },
    { pathPrefix: '/static/', upstream: b },
    { host: 'x.test', upstream: c },
    { host: 'x.test', pathPrefix: '/static/', upstream: d },
  ]);
  const at = (host: string | null, path: string) => router.match(host === null ? [] : ['Host', host], path)?.name ?? null;
  assert.equal(at('x.test', '/static/img.png'), 'd');
  assert.equal(at('x.test', '/'), 'c');
  assert.equal(at('y.test', '/static/img.png'), 'b');
  assert.equal(at('y.test', '/index.html'), 'a');
  assert.equal(at(null, '/static/'), 'b', 'no Host header matches only any-host routes');
  assert.equal(new Router([{ pathPrefix: '/api', upstream: a }]).match([], '/other'), null);
});
