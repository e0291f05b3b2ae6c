import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { cleanupFor } from '../helpers/cleanup.js';
import { fields } from '../helpers/raw.js';
import { startBackend, startLb } from '../helpers/servers.js';

/**
 * On close, a listener leaves idle keep-alive connections open for a short linger (250 ms,
 * src/server/listener.ts) before closing them: a client may already have sent its next request
 * on one (RFC 9112 section 9.6), and that request is served, with `Connection: close`, instead
 * of being cut unanswered.
 */

interface Response {
  readonly status: number;
  readonly headers: Map<string, string[]>;
  readonly body: string;
}

/** A keep-alive client on a raw socket: sends requests and reads Content-Length framed responses. */
class KeepAliveClient {
  readonly socket: net.Socket;
  private buffered = Buffer.alloc(0);
  private waiting: (() => void) | null = null;
  /** Set when the server has closed its side. */
  closedAtMs = 0;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.waiting?.();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closedAtMs = performance.now();
      this.waiting?.();
    });
  }

  send(target: string): void {
    this.socket.write(`GET ${target} HTTP/1.1\r\nHost: app.example\r\n\r\n`);
  }

  /** The next whole response; rejects if the connection closes first or after `timeoutMs`. */
  async response(timeoutMs = 5000): Promise<Response> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const parsed = this.take();
      if (parsed !== null) return parsed;
      if (this.closedAtMs !== 0) throw new Error(`connection closed before a whole response (${JSON.stringify(this.buffered.toString('latin1'))})`);
      const leftMs = deadline - performance.now();
      if (leftMs <= 0) throw new Error(`no whole response within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, leftMs);
        this.waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiting = null;
    }
  }

  /** Waits (bounded) for the server to close the connection. */
  async closed(timeoutMs = 5000): Promise<void> {
    if (this.closedAtMs !== 0) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the connection was not closed within ${timeoutMs} ms`)), timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private take(): Response | null {
    const headEnd = this.buffered.indexOf('\r\n\r\n');
    if (headEnd === -1) return null;
    const lines = this.buffered.subarray(0, headEnd).toString('latin1').split('\r\n');
    const flat: string[] = [];
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      flat.push(line.slice(0, colon), line.slice(colon + 1).trim());
    }
    const headers = fields(flat);
    const length = Number(headers.get('content-length')?.[0] ?? Number.NaN);
    assert.ok(Number.isInteger(length), `a Content-Length in ${lines.join(' | ')}`);
    if (this.buffered.length < headEnd + 4 + length) return null;
    const body = this.buffered.subarray(headEnd + 4, headEnd + 4 + length).toString();
    this.buffered = this.buffered.subarray(headEnd + 4 + length);
    return { status: Number((lines[0] ?? '').split(' ')[1]), headers, body };
  }
}

test('a request sent on an idle keep-alive connection just after close() began is served, with Connection: close', async (t) => {
  const cleanup = cleanupFor(t);
  // Content-Length framing, which the raw client reads.
  const backend = await startBackend('a', (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 1 }).end('a');
  });
  cleanup(() => backend.close());
  const lb = await startLb({ backends: [backend.url], log: { level: 'silent' } });
  cleanup(() => lb.close());

  const client = new KeepAliveClient(lb.address.port);
  cleanup(() => client.socket.destroy());
  // A second client stays idle throughout: it is closed once the linger is over.
  const idle = new KeepAliveClient(lb.address.port);
  cleanup(() => idle.socket.destroy());
  for (const c of [client, idle]) {
    c.send('/first');
    const first = await c.response();
    assert.equal(first.status, 200);
    assert.deepEqual(first.headers.get('connection'), ['keep-alive']);
  }

  const closeStartedMs = performance.now();
  const closing = lb.close();
  // The scenario itself: the next request leaves the client a moment after the shutdown began,
  // well inside the 250 ms linger (both timers run on this event loop, so this one comes first).
  await new Promise((resolve) => setTimeout(resolve, 20));
  client.send('/second');
  const second = await client.response();
  assert.equal(second.status, 200);
  assert.equal(second.body, 'a');
  assert.deepEqual(second.headers.get('connection'), ['close'], 'the client is asked to close');
  await client.closed();
  await idle.closed();
  await closing;
  t.diagnostic(`idle connection closed ${(idle.closedAtMs - closeStartedMs).toFixed(0)} ms after close() began (linger 250 ms)`);
  assert.ok(idle.closedAtMs - closeStartedMs >= 240, 'the idle connection was left open for the linger');
  assert.deepEqual(
    backend.seen.map((r) => r.url),
    ['/first', '/first', '/second'],
  );
});
