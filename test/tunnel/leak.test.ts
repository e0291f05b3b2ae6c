import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import type { Backend } from '../../src/upstream/backend.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { until } from '../helpers/servers.js';
import { startWsBackend, wsUrl, type WsBackend } from '../helpers/ws.js';

/**
 * Issue 11's leak check: 10,000 open/echo/close cycles, with clients vanishing (after the 101 and
 * during the handshake), backends dying mid-tunnel, backends refusing the upgrade (401, 503) and,
 * every 500 cycles, a backend server really closed and restarted on its port, in turn and 32 at a
 * time. Switchyard, the backends and the clients share this process, so its descriptors must all
 * come back: every socket of a cycle is closed by its end.
 */

const cycles = 10_000;
const warmUpCycles = 600;
const concurrency = 32;
const restartEvery = 500;
const cycleTimeoutMs = 15_000;

const handshake = (port: number): string =>
  `GET /chat HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** How a cycle ended; `cut`: its tunnel or handshake was on the backend that was being restarted. */
type Outcome = 'echoed' | 'refused' | 'vanished' | 'died' | 'abandoned' | 'cut';

/** The next `name` event's arguments; unlike events.once, an 'error' (always handled here) does not reject. */
function next(ws: WebSocket, name: string): Promise<unknown[]> {
  return new Promise((resolve) => ws.once(name, (...args: unknown[]) => resolve(args)));
}

/** Resolves with the first of a message or a close; a close means the tunnel was cut. */
async function echoOrCut(ws: WebSocket, data: string | Buffer): Promise<boolean> {
  if (ws.readyState !== WebSocket.OPEN) return false;
  ws.send(data);
  const [event] = await Promise.race([next(ws, 'message').then(() => ['message']), next(ws, 'close').then(() => ['close'])]);
  return event === 'message';
}

/** Opens a tunnel; null when the handshake got any answer but a 101 (a refusal, or a 502 during a restart). */
async function tryOpen(url: string): Promise<{ ws: WebSocket; status: number }> {
  const ws = new WebSocket(url);
  ws.on('error', () => {});
  const status = await Promise.race([
    next(ws, 'open').then(() => 101),
    next(ws, 'unexpected-response').then(([, res]) => (res as { statusCode?: number }).statusCode ?? 0),
    next(ws, 'close').then(() => 0),
  ]);
  return { ws, status };
}

async function closed(ws: WebSocket): Promise<void> {
  if (ws.readyState !== WebSocket.CLOSED) await next(ws, 'close');
}

/** One cycle of the mix, chosen by its number. */
async function cycle(i: number, lbUrl: string, lbPort: number): Promise<Outcome> {
  const kind = i % 8;
  if (kind === 5) {
    // The client vanishes during its handshake: gone once its request left, or a moment later.
    const socket = net.connect(lbPort, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.write(handshake(lbPort), () => resolve()));
    if (i % 16 === 13) await new Promise((resolve) => setTimeout(resolve, 1));
    socket.destroy();
    await once(socket, 'close');
    return 'abandoned';
  }
  const path = kind === 1 ? '/private' : kind === 6 ? '/busy' : '/chat';
  const { ws, status } = await tryOpen(wsUrl(lbUrl, path));
  if (status !== 101) {
    ws.terminate();
    await closed(ws);
    return (kind === 1 && status === 401) || (kind === 6 && status === 503) ? 'refused' : 'cut';
  }
  if (!(await echoOrCut(ws, kind === 7 ? Buffer.alloc(16_384, i & 0xff) : `m${i}`))) return 'cut';
  if (kind === 2) {
    ws.terminate();
    await closed(ws);
    return 'vanished';
  }
  if (kind === 3) {
    ws.send('die');
    await closed(ws);
    return 'died';
  }
  ws.close();
  await closed(ws);
  return 'echoed';
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${cycleTimeoutMs} ms`)), cycleTimeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

