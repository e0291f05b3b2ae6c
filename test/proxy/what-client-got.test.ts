import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { cleanupFor } from '../helpers/cleanup.js';
import { closeServer, startLb, until } from '../helpers/servers.js';

/**
 * Issue 9, section 6: the access log and the request event say what the client got. A backend
 * that promises `Content-Length: 100` and closes early either sent nothing we relayed (502) or
 * left a response cut short (its status, outcome `cut`).
 */

/** A raw backend: a `Content-Length: 100` head, then `bodyBytes` bytes, then it closes. */
async function startShortBackend(bodyBytes: number): Promise<{ url: string; close(): Promise<void> }> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      socket.end(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\n${'x'.repeat(bodyBytes)}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => closeServer(server) };
}

/** Everything the server sends on one connection until it closes or resets it. */
function rawUntilClosed(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.setTimeout(5000, () => socket.destroy(new Error('no close within 5 s')));
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve(text) : reject(err)));
    socket.on('close', () => resolve(text));
    socket.write(request);
  });
}

const get = 'GET /doc HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n';

function accessLines(lb: { logs: Record<string, unknown>[] }): Record<string, unknown>[] {
  return lb.logs.filter((e) => e['access'] === true);
}

test('closed before any body byte: the client gets 502 and the access log says 502', async (t) => {
  const cleanup = cleanupFor(t);
  const backend = await startShortBackend(0);
  cleanup(() => backend.close());
  const lb = await startLb({ backends: [backend.url], accessLog: true, retry: { retriesPerBackend: 0 } });
  cleanup(() => lb.close());

  const text = await rawUntilClosed(lb.address.port, get);
  assert.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  await until(() => accessLines(lb).length === 1, 5000, 'the access-log line');
  const line = accessLines(lb)[0];
  assert.equal(line?.['status'], 502);
  assert.equal(line?.['outcome'], 'error');
  assert.equal(lb.upstream.backends[0]?.available, true);
});

test('closed after part of the body: the client sees 200 cut short, and the log says 200 with outcome cut', async (t) => {
  const cleanup = cleanupFor(t);
  const backend = await startShortBackend(10);
  cleanup(() => backend.close());
  const lb = await startLb({ backends: [backend.url], accessLog: true });
  cleanup(() => lb.close());

  const text = await rawUntilClosed(lb.address.port, get);
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(text, /content-length: 100\r\n/i);
  assert.ok(text.endsWith('\r\n\r\nxxxxxxxxxx'), JSON.stringify(text));
  await until(() => accessLines(lb).length === 1, 5000, 'the access-log line');
  const line = accessLines(lb)[0];
  assert.equal(line?.['status'], 200);
  assert.equal(line?.['outcome'], 'cut');
  assert.equal(line?.['bytes'], 10);
});
