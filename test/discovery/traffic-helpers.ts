import assert from 'node:assert/strict';
import { request } from 'undici';
import type { ConfigInput } from '../../src/config/schema.js';
import type { Switchyard } from '../../src/index.js';
import { startConfigured } from '../helpers/config.js';
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

/**
 * Starts Switchyard on a discovered upstream `web` whose source is down: checks that /ready says
 * it waits for the first set, brings the source up with `up`, and waits for /ready to turn 200.
 */
export async function startWhileSourceDown(config: ConfigInput, up: () => Promise<void>, cleanup: (fn: () => unknown) => void): Promise<{ lb: Switchyard; admin: string; status: () => Promise<DiscoveryStatus> }> {
  const lb = await startConfigured({ config });
  cleanup(() => lb.close());
  const admin = lb.adminUrl as string;
  const [notReady, why] = await get(`${admin}/ready`);
  assert.equal(notReady, 503);
  assert.match(why, /waiting for the first discovery update of web/);
  await up();
  await untilAsync(async () => (await get(`${admin}/ready`))[0] === 200, 15_000, '/ready once the first set arrived');
  return { lb, admin, status: () => discoveryStatus(admin, 'web') };
}
