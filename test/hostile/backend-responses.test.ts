import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { closeServer, startLb, until } from '../helpers/servers.js';

/**
 * Hostile and malformed responses from an HTTP/1.1 backend, through the whole proxy: each gets
 * the answer its framing calls for (502 for a response Switchyard cannot trust), none crashes
 * the process, marks the backend down, or spoils the request after it on the same backend.
 */
interface Vector {
  readonly name: string;
  /** What the backend writes; `end`: it closes after, `reset`: it resets after. */
  readonly response: string;
  readonly end?: 'end' | 'reset';
  readonly method?: string;
  readonly status: number;
  readonly body?: string;
}

const ok = (body: string, more = ''): string => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${more}\r\n${body}`;

const vectors: readonly Vector[] = [
  // Framing (RFC 9112 §6): ambiguous or malformed lengths are never guessed at.
  { name: 'Content-Length and Transfer-Encoding', response: 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', status: 502 },
  { name: 'chunked, then identity: read until the close', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n', end: 'end', status: 200, body: '3\r\nabc\r\n' },
  { name: 'chunked twice in one list', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', status: 200, body: 'abc' },
  { name: 'Transfer-Encoding in HTTP/1.0', response: 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n3\r\nabc\r\n0\r\n\r\n', status: 200, body: 'abc' },
  { name: 'Content-Length with a plus sign', response: 'HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc', status: 502 },
  { name: 'Content-Length with spaces around it', response: 'HTTP/1.1 200 OK\r\nContent-Length:   3  \r\n\r\nabc', status: 200, body: 'abc' },
  { name: 'Content-Length as a list', response: 'HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc', status: 502 },
  { name: 'Content-Length beyond 2^53', response: 'HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551619\r\n\r\nabc', status: 502 },
  { name: 'two different Content-Lengths', response: 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', status: 502 },
  { name: 'a negative chunk size', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n', status: 502 },
  { name: 'a chunk size with 0x', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n', status: 502 },
  { name: 'LF-only chunk lines', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n', status: 502 },
  { name: 'a chunk size beyond 2^53', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nabc', status: 502 },
  { name: 'an endless chunk extension', response: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;${'x'.repeat(8000)}`, status: 502 },
  { name: 'a bare LF in the head', response: 'HTTP/1.1 200 OK\nContent-Length: 3\r\n\r\nabc', status: 502 },
  { name: 'NUL in a field value', response: 'HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 3\r\n\r\nabc', status: 502 },
  { name: 'obs-fold', response: 'HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 3\r\n\r\nabc', status: 502 },
  { name: 'a space before the colon', response: 'HTTP/1.1 200 OK\r\nContent-Length : 3\r\n\r\nabc', status: 502 },
  { name: 'obs-text in the reason phrase', response: 'HTTP/1.1 200 Caf\xe9\r\nContent-Length: 3\r\n\r\nabc', status: 200, body: 'abc' },
  { name: 'obs-text in a field value', response: 'HTTP/1.1 200 OK\r\nX-A: caf\xe9\r\nContent-Length: 3\r\n\r\nabc', status: 200, body: 'abc' },
  { name: 'status 999', response: 'HTTP/1.1 999 Odd\r\nContent-Length: 3\r\n\r\nabc', status: 999, body: 'abc' },
  { name: 'status 099', response: 'HTTP/1.1 099 Low\r\nContent-Length: 3\r\n\r\nabc', status: 502 },
  { name: 'HTTP/2.0 in an HTTP/1.1 status line', response: 'HTTP/2.0 200 OK\r\nContent-Length: 3\r\n\r\nabc', status: 502 },
  // Interim responses (RFC 9110 §15.2).
  { name: '101 to a request that asked for no upgrade', response: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n', status: 502 },
  { name: '102 then 200', response: `HTTP/1.1 102 Processing\r\n\r\n${ok('abc')}`, status: 200, body: 'abc' },
  { name: 'a flood of 103s', response: `${'HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n'.repeat(1000)}${ok('abc')}`, status: 502 },
  // Sizes.
  { name: 'an endless reason phrase', response: `HTTP/1.1 200 ${'O'.repeat(20_000)}`, status: 502 },
  { name: 'ten thousand tiny fields', response: `HTTP/1.1 200 OK\r\n${'a:b\r\n'.repeat(10_000)}Content-Length: 3\r\n\r\nabc`, status: 502 },
  // No body whatever the head says, and the bytes after it are never a response to anyone.
  { name: '204 with a body', response: 'HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nabc', status: 204, body: '' },
  { name: '204 without framing, then bytes', response: 'HTTP/1.1 204 No Content\r\n\r\nabc', status: 204, body: '' },
  { name: '304 without framing, then bytes', response: 'HTTP/1.1 304 Not Modified\r\n\r\nabc', status: 304, body: '' },
  { name: 'HEAD answered with a body', method: 'HEAD', response: ok('abc'), status: 200, body: '' },
  { name: 'a second response after the first', response: `${ok('abc')}${ok('evil')}`, status: 200, body: 'abc' },
  // The connection goes away.
  { name: 'FIN before the response', response: '', end: 'end', status: 502 },
  { name: 'RST before the response', response: '', end: 'reset', status: 502 },
  { name: 'RST mid-head', response: 'HTTP/1.1 200 OK\r\nContent-Le', end: 'reset', status: 502 },
  { name: 'FIN mid-head', response: 'HTTP/1.1 200 OK\r\nContent-Le', end: 'end', status: 502 },
];

