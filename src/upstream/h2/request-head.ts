import type { OutgoingHttpHeaders } from 'node:http2';
import type { BackendDispatchOptions } from '../dispatcher.js';

/**
 * Connection-specific fields, never sent in HTTP/2 (RFC 9113 §8.2.2): an endpoint must treat
 * them as malformed. Host becomes `:authority` (§8.3.1); TE is kept only as `trailers`.
 */
const dropped = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'host']);

/**
 * The HEADERS of one request: pseudo-header fields first (RFC 9113 §8.3.1), then the fields,
 * names lower-cased (§8.2.1), repeated fields as a list. `defaultAuthority` stands in when the
 * forwarded fields carry no Host.
 */
export function requestHead(
  method: string,
  path: string,
  scheme: 'http' | 'https',
  defaultAuthority: string,
  headers: readonly string[] | Readonly<Record<string, string | readonly string[] | undefined>> | null | undefined,
): OutgoingHttpHeaders {
  const head: OutgoingHttpHeaders = { ':method': method, ':path': path, ':scheme': scheme, ':authority': defaultAuthority };
  if (headers == null) return head;
  if (Array.isArray(headers)) {
    const list = headers as readonly string[];
    for (let i = 0; i + 1 < list.length; i += 2) add(head, list[i] as string, list[i + 1] as string);
    return head;
  }
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  for (const name in record) {
    const value = record[name];
    if (value === undefined) continue;
    if (typeof value === 'string') add(head, name, value);
    else for (const each of value) add(head, name, each);
  }
  return head;
}

function add(head: OutgoingHttpHeaders, rawName: string, value: string): void {
  const name = rawName.toLowerCase();
  if (dropped.has(name)) {
    if (name === 'host') head[':authority'] = value;
    return;
  }
  // RFC 9113 §8.2.2: TE may appear, with no value but "trailers".
  if (name === 'te' && value.trim().toLowerCase() !== 'trailers') return;
  const seen = head[name];
  if (seen === undefined) head[name] = value;
  else if (Array.isArray(seen)) seen.push(value);
  else head[name] = [String(seen), value];
}

type RequestBodyInput = BackendDispatchOptions['body'];

/** The request body as the stream writes it: none, one buffer, or chunks as they come. */
export function bodyOf(body: RequestBodyInput): Buffer | AsyncIterable<Buffer> | null {
  if (body == null) return null;
  if (typeof body === 'string') return Buffer.from(body);
  if (Buffer.isBuffer(body)) return body;
  // A body read whole in several chunks: one DATA payload, as before.
  if (Array.isArray(body)) return Buffer.concat(body as readonly Buffer[]);
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return body as unknown as AsyncIterable<Buffer>;
}

