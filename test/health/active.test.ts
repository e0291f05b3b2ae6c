import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { tcpProbe } from '../../src/health/active.js';
import { Backend, downReasonNames, parseBackendUrl } from '../../src/upstream/backend.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startBlackhole, startCountingServer, startDyingPort } from '../helpers/faults.js';
import { deadPort, startBackend, startLb, until, type TestBackend } from '../helpers/servers.js';
import { makeCa, startTlsBackend } from '../helpers/tls.js';

type Lb = Awaited<ReturnType<typeof startLb>>;

function backendAt(lb: Lb, index: number): Backend {
  const backend = lb.upstream.backends[index];
  assert.ok(backend !== undefined, `backend ${index} exists`);
  return backend;
}

/** Indexes of the log entries whose message is exactly `msg`. */
function logIndexes(lb: Lb, msg: string, from = 0): number[] {
  const found: number[] = [];
  for (let i = from; i < lb.logs.length; i++) if (lb.logs[i]?.['msg'] === msg) found.push(i);
  return found;
}

async function answeredBy(url: string): Promise<string> {
  const res = await request(url);
  const text = await res.body.text();
  assert.equal(res.statusCode, 200);
  return text;
}

describe('active TCP health checks', () => {
  test('one check of every backend at start-up, logged as "URL [up]" or "URL [down]"', async (t) => {
    const cleanup = cleanupFor(t);
    const live = await startBackend('live');
    cleanup(() => live.close());
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const lb = await startLb({ backends: [live.url, dead] });
    cleanup(() => lb.close());

    // start() resolves once the first round is done.
    assert.equal(logIndexes(lb, `${live.url} [up]`).length, 1);
    assert.equal(logIndexes(lb, `${dead} [down]`).length, 1);
    assert.equal(backendAt(lb, 0).available, true);
    assert.equal(backendAt(lb, 1).available, false);
    assert.deepEqual(downReasonNames(backendAt(lb, 1).downReasons), ['health-check']);
    const entry = lb.logs[logIndexes(lb, `${dead} [down]`)[0] as number];
    assert.equal(entry?.['up'], false);
    assert.equal(entry?.['backend'], dead);
    assert.equal(entry?.['level'], 30);
    assert.match(String(entry?.['error']), /ECONNREFUSED/);
    // The default interval is 20 s: no second round during this test.
    assert.equal(lb.logs.filter((e) => e['up'] !== undefined).length, 2);
    // The round is framed as the original simple load balancer framed it.
    const [startedAt] = logIndexes(lb, 'Starting health check...');
    const [completedAt] = logIndexes(lb, 'Health check completed');
    assert.ok(startedAt !== undefined && completedAt !== undefined, 'both framing lines logged');
    assert.ok(startedAt < (logIndexes(lb, `${live.url} [up]`)[0] as number) && completedAt > (logIndexes(lb, `${dead} [down]`)[0] as number));
  });

  test('checkHealth() marks a killed backend down and, once restarted on its port, up again', async (t) => {
    const cleanup = cleanupFor(t);
    const a = await startBackend('a');
    cleanup(() => a.close());
    let b: TestBackend = await startBackend('b');
    cleanup(() => b.close());
    const lb = await startLb({ backends: [a.url, b.url] });
    cleanup(() => lb.close());
    const port = b.port;

    await b.close();
    await lb.checkHealth();
    assert.equal(backendAt(lb, 1).available, false);
    assert.deepEqual(downReasonNames(backendAt(lb, 1).downReasons), ['health-check']);
    assert.equal(logIndexes(lb, `${b.url} [down]`).length, 1);
    for (let i = 0; i < 3; i++) assert.equal(await answeredBy(`${lb.url}/`), 'a');

    b = await startBackend('b', undefined, port);
    const mark = lb.logs.length;
    await lb.checkHealth();
    assert.equal(backendAt(lb, 1).available, true);
    assert.equal(logIndexes(lb, `${b.url} [up]`, mark).length, 1);
    const names = new Set<string>();
    for (let i = 0; i < 4; i++) names.add(await answeredBy(`${lb.url}/`));
    assert.deepEqual([...names].sort(), ['a', 'b']);
    assert.equal(b.seen.length, 2);
  });

  test('a passing check also clears a mark-down made by failed attempts', async (t) => {
    const cleanup = cleanupFor(t);
    const live = await startBackend('live');
    cleanup(() => live.close());
    const dying = await startDyingPort();
    cleanup(() => dying.kill());
    const lb = await startLb({ backends: [dying.url, live.url] });
    cleanup(() => lb.close());
    await dying.kill();

    assert.equal(await answeredBy(`${lb.url}/`), 'live');
    assert.deepEqual(downReasonNames(backendAt(lb, 0).downReasons), ['failed-attempts']);

    const back = await startBackend('back', undefined, dying.port);
    cleanup(() => back.close());
    await lb.checkHealth();
    assert.equal(backendAt(lb, 0).available, true);
    const names: string[] = [];
    for (let i = 0; i < 4; i++) names.push(await answeredBy(`${lb.url}/`));
    assert.deepEqual(names.sort(), ['back', 'back', 'live', 'live']);
  });

  test('a backend killed mid-run: client GETs never fail; it is marked down, then back in rotation after restart', async (t) => {
    const cleanup = cleanupFor(t);
    const a = await startBackend('a');
    cleanup(() => a.close());
    let b: TestBackend = await startBackend('b');
    cleanup(() => b.close());
    const c = await startBackend('c');
    cleanup(() => c.close());
    const lb = await startLb({ backends: [a.url, b.url, c.url], healthIntervalMs: 100 });
    cleanup(() => lb.close());
    const port = b.port;

    // A client sends GETs one after another for the whole test.
    const failures: string[] = [];
    const answers: string[] = [];
    let stop = false;
    const client = (async () => {
      while (!stop) {
        try {
          const res = await request(`${lb.url}/`);
          const text = await res.body.text();
          if (res.statusCode !== 200) failures.push(`${res.statusCode} ${text}`);
          else answers.push(text);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    })();
    cleanup(async () => {
      stop = true;
      await client;
    });

    await until(() => answers.length >= 10, 5000, '10 answers');
    await b.close();
    await until(() => logIndexes(lb, `${b.url} [down]`).length > 0, 5000, `${b.url} [down] logged`);
    await until(() => !backendAt(lb, 1).available, 5000, 'b marked down');
    const answersWhileDown = answers.length;
    await until(() => answers.length >= answersWhileDown + 10, 5000, '10 answers while b is down');

    b = await startBackend('b', undefined, port);
    const mark = lb.logs.length;
    const answersBeforeRestart = answers.length;
    await until(() => logIndexes(lb, `${b.url} [up]`, mark).length > 0, 5000, `${b.url} [up] logged after the restart`);
    await until(() => answers.slice(answersBeforeRestart).includes('b'), 5000, 'b answering again');
    stop = true;
    await client;

    assert.deepEqual(failures, [], 'every GET succeeded');
    assert.equal(backendAt(lb, 1).available, true);
    assert.ok(b.seen.length >= 1);
  });

  test('checks repeat every healthIntervalMs', async (t) => {
    const cleanup = cleanupFor(t);
    const counting = await startCountingServer();
    cleanup(() => counting.close());
    const lb = await startLb({ backends: [counting.url], healthIntervalMs: 150 });
    cleanup(() => lb.close());

    await until(() => counting.acceptedAt.length >= 4, 5000, '4 probes');
    const times = counting.acceptedAt.slice(0, 4);
    for (let i = 1; i < times.length; i++) {
      const gap = (times[i] as number) - (times[i - 1] as number);
      // Default jitter 0.1: each wait is 135-165 ms.
      assert.ok(gap >= 130, `probe ${i} came ${gap.toFixed(1)} ms after the previous one (interval 150 ms ± 10%)`);
    }
    assert.ok(logIndexes(lb, `${counting.url} [up]`).length >= 4);
  });

  test('a probe that does not connect within healthTimeoutMs marks the backend down', async (t) => {
    const cleanup = cleanupFor(t);
    const blackhole = await startBlackhole();
    cleanup(() => blackhole.close());
    const live = await startBackend('live');
    cleanup(() => live.close());

    const started = performance.now();
    const lb = await startLb({ backends: [blackhole.url, live.url], healthTimeoutMs: 300 });
    const elapsed = performance.now() - started;
    cleanup(() => lb.close());

    assert.equal(backendAt(lb, 0).available, false);
    assert.equal(backendAt(lb, 1).available, true);
    const entry = lb.logs[logIndexes(lb, `${blackhole.url} [down]`)[0] ?? -1];
    assert.equal(entry?.['error'], 'no connection within 300 ms');
    assert.ok(elapsed >= 290 && elapsed < 1900, `the first round took ${elapsed.toFixed(0)} ms`);
    assert.equal(await answeredBy(`${lb.url}/`), 'live');
  });

  test('the probe timeout defaults to 2 s', async (t) => {
    const cleanup = cleanupFor(t);
    const blackhole = await startBlackhole();
    cleanup(() => blackhole.close());

    const started = performance.now();
    const lb = await startLb({ backends: [blackhole.url] });
    const elapsed = performance.now() - started;
    cleanup(() => lb.close());
    assert.equal(backendAt(lb, 0).available, false);
    assert.equal(lb.logs[logIndexes(lb, `${blackhole.url} [down]`)[0] ?? -1]?.['error'], 'no connection within 2000 ms');
    assert.ok(elapsed >= 1950 && elapsed < 4000, `the first round took ${elapsed.toFixed(0)} ms`);
  });

  test('tcpProbe resolves on a listening port and rejects on a refused one', async (t) => {
    const cleanup = cleanupFor(t);
    const counting = await startCountingServer();
    cleanup(() => counting.close());
    const pool = { connectTimeoutMs: 1000, headersTimeoutMs: 1000, bodyTimeoutMs: 1000, keepAliveTimeoutMs: 1000 };
    const up = new Backend(parseBackendUrl(`${counting.url}/some/base`), 1, pool);
    cleanup(() => up.close());
    const down = new Backend(parseBackendUrl(`http://127.0.0.1:${await deadPort()}`), 1, pool);
    cleanup(() => down.close());

    await tcpProbe(up, 1000, new AbortController().signal);
    await until(() => counting.acceptedAt.length === 1, 2000, 'the probe connection');
    await assert.rejects(tcpProbe(down, 1000, new AbortController().signal), { code: 'ECONNREFUSED' });
  });

  test('a backend URL without a port is probed on the scheme default port (80)', async (t) => {
    const cleanup = cleanupFor(t);
    let counting;
    try {
      counting = await startCountingServer(80);
    } catch (err) {
      t.skip(`cannot listen on 127.0.0.1:80 (${(err as { code?: string }).code ?? String(err)})`);
      return;
    }
    cleanup(() => counting.close());
    const lb = await startLb({ backends: ['http://127.0.0.1'] });
    cleanup(() => lb.close());
    assert.equal(counting.acceptedAt.length, 1, 'the start-up probe connected to port 80');
    assert.equal(backendAt(lb, 0).port, 80);
    assert.equal(backendAt(lb, 0).available, true);
    assert.equal(logIndexes(lb, 'http://127.0.0.1 [up]').length, 1);
  });

  test('a https backend URL without a port is probed on port 443, with a TLS handshake', async (t) => {
    const cleanup = cleanupFor(t);
    const ca = await makeCa();
    cleanup(() => ca.remove());
    let backend;
    try {
      backend = await startTlsBackend('443', await ca.issue('127.0.0.1', ['IP:127.0.0.1']), { port: 443 });
    } catch (err) {
      t.skip(`cannot listen on 127.0.0.1:443 (${(err as { code?: string }).code ?? String(err)})`);
      return;
    }
    cleanup(() => backend.close());
    const lb = await startLb({ backends: ['https://127.0.0.1'], backendTls: { ca: ca.caFile } });
    cleanup(() => lb.close());
    // TLS 1.3: the server finishes its side one flight after the client.
    await until(() => backend.handshakes.length === 1, 2000, 'the start-up probe to complete a handshake on port 443');
    assert.equal(backendAt(lb, 0).available, true);
  });

  test('no probe runs after close(), even after checkHealth() was called', async (t) => {
    const cleanup = cleanupFor(t);
    const counting = await startCountingServer();
    cleanup(() => counting.close());
    const lb = await startLb({ backends: [counting.url], healthIntervalMs: 200 });
    cleanup(() => lb.close());
    await lb.checkHealth();
    await lb.checkHealth();
    await lb.close();
    const probesAtClose = counting.acceptedAt.length;
    // Waiting for something that must not happen: give it two and a half intervals.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(counting.acceptedAt.length, probesAtClose, 'a health probe ran after close()');
  });

  test('checkHealth() does not add a second periodic schedule', async (t) => {
    const cleanup = cleanupFor(t);
    const counting = await startCountingServer();
    cleanup(() => counting.close());
    const intervalMs = 300;
    const lb = await startLb({ backends: [counting.url], healthIntervalMs: intervalMs });
    cleanup(() => lb.close());
    // A manual round half an interval after start: a second schedule would run offset from the
    // first one instead of merging with it, probing about every 150 ms instead of every 300.
    await new Promise((resolve) => setTimeout(resolve, intervalMs / 2));
    const from = counting.acceptedAt.length;
    await lb.checkHealth();
    await until(() => counting.acceptedAt.length > from, 2000, "the manual round's probe to be accepted");
    // The schedule goes on after the manual round (no probes at all would time out here) ...
    await until(() => counting.acceptedAt.length >= from + 5, 10 * intervalMs, 'four scheduled probes after the manual round');
    const gaps = counting.acceptedAt.slice(from, from + 5).map((at, i, all) => (i === 0 ? 0 : at - (all[i - 1] as number))).slice(1);
    t.diagnostic(`gaps between probes after checkHealth(): ${gaps.map((g) => g.toFixed(0)).join(', ')} ms (interval ${intervalMs} ms ± 10%)`);
    // ... one probe at a time: each at least the interval minus its 10% jitter after the last.
    // (A busy machine only makes the gaps longer.)
    for (const gap of gaps) assert.ok(gap >= intervalMs * 0.9 - 5, `a probe ${gap.toFixed(0)} ms after the previous one, ${intervalMs} ms ± 10% expected`);
  });
});

test('probes leave no listener behind on the checker\'s abort signal', async (t) => {
  const cleanup = cleanupFor(t);
  const live = await startBackend('live');
  cleanup(() => live.close());
  const backend = new Backend(parseBackendUrl(live.url), 1, { connectTimeoutMs: 1000, headersTimeoutMs: 1000, bodyTimeoutMs: 1000, keepAliveTimeoutMs: 1000 });
  cleanup(() => backend.close());
  const controller = new AbortController();
  for (let i = 0; i < 20; i++) await tcpProbe(backend, 1000, controller.signal);
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
});
