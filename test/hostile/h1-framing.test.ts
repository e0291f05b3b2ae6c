import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backendFailures, exchange, gap, RawClient, startPair } from './h1-support.js';

/**
 * Framing on the listener's own HTTP/1.1 path when the bytes arrive in pieces: heads, bodies
 * and pipelined requests split at every byte position (between CR and LF, inside the empty
 * line), many requests in one write, and a client that floods requests and never reads.
 */

const K = 'Host: a\r\n';

/** `text` cut at `at` into two writes, each its own read on the server. */
const cut = (text: string, at: number): string[] => [text.slice(0, at), text.slice(at)].filter((part) => part.length > 0);

test('a head split at every byte position, first on the connection or after one served request', async (t) => {
  const pair = await startPair(t);
  const head = `GET /split?x=1 HTTP/1.1\r\n${K}X-A: b\r\nConnection: close\r\n\r\n`;
  for (const first of ['', `GET /first HTTP/1.1\r\n${K}\r\n`]) {
    for (let at = 1; at < head.length; at++) {
      const parts = first === '' ? cut(head, at) : [first + head.slice(0, at), head.slice(at)];
      const { responses, closed } = await exchange(pair.fast, parts);
      const expected = first === '' ? ['200 GET /split?x=1 0:'] : ['200 GET /first 0:', '200 GET /split?x=1 0:'];
      assert.deepEqual(
        responses.map((r) => `${r.status} ${r.body}`),
        expected,
        `split at ${at} (${JSON.stringify(head.slice(0, at))})${first === '' ? '' : ' after a served request'}`,
      );
      assert.ok(closed);
    }
  }
  assert.equal(backendFailures(pair), 0);
});

test('a body split at every byte position, and the request after it', async (t) => {
  const pair = await startPair(t);
  const body = 'abc\r\n\r\nGET /x HTTP/1.1\r\n';
  const text = `POST /body HTTP/1.1\r\n${K}Content-Length: ${body.length}\r\n\r\n${body}GET /next HTTP/1.1\r\n${K}Connection: close\r\n\r\n`;
  const bodyStart = text.indexOf(body);
  for (let at = bodyStart - 4; at <= bodyStart + body.length + 2; at++) {
    const { responses } = await exchange(pair.fast, cut(text, at));
    assert.deepEqual(
      responses.map((r) => `${r.status} ${r.body}`),
      [`200 POST /body ${body.length}:${body}`, '200 GET /next 0:'],
      `split at ${at}`,
    );
  }
});

test('three pipelined requests split at every byte position, answered in order', async (t) => {
  const pair = await startPair(t);
  const text = `GET /1 HTTP/1.1\r\n${K}\r\nPOST /2 HTTP/1.1\r\n${K}Content-Length: 5\r\n\r\nhelloHEAD /3 HTTP/1.1\r\n${K}\r\nGET /4 HTTP/1.1\r\n${K}Connection: close\r\n\r\n`;
  for (let at = 1; at < text.length; at++) {
    const { responses } = await exchange(pair.fast, cut(text, at), [false, false, true, false]);
    assert.deepEqual(
      responses.map((r) => `${r.status} ${r.body}`),
      ['200 GET /1 0:', '200 POST /2 5:hello', '200 ', '200 GET /4 0:'],
      `split at ${at}`,
    );
  }
});

test('a thousand pipelined requests in one write are answered in order', async (t) => {
  const pair = await startPair(t);
  const count = 1000;
  let text = '';
  for (let i = 0; i < count; i++) text += `GET /${i} HTTP/1.1\r\n${K}${i === count - 1 ? 'Connection: close\r\n' : ''}\r\n`;
  const { responses, closed } = await exchange(pair.fast, [text], [], 20_000);
  assert.equal(responses.length, count);
  responses.forEach((r, i) => assert.equal(r.body, `GET /${i} 0:`));
  assert.ok(closed);
});

test('a client that floods pipelined requests and never reads is stopped, and the listener keeps serving', async (t) => {
  const pair = await startPair(t);
  const client = await RawClient.open(pair.fast);
  t.after(() => client.destroy());
  // The client never reads: what the server writes piles up in the kernel, then in the server.
  client.socket.pause();
  const request = `GET /flood HTTP/1.1\r\n${K}\r\n`;
  const chunk = Buffer.from(request.repeat(Math.floor(65536 / request.length)));
  const before = process.memoryUsage().arrayBuffers;
  let written = 0;
  let stalled = false;
  // Up to 64 MiB of requests, each chunk after the previous drained: if the server kept reading
  // they would all go; a server that stops reading leaves a write undrained.
  while (written < 64 * 1024 * 1024) {
    if (!client.socket.write(chunk)) {
      const drained = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 1000);
        client.socket.once('drain', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (!drained) {
        stalled = true;
        break;
      }
    }
    written += chunk.length;
  }
  assert.ok(stalled, `the server read all ${written} bytes of a client that does not read`);
  const served = pair.seen.length;
  const grown = process.memoryUsage().arrayBuffers - before;
  t.diagnostic(`written ${written} bytes, ${served} requests forwarded, external memory +${grown} bytes`);
  assert.ok(grown < 16 * 1024 * 1024, `memory grew by ${grown} bytes`);
  client.destroy();
  const { responses } = await exchange(pair.fast, [`GET /after HTTP/1.1\r\n${K}Connection: close\r\n\r\n`]);
  assert.equal(responses[0]?.body, 'GET /after 0:');
  assert.equal(backendFailures(pair), 0);
});

test('the head size limit: the own path serves up to maxHeaderSize, node:http decides past it (431)', async (t) => {
  const max = 1024;
  const pair = await startPair(t, { maxHeaderSize: max });
  const line = `GET /limit HTTP/1.1\r\n${K}Connection: close\r\nX-Pad: `;
  const differ: string[] = [];
  for (let total = max - 8; total <= max + 80; total++) {
    const head = `${line}${'p'.repeat(total - line.length - 4)}\r\n\r\n`;
    assert.equal(head.length, total);
    const fast = await exchange(pair.fast, [head]);
    const node = await exchange(pair.node, [head]);
    const statuses = (r: typeof fast): string => r.responses.map((x) => x.status).join(',');
    if (statuses(fast) !== statuses(node)) differ.push(`${total} bytes: own path ${statuses(fast)}, node:http ${statuses(node)}`);
    if (total <= max) assert.equal(statuses(fast), '200', `${total} bytes`);
    // The same head pipelined after a served request, split where the limit falls.
    const second = await exchange(pair.fast, [`GET /first HTTP/1.1\r\n${K}\r\n${head.slice(0, max - 10)}`, head.slice(max - 10)]);
    assert.equal(second.responses.map((x) => x.status).join(','), `200,${statuses(node)}`, `${total} bytes after a served request`);
  }
  assert.deepEqual(differ, []);
});
