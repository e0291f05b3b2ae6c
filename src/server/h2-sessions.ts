import http2 from 'node:http2';
import type net from 'node:net';
import { H2Request, H2Response } from '../proxy/h2-stream.js';

/**
 * The HTTP/2 side of a listener: a node:http2 server that never listens itself (the listener's
 * server hands it connections, protocol-switch.ts), the sessions it opened, and their defences:
 * idle timeout, a bound on the streams being served at once, and the rapid reset limit.
 */

export interface H2Settings {
  /** Streams a client may have open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  readonly maxConcurrentStreams: number;
  /** Largest request header list (SETTINGS_MAX_HEADER_LIST_SIZE): the listener's maxHeaderSize. */
  readonly maxHeaderListBytes: number;
  /** A connection with no stream open this long is closed with GOAWAY: the listener's clientKeepAlive. */
  readonly idleTimeoutMs: number;
  /** Told of each connection closed for rapid reset (its client's address), to log it. */
  readonly onRapidReset: (clientIp: string) => void;
}

export type StreamHandler = (req: H2Request, res: H2Response) => void;

/**
 * Streams a client may cancel before their response starts, per connection and window, before
 * the connection is closed with GOAWAY ENHANCE_YOUR_CALM (CVE-2023-44487, "rapid reset"). A
 * browser cancels a few on navigation; an attacker thousands a second.
 */
export const rapidResetLimit = 100;
export const rapidResetWindowMs = 10_000;

/** Header fields per request, as node:http's default maxHeadersCount (cookie crumbs count one each). */
const maxHeaderListPairs = 2000;

