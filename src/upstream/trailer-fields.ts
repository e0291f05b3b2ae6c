/**
 * Which fields may travel in a trailer section, in either direction: none that must be known
 * before the content or is acted on per hop (RFC 9110 §6.5.1): framing, routing, request
 * modifiers, authentication, response controls and content format; plus hop-by-hop fields.
 */
const forbidden = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings',
  'host', 'cache-control', 'expect', 'max-forwards', 'pragma', 'range',
  'authorization', 'proxy-authorization', 'www-authenticate', 'proxy-authenticate', 'cookie', 'set-cookie',
  'age', 'date', 'expires', 'location', 'retry-after', 'vary', 'warning', 'etag', 'last-modified', 'accept-ranges',
]);

/** A field name is a token (RFC 9110 §5.1), lower-cased here; a value has no CR, LF, NUL or other CTL but HTAB (§5.5). */
const tokenName = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const fieldValue = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Whether a lower-cased name may be sent as a trailer field. */
export function isAllowedTrailerField(name: string): boolean {
  return tokenName.test(name) && !forbidden.has(name) && !name.startsWith('content-') && !name.startsWith('if-');
}

export function isValidFieldValue(value: string): boolean {
  return fieldValue.test(value);
}
