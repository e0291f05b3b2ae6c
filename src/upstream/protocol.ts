/**
 * How an upstream's backends are spoken to: `http1` (HTTP/1.1, one request per connection at a
 * time), `h2` (HTTP/2 over TLS, negotiated by ALPN, HTTP/1.1 when the backend does not offer h2)
 * or `h2c` (HTTP/2 over cleartext with prior knowledge, RFC 9113 §3.3).
 */
export const upstreamProtocols = ['http1', 'h2', 'h2c'] as const;
export type UpstreamProtocol = (typeof upstreamProtocols)[number];

/** Streams one HTTP/2 connection carries at once before the pool opens another (undici's default peer limit). */
export const h2StreamsPerConnection = 100;

/** Interim (1xx) responses one request may get before its final one (RFC 9110 §15.2 sets no limit): each is relayed, a 103 to the client without backpressure. */
export const maxInterimResponses = 100;

/** Why `protocol` cannot be used with the backend URL `url`, or null when it can. */
export function protocolProblem(protocol: UpstreamProtocol, url: string): string | null {
  const https = url.startsWith('https:');
  if (protocol === 'h2' && !https) return `protocol h2 is HTTP/2 over TLS: ${url} is http://, use protocol h2c for HTTP/2 over cleartext`;
  if (protocol === 'h2c' && https) return `protocol h2c is HTTP/2 over cleartext: ${url} is https://, use protocol h2`;
  return null;
}
