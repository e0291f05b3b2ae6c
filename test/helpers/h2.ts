import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { IssuedCert } from './tls.js';

export type H2Handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

/** A real HTTP/2 backend (node:http2) on 127.0.0.1: h2c, or h2 over TLS when given a certificate. */
export interface H2Backend {
  readonly server: http2.Http2Server | http2.Http2SecureServer;
  readonly port: number;
  /** `http://127.0.0.1:PORT`, or https:// with TLS. */
  readonly url: string;
  /** HTTP version of each request seen, in order ('2.0', or '1.1' for a TLS fallback). */
  readonly versions: string[];
  /** Paths of the requests seen, in order. */
  readonly paths: string[];
  /** Open HTTP/2 sessions, and the number opened since start. */
  readonly sessions: Set<http2.ServerHttp2Session>;
  sessionsOpened(): number;
  close(): Promise<void>;
}

export interface H2BackendOptions {
  /** Serve h2 over TLS with this certificate (ALPN h2, and http/1.1 when `allowHTTP1`). */
  readonly cert?: IssuedCert;
  readonly allowHTTP1?: boolean;
  readonly handler?: H2Handler;
}

/** Starts an HTTP/2 backend; by default it answers 200 `name` after reading the request body. */
export async function startH2Backend(name: string, options: H2BackendOptions = {}): Promise<H2Backend> {
  const versions: string[] = [];
  const paths: string[] = [];
  const sessions = new Set<http2.ServerHttp2Session>();
  let opened = 0;
  const onRequest = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void => {
    versions.push(req.httpVersion);
    paths.push(req.url);
    if (options.handler !== undefined) return options.handler(req, res);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'x-backend': name, 'content-type': 'text/plain' });
      res.end(name);
    });
  };
  const server =
    options.cert === undefined
      ? http2.createServer(onRequest)
      : http2.createSecureServer({ cert: options.cert.cert, key: options.cert.key, allowHTTP1: options.allowHTTP1 ?? false }, onRequest);
  server.on('session', (session: http2.ServerHttp2Session) => {
    opened++;
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `${options.cert === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    versions,
    paths,
    sessions,
    sessionsOpened: () => opened,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}
