import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { closeServer, deadPort, startBackend, startLb, until } from '../helpers/servers.js';

/**
 * A backend on node:net: `onRequest` gets each request head (request line and fields, no
 * body expected) with the socket and the request's number on that connection (0 for the first).
 */
interface RawBackend {
  readonly url: string;
  /** Connections accepted, health probes included. */
  readonly connections: number;
  /** Connections closed so far. */
  readonly closed: number;
  /** Request heads seen. */
  readonly requests: string[];
  close(): Promise<void>;
}

async function startRawBackend(onRequest: (head: string, socket: net.Socket, indexOnConnection: number) => void): Promise<RawBackend> {
  const requests: string[] = [];
  let connections = 0;
  let closed = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.on('error', () => {});
    socket.on('close', () => closed++);
    let pending = '';
    let index = 0;
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      let end: number;
      while (!socket.destroyed && (end = pending.indexOf('\r\n\r\n')) !== -1) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        requests.push(head);
        onRequest(head, socket, index++);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    get closed() {
      return closed;
    },
    requests,
    close: () => closeServer(server),
  };
}

function okResponse(body: string, extra = ''): string {
  return `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

interface RawResult {
  readonly head: string;
  readonly body: Buffer;
}

/** Sends exact bytes and reads until the server closes the connection, for at most `timeoutMs`. */
function rawExchange(port: number, text: string, timeoutMs = 5000): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no close within ${timeoutMs} ms`)));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      const all = Buffer.concat(chunks);
      const headEnd = all.indexOf('\r\n\r\n');
      if (headEnd === -1) return reject(new Error(`no response head in ${JSON.stringify(all.toString('latin1'))}`));
      resolve({ head: all.subarray(0, headEnd).toString('latin1'), body: all.subarray(headEnd + 4) });
    });
    socket.write(text);
  });
}

/**
 * A listener that passes the load balancer's start-up health check, then is closed so every
 * attempt on it is refused while the load balancer still believes it is up.
 */
async function dyingPort(): Promise<{ url: string; kill(): Promise<void> }> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, kill: () => closeServer(server) };
}

describe('no backend alive', () => {
  test('every backend a dead port: 503 "Service not available", text/plain', async (t) => {
    const ports = await Promise.all([deadPort(), deadPort()]);
    const lb = await startLb({ backends: ports.map((p) => `http://127.0.0.1:${p}`) });
    t.after(() => lb.close());
    assert.equal(lb.upstream.hasAvailable(), false, 'the start-up health check found them dead');

    const res = await request(`${lb.url}/anything`);
    assert.equal(res.statusCode, 503);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.match(await res.body.text(), /^Service not available\n?$/);
  });

  test('a 503 for a request without a body keeps the client connection open', async (t) => {
    const lb = await startLb({ backends: [`http://127.0.0.1:${await deadPort()}`] });
    t.after(() => lb.close());
    const socket = net.connect((lb.address as AddressInfo).port, '127.0.0.1');
    t.after(() => socket.destroy());
    let received = '';
    socket.setEncoding('utf8').on('data', (text: string) => (received += text));
    socket.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => received.includes('Service not available'), 5000, 'the first 503');
    assert.doesNotMatch(received, /connection: close/i);
    socket.write('GET /b HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => received.split('Service not available').length === 3, 5000, 'a second 503 on the same connection');
    assert.equal(socket.destroyed, false);
  });

  test('backends that die after start: retries spent on each, then 503 "Service not available"', async (t) => {
    const dying = await Promise.all([dyingPort(), dyingPort()]);
    const lb = await startLb({ backends: dying.map((d) => d.url), retry: { retryDelayMs: 1 } });
    t.after(() => lb.close());
    await Promise.all(dying.map((d) => d.kill()));

    const res = await request(`${lb.url}/`, { method: 'POST', body: 'x' });
    assert.equal(res.statusCode, 503);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.match(await res.body.text(), /^Service not available\n?$/);
    assert.deepEqual(
      lb.upstream.backends.map((b) => [b.available, b.failuresTotal]),
      [
        [false, 4],
        [false, 4],
      ],
    );
  });
});

