import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { resolveHealthOptions } from '../../src/health/options.js';

/** The healthCheck section parsed from YAML flow text, resolved to checker options. */
function resolved(healthCheck: string): ReturnType<typeof resolveHealthOptions> {
  const config = parseConfig(`upstreams:\n  web:\n    backends: [http://127.0.0.1:1]\n    healthCheck: ${healthCheck}\n`, 'c.yaml');
  const web = config.upstreams['web'];
  assert.ok(web !== undefined);
  return resolveHealthOptions(web.healthCheck);
}

/** The problem lines for a healthCheck section (`c.yaml:4:COL path: message`). */
function problems(healthCheck: string): string[] {
  try {
    parseConfig(`upstreams:\n  web:\n    backends: [http://127.0.0.1:1]\n    healthCheck: ${healthCheck}\n`, 'c.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message.split('\n');
  }
  assert.fail('expected a ConfigError');
}

describe('healthCheck config', () => {
  test('tcp defaults: every 20 s, one check flips the state', () => {
    assert.deepEqual(resolved('{}'), {
      type: 'tcp', intervalMs: 20_000, jitter: 0.1, timeoutMs: 2000, rise: 1, fall: 1,
      path: '/', method: 'GET', host: '', expectStatus: [[200, 399]], bodyContains: '',
    });
  });

  test('http defaults: every 2 s, rise 2, fall 3, GET / expecting 200-399', () => {
    assert.deepEqual(resolved('{ type: http }'), {
      type: 'http', intervalMs: 2000, jitter: 0.1, timeoutMs: 2000, rise: 2, fall: 3,
      path: '/', method: 'GET', host: '', expectStatus: [[200, 399]], bodyContains: '',
    });
  });

  test('given values win over the type defaults; statuses parse to inclusive ranges', () => {
    const options = resolved('{ type: http, interval: 5s, jitter: 0, timeout: 750ms, rise: 1, fall: 5, path: "/healthz?deep=1", method: HEAD, host: api.internal, expectStatus: [204, "300-308", " 418 "] }');
    assert.deepEqual(options, {
      type: 'http', intervalMs: 5000, jitter: 0, timeoutMs: 750, rise: 1, fall: 5,
      path: '/healthz?deep=1', method: 'HEAD', host: 'api.internal', expectStatus: [[204, 204], [300, 308], [418, 418]], bodyContains: '',
    });
    assert.equal(resolved('{ type: http, bodyContains: "ready" }').bodyContains, 'ready');
    assert.equal(resolved('{ interval: 1s }').rise, 1, 'tcp keeps its own rise when only the interval is given');
  });

  test('a backwards range, an impossible status and a bad entry are errors at their position', () => {
    assert.deepEqual(problems('{ type: http, expectStatus: [200, "300-200", 600, "2xx"] }'), [
      'c.yaml:4:52 upstreams.web.healthCheck.expectStatus.1: "300-200": the range is backwards (300 > 200)',
      'c.yaml:4:63 upstreams.web.healthCheck.expectStatus.2: "600": status codes are 100-599',
      'c.yaml:4:68 upstreams.web.healthCheck.expectStatus.3: "2xx" is not a status code or range (examples: 200, "200-399")',
    ]);
    assert.deepEqual(problems('{ type: http, expectStatus: [] }'), ['c.yaml:4:46 upstreams.web.healthCheck.expectStatus: needs at least one item']);
  });

  test('unknown keys are errors, with "did you mean"', () => {
    assert.deepEqual(problems('{ type: http, bodyContain: ok, intervall: 1s }'), [
      'c.yaml:4:32 upstreams.web.healthCheck.bodyContain: unknown key "bodyContain" (did you mean "bodyContains"?)',
      'c.yaml:4:49 upstreams.web.healthCheck.intervall: unknown key "intervall" (did you mean "interval"?)',
    ]);
  });

  test('out-of-range numbers, unknown type or method, a relative path and HEAD with bodyContains are errors', () => {
    const lines = problems('{ type: udp, jitter: 0.6, rise: 0, fall: 1.5, method: POST, path: healthz }');
    assert.deepEqual(lines.map((line) => line.replace(/^c\.yaml:\d+:\d+ upstreams\.web\.healthCheck\./, '')), [
      'type: "udp" is not one of tcp, http',
      'jitter: must be at most 0.5',
      'rise: must be at least 1',
      'fall: 1.5 must be a whole number',
      'method: "POST" is not one of GET, HEAD',
      'path: must start with "/" and contain no spaces or control characters',
    ]);
    assert.deepEqual(problems('{ type: http, method: HEAD, bodyContains: ok }'), [
      'c.yaml:4:60 upstreams.web.healthCheck.bodyContains: a HEAD response has no body: use method GET with bodyContains',
    ]);
  });
});
