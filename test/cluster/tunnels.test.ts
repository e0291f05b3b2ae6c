import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import type { WebSocket } from 'ws';
import { cleanupFor } from '../helpers/cleanup.js';
import { byKey, parseExposition } from '../helpers/prometheus.js';
import { echo, openWs, startWsBackend, wsUrl } from '../helpers/ws.js';
import { adminJson, startCluster } from './cluster-helpers.js';

interface Tunnels {
  open: number;
  total: number;
  bytesIn: number;
  bytesOut: number;
}

test('2 workers: the listener tunnel figures in /api/status and /metrics are summed over the workers', { timeout: 60_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const backend = await startWsBackend();
  cleanup(() => backend.close());
  const { port, admin } = await startCluster(['--workers', '2', '--backends', backend.url], cleanup);
  const lbUrl = `http://127.0.0.1:${port}`;
  // Each on its own connection: the kernel hands them to either worker.
  const sockets: WebSocket[] = [];
  for (let i = 0; i < 6; i++) {
    const ws = await openWs(wsUrl(lbUrl));
    sockets.push(ws);
    cleanup(() => ws.terminate());
    assert.equal(await echo(ws, 'hello'), 'hello');
  }
  // A masked 5-byte text frame is 11 bytes in, its echo 7 bytes out.
  const expected: Tunnels = { open: 6, total: 6, bytesIn: 66, bytesOut: 42 };
  const status = (await adminJson(admin, '/api/status')) as { listeners: { port: number; tunnels: Tunnels | null }[] };
  assert.deepEqual(status.listeners.map((l) => [l.port, l.tunnels]), [[port, expected]]);
  const metrics = byKey(parseExposition(await (await fetch(`${admin}/metrics`)).text()));
  const listener = `127.0.0.1:${port}`;
  assert.equal(metrics.get(`switchyard_listener_tunnels_open{listener="${listener}"}`), 6);
  assert.equal(metrics.get(`switchyard_listener_tunnels_total{listener="${listener}"}`), 6);
  assert.equal(metrics.get(`switchyard_listener_tunnel_bytes_total{direction="in",listener="${listener}"}`), 66);
  assert.equal(metrics.get(`switchyard_listener_tunnel_bytes_total{direction="out",listener="${listener}"}`), 42);

  for (const ws of sockets.slice(0, 2)) {
    ws.close();
    await once(ws, 'close');
  }
  const tunnels = async (): Promise<Tunnels | null | undefined> => ((await adminJson(admin, '/api/status')) as { listeners: { tunnels: Tunnels | null }[] }).listeners[0]?.tunnels;
  // The proxy closes its side of each tunnel just after the client saw the close.
  const deadline = performance.now() + 5000;
  while ((await tunnels())?.open !== 4) {
    assert.ok(performance.now() < deadline, 'closed tunnels leave the open count within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal((await tunnels())?.total, 6);
});
