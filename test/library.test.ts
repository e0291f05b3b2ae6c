import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { ConfigError, DownReason, ErrorCodes, start, SwitchyardError, version, type StartOptions } from '../src/index.js';
import { createLogger } from '../src/log.js';
import { defaultRetryOptions } from '../src/upstream/retry-options.js';
import { cleanupFor } from './helpers/cleanup.js';
import { startCountingServer, startHoldingBackend } from './helpers/faults.js';
import { closeServer, deadPort, startBackend, until } from './helpers/servers.js';
import { connectOutcome } from './helpers/raw.js';

const quiet = { level: 'silent' } as const;


/** Whether this process can listen on `port` on every interface right now. */
async function portIsFree(port: number): Promise<boolean> {
  const server = net.createServer();
  const free = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, () => resolve(true));
  });
  if (free) await closeServer(server);
  return free;
}

/**
 * Closes servers this process still listens with on `port`. Only for clean-up after a failed
 * start() that left its listener open, so the test file can still exit.
 */
async function closeLeakedListeners(port: number): Promise<number> {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  let closed = 0;
  for (const handle of handles) {
    if (handle instanceof net.Server) {
      const address = handle.address();
      if (address !== null && typeof address === 'object' && address.port === port) {
        await closeServer(handle);
        closed++;
      }
    }
  }
  return closed;
}

/** Asserts that start(options) rejects with a one-line ConfigError matching `pattern`. */
async function assertConfigError(options: StartOptions, pattern: RegExp): Promise<void> {
  await assert.rejects(start(options), (err: unknown) => {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
    assert.ok(err instanceof SwitchyardError);
    assert.equal(err.code, 'SWY_ERR_CONFIG');
    assert.equal(err.code, ErrorCodes.config);
    assert.equal(err.name, 'ConfigError');
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes('\n'), 'one line');
    return true;
  });
}

