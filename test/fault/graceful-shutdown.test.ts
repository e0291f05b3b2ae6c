import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { spawnCli } from '../helpers/cli.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { describeLoad, startLoad } from '../helpers/load.js';
import { startHoldingBackend } from '../helpers/faults.js';
import { startBackend, until } from '../helpers/servers.js';

/**
 * Fault scenario from issue 5: SIGTERM to the CLI process under load, with backends that take
 * 200 ms to answer. Every request Switchyard accepted gets its whole 200; requests after the
 * listener closed are refused before anything is sent; the process exits 0 before the grace ends.
 */
// The compiled CLI next to the compiled tests: .test-build/test/fault/x.test.js -> .test-build/src/cli.js
const responseDelayMs = 200;
const graceMs = 5000;

/** Answers `name` after `responseDelayMs`, like a backend doing some work. */
function slowHandler(name: string): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (req, res) => {
    req.resume();
    setTimeout(() => {
      res.writeHead(200, { 'x-backend': name, 'content-type': 'text/plain' });
      res.end(name);
    }, responseDelayMs);
  };
}

test('SIGTERM under load: in-flight requests finish, new ones are refused, exit 0 before the grace ends', { timeout: 30_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const backends = await Promise.all(['a', 'b', 'c'].map((name) => startBackend(name, slowHandler(name))));
  for (const backend of backends) cleanup(() => backend.close());

  const cli = spawnCli(['--backends', backends.map((b) => b.url).join(','), '--port', '0', '--host', '127.0.0.1', '--grace', `${graceMs}ms`], cleanup);
  const { child, exited } = cli;
  const port = await cli.started();
  await until(() => backends.every((b) => cli.stdout().includes(`"msg":"${b.url} [up]"`)), 10_000, 'the first health check round');

  const load = startLoad({
    url: `http://127.0.0.1:${port}/`,
    concurrency: 32,
    timeoutMs: graceMs + 5000,
    check: (status, body, headers) => (status === 200 && body === headers['x-backend'] ? null : `${status} ${JSON.stringify(body)}`),
  });
  cleanup(() => load.stop());
  // Two rounds of the slow backends, so every client has a request in flight at the signal.
  await until(() => load.count(200) >= 64, 10_000, 'the load to get going');

  const okBeforeSignal = load.count(200);
  const signalledAt = performance.now();
  child.kill('SIGTERM');
  const [code, signal] = await exited;
  const exitMs = performance.now() - signalledAt;
  const report = await load.stop();

  const forwarded = backends.reduce((sum, b) => sum + b.seen.length, 0);
  const refused = report.errors['ECONNREFUSED'] ?? 0;
  const otherErrors = Object.entries(report.errors).filter(([name]) => name !== 'ECONNREFUSED');
  t.diagnostic(describeLoad(report));
  t.diagnostic(
    `200s after SIGTERM ${(report.statuses[200] ?? 0) - okBeforeSignal}, requests the backends got ${forwarded}; ` +
      `refused before sending ${refused}; other errors ${JSON.stringify(Object.fromEntries(otherErrors))}; exit ${code} after ${exitMs.toFixed(0)} ms (grace ${graceMs} ms)`,
  );
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, cli.stderr());
  assert.equal(cli.stderr(), '');
  assert.equal(report.problems, 0, describeLoad(report));
  assert.deepEqual(otherErrors, [], 'every request was answered 200 or refused before it was sent');
  assert.deepEqual(Object.keys(report.statuses), ['200']);
  // Every request Switchyard forwarded, those in flight at the signal included, was answered in full.
  assert.equal(report.statuses[200], forwarded, 'one whole 200 per request the backends got');
  assert.ok((report.statuses[200] ?? 0) > okBeforeSignal, 'requests in flight at the signal were answered');
  assert.ok(exitMs < graceMs, `exited once in-flight requests were done (${exitMs.toFixed(0)} ms), before the grace period`);
});

test('when the grace period runs out, the log says how many requests were cut', { timeout: 30_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const backend = await startHoldingBackend('hold');
  cleanup(() => backend.close());
  const cli = spawnCli(['--backends', backend.url, '--port', '0', '--host', '127.0.0.1', '--grace', '300ms'], cleanup);
  const port = await cli.started();
  // Two requests the backend never answers, on two client connections.
  const outcomes = [0, 1].map(
    (i) =>
      new Promise<string>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: `/held${i}`, agent: false }, (res) => resolve(`status ${res.statusCode}`));
        req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      }),
  );
  await until(() => backend.held.length === 2, 5000, 'two requests held by the backend');
  cli.child.kill('SIGTERM');
  const [code] = await cli.exited;
  assert.equal(code, 0, cli.stderr());
  assert.deepEqual(await Promise.all(outcomes), ['ECONNRESET', 'ECONNRESET'], 'both requests were cut');
  const line = cli.logs().find((e) => String(e['msg']).startsWith('grace period over'));
  assert.ok(line !== undefined, `no grace-period line in: ${cli.stdout()}`);
  assert.equal(line['msg'], `grace period over: cut 2 in-flight requests on :${port}`);
  assert.equal(line['level'], 40);
  assert.equal(line['cut'], 2);
});
