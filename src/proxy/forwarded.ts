/**
 * Our element of the Forwarded field (RFC 7239): `for=…;proto=…;host=…`, describing the hop
 * from the client to us. Values that are not tokens are sent as quoted-strings (section 4).
 */

/** tchar of RFC 9110 section 5.6.2, by char code. */
const isTchar = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") isTchar[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) isTchar[c] = 1;
for (let c = 65; c <= 90; c++) isTchar[c] = 1;
for (let c = 97; c <= 122; c++) isTchar[c] = 1;

function isToken(value: string): boolean {
  if (value.length === 0) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 128 || isTchar[c] === 0) return false;
  }
  return true;
}

/** `value` as a token when it is one, else as a quoted-string with `"` and `\` escaped (RFC 9110 section 5.6.4). */
export function forwardedValue(value: string): string {
  if (isToken(value)) return value;
  // A host:port needs the quotes but rarely an escape.
  if (value.indexOf('"') === -1 && value.indexOf('\\') === -1) return `"${value}"`;
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * The node of `for=` (section 6): an IPv4 address as a token, an IPv6 address bracketed and
 * quoted (`"[2001:db8::1]"`), `unknown` when the address is not known (the socket is gone).
 */
function forwardedNode(address: string): string {
  if (address === '') return 'unknown';
  if (address.indexOf(':') !== -1) return `"[${address}]"`;
  return forwardedValue(address);
}

/** The last element built and what it was built from: a keep-alive client sends the same ones again. */
let lastIp = '';
let lastProto = '';
let lastHost: string | undefined;
let lastElement = '';

/** One Forwarded element for a request from `clientIp` over `proto` for `host` (absent: no host parameter). */
export function forwardedElement(clientIp: string, proto: string, host: string | undefined): string {
  if (clientIp === lastIp && proto === lastProto && host === lastHost && lastElement !== '') return lastElement;
  const element = `for=${forwardedNode(clientIp)};proto=${forwardedValue(proto)}`;
  lastIp = clientIp;
  lastProto = proto;
  lastHost = host;
  lastElement = host === undefined ? element : `${element};host=${forwardedValue(host)}`;
  return lastElement;
}
