import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { request } from 'undici';
import { requestChannel, type RequestEvent } from '../../src/events.js';
import { FastResponse } from '../../src/server/h1/fast-response.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startBackend, startLb } from '../helpers/servers.js';

/**
 * A response whose Content-Length arrives whole in its first chunk goes to the client with one
 * res.end(chunk) (issue 12): no res.write, so no cork, uncork tick and extra buffer. A body
 * that arrives in pieces still streams: its first piece reaches the client before the rest.
 */

/** Counts res.write calls (and those of an empty chunk) on responses of the listener on `port`, not the test backend's. */
/** Counts write() calls on the listener's responses: node:http's, and the listener's own HTTP/1.1 path's. */
function countWrites(port: () => number, cleanup: (fn: () => unknown) => void): { calls: number; empty: number } {
  const counter = { calls: 0, empty: 0 };
  for (const proto of [http.ServerResponse.prototype, FastResponse.prototype] as { write: (...a: unknown[]) => boolean }[]) {
    const original = proto.write;
    proto.write = function (this: { socket?: net.Socket | null }, ...args: unknown[]) {
      if (this.socket?.localPort === port()) {
        counter.calls++;
        if ((args[0] as { length?: number } | undefined)?.length === 0) counter.empty++;
      }
      return original.apply(this, args);
    };
    cleanup(() => {
      proto.write = original;
    });
  }
  return counter;
}

test('a known-length body in one chunk is ended in one call, with its bytes counted', async (t) => {
  const cleanup = cleanupFor(t);
  const backend = await startBackend('b1', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '12' });
    res.end('hello world\n');
  });
  cleanup(() => backend.close());
  const lb = await startLb({ backends: [backend.url] });
  cleanup(() => lb.close());
  const writes = countWrites(() => lb.address.port, cleanup);
  const events: RequestEvent[] = [];
  const onRequest = (message: unknown): void => {
    events.push(message as RequestEvent);
  };
  requestChannel.subscribe(onRequest);
  cleanup(() => requestChannel.unsubscribe(onRequest));

  for (let i = 0; i < 3; i++) {
    const res = await request(`http://127.0.0.1:${lb.address.port}/x`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-length'], '12');
    assert.equal(await res.body.text(), 'hello world\n');
  }
  assert.equal(writes.calls, 0);
  assert.deepEqual(
    events.map((e) => [e.status, e.bytesSent, e.outcome]),
    [
      [200, 12, 'ok'],
      [200, 12, 'ok'],
      [200, 12, 'ok'],
    ],
  );
});

test('a known-length body sent in two pieces streams: the first piece reaches the client before the second is sent', async (t) => {
  const cleanup = cleanupFor(t);
  let sendRest: (() => void) | null = null;
  const backend = await startBackend('b1', (_req, res) => {
    res.writeHead(200, { 'content-length': '10' });
    res.write('12345');
    sendRest = () => res.end('67890');
  });
  cleanup(() => backend.close());
  const lb = await startLb({ backends: [backend.url] });
  cleanup(() => lb.close());

  const socket = net.connect(lb.address.port, '127.0.0.1');
  cleanup(() => socket.destroy());
  let received = '';
  const firstPiece = new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.endsWith('\r\n\r\n12345')) resolve();
    });
    socket.on('error', reject);
  });
  const whole = new Promise<void>((resolve) => socket.on('end', resolve));
  socket.write('GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  await firstPiece;
  assert.ok(sendRest !== null, 'the backend has the request');
  (sendRest as () => void)();
  await whole;
  assert.ok(received.startsWith('HTTP/1.1 200'), received);
  assert.ok(received.endsWith('\r\n\r\n1234567890'), received);
});

test('a 1 MiB body relayed through backpressure pauses: no empty chunk is written', async (t) => {
  const cleanup = cleanupFor(t);
  const body = Buffer.alloc(1024 * 1024, 'y');
  const backend = await startBackend('b1', (_req, res) => {
    res.writeHead(200, { 'content-length': String(body.length) });
    res.end(body);
  });
  cleanup(() => backend.close());
  const lb = await startLb({ backends: [backend.url] });
  cleanup(() => lb.close());
  const writes = countWrites(() => lb.address.port, cleanup);

  const res = await request(`http://127.0.0.1:${lb.address.port}/big`);
  let received = 0;
  for await (const chunk of res.body) received += (chunk as Buffer).length;
  assert.equal(received, body.length);
  // Reads of up to 256 KiB (read-region.ts) fill the socket's buffer, so the relay pauses the
  // backend's connection and resumes it on drain.
  assert.ok(writes.calls >= 4, `the body went out in many writes (${writes.calls})`);
  assert.equal(writes.empty, 0);
});
