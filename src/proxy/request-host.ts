/**
 * The host a request is for, validated once at admission (issue 10): routing, the Host sent
 * upstream, X-Forwarded-Host and Forwarded `host=` all read this one value.
 *
 * RFC 9112 section 3.2: an HTTP/1.1 request without Host, with more than one Host line, or with
 * an invalid Host value gets 400. Host = uri-host [ ":" port ] (RFC 9110 section 7.2), with
 * uri-host the `host` of RFC 3986 section 3.2.2 and port = *DIGIT (section 3.2.3).
 * Section 3.2.2 of RFC 9112: an absolute-form target's authority replaces the Host field.
 */

/** Char classes, by char code below 128. */
const regName = 1; // unreserved / sub-delims (RFC 3986 sections 2.2, 2.3)
const hexDigit = 2;
const upperCase = 4;
const schemeChar = 8; // ALPHA / DIGIT / "+" / "-" / "." (RFC 3986 section 3.1)

const classOf = new Uint8Array(128);
for (const c of "-._~!$&'()*+,;=") classOf[c.charCodeAt(0)] = regName;
for (let c = 48; c <= 57; c++) classOf[c] = regName | hexDigit | schemeChar;
for (let c = 65; c <= 90; c++) classOf[c] = regName | upperCase | schemeChar | (c <= 70 ? hexDigit : 0);
for (let c = 97; c <= 122; c++) classOf[c] = regName | schemeChar | (c <= 102 ? hexDigit : 0);
for (const c of '+-.') classOf[c.charCodeAt(0)] = regName | schemeChar;

function has(code: number, cls: number): boolean {
  return code < 128 && ((classOf[code] as number) & cls) !== 0;
}

/** True for a field name spelling `host` in any case, without building a lower-cased copy. */
function isHostName(name: string): boolean {
  return (
    name.length === 4 &&
    (name.charCodeAt(0) | 0x20) === 0x68 &&
    (name.charCodeAt(1) | 0x20) === 0x6f &&
    (name.charCodeAt(2) | 0x20) === 0x73 &&
    (name.charCodeAt(3) | 0x20) === 0x74
  );
}

/** dec-octet "." dec-octet "." dec-octet "." dec-octet over [start, end) (RFC 3986 section 3.2.2). */
function isIPv4(s: string, start: number, end: number): boolean {
  let octets = 0;
  let i = start;
  while (i < end) {
    const first = i;
    let value = 0;
    while (i < end && i - first < 4) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      value = value * 10 + (c - 48);
      i++;
    }
    const digits = i - first;
    // No leading zeros: "01" is not a dec-octet.
    if (digits === 0 || digits > 3 || value > 255 || (digits > 1 && s.charCodeAt(first) === 48)) return false;
    octets++;
    if (i === end) break;
    if (s.charCodeAt(i) !== 46 /* . */ || octets === 4) return false;
    i++;
    if (i === end) return false;
  }
  return octets === 4;
}

/** IPv6address of RFC 3986 section 3.2.2 over [start, end): eight h16 pieces, or fewer with one "::", ls32 as IPv4 last. */
function isIPv6(s: string, start: number, end: number): boolean {
  let pieces = 0;
  let elided = false;
  let i = start;
  if (end - start >= 2 && s.charCodeAt(i) === 58 && s.charCodeAt(i + 1) === 58) {
    elided = true;
    i += 2;
  }
  while (i < end) {
    let j = i;
    while (j < end && j - i < 5 && has(s.charCodeAt(j), hexDigit)) j++;
    if (j < end && s.charCodeAt(j) === 46 /* . */) {
      // ls32 as an IPv4 address: two pieces, and nothing after it.
      if (!isIPv4(s, i, end)) return false;
      pieces += 2;
      break;
    }
    const digits = j - i;
    if (digits === 0 || digits > 4) return false;
    pieces++;
    if (j === end) break;
    if (s.charCodeAt(j) !== 58 /* : */) return false;
    j++;
    if (j < end && s.charCodeAt(j) === 58) {
      if (elided) return false;
      elided = true;
      j++;
    } else if (j === end) {
      return false;
    }
    i = j;
  }
  return elided ? pieces <= 7 : pieces === 8;
}

/** IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) over [start, end). */
function isIPvFuture(s: string, start: number, end: number): boolean {
  if ((s.charCodeAt(start) | 0x20) !== 0x76 /* v */) return false;
  let i = start + 1;
  while (i < end && has(s.charCodeAt(i), hexDigit)) i++;
  if (i === start + 1 || i >= end - 1 || s.charCodeAt(i) !== 46) return false;
  for (i++; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c !== 58 && !has(c, regName)) return false;
  }
  return true;
}

/**
 * `uri-host [ ":" port ]` over [start, end) of `s`, lower-cased and normalised, or null when
 * invalid. Normalising: an empty port drops its ":" (RFC 3986 section 6.2.3), and one trailing
 * dot of a name goes (`example.com.` is `example.com`, RFC 1034 section 3.1); a name left empty
 * or still ending in a dot is refused, as is a port without a host. `s` itself comes back when
 * it needs no change, so the common Host costs no allocation.
 */
