import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { cleanupFor } from './helpers/cleanup.js';
import { startResetAfterReadBackend, startHoldingBackend } from './helpers/faults.js';
import { closeServer, startBackend, until } from './helpers/servers.js';
import { connectOutcome } from './helpers/raw.js';
import { optionsFromFlags, parseArgs } from '../src/args.js';

// The compiled CLI next to the compiled tests: .test-build/test/cli.test.js -> .test-build/src/cli.js
const cliPath = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const packageVersion = (JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string }).version;

interface RunResult {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The CLI's arguments for a test run: the admin listener (default 127.0.0.1:9901) is turned off
 * unless the test sets it, so runs never compete for that port.
 */
function cliArgs(args: readonly string[]): string[] {
  const wantsAdmin = args.some((a) => a.startsWith('--admin') || a === '--no-admin' || a === '--config' || a === 'validate');
  return wantsAdmin ? [cliPath, ...args] : [cliPath, '--no-admin', ...args];
}

/** Runs the CLI to completion (bounded: killed after 10 s). */
function runCli(args: readonly string[]): RunResult {
  const result = spawnSync(process.execPath, cliArgs(args), { encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' });
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

/** Runs the CLI to completion without blocking this process (bounded: killed after 10 s). */
function runCliAsync(args: readonly string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, cliArgs(args), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

/** Asserts the "user mistake" shape: one `switchyard:` line on stderr, no stack trace, and the exit code. */
function assertOneLineError(result: RunResult, pattern: RegExp, exitCode: number): void {
  const detail = `stderr: ${JSON.stringify(result.stderr)} stdout: ${JSON.stringify(result.stdout.slice(0, 500))}`;
  assert.equal(result.signal, null, `not killed (${detail})`);
  assert.equal(result.status, exitCode, detail);
  assert.ok(!result.stderr.includes('    at '), `no stack trace: ${detail}`);
  const lines = result.stderr.split('\n');
  assert.equal(lines.length, 2, `exactly one line on stderr: ${detail}`);
  assert.equal(lines[1], '', `the line ends with a newline: ${detail}`);
  assert.ok(lines[0]?.startsWith('switchyard: '), detail);
  assert.match(lines[0] ?? '', pattern);
}

/** A CLI process serving in the background, its JSON log lines parsed as they arrive. */
interface RunningCli {
  readonly child: ChildProcess;
  readonly logs: Record<string, unknown>[];
  stdout: string;
  stderr: string;
  /** Resolves with the exit code and signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits for the `Load Balancer started` line and returns its port. */
  started(timeoutMs?: number): Promise<number>;
  waitForLog(predicate: (entry: Record<string, unknown>) => boolean, what: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

function spawnCli(args: readonly string[], cleanup: (fn: () => unknown) => void): RunningCli {
  const child = spawn(process.execPath, cliArgs(args), { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  const running: RunningCli = {
    child,
    logs: [],
    stdout: '',
    stderr: '',
    exited,
    async started(timeoutMs = 10_000) {
      const entry = await running.waitForLog((e) => String(e['msg']).startsWith('Load Balancer started'), 'Load Balancer started', timeoutMs);
      return Number(entry['port']);
    },
    async waitForLog(predicate, what, timeoutMs = 10_000) {
      let found: Record<string, unknown> | undefined;
      await until(() => {
        found = running.logs.find(predicate);
        return found !== undefined || child.exitCode !== null;
      }, timeoutMs, what);
      if (found === undefined) throw new Error(`CLI exited (${child.exitCode}) before logging ${what}; stderr: ${running.stderr}`);
      return found;
    },
  };
  let partial = '';
  child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    running.stdout += text;
    partial += text;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith('{')) running.logs.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    running.stderr += text;
  });
  cleanup(async () => {
    // End only this process, by its pid, if the test left it running.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return running;
}

/** Bounded wait for the process to exit. */
async function exitOf(cli: RunningCli, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`CLI did not exit within ${timeoutMs} ms; stderr: ${cli.stderr}`)), timeoutMs);
  });
  try {
    return await Promise.race([cli.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}


describe('CLI: user mistakes get one line on stderr and exit 2', () => {
  const url = 'http://127.0.0.1:9';
  const cases: [string, string[], RegExp][] = [
    ['no arguments', [], /no backends/],
    ['--backends without a value', ['--backends'], /--backends needs a value/],
    ['--backends= empty', ['--backends='], /no backends/],
    ['--backends of only commas', ['--backends', ',,'], /no backends/],
    ['an ftp backend', ['--backends', 'ftp://files.example'], /"ftp:\/\/files\.example" must be an http:\/\/ or https:\/\/ URL/],
    ['a backend without scheme', ['--backends', 'localhost:8080'], /"localhost:8080"/],
    ['a backend that is not a URL', ['--backends', 'not a url'], /"not a url" is not a URL/],
    ['a bad backend after a good one', ['--backends', `${url},gopher://x`], /"gopher:\/\/x"/],
    ['a backend with credentials', ['--backends', 'http://u:p@127.0.0.1:9'], /credentials/],
    ['a backend listed twice', ['--backends', `${url},${url}`], /listed twice/],
    ['an unknown flag', ['--backends', url, '--bogus'], /unknown flag --bogus/],
    ['an unknown flag with =', ['--frobnicate=1', '--backends', url], /unknown flag --frobnicate/],
    ['an unknown single-dash flag', ['-x'], /unknown flag -x/],
    ['a stray argument', ['--backends', url, 'extra'], /unexpected argument "extra"/],
    ['a flag given twice', ['--backends', url, '--port', '1', '-port', '2'], /--port is given twice/],
    ['a bad duration', ['--backends', url, '--health-interval', '5x'], /--health-interval: "5x" is not a duration/],
    ['a zero duration', ['--backends', url, '--health-interval=0s'], /--health-interval: "0s" must be greater than zero/],
    ['a duration without unit', ['--backends', url, '--grace', '10'], /--grace: "10" is not a duration/],
    ['a bad health timeout', ['--backends', url, '--health-timeout', 'soon'], /--health-timeout/],
    ['a bad retry delay', ['--backends', url, '--retry-delay', '-5ms'], /--retry-delay/],
    ['a bad timeout', ['--backends', url, '--timeout', '1y'], /--timeout/],
    ['a port too large', ['--backends', url, '--port', '70000'], /--port: "70000" must be a whole number from 0 to 65535/],
    ['a port that is not a number', ['--backends', url, '--port', 'http'], /--port: "http"/],
    ['a negative port', ['--backends', url, '--port', '-1'], /--port: "-1"/],
    ['a fractional port', ['--backends', url, '--port=80.5'], /--port: "80\.5"/],
    ['an empty port', ['--backends', url, '--port='], /--port: ""/],
    ['--port without a value', ['--backends', url, '--port'], /--port needs a value/],
    ['a bad retry count', ['--backends', url, '--retries', 'many'], /--retries: "many"/],
    ['a bad max-backends', ['--backends', url, '--max-backends', '0'], /--max-backends: "0"/],
    ['a bad replay buffer size', ['--backends', url, '--replay-buffer', '10XB'], /--replay-buffer: "10XB" is not a size/],
    ['a bad log level', ['--backends', url, '--log-level', 'loud'], /--log-level: "loud"/],
    ['a bad trusted proxy range', ['--backends', url, '--trusted-proxies', '10.0.0.0/40'], /--trusted-proxies: "10\.0\.0\.0\/40" is not an IP address or CIDR range/],
    ['a bad body size limit', ['--backends', url, '--max-body-size', 'lots'], /--max-body-size: "lots" is not a size/],
    ['a bad log format', ['--backends', url, '--log-format', 'xml'], /--log-format: "xml"/],
    ['a value for a switch', ['--help=yes'], /--help takes no value/],
    ['single-dash -backends with a bad URL', ['-backends', 'ftp://x', '-port', '0'], /"ftp:\/\/x"/],
    ['single-dash -port with a bad value', ['-backends', url, '-port', 'x'], /--port: "x"/],
  ];
  for (const [name, args, pattern] of cases) {
    test(`${name}: ${JSON.stringify(args)}`, () => {
      const result = runCli(args);
      assertOneLineError(result, pattern, 2);
      assert.equal(result.stdout, '', 'nothing on stdout');
    });
  }

  // Issue 9, section 7: the line names the flag, in the project's words, exactly.
  const exact: [string, string[], string][] = [
    ['a backend without a scheme', ['--backends', 'localhost:8080'], '--backends: backend "localhost:8080" has no scheme (did you mean http://localhost:8080?)'],
    ['the same backend twice after normalisation', ['--backends', `${url},${url}/`], '--backends: backend http://127.0.0.1:9 is listed twice in upstream "default" (also backends.0)'],
    ['a hash key without a name', ['--backends', url, '--hash-key', 'header:'], '--hash-key: a header key needs a valid header name (header:NAME)'],
    ['an unknown hash key source', ['--backends', url, '--hash-key', 'ip'], '--hash-key: "ip" is not one of client-ip, header:NAME, cookie:NAME, path'],
    ['a misspelt balancer', ['--backends', url, '--balancer', 'roundrobin'], '--balancer: "roundrobin" is not one of round-robin, weighted-round-robin, least-conn, p2c, ewma, random, ip-hash, ring-hash, maglev (did you mean "round-robin"?)'],
    ['a sticky ttl under a second', ['--backends', url, '--sticky-ttl', '500ms'], '--sticky-ttl: must be at least 1s (Max-Age counts seconds)'],
    ['a short sticky secret', ['--backends', url, '--sticky-secret', 'short'], '--sticky-secret: must be at least 8 characters'],
    ['a header limit under 1KiB', ['--backends', url, '--max-header-size', '100'], '--max-header-size: must be at least 1KiB'],
    ['a size with a bare k', ['--backends', url, '--max-body-size', '64k'], '--max-body-size: "64k" is not a size (write 64KiB for binary units (1024) or 64KB for decimal ones (1000))'],
    ['a relative health path', ['--backends', url, '--health-path', 'healthz'], '--health-path: must start with "/" and contain no spaces or control characters'],
    ['a listener on the admin address', ['--backends', url, '--port', '9901', '--admin', '9901'], '--port: *:9901 overlaps the admin listener 127.0.0.1:9901: give one of them another port'],
    ['0s where 0 is not off', ['--backends', url, '--connect-timeout', '0s'], '--connect-timeout: "0s" must be greater than zero'],
  ];
  for (const [name, args, line] of exact) {
    test(`${name}: ${JSON.stringify(args)}`, () => {
      const result = runCli(args);
      assertOneLineError(result, /./, 2);
      assert.equal(result.stderr, `switchyard: ${line}\n`);
      assert.equal(result.stdout, '', 'nothing on stdout');
    });
  }

  test('a port already in use: one line naming the port, non-zero exit (the code exits 2, a ConfigError)', async (t) => {
    const cleanup = cleanupFor(t);
    // Occupy the port the way the CLI binds it: every interface.
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, resolve));
    cleanup(() => closeServer(holder));
    const { port } = holder.address() as AddressInfo;
    // spawnSync would block this process's event loop, which owns the port: run it asynchronously.
    const result = await runCliAsync(['--backends', 'http://127.0.0.1:9', '--port', String(port)]);
    assert.notEqual(result.status, 0);
    assertOneLineError(result, new RegExp(`port ${port} is already in use`), 2);
  });

  test('an address that cannot be bound: one line naming it, exit 2', async () => {
    const result = await runCliAsync(['--backends', 'http://127.0.0.1:9', '--port', '0', '--host', 'nowhere.invalid']);
    assertOneLineError(result, /cannot listen on address nowhere\.invalid/, 2);
  });
});

describe('CLI: durations take the same forms as in a file', () => {
  test('0, 0s and 0ms turn off the settings where 0 means off', () => {
    const flags = parseArgs(['--backends', 'http://127.0.0.1:9', '--slow-start', '0s', '--retry-delay', '0ms', '--per-try-timeout', '0', '--request-timeout', '0s']).flags;
    const options = optionsFromFlags(flags);
    assert.deepEqual([options.slowStartMs, options.retry?.retryDelayMs, options.retry?.perTryTimeoutMs, options.requestTimeoutMs], [0, 0, 0, 0]);
    assert.equal(optionsFromFlags(parseArgs(['--backends', 'http://127.0.0.1:9', '--max-body-size', '1.5KiB']).flags).maxBodyBytes, 1536);
  });
});

describe('CLI: help and version', () => {
  for (const flag of ['--help', '-h', '-help']) {
    test(`${flag} prints usage to stdout and exits 0`, () => {
      const result = runCli([flag]);
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stderr, '');
      assert.match(result.stdout, /^Usage: switchyard --backends URL\[,URL\.\.\.\]/);
      for (const documented of ['--backends', '--port', '--health-interval', '--replay-buffer', '--grace', 'default 3030', 'default 20s']) {
        assert.ok(result.stdout.includes(documented), `usage mentions ${documented}`);
      }
    });
  }

  test('--help wins over missing backends', () => {
    const result = runCli(['--port', '0', '--help']);
    assert.equal(result.status, 0);
    assert.match(result.stdout, /^Usage:/);
  });

  for (const flag of ['--version', '-v']) {
    test(`${flag} prints the package version to stdout and exits 0`, () => {
      const result = runCli([flag]);
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stderr, '');
      assert.equal(result.stdout, `switchyard ${packageVersion}\n`);
    });
  }
});

describe('CLI: starting, serving and stopping', () => {
  const forms: [string, (urls: string[]) => string[]][] = [
    ['--backends a,b --port 0', (urls) => ['--backends', urls.join(','), '--port', '0']],
    ['--backends=a,b --port=0', (urls) => [`--backends=${urls.join(',')}`, '--port=0']],
    ['-backends a,b -port 0', (urls) => ['-backends', urls.join(','), '-port', '0']],
    ['-backends=a,b -port=0', (urls) => [`-backends=${urls.join(',')}`, '-port=0']],
  ];
  for (const [name, argsFor] of forms) {
    test(`${name} starts, balances over both backends, and exits 0 on SIGTERM`, async (t) => {
      const cleanup = cleanupFor(t);
      const a = await startBackend('a');
      cleanup(() => a.close());
      const b = await startBackend('b');
      cleanup(() => b.close());
      const cli = spawnCli(argsFor([a.url, b.url]), cleanup);
      const port = await cli.started();
      assert.ok(port > 0);
      // The first health check round runs right after the listener is up.
      await cli.waitForLog((e) => e['msg'] === `${a.url} [up]`, `${a.url} [up]`);
      await cli.waitForLog((e) => e['msg'] === `${b.url} [up]`, `${b.url} [up]`);

      const names: string[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await request(`http://127.0.0.1:${port}/`);
        assert.equal(res.statusCode, 200);
        names.push(await res.body.text());
      }
      assert.deepEqual(names, ['a', 'b', 'a', 'b']);

      cli.child.kill('SIGTERM');
      assert.deepEqual(await exitOf(cli, 10_000), { code: 0, signal: null });
      assert.equal(cli.stderr, '');
    });
  }

  test('the port defaults to 3030', async (t) => {
    const probe = net.createServer();
    const free = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen(3030, () => resolve(true));
    });
    if (free) await closeServer(probe);
    else {
      t.skip('port 3030 is in use on this machine');
      return;
    }
    const cleanup = cleanupFor(t);
    const a = await startBackend('a');
    cleanup(() => a.close());
    const cli = spawnCli(['--backends', a.url], cleanup);
    assert.equal(await cli.started(), 3030);
    const res = await request('http://127.0.0.1:3030/');
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'a');
    cli.child.kill('SIGTERM');
    assert.deepEqual(await exitOf(cli, 10_000), { code: 0, signal: null });
  });

