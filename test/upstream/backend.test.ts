import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, ErrorCodes } from '../../src/errors.js';
import { parseBackendUrl } from '../../src/upstream/backend.js';

describe('parseBackendUrl', () => {
  test('uses the scheme default port when the URL has none: 80 for http', () => {
    const target = parseBackendUrl('http://backend.example');
    assert.equal(target.port, 80);
    assert.equal(target.hostname, 'backend.example');
    assert.equal(target.origin, 'http://backend.example');
    assert.equal(target.basePath, '');
    assert.equal(target.url, 'http://backend.example');
  });

  test('uses the scheme default port when the URL has none: 443 for https', () => {
    const target = parseBackendUrl('https://backend.example/');
    assert.equal(target.port, 443);
    assert.equal(target.origin, 'https://backend.example');
  });

  test('an explicit default port is still the port to connect to', () => {
    assert.equal(parseBackendUrl('http://backend.example:80').port, 80);
    assert.equal(parseBackendUrl('https://backend.example:443').port, 443);
    assert.equal(parseBackendUrl('https://backend.example:80').port, 80);
    assert.equal(parseBackendUrl('http://backend.example:443').port, 443);
  });

  test('keeps an explicit port and the path as a prefix without trailing slash', () => {
    const target = parseBackendUrl('http://127.0.0.1:8080/base/');
    assert.equal(target.port, 8080);
    assert.equal(target.hostname, '127.0.0.1');
    assert.equal(target.origin, 'http://127.0.0.1:8080');
    assert.equal(target.basePath, '/base');
    assert.equal(target.url, 'http://127.0.0.1:8080/base');
  });

  test('IPv6 literals lose their brackets in hostname and keep the default port', () => {
    const target = parseBackendUrl('http://[::1]/');
    assert.equal(target.hostname, '::1');
    assert.equal(target.port, 80);
    assert.equal(target.origin, 'http://[::1]');
  });

  for (const bad of ['', 'localhost:8080', 'ftp://host', 'ws://host:1', 'http://', 'http://u:p@host', 'http://host/?q=1', 'http://host/#f', 'not a url']) {
    test(`rejects ${JSON.stringify(bad)} with a ConfigError naming it`, () => {
      assert.throws(
        () => parseBackendUrl(bad),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(err.code, ErrorCodes.config);
          assert.ok(err.message.includes(`"${bad}"`), err.message);
          assert.ok(!err.message.includes('\n'), 'one line');
          return true;
        },
      );
    });
  }
});
