import type { IncomingHttpHeaders } from 'node:http2';

/**
 * A response head's fields as a flat list (the shape undici gives, strings for Buffers), without
 * pseudo-header fields; null when the head is larger than `maxBytes`, counted as an HTTP/1.1
 * head would be ("name: value\r\n" per field, plus a status line) so that
 * maxResponseHeaderSize means the same for both protocols.
 */
export function responseFields(headers: IncomingHttpHeaders, maxBytes: number): string[] | null {
  const raw: string[] = [];
  let bytes = 17;
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 /* : */) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') {
      raw.push(name, value);
      bytes += name.length + value.length + 4;
    } else {
      for (let i = 0; i < value.length; i++) {
        raw.push(name, value[i] as string);
        bytes += name.length + (value[i] as string).length + 4;
      }
    }
  }
  return bytes > maxBytes ? null : raw;
}
