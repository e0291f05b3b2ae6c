import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRequestHead } from '../../src/server/h1/request-head.js';

/** The head as the connection hands it over: request line and field lines, each with its CRLF. */
const head = (lines: string[]): string => lines.map((line) => `${line}\r\n`).join('');

test('a plain GET is parsed: method, target, version, fields as sent with values trimmed', () => {
  const parsed = parseRequestHead(head(['GET /a/b?c=d HTTP/1.1', 'Host: example.com', 'X-Sp:  \tv w \t ', 'x-empty:', 'X-Obs: caf\u00e9']));
  assert.deepEqual(parsed, {
    method: 'GET',
    url: '/a/b?c=d',
    minor: 1,
    rawHeaders: ['Host', 'example.com', 'X-Sp', 'v w', 'x-empty', '', 'X-Obs', 'caf\u00e9'],
    keepAlive: true,
    bodyLength: 0,
  });
});

test('a Content-Length body is announced; a second Content-Length or one that is not plain digits is not', () => {
  const length = (...fields: string[]): number | undefined => parseRequestHead(head(['POST / HTTP/1.1', 'Host: a', ...fields]))?.bodyLength;
  assert.equal(length('Content-Length: 12'), 12);
  assert.equal(length('content-length:  0 '), 0);
  assert.equal(length('Content-Length: 999999999999999'), 999999999999999);
  for (const bad of ['Content-Length: 1, 1', 'Content-Length: +1', 'Content-Length: 0x1', 'Content-Length: 1 2', 'Content-Length:', 'Content-Length: 1000000000000000']) assert.equal(length(bad), undefined, bad);
  assert.equal(length('Content-Length: 1', 'Content-Length: 1'), undefined);
});

test('keep-alive: HTTP/1.1 unless "close", HTTP/1.0 only with "keep-alive" and without "close" (RFC 9112 section 9.3)', () => {
  const keepAlive = (version: string, ...fields: string[]): boolean | undefined => parseRequestHead(head([`GET / ${version}`, 'Host: a', ...fields]))?.keepAlive;
  assert.equal(keepAlive('HTTP/1.1'), true);
  assert.equal(keepAlive('HTTP/1.1', 'Connection: close'), false);
  assert.equal(keepAlive('HTTP/1.1', 'Connection: keep-alive', 'Connection: foo, CLOSE'), false);
  assert.equal(keepAlive('HTTP/1.0'), false);
  assert.equal(keepAlive('HTTP/1.0', 'Connection: Keep-Alive'), true);
  // llhttp keeps this one open; RFC 9112 section 9.3 lets "close" win.
  assert.equal(keepAlive('HTTP/1.0', 'Connection: close', 'Connection: keep-alive'), false);
  assert.equal(keepAlive('HTTP/1.0', 'Connection: keep-alive, close'), false);
  // HTTP/1.0 needs no Host.
  assert.equal(parseRequestHead(head(['GET / HTTP/1.0']))?.minor, 0);
});

test('every head outside the plain grammar is left to node:http (null)', () => {
  const refused: Record<string, string> = {
    'unknown method': head(['BREW / HTTP/1.1', 'Host: a']),
    CONNECT: head(['CONNECT a:443 HTTP/1.1', 'Host: a']),
    'lower-case method': head(['get / HTTP/1.1', 'Host: a']),
    'HTTP/1.2': head(['GET / HTTP/1.2', 'Host: a']),
    'HTTP/2.0': head(['GET / HTTP/2.0', 'Host: a']),
    'two spaces': head(['GET  / HTTP/1.1', 'Host: a']),
    'space in target': head(['GET /a b HTTP/1.1', 'Host: a']),
    'control in target': head(['GET /a\x01 HTTP/1.1', 'Host: a']),
    '8-bit target': head(['GET /caf\u00e9 HTTP/1.1', 'Host: a']),
    'bare LF in a field': 'GET / HTTP/1.1\r\nHost: a\nX: y\r\n',
    'bare CR in a field': 'GET / HTTP/1.1\r\nHost: a\rX: y\r\n',
    'obs-fold': head(['GET / HTTP/1.1', 'Host: a', 'X: y', ' z']),
    'space before the colon': head(['GET / HTTP/1.1', 'Host : a']),
    'empty name': head(['GET / HTTP/1.1', 'Host: a', ': v']),
    'no colon': head(['GET / HTTP/1.1', 'Host: a', 'novalue']),
    'NUL in a value': head(['GET / HTTP/1.1', 'Host: a', 'X: a\x00b']),
    'DEL in a value': head(['GET / HTTP/1.1', 'Host: a', 'X: a\x7fb']),
    'non-token name': head(['GET / HTTP/1.1', 'Host: a', 'X(y): v']),
    'Transfer-Encoding': head(['POST / HTTP/1.1', 'Host: a', 'transfer-encoding: chunked']),
    Expect: head(['PUT / HTTP/1.1', 'Host: a', 'Expect: 100-continue']),
    Upgrade: head(['GET / HTTP/1.1', 'Host: a', 'Upgrade: websocket']),
    'Connection: upgrade': head(['GET / HTTP/1.1', 'Host: a', 'Connection: keep-alive, Upgrade']),
    'HTTP/1.1 without Host': head(['GET / HTTP/1.1', 'X: y']),
    'HTTP/1.1 with an empty Host': head(['GET / HTTP/1.1', 'Host:', 'Host: b']),
    'HTTP/1.0 with TE': head(['GET / HTTP/1.0', 'TE: chunked']),
    'h2c preface': 'PRI * HTTP/2.0\r\n',
    'too many fields': head(['GET / HTTP/1.1', 'Host: a', ...Array.from({ length: 1001 }, (_, i) => `x${i}: v`)]),
  };
  for (const [what, bytes] of Object.entries(refused)) assert.equal(parseRequestHead(bytes), null, what);
});
