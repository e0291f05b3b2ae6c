import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, describe, test, type TestContext } from 'node:test';
import { register as globalRegistry } from 'prom-client';
import { codeClassLabels, createMetrics, methodLabels, SwitchyardMetrics, type Metrics } from '../../src/admin/metrics.js';
import {
  attemptChannel,
  backendStateChannel,
  publishEjection,
  publishHealthCheck,
  publishReload,
  requestChannel,
  type AttemptEvent,
  type RequestEvent,
} from '../../src/events.js';
import { Backend, DownReason, parseBackendUrl, type PoolOptions } from '../../src/upstream/backend.js';
import { byKey, parseExposition, seriesKey } from '../helpers/prometheus.js';

// The diagnostics channels are the module's input: tests publish real events on them.
const poolOptions: PoolOptions = { connectTimeoutMs: 1000, headersTimeoutMs: 1000, bodyTimeoutMs: 1000, keepAliveTimeoutMs: 1000 };
const created: Backend[] = [];
after(() => Promise.all(created.map((b) => b.close())));

function backend(url: string, upstream = 'web'): Backend {
  const b = new Backend(parseBackendUrl(url), 1, poolOptions, Number.POSITIVE_INFINITY, upstream);
  created.push(b);
  return b;
}

interface Upstreams {
  readonly list: { name: string; backends: Backend[] }[];
  upstreams(): Iterable<{ readonly name: string; readonly backends: readonly Backend[] }>;
}

function source(...backends: Backend[]): Upstreams {
  const list: { name: string; backends: Backend[] }[] = [];
  for (const b of backends) {
    const found = list.find((u) => u.name === b.upstream);
    if (found === undefined) list.push({ name: b.upstream, backends: [b] });
    else found.backends.push(b);
  }
  return { list, upstreams: () => list };
}

function metricsFor(t: TestContext, upstreams: Upstreams = source()): Metrics {
  const metrics = createMetrics(upstreams);
  t.after(() => metrics.close());
  return metrics;
}

function request(b: Backend | null, method: string, status: number, durationMs = 1, upstream = b?.upstream ?? ''): void {
  const event: RequestEvent = { upstream, backend: b, method, host: 'example.test', path: '/x?id=1', status, durationMs, bytesSent: 0, attempts: b === null ? 0 : 1, clientIp: '127.0.0.1', httpVersion: '1.1', outcome: status === 0 ? 'aborted' : 'ok' };
  requestChannel.publish(event);
}

function attempt(b: Backend, outcome: string, retried = false): void {
  const event: AttemptEvent = { backend: b, method: 'GET', outcome, status: outcome === 'response' ? 200 : 0, durationMs: 1, retried };
  attemptChannel.publish(event);
}

async function scrape(metrics: Metrics): Promise<Map<string, number>> {
  return byKey(parseExposition(await metrics.text()));
}

function value(samples: Map<string, number>, name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.get(seriesKey(`switchyard_${name}`, labels));
}

/** Series of one metric, as key → value. */
function series(samples: Map<string, number>, name: string): Map<string, number> {
  const prefix = `switchyard_${name}{`;
  return new Map([...samples].filter(([key]) => key.startsWith(prefix)));
}

