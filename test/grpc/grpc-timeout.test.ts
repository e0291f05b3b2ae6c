import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { bodyIdleMs, grpcTimeoutLeft, grpcTimeoutMs, setGrpcTimeout } from '../../src/proxy/grpc-deadline.js';

const req = (value?: string): IncomingMessage => ({ headers: value === undefined ? {} : { 'grpc-timeout': value } }) as IncomingMessage;

test('grpc-timeout is read in each of its units; a malformed one counts as none', () => {
  assert.equal(grpcTimeoutMs(req('2H')), 7_200_000);
  assert.equal(grpcTimeoutMs(req('3M')), 180_000);
  assert.equal(grpcTimeoutMs(req('4S')), 4000);
  assert.equal(grpcTimeoutMs(req('250m')), 250);
  assert.equal(grpcTimeoutMs(req('1500u')), 2);
  assert.equal(grpcTimeoutMs(req('99999999n')), 100);
  for (const bad of [undefined, '', '5', 's', '123456789m', '1.5S', '-1S', '10x']) assert.equal(grpcTimeoutMs(req(bad)), -1, String(bad));
});

test("the body-idle timeout is the upstream's, or the time left to a longer deadline plus 1 s; 0 stays off", () => {
  assert.equal(bodyIdleMs(req(), 200, 0, 0), 200);
  assert.equal(bodyIdleMs(req('10S'), 200, 100, 1100), 10_000);
  assert.equal(bodyIdleMs(req('100m'), 60_000, 0, 0), 60_000);
  assert.equal(bodyIdleMs(req('10S'), 0, 0, 0), 0);
});

test('the grpc-timeout sent upstream is the time left, in ms while 8 digits hold it, never negative', () => {
  assert.equal(grpcTimeoutLeft(9_700.6), '9700m');
  assert.equal(grpcTimeoutLeft(-5), '0m');
  assert.equal(grpcTimeoutLeft(99_999_999), '99999999m');
  assert.equal(grpcTimeoutLeft(7_200_000_000), '7200000S');
  const headers = ['content-type', 'application/grpc', 'Grpc-Timeout', '10S', 'te', 'trailers'];
  setGrpcTimeout(headers, '9990m');
  assert.deepEqual(headers, ['content-type', 'application/grpc', 'Grpc-Timeout', '9990m', 'te', 'trailers']);
});
