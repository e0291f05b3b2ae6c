import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { closeServer } from '../helpers/servers.js';
import type { ConfigInput } from '../../src/index.js';

/**
 * What the listener's own HTTP/1.1 path tests share: one Switchyard with two cleartext listeners
 * in front of the same backend, `fast` (the own path) and `node` (h2c on, so node:http reads
 * every HTTP/1.1 connection, as before the own path), a raw client that sends exact bytes in
 * separate reads, and a parser for the responses that come back.
 */

/** A request as the backend received it. */
export interface Seen {
  readonly method: string;
  readonly url: string;
  readonly body: string;
}

export interface Pair {
  readonly lb: Awaited<ReturnType<typeof startConfigured>>;
  readonly fast: number;
  readonly node: number;
  readonly seen: Seen[];
  /** Requests to `/hold` wait until this is called. */
  release(): void;
  readonly held: http.ServerResponse[];
}

/** Answers written byte for byte by the backend (RFC 9110 sections 6.4.1, 15.2 and 15.3.5, 15.4.5). */
export const rawAnswers: Readonly<Record<string, string>> = {
  '/raw/204-with-body': 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello',
  '/raw/204-chunked': 'HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
  '/raw/304-with-length': 'HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: "x"\r\nConnection: close\r\n\r\n',
  '/raw/200-close-delimited': 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close',
  '/raw/103-then-200': 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok',
  '/raw/100-then-200': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok',
  '/raw/head-length': 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n',
};

export const bigBody = Buffer.alloc(8 * 1024 * 1024, 0x62);

/**
 * The backend: answers `METHOD URL LENGTH:BODY` with a Content-Length; `/hold` waits for
 * release(); `/early` answers at once without reading the body; `/nolength` answers without a length; `/hints` sends 103 first; `/trailers` ends a
 * chunked body with a trailer.
 */
function backendHandler(seen: Seen[], held: http.ServerResponse[]) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (req.url === '/early') {
      // Answers before the body is in, and reads none of it.
      res.writeHead(200, { 'content-length': '5' });
      res.end('early');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('latin1');
      seen.push({ method: req.method ?? '', url: req.url ?? '', body });
      const path = (req.url ?? '').split('?')[0] as string;
      if (path === '/hold') return void held.push(res);
      const raw = rawAnswers[path];
      if (raw !== undefined) {
        // Bytes node:http would not write itself; the connection closes after them (and says so).
        req.socket.end(raw, 'latin1');
        return;
      }
      if (path === '/big') {
        res.writeHead(200, { 'content-length': String(bigBody.length) });
        res.end(bigBody);
        return;
      }
      if (path === '/nolength') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('part1-');
        res.end('part2');
        return;
      }
      if (path === '/hints') {
        res.writeEarlyHints({ link: '</a.css>; rel=preload' });
        res.writeHead(200, { 'content-length': '2' });
        res.end('ok');
        return;
      }
      if (path === '/trailers') {
        res.writeHead(200, { trailer: 'x-t', 'content-type': 'text/plain' });
        res.write('abc');
        res.addTrailers({ 'x-t': 'v' });
        res.end();
        return;
      }
      const text = `${req.method} ${req.url} ${body.length}:${body}`;
      res.writeHead(200, { 'content-length': Buffer.byteLength(text, 'latin1'), 'content-type': 'text/plain' });
      res.end(text, 'latin1');
    });
  };
}

export async function startPair(t: TestContext, listener: Record<string, unknown> = {}, extra: Partial<ConfigInput> = {}): Promise<Pair> {
  const cleanup = cleanupFor(t);
  const seen: Seen[] = [];
  const held: http.ServerResponse[] = [];
  const backend = http.createServer(backendHandler(seen, held));
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  cleanup(() => closeServer(backend));
  const url = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
  const config = localConfig({ web: { backends: [url], retry: { retriesPerBackend: 0, maxBackends: 1 } } } as ConfigInput['upstreams'], {
    listeners: [
      { host: '127.0.0.1', port: 0, ...listener },
      { host: '127.0.0.1', port: 0, h2c: true, ...listener },
    ],
    ...extra,
  } as Partial<ConfigInput>);
  const lb = await startConfigured({ config });
  cleanup(() => lb.close());
  const [fast, node] = lb.urls.map((u) => Number(new URL(u).port));
  return {
    lb,
    fast: fast as number,
    node: node as number,
    seen,
    held,
    release() {
      for (const res of held.splice(0)) {
        res.writeHead(200, { 'content-length': '4' });
        res.end('held');
      }
    },
  };
}

/** Failures counted against any backend of the pair's upstream (client hang-ups must never count). */
export function backendFailures(pair: Pair): number {
  let total = 0;
  for (const upstream of pair.lb.upstreams.values()) for (const backend of upstream.backends) total += backend.failuresTotal;
  return total;
}

