import type http from 'node:http';
import type net from 'node:net';
import type tls from 'node:tls';

/**
 * Which protocol serves a client connection: the listener's node:http(s) server keeps HTTP/1.1
 * (its limits, timeouts, upgrades and graceful close unchanged) and HTTP/2 connections go to
 * `toH2`. Over TLS, ALPN decided (RFC 9113 section 3.2); in cleartext with `h2c`, the first bytes
 * do: the connection preface of RFC 9113 section 3.4 ("prior knowledge"), or HTTP/1.1.
 */

/** The client connection preface (RFC 9113 section 3.4). */
const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

type ConnectionListener = (this: http.Server, socket: net.Socket) => void;

/** Replaces the server's own listener for `event` with `route`, which calls it for HTTP/1.1 connections. */
function intercept(server: http.Server, event: 'connection' | 'secureConnection', route: (http1: ConnectionListener, socket: net.Socket) => void): void {
  const [http1] = server.listeners(event) as ConnectionListener[];
  if (http1 === undefined) throw new Error(`the server has no ${event} listener to route from`);
  server.removeListener(event, http1);
  server.on(event, (socket: net.Socket) => route(http1, socket));
}

/** TLS: sockets whose ALPN chose `h2` go to `toH2`, the others (http/1.1, or no ALPN) stay. */
export function routeByAlpn(server: http.Server, toH2: (socket: net.Socket) => void): void {
  intercept(server, 'secureConnection', (http1, socket) => {
    if ((socket as tls.TLSSocket).alpnProtocol === 'h2') toH2(socket);
    else http1.call(server, socket);
  });
}

/**
 * Cleartext with `h2c`: reads until the bytes differ from the preface (HTTP/1.1, usually at the
 * second byte) or match all 24 of it (HTTP/2), puts them back, and hands the socket on. A
 * connection that sends nothing for `timeoutMs` is closed, as a slow HTTP/1.1 head would be.
 * `undecided` holds the connections still being read, which neither server knows yet: the
 * listener's close destroys them.
 */
export function routeByPreface(server: http.Server, toH2: (socket: net.Socket) => void, timeoutMs: number, undecided: Set<net.Socket>): void {
  intercept(server, 'connection', (http1, socket) => {
    if (socket.destroyed) return;
    new PrefaceSniffer(socket, (isH2) => (isH2 ? toH2(socket) : http1.call(server, socket)), timeoutMs, undecided);
  });
}

class PrefaceSniffer {
  private readonly socket: net.Socket;
  private readonly decide: (isH2: boolean) => void;
  private readonly chunks: Buffer[] = [];
  private seen = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly undecided: Set<net.Socket>;

  constructor(socket: net.Socket, decide: (isH2: boolean) => void, timeoutMs: number, undecided: Set<net.Socket>) {
    this.socket = socket;
    this.decide = decide;
    this.undecided = undecided;
    undecided.add(socket);
    this.timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', this.onData);
    socket.on('error', this.onGone);
    socket.on('close', this.onGone);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    const n = Math.min(chunk.length, preface.length - this.seen);
    for (let i = 0; i < n; i++) {
      if (chunk[i] !== preface[this.seen + i]) return this.done(false);
    }
    this.seen += n;
    if (this.seen === preface.length) this.done(true);
  };

  private readonly onGone = (): void => {
    clearTimeout(this.timer);
    this.undecided.delete(this.socket);
    this.socket.removeListener('data', this.onData);
  };

  private done(isH2: boolean): void {
    const socket = this.socket;
    clearTimeout(this.timer);
    this.undecided.delete(socket);
    socket.removeListener('data', this.onData);
    socket.removeListener('error', this.onGone);
    socket.removeListener('close', this.onGone);
    // The bytes read go back in front, on a paused socket, or the flowing stream would hand them
    // on to nobody: node:http2 reads what is buffered on the next tick, node:http once resumed.
    socket.pause();
    socket.unshift(this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks));
    this.decide(isH2);
    if (!isH2) socket.resume();
  }
}
