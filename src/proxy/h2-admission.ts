import type { IncomingMessage, ServerResponse } from 'node:http';
import { admitRequest } from './admission.js';
import type { ProxyContext } from './context.js';
import { streamHost, type H2Request, type H2Response } from './h2-stream.js';

/**
 * Admission of an HTTP/2 stream: the same exchange as an HTTP/1.1 request once its host is
 * known. nghttp2 has already refused (RST_STREAM PROTOCOL_ERROR) what RFC 9113 section 8.2.2 calls
 * malformed: connection-specific fields, `te` other than `trailers`, upper-case names, and
 * `:protocol` (we do not offer extended CONNECT); Node answers plain CONNECT 405 itself.
 */
export function handleStream(ctx: ProxyContext, req: H2Request, res: H2Response): void {
  // The compatibility request and response stand in for IncomingMessage and ServerResponse (h2-stream.ts).
  admitRequest(ctx, req as unknown as IncomingMessage, res as unknown as ServerResponse, req.url, streamHost(req), null);
}
