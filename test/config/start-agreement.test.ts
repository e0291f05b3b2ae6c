import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig, parseConfigInput } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { parseSizeBytes } from '../../src/units.js';

// Issue 9, section 7: what start-up refuses, validate refuses, with the same words and a position.

const dir = mkdtempSync(join(tmpdir(), 'swy-agree-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
function fixture(text: string, ext = 'yaml'): string {
  const file = join(dir, `a${++counter}.${ext}`);
  writeFileSync(file, text);
  return file;
}

/** The problem lines of `text`, with the file name replaced by `F`. */
function problems(text: string, ext = 'yaml'): string[] {
  const file = fixture(text, ext);
  try {
    loadConfig(file);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message.split('\n').map((line) => line.replace(file, 'F'));
  }
  assert.fail('expected a ConfigError');
}

const web = 'upstreams:\n  web: { backends: [http://127.0.0.1:1] }\n';

describe('cross-field checks: validate refuses what start-up would', () => {
  test('the same backend twice after normalisation points at the second', () => {
    assert.deepEqual(problems('admin: false\nupstreams:\n  web:\n    backends: [http://127.0.0.1:1, "http://127.0.0.1:1/"]\n'), [
      'F:4:36 upstreams.web.backends.1: backend http://127.0.0.1:1 is listed twice in upstream "web" (also backends.0)',
    ]);
  });

  test('a listener on the admin listener\'s address, whether the admin section is written or not', () => {
    assert.deepEqual(problems(`listeners: [{ port: 9901 }]\n${web}`), [
      'F:1:21 listeners.0.port: *:9901 overlaps the admin listener 127.0.0.1:9901: give one of them another port',
    ]);
    assert.deepEqual(problems(`listeners: [{ host: 127.0.0.1, port: 8080 }]\nadmin: { host: 0.0.0.0, port: 8080, token: secret }\n${web}`), [
      'F:1:38 listeners.0.port: 127.0.0.1:8080 overlaps the admin listener *:8080: give one of them another port',
    ]);
    // Different hosts on one port do not overlap; nor does port 0.
    assert.doesNotThrow(() => loadConfig(fixture(`listeners: [{ host: 127.0.0.2, port: 9901 }, { port: 0 }]\nadmin: { port: 0 }\n${web}`)));
  });

  test('two listeners whose addresses overlap (one binds every interface)', () => {
    assert.deepEqual(problems(`admin: false\nlisteners: [{ port: 8080 }, { host: 127.0.0.1, port: 8080 }]\n${web}`), [
      'F:2:54 listeners.1.port: 127.0.0.1:8080 overlaps listeners.0 (*:8080)',
    ]);
  });

  test('routes that differ only in the case of their host are one route', () => {
    const text = [
      'admin: false',
      'upstreams:',
      '  a: { backends: [http://127.0.0.1:1] }',
      '  b: { backends: [http://127.0.0.1:2] }',
      'routes:',
      '  - { host: API.example, pathPrefix: /v1, upstream: a }',
      '  - { host: api.example, pathPrefix: /v1, upstream: b }',
      '  - { host: api.example, upstream: b }',
      '',
    ].join('\n');
    assert.deepEqual(problems(text), [
      'F:7:5 routes.1: same route as routes.0 (host "api.example", pathPrefix "/v1"; hosts match in any case): routes.1 would never be used',
    ]);
  });

  test('an admin listener off loopback without a token', () => {
    const saved = process.env['SWITCHYARD_ADMIN_TOKEN'];
    delete process.env['SWITCHYARD_ADMIN_TOKEN'];
    try {
      assert.deepEqual(problems(`admin: { host: 0.0.0.0 }\n${web}`), [
        'F:1:16 admin.host: admin listener on 0.0.0.0 is not loopback: set admin.token or SWITCHYARD_ADMIN_TOKEN',
      ]);
    } finally {
      if (saved !== undefined) process.env['SWITCHYARD_ADMIN_TOKEN'] = saved;
    }
  });

  test('backend URLs are checked as start-up checks them, in its words', () => {
    const text = [
      'admin: false',
      'upstreams:',
      '  web:',
      '    backends:',
      '      - localhost:8080',
      '      - http://user:pw@127.0.0.1:2',
      '      - { url: "http://127.0.0.1:3/?q=1" }',
      '      - 5',
      '    sticky: { ttl: 500ms }',
      '',
    ].join('\n');
    assert.deepEqual(problems(text), [
      'F:5:9 upstreams.web.backends.0: backend "localhost:8080" has no scheme (did you mean http://localhost:8080?)',
      'F:6:9 upstreams.web.backends.1: backend "http://user:pw@127.0.0.1:2" must not contain credentials',
      'F:7:16 upstreams.web.backends.2.url: backend "http://127.0.0.1:3/?q=1" must not contain a query or fragment',
      'F:8:9 upstreams.web.backends.3: a backend is a URL (http://host:port) or { url, weight }',
      'F:9:20 upstreams.web.sticky.ttl: must be at least 1s (Max-Age counts seconds)',
    ]);
  });
});

describe('messages in the project\'s words', () => {
  test('unions say which forms they take; no "Invalid input", no repeated prefix', () => {
    const text = [
      'admin: true',
      'upstreams:',
      '  web:',
      '    backends: [http://127.0.0.1:1]',
      '    sticky: "yes"',
      '    hashKey: "header:"',
      '    outlierDetection: true',
      '    healthCheck: { type: http, expectStatus: [true] }',
      '  api:',
      '    backends: [http://127.0.0.1:2]',
      '    hashKey: 5',
      '    listeners: 1',
      'routes: [{ upstream: web }]',
      '',
    ].join('\n');
    const lines = problems(text);
    assert.deepEqual(lines, [
      'F:1:8 admin: admin is false or { host, port, token }',
      'F:5:13 upstreams.web.sticky: sticky is true, false or { cookie, secret, ttl }',
      'F:6:14 upstreams.web.hashKey: a header key needs a valid header name (header:NAME)',
      'F:7:23 upstreams.web.outlierDetection: outlierDetection is false or { consecutiveFailures, ... }',
      'F:8:47 upstreams.web.healthCheck.expectStatus.0: a status is a code (200) or a range ("200-399")',
      'F:11:14 upstreams.api.hashKey: a hash key is client-ip, header:NAME, cookie:NAME or path',
      'F:12:5 upstreams.api.listeners: unknown key "listeners"',
    ]);
    for (const line of lines) assert.doesNotMatch(line, /Invalid (input|URL|option)|hashKey: hashKey/);
  });

  test('wrong types name what was expected and what was given', () => {
    assert.deepEqual(problems('admin: false\nlisteners: [{ port: "80" }]\nupstreams:\n  web: { backends: [http://127.0.0.1:1], preserveHost: 1 }\n'), [
      'F:2:21 listeners.0.port: expected a number, got "80"',
      'F:4:56 upstreams.web.preserveHost: expected true or false, got 1',
    ]);
  });

  test('a config value (library) gets the same messages, without positions', () => {
    assert.throws(
      () => parseConfigInput({ admin: false, upstreams: { web: { backends: ['localhost:8080', 'http://127.0.0.1:1'], sticky: 'yes' } } }),
      (err: Error) => {
        assert.equal(err.message, [
          'upstreams.web.backends.0: backend "localhost:8080" has no scheme (did you mean http://localhost:8080?)',
          'upstreams.web.sticky: sticky is true, false or { cookie, secret, ttl }',
        ].join('\n'));
        return true;
      },
    );
  });
});

describe('durations and sizes', () => {
  test('0s and 0ms mean off wherever 0 does, and stay errors where 0 is not allowed', () => {
    const config = loadConfig(fixture([
      'admin: false',
      'listeners: [{ requestTimeout: 0s }]',
      'upstreams:',
      '  web:',
      '    backends: [http://127.0.0.1:1]',
      '    slowStart: 0ms',
      '    retry: { retryDelay: 0s, perTryTimeout: "0", tryDuration: 0 }',
      '',
    ].join('\n')));
    const upstream = config.upstreams['web'];
    assert.deepEqual([config.listeners[0]?.requestTimeout, upstream?.slowStart, upstream?.retry.retryDelay, upstream?.retry.perTryTimeout, upstream?.retry.tryDuration], [0, 0, 0, 0, 0]);
    assert.deepEqual(problems('admin: false\nupstreams:\n  web: { backends: [http://127.0.0.1:1], timeouts: { connect: 0s } }\n'), ['F:3:63 upstreams.web.timeouts.connect: "0s" must be greater than zero']);
  });

  test('sizes take decimals as durations do; KB is 1000 bytes, KiB 1024; a bare k is refused with a hint', () => {
    assert.equal(parseSizeBytes('1.5KiB', 'x'), 1536);
    assert.equal(parseSizeBytes('10KB', 'x'), 10_000);
    assert.equal(parseSizeBytes('2MB', 'x'), 2_000_000);
    assert.equal(parseSizeBytes('1MiB', 'x'), 1_048_576);
    assert.equal(parseSizeBytes('1.5s'.replace('s', 'GB'), 'x'), 1_500_000_000);
    const config = loadConfig(fixture(`admin: false\nlisteners: [{ maxHeaderSize: 1.5KiB, maxBodySize: 1MB }]\n${web}`));
    assert.deepEqual([config.listeners[0]?.maxHeaderSize, config.listeners[0]?.maxBodySize], [1536, 1_000_000]);
    assert.deepEqual(problems(`admin: false\nlisteners: [{ maxBodySize: 64k, maxHeaderSize: 1.5B }]\n${web}`), [
      'F:2:28 listeners.0.maxBodySize: "64k" is not a size (write 64KiB for binary units (1024) or 64KB for decimal ones (1000))',
      'F:2:48 listeners.0.maxHeaderSize: "1.5B" is not a whole number of bytes',
    ]);
  });
});

describe('a .json file is JSON', () => {
  test('a trailing comma is an error at the comma', () => {
    assert.deepEqual(problems('{\n  "admin": false,\n  "upstreams": { "web": { "backends": ["http://127.0.0.1:1"], } }\n}\n', 'json'), [
      'F:3:61 not valid JSON: trailing comma before "}" (JSON allows none)',
    ]);
  });

  test('YAML that is not JSON is refused in a .json file, and accepted as .yaml', () => {
    assert.deepEqual(problems('admin: false\nupstreams: { web: { backends: [http://127.0.0.1:1] } }\n', 'json'), ['F:1:1 not valid JSON: unexpected "a"']);
    assert.deepEqual(problems('{ "admin": false, "upstreams": { "web": { "backends": [\'http://127.0.0.1:1\'] } } }', 'json'), [
      'F:1:56 not valid JSON: unexpected "\'"',
    ]);
    assert.doesNotThrow(() => loadConfig(fixture('{ admin: false, upstreams: { web: { backends: [http://127.0.0.1:1], } } }', 'yaml')));
  });

  test('valid JSON loads, with positions for schema problems', () => {
    assert.equal(loadConfig(fixture('{ "admin": false, "upstreams": { "web": { "backends": ["http://127.0.0.1:1"] } } }', 'json')).admin, false);
    assert.deepEqual(problems('{ "admin": false,\n  "upstreams": { "web": { "backends": ["http://127.0.0.1:1"], "balancer": "p2" } } }', 'json'), [
      'F:2:75 upstreams.web.balancer: "p2" is not one of round-robin, weighted-round-robin, least-conn, p2c, ewma, random, ip-hash, ring-hash, maglev (did you mean "p2c"?)',
    ]);
  });
});
