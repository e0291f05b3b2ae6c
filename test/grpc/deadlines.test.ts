import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { cleanupFor } from '../helpers/cleanup.js';
import { makeCa, type TestCa } from '../helpers/tls.js';
import { front, probeClient, readStream, startProbeServer, startResettingServer, type ProbeReply } from './support.js';

/**
 * Deadlines, retries and idle streams of gRPC calls through Switchyard: the deadline reaches the
 * backend and a call past it is cancelled there; a call whose response has started is never
 * retried; a quiet server stream within its deadline is not cut by the upstream's bodyIdle.
 */

let ca: TestCa;
before(async () => {
  ca = await makeCa();
});
after(() => ca.remove());

/** Bound for the waits below: generous, as the machine is shared. */
const boundMs = 10_000;

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${boundMs} ms`)), boundMs);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

describe('gRPC deadlines through Switchyard', () => {
  test('a call past its deadline ends DEADLINE_EXCEEDED at the client, grpc-timeout reached the backend, and its stream is cancelled there', async (t) => {
    const cleanup = cleanupFor(t);
    const server = await startProbeServer();
    cleanup(() => server.close());
    const { h2c } = await front(t, server.address, ca);
    const client = probeClient(h2c);
    cleanup(() => client.close());
    const status = await within(
      new Promise<grpc.StatusObject>((resolve) => {
        const call = client.Slow({ delayMs: 30_000 }, new grpc.Metadata(), { deadline: Date.now() + 500 }, () => {}) as grpc.ClientUnaryCall;
        call.on('status', resolve);
      }),
      'the client status',
    );
    assert.equal(status.code, grpc.status.DEADLINE_EXCEEDED);
    await within(server.seen.firstCancel, 'the backend to see the call cancelled');
    assert.equal(server.seen.calls, 1);
    const deadline = server.seen.deadlines[0] as number;
    assert.ok(deadline > 0 && deadline <= 500, `the backend's deadline, ${deadline} ms from arrival, comes from grpc-timeout`);
  });

  test('a call without a deadline reaches the backend without one', async (t) => {
    const cleanup = cleanupFor(t);
    const server = await startProbeServer();
    cleanup(() => server.close());
    const { h2c } = await front(t, server.address, ca);
    const client = probeClient(h2c);
    cleanup(() => client.close());
    const status = await within(
      new Promise<grpc.StatusObject>((resolve) => {
        const call = client.Slow({ delayMs: 0 }, () => {}) as grpc.ClientUnaryCall;
        call.on('status', resolve);
      }),
      'the client status',
    );
    assert.equal(status.code, grpc.status.OK);
    assert.deepEqual(server.seen.deadlines, [Infinity]);
  });
});

describe('no retry once a gRPC response has started', () => {
  test('a server that ends the call with an error after a message: one call at the backend, the client sees the error', async (t) => {
    const cleanup = cleanupFor(t);
    const server = await startProbeServer();
    cleanup(() => server.close());
    // The most permissive retry policy there is; it still must not replay a started call.
    const { h2c } = await front(t, server.address, ca, { retry: { retryOn: ['connect', 'reset', 'timeout'], retryStatuses: [502, 503] } });
    const client = probeClient(h2c);
    cleanup(() => client.close());
    const got = await within(readStream(client.FailAfterMessage({}, new grpc.Metadata(), { deadline: Date.now() + boundMs }) as grpc.ClientReadableStream<ProbeReply>), 'the call');
    assert.deepEqual(got.replies, [{ n: 1 }]);
    assert.equal(got.status.code, grpc.status.UNAVAILABLE);
    assert.equal(got.status.details, 'failed after a message');
    assert.equal(server.seen.calls, 1);
  });

  test('a backend that resets the stream after a message: one call at the backend, the client sees the call fail', async (t) => {
    const cleanup = cleanupFor(t);
    const server = await startResettingServer();
    cleanup(() => server.close());
    const { h2c } = await front(t, server.address, ca, { retry: { retryOn: ['connect', 'reset', 'timeout'] } });
    const client = probeClient(h2c);
    cleanup(() => client.close());
    const got = await within(readStream(client.Idle({}, new grpc.Metadata(), { deadline: Date.now() + boundMs }) as grpc.ClientReadableStream<ProbeReply>), 'the call');
    assert.deepEqual(got.replies, [{ n: 1 }]);
    assert.notEqual(got.status.code, grpc.status.OK);
    assert.equal(server.calls(), 1);
  });
});

describe('a long-lived gRPC stream and the upstream bodyIdle timeout', () => {
  test('a server stream quiet for longer than bodyIdle but within its deadline is not cut', async (t) => {
    const cleanup = cleanupFor(t);
    const server = await startProbeServer();
    cleanup(() => server.close());
    const { h2c, tls } = await front(t, server.address, ca, { timeouts: { bodyIdle: '200ms' } });
    for (const [address, secure] of [[h2c, undefined], [tls, ca]] as const) {
      const client = probeClient(address, secure);
      cleanup(() => client.close());
      const call = client.Idle({ delayMs: 800 }, new grpc.Metadata(), { deadline: Date.now() + boundMs }) as grpc.ClientReadableStream<ProbeReply>;
      const got = await within(readStream(call), 'the stream');
      assert.equal(got.status.code, grpc.status.OK, got.status.details);
      assert.deepEqual(got.replies, [{ n: 1 }, { n: 2 }]);
    }
  });

  test('without a deadline, bodyIdle still applies: the quiet stream is cut', async (t) => {
    const cleanup = cleanupFor(t);
    const server = await startProbeServer();
    cleanup(() => server.close());
    const { h2c } = await front(t, server.address, ca, { timeouts: { bodyIdle: '200ms' } });
    const client = probeClient(h2c);
    cleanup(() => client.close());
    const got = await within(readStream(client.Idle({ delayMs: 3000 }) as grpc.ClientReadableStream<ProbeReply>), 'the stream');
    assert.deepEqual(got.replies, [{ n: 1 }]);
    assert.notEqual(got.status.code, grpc.status.OK);
    await within(server.seen.firstCancel, 'the backend to see the stream cancelled');
  });
});