/** Lets the bytes written so far leave as their own segment before the next write (separate reads). */
export function gap(ms = 2): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** An open raw connection that collects every byte the server sends. */
export class RawClient {
  readonly socket: net.Socket;
  readonly chunks: Buffer[] = [];
  ended = false;
  closed = false;
  error: NodeJS.ErrnoException | null = null;
  private readonly ready: Promise<void>;
  private waiters: (() => void)[] = [];

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setNoDelay(true);
    this.ready = new Promise((resolve) => this.socket.once('connect', () => resolve()));
    this.socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.wake();
    });
    this.socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      this.error = err;
      this.wake();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async open(port: number): Promise<RawClient> {
    const client = new RawClient(port);
    await client.ready;
    return client;
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Writes each part as its own segment (a short gap between them). */
  async send(...parts: (string | Buffer)[]): Promise<void> {
    await this.ready;
    for (let i = 0; i < parts.length; i++) {
      if (i > 0) await gap();
      this.socket.write(parts[i] as string | Buffer, 'latin1');
    }
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  /** Waits (at most `timeoutMs`) until `predicate` holds, looking again on every socket event. */
  async until(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!predicate()) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.bytes.toString('latin1').slice(0, 2000))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for `count` complete responses (`heads` marks HEAD requests by position). */
  async responses(count: number, heads: readonly boolean[] = [], timeoutMs = 5000): Promise<Parsed[]> {
    await this.until(() => parseResponses(this.bytes, heads, this.ended).length >= count || this.closed, timeoutMs, `${count} responses`);
    return parseResponses(this.bytes, heads, this.ended || this.closed);
  }

  /** Waits until the server closed the connection. */
  async closedByServer(timeoutMs = 5000): Promise<void> {
    await this.until(() => this.ended || this.closed, timeoutMs, 'the server to close');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface Parsed {
  readonly status: number;
  readonly head: string;
  readonly headers: Map<string, string>;
  readonly body: string;
  /** Interim (1xx) responses before this one. */
  readonly interim: number[];
  readonly trailers: string;
}

/**
 * The complete responses at the start of `bytes` (RFC 9112 section 6.3): 1xx are collected
 * as interim, HEAD/204/304 have no body, then Content-Length, chunked, or (when `ended`)
 * everything up to the close.
 */
export function parseResponses(bytes: Buffer, heads: readonly boolean[], ended: boolean): Parsed[] {
  const out: Parsed[] = [];
  const text = bytes.toString('latin1');
  let at = 0;
  let interim: number[] = [];
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end === -1) break;
    const lines = text.slice(at, end).split('\r\n');
    const status = Number((lines[0] ?? '').split(' ')[1]);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
    }
    let bodyStart = end + 4;
    if (status >= 100 && status < 200) {
      interim.push(status);
      at = bodyStart;
      continue;
    }
    let body = '';
    let trailers = '';
    const isHead = heads[out.length] === true;
    if (isHead || status === 204 || status === 304) {
      // no body
    } else if (headers.has('transfer-encoding')) {
      let p = bodyStart;
      let done = false;
      while (true) {
        const lineEnd = text.indexOf('\r\n', p);
        if (lineEnd === -1) break;
        const size = parseInt(text.slice(p, lineEnd), 16);
        if (size === 0) {
          const trailerEnd = text.indexOf('\r\n\r\n', lineEnd);
          const blank = text.startsWith('\r\n', lineEnd + 2);
          if (blank) {
            bodyStart = lineEnd + 4;
            done = true;
          } else if (trailerEnd !== -1) {
            trailers = text.slice(lineEnd + 2, trailerEnd);
            bodyStart = trailerEnd + 4;
            done = true;
          }
          break;
        }
        if (text.length < lineEnd + 2 + size + 2) break;
        body += text.slice(lineEnd + 2, lineEnd + 2 + size);
        p = lineEnd + 2 + size + 2;
      }
      if (!done) break;
    } else if (headers.has('content-length')) {
      const length = Number(headers.get('content-length'));
      if (text.length < bodyStart + length) break;
      body = text.slice(bodyStart, bodyStart + length);
      bodyStart += length;
    } else {
      if (!ended) break;
      body = text.slice(bodyStart);
      bodyStart = text.length;
    }
    out.push({ status, head: text.slice(at, end), headers, body, interim, trailers });
    interim = [];
    at = bodyStart;
  }
  return out;
}

/** Sends `parts` on a fresh connection and returns every response until the server closes (or `timeoutMs`). */
export async function exchange(port: number, parts: readonly (string | Buffer)[], heads: readonly boolean[] = [], timeoutMs = 3000): Promise<{ responses: Parsed[]; closed: boolean; raw: string }> {
  const client = await RawClient.open(port);
  try {
    await client.send(...parts);
    await client.until(() => client.ended || client.closed, timeoutMs, 'close').catch(() => undefined);
    return { responses: parseResponses(client.bytes, heads, true), closed: client.ended || client.closed, raw: client.bytes.toString('latin1') };
  } finally {
    client.destroy();
  }
}
