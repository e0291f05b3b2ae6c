import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { optionsFromFlags, parseArgs } from '../../src/args.js';
import { ConfigError } from '../../src/errors.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startCountingServer } from '../helpers/faults.js';
import { rawExchange } from '../helpers/raw.js';
import { closeServer, startBackend, startLb, until, type TestBackend } from '../helpers/servers.js';

/** A backend that counts bodies that arrived whole and answers `ok` (with a Content-Length). */
async function startCompletingBackend(t: Parameters<typeof cleanupFor>[0], options: http.ServerOptions = {}): Promise<{ url: string; seen: number; completed: number }> {
  const state = { url: '', seen: 0, completed: 0 };
  const server = http.createServer(options, (req, res) => {
    state.seen++;
    req.resume();
    req.on('end', () => {
      state.completed++;
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(() => closeServer(server));
  return state;
}

/** A raw client connection that records everything it receives and when the server closed. */
class RawClient {
  readonly socket: net.Socket;
  received = '';
  closed = false;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('data', (chunk: Buffer) => {
      this.received += chunk.toString('latin1');
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
    });
  }

  /** Sends a keep-alive GET and waits for its `ok` response. */
  async get(path: string): Promise<void> {
    const before = this.received.length;
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
    await until(() => this.received.indexOf('\r\n\r\nok', before) !== -1 || this.closed, 5000, `response to ${path}`);
    assert.match(this.received.slice(before), /^HTTP\/1\.1 200 /);
  }

  close(): void {
    this.socket.destroy();
  }
}

describe('maxHeaderBytes', () => {
  test('20 KiB of headers get 431 by default (16 KiB) and pass once the limit is raised', async (t) => {
    const cleanup = cleanupFor(t);
    // The backend itself must accept big heads, or its own 431 would be relayed.
    const backend = await startCompletingBackend(t, { maxHeaderSize: 64 * 1024 });
    const lb = await startLb({ backends: [backend.url] });
    cleanup(() => lb.close());
    const raised = await startLb({ backends: [backend.url], maxHeaderBytes: 32 * 1024 });
    cleanup(() => raised.close());

    const big = `GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`;
    const refused = await rawExchange(lb.address.port, big);
    assert.equal(refused.status, 431);
    assert.equal(backend.seen, 0);
    const passed = await rawExchange(raised.address.port, big);
    assert.equal(passed.status, 200);
    assert.equal(passed.body.toString(), 'ok');
    assert.equal(backend.seen, 1);
  });
});

describe('maxBodyBytes', () => {
  test('a Content-Length over the limit gets 413 at once, the body unread, and the backend is never contacted', async (t) => {
    const cleanup = cleanupFor(t);
    const counting = await startCountingServer();
    cleanup(() => counting.close());
    const lb = await startLb({ backends: [counting.url], maxBodyBytes: 1024 });
    cleanup(() => lb.close());
    const connectionsBefore = counting.acceptedAt.length;

    // Only the head is sent: the answer must not wait for a body.
    const res = await rawExchange(lb.address.port, 'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1025\r\n\r\n');
    assert.equal(res.status, 413);
    assert.match(res.head, /^HTTP\/1\.1 413 Payload Too Large|^HTTP\/1\.1 413 Content Too Large/);
    assert.equal(res.body.toString(), 'Content Too Large\n');
    assert.deepEqual(res.headers.get('connection'), ['close']);
    assert.equal(counting.acceptedAt.length, connectionsBefore, 'no connection to the backend');
  });

  test('Expect: 100-continue over the limit gets 413 without an interim 100; under it, 100 then the response', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startCompletingBackend(t);
    const lb = await startLb({ backends: [backend.url], maxBodyBytes: 1024 });
    cleanup(() => lb.close());

    const refused = await rawExchange(lb.address.port, 'POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n');
    assert.equal(refused.status, 413, 'the first status line is the final 413, no 100 Continue');
    assert.equal(backend.seen, 0);

    const client = new RawClient(lb.address.port);
    cleanup(() => client.close());
    client.socket.write('POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n');
    await until(() => client.received.includes('\r\n\r\n'), 5000, 'the interim response');
    assert.match(client.received, /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    client.socket.write('0123456789');
    await until(() => client.closed, 5000, 'the final response');
    assert.match(client.received, /HTTP\/1\.1 200 [\s\S]*ok$/);
    assert.equal(backend.completed, 1);
  });

  test('bodies up to the limit pass, by Content-Length and chunked', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startCompletingBackend(t);
    const lb = await startLb({ backends: [backend.url], maxBodyBytes: 1024 });
    cleanup(() => lb.close());
    const exact = await rawExchange(lb.address.port, `POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 1024\r\n\r\n${'x'.repeat(1024)}`);
    assert.equal(exact.status, 200);
    const chunked = await rawExchange(lb.address.port, `POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n${'x'.repeat(512)}\r\n200\r\n${'y'.repeat(512)}\r\n0\r\n\r\n`);
    assert.equal(chunked.status, 200);
    assert.equal(backend.completed, 2);
  });

  test('a chunked body growing past the limit gets 413, the upstream attempt aborted, the connection closed', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startCompletingBackend(t);
    const lb = await startLb({ backends: [backend.url], maxBodyBytes: 1024 });
    cleanup(() => lb.close());
    const chunk = `3e8\r\n${'x'.repeat(1000)}\r\n`;
    // No Connection: close: the proxy must close the connection itself.
    const res = await rawExchange(lb.address.port, `POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}${chunk}${chunk}`);
    assert.equal(res.status, 413);
    assert.deepEqual(res.headers.get('connection'), ['close']);
    assert.ok(backend.seen <= 1, 'at most the aborted request');
    assert.equal(backend.completed, 0, 'no body reached the backend whole');
    assert.equal(lb.upstream.backends[0]?.failuresTotal, 0, 'not counted against the backend');
  });

  test('past the limit after the response began, the response is cut', async (t) => {
    const cleanup = cleanupFor(t);
    // Answers at once and reads the body as it comes.
    const backend: TestBackend = await startBackend('early', (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('started ');
      req.resume();
      req.on('end', () => res.end('done'));
    });
    cleanup(() => backend.close());
    const lb = await startLb({ backends: [backend.url], maxBodyBytes: 1024 });
    cleanup(() => lb.close());

    const client = new RawClient(lb.address.port);
    cleanup(() => client.close());
    client.socket.write(`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1f4\r\n${'x'.repeat(500)}\r\n`);
    await until(() => client.received.includes('started '), 5000, 'the response head and first bytes');
    assert.match(client.received, /^HTTP\/1\.1 200 /);
    client.socket.write(`3e8\r\n${'y'.repeat(1000)}\r\n`);
    await until(() => client.closed, 5000, 'the connection to be cut');
    assert.doesNotMatch(client.received, /done/, 'the response never completed');
    assert.doesNotMatch(client.received, /\r\n0\r\n\r\n$/, 'no final chunk');
  });
});

describe('requestTimeoutMs', () => {
  test('a body that trickles in gets 408 and the connection is closed', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startCompletingBackend(t);
    const lb = await startLb({ backends: [backend.url], requestTimeoutMs: 300 });
    cleanup(() => lb.close());
    const client = new RawClient(lb.address.port);
    cleanup(() => client.close());
    client.socket.write('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n');
    const trickle = setInterval(() => client.socket.write('x'), 20);
    cleanup(() => clearInterval(trickle));
    const startedAt = performance.now();
    await until(() => client.closed, 5000, 'the connection to close');
    clearInterval(trickle);
    assert.match(client.received, /^HTTP\/1\.1 408 /);
    assert.ok(performance.now() - startedAt >= 250, 'not before the timeout');
    assert.equal(backend.completed, 0);
  });

  test('off by default: the same trickle completes', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startCompletingBackend(t);
    const lb = await startLb({ backends: [backend.url], clientHeadersTimeoutMs: 200 });
    cleanup(() => lb.close());
    const client = new RawClient(lb.address.port);
    cleanup(() => client.close());
    client.socket.write('POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 25\r\n\r\n');
    let sent = 0;
    const trickle = setInterval(() => {
      client.socket.write('x');
      if (++sent === 25) clearInterval(trickle);
    }, 20);
    cleanup(() => clearInterval(trickle));
    await until(() => client.closed, 5000, 'the response');
    assert.match(client.received, /^HTTP\/1\.1 200 [\s\S]*ok$/);
    assert.equal(backend.completed, 1);
  });
});

