import { request } from 'undici';
import { byKey, parseExposition } from '../helpers/prometheus.js';

/** Helpers of the discovery scenarios with traffic flowing (kubernetes-traffic, consul-traffic). */

export interface DiscoveryStatus {
  state: string;
  generation: number;
  lastError: { message: string } | null;
  backends: number;
}

/** Status and body of one GET. */
export async function get(url: string): Promise<[number, string]> {
  const res = await request(url);
  return [res.statusCode, await res.body.text()];
}

/** One upstream's discovery in `GET /api/status`. */
export async function discoveryStatus(adminUrl: string, upstream: string): Promise<DiscoveryStatus> {
  const res = await request(`${adminUrl}/api/status`);
  return ((await res.body.json()) as { discovery: Record<string, DiscoveryStatus> }).discovery[upstream] as DiscoveryStatus;
}

/** A backend's `state` in `GET /api/upstreams/NAME` (up, down, draining, disabled), or undefined. */
export async function adminState(adminUrl: string, upstream: string, url: string): Promise<string | undefined> {
  const res = await request(`${adminUrl}/api/upstreams/${upstream}`);
  const body = (await res.body.json()) as { backends: { url: string; state: string }[] };
  return body.backends.find((b) => b.url === url)?.state;
}

/** `/metrics` as a map from `name{labels}` to value. */
export async function scrape(adminUrl: string): Promise<Map<string, number>> {
  return byKey(parseExposition(await (await request(`${adminUrl}/metrics`)).body.text()));
}

/** Polls an asynchronous condition (an admin API answer), bounded. */
export async function untilAsync(predicate: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await predicate())) {
    const leftMs = deadline - performance.now();
    if (leftMs <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(20, leftMs)));
  }
}
