import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { DownReason } from '../../src/index.js';
import { rawExchange } from '../helpers/raw.js';
import { closeServer, deadPort, startLb, until } from '../helpers/servers.js';
import { echo, openWs, startWsBackend, wsUrl, type WsBackend } from '../helpers/ws.js';

describe('WebSocket tunnels', () => {
  let backend: WsBackend;
  let lb: Awaited<ReturnType<typeof startLb>>;

  before(async () => {
    backend = await startWsBackend();
    lb = await startLb({ backends: [backend.url] });
  });

  after(async () => {
    await lb.close();
    backend.wss.close();
    await closeServer(backend.server);
  });

  function inFlight(): number {
    return lb.upstream.backends.reduce((sum, b) => sum + b.inFlight, 0);
  }

  test('echoes through Switchyard, with Sec-WebSocket-* and forwarding fields passed to the backend', async () => {
    const ws = await openWs(wsUrl(lb.url));
    assert.equal(await echo(ws, 'hello'), 'hello');
    assert.equal(inFlight(), 1, 'an open tunnel counts in its backend\'s load');
    const seen = backend.handshakes.at(-1) as http.IncomingHttpHeaders;
    assert.equal(seen.upgrade, 'websocket');
    assert.match(String(seen['sec-websocket-key']), /==$/);
    assert.equal(seen['sec-websocket-version'], '13');
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
    ws.close();
    await once(ws, 'close');
    await until(() => backend.open.size === 0 && inFlight() === 0, 5000, 'tunnel closed on both sides');
  });

  test('the 101 carries our Via', async () => {
    const ws = new WebSocket(wsUrl(lb.url));
    const opened = once(ws, 'open');
    const [res] = (await once(ws, 'upgrade')) as [http.IncomingMessage];
    assert.match(String(res.headers.via), /switchyard/);
    await opened;
    ws.close();
    await once(ws, 'close');
  });

  test('a refusal (401) is relayed as an ordinary response and nothing is left open', async () => {
    const ws = new WebSocket(wsUrl(lb.url, '/private'));
    ws.on('error', () => {});
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, http.IncomingMessage];
    assert.equal(res.statusCode, 401);
    assert.equal(res.headers['www-authenticate'], 'Bearer');
    let body = '';
    for await (const chunk of res) body += String(chunk);
    assert.equal(body, 'no way');
    ws.terminate();
    await until(() => inFlight() === 0, 5000, 'attempt released');
  });

  test('a backend dying mid-tunnel closes the client', async () => {
    const ws = await openWs(wsUrl(lb.url));
    ws.on('error', () => {});
    ws.send('die');
    const [code] = (await once(ws, 'close')) as [number];
    assert.equal(code, 1006, 'closed abnormally: the TCP connection went away');
    await until(() => inFlight() === 0, 5000, 'attempt released');
  });

  test('a client vanishing closes the backend socket', async () => {
    const ws = await openWs(wsUrl(lb.url));
    assert.equal(await echo(ws, 'x'), 'x');
    assert.equal(backend.open.size, 1);
    ws.terminate();
    await until(() => backend.open.size === 0 && inFlight() === 0, 5000, 'backend side closed');
  });

  test('a 64 KiB binary message and head bytes sent with the handshake pass', async () => {
    const ws = await openWs(wsUrl(lb.url));
    const big = Buffer.alloc(65536, 7);
    ws.send(big);
    const [data] = (await once(ws, 'message')) as [Buffer];
    assert.deepEqual(data, big);
    ws.close();
    await once(ws, 'close');
  });

  test('h2c and other upgrade tokens get a plain HTTP/1.1 answer, and the connection stays HTTP/1.1', async () => {
    const socket = net.connect(lb.address.port, '127.0.0.1');
    try {
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      // A client waits for the answer to an upgrade request before it sends more (RFC 9113 section 3.2).
      socket.write('GET /h2 HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n');
      await until(() => text.includes('plain GET /h2'), 5000, 'the h2c request answered');
      assert.match(text, /^HTTP\/1\.1 200 /);
      assert.match(text, /x-upgrade-seen: \r\n/i, 'Upgrade is hop-by-hop: not forwarded');
      socket.write('GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      await once(socket, 'end');
      assert.match(text, /plain GET \/next/);
    } finally {
      socket.destroy();
    }
  });

  test('curl --http2 gets its answer', async (t) => {
    const out = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile('curl', ['-s', '--http2', '--max-time', '5', `${lb.url}/via-curl`], (err, stdout) => resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? 1), stdout }));
    });
    if (out.code === 2 || out.code === 127) return t.skip('curl without HTTP/2');
    assert.equal(out.stdout, 'plain GET /via-curl');
  });

  test('a WebSocket upgrade on a POST with a body is a plain request', async () => {
    const handshakes = backend.handshakes.length;
    const res = await rawExchange(lb.address.port, 'POST /form HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 5\r\n\r\nhello');
    assert.equal(res.status, 200);
    assert.match(res.body.toString(), /plain POST \/form/);
    assert.equal(backend.handshakes.length, handshakes, 'not a handshake for the backend');
  });

  test('a WebSocket upgrade on a GET that declares a body is a plain request: no body bytes enter a tunnel', async () => {
    const handshakes = backend.handshakes.length;
    const res = await rawExchange(lb.address.port, 'GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 5\r\n\r\nhello');
    assert.equal(res.status, 200);
    assert.match(res.body.toString(), /plain GET \/chat/);
    assert.equal(backend.handshakes.length, handshakes);
  });

  test('a handshake without Sec-WebSocket-Key gets what the backend says, and the client is closed', async () => {
    const res = await rawExchange(lb.address.port, 'GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n');
    assert.equal(res.status, 400, 'ws refuses a handshake without a key');
    await until(() => inFlight() === 0, 5000, 'attempt released');
  });

  test('a handshake with a wrong Sec-WebSocket-Version gets the backend\'s 400 and its supported version', async () => {
    const res = await rawExchange(lb.address.port, 'GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n\r\n');
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('connection')?.[0], 'close');
    await until(() => inFlight() === 0, 5000, 'attempt released');
  });

  test('an unknown route or bad host is refused before any backend', async () => {
    const res = await rawExchange(lb.address.port, 'GET /chat HTTP/1.1\r\nHost: a b\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    assert.equal(res.status, 400);
  });
});