export function normaliseAuthority(s: string, start: number, end: number): string | null {
  if (start === end) return '';
  let i = start;
  let upper = false;
  let hostEnd: number;
  if (s.charCodeAt(i) === 91 /* [ */) {
    const close = s.indexOf(']', i);
    if (close === -1 || close >= end) return null;
    const c = s.charCodeAt(i + 1);
    if (c === 118 || c === 86 ? !isIPvFuture(s, i + 1, close) : !isIPv6(s, i + 1, close)) return null;
    for (let k = i + 1; k < close; k++) if (has(s.charCodeAt(k), upperCase)) upper = true;
    hostEnd = close + 1;
  } else {
    let seen = 0;
    for (; i < end; i++) {
      const c = s.charCodeAt(i);
      const cls = c < 128 ? (classOf[c] as number) : 0;
      // The hot path is one table look-up per char; ":" and "%" are not reg-name chars.
      if ((cls & regName) === 0) {
        if (c === 58 /* : */) break;
        if (c !== 37 /* % */ || i + 2 >= end || !has(s.charCodeAt(i + 1), hexDigit) || !has(s.charCodeAt(i + 2), hexDigit)) return null;
        seen |= (classOf[s.charCodeAt(i + 1)] as number) | (classOf[s.charCodeAt(i + 2)] as number);
        i += 2;
        continue;
      }
      seen |= cls;
    }
    if ((seen & upperCase) !== 0) upper = true;
    hostEnd = i;
    if (hostEnd === start) return null; // ":80", a port for no host
  }
  let portStart = end;
  if (hostEnd < end) {
    if (s.charCodeAt(hostEnd) !== 58) return null;
    portStart = hostEnd + 1;
    let port = 0;
    for (let k = portStart; k < end; k++) {
      const c = s.charCodeAt(k);
      if (c < 48 || c > 57) return null;
      port = port * 10 + (c - 48);
      if (port > 65535) return null;
    }
  }
  let nameEnd = hostEnd;
  if (s.charCodeAt(hostEnd - 1) === 46 /* . */) {
    nameEnd--;
    if (nameEnd === start || s.charCodeAt(nameEnd - 1) === 46) return null;
  }
  const emptyPort = portStart === end && hostEnd < end;
  if (!upper && nameEnd === hostEnd && !emptyPort && start === 0 && end === s.length) return s;
  const name = upper ? s.slice(start, nameEnd).toLowerCase() : s.slice(start, nameEnd);
  return portStart < end ? `${name}:${s.slice(portStart, end)}` : name;
}

/**
 * Where the authority of an absolute-form target (`scheme://authority/…`) starts, or -1 when the
 * target has none (origin-form, asterisk-form, authority-form: the Host field stands).
 */
function authorityStart(target: string): number {
  if (target.length === 0 || target.charCodeAt(0) === 47 /* / */) return -1;
  const first = target.charCodeAt(0);
  if (!has(first, schemeChar) || first < 65) return -1; // scheme starts with ALPHA
  let i = 1;
  while (i < target.length && has(target.charCodeAt(i), schemeChar)) i++;
  if (target.charCodeAt(i) !== 58 || target.charCodeAt(i + 1) !== 47 || target.charCodeAt(i + 2) !== 47) return -1;
  return i + 3;
}

/**
 * The validated host of a request: lower-cased, port kept when given (`example.com:8080`), IPv6
 * literal in brackets (`[::1]:3030`); `''` when there is none (HTTP/1.0 without Host, or an
 * empty Host field); null when the request must be refused with 400.
 *
 * @param rawHeaders the request's header list as Node gives it (`req.rawHeaders`: name, value, …)
 * @param target the raw request target (`req.url`)
 * @param hostRequired true for HTTP/1.1 (any minor version above 0), where Host is mandatory
 */
export function requestHost(rawHeaders: readonly string[], target: string, hostRequired: boolean): string | null {
  let field: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!isHostName(rawHeaders[i] as string)) continue;
    // Two Host lines are refused even when equal (RFC 9112 section 3.2).
    if (field !== undefined) return null;
    field = rawHeaders[i + 1] as string;
  }
  if (field === undefined && hostRequired) return null;
  const fromField = field === undefined ? '' : normaliseAuthority(field, 0, field.length);
  if (fromField === null) return null;
  const start = authorityStart(target);
  if (start === -1) return fromField;
  // Absolute-form: the target's authority replaces Host (RFC 9112 section 3.2.2). An "http" URI
  // with an empty host is invalid (RFC 9110 section 4.2.1); userinfo is refused by the grammar,
  // as "@" is not a host character (RFC 9110 section 4.2.4).
  let end = start;
  while (end < target.length) {
    const c = target.charCodeAt(end);
    if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) break;
    end++;
  }
  if (end === start) return null;
  return normaliseAuthority(target, start, end);
}
