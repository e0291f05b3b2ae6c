import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { test } from 'node:test';
import { cleanupFor } from '../helpers/cleanup.js';
import { describeLoad, startLoad } from '../helpers/load.js';
import { startBackend, startLb, until } from '../helpers/servers.js';

/**
 * Fault scenario from issue 5: slowloris. Hundreds of connections send a request head one byte
 * at a time and never finish it, while a normal client loop runs. Normal clients are served
 * throughout, and once the client header timeout passes Switchyard answers each slow
 * connection 408 and closes it (RFC 9110 section 15.5.9).
 */
const slowSockets = 500;
const clientHeadersTimeoutMs = 2000;
const byteEveryMs = 1000;

/** All a slow connection may receive: one empty 408 that asks the client to close, and nothing after it. */
function isClosing408(received: string): boolean {
  const headEnd = received.indexOf('\r\n\r\n');
  if (headEnd === -1 || headEnd + 4 !== received.length) return false;
  const [statusLine = '', ...fields] = received.slice(0, headEnd).split('\r\n');
  const lower = fields.map((f) => f.toLowerCase());
  return /^HTTP\/1\.1 408 /.test(statusLine) && lower.includes('connection: close') && lower.includes('content-length: 0');
}

interface SlowSocket {
  readonly socket: net.Socket;
  readonly openedAt: number;
  closedAt: number;
  received: string;
}

/** The soft descriptor limit of this process (`ulimit -n`). */
function openFileLimit(): number {
  const text = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  return text === 'unlimited' ? Number.POSITIVE_INFINITY : Number(text);
}

test(`slowloris: ${slowSockets} slow request heads do not stop normal clients and are closed after the header timeout`, { timeout: 30_000 }, async (t) => {
  // Both ends of every slow connection live in this process, plus the load's and some spare.
  const limit = openFileLimit();
  assert.ok(limit >= 2 * slowSockets + 500, `ulimit -n (${limit}) leaves room for ${slowSockets} slow connections`);
  const cleanup = cleanupFor(t);
  const backend = await startBackend('a');
  cleanup(() => backend.close());
  const lb = await startLb({ backends: [backend.url], log: { level: 'silent' }, clientHeadersTimeoutMs });
  cleanup(() => lb.close());

  const slow: SlowSocket[] = [];
  cleanup(() => {
    for (const s of slow) s.socket.destroy();
  });
  await Promise.all(
    Array.from({ length: slowSockets }, () => {
      const socket = net.connect(lb.address.port, '127.0.0.1');
      const entry: SlowSocket = { socket, openedAt: 0, closedAt: 0, received: '' };
      slow.push(entry);
      socket.setEncoding('latin1');
      socket.on('data', (text: string) => (entry.received += text));
      socket.on('error', () => {});
      socket.on('close', () => (entry.closedAt = performance.now()));
      return new Promise<void>((resolve, reject) => {
        socket.once('connect', () => {
          (entry as { openedAt: number }).openedAt = performance.now();
          socket.write('GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: ');
          resolve();
        });
        socket.once('error', reject);
      });
    }),
  );
  const drip = setInterval(() => {
    for (const s of slow) if (s.closedAt === 0) s.socket.write('a');
  }, byteEveryMs);
  cleanup(() => clearInterval(drip));

  const load = startLoad({ url: `${lb.url}/`, concurrency: 8, check: (status, body) => (status === 200 && body === 'a' ? null : `${status} ${JSON.stringify(body)}`) });
  cleanup(() => load.stop());
  const startedAt = performance.now();
  // Node sweeps for expired header timeouts periodically (at most 1 s apart here): allow for that and for a busy machine.
  await until(() => slow.every((s) => s.closedAt !== 0), clientHeadersTimeoutMs + 3000, 'every slow connection to be closed near the header timeout');
  const report = await load.stop();

  const closeAfterMs = slow.map((s) => s.closedAt - s.openedAt).sort((a, b) => a - b);
  const with408 = slow.filter((s) => isClosing408(s.received)).length;
  // Anything else, silence included: a server that drops slow clients without a word fails here.
  const otherAnswers = slow.filter((s) => !isClosing408(s.received)).map((s) => JSON.stringify(s.received.slice(0, 40)));
  t.diagnostic(`normal clients: ${describeLoad(report)}`);
  t.diagnostic(
    `slow connections ${slowSockets}: closed by the server ${slow.filter((s) => s.closedAt !== 0).length}, with 408 ${with408}; ` +
      `closed after ${closeAfterMs[0]?.toFixed(0)}..${closeAfterMs.at(-1)?.toFixed(0)} ms (header timeout ${clientHeadersTimeoutMs} ms); ` +
      `scenario ${((performance.now() - startedAt) / 1000).toFixed(1)} s; ulimit -n ${limit}`,
  );
  assert.equal(report.failures, 0, describeLoad(report));
  assert.ok(report.requests > 50, 'the normal clients kept being served');
  // README: "408 when headers arrive too slowly" (RFC 9110 section 15.5.9), then the connection closes.
  assert.equal(with408, slowSockets, `every slow connection got the 408; the others got ${[...new Set(otherAnswers)].slice(0, 5).join(', ')}`);
  // Not before the timeout: the drip keeps each one alive until the header deadline.
  assert.ok((closeAfterMs[0] ?? 0) >= clientHeadersTimeoutMs - 50, `no slow connection closed before the header timeout (${closeAfterMs[0]?.toFixed(0)} ms)`);
});
