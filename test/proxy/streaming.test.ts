import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { startBackend, type TestBackend } from '../helpers/servers.js';

/**
 * 1 GiB each way through a Switchyard child process, whose memory we read from /proc: the
 * proxy must stream with backpressure, never hold a body. The client and the backend run in
 * this process and neither buffers either. The bytes change along the stream and both ends
 * hash them, so a corrupted, lost or reordered piece fails the test, not only a wrong count.
 */
const totalBytes = 1024 * 1024 * 1024;
const chunkBytes = 64 * 1024;
/** Peak RSS may exceed the idle RSS by at most this much while streaming. */
const rssHeadroomBytes = 150 * 1024 * 1024;
const timeoutMs = 120_000;
/** A transfer still running after this is aborted, so the test fails with its progress instead of hanging. */
const transferBudgetMs = 100_000;

const cliPath = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

/** Every this many bytes of the stream carry their own position, so no two such blocks are alike. */
const stampEveryBytes = 1024;

/** 64 KiB of a fixed pseudo-random pattern (mulberry32, seed 1): the stream's bytes between stamps. */
const patternBlock = ((): Buffer => {
  const block = Buffer.alloc(chunkBytes);
  let state = 1;
  for (let i = 0; i < chunkBytes; i += 4) {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = Math.imul(state ^ (state >>> 15), state | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    block.writeUInt32LE((x ^ (x >>> 14)) >>> 0, i);
  }
  return block;
})();

/**
 * Yields `totalBytes` in 64 KiB chunks, each made only when the consumer asks for it: the
 * pattern block with the position of every 1 KiB written over its first 4 bytes. A byte
 * changed, lost, added or moved anywhere changes the SHA-256 of the stream, which is kept
 * incrementally as the bytes go out (nothing is held).
 */
class Source extends Readable {
  /** Bytes handed to the consumer so far. */
  producedBytes = 0;
  private readonly total: number;
  private readonly hash = createHash('sha256');

  constructor(total: number) {
    super({ highWaterMark: chunkBytes });
    this.total = total;
  }

  /** SHA-256 (hex) of everything produced; call once, at the end. */
  digest(): string {
    return this.hash.digest('hex');
  }

  override _read(): void {
    const size = Math.min(this.total - this.producedBytes, chunkBytes);
    if (size === 0) {
      this.push(null);
      return;
    }
    // A fresh buffer each time: a pushed one may still be queued, so it is never reused.
    const chunk = Buffer.allocUnsafe(size);
    patternBlock.copy(chunk, 0, 0, size);
    for (let at = 0; at + 4 <= size; at += stampEveryBytes) chunk.writeUInt32LE((this.producedBytes + at) / stampEveryBytes, at);
    this.producedBytes += size;
    this.hash.update(chunk);
    this.push(chunk);
  }
}

/** VmRSS and VmHWM (peak RSS) of a process, in bytes. */
function memoryOf(pid: number): { rssBytes: number; peakBytes: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
    assert.ok(match !== null, `${field} in /proc/${pid}/status`);
    return Number(match[1]) * 1024;
  };
  return { rssBytes: kib('VmRSS'), peakBytes: kib('VmHWM') };
}

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

interface ChildLb {
  readonly process: ChildProcess;
  readonly pid: number;
  readonly url: string;
  stop(): Promise<void>;
}

/** Starts the CLI with JSON logs and resolves once its "Load Balancer started" line gives the port. */
function startChildLb(backendUrl: string): Promise<ChildLb> {
  const child = spawn(process.execPath, [cliPath, '--backends', backendUrl, '--port', '0', '--host', '127.0.0.1', '--log-format', 'json', '--no-admin'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => fail(new Error('no "Load Balancer started" line within 10 s')), 10_000);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      void stop().then(() => reject(new Error(`${err.message}\nstdout: ${stdout}\nstderr: ${stderr}`)));
    };
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const onExit = (code: number | null): void => fail(new Error(`switchyard exited with ${code}`));
    child.once('error', fail);
    child.once('exit', onExit);
    const onStdout = (chunk: Buffer): void => {
      stdout += chunk.toString();
      // Only complete lines: the last piece may be half a line.
      for (const line of stdout.split('\n').slice(0, -1)) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg?.startsWith('Load Balancer started') === true && typeof entry.port === 'number' && pid !== undefined) {
          clearTimeout(timer);
          child.off('exit', onExit);
          child.off('error', fail);
          child.on('error', () => {});
          // Keep draining its logs so a full pipe never blocks it.
          child.stdout?.off('data', onStdout);
          child.stdout?.resume();
          resolve({ process: child, pid, url: `http://127.0.0.1:${entry.port}`, stop });
          return;
        }
      }
    };
    child.stdout?.on('data', onStdout);
  });
}