const { NGHTTP2_NO_ERROR, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

class SessionState {
  readonly session: http2.ServerHttp2Session;
  readonly owner: H2Sessions;
  /** Streams the client opened and that are not closed yet. */
  open = 0;
  /** Streams handed to the request path and not closed yet; bounded by maxConcurrentStreams. */
  running = 0;
  /**
   * Requests not served yet, flat (request, response, …): each is served on the turn after its
   * HEADERS frame, once the rest of that read is processed, so a stream the client opened and
   * reset in one write never costs a backend anything; and only while `running` is below the limit.
   */
  readonly waiting: (H2Request | H2Response)[] = [];
  drainScheduled = false;
  cancelled = 0;
  windowStartMs = 0;
  idleTimer: NodeJS.Timeout | null = null;

  constructor(session: http2.ServerHttp2Session, owner: H2Sessions) {
    this.session = session;
    this.owner = owner;
  }
}

const kState = Symbol('switchyard.h2session');
interface StatefulStream extends http2.ServerHttp2Stream {
  [kState]?: SessionState;
}
interface StatefulSession extends http2.ServerHttp2Session {
  [kState]?: SessionState;
}

function idleOut(state: SessionState): void {
  state.idleTimer = null;
  if (state.open === 0) state.session.close();
}

function armIdle(state: SessionState): void {
  state.idleTimer = setTimeout(idleOut, state.owner.settings.idleTimeoutMs, state);
  state.idleTimer.unref();
}

function onSessionStream(this: StatefulSession, stream: StatefulStream): void {
  const state = this[kState] as SessionState;
  stream[kState] = state;
  state.open++;
  if (state.idleTimer !== null) {
    clearTimeout(state.idleTimer);
    state.idleTimer = null;
  }
  stream.once('close', onStreamClose);
}

function onStreamClose(this: StatefulStream): void {
  const state = this[kState] as SessionState;
  state.open--;
  // Cancelled by the client before any response: what a rapid reset is made of.
  if (this.rstCode !== NGHTTP2_NO_ERROR && !this.headersSent) countCancel(state);
  if (state.open === 0 && !state.session.destroyed && !state.session.closed) armIdle(state);
}

function countCancel(state: SessionState): void {
  const now = performance.now();
  if (now - state.windowStartMs > rapidResetWindowMs) {
    state.windowStartMs = now;
    state.cancelled = 0;
  }
  if (++state.cancelled <= rapidResetLimit || state.session.destroyed) return;
  state.owner.settings.onRapidReset(state.session.socket?.remoteAddress ?? '');
  state.session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
  state.session.destroy();
}

function onSessionClose(this: StatefulSession): void {
  const state = this[kState] as SessionState;
  if (state.idleTimer !== null) clearTimeout(state.idleTimer);
  state.idleTimer = null;
  state.waiting.length = 0;
  state.owner.sessions.delete(state);
}

function scheduleDrain(state: SessionState): void {
  if (state.drainScheduled) return;
  state.drainScheduled = true;
  setImmediate(drainWaiting, state);
}

function onRunningClose(this: StatefulStream): void {
  const state = this[kState] as SessionState;
  state.running--;
  if (state.waiting.length > 0) scheduleDrain(state);
}

function drainWaiting(state: SessionState): void {
  state.drainScheduled = false;
  const max = state.owner.settings.maxConcurrentStreams;
  const waiting = state.waiting;
  let i = 0;
  for (; i < waiting.length && state.running < max; i += 2) {
    const req = waiting[i] as H2Request;
    // Reset while it waited: it costs the backends nothing.
    if (!req.stream.closed && !req.stream.destroyed) serve(state, req, waiting[i + 1] as H2Response);
  }
  waiting.splice(0, i);
}

function serve(state: SessionState, req: H2Request, res: H2Response): void {
  state.running++;
  req.stream.once('close', onRunningClose);
  state.owner.handler(req, res);
}

function ignoreError(): void {}

/** The node:http2 server of one listener and the sessions open on it. */
export class H2Sessions {
  readonly server: http2.Http2Server;
  readonly settings: H2Settings;
  readonly handler: StreamHandler;
  readonly sessions = new Set<SessionState>();
  /** h2c connections whose first bytes have not said their protocol yet (protocol-switch.ts). */
  readonly undecided = new Set<net.Socket>();
  /** Requests that arrived before the listener was ready (held as node:http's are); null once released. */
  private held: [H2Request, H2Response][] | null = [];
  private closing = false;

  constructor(settings: H2Settings, handler: StreamHandler) {
    this.settings = settings;
    this.handler = handler;
    this.server = http2.createServer(
      {
        settings: { maxConcurrentStreams: settings.maxConcurrentStreams, maxHeaderListSize: settings.maxHeaderListBytes, enablePush: false },
        maxHeaderListPairs,
        Http2ServerRequest: H2Request,
        Http2ServerResponse: H2Response as unknown as typeof http2.Http2ServerResponse<H2Request>,
      },
      (req, res) => this.onRequest(req, res as unknown as H2Response),
    );
    this.server.on('session', (session: StatefulSession) => {
      const state = new SessionState(session, this);
      session[kState] = state;
      this.sessions.add(state);
      session.on('stream', onSessionStream);
      session.once('close', onSessionClose);
      // A client's protocol error ends its own session (GOAWAY); nothing for the others to see.
      session.on('error', ignoreError);
      armIdle(state);
      // Accepted just before close(): GOAWAY at once.
      if (this.closing) session.close();
    });
    this.server.on('sessionError', ignoreError);
  }

  /** Serves a connection that speaks HTTP/2: a TLS socket that chose `h2`, or a cleartext one that sent the preface. */
  accept(socket: net.Socket): void {
    this.server.emit('connection', socket);
  }

  /** The listener is ready: serves what was held and everything after. */
  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const [req, res] of held) this.onRequest(req, res);
  }

  private onRequest(req: H2Request, res: H2Response): void {
    if (this.held !== null) {
      this.held.push([req, res]);
      return;
    }
    // Node emits the request a tick after its HEADERS frame: a stream reset in the same read is gone already.
    if (req.stream.destroyed) return;
    // The compatibility layer's 'stream' listener runs before onSessionStream: the session has the state.
    const state = (req.stream.session as StatefulSession)[kState];
    if (state === undefined) return this.handler(req, res);
    state.waiting.push(req, res);
    scheduleDrain(state);
  }

  /** Sends GOAWAY on every connection: open streams finish, no new ones start (RFC 9113 section 6.8). */
  close(): void {
    this.closing = true;
    for (const state of this.sessions) if (!state.session.closed) state.session.close();
  }

  /** Closes every connection at once, those still undecided too; streams still open are cut. */
  destroy(): void {
    for (const state of [...this.sessions]) state.session.destroy();
    for (const socket of [...this.undecided]) socket.destroy();
  }
}
