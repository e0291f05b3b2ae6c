import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { BackendDispatchHandler, RawFields } from '../../src/upstream/dispatcher.js';
import { ownRegionBytes } from '../../src/upstream/h1/read-region.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { poolFor } from '../helpers/h1-pool.js';
import { closeServer, until } from '../helpers/servers.js';
import type { H1Pool } from '../../src/upstream/h1/pool.js';

/**
 * Plain backend sockets read into regions (src/upstream/h1/read-region.ts): small reads share one
 * region, so whatever outlives a read must be a copy. These handlers keep the Buffers they are
 * given, untouched, until every response is in: a chunk still pointing into the shared region
 * would by then hold the bytes of later reads, of this connection or of any other.
 */
class Keeping implements BackendDispatchHandler {
  readonly chunks: Buffer[] = [];
  status = 0;
  error: Error | null = null;
  readonly done: Promise<void>;
  private finish!: () => void;
  private resume: (() => void) | null = null;
  /** Pause at the first body chunk, until `release()`. */
  private readonly pauseFirst: boolean;
  private pausedOnce = false;
  paused: Promise<void>;
  private onPaused!: () => void;
  constructor(pauseFirst = false) {
    this.pauseFirst = pauseFirst;
    this.done = new Promise((resolve) => (this.finish = resolve));
    this.paused = new Promise((resolve) => (this.onPaused = resolve));
  }
  onConnect(): void {}
  onHeaders(status: number, _raw: RawFields, resume: () => void): boolean {
    if (status >= 200) this.status = status;
    this.resume = resume;
    return true;
  }
  onData(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    if (this.pauseFirst && !this.pausedOnce) {
      this.pausedOnce = true;
      this.onPaused();
      return false;
    }
    return true;
  }
  release(): void {
    this.resume?.();
  }
  onComplete(): void {
    this.finish();
  }
  onError(err: Error): void {
    this.error = err;
    this.finish();
  }
  body(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** The body of request `id`: its own bytes throughout, so a byte of any other response shows. */
function bodyOf(id: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = 0x21 + ((id * 31 + i) % 90);
  return out;
}

/** A backend answering /ID/LENGTH[/chunked] with bodyOf(ID, LENGTH), in one write or in chunks. */
async function patternBackend(): Promise<{ port: number; server: http.Server }> {
  const server = http.createServer((req, res) => {
    const [, id, length, mode] = (req.url as string).split('/');
    const body = bodyOf(Number(id), Number(length));
    req.resume();
    if (mode === 'chunked') {
      res.writeHead(200);
      for (let at = 0; at < body.length; at += 700) res.write(body.subarray(at, at + 700));
      res.end();
    } else {
      res.writeHead(200, { 'content-length': String(body.length) });
      res.end(body);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, server };
}

function dispatch(pool: H1Pool, path: string, handler: Keeping): Keeping {
  pool.dispatch({ path, method: 'GET', headers: [] } as never, handler);
  return handler;
}

test('bytes kept past their read are copies: 240 responses over 24 connections arrive whole', async (t) => {
  const cleanup = cleanupFor(t);
  const backend = await patternBackend();
  cleanup(() => closeServer(backend.server));
  const pool = poolFor(backend.port);
  cleanup(() => pool.destroy());
  const kept: { id: number; length: number; handler: Keeping }[] = [];
  // 24 connections at a time, each carrying 10 responses in turn; lengths from a few bytes to
  // most of a region, in one write or in 700-byte chunks.
  await Promise.all(Array.from({ length: 24 }, async (_, lane) => {
    for (let n = 0; n < 10; n++) {
      const id = lane * 10 + n;
      const length = [5, 300, 4_000, 20_000, 50_000][id % 5] as number;
      const handler = dispatch(pool, `/${id}/${length}${id % 3 === 0 ? '/chunked' : ''}`, new Keeping());
      kept.push({ id, length, handler });
      await handler.done;
    }
  }));
  assert.equal(kept.length, 240);
  for (const { id, length, handler } of kept) {
    assert.equal(handler.error, null);
    assert.equal(handler.status, 200);
    assert.ok(handler.body().equals(bodyOf(id, length)), `response ${id} (${length} bytes) arrived as sent`);
  }
});

test('bytes held while the handler is paused are copies, whether parsed or not yet', async (t) => {
  const cleanup = cleanupFor(t);
  // A raw backend with a chunked body: two chunks in the read after the head (the handler pauses
  // at the first, so the parser stops inside the read and the rest is held), the third chunk
  // after the pause (a read held whole).
  const first = bodyOf(1, 1000);
  const second = bodyOf(2, 2000);
  const third = bodyOf(3, 3000);
  const chunk = (bytes: Buffer): Buffer => Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from('\r\n')]);
  let sendRest: (() => void) | null = null;
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      socket.write(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), chunk(first), chunk(second)]));
      sendRest = () => socket.write(Buffer.concat([chunk(third), Buffer.from('0\r\n\r\n')]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup(() => closeServer(server));
  const pool = poolFor((server.address() as AddressInfo).port);
  cleanup(() => pool.destroy());
  const other = await patternBackend();
  cleanup(() => closeServer(other.server));
  const otherPool = poolFor(other.port);
  cleanup(() => otherPool.destroy());

  const paused = dispatch(pool, '/', new Keeping(true));
  await paused.paused;
  // While it is paused: the rest of its body arrives (and is held), and other connections read
  // many times into the shared region.
  (sendRest as unknown as () => void)();
  for (let i = 0; i < 20; i++) await dispatch(otherPool, `/${100 + i}/2000`, new Keeping()).done;
  paused.release();
  await paused.done;
  assert.equal(paused.error, null);
  assert.ok(paused.body().equals(Buffer.concat([first, second, third])), 'the paused response arrived as sent');
});

test('a body that fills its reads is handed on in regions of its own; the next small one is copied again', async (t) => {
  const cleanup = cleanupFor(t);
  const backend = await patternBackend();
  cleanup(() => closeServer(backend.server));
  const pool = poolFor(backend.port);
  cleanup(() => pool.destroy());
  const handler = dispatch(pool, `/8/${4 * 1024 * 1024}`, new Keeping());
  await handler.done;
  assert.ok(handler.body().equals(bodyOf(8, 4 * 1024 * 1024)));
  // Chunks in a region of their own are not copied: they are views of a 256 KiB region.
  const own = handler.chunks.filter((chunk) => chunk.buffer.byteLength === ownRegionBytes);
  assert.ok(own.length >= 4, `most of 4 MiB came in own regions (${own.length} of ${handler.chunks.length} chunks)`);
  // The same connection, now reading a small response into the shared region again: its chunk is
  // a copy (from Buffer's pool), not a view of a region of its own.
  const small = dispatch(pool, '/9/200', new Keeping());
  await small.done;
  assert.equal(pool.stats.connected, 1, 'one connection carried both');
  assert.ok(small.body().equals(bodyOf(9, 200)));
  for (const chunk of small.chunks) assert.notEqual(chunk.buffer.byteLength, ownRegionBytes, 'a small body is copied out of the shared region');
});

test('an upgrade opens a connection that reads through its Readable, even with one idle', async (t) => {
  const cleanup = cleanupFor(t);
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let request = '';
    socket.on('data', (chunk: Buffer) => {
      request += chunk.toString('latin1');
      if (!request.includes('\r\n\r\n')) return;
      if (/^upgrade: test/im.test(request)) {
        // The 101 and the new protocol's first bytes in one write, then more after.
        socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\nfirst;');
        setImmediate(() => socket.write('second;'));
      } else {
        request = '';
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup(() => closeServer(server));
  const pool = poolFor((server.address() as AddressInfo).port);
  cleanup(() => pool.destroy());
  const plain = dispatch(pool, '/', new Keeping());
  await plain.done;
  assert.equal(plain.body().toString(), 'ok');
  assert.deepEqual(pool.stats, { connected: 1, pending: 0, running: 0 });

  const upgraded = new Promise<net.Socket>((resolve, reject) => {
    pool.dispatch({ path: '/ws', method: 'GET', headers: [], upgrade: 'test' } as never, {
      onConnect() {},
      onHeaders: () => true,
      onData: () => true,
      onComplete: () => reject(new Error('no upgrade')),
      onError: reject,
      onUpgrade: (_status: number, _raw: RawFields, socket: net.Socket) => resolve(socket),
    } as BackendDispatchHandler);
  });
  const socket = await upgraded;
  cleanup(() => socket.destroy());
  let got = '';
  socket.on('data', (chunk: Buffer) => {
    got += chunk.toString('latin1');
  });
  // Handed over paused, with the bytes that came with the 101 put back (as a tunnel takes it).
  socket.resume();
  await until(() => got === 'first;second;', 5000, "the new protocol's bytes through the handed-over socket");
  // The idle connection is still there, unused by the upgrade.
  assert.deepEqual(pool.stats, { connected: 1, pending: 0, running: 0 });
  const again = dispatch(pool, '/', new Keeping());
  await again.done;
  assert.equal(again.body().toString(), 'ok');
});
