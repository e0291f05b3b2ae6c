import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { util as undiciUtil } from 'undici';
import { headerNameToString } from '../../src/proxy/header-names.js';

/**
 * headerNameToString replaces undici's util of the same name (issue 12: a plain HTTP/1.1 config
 * need not load undici): backend header names arrive as Buffers in any case and leave lower-cased.
 */
describe('headerNameToString', () => {
  test('a common name in any case is lower-cased', () => {
    for (const name of ['Content-Type', 'CONTENT-LENGTH', 'set-cookie', 'X-Backend', 'Transfer-Encoding', 'te', 'Via', 'WWW-Authenticate']) {
      assert.equal(headerNameToString(Buffer.from(name, 'latin1')), name.toLowerCase());
    }
  });

  test('agrees with undici on names from real responses, in three spellings', () => {
    const names = ['Date', 'Server', 'Content-Length', 'Keep-Alive', 'Connection', 'ETag', 'Last-Modified', 'Accept-Ranges', 'Cache-Control', 'Location', 'Content-Location', 'Strict-Transport-Security', 'X-Request-ID', 'Alt-Svc', 'Upgrade', 'Trailer', 'Proxy-Connection', 'grpc-status', 'X-Unknown-Header'];
    for (const name of names) {
      for (const spelling of [name, name.toUpperCase(), name.toLowerCase()]) {
        const bytes = Buffer.from(spelling, 'latin1');
        assert.equal(headerNameToString(bytes), undiciUtil.headerNameToString(bytes), spelling);
      }
    }
  });

  test('other names, near misses and non-letters are lower-cased byte for byte', () => {
    const cases = ['X-Custom-Thing', 'Content-Typf', 'Content-Type-', 'Content_Type', 'date2', 'A', '', 'X-\u00C9t\u00E9', '0123456789'.repeat(6), '@[`{'];
    for (const name of cases) assert.equal(headerNameToString(Buffer.from(name, 'latin1')), name.toLowerCase(), JSON.stringify(name));
  });

  test('a byte that folds onto a letter only by setting bit 0x20 does not match', () => {
    // '@' | 0x20 is '`', '[' | 0x20 is '{': only A-Z are folded, so these stay themselves.
    assert.equal(headerNameToString(Buffer.from('D@TE')), 'd@te');
    assert.equal(headerNameToString(Buffer.from('vi\u0001', 'latin1')), 'vi\u0001');
    assert.notEqual(headerNameToString(Buffer.from('V\u00C9A', 'latin1')), 'via');
  });

  test('a string is lower-cased', () => {
    assert.equal(headerNameToString('Content-Type'), 'content-type');
    assert.equal(headerNameToString('x-a'), 'x-a');
  });
});
