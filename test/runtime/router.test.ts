import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Router } from '../../src/router.js';
import type { Upstream } from '../../src/upstream/upstream.js';

// The router only hands upstreams back; plain tagged objects stand in for them.
const u = (name: string) => ({ name }) as unknown as Upstream;

test('a host route matches the validated host whatever its port; IPv6 brackets are kept', () => {
  const router = new Router([
    { host: 'x.test', upstream: u('x') },
    { host: '[::1]', upstream: u('v6') },
    { upstream: u('any') },
  ]);
  const at = (host: string) => router.route(host, '/')?.name;
  assert.equal(at('x.test'), 'x');
  assert.equal(at('x.test:8080'), 'x');
  assert.equal(at('[::1]'), 'v6');
  assert.equal(at('[::1]:3030'), 'v6');
  assert.equal(at('x.test.other'), 'any');
  assert.equal(at(''), 'any', 'no host matches only any-host routes');
});

test('a route host is lower-cased and loses one trailing dot, as requestHost() does to a request\'s', () => {
  const router = new Router([{ host: 'X.Test.', upstream: u('x') }]);
  assert.equal(router.route('x.test', '/')?.name, 'x');
  assert.equal(router.route('x.test:80', '/')?.name, 'x');
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
  const at = (host: string | null, path: string) => router.route(host ?? '', path)?.name ?? null;
  assert.equal(at('x.test', '/static/img.png'), 'd');
  assert.equal(at('x.test', '/'), 'c');
  assert.equal(at('y.test', '/static/img.png'), 'b');
  assert.equal(at('y.test', '/index.html'), 'a');
  assert.equal(at(null, '/static/'), 'b', 'no Host header matches only any-host routes');
  assert.equal(new Router([{ pathPrefix: '/api', upstream: a }]).route('', '/other'), null);
});
