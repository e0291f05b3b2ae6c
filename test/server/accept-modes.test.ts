import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { defaultAcceptMode, listenBatched, reusePortSupported, type AcceptMode } from '../../src/server/accept-fds.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { closeServer } from '../helpers/servers.js';

/**
 * Accept batching both ways (issue 10): duplicated descriptors of one socket (every Node) and
 * SO_REUSEPORT sockets on one port (Node 22.12+ on Linux). Each must really add accepting
 * descriptors, never fall back to none unseen, and serve a burst of connections.
 */
const batch = 8;
const burst = 400;
const reusePortSkip = reusePortSupported() ? false : `reusePort needs Node 22.12+ on Linux (this is ${process.version} on ${process.platform})`;

interface Batched {
  readonly port: number;
  /** Connections accepted by the main socket ([0]) and by each extra listener. */
  readonly accepted: number[];
  readonly extra: net.Server[];
}

/** A TCP server answering one byte per connection, listening with `batch` accepting descriptors. */
async function startBatched(t: TestContext, mode: AcceptMode, port = 0): Promise<Batched> {
  const cleanup = cleanupFor(t);
  const server = net.createServer((socket) => socket.end('x'));
  const accepted = [0];
  // Each extra listener hands its connections to the main server, as the Listener does.
  const extra = await listenBatched(server, { port, host: '127.0.0.1', backlog: 1024 }, batch, (socket) => server.emit('connection', socket), mode);
  cleanup(() => closeServer(server));
  for (const [i, listener] of extra.entries()) {
    accepted.push(0);
    listener.on('connection', () => (accepted[i + 1] as number)++);
    cleanup(() => closeServer(listener));
  }
  server.on('connection', () => (accepted[0] as number)++);
  return { port: (server.address() as AddressInfo).port, accepted, extra };
}

/** Opens `count` connections at once; resolves when each has been answered, or fails after 10 s. */
async function connectionBurst(port: number, count: number): Promise<number> {
  const started = performance.now();
  const sockets: net.Socket[] = [];
  try {
    await Promise.all(
      Array.from({ length: count }, () => {
        const socket = net.connect(port, '127.0.0.1');
        sockets.push(socket);
        return new Promise<void>((resolve, reject) => {
          socket.once('data', () => resolve());
          socket.once('error', reject);
          const timer = setTimeout(() => reject(new Error('no answer within 10 s')), 10_000);
          socket.once('close', () => clearTimeout(timer));
        });
      }),
    );
  } finally {
    for (const socket of sockets) socket.destroy();
  }
  return performance.now() - started;
}

/** Kernel sockets listening on 127.0.0.1:`port` (Linux's /proc/net/tcp; state 0A is LISTEN). */
function listeningSockets(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'latin1')
    .split('\n')
    .filter((line) => {
      const fields = line.trim().split(/\s+/);
      return fields[1] === local && fields[3] === '0A';
    }).length;
}

function assertBatched(t: TestContext, { accepted, extra }: Batched, elapsedMs: number): void {
  // The main server's count includes what the extras handed over: take those out.
  const own = (accepted[0] as number) - accepted.slice(1).reduce((a, b) => a + b, 0);
  const perDescriptor = [own, ...accepted.slice(1)];
  t.diagnostic(`${burst} connections in ${elapsedMs.toFixed(0)} ms; accepted per descriptor: ${perDescriptor.join(' ')}`);
  assert.equal(extra.length, batch - 1, 'every extra accepting descriptor is there');
  assert.equal(accepted[0], burst, 'every connection was served');
  assert.ok(perDescriptor.filter((n) => n > 0).length > 1, `more than one descriptor accepted (${perDescriptor.join(' ')})`);
}

describe('accept batching', () => {
  test('duplicated descriptors accept a connection burst together', async (t) => {
    const batched = await startBatched(t, 'duplicate');
    // One socket, many descriptors of it.
    if (process.platform === 'linux') assert.equal(listeningSockets(batched.port), 1);
    assertBatched(t, batched, await connectionBurst(batched.port, burst));
  });

  test('SO_REUSEPORT sockets accept a connection burst together', { skip: reusePortSkip }, async (t) => {
    const batched = await startBatched(t, 'reuse-port');
    // One socket per descriptor, all on the same port: not duplicates made as a fallback.
    assert.equal(listeningSockets(batched.port), batch);
    assertBatched(t, batched, await connectionBurst(batched.port, burst));
  });

  test('with SO_REUSEPORT a port in use is still an error, not a shared port', { skip: reusePortSkip }, async (t) => {
    const first = await startBatched(t, 'reuse-port');
    const second = net.createServer();
    // Were it to succeed, close what it opened so the failure is reported, not a hang.
    const joined = listenBatched(second, { port: first.port, host: '127.0.0.1', backlog: 16 }, batch, () => undefined, 'reuse-port');
    await assert.rejects(
      joined.then((extra) => [second, ...extra].forEach((server) => server.close())),
      (err: NodeJS.ErrnoException) => err.code === 'EADDRINUSE',
    );
    assert.equal(second.listening, false);
  });

  test('a batch of 1 is the listening socket alone', async (t) => {
    const cleanup = cleanupFor(t);
    const server = net.createServer((socket) => socket.end('x'));
    const extra = await listenBatched(server, { port: 0, host: '127.0.0.1', backlog: 16 }, 1, () => undefined);
    cleanup(() => closeServer(server));
    assert.deepEqual(extra, []);
    assert.equal(server.listening, true);
  });

  test('SO_REUSEPORT is the default exactly where Node and the OS offer it', () => {
    assert.equal(reusePortSupported('20.20.2', 'linux'), false);
    assert.equal(reusePortSupported('22.11.0', 'linux'), false);
    assert.equal(reusePortSupported('22.12.0', 'linux'), true);
    assert.equal(reusePortSupported('24.0.0', 'linux'), true);
    assert.equal(reusePortSupported('24.0.0', 'darwin'), false);
    assert.equal(defaultAcceptMode(), reusePortSupported() ? 'reuse-port' : 'duplicate');
  });
});
