import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { request } from 'undici';
import { cliPath, spawnCli } from '../helpers/cli.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startBackend, until } from '../helpers/servers.js';

// .test-build/test/config/cli.test.js -> .test-build/src/cli.js

const dir = mkdtempSync(join(tmpdir(), 'swy-config-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Runs the CLI to completion (bounded: killed after 10 s). */
function runCli(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('switchyard validate FILE', () => {
  test('a good file prints "FILE: ok" and exits 0', () => {
    const file = write('good.yaml', 'upstreams:\n  web:\n    backends: [http://127.0.0.1:8080]\n');
    const result = runCli(['validate', file]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, `${file}: ok\n`);
    assert.equal(result.stderr, '');
  });

  test('a bad file prints one FILE:LINE:COL line per problem on stderr and exits 2', () => {
    const file = write('bad.yaml', 'upstreams:\n  web:\n    backends: [http://127.0.0.1:8080]\n    balancer: nope\n    sticki: true\n');
    const result = runCli(['validate', file]);
    assert.equal(result.status, 2);
    assert.equal(result.stdout, '');
    assert.ok(!result.stderr.includes('    at '), 'no stack trace');
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 2, result.stderr);
    assert.match(lines[0] ?? '', new RegExp(`^${escape(file)}:4:15 upstreams\\.web\\.balancer: `));
    assert.equal(lines[1], `${file}:5:5 upstreams.web.sticki: unknown key "sticki" (did you mean "sticky"?)`);
  });

  test('a YAML syntax error exits 2 with a FILE:LINE:COL line', () => {
    const file = write('syntax.yaml', 'upstreams: [\n');
    const result = runCli(['validate', file]);
    assert.equal(result.status, 2);
    assert.match(result.stderr, new RegExp(`^${escape(file)}:\\d+:\\d+ `));
  });

  test('a file with several upstreams and routes validates', () => {
    const file = write('multi.yaml', 'upstreams:\n  a: { backends: [http://127.0.0.1:1] }\n  b: { backends: [http://127.0.0.1:2] }\nroutes:\n  - { host: a.test, upstream: a }\n  - { upstream: b }\n');
    const result = runCli(['validate', file]);
    assert.equal(result.status, 0);
    assert.equal(result.stdout, `${file}: ok\n`);
  });

  test('refuses what start-up would refuse, without opening a socket (issue 9)', () => {
    const file = write('agree.yaml', [
      'listeners: [{ port: 9901 }]',
      'upstreams:',
      '  web: { backends: [http://127.0.0.1:1, "http://127.0.0.1:1/"] }',
      'routes:',
      '  - { host: A.test, upstream: web }',
      '  - { host: a.test, upstream: web }',
      '',
    ].join('\n'));
    const result = runCli(['validate', file]);
    assert.equal(result.status, 2);
    assert.equal(result.stdout, '');
    assert.equal(result.stderr, [
      `${file}:1:21 listeners.0.port: *:9901 overlaps the admin listener 127.0.0.1:9901: give one of them another port`,
      `${file}:3:41 upstreams.web.backends.1: backend http://127.0.0.1:1 is listed twice in upstream "web" (also backends.0)`,
      `${file}:6:5 routes.1: same route as routes.0 (host "a.test"; hosts match in any case): routes.1 would never be used`,
      '',
    ].join('\n'));
    const json = write('trailing.json', '{ "upstreams": { "web": { "backends": ["http://127.0.0.1:1"], } } }\n');
    const jsonResult = runCli(['validate', json]);
    assert.equal(jsonResult.status, 2);
    assert.equal(jsonResult.stderr, `${json}:1:61 not valid JSON: trailing comma before "}" (JSON allows none)\n`);
  });

  test('no file is a usage error', () => {
    const result = runCli(['validate']);
    assert.equal(result.status, 2);
    assert.equal(result.stderr, 'switchyard: usage: switchyard validate FILE\n');
  });
});

describe('switchyard --config FILE', () => {
  test('a flag the file also covers conflicts, in one line', () => {
    const file = write('conflict.yaml', 'upstreams:\n  web:\n    backends: [http://127.0.0.1:8080]\n');
    const result = runCli(['--config', file, '--port', '8080']);
    assert.equal(result.status, 2);
    assert.equal(result.stderr, 'switchyard: --port conflicts with --config (set listeners[0].port in the file)\n');
  });

  test('starts from the file and proxies a request; --log-level/--log-format may override', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startBackend('one');
    cleanup(() => backend.close());
    const file = write('run.yaml', `listeners:\n  - host: 127.0.0.1\n    port: 0\nupstreams:\n  web:\n    backends: [${backend.url}]\nlog: { level: warn }\nadmin: false\n`);
    const cli = spawnCli(['--config', file, '--log-level', 'info'], cleanup);
    const port = await cli.started();
    const response = await request(`http://127.0.0.1:${port}/hello`);
    assert.equal(response.statusCode, 200);
    assert.equal(await response.body.text(), 'one');
    assert.equal(backend.seen[0]?.url, '/hello');
    cli.child.kill('SIGTERM');
    const [code] = await cli.exited;
    assert.equal(code, 0);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
