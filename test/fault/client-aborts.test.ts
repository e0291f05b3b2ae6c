import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import v8 from 'node:v8';
import { Agent, request } from 'undici';
import { cleanupFor } from '../helpers/cleanup.js';
import { startBackend, startLb, until } from '../helpers/servers.js';

/**
 * Fault scenario from issue 5: many requests with client aborts at every phase (before the
 * response headers, mid-upload, mid-response), then nothing may leak: no attempt in flight, no
 * upstream request pending, no socket beyond the pools' idle ones, no failure counted against a
 * backend, and memory back near its baseline.
 *
 * Memory is judged by what is live after a full GC (heap used, native buffers, and the count
 * of request and socket objects), not by RSS: V8 keeps a young generation it grew under load
 * (on Node 24 up to 128 MiB, where 20 and 22 stop at 32) and the allocator keeps freed pages, so
 * RSS stays up with nothing leaked (issue 10). RSS is reported as a figure.
 */
// 20,000 by default keeps the suite under a minute here (every abort costs a new client and a
// new upstream connection); SWY_ABORT_REQUESTS=100000 runs the full count.
const total = Number(process.env['SWY_ABORT_REQUESTS'] ?? 20_000);
const concurrency = 64;

/** Answers in four chunks, one event-loop turn apart, so an abort can land mid-response. */
function chunkedHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    let left = 4;
    const piece = Buffer.alloc(8 * 1024, 0x61);
    const next = (): void => {
      if (res.destroyed) return;
      if (left-- === 0) {
        res.end();
        return;
      }
      res.write(piece);
      setImmediate(next);
    };
    next();
  });
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

function rssMiB(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

const gc = (globalThis as { gc?: () => void }).gc;

/** What is live now, after a full GC when --expose-gc gave us one (npm test passes it). */
function liveMemory(): { fds: number; rss: number; heap: number; external: number; requests: number; responses: number; sockets: number } {
  gc?.();
  const { heapUsed, external } = process.memoryUsage();
  // queryObjects runs a full GC of its own and counts the instances still reachable.
  const count = (type: Function): number => v8.queryObjects(type, { format: 'count' });
  return {
    fds: openFds(),
    rss: rssMiB(),
    heap: heapUsed / 2 ** 20,
    external: external / 2 ** 20,
    requests: count(http.IncomingMessage),
    responses: count(http.ServerResponse),
    sockets: count(net.Socket),
  };
}

type Phase = 'before-headers' | 'on-headers' | 'mid-response' | 'mid-upload' | 'complete';
const phases: readonly Phase[] = ['before-headers', 'on-headers', 'mid-response', 'mid-upload', 'complete'];

/** A request body that sends one chunk and then waits, so the client can abort mid-upload. */
function stalledUpload(signal: AbortSignal): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(Buffer.alloc(4096, 0x62));
      }
    },
    signal,
  });
}

/** The whole answer of chunkedHandler: four 8 KiB pieces of 'a'. */
const fullBody = Buffer.alloc(4 * 8 * 1024, 0x61);

/**
 * One request, aborted at `phase`. A request left to complete is 'done' only with status 200
 * and the backend's whole body; anything else is described, so it counts as a failure.
 */
async function one(url: string, dispatcher: Agent, phase: Phase): Promise<string> {
  const controller = new AbortController();
  const { signal } = controller;
  try {
    if (phase === 'mid-upload') {
      const pending = request(url, { method: 'PUT', body: stalledUpload(signal), dispatcher, signal });
      setImmediate(() => controller.abort());
      await pending;
      return 'done';
    }
    if (phase === 'before-headers') queueMicrotask(() => controller.abort());
    const res = await request(url, { dispatcher, signal });
    if (phase === 'on-headers') {
      controller.abort();
      await res.body.dump().catch(() => undefined);
      return 'aborted';
    }
    if (phase === 'mid-response') {
      for await (const _chunk of res.body) {
        controller.abort();
      }
      return 'aborted';
    }
    const body = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode === 200 && body.equals(fullBody)) return 'done';
    return `status ${res.statusCode}, ${body.length} bytes${body.length === fullBody.length ? ' (different content)' : ''}`;
  } catch (err) {
    // An abort is expected in every phase but the last; a request meant to complete must not fail.
    return phase === 'complete' ? `failed: ${(err as Error).message}` : 'aborted';
  }
}

