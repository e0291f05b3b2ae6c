import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { optionsFromFlags, parseArgs, parseBackendEntry } from '../../src/args.js';
import { ConfigError } from '../../src/errors.js';

function options(...argv: string[]): Record<string, unknown> {
  return optionsFromFlags(parseArgs(argv).flags) as unknown as Record<string, unknown>;
}

describe('CLI flags for balancing', () => {
  test('URL*WEIGHT gives a weight; a plain URL weighs 1', () => {
    assert.deepEqual(parseBackendEntry('http://a:8080*3'), { url: 'http://a:8080', weight: 3 });
    assert.deepEqual(parseBackendEntry('http://a:8080/base*0.5'), { url: 'http://a:8080/base', weight: 0.5 });
    assert.deepEqual(parseBackendEntry('http://a:8080'), { url: 'http://a:8080', weight: 1 });
    for (const bad of ['http://a*', 'http://a*0', 'http://a*x', 'http://a*-1']) assert.throws(() => parseBackendEntry(bad), ConfigError, bad);
    assert.deepEqual(options('--backends', 'http://a:1*3,http://b:2')['backends'], [
      { url: 'http://a:1', weight: 3 },
      { url: 'http://b:2', weight: 1 },
    ]);
  });

  test('balancer, hash key, slow start, max in-flight and ewma decay map to start() options', () => {
    const o = options('--backends', 'http://a:1', '--balancer', 'maglev', '--hash-key', 'cookie:sid', '--slow-start', '30s', '--max-in-flight', '50', '--ewma-decay', '5s');
    assert.equal(o['balancer'], 'maglev');
    assert.deepEqual(o['hashKey'], { source: 'cookie', name: 'sid' });
    assert.equal(o['slowStartMs'], 30_000);
    assert.equal(o['maxInFlight'], 50);
    assert.equal(o['ewmaDecayMs'], 5000);
    assert.throws(() => options('--backends', 'http://a:1', '--hash-key', 'query:x'), ConfigError);
    assert.throws(() => options('--backends', 'http://a:1', '--max-in-flight', '0'), ConfigError);
  });

  test('--sticky and its settings; any setting turns it on', () => {
    assert.equal(options('--backends', 'http://a:1')['sticky'], undefined);
    assert.deepEqual(options('--backends', 'http://a:1', '--sticky')['sticky'], {});
    assert.deepEqual(options('--backends', 'http://a:1', '--sticky-cookie', 'pin', '--sticky-secret', 'abcdefghij', '--sticky-ttl', '1h')['sticky'], {
      cookie: 'pin',
      secret: 'abcdefghij',
      ttlMs: 3_600_000,
    });
  });
});
