/**
 * The request heads the listener's own HTTP/1.1 path serves (fast-connection.ts): a complete head
 * that is plainly valid under RFC 9112 and has no body. Anything else, including everything
 * node:http might refuse or treat specially, is not parsed here: the connection goes to
 * node:http, which answers it as before. So this parser only has to be right about what it
 * accepts, never about how to refuse.
 */

/** A head this path serves; the strings are latin1, as node:http gives them. */
export interface SimpleHead {
  readonly method: string;
  readonly url: string;
  /** 1 for HTTP/1.1, 0 for HTTP/1.0. */
  readonly minor: number;
  /** Field names as sent, values without surrounding whitespace: node:http's `rawHeaders`. */
  readonly rawHeaders: string[];
  /** The client lets the connection stay open (RFC 9112 section 9.3). */
  readonly keepAlive: boolean;
  /** The body's Content-Length (RFC 9112 section 6.2); 0: no body. */
  readonly bodyLength: number;
}

/** Methods served here; llhttp knows more, and decides on them itself. */
const methods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);

/** Field names past which a head goes to node:http (it keeps at most 2,000: maxHeadersCount). */
const maxFields = 1000;

/** tchar (RFC 9110 section 5.6.2), by character code. */
const tchar = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") tchar[c.charCodeAt(0)] = 1;

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;

/**
 * Parses `head`: the request line and field lines of one request, each ending in CRLF, without
 * the empty line that ends the head. Returns null for anything this path does not serve:
 * another method or version, a target or field with a byte outside the plain grammar, a
 * Transfer-Encoding, Expect or Upgrade field, more than one Content-Length or one that is not
 * plain digits, an HTTP/1.1 request without Host.
 */
export function parseRequestHead(head: string): SimpleHead | null {
  const sp1 = head.indexOf(' ');
  if (sp1 < 3 || sp1 > 7) return null;
  const method = head.slice(0, sp1);
  if (!methods.has(method)) return null;
  const lineEnd = head.indexOf('\r\n', sp1);
  // "HTTP/1.x" after one space: the target runs between the two spaces.
  if (lineEnd === -1 || lineEnd - sp1 < 11 || head.charCodeAt(lineEnd - 9) !== SP) return null;
  const minor = versionMinor(head, lineEnd - 8);
  if (minor < 0) return null;
  const targetEnd = lineEnd - 9;
  for (let i = sp1 + 1; i < targetEnd; i++) {
    const c = head.charCodeAt(i);
    if (c <= SP || c >= 127) return null;
  }
  const url = head.slice(sp1 + 1, targetEnd);
  const rawHeaders: string[] = [];
  let connection = 0;
  let bodyLength = -1;
  let host: string | null = null;
  let at = lineEnd + 2;
  while (at < head.length) {
    const fieldEnd = fieldLineEnd(head, at);
    if (fieldEnd < 0) return null;
    const colon = nameEnd(head, at, fieldEnd);
    if (colon < 0) return null;
    let start = colon + 1;
    let end = fieldEnd;
    while (start < end && isOws(head.charCodeAt(start))) start++;
    while (end > start && isOws(head.charCodeAt(end - 1))) end--;
    const name = head.slice(at, colon);
    const value = head.slice(start, end);
    switch (special(name)) {
      case Special.refuse:
        return null;
      case Special.connection:
        connection |= connectionTokens(value);
        if ((connection & upgradeToken) !== 0) return null;
        break;
      case Special.host:
        host ??= value;
        break;
      case Special.length:
        if (bodyLength !== -1) return null;
        bodyLength = contentLength(value);
        if (bodyLength < 0) return null;
        break;
      case Special.te:
        // node:http picks chunked responses for HTTP/1.0 clients that ask with TE: its call.
        if (minor === 0) return null;
        break;
      default:
    }
    rawHeaders.push(name, value);
    if (rawHeaders.length > maxFields * 2) return null;
    at = fieldEnd + 2;
  }
  // node:http answers an HTTP/1.1 request without a Host value itself (400).
  if (minor === 1 && (host === null || host === '')) return null;
  // RFC 9112 section 9.3: "close" ends the connection in any version (llhttp lets an HTTP/1.0
  // "keep-alive" win over it); else HTTP/1.1 stays open, HTTP/1.0 only if "keep-alive" was said.
  const keepAlive = (connection & closeToken) === 0 && (minor === 1 || (connection & keepAliveToken) !== 0);
  return { method, url, minor, rawHeaders, keepAlive, bodyLength: bodyLength === -1 ? 0 : bodyLength };
}

