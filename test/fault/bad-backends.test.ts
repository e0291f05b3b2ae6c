import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { request } from 'undici';
import { downReasonNames } from '../../src/upstream/backend.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startHoldingBackend } from '../helpers/faults.js';
import { describeLoad, percentile, runLoad } from '../helpers/load.js';
import { closeServer, startBackend, startLb } from '../helpers/servers.js';

/**
 * Fault scenarios from issue 5: one misbehaving backend among two healthy ones, under load.
 * Requests it takes fail the way its fault dictates (504, a cut response, 502) and only those:
 * the healthy backends' traffic goes on, and no client ever gets a wrong body.
 */
const concurrency = 16;
const durationMs = 2500;

/** Accepts whole: the body is the backend's name, as its x-backend header says. */
function servedByHealthy(status: number, body: string, headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  return status === 200 && (body === 'a' || body === 'b') && headers['x-backend'] === body;
}

/** A TCP server on 127.0.0.1:0 that answers each request's first bytes with `onRequest`. */
async function startRawBackend(onRequest: (socket: net.Socket) => void): Promise<{ port: number; url: string; attempts: () => number; close(): Promise<void> }> {
  let attempts = 0;
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      attempts++;
      onRequest(socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return { port, url: `http://127.0.0.1:${port}`, attempts: () => attempts, close: () => closeServer(server) };
}

async function healthyPair(cleanup: (fn: () => unknown) => void): Promise<string[]> {
  const healthy = await Promise.all(['a', 'b'].map((name) => startBackend(name)));
  for (const backend of healthy) cleanup(() => backend.close());
  return healthy.map((b) => b.url);
}

test('a backend that never answers: its requests get 504, the others keep their latency', { timeout: 30_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const upstreamTimeoutMs = 400;
  const healthy = await healthyPair(cleanup);
  const silent = await startHoldingBackend('silent');
  cleanup(() => silent.close());
  const lb = await startLb({ backends: [...healthy, silent.url], log: { level: 'error' }, upstreamTimeoutMs });
  cleanup(() => lb.close());

  const report = await runLoad({
    url: `${lb.url}/`,
    concurrency,
    durationMs,
    check: (status, body, headers) => (servedByHealthy(status, body, headers) || (status === 504 && body === 'Gateway Timeout\n') ? null : `${status} ${JSON.stringify(body)}`),
  });
  t.diagnostic(describeLoad(report));
  const timedOut = report.latenciesByStatus[504] ?? [];
  // Timings are figures, not assertions: on a busy machine they stretch while the behaviour holds.
  t.diagnostic(
    `silent backend held ${silent.held.length} requests; upstream timeout ${upstreamTimeoutMs} ms; ` +
      `504 latency min ${Math.min(...timedOut).toFixed(0)} ms, p50 ${percentile(timedOut, 50).toFixed(0)} ms, p99 ${percentile(timedOut, 99).toFixed(0)} ms; ` +
      `200 latency p99 ${report.okP99Ms.toFixed(1)} ms`,
  );
  assert.equal(report.problems, 0, describeLoad(report));
  assert.deepEqual(report.errors, {}, 'every request got a complete response');
  // A timeout is not retried: each request the silent backend took is one 504, and no other is.
  assert.ok(silent.held.length > 0, 'the silent backend took requests');
  assert.equal(report.statuses[504] ?? 0, silent.held.length, 'one 504 per request the silent backend held');
  assert.equal((report.statuses[200] ?? 0) + (report.statuses[504] ?? 0), report.requests);
  // A lower bound holds however busy the machine: no 504 before the upstream timeout.
  assert.ok(Math.min(...timedOut) >= upstreamTimeoutMs - 1, 'no 504 before the upstream timeout');
  // The healthy backends' traffic goes on beside the silent one (its latency is a figure above).
  assert.ok((report.statuses[200] ?? 0) > silent.held.length, 'the healthy backends served most requests');

  // Outlier detection took the silent backend out after 5 consecutive timeouts: the proxy is
  // still up and serves a whole round of the balancer from the others.
  assert.ok(silent.held.length >= 5, 'enough timeouts for an ejection');
  assert.deepEqual(downReasonNames(lb.upstream.backends[2]?.downReasons ?? 0), ['outlier-ejected']);
  const after: number[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await request(`${lb.url}/`, { headersTimeout: 5000, bodyTimeout: 5000 });
    await res.body.dump();
    after.push(res.statusCode);
  }
  assert.deepEqual(after, [200, 200, 200]);
});

test('a backend that resets mid-response: the client sees a cut response, never a wrong body', { timeout: 30_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const healthy = await healthyPair(cleanup);
  // Promises 2000 bytes, sends 1000, and 10 ms later the process "crashes" (RST).
  const resetting = await startRawBackend((socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2000\r\nX-Backend: r\r\n\r\n${'r'.repeat(1000)}`);
    setTimeout(() => socket.resetAndDestroy(), 10);
  });
  cleanup(() => resetting.close());
  const lb = await startLb({ backends: [...healthy, resetting.url], log: { level: 'silent' } });
  cleanup(() => lb.close());

  const report = await runLoad({
    url: `${lb.url}/`,
    concurrency,
    durationMs,
    check: (status, body, headers) => (servedByHealthy(status, body, headers) ? null : `${status} ${headers['x-backend']} ${body.length} bytes`),
  });
  const errors = Object.values(report.errors).reduce((sum, n) => sum + n, 0);
  t.diagnostic(describeLoad(report));
  t.diagnostic(`resetting backend got ${resetting.attempts()} requests; cut responses ${errors}`);
  // Every complete response is a healthy backend's whole answer: a cut one is never passed off as complete.
  assert.equal(report.problems, 0, describeLoad(report));
  assert.ok(errors > 0, 'some responses were cut');
  assert.equal((report.statuses[200] ?? 0) + errors, report.requests, 'a 200 or a cut response, nothing else');
  // Only requests the resetting backend took were cut (a reset before any byte is retried elsewhere).
  assert.ok(errors <= resetting.attempts(), `cut responses (${errors}) at most the resetting backend's requests (${resetting.attempts()})`);
  assert.ok((report.statuses[200] ?? 0) > errors, 'the healthy backends served the rest');
});

test('a backend that answers garbage: its requests get 502, the others are served', { timeout: 30_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const healthy = await healthyPair(cleanup);
  const garbage = await startRawBackend((socket) => {
    socket.end(Buffer.from('\x00\x7fSSH-2.0-not-http \xff\xfe\r\n\r\n', 'latin1'));
  });
  cleanup(() => garbage.close());
  const lb = await startLb({ backends: [...healthy, garbage.url], log: { level: 'silent' } });
  cleanup(() => lb.close());

  const report = await runLoad({
    url: `${lb.url}/`,
    concurrency,
    durationMs,
    check: (status, body, headers) => (servedByHealthy(status, body, headers) || (status === 502 && body === 'Bad Gateway\n') ? null : `${status} ${JSON.stringify(body)}`),
  });
  t.diagnostic(describeLoad(report));
  t.diagnostic(`garbage backend got ${garbage.attempts()} requests`);
  assert.equal(report.problems, 0, describeLoad(report));
  assert.deepEqual(report.errors, {}, 'every request got a complete response');
  // A protocol error is not retried: one 502 per request the garbage backend took.
  assert.ok(garbage.attempts() > 0, 'the garbage backend took requests');
  assert.equal(report.statuses[502] ?? 0, garbage.attempts(), 'one 502 per request the garbage backend took');
  assert.equal((report.statuses[200] ?? 0) + (report.statuses[502] ?? 0), report.requests);
});