describe('start()', () => {
  test('returns the bound address and url, proxies through them, and closes', async (t) => {
    const cleanup = cleanupFor(t);
    const a = await startBackend('a');
    cleanup(() => a.close());
    const lb = await start({ backends: [a.url], port: 0, host: '127.0.0.1', log: quiet });
    cleanup(() => lb.close());

    assert.equal(lb.address.address, '127.0.0.1');
    assert.equal(lb.address.family, 'IPv4');
    assert.ok(lb.address.port > 0);
    assert.equal(lb.url, `http://127.0.0.1:${lb.address.port}`);
    assert.equal(typeof lb.checkHealth, 'function');
    assert.equal(lb.upstream.backends.length, 1);
    assert.equal(lb.upstream.backends[0]?.url, a.url);

    const res = await request(`${lb.url}/hello`);
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'a');
    assert.equal(a.seen[0]?.url, '/hello');

    await lb.close();
    assert.equal(await connectOutcome(lb.address.port), 'ECONNREFUSED');
  });

  test('without host it listens on every interface and the url uses the loopback address', async (t) => {
    const cleanup = cleanupFor(t);
    const a = await startBackend('a');
    cleanup(() => a.close());
    const lb = await start({ backends: [a.url], port: 0, log: quiet });
    cleanup(() => lb.close());
    assert.ok(['::', '0.0.0.0'].includes(lb.address.address), lb.address.address);
    assert.equal(lb.url, `http://127.0.0.1:${lb.address.port}`);
    const res = await request(`${lb.url}/`);
    assert.equal(await res.body.text(), 'a');
  });

  test('the port defaults to 3030', async (t) => {
    if (!(await portIsFree(3030))) {
      t.skip('port 3030 is in use on this machine');
      return;
    }
    const cleanup = cleanupFor(t);
    const a = await startBackend('a');
    cleanup(() => a.close());
    const lb = await start({ backends: [a.url], host: '127.0.0.1', log: quiet });
    cleanup(() => lb.close());
    assert.equal(lb.address.port, 3030);
    assert.equal(lb.url, 'http://127.0.0.1:3030');
  });

  test('accepts { url, weight } backends and merges partial retry options over the defaults', async (t) => {
    const cleanup = cleanupFor(t);
    const a = await startBackend('a');
    cleanup(() => a.close());
    const b = await startBackend('b');
    cleanup(() => b.close());
    const lb = await start({
      backends: [{ url: a.url, weight: 3 }, b.url],
      port: 0,
      host: '127.0.0.1',
      retry: { retriesPerBackend: 1, replayBufferBytes: 1024 },
      log: quiet,
    });
    cleanup(() => lb.close());
    assert.equal(lb.upstream.backends[0]?.weight, 3);
    assert.equal(lb.upstream.backends[1]?.weight, 1);
    assert.deepEqual(lb.upstream.retry, { ...defaultRetryOptions, retriesPerBackend: 1, replayBufferBytes: 1024 });
    assert.deepEqual(defaultRetryOptions, {
      retriesPerBackend: 3,
      retryDelayMs: 10,
      maxRetryDelayMs: 0,
      maxBackends: 3,
      replayBufferBytes: 64 * 1024,
      retryOn: ['connect', 'reset'],
      retryStatuses: [],
      perTryTimeoutMs: 0,
      tryDurationMs: 0,
      budgetMinRetries: 3,
      budgetPercent: 20,
    });
  });

  test('resolves after the first health check round, with its result applied', async (t) => {
    const cleanup = cleanupFor(t);
    const a = await startBackend('a');
    cleanup(() => a.close());
    const lb = await start({ backends: [a.url, `http://127.0.0.1:${await deadPort()}`], port: 0, host: '127.0.0.1', log: quiet });
    cleanup(() => lb.close());
    assert.equal(lb.upstream.backends[0]?.available, true);
    assert.equal(lb.upstream.backends[1]?.available, false);
    assert.equal(lb.upstream.backends[1]?.downReasons, DownReason.healthCheck);
  });

  test('logs to a logger given in options.log', async (t) => {
    const cleanup = cleanupFor(t);
    const a = await startBackend('a');
    cleanup(() => a.close());
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
        callback();
      },
    });
    const logger = createLogger({ format: 'json', destination });
    const lb = await start({ backends: [a.url], port: 0, host: '127.0.0.1', log: logger });
    cleanup(() => lb.close());
    assert.equal(lb.logger, logger);
    const messages = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    assert.ok(messages.includes(`Configured server: ${a.url}`));
    assert.ok(messages.some((m) => m.startsWith('Load Balancer started at 127.0.0.1:')));
    assert.ok(messages.includes(`${a.url} [up]`));
  });

  test('warns once at start about a backend host name that does not resolve, never about an IP literal', async (t) => {
    const cleanup = cleanupFor(t);
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
        callback();
      },
    });
    const logger = createLogger({ format: 'json', level: 'warn', destination });
    const lb = await start({ backends: ['http://nowhere.invalid:8080', 'http://127.0.0.1:9'], port: 0, host: '127.0.0.1', healthTimeoutMs: 500, log: logger });
    cleanup(() => lb.close());
    const warnings = lines.map((l) => JSON.parse(l) as { msg: string; level: number }).filter((e) => e.msg.startsWith('backend '));
    assert.deepEqual(warnings.map((e) => e.msg), ['backend http://nowhere.invalid:8080: host "nowhere.invalid" does not resolve (ENOTFOUND); connections to it will fail until it does']);
    assert.equal(warnings[0]?.level, 40, 'a warning, not an error');
  });

  test('exports its version', () => {
    assert.match(version, /^\d+\.\d+\.\d+/);
  });
});

describe('close()', () => {
  test('is idempotent: every call returns the same promise, and calls after it resolved resolve too', async (t) => {
    const cleanup = cleanupFor(t);
    const a = await startBackend('a');
    cleanup(() => a.close());
    const lb = await start({ backends: [a.url], port: 0, host: '127.0.0.1', log: quiet });
    cleanup(() => lb.close());
    await (await request(`${lb.url}/`)).body.dump();

    const first = lb.close();
    const second = lb.close();
    assert.equal(first, second);
    await Promise.all([first, second]);
    await lb.close();
    assert.equal(await connectOutcome(lb.address.port), 'ECONNREFUSED');
  });

  test('lets an in-flight request finish before resolving', async (t) => {
    const cleanup = cleanupFor(t);
    const slow = await startBackend('slow', (req, res) => {
      req.resume();
      setTimeout(() => res.end('done'), 200);
    });
    cleanup(() => slow.close());
    const lb = await start({ backends: [slow.url], port: 0, host: '127.0.0.1', log: quiet });
    cleanup(() => lb.close());

    const pending = request(`${lb.url}/`);
    await until(() => slow.seen.length === 1, 5000, 'the request to reach the backend');
    let closed = false;
    const closing = lb.close().then(() => {
      closed = true;
    });
    const res = await pending;
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'done');
    await closing;
    assert.equal(closed, true);
  });

  test('gives up on a request that never finishes after gracePeriodMs', async (t) => {
    const cleanup = cleanupFor(t);
    const stuck = await startHoldingBackend('stuck');
    const held = stuck.held;
    cleanup(() => stuck.close());
    const lb = await start({ backends: [stuck.url], port: 0, host: '127.0.0.1', gracePeriodMs: 200, log: quiet });
    cleanup(() => lb.close());

    const pending = request(`${lb.url}/`).then(
      () => 'answered',
      () => 'cut',
    );
    await until(() => held.length === 1, 5000, 'the request to reach the backend');
    const started = performance.now();
    await lb.close();
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 150 && elapsed < 3000, `close() took ${elapsed.toFixed(0)} ms with a 200 ms grace period`);
    assert.equal(await pending, 'cut');
  });

  test('stops the periodic health checks', async (t) => {
    const cleanup = cleanupFor(t);
    const counting = await startCountingServer();
    cleanup(() => counting.close());
    const lb = await start({ backends: [counting.url], port: 0, host: '127.0.0.1', healthIntervalMs: 100, log: quiet });
    cleanup(() => lb.close());
    await until(() => counting.acceptedAt.length >= 2, 5000, 'a periodic probe');
    await lb.close();
    const atClose = counting.acceptedAt.length;
    // Waiting for something that must not happen: three intervals.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(counting.acceptedAt.length, atClose);
  });
});