/** 1 or 0 for "HTTP/1.1" or "HTTP/1.0" at `at`, else -1. */
function versionMinor(head: string, at: number): number {
  if (head.charCodeAt(at) !== 72 || head.charCodeAt(at + 1) !== 84 || head.charCodeAt(at + 2) !== 84 || head.charCodeAt(at + 3) !== 80) return -1;
  if (head.charCodeAt(at + 4) !== 47 || head.charCodeAt(at + 5) !== 49 || head.charCodeAt(at + 6) !== 46) return -1;
  const minor = head.charCodeAt(at + 7) - 48;
  return minor === 0 || minor === 1 ? minor : -1;
}

/**
 * Where the field line at `at` ends (its CR), checking every byte on the way: visible ASCII,
 * obs-text, SP and HTAB only (RFC 9110 section 5.5), and CR only before LF. -1: not plain.
 */
function fieldLineEnd(head: string, at: number): number {
  const first = head.charCodeAt(at);
  // obs-fold (a line starting with whitespace, RFC 9112 section 5.2) and empty names.
  if (first === SP || first === HTAB || first === CR) return -1;
  for (let i = at; i < head.length; i++) {
    const c = head.charCodeAt(i);
    if (c >= SP && c !== 127) continue;
    if (c === HTAB) continue;
    if (c === CR && head.charCodeAt(i + 1) === LF) return i;
    return -1;
  }
  return -1;
}

/** The colon ending a field name made of tchar only (no whitespace before it, RFC 9112 section 5.1), or -1. */
function nameEnd(head: string, at: number, end: number): number {
  for (let i = at; i < end; i++) {
    const c = head.charCodeAt(i);
    if (c === 58 /* : */) return i === at ? -1 : i;
    if (c >= 128 || tchar[c] !== 1) return -1;
  }
  return -1;
}

/** A Content-Length of 1 to 15 digits (below 2^53), else -1. */
function contentLength(value: string): number {
  if (value.length === 0 || value.length > 15) return -1;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
  }
  return Number(value);
}

function isOws(c: number): boolean {
  return c === SP || c === HTAB;
}

/** What a field name means to this path. */
const Special = { none: 0, refuse: 1, connection: 2, host: 3, te: 4, length: 5 } as const;
type Special = (typeof Special)[keyof typeof Special];

/** What a field name means to this path (names compared without regard to case). */
function special(name: string): Special {
  switch (name.length) {
    case 2:
      return name.toLowerCase() === 'te' ? Special.te : Special.none;
    case 4:
      return name.toLowerCase() === 'host' ? Special.host : Special.none;
    case 6:
      return name.toLowerCase() === 'expect' ? Special.refuse : Special.none;
    case 7:
      return name.toLowerCase() === 'upgrade' ? Special.refuse : Special.none;
    case 10:
      return name.toLowerCase() === 'connection' ? Special.connection : Special.none;
    case 14:
      return name.toLowerCase() === 'content-length' ? Special.length : Special.none;
    case 17:
      return name.toLowerCase() === 'transfer-encoding' ? Special.refuse : Special.none;
    default:
      return Special.none;
  }
}

const closeToken = 1;
const keepAliveToken = 2;
const upgradeToken = 4;

/** The Connection options that matter here (RFC 9110 section 7.6.1), as bits. */
function connectionTokens(value: string): number {
  // The usual single option, without splitting.
  if (value.indexOf(',') === -1) return tokenBit(value.trim().toLowerCase());
  let tokens = 0;
  for (const raw of value.split(',')) {
    tokens |= tokenBit(raw.trim().toLowerCase());
  }
  return tokens;
}

function tokenBit(token: string): number {
  if (token === 'close') return closeToken;
  if (token === 'keep-alive') return keepAliveToken;
  return token === 'upgrade' ? upgradeToken : 0;
}
