import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { RoundRobin } from '../../src/balancer/round-robin.js';
import { StickySessions, stickySettings } from '../../src/balancer/sticky.js';
import { ConfigError } from '../../src/errors.js';
import { DownReason, type Backend } from '../../src/upstream/backend.js';
import { closeAll, makeBackends, name } from '../helpers/balancing.js';

const created: Backend[] = [];
after(() => closeAll(created));

function sticky(backends: Backend[], secret = 'a sticky secret'): StickySessions {
  return new StickySessions(new RoundRobin(backends), backends, stickySettings({ secret, ttlMs: 3_600_000 }));
}

/** The cookie value in a Set-Cookie string. */
function idIn(setCookie: string | undefined): string {
  return (setCookie ?? '').split(';')[0]?.split('=')[1] ?? '';
}

describe('StickySessions', () => {
  test('a cookie naming an eligible backend pins to it; none falls through to the inner balancer', () => {
    const backends = makeBackends(created, ['a', 'b', 'c']);
    const s = sticky(backends);
    const cookie = s.setCookieFor(backends[2] as Backend, undefined);
    assert.match(cookie ?? '', /^swy=[A-Za-z0-9_-]{22}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=3600$/);
    const id = idIn(cookie);
    for (let i = 0; i < 10; i++) assert.equal(name(s.pick({ clientIp: 'x', stickyId: id })), 'c');
    assert.equal(s.setCookieFor(backends[2] as Backend, id), undefined, 'no Set-Cookie when already pinned there');
    assert.deepEqual([0, 1, 2].map(() => name(s.pick({ clientIp: 'x' }))), ['a', 'b', 'c']);
    assert.equal(name(s.pick({ clientIp: 'x', stickyId: 'forged' })), 'a');
  });

  test('ids are HMACs: stable for one secret across instances, different for another, not the URL', () => {
    const one = sticky(makeBackends(created, ['a']));
    const two = sticky(makeBackends(created, ['a']));
    const other = sticky(makeBackends(created, ['a']), 'another secret');
    const id = idIn(one.setCookieFor(created.at(-3) as Backend, undefined));
    assert.equal(idIn(two.setCookieFor(created.at(-2) as Backend, undefined)), id);
    assert.notEqual(idIn(other.setCookieFor(created.at(-1) as Backend, undefined)), id);
    assert.ok(!Buffer.from(id, 'base64url').toString('latin1').includes('127.0.0.1'));
  });

  test('a pinned backend that is down or excluded is re-balanced, and the new one re-issues the cookie', () => {
    const backends = makeBackends(created, ['a', 'b']);
    const [a, b] = backends as [Backend, Backend];
    const s = sticky(backends);
    const id = idIn(s.setCookieFor(a, undefined));
    a.markDown(DownReason.draining);
    const picked = s.pick({ clientIp: 'x', stickyId: id });
    assert.equal(picked, b);
    assert.ok(s.setCookieFor(b, id) !== undefined);
    a.markUp(DownReason.draining);
    assert.equal(s.pick({ clientIp: 'x', stickyId: id, exclude: new Set([a]) }), b);
  });

  test('bad options are refused', () => {
    assert.throws(() => stickySettings({ cookie: 'a b' }), ConfigError);
    assert.throws(() => stickySettings({ secret: 'short' }), ConfigError);
    assert.throws(() => stickySettings({ ttlMs: 10 }), ConfigError);
    assert.equal(stickySettings({}).secret.length, 64, 'a random default secret');
  });
});
