import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { closeServer, startBackend, type TestBackend } from './servers.js';

/**
 * A TCP server on 127.0.0.1:0 that resets (RST, not FIN) every connection as soon as the first
 * request bytes arrive, like a backend process that crashes on every request. A connection that
 * sends nothing (a TCP health probe) is left alone: resetting right at accept races the probe's
 * own connect on loopback and would make the start-up health check mark the server down.
 */
export interface ResetServer {
  readonly port: number;
  readonly url: string;
  /** Connections that sent request bytes and were reset: one per attempt. */
  readonly attempts: number;
  /** Every connection accepted, health probes included. */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startResetServer(): Promise<ResetServer> {
  let connections = 0;
  let attempts = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.on('error', () => {});
    socket.once('data', () => {
      attempts++;
      socket.resetAndDestroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    get attempts() {
      return attempts;
    },
    get connections() {
      return connections;
    },
    close: () => closeServer(server),
  };
}

/** Collects a request body as a Buffer. */
export function readBody(req: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A backend whose requests and bodies are recorded. */
export interface RecordingBackend extends TestBackend {
  /** Body of each request, in arrival order. */
  readonly bodies: Buffer[];
}

/** Answers 200 with `x-backend: name` and echoes the request body back. */
export async function startEchoBackend(name: string, port = 0): Promise<RecordingBackend> {
  const bodies: Buffer[] = [];
  const backend = await startBackend(
    name,
    (req, res) => {
      void readBody(req).then((body) => {
        bodies.push(body);
        res.writeHead(200, { 'x-backend': name, 'content-type': 'application/octet-stream', 'content-length': body.length });
        res.end(body);
      });
    },
    port,
  );
  return Object.assign(backend, { bodies });
}

/**
 * Reads each request in full (headers and body), then resets the connection without answering:
 * the backend may have acted on the request, so only an idempotent, replayable one may be retried.
 */
export async function startResetAfterReadBackend(name: string): Promise<RecordingBackend> {
  const bodies: Buffer[] = [];
  const backend = await startBackend(name, (req) => {
    void readBody(req).then((body) => {
      bodies.push(body);
      req.socket.resetAndDestroy();
    });
  });
  return Object.assign(backend, { bodies });
}

/**
 * A port that passes the load balancer's start-up health check and then dies: a listener that
 * the caller closes (`kill`) once the load balancer has started. Connections to it are refused
 * afterwards, while the load balancer still believes the backend is up.
 */
export interface DyingPort {
  readonly port: number;
  readonly url: string;
  kill(): Promise<void>;
}

export async function startDyingPort(): Promise<DyingPort> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  let killed: Promise<void> | null = null;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    kill: () => (killed ??= closeServer(server)),
  };
}

/**
 * A listening port that never completes a TCP handshake: a child process listens with a backlog
 * of 1 and then blocks its event loop, so it never accepts; once its accept queue is full the
 * kernel drops further SYNs and a connect attempt hangs until the caller's timeout (Linux).
 */
export interface Blackhole {
  readonly port: number;
  readonly url: string;
  /** Fills the accept queue (done by startBlackhole unless told not to); from then on connects hang. */
  fill(): Promise<void>;
  close(): Promise<void>;
}

const blackholeScript = `
const server = require('node:net').createServer();
server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
  // Synchronous write then block at once: the event loop never runs again, so nothing is accepted.
  require('node:fs').writeSync(1, server.address().port + '\\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
});
`;

/**
 * `fill: false` leaves the accept queue open, so a few connections (a health probe) still
 * succeed until the caller calls fill().
 */
export async function startBlackhole(options: { fill?: boolean } = {}): Promise<Blackhole> {
  const child = spawn(process.execPath, ['-e', blackholeScript], { stdio: ['ignore', 'pipe', 'inherit'] });
  const fillers: net.Socket[] = [];
  const close = async (): Promise<void> => {
    for (const socket of fillers) socket.destroy();
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('blackhole child did not report its port within 5 s')), 5000);
      child.stdout.once('data', (data: Buffer) => {
        clearTimeout(timer);
        resolve(Number(data.toString().trim()));
      });
      child.once('exit', () => reject(new Error('blackhole child exited')));
    });
    // Fill the accept queue: connect until one connection does not open within 200 ms.
    const fill = async (): Promise<void> => {
      for (let i = 0; ; i++) {
        if (i === 16) throw new Error('could not fill the accept queue of the blackhole listener');
        const socket = net.connect(port, '127.0.0.1');
        socket.on('error', () => {});
        fillers.push(socket);
        const opened = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 200);
          socket.once('connect', () => {
            clearTimeout(timer);
            resolve(true);
          });
        });
        if (!opened) return;
      }
    };
    if (options.fill !== false) await fill();
    return { port, url: `http://127.0.0.1:${port}`, fill, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** A TCP server that counts connections and closes each at once (for counting health probes). */
export interface CountingServer {
  readonly port: number;
  readonly url: string;
  /** Accept times (performance.now()) of every connection. */
  readonly acceptedAt: number[];
  close(): Promise<void>;
}

export async function startCountingServer(port = 0, host = '127.0.0.1'): Promise<CountingServer> {
  const acceptedAt: number[] = [];
  const server = net.createServer((socket) => {
    acceptedAt.push(performance.now());
    socket.on('error', () => {});
    socket.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actual = (server.address() as AddressInfo).port;
  return { port: actual, url: `http://127.0.0.1:${actual}`, acceptedAt, close: () => closeServer(server) };
}

/** A backend that reads each request and never answers; `held` has the unanswered responses. */
export interface HoldingBackend extends TestBackend {
  readonly held: http.ServerResponse[];
}

export async function startHoldingBackend(name: string): Promise<HoldingBackend> {
  const held: http.ServerResponse[] = [];
  const backend = await startBackend(name, (req, res) => {
    req.resume();
    held.push(res);
  });
  return Object.assign(backend, { held });
}
