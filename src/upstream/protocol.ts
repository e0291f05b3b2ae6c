import { Client, type Dispatcher } from 'undici';

/**
 * How an upstream's backends are spoken to: `http1` (HTTP/1.1, one request per connection at a
 * time), `h2` (HTTP/2 over TLS, negotiated by ALPN, HTTP/1.1 when the backend does not offer h2)
 * or `h2c` (HTTP/2 over cleartext with prior knowledge, RFC 9113 §3.3).
 */
export const upstreamProtocols = ['http1', 'h2', 'h2c'] as const;
export type UpstreamProtocol = (typeof upstreamProtocols)[number];

/** Streams one HTTP/2 connection carries at once before the pool opens another (undici's default peer limit). */
export const h2StreamsPerConnection = 100;

/** Why `protocol` cannot be used with the backend URL `url`, or null when it can. */
export function protocolProblem(protocol: UpstreamProtocol, url: string): string | null {
  const https = url.startsWith('https:');
  if (protocol === 'h2' && !https) return `protocol h2 is HTTP/2 over TLS: ${url} is http://, use protocol h2c for HTTP/2 over cleartext`;
  if (protocol === 'h2c' && https) return `protocol h2c is HTTP/2 over cleartext: ${url} is https://, use protocol h2`;
  return null;
}

/**
 * The undici Client of one HTTP/1.1 backend connection. For https backends it pins the server
 * name: undici otherwise takes a request's server name from its Host header and reconnects
 * whenever it differs from the connection's, so with the client's Host preserved every new Host
 * would cost a handshake.
 */
export class BackendClient extends Client {
  private readonly servername: string | null;

  constructor(origin: URL, options: Client.Options, servername: string | null) {
    super(origin, options);
    this.servername = servername;
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    // One field on the caller's per-attempt options object, cheaper than a copy per request.
    if (this.servername !== null) (options as { servername?: string }).servername = this.servername;
    return super.dispatch(options, handler);
  }
}
