import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { poolFor, send, type Outcome } from '../helpers/h1-pool.js';
import type { H1Connection } from '../../src/upstream/h1/connection.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { closeServer, until } from '../helpers/servers.js';

/** What a hostile or broken HTTP/1.1 backend can do to the client of src/upstream/h1/, on raw sockets. */

/** A raw TCP backend: `onConnection` gets each socket; `connections` counts them; close() destroys them all. */
async function rawBackend(onConnection: (socket: net.Socket, index: number) => void): Promise<{ port: number; connections: () => number; open: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket, connections++);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = (): Promise<void> => {
    for (const socket of sockets) socket.destroy();
    return closeServer(server);
  };
  return { port: (server.address() as AddressInfo).port, connections: () => connections, open: () => sockets.size, close };
}

/** Answers each request on a connection with `answer(n)` (n counts the connection's requests) once its head is in. */
function answering(socket: net.Socket, answer: (n: number) => string | null): void {
  let n = 0;
  let buffered = '';
  socket.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('latin1');
    while (buffered.includes('\r\n\r\n')) {
      buffered = buffered.slice(buffered.indexOf('\r\n\r\n') + 4);
      const text = answer(n++);
      if (text !== null) socket.write(text);
    }
  });
}

describe('connection reuse against a hostile backend', () => {
  test('an idle connection whose backend sent FIN is not handed a request in the moment before it closes', async (t) => {
    const cleanup = cleanupFor(t);
    // Every connection answers once, then half-closes: the FIN follows the response.
    const backend = await rawBackend((socket) => answering(socket, () => {
      setImmediate(() => socket.end());
      return 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    }));
    cleanup(() => backend.close());
    const pool = poolFor(backend.port);
    cleanup(() => pool.destroy());
    assert.equal((await send(pool)).body, 'ok');
    const conn = (pool as unknown as { idle: H1Connection[] }).idle[0] as H1Connection;
    // A POST dispatched as the FIN is read (the socket not yet closed) must go to a new connection.
    const second = await new Promise<Outcome>((resolve) => {
      conn.socket.once('end', () => {
        void send(pool, { method: 'POST', body: 'x' }).then(resolve);
      });
    });
    assert.equal(second.error, null, `the POST failed: ${second.error?.message}`);
    assert.equal(second.body, 'ok');
    assert.equal(backend.connections(), 2);
  });

  test('bytes a backend sends on an idle connection close it: the next request never reads them', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await rawBackend((socket, index) => answering(socket, () => {
      // The first connection answers, then speaks out of turn with a second "response".
      if (index === 0) setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil'), 20);
      return `HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n${index}${index}`;
    }));
    cleanup(() => backend.close());
    const pool = poolFor(backend.port);
    cleanup(() => pool.destroy());
    assert.equal((await send(pool)).body, '00');
    await until(() => pool.stats.connected === 0, 5000, 'the connection that spoke out of turn to close');
    const second = await send(pool);
    assert.equal(second.body, '11');
  });

  test('a 204 or a HEAD answer followed by body bytes: the connection is not reused', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await rawBackend((socket, index) => answering(socket, () =>
      index === 0 ? 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nHTTP/' : `HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n${index}`));
    cleanup(() => backend.close());
    const pool = poolFor(backend.port);
    cleanup(() => pool.destroy());
    const first = await send(pool);
    assert.equal(first.status, 204);
    assert.equal(first.body, '');
    const second = await send(pool);
    assert.equal(second.error, null);
    assert.equal(second.body, '1');
    assert.equal(backend.connections(), 2);
  });
});

describe('a reused connection lost before the request went out', () => {
  /** A backend that answers the first request, then after 50 ms does `then` to the idle connection. */
  async function thenIdle(then: (socket: net.Socket) => void) {
    const backend = await rawBackend((socket, index) => answering(socket, () => {
      if (index === 0) setTimeout(() => then(socket), 50);
      return 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    }));
    const pool = poolFor(backend.port);
    assert.equal((await send(pool)).body, 'ok');
    return { backend, pool };
  }
  /** A POST whose streamed body has not sent its first byte yet when the connection is lost. */
  async function* later(): AsyncGenerator<Buffer> {
    await new Promise(() => {});
    yield Buffer.from('never');
  }

  for (const [what, then] of [
    ['the backend closes it', (socket: net.Socket) => socket.end()],
    ['the backend resets it', (socket: net.Socket) => socket.resetAndDestroy()],
    ['the backend speaks first (a 408 on an idle connection)', (socket: net.Socket) => socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')],
  ] as const) {
    test(`${what}: the attempt fails as unprocessed, safe to send again whatever the method`, async (t) => {
      const cleanup = cleanupFor(t);
      const { backend, pool } = await thenIdle(then);
      cleanup(() => backend.close());
      cleanup(() => pool.destroy());
      const outcome = await send(pool, { method: 'POST', body: later() as never });
      assert.equal(outcome.status, 0, 'no response is taken for a request never sent');
      assert.equal(outcome.error?.code, 'SWY_ERR_UPSTREAM_UNPROCESSED', outcome.error?.message);
      await until(() => pool.stats.connected === 0 && pool.stats.running === 0, 5000, 'the connection to close');
    });
  }
});

describe('resource bounds', () => {
  test('a flood of interim responses fails the attempt instead of being relayed without end', async (t) => {
    const cleanup = cleanupFor(t);
    const hint = 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n';
    const backend = await rawBackend((socket) => answering(socket, () => `${hint.repeat(5000)}HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`));
    cleanup(() => backend.close());
    const pool = poolFor(backend.port);
    cleanup(() => pool.destroy());
    const outcome = await send(pool);
    assert.equal(outcome.error?.code, 'SWY_ERR_BAD_RESPONSE', `no error after ${outcome.interim} interim responses`);
    assert.ok(outcome.interim < 5000);
  });

  test('a few interim responses, then the final one, are all handed on', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await rawBackend((socket) => answering(socket, () => `${'HTTP/1.1 102 Processing\r\n\r\n'.repeat(10)}HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`));
    cleanup(() => backend.close());
    const pool = poolFor(backend.port);
    cleanup(() => pool.destroy());
    const outcome = await send(pool);
    assert.equal(outcome.error, null);
    assert.equal(outcome.interim, 11);
    assert.equal(outcome.body, 'ok');
  });

  test('a backend that stops reading a streamed upload fails it with a headers timeout, leaving nothing behind', async (t) => {
    const cleanup = cleanupFor(t);
    // Accepts, reads nothing, answers nothing: the upload soon fills the socket buffers.
    const backend = await rawBackend((socket) => socket.pause());
    cleanup(() => backend.close());
    const pool = poolFor(backend.port, { headersTimeoutMs: 300 });
    cleanup(() => pool.destroy());
    let yielded = 0;
    async function* endless(): AsyncGenerator<Buffer> {
      for (;;) {
        yielded++;
        yield Buffer.alloc(64 * 1024, 0x61);
      }
    }
    const outcome = await Promise.race([
      send(pool, { method: 'POST', body: endless() as never }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no end after 10 s (${yielded} chunks written)`)), 10_000).unref()),
    ]);
    assert.equal(outcome.error?.code, 'UND_ERR_HEADERS_TIMEOUT');
    await until(() => pool.stats.connected === 0 && pool.stats.running === 0, 5000, 'the connection to close');
  });
});
