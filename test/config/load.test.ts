import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'swy-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
/** Writes `text` to a fresh file in the temp dir and returns its path. */
function fixture(text: string, ext = 'yaml'): string {
  const file = join(dir, `c${++counter}.${ext}`);
  writeFileSync(file, text);
  return file;
}

/** The problem lines loadConfig throws for `text`. */
function problems(text: string, ext = 'yaml'): { file: string; lines: string[] } {
  const file = fixture(text, ext);
  try {
    loadConfig(file);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return { file, lines: err.message.split('\n') };
  }
  assert.fail('expected a ConfigError');
}

describe('config schema defaults', () => {
  test('a file with one upstream gets every default filled in', () => {
    const config = loadConfig(fixture('upstreams:\n  web:\n    backends: [http://127.0.0.1:8080]\n'));
    assert.deepEqual(config.listeners, [
      { port: 3030, clientKeepAlive: 60_000, clientHeadersTimeout: 30_000, acceptBatch: 128, trustedProxies: [], maxHeaderSize: 16_384, requestTimeout: 0, maxConnections: 10_000, maxBodySize: 0, ambiguousPaths: 'reject', redirectHttps: false },
    ]);
    assert.deepEqual(config.routes, [{ upstream: 'web' }]);
    const web = config.upstreams['web'];
    assert.ok(web !== undefined);
    assert.equal(web.balancer, 'round-robin');
    assert.deepEqual(web.hashKey, { source: 'client-ip' });
    assert.equal(web.sticky, false);
    assert.equal(web.slowStart, 0);
    assert.deepEqual(web.healthCheck, {
      type: 'tcp', interval: 20_000, jitter: 0.1, timeout: 2000, rise: 1, fall: 1, path: '/', method: 'GET', expectStatus: [[200, 399]],
    });
    assert.deepEqual(web.retry, {
      retriesPerBackend: 3,
      retryDelay: 10,
      maxRetryDelay: 0,
      maxBackends: 3,
      replayBuffer: 65_536,
      retryOn: ['connect', 'reset'],
      retryStatuses: [],
      perTryTimeout: 0,
      tryDuration: 0,
      budget: { minRetries: 3, percent: 20 },
    });
    assert.deepEqual(web.timeouts, { connect: 5000, upstream: 60_000, upstreamKeepAlive: 4000, tunnelIdle: 3_600_000 });
    assert.deepEqual(config.log, { level: 'info', access: false });
    assert.deepEqual(config.admin, { host: '127.0.0.1', port: 9901 });
    assert.equal(config.gracePeriod, 10_000);
    assert.equal(config.watch, true);
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.upstreams) && Object.isFrozen(web.retry), 'frozen all the way down');
  });

  test('durations, sizes, weights and hash keys parse; JSON works too', () => {
    const file = fixture(JSON.stringify({
      upstreams: { api: {
        backends: [{ url: 'http://127.0.0.1:1', weight: 3 }, 'http://127.0.0.1:2'],
        balancer: 'maglev', hashKey: 'header:X-User',
        healthCheck: { interval: '2s', timeout: 500 },
        retry: { retryDelay: '1m', replayBuffer: '1MiB' },
        sticky: { ttl: '1h' },
      } },
      admin: false,
    }), 'json');
    const config = loadConfig(file);
    const api = config.upstreams['api'];
    assert.ok(api !== undefined);
    assert.deepEqual(api.hashKey, { source: 'header', name: 'x-user' });
    assert.deepEqual([api.healthCheck.interval, api.healthCheck.timeout], [2000, 500]);
    assert.equal(api.retry.retryDelay, 60_000);
    assert.equal(api.retry.replayBuffer, 1024 * 1024);
    assert.deepEqual(api.sticky, { cookie: 'swy', ttl: 3_600_000 });
    assert.equal(config.admin, false);
  });

  test('several listeners and upstreams validate, with a route per upstream', () => {
    const config = loadConfig(fixture([
      'listeners: [{ port: 1 }, { port: 2 }]',
      'upstreams:',
      '  a: { backends: [http://127.0.0.1:1] }',
      '  b: { backends: [http://127.0.0.1:2] }',
      'routes:',
      '  - { pathPrefix: /a, upstream: a }',
      '  - { upstream: b }',
      '',
    ].join('\n')));
    assert.equal(config.routes.length, 2);
    assert.equal(config.listeners.length, 2);
  });
});