describe('request metrics', () => {
  test('requests_total counts by upstream, backend, method and status class', async (t) => {
    const a = backend('http://127.0.0.1:10001');
    const metrics = metricsFor(t, source(a));
    request(a, 'GET', 200);
    request(a, 'GET', 204);
    request(a, 'POST', 503);
    request(a, 'GET', 0);
    request(null, 'GET', 503, 1, 'web');
    request(null, 'GET', 404, 1, '');
    const s = await scrape(metrics);
    const labels = (backendUrl: string, method: string, codeClass: string, upstream = 'web') => ({ upstream, backend: backendUrl, method, code_class: codeClass });
    assert.equal(value(s, 'requests_total', labels(a.url, 'GET', '2xx')), 2);
    assert.equal(value(s, 'requests_total', labels(a.url, 'POST', '5xx')), 1);
    assert.equal(value(s, 'requests_total', labels(a.url, 'GET', 'none')), 1);
    assert.equal(value(s, 'requests_total', labels('none', 'GET', '5xx')), 1);
    assert.equal(value(s, 'requests_total', labels('none', 'GET', '4xx', 'none')), 1);
    assert.equal(series(s, 'requests_total').size, 5);
    // Never a raw path or host in a label.
    assert.ok(!(await metrics.text()).includes('example.test') && !(await metrics.text()).includes('/x?id=1'));
  });

  test('methods outside the standard set are counted as OTHER, status classes outside 1xx-5xx as other', async (t) => {
    const a = backend('http://127.0.0.1:10002');
    const metrics = metricsFor(t, source(a));
    for (const method of ['PROPFIND', 'get', 'BREW', 'X'.repeat(200)]) request(a, method, 200);
    for (const method of methodLabels.slice(0, -1)) request(a, method, 200);
    request(a, 'GET', 799);
    const s = await scrape(metrics);
    assert.equal(value(s, 'requests_total', { upstream: 'web', backend: a.url, method: 'OTHER', code_class: '2xx' }), 4);
    for (const method of methodLabels.slice(0, -1)) assert.equal(value(s, 'requests_total', { upstream: 'web', backend: a.url, method, code_class: '2xx' }), 1, method);
    assert.equal(value(s, 'requests_total', { upstream: 'web', backend: a.url, method: 'GET', code_class: 'other' }), 1);
    assert.equal(series(s, 'requests_total').size, methodLabels.length + 1);
  });

  test('requests_by_protocol_total counts by the HTTP version the client spoke, the same at every scrape', async (t) => {
    const a = backend('http://127.0.0.1:10005');
    const metrics = metricsFor(t, source(a));
    const versions = ['1.1', '1.1', '1.0', '2.0', '1.1'];
    for (const httpVersion of versions) {
      const event: RequestEvent = { upstream: 'web', backend: a, method: 'GET', host: 'example.test', path: '/', status: 200, durationMs: 1, bytesSent: 0, attempts: 1, clientIp: '127.0.0.1', httpVersion, outcome: 'ok' };
      requestChannel.publish(event);
    }
    for (let scrapes = 0; scrapes < 2; scrapes++) {
      const s = await scrape(metrics);
      assert.deepEqual(Object.fromEntries(series(s, 'requests_by_protocol_total')), {
        [seriesKey('switchyard_requests_by_protocol_total', { protocol: '1.0' })]: 1,
        [seriesKey('switchyard_requests_by_protocol_total', { protocol: '1.1' })]: 3,
        [seriesKey('switchyard_requests_by_protocol_total', { protocol: '2.0' })]: 1,
      });
    }
    request(a, 'GET', 200);
    assert.equal(value(await scrape(metrics), 'requests_by_protocol_total', { protocol: '1.1' }), 4);
  });

  test('request_duration_seconds is a histogram per upstream, in seconds', async (t) => {
    const a = backend('http://127.0.0.1:10003');
    const metrics = metricsFor(t, source(a));
    request(a, 'GET', 200, 3);
    request(a, 'GET', 200, 40_000);
    const s = await scrape(metrics);
    const bucket = (le: string) => value(s, 'request_duration_seconds_bucket', { upstream: 'web', le });
    assert.equal(bucket('0.001'), 0);
    assert.equal(bucket('0.005'), 1);
    assert.equal(bucket('30'), 1);
    assert.equal(bucket('+Inf'), 2);
    assert.equal(value(s, 'request_duration_seconds_count', { upstream: 'web' }), 2);
    assert.equal(value(s, 'request_duration_seconds_sum', { upstream: 'web' }), 40.003);
    // A broken duration is left out of the histogram: prom-client would throw, and an exception in a
    // subscriber is rethrown on the next tick as an uncaught exception (the proxy would exit).
    const uncaught: unknown[] = [];
    const monitor = (error: unknown): void => void uncaught.push(error);
    process.on('uncaughtExceptionMonitor', monitor);
    t.after(() => process.off('uncaughtExceptionMonitor', monitor));
    request(a, 'GET', 200, Number.NaN);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(uncaught, []);
    const after = await scrape(metrics);
    assert.equal(value(after, 'request_duration_seconds_count', { upstream: 'web' }), 2);
    assert.equal(value(after, 'requests_total', { upstream: 'web', backend: a.url, method: 'GET', code_class: '2xx' }), 3);
  });

  test('attempts_total by outcome and retries_total', async (t) => {
    const a = backend('http://127.0.0.1:10004');
    const metrics = metricsFor(t, source(a));
    attempt(a, 'connect', true);
    attempt(a, 'connect', true);
    attempt(a, 'response');
    attempt(a, 'something-new');
    const s = await scrape(metrics);
    const labels = { upstream: 'web', backend: a.url };
    assert.equal(value(s, 'attempts_total', { ...labels, outcome: 'connect' }), 2);
    assert.equal(value(s, 'attempts_total', { ...labels, outcome: 'response' }), 1);
    assert.equal(value(s, 'attempts_total', { ...labels, outcome: 'other' }), 1);
    assert.equal(value(s, 'retries_total', labels), 2);
  });

  test('health checks, ejections and reloads', async (t) => {
    const a = backend('http://127.0.0.1:10005');
    const metrics = metricsFor(t, source(a));
    const start = value(await scrape(metrics), 'config_last_reload_success_timestamp_seconds');
    assert.ok(start !== undefined && Math.abs(start - Date.now() / 1000) < 60, 'the config in force at start counts as loaded');
    publishHealthCheck({ backend: a, ok: true, durationMs: 1, error: '' });
    publishHealthCheck({ backend: a, ok: false, durationMs: 1, error: 'ECONNREFUSED' });
    publishHealthCheck({ backend: a, ok: false, durationMs: 1, error: 'ECONNREFUSED' });
    publishEjection({ backend: a, ejected: true, reason: '5xx', durationMs: 30_000 });
    publishEjection({ backend: a, ejected: false, reason: '', durationMs: 0 });
    publishReload({ ok: false, source: 'api', digest: 'd1', error: 'bad' });
    let s = await scrape(metrics);
    const labels = { upstream: 'web', backend: a.url };
    assert.equal(value(s, 'health_checks_total', { ...labels, result: 'pass' }), 1);
    assert.equal(value(s, 'health_checks_total', { ...labels, result: 'fail' }), 2);
    assert.equal(value(s, 'ejections_total', labels), 1);
    assert.equal(value(s, 'reloads_total', { result: 'fail' }), 1);
    assert.equal(value(s, 'config_last_reload_successful'), 0);
    assert.equal(value(s, 'config_last_reload_success_timestamp_seconds'), start, 'a failed reload changes nothing');
    const before = Date.now() / 1000;
    publishReload({ ok: true, source: 'signal', digest: 'd2', error: '' });
    s = await scrape(metrics);
    assert.equal(value(s, 'reloads_total', { result: 'ok' }), 1);
    assert.equal(value(s, 'config_last_reload_successful'), 1);
    assert.ok((value(s, 'config_last_reload_success_timestamp_seconds') ?? 0) >= before - 0.001);
  });
});

