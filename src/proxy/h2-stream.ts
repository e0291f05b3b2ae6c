import http2 from 'node:http2';
import { normaliseAuthority, requestHost } from './request-host.js';

/**
 * An HTTP/2 stream as the request path sees it: Node's compatibility request and response
 * (`Http2ServerRequest`/`Http2ServerResponse`), shaped like HTTP/1.1's IncomingMessage and
 * ServerResponse so admission, the attempt loop, the relay and completion serve both. Only the
 * framing differs, and it is here: the header list without pseudo-header fields, the host from
 * `:authority`, no status text.
 */

/**
 * The request of one stream. `rawHeaders` is the list forwarded upstream: pseudo-header fields
 * (`:method`, `:path`, …) are never fields (RFC 9113 section 8.3), and the cookie crumbs an HTTP/2
 * client may send apart are joined with "; " for HTTP/1.1 backends (RFC 9113 section 8.2.3).
 */
export class H2Request extends http2.Http2ServerRequest {
  private fields: string[] | null = null;

  /** What `rawHeaders` reads (an accessor in Node, typed as a field, hence defined below). */
  forwardedFields(): string[] {
    if (this.fields !== null) return this.fields;
    const raw = baseRawHeaders.call(this);
    const fields: string[] = [];
    let cookie: string | null = null;
    let cookieAt = -1;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      if (name.charCodeAt(0) === 58 /* : */) continue;
      if (name === 'cookie') {
        // HTTP/2 field names are lower case (nghttp2 refuses others), so one comparison will do.
        if (cookie === null) {
          cookieAt = fields.length + 1;
          cookie = raw[i + 1] as string;
          fields.push(name, cookie);
        } else {
          cookie = `${cookie}; ${raw[i + 1] as string}`;
          fields[cookieAt] = cookie;
        }
        continue;
      }
      fields.push(name, raw[i + 1] as string);
    }
    this.fields = fields;
    return fields;
  }

  /** The `:authority` pseudo-header field as sent; undefined when absent (Node's `authority` falls back to Host). */
  get authorityField(): string | undefined {
    return this.headers[':authority'];
  }
}

const baseRawHeaders = Object.getOwnPropertyDescriptor(http2.Http2ServerRequest.prototype, 'rawHeaders')?.get as (this: http2.Http2ServerRequest) => string[];
Object.defineProperties(H2Request.prototype, {
  rawHeaders: {
    get(this: H2Request) {
      return this.forwardedFields();
    },
  },
  // `2`, as HTTP/2 names its version (RFC 9113 section 1): in Via (`2 switchyard`) and the access log (`HTTP/2`).
  httpVersion: { value: '2' },
});

/** The response of one stream: HTTP/2 has no reason phrase (RFC 9113 section 8.3.2), so none is passed on. */
export class H2Response extends http2.Http2ServerResponse {
  /** Read and set by the HTTP/1.1 path; connection reuse is the session's business in HTTP/2. */
  shouldKeepAlive = true;

  override writeHead(statusCode: number, statusMessage?: string | http2.OutgoingHttpHeaders | readonly string[], headers?: http2.OutgoingHttpHeaders | readonly string[]): this {
    if (typeof statusMessage === 'string' || statusMessage === undefined) return super.writeHead(statusCode, headers as http2.OutgoingHttpHeaders);
    return super.writeHead(statusCode, statusMessage as http2.OutgoingHttpHeaders);
  }
}

/**
 * The validated host of a stream (request-host.ts rules): `:authority`, else the Host field; both
 * present must name the same host (RFC 9113 section 8.3.1), and one of them must be (as Host is
 * in HTTP/1.1). null: refuse with 400.
 */
export function streamHost(req: H2Request): string | null {
  const fromField = requestHost(req.rawHeaders, '/', false);
  if (fromField === null) return null;
  const authority = req.authorityField;
  if (authority === undefined) return fromField === '' ? null : fromField;
  const host = normaliseAuthority(authority, 0, authority.length);
  if (host === null || host === '' || (fromField !== '' && fromField !== host)) return null;
  return host;
}