test(`descriptors, tunnels and in-flight counts return to baseline after ${cycles} mixed tunnel cycles`, { timeout: 300_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const steady = await startWsBackend();
  cleanup(() => steady.close());
  let restarting: WsBackend = await startWsBackend();
  const port = restarting.port;
  cleanup(() => restarting.close());
  const config = localConfig({
    web: {
      backends: [steady.url, restarting.url],
      balancer: 'round-robin',
      // Short ejections, so the restarted backend is back in rotation soon after each restart.
      outlierDetection: { consecutiveFailures: 5, baseEjectionTime: '200ms', maxEjectionTime: '500ms' },
      healthCheck: { interval: '500ms' },
    },
  });
  const lb = await startConfigured({ config });
  cleanup(() => lb.close());
  const lbPort = lb.address.port;
  const backends = (): Backend[] => [...lb.upstream.backends];
  const settled = (): boolean =>
    backends().every((b) => b.tunnels === 0 && b.inFlight === 0) && steady.open.size === 0 && restarting.open.size === 0;

  const outcomes: Record<Outcome, number> = { echoed: 0, refused: 0, vanished: 0, died: 0, abandoned: 0, cut: 0 };
  let restarts = 0;
  async function run(from: number, to: number): Promise<void> {
    let cursor = from;
    const worker = async (): Promise<void> => {
      while (cursor < to) {
        const i = cursor++;
        if (i % restartEvery === restartEvery / 2) {
          // A backend really goes away, open tunnels and all, and comes back on the same port.
          await withTimeout(restarting.close(), `restart ${i}: close`);
          restarting = await withTimeout(startWsBackend(port), `restart ${i}: listen`);
          restarts++;
          continue;
        }
        outcomes[await withTimeout(cycle(i, lb.url, lbPort), `cycle ${i} (kind ${i % 8})`)]++;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }

  // Warm-up: every path once (including a restart), so lazily opened descriptors are in the baseline.
  await run(0, warmUpCycles);
  await until(settled, 10_000, 'warm-up tunnels closed');
  // The lowest of a few readings: a health check's connection may be open at any one of them.
  let baseline = openFds();
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    baseline = Math.min(baseline, openFds());
  }
  const totalsBefore = backends().map((b) => b.tunnelsTotal);
  for (const key of Object.keys(outcomes) as Outcome[]) outcomes[key] = 0;
  restarts = 0;

  const startedMs = performance.now();
  await run(warmUpCycles, warmUpCycles + cycles);
  const elapsedMs = performance.now() - startedMs;
  t.diagnostic(`${cycles} cycles in ${(elapsedMs / 1000).toFixed(1)} s (${Math.round(cycles / (elapsedMs / 1000))}/s), ${restarts} restarts: ${JSON.stringify(outcomes)}`);

  await until(settled, 10_000, `every tunnel closed (open: ${backends().map((b) => b.tunnels)}, in flight: ${backends().map((b) => b.inFlight)})`);
  // No slack: each cycle closes every socket it opened (client, Switchyard's two, the backend's),
  // and health checks' connections come and go, so some moment shows the baseline again.
  await until(() => openFds() <= baseline, 10_000, `descriptors back at ${baseline} (now ${openFds()})`);

  const opened = backends().reduce((sum, b, i) => sum + b.tunnelsTotal - (totalsBefore[i] ?? 0), 0);
  const mixed = outcomes.echoed + outcomes.vanished + outcomes.died;
  assert.ok(opened >= mixed, `every echoed, vanished and died cycle had a tunnel (${opened} opened, ${mixed} such cycles)`);
  // Each kind ran: of every 8 cycles 5 open a tunnel, 2 are refused and 1 abandons its handshake.
  assert.ok(outcomes.refused >= cycles / 4 - outcomes.cut, `refusals relayed: ${outcomes.refused}`);
  assert.ok(outcomes.vanished > 0 && outcomes.died > 0 && outcomes.abandoned > 0);
  // Cut cycles are those caught by a restart: at most the cycles in flight at each one.
  assert.ok(outcomes.cut <= restarts * concurrency * 2, `${outcomes.cut} cycles cut by ${restarts} restarts`);
});
