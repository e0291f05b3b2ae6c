import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { AcceptBatch } from '../../src/server/adaptive-accept.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { closeServer, until } from '../helpers/servers.js';

/**
 * The accept batch made of duplicated descriptors polls only what the load needs (issue 12):
 * each polled duplicate wakes for every new connection and fails its accept when another took
 * it. A burst grows the polled set; quiet turns shrink it, and new spare duplicates restore the
 * batch for the next burst.
 */

/** A TCP server answering one byte per connection, with an adaptive batch of 64 duplicates. */
async function startAdaptive(t: import('node:test').TestContext): Promise<{ batch: AcceptBatch; port: number }> {
  const cleanup = cleanupFor(t);
  const server = net.createServer((socket) => socket.end('x'));
  const batch = new AcceptBatch(server, 64, (socket) => server.emit('connection', socket), { minExtras: 3, busyTurns: 1, quietTurns: 4, shrinkIntervalMs: 0 });
  await batch.listen({ port: 0, host: '127.0.0.1', backlog: 1024 }, 'duplicate');
  cleanup(() => closeServer(server));
  cleanup(() => batch.close());
  return { batch, port: (server.address() as AddressInfo).port };
}

/** One connection, answered, then closed. */
function oneConnection(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('data', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

test('duplicates: a few polled at start, more for a burst, fewer when quiet, the batch kept', { skip: process.platform === 'linux' ? false : 'duplicated descriptors are tested on Linux' }, async (t) => {
  const { batch, port } = await startAdaptive(t);
  assert.equal(batch.descriptors, 64, 'every duplicate is made at start-up');
  assert.equal(batch.polled, 4, 'the main descriptor and minExtras are polled');

  // 300 connections opened in one go: they wait in the queue together, every polled descriptor accepts.
  await Promise.all(Array.from({ length: 300 }, () => oneConnection(port)));
  const afterBurst = batch.polled;
  assert.ok(afterBurst > 4, `the burst grew the polled set (${afterBurst})`);

  // One connection at a time: each turn uses one descriptor of many.
  for (let i = 0; i < 200 && batch.polled > 4; i++) await oneConnection(port);
  assert.equal(batch.polled, 4, `quiet turns shrank the polled set back (it was ${afterBurst})`);
  await until(() => batch.descriptors === 64, 10_000, 'new spare duplicates');
});

test('batch 1: one descriptor, no duplicates', async (t) => {
  const cleanup = cleanupFor(t);
  const server = net.createServer((socket) => socket.end('x'));
  const batch = new AcceptBatch(server, 1, (socket) => server.emit('connection', socket));
  await batch.listen({ port: 0, host: '127.0.0.1', backlog: 16 });
  cleanup(() => closeServer(server));
  cleanup(() => batch.close());
  assert.equal(batch.polled, 1);
  assert.equal(batch.descriptors, 1);
  await oneConnection((server.address() as AddressInfo).port);
});