describe('start() rejects bad options with a ConfigError (SWY_ERR_CONFIG)', () => {
  const base = { port: 0, host: '127.0.0.1', log: quiet } as const;

  test('a backend that is not an http(s) URL', async () => {
    await assertConfigError({ ...base, backends: ['ftp://files.example'] }, /"ftp:\/\/files\.example" must be an http:\/\/ or https:\/\/ URL/);
    await assertConfigError({ ...base, backends: ['http://127.0.0.1:9', 'nonsense'] }, /"nonsense" is not a URL/);
    await assertConfigError({ ...base, backends: [{ url: 'ws://x', weight: 1 }] }, /"ws:\/\/x"/);
  });

  test('no backends', async () => {
    await assertConfigError({ ...base, backends: [] }, /no backends/);
  });

  test('the same backend twice', async () => {
    await assertConfigError({ ...base, backends: ['http://127.0.0.1:9', 'http://127.0.0.1:9/'] }, /listed twice/);
  });

  test('a bad port', async () => {
    for (const port of [-1, 65536, 1.5, Number.NaN]) {
      await assertConfigError({ ...base, backends: ['http://127.0.0.1:9'], port }, /is not a port number/);
    }
  });

  test('an unknown balancer', async () => {
    // @ts-expect-error: balancer is typed as the union of algorithm names, so a typo fails to compile too.
    await assertConfigError({ ...base, backends: ['http://127.0.0.1:9'], balancer: 'random-ish' }, /unknown balancer "random-ish"/);
  });

  test('a duration that is not a positive number of milliseconds', async () => {
    for (const key of ['healthIntervalMs', 'healthTimeoutMs', 'connectTimeoutMs', 'upstreamTimeoutMs', 'clientKeepAliveMs'] as const) {
      for (const value of [0, -5, Number.NaN]) {
        await assertConfigError({ ...base, backends: ['http://127.0.0.1:9'], [key]: value }, new RegExp(key));
      }
    }
  });

  test('a bad gracePeriodMs is rejected without leaving the listener open', async (t) => {
    const port = await deadPort();
    t.after(async () => {
      await closeLeakedListeners(port);
    });
    await assertConfigError({ ...base, port, backends: ['http://127.0.0.1:9'], gracePeriodMs: -1 }, /gracePeriodMs/);
    assert.equal(await portIsFree(port), true, `start() rejected but still listens on port ${port}`);
  });

  test('an unknown option is refused by name, with "did you mean"', async () => {
    // @ts-expect-error: `prot` is not an option; the compiler refuses it too.
    await assertConfigError({ ...base, backends: ['http://127.0.0.1:9'], prot: 5 }, /^start\(\): unknown option "prot" \(did you mean "port"\?\)$/);
    await assertConfigError({ ...base, backends: ['http://127.0.0.1:9'], ...({ zzzz: 1 } as object) }, /^start\(\): unknown option "zzzz"$/);
  });

  test('a port already in use: ConfigError naming the port, every time', async (t) => {
    const cleanup = cleanupFor(t);
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    cleanup(() => closeServer(holder));
    const port = (holder.address() as net.AddressInfo).port;
    await assertConfigError({ ...base, port, backends: ['http://127.0.0.1:9'] }, new RegExp(`port ${port} is already in use`));
    await assertConfigError({ ...base, port, backends: ['http://127.0.0.1:9'] }, /already in use/);
  });
});