describe('1 GiB streamed through a Switchyard process with flat memory', { timeout: 2 * timeoutMs + 30_000 }, () => {
  let backend: TestBackend;
  let lb: ChildLb;
  let uploadedBytes = 0;
  /** SHA-256 (hex) of the upload as the backend received it, once it has ended. */
  let uploadedDigest = '';
  /** The download the backend is sending or sent last. */
  let downloadSource: Source | null = null;
  let baselineRssBytes = 0;

  before(async () => {
    backend = await startBackend('stream', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (req.url === '/upload') {
        // Counts, hashes and discards.
        const hash = createHash('sha256');
        req.on('data', (chunk: Buffer) => {
          uploadedBytes += chunk.length;
          hash.update(chunk);
        });
        req.on('end', () => {
          uploadedDigest = hash.digest('hex');
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(`${uploadedBytes} ${uploadedDigest}`);
        });
        return;
      }
      if (req.url === '/download') {
        req.resume();
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': totalBytes });
        downloadSource = new Source(totalBytes);
        downloadSource.pipe(res);
        return;
      }
      req.resume();
      res.end('ok');
    });
    lb = await startChildLb(backend.url);
    // Warm up (first request loads the code paths), then take the idle figure.
    for (let i = 0; i < 3; i++) {
      const res = await request(`${lb.url}/warm`);
      assert.equal(await res.body.text(), 'ok');
    }
    baselineRssBytes = memoryOf(lb.pid).rssBytes;
  });

  after(async () => {
    await lb?.stop();
    await backend?.close();
  });

  /**
   * Runs `work` while sampling the proxy's RSS every 100 ms. `peakBytes` is the kernel's
   * high-water mark (VmHWM: no spike between samples escapes it, and it covers the process's
   * whole life); `sampledPeakBytes` is the highest RSS seen during this work alone.
   */
  async function whileSampling<T>(work: () => Promise<T>): Promise<{ result: T; peakBytes: number; sampledPeakBytes: number; elapsedMs: number }> {
    let sampledPeakBytes = 0;
    const sample = (): void => {
      sampledPeakBytes = Math.max(sampledPeakBytes, memoryOf(lb.pid).rssBytes);
    };
    const sampler = setInterval(sample, 100);
    const started = Date.now();
    try {
      const result = await work();
      const elapsedMs = Date.now() - started;
      sample();
      return { result, peakBytes: Math.max(memoryOf(lb.pid).peakBytes, sampledPeakBytes), sampledPeakBytes, elapsedMs };
    } finally {
      clearInterval(sampler);
    }
  }

  function report(what: string, m: { peakBytes: number; sampledPeakBytes: number; elapsedMs: number }): string {
    const mibPerSecond = totalBytes / 1024 / 1024 / (m.elapsedMs / 1000);
    return `${what}: ${mib(totalBytes)} in ${m.elapsedMs} ms (${mibPerSecond.toFixed(0)} MiB/s); proxy RSS idle ${mib(baselineRssBytes)}, during ${mib(m.sampledPeakBytes)}, VmHWM ${mib(m.peakBytes)}`;
  }

  /** Aborts a transfer that outlives the test's budget, saying how far it got. */
  function deadline(progress: () => string): AbortSignal {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error(`transfer not done after ${transferBudgetMs} ms: ${progress()}`)), transferBudgetMs);
    timer.unref();
    return controller.signal;
  }

  test('upload: every byte arrives, the proxy\'s peak RSS stays within the headroom', { timeout: timeoutMs }, async (t) => {
    uploadedBytes = 0;
    uploadedDigest = '';
    const body = new Source(totalBytes);
    const signal = deadline(() => `client produced ${mib(body.producedBytes)}, backend counted ${mib(uploadedBytes)}`);
    const measured = await whileSampling(async () => {
      const res = await request(`${lb.url}/upload`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' }, signal });
      return { status: res.statusCode, body: await res.body.text() };
    });
    t.diagnostic(report('upload', measured));
    const { result, peakBytes } = measured;
    const sentDigest = body.digest();
    t.diagnostic(`upload sha256 sent ${sentDigest.slice(0, 16)}…, received ${uploadedDigest.slice(0, 16)}…`);
    assert.equal(result.status, 200);
    assert.equal(uploadedBytes, totalBytes);
    assert.equal(uploadedDigest, sentDigest, 'the backend received the very bytes the client sent, in order');
    assert.equal(result.body, `${totalBytes} ${sentDigest}`);
    assert.ok(peakBytes < baselineRssBytes + rssHeadroomBytes, `peak RSS ${mib(peakBytes)} vs idle ${mib(baselineRssBytes)}`);
  });

  test('download: every byte arrives, the proxy\'s peak RSS stays within the headroom', { timeout: timeoutMs }, async (t) => {
    let count = 0;
    const hash = createHash('sha256');
    const signal = deadline(() => `client received ${mib(count)}`);
    const measured = await whileSampling(async () => {
      const res = await request(`${lb.url}/download`, { signal });
      for await (const chunk of res.body) {
        count += (chunk as Buffer).length;
        hash.update(chunk as Buffer);
      }
      return { status: res.statusCode, length: res.headers['content-length'], count };
    });
    const receivedDigest = hash.digest('hex');
    assert.ok(downloadSource !== null, 'the backend started the download');
    const sentDigest = (downloadSource as Source).digest();
    t.diagnostic(`download sha256 sent ${sentDigest.slice(0, 16)}…, received ${receivedDigest.slice(0, 16)}…`);
    t.diagnostic(report('download', measured));
    const { result, peakBytes } = measured;
    assert.equal(result.status, 200);
    assert.equal(result.length, String(totalBytes));
    assert.equal(result.count, totalBytes);
    assert.equal(receivedDigest, sentDigest, 'the client received the very bytes the backend sent, in order');
    assert.ok(peakBytes < baselineRssBytes + rssHeadroomBytes, `peak RSS ${mib(peakBytes)} vs idle ${mib(baselineRssBytes)}`);
  });
});
