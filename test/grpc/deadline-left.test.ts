import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { rawExchange } from '../helpers/raw.js';

test('grpc-timeout goes upstream less the time spent in the proxy (here a 300 ms retry delay)', async (t) => {
  const cleanup = cleanupFor(t);
  const seen: string[] = [];
  const server = http2.createServer();
  server.on('session', (session) => session.on('error', () => {}));
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    seen.push(String(headers['grpc-timeout']));
    // The first try is refused (not processed): the proxy sends it again after retryDelay.
    if (seen.length === 1) return stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '0' }, { endStream: true });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const lb = await startConfigured({
    config: localConfig({ grpc: { backends: [url], protocol: 'h2c', retry: { retriesPerBackend: 1, retryDelay: 300, maxRetryDelay: 300 } } }),
  });
  cleanup(() => lb.close());
  const res = await rawExchange(
    lb.address.port,
    'POST /svc/Method HTTP/1.1\r\nHost: t\r\nContent-Type: application/grpc\r\nTE: trailers\r\ngrpc-timeout: 10S\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
  );
  assert.equal(res.status, 200);
  assert.equal(seen.length, 2);
  for (const value of seen) assert.match(value, /^\d{1,8}m$/);
  const [first, second] = seen.map((value) => Number(value.slice(0, -1)));
  assert.ok((first ?? 0) <= 10_000, `first try: ${seen[0]}`);
  assert.ok((second ?? Infinity) <= 10_000 - 300, `second try, after the retry delay: ${seen[1]}`);
});