describe('config errors: one FILE:LINE:COL path: message line per problem', () => {
  test('a bad value points at the value', () => {
    const { file, lines } = problems('listeners:\n  - port: 70000\nupstreams:\n  web:\n    backends: [http://127.0.0.1:1]\n');
    assert.deepEqual(lines, [`${file}:2:11 listeners.0.port: must be at most 65535`]);
  });

  test('a missing required field points at its parent object', () => {
    const { file, lines } = problems('upstreams:\n  web:\n    balancer: p2c\n');
    // backends or discover (issue 13): the upstream says which it lacks.
    assert.deepEqual(lines, [`${file}:3:5 upstreams.web: needs backends (a list) or discover (a source)`]);
    const route = problems('routes:\n  - host: a.example\nupstreams:\n  web:\n    backends: [http://127.0.0.1:1]\n');
    assert.deepEqual(route.lines, [`${route.file}:2:5 routes.0.upstream: required text is missing`]);
    const top = problems('log: { level: debug }\n');
    assert.deepEqual(top.lines, [`${top.file}:1:1 upstreams: required record is missing`]);
  });

  test('unknown keys point at the key, with "did you mean" when close', () => {
    const { file, lines } = problems('upstreams:\n  web:\n    backends: [http://127.0.0.1:1]\n    retyr: {}\n    zzzzzzzz: 1\n');
    assert.deepEqual(lines, [
      `${file}:4:5 upstreams.web.retyr: unknown key "retyr" (did you mean "retry"?)`,
      `${file}:5:5 upstreams.web.zzzzzzzz: unknown key "zzzzzzzz"`,
    ]);
  });

  test('bad durations, sizes, enums, URLs and route targets each get their own line', () => {
    const { file, lines } = problems([
      'upstreams:',
      '  web:',
      '    backends:',
      '      - http://127.0.0.1:1',
      '      - { url: "ftp://x", weight: 2 }',
      '    balancer: roundrobin',
      '    healthCheck: { interval: 2 seconds }',
      '    retry:',
      '      replayBuffer: lots',
      '',
    ].join('\n'));
    assert.deepEqual(lines, [
      `${file}:5:16 upstreams.web.backends.1.url: backend "ftp://x" must be an http:// or https:// URL`,
      `${file}:6:15 upstreams.web.balancer: "roundrobin" is not one of round-robin, weighted-round-robin, least-conn, p2c, ewma, random, ip-hash, ring-hash, maglev (did you mean "round-robin"?)`,
      `${file}:7:30 upstreams.web.healthCheck.interval: "2 seconds" is not a duration (examples: 500ms, 2s, 1m)`,
      `${file}:9:21 upstreams.web.retry.replayBuffer: "lots" is not a size (examples: 65536, 64KiB, 1MiB)`,
    ]);
  });

  test('a bad trustedProxies entry points at the entry, with the reason', () => {
    const { file, lines } = problems([
      'listeners:',
      '  - port: 8080',
      '    trustedProxies:',
      '      - 10.0.0.0/8',
      '      - 10.0.0.0/33',
      '      - "2001:db8::/32"',
      '      - example.com',
      '    maxBodySize: huge',
      'upstreams:',
      '  web: { backends: [http://127.0.0.1:1] }',
      '',
    ].join('\n'));
    assert.deepEqual(lines, [
      `${file}:5:9 listeners.0.trustedProxies.1: "10.0.0.0/33" is not an IP address or CIDR range: an IPv4 prefix length is at most 32`,
      `${file}:7:9 listeners.0.trustedProxies.3: "example.com" is not an IP address or CIDR range: not a valid IPv4 address`,
      `${file}:8:18 listeners.0.maxBodySize: "huge" is not a size (examples: 65536, 64KiB, 1MiB)`,
    ]);
  });

  test('listener limits and trusted proxies map to start() options', () => {
    const config = loadConfig(fixture([
      'listeners:',
      '  - port: 8080',
      '    trustedProxies: [10.0.0.0/8, "::1"]',
      '    maxHeaderSize: 32KiB',
      '    requestTimeout: 30s',
      '    maxConnections: 500',
      '    maxBodySize: 10MiB',
      'upstreams:',
      '  web: { backends: [http://127.0.0.1:1] }',
      '',
    ].join('\n')));
    const listener = config.listeners[0];
    assert.deepEqual(listener?.trustedProxies, ['10.0.0.0/8', '::1']);
    assert.equal(listener?.maxHeaderSize, 32 * 1024);
    assert.equal(listener?.requestTimeout, 30_000);
    assert.equal(listener?.maxConnections, 500);
    assert.equal(listener?.maxBodySize, 10 * 1024 * 1024);
    assert.match(problems('listeners: [{ maxHeaderSize: 100 }]\nupstreams: { web: { backends: [http://127.0.0.1:1] } }\n').lines[0] ?? '', /listeners\.0\.maxHeaderSize: must be at least 1KiB/);
  });

  test('ambiguousPaths takes reject or keep', () => {
    const ok = loadConfig(fixture('listeners: [{ ambiguousPaths: keep }]\nupstreams: { web: { backends: [http://127.0.0.1:1] } }\n'));
    assert.equal(ok.listeners[0]?.ambiguousPaths, 'keep');
    const { file, lines } = problems('listeners: [{ ambiguousPaths: decode }]\nupstreams: { web: { backends: [http://127.0.0.1:1] } }\n');
    assert.deepEqual(lines, [`${file}:1:31 listeners.0.ambiguousPaths: "decode" is not one of reject, keep`]);
  });

  test('a route prefix not in normal form points at the prefix, with the form that matches', () => {
    const { file, lines } = problems([
      'upstreams:',
      '  web: { backends: [http://127.0.0.1:1] }',
      'routes:',
      '  - { pathPrefix: /%7euser/, upstream: web }',
      '  - { pathPrefix: /a/../b//c/, upstream: web }',
      '  - { pathPrefix: /../x, upstream: web }',
      '  - { pathPrefix: /caf%C3%A9/, upstream: web }',
      '',
    ].join('\n'));
    assert.deepEqual(lines, [
      `${file}:4:19 routes.0.pathPrefix: "/%7euser/" would never match: requests are routed in normal form, write "/~user/"`,
      `${file}:5:19 routes.1.pathPrefix: "/a/../b//c/" would never match: requests are routed in normal form, write "/b/c/"`,
      `${file}:6:19 routes.2.pathPrefix: "/../x" is not a valid path: it climbs above the root or has a malformed %-escape`,
    ]);
  });

  test('a route to an unknown upstream points at its name', () => {
    const { file, lines } = problems('upstreams:\n  web: { backends: [http://127.0.0.1:1] }\nroutes:\n  - upstream: wbe\n');
    assert.deepEqual(lines, [`${file}:4:15 routes.0.upstream: no upstream named "wbe" (known: web)`]);
  });

  test('JSON files report positions too', () => {
    const { file, lines } = problems('{\n  "upstreams": {\n    "web": { "backends": [], "balancr": "p2c" }\n  }\n}\n', 'json');
    assert.deepEqual(lines, [
      `${file}:3:26 upstreams.web.backends: needs at least one item`,
      `${file}:3:30 upstreams.web.balancr: unknown key "balancr" (did you mean "balancer"?)`,
    ]);
  });

  test('a YAML syntax error is a FILE:LINE:COL line', () => {
    const { file, lines } = problems('upstreams:\n  web:\n    backends: [http://127.0.0.1:1\n');
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+ \\S`));
  });

  test('an unreadable file is one line', () => {
    assert.throws(() => loadConfig(join(dir, 'missing.yaml')), (err: Error) => err instanceof ConfigError && /missing\.yaml: cannot read: ENOENT/.test(err.message));
  });
});