test(`${total} requests with client aborts at every phase leak nothing`, { timeout: 600_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const backends = await Promise.all(['a', 'b'].map((name) => startBackend(name, chunkedHandler)));
  for (const backend of backends) cleanup(() => backend.close());
  // Idle pooled upstream sockets close after 1 s, so the socket count can return to its baseline.
  const lb = await startLb({ backends: backends.map((b) => b.url), log: { level: 'error' }, upstreamKeepAliveMs: 1000 });
  cleanup(() => lb.close());
  const dispatcher = new Agent({ connections: concurrency });
  cleanup(() => (dispatcher.closed || dispatcher.destroyed ? undefined : dispatcher.close()));
  const url = `${lb.url}/`;

  // Warm up, then take the baseline.
  for (let i = 0; i < 200; i++) assert.equal(await one(url, dispatcher, 'complete'), 'done');
  for (const backend of backends) backend.seen.length = 0;
  const baseline = liveMemory();

  const counts: Record<Phase, number> = { 'before-headers': 0, 'on-headers': 0, 'mid-response': 0, 'mid-upload': 0, complete: 0 };
  let completed = 0;
  /** What requests meant to complete got instead, by description. */
  const wrong = new Map<string, number>();
  let next = 0;
  const started = performance.now();
  let peakRss = baseline.rss;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const phase = phases[next++ % phases.length] as Phase;
      counts[phase]++;
      const outcome = await one(url, dispatcher, phase);
      if (phase === 'complete') {
        if (outcome === 'done') completed++;
        else wrong.set(outcome, (wrong.get(outcome) ?? 0) + 1);
      }
      if ((next & 1023) === 0) {
        peakRss = Math.max(peakRss, rssMiB());
        // The test backends record every request they see; drop those records as we go.
        for (const backend of backends) backend.seen.length = 0;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedS = (performance.now() - started) / 1000;

  // Everything settles without outside help: no attempt in flight, no upstream request queued.
  await until(
    () => lb.upstream.backends.every((b) => b.inFlight === 0 && b.pool.stats.pending === 0 && b.pool.stats.running === 0),
    10_000,
    'every attempt and upstream request to finish',
  );
  await dispatcher.close();
  for (const backend of backends) backend.seen.length = 0;
  // Sockets: the client's are closed and idle pooled upstream ones time out: back to the baseline.
  await until(() => openFds() <= baseline.fds, 15_000, `open descriptors back to ${baseline.fds}`);
  // A closed socket's handle lets go of it in the event loop's close phase: let that phase run.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  // V8 frees array buffers' memory on a background thread after a GC (newer V8s lag more): let it.
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const after = liveMemory();

  t.diagnostic(
    `requests ${total} in ${elapsedS.toFixed(1)} s (${Math.round(total / elapsedS)}/s); completed ${completed}/${counts.complete}; ` +
      `aborts: before-headers ${counts['before-headers']}, on-headers ${counts['on-headers']}, mid-response ${counts['mid-response']}, mid-upload ${counts['mid-upload']}; ` +
      `fds ${baseline.fds} -> ${after.fds}; rss ${baseline.rss.toFixed(0)} -> peak ${peakRss.toFixed(0)} -> ${after.rss.toFixed(0)} MiB; ` +
      `heap used ${baseline.heap.toFixed(1)} -> ${after.heap.toFixed(1)} MiB; external ${baseline.external.toFixed(1)} -> ${after.external.toFixed(1)} MiB; ` +
      `live IncomingMessage ${baseline.requests} -> ${after.requests}, ServerResponse ${baseline.responses} -> ${after.responses}, Socket ${baseline.sockets} -> ${after.sockets}`,
  );
  assert.deepEqual(Object.fromEntries(wrong), {}, 'requests that were not aborted: what they got instead of 200 and the whole body');
  assert.equal(completed, counts.complete, 'every request that was not aborted completed with 200 and the whole body');
  for (const backend of lb.upstream.backends) {
    assert.equal(backend.failuresTotal, 0, `${backend.url}: client aborts are not backend failures`);
    assert.equal(backend.available, true, `${backend.url} stays in rotation`);
  }
  // No request, response or socket outlives its exchange.
  assert.ok(after.requests <= baseline.requests, `live IncomingMessage back to ${baseline.requests} (${after.requests})`);
  assert.ok(after.responses <= baseline.responses, `live ServerResponse back to ${baseline.responses} (${after.responses})`);
  assert.ok(after.sockets <= baseline.sockets, `live Socket back to ${baseline.sockets} (${after.sockets})`);
  // Heap used is a leak figure only right after a full GC: without --expose-gc, say so and skip.
  await t.test('heap and native buffers back near their baseline', { skip: gc === undefined ? 'needs node --expose-gc (npm test passes it)' : false }, () => {
    // 20,000 exchanges: a leak of 250 bytes each would add 5 MiB (Node 20-24 add under 2 MiB here).
    assert.ok(after.heap < baseline.heap + 5, `heap used back near its baseline (${baseline.heap.toFixed(1)} -> ${after.heap.toFixed(1)} MiB)`);
    // Buffers come and go in pools and slabs (a few MiB either way); a leaked 1 KiB each would add 20.
    assert.ok(after.external < baseline.external + 16, `native buffers back near their baseline (${baseline.external.toFixed(1)} -> ${after.external.toFixed(1)} MiB)`);
  });
  // The proxy still serves normally.
  const res = await request(url, { headersTimeout: 5000, bodyTimeout: 5000 });
  assert.equal(res.statusCode, 200);
  assert.ok(Buffer.from(await res.body.arrayBuffer()).equals(fullBody), 'the whole body');
});
