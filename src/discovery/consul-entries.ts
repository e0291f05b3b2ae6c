import type { DiscoveredBackend } from './source.js';

/** An answer Consul gave that cannot be used (status, body); its message starts with `consul:`. */
export class ConsulAnswerError extends Error {}

/**
 * Turns the body of Consul's `GET /v1/health/service/NAME` (an array of `{ Node, Service,
 * Checks }`) into backends, `scheme://ADDRESS:PORT`. A malformed answer throws: the caller reports it as an error and
 * keeps the last good set, rather than applying half of a bad answer.
 */
export function backendsFromHealthEntries(body: unknown, scheme: 'http' | 'https' = 'http'): DiscoveredBackend[] {
  if (!Array.isArray(body)) throw new ConsulAnswerError('consul: the answer is not a JSON array');
  const byUrl = new Map<string, DiscoveredBackend>();
  for (let i = 0; i < body.length; i++) {
    const entry = record(body[i], `entry ${i}`);
    const service = record(entry['Service'], `entry ${i}: Service`);
    const node = entry['Node'] === undefined || entry['Node'] === null ? {} : record(entry['Node'], `entry ${i}: Node`);
    // An empty Service.Address means "the node's address" (Consul's own rule for DNS and catalog).
    const address = nonEmpty(service['Address']) ?? nonEmpty(node['Address']);
    if (address === undefined) throw new ConsulAnswerError(`consul: entry ${i} has neither Service.Address nor Node.Address`);
    const port = service['Port'];
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new ConsulAnswerError(`consul: entry ${i} has no valid Service.Port`);
    const url = `${scheme}://${address.includes(':') ? `[${address}]` : address}:${port}`;
    // The same address twice (two registrations of one instance): the first one counts.
    if (!byUrl.has(url)) byUrl.set(url, { url, weight: weightOf(service, entry['Checks']), terminating: false });
  }
  // Sorted so that every replica, whatever order Consul lists them in, sees the same set.
  return [...byUrl.values()].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
}

/** `Weights.Passing`, or `Weights.Warning` while a check warns (as Consul's DNS does); 1 when absent. */
function weightOf(service: Record<string, unknown>, checks: unknown): number {
  const weights = service['Weights'];
  if (typeof weights !== 'object' || weights === null) return 1;
  const { Passing: passing, Warning: warning } = weights as Record<string, unknown>;
  const warns = Array.isArray(checks) && checks.some((c) => typeof c === 'object' && c !== null && (c as Record<string, unknown>)['Status'] === 'warning');
  const chosen = warns ? warning : passing;
  return typeof chosen === 'number' && Number.isInteger(chosen) && chosen >= 1 ? chosen : 1;
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConsulAnswerError(`consul: ${what} is not an object`);
  return value as Record<string, unknown>;
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** A set's identity, to tell whether an answer changed anything. */
export function setKey(backends: readonly DiscoveredBackend[]): string {
  return backends.map((b) => `${b.url}*${b.weight}`).join(',');
}