describe('maxConnections', () => {
  test('the (N+1)th connection is closed at once while the first N are served', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startCompletingBackend(t);
    const lb = await startLb({ backends: [backend.url], maxConnections: 3 });
    cleanup(() => lb.close());

    const kept: RawClient[] = [];
    for (let i = 0; i < 3; i++) {
      const client = new RawClient(lb.address.port);
      cleanup(() => client.close());
      await client.get(`/first-${i}`);
      kept.push(client);
    }
    const extra = new RawClient(lb.address.port);
    cleanup(() => extra.close());
    extra.socket.write('GET /extra HTTP/1.1\r\nHost: a\r\n\r\n');
    await until(() => extra.closed, 5000, 'the extra connection to be closed');
    assert.equal(extra.received, '', 'closed without a response');
    for (const [i, client] of kept.entries()) await client.get(`/second-${i}`);
    assert.equal(backend.seen, 6);

    // A slot freed is a slot to take: once the server has seen a close, a new connection is served.
    (kept[0] as RawClient).close();
    const deadline = Date.now() + 5000;
    for (;;) {
      const next = new RawClient(lb.address.port);
      cleanup(() => next.close());
      next.socket.write('GET /after HTTP/1.1\r\nHost: a\r\n\r\n');
      await until(() => next.closed || next.received.includes('\r\n\r\nok'), 5000, 'an answer or a close');
      if (!next.closed) break;
      assert.ok(Date.now() < deadline, 'a connection is served again after one closed');
    }
  });
});

