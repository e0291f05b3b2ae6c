import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { Backend } from '../upstream/backend.js';
import { loadUndici } from '../undici-loader.js';
import { statusExpected, type ActiveHealthOptions, type StatusRange } from './options.js';

/** An HTTP check reads at most this much of a body looking for `bodyContains`. */
export const bodyCheckLimitBytes = 64 * 1024;

const ignore = (): void => {};

/**
 * Resolves when a TCP connection to the backend opens within `timeoutMs`, rejects otherwise or
 * when `signal` aborts. (Not net.connect's own `signal` option: on Node 20 it leaves one abort
 * listener on the signal per socket, a slow leak for a checker that probes forever.)
 * For an https backend the check passes once a TLS handshake completes with the backend's own
 * verification and server name (HAProxy's `check-ssl`): a backend whose certificate fails
 * verification is down, rather than up and failing every request.
 */
export function tcpProbe(backend: Backend, timeoutMs: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new Error('health check aborted'));
      return;
    }
    const tlsOptions = backend.tlsConnectOptions;
    const socket =
      tlsOptions === null
        ? net.connect({ host: backend.hostname, port: backend.port })
        : tls.connect({ ...tlsOptions, ALPNProtocols: [...tlsOptions.ALPNProtocols], host: backend.hostname, port: backend.port });
    const onAbort = (): void => {
      socket.destroy(new Error('health check aborted'));
    };
    const settle = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    };
    const timer = setTimeout(() => socket.destroy(new Error(`no ${tlsOptions === null ? 'connection' : 'TLS handshake'} within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once(tlsOptions === null ? 'connect' : 'secureConnect', () => {
      settle();
      resolve();
      if (tlsOptions === null) {
        socket.destroy();
        return;
      }
      // close_notify rather than a reset, so the backend sees its side of the handshake finish
      // (TLS 1.3: the client is done first) and logs no error per check.
      socket.on('error', ignore);
      socket.end();
      const closing = setTimeout(() => socket.destroy(), 1000);
      closing.unref();
      socket.once('close', () => clearTimeout(closing));
    });
    socket.once('error', (err) => {
      settle();
      reject(err);
    });
  });
}

const showRanges = (ranges: readonly StatusRange[]): string => ranges.map(([low, high]) => (low === high ? String(low) : `${low}-${high}`)).join(', ');

/** A response as both clients give it: a status and a body to read, or destroy. */
interface ProbeResponse {
  readonly statusCode: number;
  readonly body: AsyncIterable<Buffer> & { on(event: 'error', listener: () => void): { destroy(): void } };
}

/**
 * Resolves when `method path` on the backend's origin answers with an expected status (and, if
 * set, a body containing `bodyContains`) within `timeoutMs`; rejects with the reason otherwise.
 * Uses a connection of its own, closed after (`Connection: close`, RFC 9112 §9.6), never the
 * backend's proxy pool, so a check neither waits behind nor disturbs client traffic. It speaks
 * the upstream's protocol (HTTP/1.1, h2 or h2c). A plain HTTP/1.1 backend is checked with
 * node:http, so a process whose checks are all of that kind never loads undici (issue 12).
 */
export async function httpProbe(backend: Backend, options: ActiveHealthOptions, signal: AbortSignal): Promise<void> {
  const plain = backend.tlsConnectOptions === null && !backend.multiplexed;
  // Loaded on the first such check, before its clock starts (see loadUndici); tls-connector.js imports undici.
  const undici = plain ? null : await Promise.all([loadUndici(), import('../upstream/tls-connector.js')]);
  if (signal.aborted) throw new Error('health check aborted');
  const { timeoutMs } = options;
  const deadline = new AbortController();
  const onAbort = (): void => deadline.abort(new Error('health check aborted'));
  signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => deadline.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  timer.unref();
  const headers = {
    host: options.host === '' ? backend.origin.slice(backend.origin.indexOf('//') + 2) : options.host,
    'user-agent': 'switchyard-health-check',
    connection: 'close',
  };
  // Resolves once the check's connection is closed, so the check ends with it.
  let closeConnection: (() => Promise<void>) | null = null;
  try {
    let res: ProbeResponse;
    if (undici === null) {
      const request = plainRequest(backend, options, headers, deadline.signal);
      closeConnection = request.close;
      res = await request.response;
    } else {
      const [{ Client }, { backendConnector }] = undici;
      // undici's own timeouts are a backstop; the deadline above covers connect, headers and body together.
      // TLS as for requests: the backend's name and verification, never the check's Host option.
      const backstopMs = timeoutMs + 1000;
      const tlsOptions = backend.tlsConnectOptions;
      // The backend's protocol too: HTTP/2 by ALPN (h2) or with prior knowledge (h2c).
      const h2 = backend.multiplexed;
      const connect = tlsOptions === null ? { timeout: backstopMs, ...(h2 ? { useH2c: true } : {}) } : backendConnector(tlsOptions, backstopMs, h2);
      const client = new Client(backend.origin, { connect, allowH2: backend.multiplexed, headersTimeout: backstopMs, bodyTimeout: backstopMs });
      closeConnection = () => client.destroy();
      res = await client.request({ path: options.path, method: options.method, headers, signal: deadline.signal });
    }
    try {
      if (!statusExpected(res.statusCode, options.expectStatus)) {
        throw new Error(`status ${res.statusCode} is not one of ${showRanges(options.expectStatus)}`);
      }
      if (options.bodyContains !== '' && !(await bodyHas(res.body, Buffer.from(options.bodyContains)))) {
        throw new Error(`body has no "${options.bodyContains}" in its first ${bodyCheckLimitBytes} bytes`);
      }
    } finally {
      // Destroying an unread body may emit an abort error: nobody needs it, the check is decided.
      res.body.on('error', ignore).destroy();
    }
  } catch (err) {
    throw deadline.signal.aborted ? (deadline.signal.reason as Error) : err;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    await closeConnection?.();
  }
}

/** The check's request over node:http, on a connection of its own; `signal` destroys it. */
function plainRequest(backend: Backend, options: ActiveHealthOptions, headers: Record<string, string>, signal: AbortSignal): { response: Promise<ProbeResponse>; close: () => Promise<void> } {
  const req = http.request({ host: backend.hostname, port: backend.port, method: options.method, path: options.path, headers, agent: false, signal });
  const closed = new Promise<void>((resolve) => req.once('close', resolve));
  const response = new Promise<ProbeResponse>((resolve, reject) => {
    req.once('response', (res) => resolve({ statusCode: res.statusCode ?? 0, body: res }));
    req.on('error', reject);
  });
  req.end();
  return {
    response,
    close: () => {
      req.destroy();
      return closed;
    },
  };
}

/** Reads up to bodyCheckLimitBytes of `body`, stopping as soon as `needle` is seen. */
async function bodyHas(body: AsyncIterable<Buffer>, needle: Buffer): Promise<boolean> {
  const seen = Buffer.allocUnsafe(bodyCheckLimitBytes);
  let filled = 0;
  for await (const chunk of body) {
    const take = Math.min(chunk.length, bodyCheckLimitBytes - filled);
    chunk.copy(seen, filled, 0, take);
    // Search only where a match could newly end: the new bytes plus needle.length - 1 before them.
    const from = Math.max(0, filled - needle.length + 1);
    filled += take;
    if (seen.subarray(0, filled).indexOf(needle, from) !== -1) return true;
    if (filled === bodyCheckLimitBytes) return false;
  }
  return false;
}