describe('WebSocket tunnels: volume', () => {
  test('64 MiB pass through one tunnel with backpressure: the relay queues little', async (t) => {
    // A raw backend: answers the handshake with 101, then counts what arrives, reading slowly
    // at first so the tunnel has to hold the client back.
    let received = 0;
    const server = http.createServer();
    server.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      socket.pause();
      setTimeout(() => socket.resume(), 200);
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received === total) socket.end('done');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const total = 64 * 1024 * 1024;
    const lb = await startLb({ backends: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`] });
    const client = net.connect(lb.address.port, '127.0.0.1');
    try {
      client.write('GET /bulk HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
      let reply = '';
      client.on('data', (chunk: Buffer) => (reply += chunk.toString('latin1')));
      await until(() => reply.includes('\r\n\r\n'), 5000, 'the 101');
      assert.match(reply, /^HTTP\/1\.1 101 /);
      // What the relay holds: bytes queued on its two sockets. Through a relay without
      // backpressure most of the 64 MiB would queue there while the backend stalls. (Not RSS:
      // Node 24 grows its young generation to 128 MiB under any load.)
      const tunnel = [...(lb.upstream.backends[0]?.openTunnels ?? [])][0] as unknown as { upstreamSocket: net.Socket | null; client: net.Socket } | undefined;
      assert.ok(tunnel !== undefined, 'the tunnel is open');
      let peak = 0;
      const sampler = setInterval(() => {
        peak = Math.max(peak, (tunnel.upstreamSocket?.writableLength ?? 0) + tunnel.client.writableLength);
      }, 1);
      const chunk = Buffer.alloc(64 * 1024, 1);
      try {
        for (let sent = 0; sent < total; sent += chunk.length) {
          if (!client.write(chunk)) await once(client, 'drain');
        }
        await until(() => reply.endsWith('done'), 30_000, 'the backend to count every byte');
      } finally {
        clearInterval(sampler);
      }
      assert.equal(received, total);
      t.diagnostic(`peak bytes queued in the relay: ${peak}`);
      assert.ok(peak > 0, 'the stalled backend made the relay hold bytes: the sampler sees its queues');
      assert.ok(peak < 4 * 1024 * 1024, `the relay queued ${Math.round(peak / 1048576)} MiB while 64 MiB passed`);
    } finally {
      client.destroy();
      await lb.close();
      await closeServer(server);
    }
  });
});

describe('WebSocket tunnels: balancing', () => {
  test('the 101 pins the client with the sticky cookie, and handshakes that carry it go to the same backend', async () => {
    const backends = [await startWsBackend(), await startWsBackend()];
    const lb = await startLb({ backends: backends.map((b) => b.url), sticky: {} });
    try {
      const first = new WebSocket(wsUrl(lb.url));
      const opened = once(first, 'open');
      const [res] = (await once(first, 'upgrade')) as [http.IncomingMessage];
      await opened;
      const setCookie = res.headers['set-cookie']?.[0] ?? '';
      assert.match(setCookie, /^swy=/);
      const cookie = setCookie.split(';')[0] as string;
      const pinned = backends.findIndex((b) => b.open.size === 1);
      first.close();
      await once(first, 'close');
      for (let i = 0; i < 4; i++) {
        const ws = new WebSocket(wsUrl(lb.url), { headers: { cookie } });
        await once(ws, 'open');
        assert.equal(backends[pinned]?.open.size, 1, `handshake ${i} went to the pinned backend`);
        ws.close();
        await once(ws, 'close');
        await until(() => backends.every((b) => b.open.size === 0), 5000, 'closed');
      }
    } finally {
      await lb.close();
      for (const b of backends) {
        b.wss.close();
        await closeServer(b.server);
      }
    }
  });
});

describe('WebSocket tunnels: counts, metrics and the access log', () => {
  test('an open tunnel shows in the admin API and /metrics; its close is logged with duration and bytes', async () => {
    const backend = await startWsBackend();
    const lb = await startLb({ backends: [backend.url], accessLog: true, admin: { host: '127.0.0.1', port: 0 } });
    try {
      const ws = await openWs(wsUrl(lb.url, '/live'));
      assert.equal(await echo(ws, 'abcdef'), 'abcdef');
      const b = lb.upstream.backends[0] as (typeof lb.upstream.backends)[number];
      assert.equal(b.tunnels, 1);
      assert.equal(b.tunnelsTotal, 1);
      // A masked client frame of 6 bytes is 12 bytes; the server's unmasked echo 8.
      assert.equal(b.tunnelBytesIn, 12);
      assert.equal(b.tunnelBytesOut, 8);
      const api = (await (await fetch(`${lb.adminUrl}/api/upstreams`)).json()) as { upstreams?: unknown } | unknown[];
      assert.match(JSON.stringify(api), /"tunnels":\{"open":1,"total":1,"bytesIn":12,"bytesOut":8\}/);
      const metrics = await (await fetch(`${lb.adminUrl}/metrics`)).text();
      assert.match(metrics, /backend_tunnels_open\{[^}]*\} 1\n/);
      assert.match(metrics, /backend_tunnels_total\{[^}]*\} 1\n/);
      assert.match(metrics, /backend_tunnel_bytes_total\{[^}]*direction="in"\} 12\n/);
      // The listener's figures too.
      const listener = `127.0.0.1:${lb.address.port}`;
      const status = (await (await fetch(`${lb.adminUrl}/api/status`)).json()) as { listeners: { port: number; tunnels: unknown }[] };
      assert.deepEqual(status.listeners.map((l) => [l.port, l.tunnels]), [[lb.address.port, { open: 1, total: 1, bytesIn: 12, bytesOut: 8 }]]);
      assert.ok(metrics.includes(`switchyard_listener_tunnels_open{listener="${listener}"} 1\n`), metrics);
      assert.ok(metrics.includes(`switchyard_listener_tunnels_total{listener="${listener}"} 1\n`));
      assert.ok(metrics.includes(`switchyard_listener_tunnel_bytes_total{listener="${listener}",direction="out"} 8\n`));
      ws.close();
      await once(ws, 'close');
      await until(() => b.tunnels === 0 && b.inFlight === 0, 5000, 'tunnel counted down');
      const closed = (await (await fetch(`${lb.adminUrl}/api/status`)).json()) as { listeners: { tunnels: { open: number; total: number } }[] };
      assert.deepEqual([closed.listeners[0]?.tunnels.open, closed.listeners[0]?.tunnels.total], [0, 1]);
      await until(() => lb.logs.some((line) => line.tunnel === true), 5000, 'the tunnel\'s access-log line');
      const line = lb.logs.find((l) => l.tunnel === true) as Record<string, unknown>;
      assert.equal(line.path, '/live');
      assert.equal(line.status, 101);
      assert.equal(line.backend, backend.url);
      assert.equal(typeof line.durationMs, 'number');
      // The close frames (2-byte code each way) follow the echo.
      assert.ok((line.bytesIn as number) >= 12 && (line.bytesOut as number) >= 8);
    } finally {
      await lb.close();
      backend.wss.close();
      await closeServer(backend.server);
    }
  });
});

describe('WebSocket tunnels: retries, timeouts and shutdown', () => {
  test('a tunnel idle longer than the header and request timeouts stays open', async () => {
    const backend = await startWsBackend();
    const lb = await startLb({ backends: [backend.url], clientHeadersTimeoutMs: 200, requestTimeoutMs: 300 });
    try {
      const ws = await openWs(wsUrl(lb.url));
      let closed = false;
      ws.on('close', () => (closed = true));
      // Several of Node's connection sweeps (every 75 ms here) run while the tunnel is idle.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal(closed, false);
      assert.equal(await echo(ws, 'still here'), 'still here');
      ws.close();
      await once(ws, 'close');
    } finally {
      await lb.close();
      backend.wss.close();
      await closeServer(backend.server);
    }
  });

  test('a tunnel idle for tunnelIdleTimeout is closed on both sides; traffic keeps it open', async () => {
    const backend = await startWsBackend();
    const lb = await startLb({ backends: [backend.url], tunnelIdleTimeoutMs: 400 });
    try {
      const ws = await openWs(wsUrl(lb.url));
      const startMs = performance.now();
      // Traffic every 100 ms for 800 ms: twice the idle timeout, never idle for it.
      for (let i = 0; i < 8; i++) {
        assert.equal(await echo(ws, `t${i}`), `t${i}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(ws.readyState, WebSocket.OPEN);
      ws.on('error', () => {});
      await once(ws, 'close');
      const idleMs = performance.now() - startMs;
      assert.ok(idleMs >= 1000 && idleMs < 5000, `closed after ${idleMs} ms`);
      await until(() => backend.open.size === 0 && lb.upstream.backends[0]?.inFlight === 0, 5000, 'backend side closed');
    } finally {
      await lb.close();
      backend.wss.close();
      await closeServer(backend.server);
    }
  });

  for (const closeTunnelsOnDown of [false, true]) {
    test(`a backend marked down ${closeTunnelsOnDown ? 'closes its tunnels with closeTunnelsOnDown' : 'keeps its open tunnels by default'}`, async () => {
      const backend = await startWsBackend();
      const lb = await startLb({ backends: [backend.url], closeTunnelsOnDown });
      try {
        const ws = await openWs(wsUrl(lb.url));
        ws.on('error', () => {});
        const b = lb.upstream.backends[0] as (typeof lb.upstream.backends)[number];
        b.markDown(DownReason.healthCheck);
        if (closeTunnelsOnDown) {
          await once(ws, 'close');
          await until(() => backend.open.size === 0 && b.tunnels === 0 && b.inFlight === 0, 5000, 'tunnel closed');
        } else {
          assert.equal(await echo(ws, 'still'), 'still');
          ws.close();
          await once(ws, 'close');
        }
      } finally {
        await lb.close();
        backend.wss.close();
        await closeServer(backend.server);
      }
    });
  }

  test('a reload that removes a backend lets its tunnels run for the grace period, then closes them', async () => {
    const a = await startWsBackend();
    const b = await startWsBackend();
    const lb = await startLb({ backends: [a.url], gracePeriodMs: 500 });
    try {
      const ws = await openWs(wsUrl(lb.url));
      ws.on('error', () => {});
      const removed = lb.upstream.backends[0] as (typeof lb.upstream.backends)[number];
      const result = await lb.reload({ listeners: [{ host: '127.0.0.1', port: 0 }], gracePeriod: 500, upstreams: { default: { backends: [b.url] } } });
      assert.equal(result.ok, true, result.error);
      const reloadedMs = performance.now();
      assert.equal(await echo(ws, 'during the grace period'), 'during the grace period');
      await once(ws, 'close');
      const tookMs = performance.now() - reloadedMs;
      assert.ok(tookMs >= 400 && tookMs < 5000, `closed ${tookMs} ms after the reload`);
      await until(() => a.open.size === 0 && removed.tunnels === 0, 5000, 'the removed backend\'s tunnel closed');
      const next = await openWs(wsUrl(lb.url));
      assert.equal(await echo(next, 'new'), 'new');
      assert.equal(b.open.size, 1, 'a new tunnel goes to the new backend');
      next.close();
      await once(next, 'close');
    } finally {
      await lb.close();
      for (const backend of [a, b]) {
        backend.wss.close();
        await closeServer(backend.server);
      }
    }
  });

  test('shutdown during a handshake the backend holds closes both sides', async () => {
    const held: net.Socket[] = [];
    const server = http.createServer();
    server.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket) => held.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const lb = await startLb({ backends: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`], gracePeriodMs: 200 });
    const ws = new WebSocket(wsUrl(lb.url));
    ws.on('error', () => {});
    try {
      await until(() => held.length === 1, 5000, 'handshake at the backend');
      // The backend's server socket allows half-open connections: our close arrives as its 'end'.
      const closedAtBackend = once(held[0] as net.Socket, 'end');
      await lb.close();
      await closedAtBackend;
      assert.equal(lb.upstream.backends[0]?.inFlight, 0);
      if (ws.readyState !== WebSocket.CLOSED) await once(ws, 'close');
    } finally {
      ws.terminate();
      for (const socket of held) socket.destroy();
      await closeServer(server);
    }
  });

  test('a connect failure moves the handshake on to the next backend', async () => {
    const backend = await startWsBackend();
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const lb = await startLb({ backends: [dead, backend.url], balancer: 'round-robin' });
    try {
      for (let i = 0; i < 2; i++) {
        const ws = await openWs(wsUrl(lb.url));
        assert.equal(await echo(ws, 'ok'), 'ok');
        ws.close();
        await once(ws, 'close');
      }
    } finally {
      await lb.close();
      backend.wss.close();
      await closeServer(backend.server);
    }
  });

  test('shutdown closes open tunnels after the grace period and close() does not hang', async () => {
    const backend = await startWsBackend();
    const lb = await startLb({ backends: [backend.url], gracePeriodMs: 300 });
    const ws = await openWs(wsUrl(lb.url));
    ws.on('error', () => {});
    const closed = once(ws, 'close');
    const startMs = performance.now();
    try {
      await lb.close();
      const tookMs = performance.now() - startMs;
      assert.ok(tookMs >= 250 && tookMs < 5000, `close took ${tookMs} ms`);
      await closed;
      await until(() => backend.open.size === 0, 5000, 'backend side closed');
    } finally {
      ws.terminate();
      backend.wss.close();
      await closeServer(backend.server);
    }
  });

  test('a tunnel closed during the grace period lets close() finish early', async () => {
    const backend = await startWsBackend();
    const lb = await startLb({ backends: [backend.url], gracePeriodMs: 10_000 });
    const ws = await openWs(wsUrl(lb.url));
    const startMs = performance.now();
    try {
      const closing = lb.close();
      setTimeout(() => ws.close(), 100);
      await closing;
      assert.ok(performance.now() - startMs < 5000);
    } finally {
      ws.terminate();
      backend.wss.close();
      await closeServer(backend.server);
    }
  });
});