describe('backend failures', () => {
  test('a backend that accepts and never answers: 504 after upstreamTimeoutMs', async (t) => {
    const silent = await startBackend('silent', () => {
      // Reads nothing, answers nothing.
    });
    t.after(() => silent.close());
    const lb = await startLb({ backends: [silent.url], upstreamTimeoutMs: 300 });
    t.after(() => lb.close());

    const started = Date.now();
    const res = await request(`${lb.url}/slow`);
    const elapsedMs = Date.now() - started;
    assert.equal(res.statusCode, 504);
    assert.match(await res.body.text(), /^Gateway Timeout\n?$/);
    assert.ok(elapsedMs >= 250 && elapsedMs < 5000, `answered after ${elapsedMs} ms`);
    assert.equal(silent.seen.length, 1, 'a timeout is not retried');
  });

  test('a backend that resets mid-response: the client sees a cut response, the next request is served', async (t) => {
    const backend = await startBackend('cutter', (req, res) => {
      if (req.url === '/cut') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 100_000 });
        res.write(Buffer.alloc(1000, 0x61), () => res.socket?.destroy());
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('fine');
    });
    t.after(() => backend.close());
    const lb = await startLb({ backends: [backend.url] });
    t.after(() => lb.close());

    // undici: the head arrives, reading the body fails.
    const res = await request(`${lb.url}/cut`);
    assert.equal(res.statusCode, 200);
    await assert.rejects(res.body.arrayBuffer());

    // Raw socket: the relayed Content-Length is promised, fewer bytes arrive before the close.
    const raw = await rawExchange(lb.address.port, 'GET /cut HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(raw.head, /^HTTP\/1\.1 200/);
    assert.match(raw.head, /^content-length: 100000$/im);
    assert.ok(raw.body.length < 100_000, `got ${raw.body.length} body bytes before the close`);

    const next = await request(`${lb.url}/ok`);
    assert.equal(next.statusCode, 200);
    assert.equal(await next.body.text(), 'fine');
    assert.equal(lb.upstream.backends[0]?.available, true);
    await until(() => lb.upstream.backends[0]?.inFlight === 0, 5000, 'in-flight back to 0');
  });

  test('a backend that sends garbage instead of HTTP: 502, and the load balancer keeps serving', async (t) => {
    const backend = await startRawBackend((head, socket) => {
      if (head.startsWith('GET /garbage ')) socket.end('SSH-2.0-OpenSSH_9.6 \x00\x01\x02 not http at all\r\n\r\n');
      else socket.end(okResponse('fine', 'Connection: close\r\n'));
    });
    t.after(() => backend.close());
    const lb = await startLb({ backends: [backend.url] });
    t.after(() => lb.close());

    const res = await request(`${lb.url}/garbage`);
    assert.equal(res.statusCode, 502);
    assert.match(await res.body.text(), /^Bad Gateway\n?$/);

    for (let i = 0; i < 3; i++) {
      const next = await request(`${lb.url}/ok`);
      assert.equal(next.statusCode, 200);
      assert.equal(await next.body.text(), 'fine');
    }
  });

  test('a backend\'s own 500 and 503 are relayed untouched and do not mark it down', async (t) => {
    const backend = await startBackend('erring', (req, res) => {
      req.resume();
      if (req.url === '/500') {
        res.writeHead(500, 'Kaput', { 'content-type': 'application/json', 'x-trace': 't-500' });
        res.end('{"error":"boom"}');
      } else {
        res.writeHead(503, { 'content-type': 'text/html', 'retry-after': '7' });
        res.end('<h1>maintenance</h1>');
      }
    });
    t.after(() => backend.close());
    const lb = await startLb({ backends: [backend.url] });
    t.after(() => lb.close());

    for (let i = 0; i < 5; i++) {
      const r500 = await request(`${lb.url}/500`);
      assert.equal(r500.statusCode, 500);
      assert.equal(r500.headers['content-type'], 'application/json');
      assert.equal(r500.headers['x-trace'], 't-500');
      assert.equal(await r500.body.text(), '{"error":"boom"}');

      const r503 = await request(`${lb.url}/503`, { method: 'POST', body: 'x' });
      assert.equal(r503.statusCode, 503);
      assert.equal(r503.headers['retry-after'], '7');
      assert.equal(await r503.body.text(), '<h1>maintenance</h1>');
    }
    // The reason phrase too.
    const raw = await rawExchange(lb.address.port, 'GET /500 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(raw.head, /^HTTP\/1\.1 500 Kaput\r\n/);

    assert.equal(backend.seen.length, 11, 'each request reached the backend exactly once');
    const state = lb.upstream.backends[0];
    assert.equal(state?.available, true);
    assert.equal(state?.failuresTotal, 0);
  });
});

describe('stale pooled keep-alive connections', () => {
  test('a backend closing idle keep-alive sockets (no Keep-Alive hint): requests after each close all succeed', async (t) => {
    const backend = await startRawBackend((_head, socket) => {
      socket.write(okResponse('fresh'));
      // Like a server with a 50 ms idle timeout that does not announce it.
      socket.setTimeout(50, () => socket.end());
    });
    t.after(() => backend.close());
    const lb = await startLb({ backends: [backend.url], retry: { retryDelayMs: 1 } });
    t.after(() => lb.close());
    const probeConnections = backend.connections;

    for (let i = 0; i < 5; i++) {
      const res = await request(`${lb.url}/r${i}`);
      assert.equal(res.statusCode, 200, `request ${i}`);
      assert.equal(await res.body.text(), 'fresh');
      // Wait (bounded) until the backend has dropped this idle pooled connection.
      await until(() => backend.closed === backend.connections, 5000, `backend closed connection after request ${i}`);
    }
    assert.ok(backend.connections - probeConnections >= 5, 'each request needed a fresh connection');
    assert.equal(lb.upstream.backends[0]?.available, true);
  });

  test('a pooled connection the backend closes as the next request arrives: GETs are retried on a fresh one', async (t) => {
    // Answers the first request of each connection; a second one on the same connection finds it
    // closing (the race between a server's idle close and a reused socket).
    const backend = await startRawBackend((_head, socket, index) => {
      if (index === 0) socket.write(okResponse('first'));
      else socket.destroy();
    });
    t.after(() => backend.close());
    const lb = await startLb({ backends: [backend.url], retry: { retryDelayMs: 1 } });
    t.after(() => lb.close());

    for (let i = 0; i < 5; i++) {
      const res = await request(`${lb.url}/r${i}`);
      assert.equal(res.statusCode, 200, `request ${i}`);
      assert.equal(await res.body.text(), 'first');
    }
    assert.ok(backend.requests.length > 5, `the stale connection was hit (${backend.requests.length} requests seen)`);
    assert.equal(lb.upstream.backends[0]?.available, true);
  });
});