describe('backend gauges', () => {
  test('backend_up, backend_down_reasons and backend_in_flight follow the live backends', async (t) => {
    const a = backend('http://127.0.0.1:10011');
    const b = backend('http://127.0.0.1:10012');
    const metrics = metricsFor(t, source(a, b));
    const la = { upstream: 'web', backend: a.url };
    let s = await scrape(metrics);
    assert.equal(value(s, 'backend_up', la), 1);
    assert.equal(value(s, 'backend_down_reasons', { ...la, reason: 'health-check' }), 0);
    assert.equal(series(s, 'backend_down_reasons').size, 12, 'six reasons for each of two backends');

    a.markDown(DownReason.healthCheck);
    a.markDown(DownReason.disabled);
    a.inFlight = 3;
    s = await scrape(metrics);
    assert.equal(value(s, 'backend_up', la), 0);
    assert.equal(value(s, 'backend_up', { upstream: 'web', backend: b.url }), 1);
    assert.equal(value(s, 'backend_down_reasons', { ...la, reason: 'health-check' }), 1);
    assert.equal(value(s, 'backend_down_reasons', { ...la, reason: 'disabled' }), 1);
    assert.equal(value(s, 'backend_down_reasons', { ...la, reason: 'draining' }), 0);
    assert.equal(value(s, 'backend_in_flight', la), 3);

    a.markUp(DownReason.healthCheck);
    a.markUp(DownReason.disabled);
    a.inFlight = 0;
    s = await scrape(metrics);
    assert.equal(value(s, 'backend_up', la), 1);
    assert.equal(value(s, 'backend_down_reasons', { ...la, reason: 'disabled' }), 0);
    assert.equal(value(s, 'backend_in_flight', la), 0);
    // One down and one up transition, however many reasons came and went.
    assert.equal(value(s, 'backend_state_changes_total', { ...la, to: 'down' }), 1);
    assert.equal(value(s, 'backend_state_changes_total', { ...la, to: 'up' }), 1);
  });

  test('a removed backend disappears from the gauges', async (t) => {
    const a = backend('http://127.0.0.1:10013');
    const b = backend('http://127.0.0.1:10014', 'api');
    const upstreams = source(a, b);
    const metrics = metricsFor(t, upstreams);
    let s = await scrape(metrics);
    assert.equal(value(s, 'backend_up', { upstream: 'api', backend: b.url }), 1);
    upstreams.list.splice(1, 1);
    // The remaining backend in a state that no default value could fake: two in flight, draining.
    a.inFlight = 2;
    a.markDown(DownReason.draining);
    s = await scrape(metrics);
    for (const name of ['backend_up', 'backend_in_flight', 'backend_down_reasons']) {
      assert.ok(![...series(s, name).keys()].some((key) => key.includes(b.url)), `${name} no longer mentions ${b.url}`);
    }
    // Only b's series went: a's are all still there, with its values.
    const la = { upstream: 'web', backend: a.url };
    assert.equal(value(s, 'backend_up', la), 0);
    assert.equal(value(s, 'backend_in_flight', la), 2);
    const reasons = series(s, 'backend_down_reasons');
    assert.equal(reasons.size, 6, [...reasons.keys()].join('\n'));
    for (const reason of ['health-check', 'failed-attempts', 'draining', 'disabled', 'outlier-ejected', 'terminating']) {
      assert.equal(value(s, 'backend_down_reasons', { ...la, reason }), reason === 'draining' ? 1 : 0, reason);
    }
    a.inFlight = 0;
  });
});

