import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { start, type StartOptions, type Switchyard } from '../../src/index.js';

/** A real HTTP backend on 127.0.0.1 with an ephemeral port. */
export interface TestBackend {
  readonly server: http.Server;
  readonly port: number;
  readonly url: string;
  /** Requests this backend has seen (method, url, headers). */
  readonly seen: { method: string; url: string; headers: http.IncomingHttpHeaders; rawHeaders: string[] }[];
  close(): Promise<void>;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** Answers `name` as body and `x-backend: name`, unless a handler is given. */
export async function startBackend(name: string, handler?: Handler, port = 0): Promise<TestBackend> {
  const seen: TestBackend['seen'] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders });
    if (handler !== undefined) return handler(req, res);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'x-backend': name, 'content-type': 'text/plain' });
      res.end(name);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    server,
    port: actual,
    url: `http://127.0.0.1:${actual}`,
    seen,
    close: () => closeServer(server),
  };
}

export function closeServer(server: http.Server | net.Server): Promise<void> {
  return new Promise((resolve) => {
    if ('closeAllConnections' in server) server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** A port nothing listens on: bound once to get a free number, then released. */
export async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts Switchyard on 127.0.0.1:0 with logs collected in memory (JSON lines). */
export async function startLb(options: Partial<StartOptions> & Pick<StartOptions, 'backends'>): Promise<Switchyard & { logs: Record<string, unknown>[] }> {
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const lb = await start({ port: 0, host: '127.0.0.1', log: { format: 'json', level: 'info', destination }, ...options });
  return Object.assign(lb, { logs });
}

/** How often until() looks again: often enough for tests, rare enough to leave the CPU to the code under test. */
const untilPollMs = 5;

/**
 * Waits until `predicate` is true, looking again every few milliseconds on a timer (never a
 * busy loop: child processes and the code under test need the cores), for at most `timeoutMs`.
 */
export async function until(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    const leftMs = deadline - performance.now();
    if (leftMs <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(untilPollMs, leftMs)));
  }
}
