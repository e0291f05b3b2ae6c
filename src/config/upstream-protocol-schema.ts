import { z } from 'zod';
import { protocolProblem, upstreamProtocols } from '../upstream/protocol.js';

/** An upstream's `protocol` (docs/upstream-protocols.md). */
export const protocolSchema = z
  .enum(upstreamProtocols)
  .default('http1')
  .describe(
    'How requests and HTTP health checks reach the backends: `http1` (HTTP/1.1), `h2` (HTTP/2 over TLS, offered by ALPN; a backend that does not take it gets HTTP/1.1) or `h2c` (HTTP/2 over cleartext with prior knowledge). `h2` needs `https://` backends, `h2c` `http://` ones. See docs/upstream-protocols.md.',
  );

type Backends = readonly (string | { readonly url: string })[];

/** Each backend whose scheme does not fit the upstream's protocol becomes an issue at its position. */
export function protocolIssues(upstream: { readonly protocol: (typeof upstreamProtocols)[number]; readonly backends?: Backends | undefined }, ctx: z.core.$RefinementCtx<unknown>): void {
  // Discovered backends are checked when they arrive (a mismatched one is spoken to as its scheme allows).
  (upstream.backends ?? []).forEach((backend, i) => {
    const url = typeof backend === 'string' ? backend : backend.url;
    const problem = protocolProblem(upstream.protocol, url);
    if (problem !== null) ctx.addIssue({ code: 'custom', path: ['backends', i, ...(typeof backend === 'string' ? [] : ['url'])], message: problem });
  });
}