describe('lifecycle', () => {
  test('close() unsubscribes: later events are not counted', async (t) => {
    const a = backend('http://127.0.0.1:10021');
    const metrics = createMetrics(source(a));
    t.after(() => metrics.close());
    assert.equal(requestChannel.hasSubscribers, true);
    request(a, 'GET', 200);
    attempt(a, 'response');
    metrics.close();
    metrics.close();
    for (const channel of [requestChannel, attemptChannel, backendStateChannel]) assert.equal(channel.hasSubscribers, false);
    request(a, 'GET', 200);
    attempt(a, 'response');
    publishHealthCheck({ backend: a, ok: true, durationMs: 1, error: '' });
    const s = await scrape(metrics);
    assert.equal(value(s, 'requests_total', { upstream: 'web', backend: a.url, method: 'GET', code_class: '2xx' }), 1);
    assert.equal(value(s, 'attempts_total', { upstream: 'web', backend: a.url, outcome: 'response' }), 1);
    assert.equal(series(s, 'health_checks_total').size, 0);
  });

  test('two instances keep their own counts, and the global registry stays empty', async (t) => {
    const a = backend('http://127.0.0.1:10022');
    const first = metricsFor(t, source(a));
    request(a, 'GET', 200);
    const second = metricsFor(t, source(a));
    request(a, 'GET', 200);
    const labels = { upstream: 'web', backend: a.url, method: 'GET', code_class: '2xx' };
    assert.equal(value(await scrape(first), 'requests_total', labels), 2);
    assert.equal(value(await scrape(second), 'requests_total', labels), 1);
    first.close();
    request(a, 'GET', 200);
    assert.equal(value(await scrape(first), 'requests_total', labels), 2);
    assert.equal(value(await scrape(second), 'requests_total', labels), 2);
    assert.equal(globalRegistry.getMetricsAsArray().length, 0);
  });

  test('a closed instance leaves nothing alive, and an open one does not keep the process running', async () => {
    // A child with --expose-gc: prom-client's own gc metric would pin every registry forever.
    const moduleUrl = new URL('../../src/admin/metrics.js', import.meta.url).href;
    const script = `
      const { SwitchyardMetrics } = await import(${JSON.stringify(moduleUrl)});
      async function closedOne() { const m = new SwitchyardMetrics({ upstreams: () => [] }); await m.text(); m.close(); return new WeakRef(m.registry); }
      const closed = [];
      for (let i = 0; i < 5; i++) closed.push(await closedOne());
      const open = new WeakRef(new SwitchyardMetrics({ upstreams: () => [] }).registry);
      for (let i = 0; i < 20 && closed.some((r) => r.deref() !== undefined); i++) { await new Promise((r) => setTimeout(r, 10)); gc(); }
      console.log(JSON.stringify({ closedAlive: closed.filter((r) => r.deref() !== undefined).length, openAlive: open.deref() !== undefined }));`;
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { timeout: 20_000 }, (error, out, err) => (error === null ? resolve(out) : reject(new Error(`${error.message}\n${err}`))));
    });
    // The child exited by itself (execFile resolved) although one instance was never closed.
    assert.deepEqual(JSON.parse(stdout), { closedAlive: 0, openAlive: true });
  });
});