  test('--health-interval 200ms repeats the checks, each logged as "URL [up]"', async (t) => {
    const cleanup = cleanupFor(t);
    const a = await startBackend('a');
    cleanup(() => a.close());
    const cli = spawnCli(['--backends', a.url, '--port', '0', '--host', '127.0.0.1', '--health-interval', '200ms'], cleanup);
    await cli.started();
    await until(() => cli.logs.filter((e) => e['msg'] === `${a.url} [up]`).length >= 3, 5000, 'three health checks');
    cli.child.kill('SIGTERM');
    assert.equal((await exitOf(cli, 10_000)).code, 0);
  });

  test('--replay-buffer caps what an idempotent request may replay', async (t) => {
    const cleanup = cleanupFor(t);
    const small = await startResetAfterReadBackend('small');
    cleanup(() => small.close());
    const large = await startResetAfterReadBackend('large');
    cleanup(() => large.close());
    const withDefault = spawnCli(['--backends', small.url, '--port', '0', '--host', '127.0.0.1'], cleanup);
    const withCap = spawnCli(['--backends', large.url, '--port', '0', '--host', '127.0.0.1', '--replay-buffer', '1KiB'], cleanup);
    const body = randomBytes(4096);

    const res1 = await request(`http://127.0.0.1:${await withDefault.started()}/`, { method: 'PUT', body });
    await res1.body.dump();
    assert.equal(small.seen.length, 4, 'default 64 KiB buffer: the 4 KiB PUT is replayed 3 times');
    assert.ok(res1.statusCode >= 500);

    const res2 = await request(`http://127.0.0.1:${await withCap.started()}/`, { method: 'PUT', body });
    await res2.body.dump();
    assert.equal(res2.statusCode, 502);
    assert.equal(large.seen.length, 1, '1 KiB buffer: the 4 KiB PUT is not replayed');

    withDefault.child.kill('SIGTERM');
    withCap.child.kill('SIGTERM');
    assert.equal((await exitOf(withDefault, 10_000)).code, 0);
    assert.equal((await exitOf(withCap, 10_000)).code, 0);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal} during a slow request: stops accepting, the request completes with 200, exit 0`, async (t) => {
      const cleanup = cleanupFor(t);
      // The backend answers when the test says so (at the latest after 5 s), so the request is
      // surely in flight for the whole shutdown.
      const backend: { answer?: () => void } = {};
      const slow = await startBackend('slow', (req, res) => {
        req.resume();
        const timer = setTimeout(() => backend.answer?.(), 5000);
        backend.answer = () => {
          clearTimeout(timer);
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('slow answer');
        };
      });
      cleanup(() => slow.close());
      const cli = spawnCli(['--backends', slow.url, '--port', '0', '--host', '127.0.0.1'], cleanup);
      const port = await cli.started();

      const pending = request(`http://127.0.0.1:${port}/slow`);
      pending.catch(() => {}); // awaited below; avoid an unhandled rejection if the test fails first
      await until(() => backend.answer !== undefined, 5000, 'the request to reach the backend');
      cli.child.kill(signal);
      await cli.waitForLog((e) => e['msg'] === `${signal} received: finishing in-flight requests`, `${signal} logged`);
      // The log line comes just before the listener closes: allow a moment for the close itself.
      let refused = false;
      const deadline = performance.now() + 2000;
      while (!refused && performance.now() < deadline) refused = (await connectOutcome(port)) === 'ECONNREFUSED';
      assert.ok(refused, 'new connections are refused while the in-flight request is still running');
      assert.equal(cli.child.exitCode, null, 'still running: waiting for the in-flight request');

      backend.answer?.();
      const res = await pending;
      assert.equal(res.statusCode, 200);
      assert.equal(await res.body.text(), 'slow answer');
      assert.equal(res.headers['connection'], 'close', 'the client is asked to close its connection');
      assert.deepEqual(await exitOf(cli, 10_000), { code: 0, signal: null });
      assert.equal(cli.stderr, '');
    });
  }

  test('--grace bounds the wait for a request that never finishes, then exit 0', async (t) => {
    const cleanup = cleanupFor(t);
    const stuck = await startHoldingBackend('stuck');
    const held = stuck.held;
    cleanup(() => stuck.close());
    const cli = spawnCli(['--backends', stuck.url, '--port', '0', '--host', '127.0.0.1', '--grace', '300ms'], cleanup);
    const port = await cli.started();

    const pending = request(`http://127.0.0.1:${port}/`).then(
      (res) => `status ${res.statusCode}`,
      (err: Error) => `error ${err.message}`,
    );
    await until(() => held.length === 1, 5000, 'the request to reach the backend');
    const signalledAt = performance.now();
    cli.child.kill('SIGTERM');
    const exit = await exitOf(cli, 10_000);
    const elapsed = performance.now() - signalledAt;
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(elapsed >= 250, `waited for the grace period (${elapsed.toFixed(0)} ms)`);
    assert.ok(elapsed < 5000, `but not much longer (${elapsed.toFixed(0)} ms)`);
    assert.match(await pending, /^error /, 'the unfinished request was cut');
  });

  test('a second signal exits at once', async (t) => {
    const cleanup = cleanupFor(t);
    const stuck = await startHoldingBackend('stuck');
    const held = stuck.held;
    cleanup(() => stuck.close());
    const cli = spawnCli(['--backends', stuck.url, '--port', '0', '--host', '127.0.0.1', '--grace', '60s'], cleanup);
    const port = await cli.started();
    const pending = request(`http://127.0.0.1:${port}/`).then(
      (res) => `status ${res.statusCode}`,
      (err: Error) => `error ${err.message}`,
    );
    await until(() => held.length === 1, 5000, 'the request to reach the backend');
    cli.child.kill('SIGTERM');
    await cli.waitForLog((e) => e['msg'] === 'SIGTERM received: finishing in-flight requests', 'first SIGTERM logged');
    assert.equal(cli.child.exitCode, null, 'still waiting for the in-flight request');
    const secondAt = performance.now();
    cli.child.kill('SIGINT');
    const exit = await exitOf(cli, 5000);
    assert.ok(performance.now() - secondAt < 2000, 'exited at once, not after the 60 s grace period');
    // The code exits 1 here: the in-flight request was abandoned.
    assert.deepEqual(exit, { code: 1, signal: null });
    assert.ok(cli.logs.some((e) => e['msg'] === 'second SIGINT: exiting now'));
    assert.match(await pending, /^error /);
  });
});