describe('CLI flags for limits and trusted proxies', () => {
  const options = (...argv: string[]): Record<string, unknown> =>
    optionsFromFlags(parseArgs(['--backends', 'http://a:1', ...argv]).flags) as unknown as Record<string, unknown>;

  test('map to start() options', () => {
    const o = options('--trusted-proxies', '10.0.0.0/8, ::1', '--max-header-size', '32KiB', '--request-timeout', '2m', '--max-connections', '100', '--max-body-size', '1MiB');
    assert.deepEqual(o['trustedProxies'], ['10.0.0.0/8', '::1']);
    assert.equal(o['maxHeaderBytes'], 32 * 1024);
    assert.equal(o['requestTimeoutMs'], 120_000);
    assert.equal(o['maxConnections'], 100);
    assert.equal(o['maxBodyBytes'], 1024 * 1024);
    assert.equal(options('--request-timeout', '0')['requestTimeoutMs'], 0);
    assert.equal(options()['trustedProxies'], undefined);
    assert.equal(options('--ambiguous-paths', 'keep')['ambiguousPaths'], 'keep');
    assert.equal(options()['ambiguousPaths'], undefined);
  });

  test('bad values are one-line ConfigErrors naming the flag', () => {
    assert.throws(() => options('--trusted-proxies', '10.0.0.0/8,10.0.0.300'), (err: Error) => err instanceof ConfigError && /--trusted-proxies: "10\.0\.0\.300"/.test(err.message));
    assert.throws(() => options('--max-connections', '0'), (err: Error) => err instanceof ConfigError && /--max-connections/.test(err.message));
    assert.throws(() => options('--max-body-size', 'big'), (err: Error) => err instanceof ConfigError && /--max-body-size/.test(err.message));
    assert.throws(() => options('--request-timeout', 'soon'), (err: Error) => err instanceof ConfigError && /--request-timeout/.test(err.message));
    assert.throws(() => options('--ambiguous-paths', 'decode'), (err: Error) => err instanceof ConfigError && err.message === '--ambiguous-paths: "decode" is not reject or keep');
  });
});