describe('exposition', () => {
  test('the whole output is valid Prometheus text, process metrics included', async (t) => {
    const a = backend('http://127.0.0.1:10031');
    const metrics = metricsFor(t, source(a));
    request(a, 'GET', 200);
    attempt(a, 'reset', true);
    publishHealthCheck({ backend: a, ok: true, durationMs: 1, error: '' });
    a.markDown(DownReason.draining);
    assert.match(metrics.contentType, /^text\/plain; version=0\.0\.4/);
    const samples = parseExposition(await metrics.text());
    const names = new Set(samples.map((s) => s.name));
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_version_info']) {
      assert.ok(names.has(`switchyard_${name}`), `has switchyard_${name}`);
    }
    for (const s of samples) assert.ok(s.name.startsWith('switchyard_'), s.name);
    a.markUp(DownReason.draining);
  });

  test('the validator rejects malformed expositions', () => {
    const bad = [
      'x{a="1"} one',
      'x{a=1} 1',
      'x{1a="1"} 1',
      'x{a="1",a="2"} 1',
      'x 1\ny 1\nx{a="1"} 1',
      'x 1\nx 2',
      '# TYPE x counter\n# TYPE x counter\nx 1',
      '# TYPE h histogram\nh_bucket 1',
      'x{a="\\q"} 1',
    ];
    for (const text of bad) assert.throws(() => parseExposition(text), Error, text);
    assert.equal(parseExposition('# HELP x says "hi"\n# TYPE x gauge\nx{a="q\\"\\\\"} -1.5e3\n').length, 1);
  });

  test('100k request events keep the cached children within the bounded label set', async (t) => {
    const backends = [backend('http://127.0.0.1:10041'), backend('http://127.0.0.1:10042'), backend('http://127.0.0.1:10043', 'api')];
    const metrics = new SwitchyardMetrics(source(...backends));
    t.after(() => metrics.close());
    const methods = [...methodLabels.slice(0, -1), 'PROPFIND', 'get', 'M-SEARCH'];
    const total = 100_000;
    const started = process.hrtime.bigint();
    for (let i = 0; i < total; i++) {
      const b = i % 4 === 3 ? null : (backends[i % 3] as Backend);
      request(b, methods[i % methods.length] as string, (i * 7) % 1000, i % 50, b === null ? (i % 8 === 3 ? '' : 'web') : b.upstream);
    }
    const nsPerEvent = Number(process.hrtime.bigint() - started) / total;
    // Three backends plus the "no backend" series of two upstreams ('web' and none) ...
    const requestSeriesBound = (backends.length + 2) * methodLabels.length * codeClassLabels.length;
    // ... plus one duration child per upstream name seen ('web', 'api', '').
    assert.ok(metrics.cachedChildren <= requestSeriesBound + 3, `cached children ${metrics.cachedChildren} <= ${requestSeriesBound + 3}`);
    const s = await scrape(metrics);
    const requests = series(s, 'requests_total');
    assert.ok(requests.size <= requestSeriesBound, `requests_total series ${requests.size} <= ${requestSeriesBound}`);
    assert.equal([...requests.values()].reduce((sum, n) => sum + n, 0), total);
    t.diagnostic(`${total} request events: ${(nsPerEvent / 1000).toFixed(2)} µs per event, ${metrics.cachedChildren} cached children, ${requests.size} series`);
  });
});
