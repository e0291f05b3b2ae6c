/** How an upstream's requests and responses are rewritten on the way (the listener adds its trusted proxies). */
export interface UpstreamForwarding {
  /** Keep the client's Host header (default), or let the backend's own host:port be sent. */
  readonly preserveHost: boolean;
  /** Our Via pseudonym, e.g. `switchyard`. */
  readonly viaName: string;
  /** `1.1 <viaName>`, the Via entry of almost every request, built once. */
  readonly via11: string;
  /**
   * Rewrite a response's `Location` and `Content-Location` that name the backend's own address
   * to the address the client used (as nginx's `proxy_redirect default`).
   */
  readonly rewriteLocation: boolean;
}
