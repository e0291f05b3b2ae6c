import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import { request } from 'undici';
import { createLogger } from '../src/log.js';
import { writeAccessLog } from '../src/access-log.js';
import { cleanupFor } from './helpers/cleanup.js';
import { cliPath } from './helpers/cli.js';
import { startBackend, until } from './helpers/servers.js';

/** A destination whose every write fails the way a full disk does. */
function failingDestination(): Writable & { writes: number } {
  const stream = new Writable({
    write(_chunk, _enc, cb) {
      stream.writes++;
      cb(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }));
    },
  }) as Writable & { writes: number };
  stream.writes = 0;
  return stream;
}

describe('a failing log destination loses lines, never the process (issue 9)', () => {
  for (const format of ['json', 'pretty'] as const) {
    test(`${format}: write errors are handled and later lines dropped`, async () => {
      const destination = failingDestination();
      const logger = createLogger({ format, destination });
      logger.info('first');
      // No listener of ours: an unhandled 'error' event here would be an uncaught exception.
      await until(() => destination.destroyed, 5000, 'the failed write');
      await new Promise((resolve) => setImmediate(resolve));
      logger.info('second');
      logger.warn({ n: 3 }, 'third');
      writeAccessLog(logger, { clientIp: '127.0.0.1', method: 'GET', host: 'h', path: '/', status: 200, upstream: 'u', backend: null, attempts: 1, durationMs: 1, bytesSent: 0, outcome: 'ok' } as unknown as Parameters<typeof writeAccessLog>[1]);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(destination.writes, 1, 'lines after the failure are not written');
    });
  }

  test('a destination whose write throws is treated as failed', () => {
    let calls = 0;
    const destination = new Writable({ write: (_c, _e, cb) => cb() });
    destination.write = () => {
      calls++;
      throw new Error('boom');
    };
    const logger = createLogger({ format: 'json', destination });
    logger.info('one');
    logger.info('two');
    assert.equal(calls, 1);
  });
});

/**
 * Starts the CLI with stdout piped to us, reads up to its "Load Balancer started" line (its port),
 * then closes our end of the pipe, as `head` does when it exits.
 */
async function startThenClosePipe(t: TestContext, args: readonly string[]) {
  const cleanup = cleanupFor(t);
  const child = spawn(process.execPath, [cliPath, '--no-admin', '--host', '127.0.0.1', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  cleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  const started = /Load Balancer started at [^\n]*?:(\d+)/;
  await until(() => started.test(stdout) || child.exitCode !== null, 10_000, 'the started line');
  const port = Number(started.exec(stdout)?.[1]);
  assert.ok(port > 0, `no port in the CLI's output: ${stdout} ${stderr}`);
  child.stdout.destroy();
  return { child, exited, port, stderr: () => stderr };
}

describe('the CLI keeps serving when its stdout pipe closes (`switchyard … | head -1`)', () => {
  for (const format of ['json', 'pretty'] as const) {
    test(`${format} logs with the access log on: every request gets 200, one line on stderr, clean exit`, async (t) => {
      const cleanup = cleanupFor(t);
      const backend = await startBackend('a');
      cleanup(() => backend.close());
      const cli = await startThenClosePipe(t, ['--backends', backend.url, '--access-log', '--log-format', format]);
      for (let i = 0; i < 20; i++) {
        const res = await request(`http://127.0.0.1:${cli.port}/n${i}`, { headersTimeout: 5000, bodyTimeout: 5000 });
        assert.equal(res.statusCode, 200);
        assert.equal(await res.body.text(), 'a');
      }
      // The EPIPE has been met by now (twenty access-log lines), and the process is still there.
      await until(() => cli.stderr().includes('failed'), 5000, 'the stderr report');
      assert.equal(cli.child.exitCode, null, `the CLI exited: ${cli.stderr()}`);
      assert.match(cli.stderr(), /^switchyard: log output \(stdout\) failed \(EPIPE\): log lines are dropped from now on; requests are still served\n$/);
      cli.child.kill('SIGTERM');
      const [code, signal] = await cli.exited;
      assert.deepEqual([code, signal], [0, null], cli.stderr());
    });
  }
});
