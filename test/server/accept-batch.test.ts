import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { describe, test } from 'node:test';
import { extraAccepts } from '../../src/server/accept-fds.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { percentile } from '../helpers/load.js';
import { rawExchange } from '../helpers/raw.js';
import { startBackend, startLb } from '../helpers/servers.js';

/**
 * Accept batching (src/server/accept-fds.ts): a listener with acceptBatch N accepts on N
 * descriptors: duplicates of one listening socket, or N SO_REUSEPORT sockets on Node 22.12+.
 * Getting them can fail quietly (the listener then runs on one), so the descriptors are counted
 * from outside, in /proc, and a connection burst shows the extras accepting. Timings are
 * reported, not asserted. test/server/accept-modes.test.ts checks each mode on its own.
 */
const linux = process.platform === 'linux';

/** Socket inodes of the TCP sockets listening on 127.0.0.1:port, from /proc/net/tcp. */
function listeningInodes(port: number): Set<string> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    // sl local_address rem_address st ... inode (field 9); st 0A is LISTEN.
    if (fields[1] === local && fields[3] === '0A' && fields[9] !== undefined) inodes.add(`socket:[${fields[9]}]`);
  }
  return inodes;
}

/** Descriptors of this process that refer to a socket listening on 127.0.0.1:port. */
function listeningFds(port: number): number {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return 0;
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (inodes.has(readlinkSync(`/proc/self/fd/${fd}`))) count++;
    } catch {
      // A descriptor closed between the listing and the read.
    }
  }
  return count;
}

/**
 * Opens `count` connections to 127.0.0.1:port at once from a child process, each sending one
 * request; resolves with each answer's status line and body tally and the time to each answer.
 */
async function burstFrom(port: number, count: number): Promise<{ answers: Record<string, number>; latenciesMs: number[] }> {
  const source = `
    const net = require('node:net');
    const [port, count] = process.argv.slice(1).map(Number);
    const answers = {};
    const latenciesMs = [];
    let left = count;
    const startedAt = performance.now();
    for (let i = 0; i < count; i++) {
      const socket = net.connect(port, '127.0.0.1');
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk) => (text += chunk));
      const done = (what) => {
        latenciesMs.push(performance.now() - startedAt);
        answers[what] = (answers[what] || 0) + 1;
        if (--left === 0) process.stdout.write(JSON.stringify({ answers, latenciesMs }));
      };
      socket.on('error', (err) => done('error ' + err.code));
      socket.on('end', () => done(text.slice(9, 12) + ' ' + text.slice(text.indexOf('\\r\\n\\r\\n') + 4)));
      socket.write('GET / HTTP/1.1\\r\\nHost: burst\\r\\nConnection: close\\r\\n\\r\\n');
    }
  `;
  const child = spawn(process.execPath, ['-e', source, String(port), String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  assert.equal(code, 0, `the burst client exited with ${code}: ${out}`);
  return JSON.parse(out) as { answers: Record<string, number>; latenciesMs: number[] };
}

describe('accept batching', { skip: linux ? false : 'reads /proc (Linux only)' }, () => {
  for (const [acceptBatch, expected] of [[undefined, 128], [8, 8], [1, 1]] as const) {
    test(`acceptBatch ${acceptBatch ?? '(default)'}: ${expected} descriptor(s) accept on the listening socket, none after close`, async (t) => {
      const cleanup = cleanupFor(t);
      const backend = await startBackend('a');
      cleanup(() => backend.close());
      const lb = await startLb({ backends: [backend.url], log: { level: 'silent' }, ...(acceptBatch === undefined ? {} : { acceptBatch }) });
      cleanup(() => lb.close());
      const port = lb.address.port;
      assert.equal(listeningFds(port), expected);
      const res = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.equal(res.status, 200);
      await lb.close();
      assert.equal(listeningFds(port), 0, 'every descriptor is closed with the listener');
    });
  }

  test('a burst of 400 connections is served, the extra descriptors accepting part of it', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startBackend('a', (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-length': 1 }).end('a');
    });
    cleanup(() => backend.close());
    const burst = 400;
    const figures: string[] = [];
    for (const acceptBatch of [1, 64]) {
      const lb = await startLb({ backends: [backend.url], log: { level: 'silent' }, acceptBatch });
      cleanup(() => lb.close());
      const acceptedBefore = extraAccepts();
      // The clients run in a process of their own, so their work does not slow our accepts.
      const result = await burstFrom(lb.address.port, burst);
      const onExtras = extraAccepts() - acceptedBefore;
      assert.deepEqual(result.answers, { '200 a': burst }, 'every connection of the burst got its answer');
      figures.push(
        `acceptBatch ${acceptBatch}: ${burst} connections answered in ${Math.max(...result.latenciesMs).toFixed(0)} ms ` +
          `(p50 ${percentile(result.latenciesMs, 50).toFixed(0)} ms, p99 ${percentile(result.latenciesMs, 99).toFixed(0)} ms), ${onExtras} accepted on the extras`,
      );
      if (acceptBatch === 1) assert.equal(onExtras, 0, 'no extra descriptors with acceptBatch 1');
      else assert.ok(onExtras > 0, `the extra descriptors accepted some of the burst (${onExtras})`);
      await lb.close();
    }
    for (const line of figures) t.diagnostic(line);
  });
});
