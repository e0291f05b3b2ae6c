import assert from 'node:assert/strict';
import { test } from 'node:test';
import { until } from '../helpers/servers.js';
import { backendFailures, exchange, gap, RawClient, startPair, type Pair } from './h1-support.js';

/**
 * Connection state on the listener's own HTTP/1.1 path: a client that closes (FIN) or resets
 * (RST) at every phase of an exchange, the header and keep-alive timeouts, the listener's
 * graceful close, and the body and connection limits. A client's hang-up is never a backend's
 * failure, and the listener keeps serving.
 */

const K = 'Host: a\r\n';
/** A body large enough to be streamed (a small one is read whole before the backend is asked), cut short. */
const EARLY = `POST /early HTTP/1.1\r\n${K}Content-Length: 10000000\r\n\r\n${'x'.repeat(200_000)}`;

/** No attempt in flight, no failure counted, and a new request is served. */
async function settled(pair: Pair, what: string): Promise<void> {
  await until(() => [...pair.lb.upstreams.values()].every((u) => u.backends.every((b) => b.inFlight === 0)), 5000, `${what}: attempts to end`);
  assert.equal(backendFailures(pair), 0, `${what}: a backend was counted as failed`);
  const { responses } = await exchange(pair.fast, [`GET /alive HTTP/1.1\r\n${K}Connection: close\r\n\r\n`]);
  assert.equal(responses[0]?.body, 'GET /alive 0:', `${what}: the listener still serves`);
}

type Hangup = 'FIN' | 'RST';
function hangUp(client: RawClient, how: Hangup): void {
  if (how === 'FIN') client.socket.end();
  else client.socket.resetAndDestroy();
}

for (const how of ['FIN', 'RST'] as const) {
  test(`a client ${how} at every phase is no backend's failure and the listener keeps serving`, async (t) => {
    const pair = await startPair(t);
    const phases: Record<string, (client: RawClient) => Promise<void>> = {
      'before the head': async () => {},
      'inside the head': (client) => client.send(`GET /x HTTP/1.1\r\nHo`),
      'after the head, request in flight': async (client) => {
        await client.send(`GET /hold HTTP/1.1\r\n${K}\r\n`);
        await until(() => pair.held.length === 1, 5000, 'the request to reach the backend');
      },
      'mid-body': async (client) => {
        await client.send(`POST /upload HTTP/1.1\r\n${K}Content-Length: 100000\r\n\r\n${'x'.repeat(30_000)}`);
        await gap(20);
      },
      'while the response is in flight': async (client) => {
        client.socket.pause();
        await client.send(`GET /big HTTP/1.1\r\n${K}\r\n`);
        client.socket.resume();
        await client.until(() => client.bytes.length > 100_000, 5000, 'part of the response');
        client.socket.pause();
      },
      'between pipelined requests': async (client) => {
        await client.send(`GET /1 HTTP/1.1\r\n${K}\r\nGET /hold HTTP/1.1\r\n${K}\r\n`);
        await until(() => pair.held.length === 1, 5000, 'the second request to reach the backend');
      },
      'after an answer, idle': async (client) => {
        await client.send(`GET /1 HTTP/1.1\r\n${K}\r\n`);
        await client.responses(1);
      },
      'after an early answer, the body unfinished': async (client) => {
        await client.send(EARLY);
        await client.responses(1);
      },
    };
    for (const [phase, run] of Object.entries(phases)) {
      const client = await RawClient.open(pair.fast);
      await run(client);
      hangUp(client, how);
      // Read on (a paused socket reports no close), and the server must close its side.
      client.socket.resume();
      if (how === 'FIN') await client.closedByServer();
      pair.release();
      await settled(pair, `${how} ${phase}`);
      client.destroy();
    }
  });
}

test('timeouts: 408 to a silent connection, an idle keep-alive connection closes, a partial head still times out', async (t) => {
  const pair = await startPair(t, { clientHeadersTimeout: 300, clientKeepAlive: 300 });
  for (const port of [pair.fast, pair.node]) {
    const which = port === pair.fast ? 'own path' : 'node:http';
    // Silent from the start: node:http's 408.
    const silent = await RawClient.open(port);
    await silent.closedByServer();
    // node:http's 408 (the h2c listener's preface sniffer closes a silent connection without one).
    if (port === pair.fast) assert.match(silent.bytes.toString('latin1'), /^HTTP\/1\.1 408 /, `${which}: silent connection`);
    // Idle after an answer: closed without a word.
    const idle = await RawClient.open(port);
    await idle.send(`GET /1 HTTP/1.1\r\n${K}\r\n`);
    await idle.responses(1);
    const answered = idle.bytes.length;
    await idle.closedByServer();
    assert.equal(idle.bytes.length, answered, `${which}: idle keep-alive connection`);
    // A head that never ends, first or after an answer: the header timeout still holds.
    for (const first of ['', `GET /1 HTTP/1.1\r\n${K}\r\n`]) {
      const partial = await RawClient.open(port);
      await partial.send(`${first}GET /2 HTTP/1.1\r\nHost: a\r\nX-Slow: `);
      await partial.closedByServer();
      partial.destroy();
    }
    // An early answer, then a body that never comes: the connection does not stay forever.
    const stalled = await RawClient.open(port);
    await stalled.send(EARLY);
    await stalled.responses(1);
    await stalled.closedByServer();
    for (const client of [silent, idle, stalled]) client.destroy();
  }
  assert.equal(backendFailures(pair), 0);
});

