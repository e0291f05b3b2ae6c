import { buildConnector } from 'undici';
import type { BackendTlsConnectOptions } from './tls.js';

/**
 * An undici connector for one https backend. undici passes the server name of the request that
 * opened the connection (derived from its Host header); this connector ignores it and always
 * uses the backend's own (`tlsOptions.servername`, absent for an IP backend). With `allowH2` it
 * offers HTTP/2 by ALPN (protocol h2).
 */
export function backendConnector(tlsOptions: BackendTlsConnectOptions, timeoutMs: number, allowH2 = false): buildConnector.connector {
  // allowH2 offers `h2` besides `http/1.1` by ALPN (undici then replaces ALPNProtocols).
  const connect = buildConnector({ ...tlsOptions, ALPNProtocols: [...tlsOptions.ALPNProtocols], timeout: timeoutMs, allowH2 });
  // '' is falsy: undici then falls back to the origin's hostname, which is no name for an IP origin.
  const servername = tlsOptions.servername ?? '';
  return (options, callback) => connect({ ...options, servername }, callback);
}
