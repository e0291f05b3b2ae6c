/**
 * The bounded label sets of the per-request metrics and the functions that map an event's fields
 * onto them; each array's length bounds its label set.
 */

/** Label value for "no upstream" / "no backend" (a request refused before routing or picking). */
export const none = 'none';

/** Method label values: the RFC 9110 section 9 methods plus PATCH; anything else is OTHER. */
export const methodLabels = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT', 'OTHER'] as const;
/** Status class label values by index: 0 means no status was sent, 6 a status outside 100-599. */
export const codeClassLabels = [none, '1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const;
export const attemptOutcomeLabels = ['response', 'connect', 'reset', 'timeout', 'protocol', 'aborted', 'other'] as const;

export function methodIndex(method: string): number {
  switch (method) {
    case 'GET': return 0;
    case 'HEAD': return 1;
    case 'POST': return 2;
    case 'PUT': return 3;
    case 'DELETE': return 4;
    case 'PATCH': return 5;
    case 'OPTIONS': return 6;
    case 'TRACE': return 7;
    case 'CONNECT': return 8;
    default: return 9;
  }
}

export function codeClassIndex(status: number): number {
  if (status >= 100 && status < 600) return (status / 100) | 0;
  return status === 0 ? 0 : 6;
}

export function outcomeIndex(outcome: string): number {
  const i = attemptOutcomeLabels.indexOf(outcome as (typeof attemptOutcomeLabels)[number]);
  return i === -1 ? attemptOutcomeLabels.length - 1 : i;
}