test('activity restarts the keep-alive timeout: requests, or a dropped body, every fraction of it keep a connection open', async (t) => {
  const pair = await startPair(t, { clientKeepAlive: 600 });
  // Requests a quarter of the timeout apart for several timeouts, then idle.
  for (const port of [pair.fast, pair.node]) {
    const which = port === pair.fast ? 'own path' : 'node:http';
    const client = await RawClient.open(port);
    t.after(() => client.destroy());
    const started = performance.now();
    for (let n = 1; performance.now() - started < 2500; n++) {
      await client.send(`GET /${n} HTTP/1.1\r\n${K}\r\n`);
      await client.responses(n);
      assert.equal(client.ended || client.closed, false, `${which}: closed while in use`);
      await gap(150);
    }
    await client.closedByServer();
  }
  // On the own path, the rest of a body answered early is read and dropped: it is activity too.
  const dropping = await RawClient.open(pair.fast);
  t.after(() => dropping.destroy());
  await dropping.send(EARLY);
  await dropping.responses(1);
  const started = performance.now();
  while (performance.now() - started < 2500) {
    await gap(150);
    assert.equal(dropping.ended || dropping.closed, false, 'closed while the body still comes');
    dropping.socket.write('x'.repeat(1000));
  }
  await dropping.closedByServer();
  assert.equal(backendFailures(pair), 0);
});

test('graceful close: requests in flight on the own path finish, idle connections close', async (t) => {
  const pair = await startPair(t);
  const busy = await RawClient.open(pair.fast);
  const idle = await RawClient.open(pair.fast);
  t.after(() => {
    busy.destroy();
    idle.destroy();
  });
  await idle.send(`GET /1 HTTP/1.1\r\n${K}\r\n`);
  await idle.responses(1);
  await busy.send(`GET /hold HTTP/1.1\r\n${K}\r\n`);
  await until(() => pair.held.length === 1, 5000, 'the request to reach the backend');
  const late = await RawClient.open(pair.fast);
  t.after(() => late.destroy());
  await late.send(`GET /1 HTTP/1.1\r\n${K}\r\n`);
  await late.responses(1);
  const closing = pair.lb.close();
  // A request already on its way over an idle connection is served, and told to close (RFC 9112 section 9.6).
  late.socket.write(`GET /late HTTP/1.1\r\n${K}\r\n`);
  const [, lateAnswer] = await late.responses(2);
  assert.equal(lateAnswer?.body, 'GET /late 0:');
  assert.equal(lateAnswer?.headers.get('connection'), 'close');
  await late.closedByServer();
  await idle.closedByServer();
  assert.equal(busy.closed || busy.ended, false, 'a connection with a request in flight was closed');
  pair.release();
  const [answer] = await busy.responses(1);
  assert.equal(answer?.body, 'held');
  assert.equal(answer?.headers.get('connection'), 'close');
  await busy.closedByServer();
  await closing;
});

test('nothing after a request with Connection: close is served (RFC 9112 section 9.6)', async (t) => {
  const pair = await startPair(t);
  const client = await RawClient.open(pair.fast);
  t.after(() => client.destroy());
  client.socket.pause();
  await client.send(`GET /big HTTP/1.1\r\n${K}Connection: close\r\n\r\n`);
  await until(() => pair.seen.length === 1, 5000, 'the request to reach the backend');
  // Sent while the answer is under way, and again just as it ends.
  await client.send(`GET /after-close-1 HTTP/1.1\r\n${K}\r\n`);
  client.socket.resume();
  await client.until(() => client.bytes.length > 8 * 1024 * 1024, 10_000, 'the answer');
  client.socket.write(`GET /after-close-2 HTTP/1.1\r\n${K}\r\n`);
  await client.closedByServer();
  const responses = await client.responses(1);
  assert.equal(responses.length, 1);
  assert.deepEqual(pair.seen.map((s) => s.url), ['/big']);
});

test('limits: 413 before the body is read, maxConnections', async (t) => {
  const pair = await startPair(t, { maxBodySize: 100, maxConnections: 2 });
  for (const port of [pair.fast, pair.node]) {
    const client = await RawClient.open(port);
    // Only the head is sent: the answer must not wait for the body.
    await client.send(`POST /big-upload HTTP/1.1\r\n${K}Content-Length: 1000000\r\n\r\n`);
    const [answer] = await client.responses(1);
    assert.equal(answer?.status, 413, `port ${port}`);
    await client.closedByServer();
    client.destroy();
  }
  assert.ok(!pair.seen.some((s) => s.url === '/big-upload'));
  const open = [await RawClient.open(pair.fast), await RawClient.open(pair.fast)];
  t.after(() => open.forEach((c) => c.destroy()));
  await open[0]?.send(`GET /1 HTTP/1.1\r\n${K}\r\n`);
  await open[0]?.responses(1);
  const third = await RawClient.open(pair.fast);
  await third.send(`GET /3 HTTP/1.1\r\n${K}\r\n`);
  await third.closedByServer();
  assert.equal(third.bytes.length, 0);
  third.destroy();
  await open[1]?.send(`GET /2 HTTP/1.1\r\n${K}Connection: close\r\n\r\n`);
  const [second] = (await open[1]?.responses(1)) ?? [];
  assert.equal(second?.body, 'GET /2 0:');
});
