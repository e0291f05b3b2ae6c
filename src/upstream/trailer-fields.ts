/**
 * Fields that cannot be sent or acted on after the content (RFC 9110 §6.5.1): framing, routing,
 * request modifiers, authentication, response controls and content format; plus hop-by-hop
 * fields. They are dropped from relayed trailers, both ways, as are pseudo-header fields and
 * malformed ones.
 */
const forbidden = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings',
  'host', 'cache-control', 'expect', 'max-forwards', 'pragma', 'range',
  'authorization', 'proxy-authorization', 'www-authenticate', 'proxy-authenticate', 'cookie', 'set-cookie',
  'age', 'date', 'expires', 'location', 'retry-after', 'vary', 'warning', 'etag', 'last-modified', 'accept-ranges',
]);

/** A field name is a token (RFC 9110 §5.1), lower-cased here; a value has no CR, LF or NUL (§5.5). */
const tokenName = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const fieldValue = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Whether a lower-cased field name may be relayed as a trailer field. */
export function allowedTrailerName(name: string): boolean {
  return tokenName.test(name) && !forbidden.has(name) && !name.startsWith('content-') && !name.startsWith('if-');
}

/** Whether a field value may be relayed (no CR, LF, NUL or other controls). */
export function allowedTrailerValue(value: string): boolean {
  return fieldValue.test(value);
}

/**
 * The trailer fields of a message as node:http and node:http2 give them (an object, names
 * lower-cased, repeated fields joined or listed) that may be relayed; null when none may.
 */
export function relayableTrailers(trailers: NodeJS.Dict<string | string[]>): Record<string, string | string[]> | null {
  let out: Record<string, string | string[]> | null = null;
  for (const key in trailers) {
    const value = trailers[key];
    const name = key.toLowerCase();
    if (value === undefined || !allowedTrailerName(name)) continue;
    if (typeof value === 'string') {
      if (allowedTrailerValue(value)) (out ??= {})[name] = value;
      continue;
    }
    const kept = value.filter(allowedTrailerValue);
    if (kept.length !== 0) (out ??= {})[name] = kept;
  }
  return out;
}
