import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { DownReason, downReasonNames, type Backend } from '../../src/upstream/backend.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { startDyingPort } from '../helpers/faults.js';
import { echo, handshakeStatus, openWs, refusedWs, startWsBackend, wsUrl } from '../helpers/ws.js';

interface BackendJson {
  readonly url: string;
  readonly state: string;
  readonly reasons: readonly string[];
}

async function adminBackends(adminUrl: string): Promise<BackendJson[]> {
  const res = await request(`${adminUrl}/api/upstreams/web`);
  assert.equal(res.statusCode, 200);
  return ((await res.body.json()) as { backends: BackendJson[] }).backends;
}

const ejected = (b: Backend): boolean => (b.downReasons & DownReason.ejected) !== 0;

describe('WebSocket tunnels: passive outlier detection', { timeout: 60_000 }, () => {
  test('handshakes that cannot connect eject a dead backend; refusals by the live ones eject nothing', async (t) => {
    const cleanup = cleanupFor(t);
    const a = await startWsBackend();
    cleanup(() => a.close());
    const c = await startWsBackend();
    cleanup(() => c.close());
    // It passes the start-up health check, then its port closes: connects are refused.
    const dying = await startDyingPort();
    cleanup(() => dying.kill());
    const dead = dying.url;
    // consecutive5xx on too: a 401 refusal is a response, and no status it counts.
    const config = localConfig(
      { web: { backends: [a.url, dead, c.url], balancer: 'round-robin', outlierDetection: { consecutiveFailures: 3, consecutive5xx: 5 } } },
      { admin: { host: '127.0.0.1', port: 0 } },
    );
    const lb = await startConfigured({ config });
    cleanup(() => lb.close());
    await dying.kill();
    const deadBackend = lb.upstream.backends[1] as Backend;
    for (let i = 0; i < 30 && !ejected(deadBackend); i++) {
      // Every handshake reaches a live backend, the dead one's connect failure moving it on.
      if (i % 2 === 0) assert.equal(await refusedWs(wsUrl(lb.url, '/private')), 401);
      else {
        const ws = await openWs(wsUrl(lb.url));
        assert.equal(await echo(ws, `m${i}`), `m${i}`);
        ws.close();
      }
    }
    const view = await adminBackends(lb.adminUrl as string);
    assert.deepEqual(
      view.map((b) => [b.url, b.state, b.reasons]),
      [
        [a.url, 'up', []],
        [dead, 'down', ['outlier-ejected']],
        [c.url, 'up', []],
      ],
    );
    assert.ok(
      lb.logs.some((line) => line.msg === `${dead} ejected for 30s after 3 consecutive connect failures`),
      'the ejection is logged with its reason',
    );

    // Ejected, it is not tried again; many refusals later the live backends are still in.
    const tried = deadBackend.requestsTotal;
    for (let i = 0; i < 12; i++) assert.equal(await refusedWs(wsUrl(lb.url, '/private')), 401);
    assert.equal(deadBackend.requestsTotal, tried);
    assert.deepEqual((await adminBackends(lb.adminUrl as string)).map((b) => b.reasons), [[], ['outlier-ejected'], []]);
  });

  for (const consecutive5xx of [0, 3]) {
    test(`503 refusals ${consecutive5xx === 0 ? 'eject nothing without consecutive5xx' : 'eject with consecutive5xx, as 503 responses do'}`, async (t) => {
      const cleanup = cleanupFor(t);
      const busy = await startWsBackend(0, 503);
      cleanup(() => busy.close());
      const live = await startWsBackend();
      cleanup(() => live.close());
      const outlierDetection = { consecutiveFailures: 3, consecutive5xx };
      const config = localConfig({ web: { backends: [busy.url, live.url], balancer: 'round-robin', outlierDetection } });
      const lb = await startConfigured({ config });
      cleanup(() => lb.close());
      const busyBackend = lb.upstream.backends[0] as Backend;
      // Round robin: every other handshake reaches `busy`, which answers 503 to each.
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push(await handshakeStatus(wsUrl(lb.url)));
      assert.deepEqual(downReasonNames(busyBackend.downReasons), consecutive5xx === 0 ? [] : ['outlier-ejected']);
      assert.deepEqual(downReasonNames((lb.upstream.backends[1] as Backend).downReasons), []);
      // Ejected after its third 503, `busy` gets no more handshakes.
      assert.equal(statuses.filter((s) => s === 503).length, consecutive5xx === 0 ? 4 : 3);
      if (consecutive5xx !== 0) assert.ok(lb.logs.some((line) => line.msg === `${busy.url} ejected for 30s after 3 consecutive 5xx responses`));
    });
  }

  test('with retriesPerBackend 0 a handshake\'s connect failure marks the backend down, as a request\'s does', async (t) => {
    const cleanup = cleanupFor(t);
    const live = await startWsBackend();
    cleanup(() => live.close());
    const dying = await startDyingPort();
    cleanup(() => dying.kill());
    const config = localConfig({ web: { backends: [dying.url, live.url], balancer: 'round-robin', retry: { retriesPerBackend: 0 }, outlierDetection: false } });
    const lb = await startConfigured({ config });
    cleanup(() => lb.close());
    await dying.kill();
    for (let i = 0; i < 2; i++) assert.equal(await handshakeStatus(wsUrl(lb.url)), 101);
    assert.deepEqual(downReasonNames((lb.upstream.backends[0] as Backend).downReasons), ['failed-attempts']);
    assert.ok(lb.logs.some((line) => line.msg === `${dying.url} [down] after 1 failed attempt`));
  });
});