let lb: Awaited<ReturnType<typeof startLb>>;
let backend: net.Server;
const client = new Agent();
const sockets = new Set<net.Socket>();

/** Answers `GET /v/N` with vector N, and `/ok` with "ok"; one request per head read (no bodies). */
function onConnection(socket: net.Socket): void {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => {});
  let buffered = '';
  socket.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('latin1');
    let end: number;
    while ((end = buffered.indexOf('\r\n\r\n')) !== -1) {
      const target = buffered.slice(0, buffered.indexOf('\r\n')).split(' ')[1] ?? '';
      buffered = buffered.slice(end + 4);
      const vector = target.startsWith('/v/') ? vectors[Number(target.slice(3))] : undefined;
      if (vector === undefined) {
        socket.write(ok('ok'));
        continue;
      }
      if (vector.response !== '') socket.write(vector.response);
      if (vector.end === 'end') socket.end();
      if (vector.end === 'reset') socket.resetAndDestroy();
      return;
    }
  });
}

before(async () => {
  backend = net.createServer(onConnection);
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const port = (backend.address() as AddressInfo).port;
  lb = await startLb({ backends: [`http://127.0.0.1:${port}`], log: { level: 'silent' } });
});

after(async () => {
  await client.close();
  await lb.close();
  for (const socket of sockets) socket.destroy();
  await closeServer(backend);
});

describe('hostile responses from an HTTP/1.1 backend', () => {
  vectors.forEach((v, i) => {
    test(`${v.name} → ${v.status}`, async () => {
      const res = await request(`${lb.url}/v/${i}`, { method: (v.method ?? 'GET') as 'GET', dispatcher: client });
      const body = await res.body.text();
      assert.equal(res.statusCode, v.status, body);
      if (v.body !== undefined) assert.equal(body, v.body);
      // The next request on the same backend is served whole, and one failure marks nothing down.
      const next = await request(`${lb.url}/ok`, { dispatcher: client });
      assert.equal(next.statusCode, 200);
      assert.equal(await next.body.text(), 'ok');
      const b = lb.upstream.backends[0];
      assert.equal(b?.up, true, 'the backend stays up');
      await until(() => b?.inFlight === 0 && b.pool.stats.running === 0, 5000, 'no attempt left in flight');
    });
  });
});

test('a POST whose body has not begun when the backend closes the idle connection it was given goes to a new one', async (t) => {
  // The backend closes each connection 100 ms after its answer, as a short keep-alive timeout does.
  let onWarmClosed = (): void => {};
  const warmClosed = new Promise<void>((resolve) => (onWarmClosed = resolve));
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      const post = buffered.startsWith('POST');
      if (post && !buffered.endsWith('\r\n0\r\n\r\n')) return;
      if (!post) socket.on('close', () => onWarmClosed());
      socket.write(ok(post ? (buffered.includes('\r\n5\r\nhello\r\n') ? 'hello' : 'wrong body') : 'warm'));
      buffered = '';
      setTimeout(() => socket.end(), 100);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => closeServer(server));
  const proxy = await startLb({ backends: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`], log: { level: 'silent' } });
  t.after(() => proxy.close());
  const warm = await request(`${proxy.url}/warm`, { dispatcher: client });
  assert.equal(await warm.body.text(), 'warm');
  // The POST's head takes the idle connection; its (streamed) body comes only after the backend closed it.
  const socket = net.connect(proxy.address.port, '127.0.0.1');
  t.after(() => socket.destroy());
  const answer = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('end', () => resolve(text));
  });
  socket.write('POST /upload HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n');
  await warmClosed;
  socket.write('5\r\nhello\r\n0\r\n\r\n');
  const text = await answer;
  assert.match(text, /^HTTP\/1\.1 200 /, text);
  assert.match(text, /hello/);
  assert.doesNotMatch(text, /wrong body/);
  assert.equal(proxy.upstream.backends[0]?.up, true);
});
