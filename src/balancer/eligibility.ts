import type { Backend } from '../upstream/backend.js';
import type { PickContext } from './types.js';

/**
 * Whether a balancer may pick `backend` for this request: the backend's own rule
 * (`backend.available`: up and below its in-flight limit) and not already tried by the request.
 * Every balancer consults this and nothing else.
 */
export function isEligible(backend: Backend, ctx: PickContext): boolean {
  return backend.available && (ctx.exclude === undefined || !ctx.exclude.has(backend));
}
