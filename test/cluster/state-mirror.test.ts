import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StateMirror } from '../../src/cluster/state-mirror.js';
import { parseConfigInput } from '../../src/config/load.js';
import type { DiscoveredBackend } from '../../src/discovery/source.js';
import { Runtime } from '../../src/runtime.js';
import { DownReason } from '../../src/upstream/backend.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { recordingLogger } from '../helpers/health.js';
import { until } from '../helpers/servers.js';

const found = (url: string): DiscoveredBackend => ({ url, weight: 1, terminating: false });
const [a, b, c] = ['http://127.0.0.1:1001', 'http://127.0.0.1:1002', 'http://127.0.0.1:1003'];

/** A worker's runtime (no listeners, no checks, following discovery) with `web` discovered as [a]. */
async function workerRuntime(cleanup: (fn: () => unknown) => void): Promise<Runtime> {
  const config = parseConfigInput({ listeners: [{ host: '127.0.0.1', port: 0 }], admin: false, upstreams: { web: { discover: { consul: { service: 'web', address: 'http://127.0.0.1:1' } } } } });
  const { logger, logs } = recordingLogger();
  const runtime = new Runtime(config, logger, undefined, undefined, { listen: false, healthChecks: false, discovery: { follow: new Map([['web', [found(a as string)]]]) } });
  cleanup(() => runtime.close(0));
  await runtime.start();
  assert.equal(logs.filter((l) => String(l['msg']).includes('consul')).length, 0, 'a following runtime starts no source');
  return runtime;
}

test('a state that arrives before its discovered set is applied is not lost; a new backend stays down until the primary says up', async (t) => {
  const cleanup = cleanupFor(t);
  const runtime = await workerRuntime(cleanup);
  const backends = () => runtime.snapshot.upstreams.get('web')?.backends ?? [];
  assert.deepEqual(backends().map((x) => x.url), [a]);
  const mirror = new StateMirror(runtime);
  // Hold the worker's reload queue, as a reload in progress would.
  let release = (): void => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  runtime.enqueue(() => held);
  // The primary added b and c (down for their first health check), then b's check passed.
  mirror.follow({ type: 'swy:discovered', upstream: 'web', set: [a, b, c].map((u) => found(u as string)), states: [{ upstream: 'web', url: a as string, bits: 0 }, { upstream: 'web', url: b as string, bits: DownReason.healthCheck }, { upstream: 'web', url: c as string, bits: DownReason.healthCheck }] });
  mirror.apply([{ upstream: 'web', url: b as string, bits: 0 }]);
  assert.equal(backends().length, 1, 'the set waits in the queue');
  release();
  await until(() => backends().length === 3, 5000, 'the set applied');
  const bits = Object.fromEntries(backends().map((x) => [x.url, x.downReasons]));
  assert.deepEqual(bits, { [a as string]: 0, [b as string]: 0, [c as string]: DownReason.healthCheck });
  // c's check passes later: an ordinary state message.
  mirror.apply([{ upstream: 'web', url: c as string, bits: 0 }]);
  assert.ok(backends().every((x) => x.downReasons === 0));
});
