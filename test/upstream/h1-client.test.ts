import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { poolFor, Recording, send } from '../helpers/h1-pool.js';
import type { RawFields } from '../../src/upstream/dispatcher.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startBlackhole } from '../helpers/faults.js';
import { makeTestPki, startTlsBackend } from '../helpers/tls.js';
import { backendTlsConnectOptions, defaultBackendTls } from '../../src/upstream/tls.js';
import type { TLSSocket } from 'node:tls';
import { closeServer, until } from '../helpers/servers.js';

/** A node:http backend that records the client port of each request and counts open sockets. */
async function portRecorder(handler?: http.RequestListener): Promise<{ port: number; ports: number[]; open: () => number; server: http.Server }> {
  const ports: number[] = [];
  let open = 0;
  const server = http.createServer((req, res) => {
    ports.push(req.socket.remotePort as number);
    if (handler !== undefined) return handler(req, res);
    req.resume();
    res.end('ok');
  });
  server.on('connection', (socket) => {
    open++;
    socket.on('close', () => open--);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, ports, open: () => open, server };
}

/** A raw TCP backend: `onRequest` gets each connection's first request bytes. */
async function rawBackend(onRequest: (socket: net.Socket) => void): Promise<{ port: number; open: () => number; server: net.Server }> {
  let open = 0;
  const server = net.createServer((socket) => {
    open++;
    socket.on('close', () => open--);
    socket.on('error', () => {});
    socket.once('data', () => onRequest(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, open: () => open, server };
}

async function* chunks(parts: readonly string[], hang = false): AsyncGenerator<Buffer> {
  for (const part of parts) yield Buffer.from(part);
  if (hang) await new Promise(() => {});
}

describe('the idle stack', () => {
  test('last in, first out: the most recently used connection carries the next request', async (t) => {
    const cleanup = cleanupFor(t);
    let holdFirst: (() => void) | null = null;
    const backend = await portRecorder((req, res) => {
      req.resume();
      if (req.url === '/slow') holdFirst = () => res.end('slow');
      else res.end('ok');
    });
    cleanup(() => closeServer(backend.server));
    const pool = poolFor(backend.port);
    cleanup(() => pool.destroy());
    // Two connections: /slow is held while /fast is answered, then /slow ends last.
    const slow = send(pool, { path: '/slow' });
    const fast = await send(pool, { path: '/fast' });
    assert.equal(fast.status, 200);
    await until(() => holdFirst !== null, 5000, 'the slow request');
    (holdFirst as unknown as () => void)();
    assert.equal((await slow).body, 'slow');
    assert.equal(pool.stats.connected, 2);
    const next = await send(pool, { path: '/next' });
    assert.equal(next.body, 'ok');
    assert.equal(backend.ports.length, 3);
    assert.equal(backend.ports[2], backend.ports[0], 'the connection of /slow, released last, was reused');
    assert.deepEqual(pool.stats, { connected: 2, pending: 0, running: 0 });
  });

  test('an idle connection the backend closes leaves the stack at once and is never used', async (t) => {
    const cleanup = cleanupFor(t);
    let connections = 0;
    const backend = await rawBackend((socket) => {
      connections++;
      socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    cleanup(() => closeServer(backend.server));
    const pool = poolFor(backend.port);
    cleanup(() => pool.destroy());
    for (let i = 0; i < 3; i++) {
      const outcome = await send(pool);
      assert.equal(outcome.error, null);
      assert.equal(outcome.body, 'ok');
      await until(() => pool.stats.connected === 0, 5000, 'the closed connection to leave the pool');
    }
    assert.equal(connections, 3);
  });

  test('a Keep-Alive hint shortens the idle timeout; one within the margin is not kept at all', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await portRecorder((req, res) => {
      req.resume();
      res.setHeader('keep-alive', req.url === '/short' ? 'timeout=2' : 'timeout=3');
      res.end('ok');
    });
    backend.server.keepAliveTimeout = 60_000;
    cleanup(() => closeServer(backend.server));
    const pool = poolFor(backend.port);
    cleanup(() => pool.destroy());
    // timeout=2 less undici's 2 s margin: the connection closes after the response.
    assert.equal((await send(pool, { path: '/short' })).body, 'ok');
    await until(() => backend.open() === 0, 5000, 'the connection to close');
    // timeout=3: kept idle for about a second, not the pool's 60 s.
    assert.equal((await send(pool, { path: '/hint' })).body, 'ok');
    assert.equal(pool.stats.connected, 1);
    await until(() => backend.open() === 0 && pool.stats.connected === 0, 10_000, 'the hinted idle timeout');
  });
});

describe('framing of the request body', () => {
  test('a streamed body with trailers goes chunked; forbidden trailer fields are dropped', async (t) => {
    const cleanup = cleanupFor(t);
    const seen: { te: string | undefined; body: string; trailers: NodeJS.Dict<string> }[] = [];
    const backend = await portRecorder((req, res) => {
      let body = '';
      req.setEncoding('latin1').on('data', (c: string) => (body += c));
      req.on('end', () => {
        seen.push({ te: req.headers['transfer-encoding'], body, trailers: { ...req.trailers } });
        res.end('ok');
      });
    });
    cleanup(() => closeServer(backend.server));
    const pool = poolFor(backend.port);
    cleanup(() => pool.destroy());
    const trailersFrom = { trailers: { 'x-sum': '7', host: 'evil', 'content-type': 'x/evil' } as NodeJS.Dict<string> };
    const outcome = await send(pool, { method: 'POST', body: chunks(['ab', 'cd']) as never, trailersFrom });
    assert.equal(outcome.status, 200);
    assert.deepEqual(seen, [{ te: 'chunked', body: 'abcd', trailers: { 'x-sum': '7' } }]);
  });

  test('Content-Length mismatches: a streamed body shorter or longer than declared fails the attempt', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await portRecorder((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    cleanup(() => closeServer(backend.server));
    const pool = poolFor(backend.port);
    cleanup(() => pool.destroy());
    for (const parts of [['12345'], ['12345', '67890', 'x']]) {
      const outcome = await send(pool, { method: 'POST', headers: ['content-length', '10'], body: chunks(parts) as never });
      assert.equal(outcome.error?.code, 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', parts.join(''));
      assert.equal(outcome.connected, true);
    }
    await until(() => pool.stats.connected === 0, 5000, 'the broken connections to close');
    const whole = await send(pool, { method: 'POST', headers: ['content-length', '10'], body: chunks(['12345', '67890']) as never });
    assert.equal(whole.body, 'ok');
  });

  test('a body given as chunks goes with its head in one write, declared by their total, and can be sent again', async (t) => {
    const cleanup = cleanupFor(t);
    const firstReads: string[] = [];
    const server = net.createServer((socket) => {
      socket.once('data', (bytes: Buffer) => {
        firstReads.push(bytes.toString('latin1'));
        socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup(() => closeServer(server));
    const pool = poolFor((server.address() as AddressInfo).port);
    cleanup(() => pool.destroy());
    const parts = [Buffer.from('hello '), Buffer.alloc(0), Buffer.from('world')];
    for (let i = 0; i < 2; i++) assert.equal((await send(pool, { method: 'POST', body: parts as never })).body, 'ok');
    assert.equal(firstReads.length, 2);
    for (const read of firstReads) {
      assert.match(read, /^POST \/ HTTP\/1\.1\r\n/);
      assert.match(read, /\r\ncontent-length: 11\r\n/i);
      assert.ok(read.endsWith('\r\n\r\nhello world'), 'head and body in one read');
    }
    const mismatch = await send(pool, { method: 'POST', headers: ['content-length', '5'], body: parts as never });
    assert.equal(mismatch.error?.code, 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH');
  });

  test('a POST without a body says content-length: 0; a GET says nothing', async (t) => {
    const cleanup = cleanupFor(t);
    const lengths: (string | undefined)[] = [];
    const backend = await portRecorder((req, res) => {
      lengths.push(req.headers['content-length']);
      req.resume();
      res.end('ok');
    });
    cleanup(() => closeServer(backend.server));
    const pool = poolFor(backend.port);
    cleanup(() => pool.destroy());
    await send(pool, { method: 'POST', body: null });
    await send(pool, { method: 'GET', body: null });
    assert.deepEqual(lengths, ['0', undefined]);
  });

  test('a reused connection is not cut by its idle timer while a slow upload is under way', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await portRecorder((req, res) => {
      let body = '';
      req.setEncoding('latin1').on('data', (c: string) => (body += c));
      req.on('end', () => res.end(body));
    });
    cleanup(() => closeServer(backend.server));
    const pool = poolFor(backend.port, { keepAliveTimeoutMs: 100 });
    cleanup(() => pool.destroy());
    assert.equal((await send(pool, { method: 'POST', body: Buffer.from('warm') })).body, 'warm');
    async function* slow(): AsyncGenerator<Buffer> {
      yield Buffer.from('slow ');
      // Longer than the idle timeout the connection rested with.
      await new Promise((resolve) => setTimeout(resolve, 400));
      yield Buffer.from('upload');
    }
    const outcome = await send(pool, { method: 'POST', body: slow() as never });
    assert.equal(outcome.error, null);
    assert.equal(outcome.body, 'slow upload');
    assert.equal(backend.ports[1], backend.ports[0], 'on the reused connection');
  });

  test('a streamed body that fails before its first byte sends nothing, and the connection stays usable', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await portRecorder((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    cleanup(() => closeServer(backend.server));
    const pool = poolFor(backend.port);
    cleanup(() => pool.destroy());
    assert.equal((await send(pool)).body, 'ok');
    async function* broken(): AsyncGenerator<Buffer> {
      yield* [];
      throw new Error('the client sent a malformed chunk');
    }
    const failed = await send(pool, { method: 'POST', body: broken() as never });
    assert.equal(failed.error?.message, 'the client sent a malformed chunk');
    assert.equal((await send(pool)).body, 'ok');
    assert.equal(backend.ports.length, 2, 'the backend saw nothing of the failed request');
    assert.equal(backend.ports[1], backend.ports[0], 'and its connection carried the next one');
  });
});

describe('an early answer', () => {
  test('a response before the whole body went out completes the attempt, stops the body and closes the connection', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await portRecorder((_req, res) => {
      res.writeHead(413, { 'content-length': '8', connection: 'keep-alive' });
      res.end('too long');
    });
    cleanup(() => closeServer(backend.server));
    const pool = poolFor(backend.port);
    cleanup(() => pool.destroy());
    let returned = false;
    const body = chunks(['the first part'], true);
    const original = body.return.bind(body);
    body.return = (value) => {
      returned = true;
      return original(value);
    };
    const outcome = await send(pool, { method: 'POST', body: body as never });
    assert.equal(outcome.error, null);
    assert.equal(outcome.status, 413);
    assert.equal(outcome.body, 'too long');
    await until(() => returned, 5000, 'the body iterator to be told to stop');
    await until(() => backend.open() === 0 && pool.stats.connected === 0, 5000, 'the connection to close');
  });
});

describe('the response', () => {
  test('shorter than its Content-Length: the attempt fails once the backend closes', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await rawBackend((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345'));
    cleanup(() => closeServer(backend.server));
    const pool = poolFor(backend.port);
    cleanup(() => pool.destroy());
    const outcome = await send(pool);
    assert.equal(outcome.status, 200);
    assert.equal(outcome.body, '12345');
    assert.equal(outcome.error?.code, 'UND_ERR_SOCKET');
  });

  test('longer than its Content-Length: the response ends at its length and the connection is not reused', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await rawBackend((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n12345EXTRA'));
    cleanup(() => closeServer(backend.server));
    const pool = poolFor(backend.port);
    cleanup(() => pool.destroy());
    const outcome = await send(pool);
    assert.equal(outcome.error, null);
    assert.equal(outcome.body, '12345');
    await until(() => backend.open() === 0 && pool.stats.connected === 0, 5000, 'the connection to close');
  });
});

describe('timeouts', () => {
  test('connect: UND_ERR_CONNECT_TIMEOUT before onConnect', async (t) => {
    const cleanup = cleanupFor(t);
    const hole = await startBlackhole();
    cleanup(() => hole.close());
    const pool = poolFor(hole.port, { connectTimeoutMs: 200 });
    cleanup(() => pool.destroy());
    const outcome = await send(pool);
    assert.equal(outcome.error?.code, 'UND_ERR_CONNECT_TIMEOUT');
    assert.equal(outcome.connected, false);
    assert.deepEqual(pool.stats, { connected: 0, pending: 0, running: 0 });
  });

  test('headers: UND_ERR_HEADERS_TIMEOUT when no head comes; body: UND_ERR_BODY_TIMEOUT when the body stalls', async (t) => {
    const cleanup = cleanupFor(t);
    let stall = false;
    const backend = await rawBackend((socket) => {
      if (stall) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n123');
    });
    cleanup(() => closeServer(backend.server));
    const pool = poolFor(backend.port, { headersTimeoutMs: 150, bodyTimeoutMs: 150 });
    cleanup(() => pool.destroy());
    const silent = await send(pool);
    assert.equal(silent.error?.code, 'UND_ERR_HEADERS_TIMEOUT');
    assert.equal(silent.connected, true);
    stall = true;
    const stalled = await send(pool);
    assert.equal(stalled.status, 200);
    assert.equal(stalled.body, '123');
    assert.equal(stalled.error?.code, 'UND_ERR_BODY_TIMEOUT');
    await until(() => backend.open() === 0, 5000, 'the timed-out connections to close');
  });

  test('a pause lifted within the tick, as the relay does per chunk, never pauses the socket; the body arrives whole', async (t) => {
    const cleanup = cleanupFor(t);
    const body = Buffer.from(Array.from({ length: 1024 * 1024 }, (_, i) => 97 + (i % 26)));
    const backend = await portRecorder((_req, res) => res.end(body));
    cleanup(() => closeServer(backend.server));
    const pool = poolFor(backend.port);
    cleanup(() => pool.destroy());
    // As the relay does when a chunk exceeds the client's buffer: pause, then 'drain' within the tick.
    class PausesEveryChunk extends Recording {
      chunks = 0;
      override onData(chunk: Buffer): boolean {
        super.onData(chunk);
        this.chunks++;
        process.nextTick(() => this.resumeNow?.());
        return false;
      }
      resumeNow: (() => void) | null = null;
      override onHeaders(status: number, raw: RawFields, resume: () => void): boolean {
        this.resumeNow = resume;
        return super.onHeaders(status, raw, resume);
      }
    }
    assert.equal((await send(pool)).body.length, body.length, 'a first request opens the connection');
    const [conn] = (pool as unknown as { open: Set<{ socket: net.Socket }> }).open;
    let socketPauses = 0;
    conn?.socket.on('pause', () => socketPauses++);
    const handler = new PausesEveryChunk();
    const outcome = await send(pool, {}, handler);
    assert.equal(outcome.body, body.toString('latin1'));
    assert.ok(handler.chunks > 1, `paused after each of ${handler.chunks} chunks`);
    assert.equal(socketPauses, 0, 'the socket read on');
  });

  test('a pause by the handler does not count against the body timeout', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await portRecorder((req, res) => {
      req.resume();
      res.write('first');
      setTimeout(() => res.end('second'), 20);
    });
    cleanup(() => closeServer(backend.server));
    const pool = poolFor(backend.port, { bodyTimeoutMs: 100 });
    cleanup(() => pool.destroy());
    const outcome = await send(pool, {}, new Recording(400));
    assert.equal(outcome.error, null);
    assert.equal(outcome.body, 'firstsecond');
  });
});

describe('aborts and shutdown', () => {
  test('an abort mid-upload (the client hung up) stops the body, closes the connection, fails with UND_ERR_ABORTED', async (t) => {
    const cleanup = cleanupFor(t);
    let received = '';
    const backend = await portRecorder((req) => {
      req.setEncoding('latin1').on('data', (c: string) => (received += c));
    });
    cleanup(() => closeServer(backend.server));
    const pool = poolFor(backend.port);
    cleanup(() => pool.destroy());
    let returned = false;
    const body = chunks(['half of it'], true);
    const original = body.return.bind(body);
    body.return = (value) => {
      returned = true;
      return original(value);
    };
    const pending = send(pool, { method: 'POST', body: body as never });
    await until(() => received === 'half of it', 5000, 'the first half at the backend');
    pending.handler.abort?.();
    const outcome = await pending;
    assert.equal(outcome.error?.code, 'UND_ERR_ABORTED');
    assert.equal(returned, true, 'the body iterator was told to stop');
    await until(() => backend.open() === 0 && pool.stats.connected === 0, 5000, 'no connection left open');
  });

  test('close() lets the request in flight finish, then closes; a dispatch after it fails', async (t) => {
    const cleanup = cleanupFor(t);
    let answer: (() => void) | null = null;
    const backend = await portRecorder((req, res) => {
      req.resume();
      answer = () => res.end('late');
    });
    cleanup(() => closeServer(backend.server));
    const pool = poolFor(backend.port);
    const pending = send(pool);
    await until(() => answer !== null, 5000, 'the request at the backend');
    const closed = pool.close();
    (answer as unknown as () => void)();
    assert.equal((await pending).body, 'late');
    await closed;
    assert.equal(backend.ports.length, 1);
    const after = await send(pool);
    assert.equal(after.error?.code, 'UND_ERR_CLOSED');
    await until(() => backend.open() === 0, 5000, 'the connection closed');
  });

  test('destroy() fails the request in flight', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await portRecorder((req) => req.resume());
    cleanup(() => closeServer(backend.server));
    const pool = poolFor(backend.port);
    const pending = send(pool);
    await until(() => backend.ports.length === 1, 5000, 'the request at the backend');
    await pool.destroy(new Error('going away'));
    assert.equal((await pending).error?.message, 'going away');
  });
});

test('an https backend: the pinned name is checked and the second connection resumes the TLS session', async (t) => {
  const cleanup = cleanupFor(t);
  const pki = await makeTestPki();
  cleanup(() => pki.remove());
  const held: (() => void)[] = [];
  const backend = await startTlsBackend('tls', pki.local, {
    handler: (req, res) => {
      req.resume();
      if (req.url === '/hold') held.push(() => res.end('held'));
      else res.end('tls');
    },
  });
  cleanup(() => backend.close());
  const reused: boolean[] = [];
  backend.server.on('secureConnection', (socket: TLSSocket) => reused.push(socket.isSessionReused()));
  const pool = poolFor(backend.port, { origin: backend.url, tls: backendTlsConnectOptions('localhost', { ...defaultBackendTls, ca: pki.ca.caPem }) });
  cleanup(() => pool.destroy());
  assert.equal((await send(pool)).body, 'tls');
  // Two at once: one takes the idle connection, the other opens a second.
  const first = send(pool, { path: '/hold' });
  const second = send(pool, { path: '/hold' });
  await until(() => held.length === 2, 5000, 'both requests at the backend');
  for (const answer of held) answer();
  assert.deepEqual([(await first).body, (await second).body], ['held', 'held']);
  assert.deepEqual(reused, [false, true]);
  assert.deepEqual(backend.handshakes.map((h) => h.servername), ['localhost', 'localhost']);
});
