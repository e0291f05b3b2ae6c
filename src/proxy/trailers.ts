import type { ServerResponse } from 'node:http';
import { isAllowedTrailerField as allowed, isValidFieldValue } from '../upstream/trailer-fields.js';

/**
 * Response trailers, from the backend to the client. undici gives an HTTP/1.1 backend's chunked
 * trailer section as a flat raw list and an HTTP/2 backend's trailing HEADERS as an object.
 */
export type UpstreamTrailers = readonly (Buffer | string)[] | Readonly<Record<string, string | readonly string[] | undefined>>;

/** Whether the backend sent any trailer field. */
export function hasTrailers(trailers: UpstreamTrailers | null): trailers is UpstreamTrailers {
  return trailers !== null && (Array.isArray(trailers) ? trailers.length !== 0 : Object.keys(trailers).length !== 0);
}

function push(out: [string, string][], name: string, value: string): void {
  if (isValidFieldValue(value)) out.push([name, value]);
}

/** The trailer fields that may go on to the client, lower-cased names, in order; empty when none. */
export function trailerFieldsForClient(trailers: UpstreamTrailers): [string, string][] {
  const out: [string, string][] = [];
  if (Array.isArray(trailers)) {
    const raw = trailers as readonly (Buffer | string)[];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = String(raw[i]).toLowerCase();
      if (allowed(name)) push(out, name, Buffer.isBuffer(raw[i + 1]) ? (raw[i + 1] as Buffer).toString('latin1') : String(raw[i + 1]));
    }
    return out;
  }
  for (const [key, value] of Object.entries(trailers as Readonly<Record<string, string | readonly string[] | undefined>>)) {
    const name = key.toLowerCase();
    if (value === undefined || !allowed(name)) continue;
    if (typeof value === 'string') push(out, name, value);
    else for (const each of value) push(out, name, each);
  }
  return out;
}

/**
 * Hands the backend's trailers to the client's response before it ends. HTTP/1.1 carries them
 * only in a chunked message (RFC 9112 §7.1.2): a response framed by Content-Length, to an
 * HTTP/1.0 client or to HEAD ends without them, which RFC 9110 §6.5.1 allows (a recipient may
 * discard trailers). An HTTP/2 response (no chunked framing) takes them as trailing HEADERS.
 * The client's TE is not consulted: a sender may always send trailers (RFC 9110 §6.5).
 */
export function relayTrailers(res: ServerResponse, trailers: UpstreamTrailers | null): void {
  if (!hasTrailers(trailers)) return;
  const chunked = (res as { chunkedEncoding?: boolean }).chunkedEncoding;
  if (chunked === false) return;
  const fields = trailerFieldsForClient(trailers);
  if (fields.length === 0) return;
  try {
    if (chunked === true) {
      res.addTrailers(fields);
    } else {
      // node:http2's compatibility response reads an object, one key per field name.
      const byName: Record<string, string | string[]> = {};
      for (const [name, value] of fields) {
        const seen = byName[name];
        byName[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
      }
      res.addTrailers(byName);
    }
  } catch {
    // Checked above; should Node still refuse one, the response ends without trailers (they are optional).
    res.addTrailers({});
  }
}
