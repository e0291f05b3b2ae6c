/**
 * Byte classes of HTTP/1.1 field syntax (RFC 9110 §5.1, §5.5) and the lower-cased names of
 * common response fields, reused instead of a new string per field of every response.
 */

/** tchar (RFC 9110 §5.6.2): 1 for a token character. */
export const tokenChar = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") tokenChar[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) tokenChar[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) tokenChar[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) tokenChar[c] = 1;

/** field-vchar, SP and HTAB (RFC 9110 §5.5): 1 for a byte a field value may hold; CTLs, DEL excluded. */
export const valueChar = new Uint8Array(256);
valueChar[0x09] = 1;
for (let c = 0x20; c < 0x7f; c++) valueChar[c] = 1;
for (let c = 0x80; c <= 0xff; c++) valueChar[c] = 1;

const common = [
  'accept-ranges', 'access-control-allow-origin', 'age', 'cache-control', 'connection', 'content-disposition',
  'content-encoding', 'content-language', 'content-length', 'content-location', 'content-range', 'content-type',
  'date', 'etag', 'expires', 'keep-alive', 'last-modified', 'link', 'location', 'retry-after', 'server',
  'set-cookie', 'strict-transport-security', 'trailer', 'transfer-encoding', 'upgrade', 'vary', 'via',
  'www-authenticate', 'x-content-type-options', 'x-frame-options', 'x-powered-by', 'x-request-id',
];

/** Candidates by length and lower-cased first byte. */
const byKey = new Map<number, string[]>();
for (const name of common) {
  const key = name.length * 256 + name.charCodeAt(0);
  const list = byKey.get(key);
  if (list === undefined) byKey.set(key, [name]);
  else list.push(name);
}

/** Whether bytes [start, end) of `buf` spell `lower` in any case (`lower` is lower-case ASCII). */
export function equalsLower(buf: Buffer, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if (((buf[start + i] as number) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/**
 * Whether `text` is `lower` (lower-case ASCII) in any case: `text.toLowerCase() === lower`
 * without making the lower-cased copy.
 */
export function spellsLower(text: string, lower: string): boolean {
  if (text.length !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const c = text.charCodeAt(i);
    const l = lower.charCodeAt(i);
    if (c === l || (l >= 0x61 && l <= 0x7a && c === l - 0x20)) continue;
    // Beyond ASCII, toLowerCase's own rules decide (the Kelvin sign is a `k`).
    return c >= 0x80 && text.toLowerCase() === lower;
  }
  return true;
}

/**
 * The lower-cased name of the token at [start, end) of `buf` (already checked to be a token):
 * a shared string for common names, else a new one.
 */
export function fieldName(buf: Buffer, start: number, end: number, hasUpper: boolean): string {
  const candidates = byKey.get((end - start) * 256 + ((buf[start] as number) | 0x20));
  if (candidates !== undefined) {
    for (let i = 0; i < candidates.length; i++) {
      const name = candidates[i] as string;
      if (equalsLower(buf, start, end, name)) return name;
    }
  }
  const name = buf.toString('latin1', start, end);
  return hasUpper ? name.toLowerCase() : name;
}
