import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { hashString, IpHash, Maglev, RingHash } from '../../src/balancer/hash.js';
import { cookieValue, hashKeyOf } from '../../src/proxy/request-keys.js';
import { parseHashKey } from '../../src/upstream/hash-key.js';
import { ConfigError } from '../../src/errors.js';
import { DownReason, type Backend } from '../../src/upstream/backend.js';
import { closeAll, makeBackends, name, seededRandom, wire } from '../helpers/balancing.js';

const created: Backend[] = [];
after(() => closeAll(created));

function names(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `n${i}`);
}

/** Backend URL per table slot. */
function tableOf(maglev: Maglev): string[] {
  const out: string[] = [];
  for (let slot = 0; slot < Maglev.tableSize; slot++) out.push(maglev.backendAt(slot)?.url ?? '');
  return out;
}

/** Fraction of `keys` whose backend differs between two balancers (compared by URL). */
function moved(before: { pick: Maglev['pick'] }, afterwards: { pick: Maglev['pick'] }, keys: number): number {
  let changed = 0;
  for (let k = 0; k < keys; k++) {
    const ctx = { clientIp: '0.0.0.0', hashKey: `user-${k}` };
    if (before.pick(ctx)?.url !== afterwards.pick(ctx)?.url) changed++;
  }
  return changed / keys;
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const random = seededRandom(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe('Maglev', () => {
  for (const count of [3, 10, 100]) {
    test(`table shares are within 1% of even for ${count} backends`, () => {
      const maglev = new Maglev(makeBackends(created, names(count)));
      const counts = new Map<string, number>();
      for (const url of tableOf(maglev)) counts.set(url, (counts.get(url) ?? 0) + 1);
      assert.equal(counts.size, count);
      const even = Maglev.tableSize / count;
      for (const [url, slots] of counts) assert.ok(Math.abs(slots - even) / even <= 0.01, `${url}: ${slots} slots vs ${even.toFixed(1)}`);
    });
  }

  test('two instances build the same table from the same list, in the same or shuffled order', () => {
    const list = names(50);
    const first = tableOf(new Maglev(makeBackends(created, list)));
    const same = tableOf(new Maglev(makeBackends(created, list)));
    const reordered = tableOf(new Maglev(shuffled(makeBackends(created, list), 3)));
    assert.deepEqual(same, first);
    assert.deepEqual(reordered, first);
  });

  for (const count of [10, 100]) {
    test(`removing one of ${count} backends remaps close to 1/${count} of the keys`, () => {
      const backends = makeBackends(created, names(count));
      const full = new Maglev(backends);
      const fewer = new Maglev(makeBackends(created, names(count)).slice(1));
      const fraction = moved(full, fewer, 50_000);
      // Minimal disruption is 1/N; Maglev trades some more for even shares (paper, section 5.3).
      // Measured: 10.4% of keys for 10 backends, 1.56% for 100.
      assert.ok(fraction >= 0.9 / count && fraction <= 1.75 / count, `moved ${(fraction * 100).toFixed(2)}% of keys`);
    });
  }

  test('a backend going down is taken out of the table and put back when up', () => {
    const backends = makeBackends(created, names(10));
    const maglev = new Maglev(backends);
    wire(maglev, backends);
    const reference = new Maglev(makeBackends(created, names(10)));
    const down = backends[3] as Backend;
    down.markDown(DownReason.healthCheck);
    assert.ok(!tableOf(maglev).includes(down.url));
    const fraction = moved(reference, maglev, 20_000);
    assert.ok(fraction > 0.07 && fraction < 0.15, `moved ${fraction}`);
    down.markUp(DownReason.healthCheck);
    assert.deepEqual(tableOf(maglev), tableOf(reference));
  });

  test('the same key goes to the same backend; an excluded one hands over to another', () => {
    const backends = makeBackends(created, names(5));
    const maglev = new Maglev(backends);
    const first = maglev.pick({ clientIp: 'x', hashKey: 'alice' }) as Backend;
    for (let i = 0; i < 20; i++) assert.equal(maglev.pick({ clientIp: 'y', hashKey: 'alice' }), first);
    const other = maglev.pick({ clientIp: 'x', hashKey: 'alice', exclude: new Set([first]) });
    assert.ok(other !== undefined && other !== first);
  });

  test('weights set the share of table slots', () => {
    const maglev = new Maglev(makeBackends(created, ['a', 'b'], [3, 1]));
    let a = 0;
    for (let slot = 0; slot < Maglev.tableSize; slot++) if (name(maglev.backendAt(slot)) === 'a') a++;
    assert.ok(Math.abs(a / Maglev.tableSize - 0.75) < 0.001, String(a / Maglev.tableSize));
  });
});

describe('RingHash', () => {
  test('same key, same backend; independent instances and shuffled input agree', () => {
    const list = names(20);
    const ring = new RingHash(makeBackends(created, list));
    const other = new RingHash(shuffled(makeBackends(created, list), 5));
    assert.equal(moved(ring, other, 10_000), 0);
  });

  test('keys spread within 25% of even over 10 backends', () => {
    const ring = new RingHash(makeBackends(created, names(10)));
    const counts = new Map<string, number>();
    for (let k = 0; k < 50_000; k++) {
      const n = name(ring.pick({ clientIp: 'x', hashKey: `k${k}` }));
      counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    for (const [n, c] of counts) assert.ok(Math.abs(c - 5000) / 5000 < 0.25, `${n}: ${c}`);
  });

  test('removing or downing one of 10 backends moves only its keys (about 1/10)', () => {
    const backends = makeBackends(created, names(10));
    const ring = new RingHash(backends);
    const fewer = new RingHash(makeBackends(created, names(10)).slice(1));
    const fraction = moved(ring, fewer, 50_000);
    assert.ok(fraction > 0.05 && fraction < 0.15, `moved ${fraction}`);
    const before: string[] = [];
    for (let k = 0; k < 2000; k++) before.push(ring.pick({ clientIp: 'x', hashKey: `k${k}` })?.url ?? '');
    (backends[0] as Backend).markDown(DownReason.healthCheck);
    for (let k = 0; k < 2000; k++) {
      const now = ring.pick({ clientIp: 'x', hashKey: `k${k}` })?.url ?? '';
      if (before[k] !== (backends[0] as Backend).url) assert.equal(now, before[k]);
      else assert.notEqual(now, before[k]);
    }
  });
});

describe('IpHash', () => {
  test('one client address, one backend; addresses spread over all backends', () => {
    const iph = new IpHash(makeBackends(created, names(4)));
    const first = iph.pick({ clientIp: '10.1.2.3' });
    for (let i = 0; i < 10; i++) assert.equal(iph.pick({ clientIp: '10.1.2.3', hashKey: 'ignored' }), first);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(name(iph.pick({ clientIp: `10.0.${i}.7` })));
    assert.equal(seen.size, 4);
  });
});

describe('hash keys', () => {
  test('hashString is pinned: every process and version must route a key the same way', () => {
    // Values a release routes by: changing any of them moves every user's key.
    const pinned: [string, number][] = [
      ['a', 444641715],
      ['', 2872998923],
      ['10.0.0.1', 2931590574],
      ['user-1', 2005895916],
      ['user-2', 853201105],
      ['/checkout/cart?id=1', 1796566953],
      ['z\u00fcrich-\u{1f600}', 368630504],
    ];
    assert.deepEqual(pinned.map(([key]) => [key, hashString(key)]), pinned);
  });

  test('hashString is FNV-1a over UTF-16 code units, finished with fmix32', () => {
    // An independent reference in BigInt arithmetic, checked over varied keys.
    const mask = 0xffffffffn;
    const reference = (text: string): number => {
      let h = 0x811c9dc5n;
      for (let i = 0; i < text.length; i++) h = ((h ^ BigInt(text.charCodeAt(i))) * 0x01000193n) & mask;
      h ^= h >> 16n;
      h = (h * 0x85ebca6bn) & mask;
      h ^= h >> 13n;
      h = (h * 0xc2b2ae35n) & mask;
      h ^= h >> 16n;
      return Number(h);
    };
    const random = seededRandom(11);
    for (let k = 0; k < 500; k++) {
      let key = '';
      const length = Math.floor(random.next() * 40);
      for (let i = 0; i < length; i++) key += String.fromCharCode(Math.floor(random.next() * 0x10000));
      assert.equal(hashString(key), reference(key), JSON.stringify(key));
    }
  });

  test('CLI spellings parse and bad ones are refused', () => {
    assert.deepEqual(parseHashKey('client-ip'), { source: 'client-ip' });
    assert.deepEqual(parseHashKey('path'), { source: 'path' });
    assert.deepEqual(parseHashKey('header:X-User'), { source: 'header', name: 'x-user' });
    assert.deepEqual(parseHashKey('cookie:sid'), { source: 'cookie', name: 'sid' });
    for (const bad of ['header', 'header:', 'cookie:a b', 'query:x', 'ip']) assert.throws(() => parseHashKey(bad), ConfigError, bad);
  });

  test('keys come from the header, the cookie, the path without query, or the address', () => {
    const raw = ['Host', 'h', 'X-User', 'alice', 'Cookie', 'a=1; sid=xyz ; b=2'];
    assert.equal(hashKeyOf({ source: 'header', name: 'x-user' }, raw, '/p?q=1', '1.2.3.4'), 'alice');
    assert.equal(hashKeyOf({ source: 'cookie', name: 'sid' }, raw, '/p?q=1', '1.2.3.4'), 'xyz');
    assert.equal(hashKeyOf({ source: 'path' }, raw, '/p?q=1', '1.2.3.4'), '/p');
    assert.equal(hashKeyOf({ source: 'client-ip' }, raw, '/p?q=1', '1.2.3.4'), '1.2.3.4');
    assert.equal(hashKeyOf({ source: 'header', name: 'x-none' }, raw, '/', '1.2.3.4'), '');
    assert.equal(cookieValue(['cookie', 'asid=1; sid=2'], 'sid'), '2');
    assert.equal(cookieValue(['cookie', 'sid'], 'sid'), undefined);
  });
});
