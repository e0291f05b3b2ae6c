import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ErrorCodes } from '../errors.js';
import type { ProxyContext } from './context.js';
import { normaliseTarget } from './normalise-path.js';
import { requestHost } from './request-host.js';
import { originFormTarget } from './request-target.js';
import { ambiguousRoute, noRoute, routeRequest } from './routing.js';
import { Tunnel } from './tunnel.js';
import { answerRaw } from './tunnel-request.js';

function ignoreError(): void {}

/**
 * Admission of a tunnel request (the server's 'upgrade' event): the same host, target and
 * routing checks as any request (admission.ts), then a Tunnel picks and dispatches.
 */
export function handleUpgrade(ctx: ProxyContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.on('error', ignoreError);
  const url = req.url ?? '';
  const host = requestHost(req.rawHeaders, url, true);
  const requested = originFormTarget(url);
  const target = requested === null ? null : normaliseTarget(requested, ctx.limits.ambiguousPaths === 'keep');
  const route = target === null || host === null ? ambiguousRoute : routeRequest(ctx, host, target);
  if (route === ambiguousRoute) return answerRaw(socket, ErrorCodes.badRequest);
  if (route === noRoute) return answerRaw(socket, ErrorCodes.noRoute);
  if (ctx.closing) return answerRaw(socket, ErrorCodes.noBackend);
  new Tunnel(ctx, route, req, socket as Socket, head, target as string, host as string).start();
}
