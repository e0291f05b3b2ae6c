import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startCountingServer } from '../helpers/faults.js';
import { rawExchange } from '../helpers/raw.js';
import { startBackend, startLb, type TestBackend } from '../helpers/servers.js';

/** One hostile (or borderline) request: its exact bytes and the status Switchyard must answer. */
interface Vector {
  readonly name: string;
  readonly bytes: string;
  readonly status: number;
  /** True when the request is well formed and must reach the backend exactly once. */
  readonly forwarded?: boolean;
  /** The head was forwarded before the body broke: the upstream attempt is aborted, never completed. */
  readonly cut?: boolean;
  /** The body the backend must receive (forwarded vectors). */
  readonly body?: string;
}

const H = 'Host: a\r\nConnection: close\r\n';
/** A request hidden in a body: if the backend ever sees `/smuggled`, framing was desynchronised. */
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n';

// Issue 5, "Hostile input": RFC 9112 sections 2.2, 3, 5, 6.1, 6.3, 7.1 and 11.2.
const vectors: readonly Vector[] = [
  { name: 'well-formed GET', bytes: `GET / HTTP/1.1\r\n${H}\r\n`, status: 200, forwarded: true },
  { name: 'well-formed POST with Content-Length', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nabc`, status: 200, forwarded: true },
  { name: 'well-formed chunked POST', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, status: 200, forwarded: true },
  { name: 'HTTP/1.0 GET', bytes: 'GET / HTTP/1.0\r\nHost: a\r\n\r\n', status: 200, forwarded: true },
  { name: 'absolute-form for another host goes to our backends only', bytes: `GET http://evil.example/x HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`, status: 200, forwarded: true },
  // Content-Length + Transfer-Encoding (section 6.3 point 3, 11.2)
  { name: 'CL and TE chunked', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'TE chunked then CL', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'CL.TE smuggling a second request', bytes: `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${5 + SMUGGLED.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`, status: 400 },
  { name: 'TE.CL smuggling a second request', bytes: `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`, status: 400 },
  { name: 'TE.TE (obfuscated second TE) smuggling', bytes: `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-encoding: x\r\n\r\n0\r\n\r\n${SMUGGLED}`, status: 400 },
  { name: 'CL.CL smuggling a second request', bytes: `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`, status: 400 },
  { name: 'CL and TE identity', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: identity\r\n\r\nhello`, status: 400 },
  // Content-Length (section 6.3 point 5, RFC 9110 section 8.6)
  { name: 'CL list 1, 2', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 1, 2\r\n\r\nab`, status: 400 },
  { name: 'CL plus sign', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`, status: 400 },
  { name: 'CL hex', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 0x10\r\n\r\n`, status: 400 },
  { name: 'CL negative', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`, status: 400 },
  { name: 'CL two differing headers', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`, status: 400 },
  { name: 'CL two equal headers', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`, status: 400 },
  { name: 'CL with inner space', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 1 0\r\n\r\n`, status: 400 },
  { name: 'CL empty', bytes: `POST / HTTP/1.1\r\n${H}Content-Length:\r\n\r\n`, status: 400 },
  { name: 'CL overflow', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 99999999999999999999999\r\n\r\n`, status: 400 },
  // Transfer-Encoding obfuscation (section 6.1)
  { name: 'TE chunked, identity', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'TE xchunked', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'TE chunkedx', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunkedx\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'TE with space before colon', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'TE with vertical tab', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'TE chunked plus a second TE header', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'TE chunked on HTTP/1.0', bytes: 'POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', status: 400 },
  { name: 'TE gzip without chunked', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nabc`, status: 400 },
  { name: 'TE with space before colon and tab', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'TE as a line starting with whitespace after the request line', bytes: `POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\n${H}\r\n0\r\n\r\n`, status: 400 },
  { name: 'TE with a form feed before the value', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\x0cchunked\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'TE chunked with NUL after it', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\x00\r\n\r\n0\r\n\r\n`, status: 400 },
  // Optional whitespace around a field value and the coding's case are not obfuscation
  // (RFC 9110 sections 5.5 and 7.8): these are framed as chunked, and the body arrives whole.
  { name: 'TE with a tab before the value', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\tchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, status: 200, forwarded: true, body: 'abc' },
  { name: 'TE with extra spaces before and after the value', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding:   chunked  \r\n\r\n3\r\nabc\r\n0\r\n\r\n`, status: 200, forwarded: true, body: 'abc' },
  { name: 'TE Chunked in another case', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, status: 200, forwarded: true, body: 'abc' },
  { name: 'TE obs-folded', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`, status: 400 },
  // Chunk framing (section 7.1)
  { name: 'chunk size -1', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n`, status: 400 },
  { name: 'chunk size 0x5', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n`, status: 400 },
  { name: 'chunk size overlong hex', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nabc\r\n0\r\n\r\n`, status: 400 },
  { name: 'chunk data without CRLF', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n`, status: 400, cut: true },
  { name: 'chunk size bare LF', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n`, status: 400 },
  { name: 'chunk size line ending in CR without LF', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\rabc\r\n0\r\n\r\n`, status: 400 },
  { name: 'chunk size followed by data without CRLF', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3xyz\r\n0\r\n\r\n`, status: 400 },
  { name: 'chunk size 2^64 + 3 (wraps to 3)', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n10000000000000003\r\nabc\r\n0\r\n\r\n`, status: 400 },
  { name: 'chunk size empty', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n\r\nabc\r\n0\r\n\r\n`, status: 400 },
  { name: 'chunk data ending in bare LF', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n`, status: 400, cut: true },
  { name: 'chunk size with space', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n`, status: 400 },
  // Line terminators and folding (sections 2.2, 5.2)
  { name: 'bare LF header lines', bytes: 'GET / HTTP/1.1\nHost: a\nConnection: close\n\n', status: 400 },
  { name: 'bare CR in header', bytes: `GET / HTTP/1.1\r\nHost: a\rX: y\r\nConnection: close\r\n\r\n`, status: 400 },
  { name: 'obs-fold header', bytes: `GET / HTTP/1.1\r\n${H}X-A: b\r\n c\r\n\r\n`, status: 400 },
  // Header names and values (section 5, RFC 9110 section 5.5)
  { name: 'space in header name', bytes: `GET / HTTP/1.1\r\n${H}X A: b\r\n\r\n`, status: 400 },
  { name: 'space before colon', bytes: `GET / HTTP/1.1\r\n${H}X-A : b\r\n\r\n`, status: 400 },
  { name: 'non-token char in header name', bytes: `GET / HTTP/1.1\r\n${H}X(A): b\r\n\r\n`, status: 400 },
  { name: 'header name starting with colon', bytes: `GET / HTTP/1.1\r\n${H}:x: b\r\n\r\n`, status: 400 },
  { name: 'empty header name', bytes: `GET / HTTP/1.1\r\n${H}: b\r\n\r\n`, status: 400 },
  { name: 'header line without colon', bytes: `GET / HTTP/1.1\r\n${H}NoColon\r\n\r\n`, status: 400 },
  { name: 'NUL in header value', bytes: `GET / HTTP/1.1\r\n${H}X-A: b\x00c\r\n\r\n`, status: 400 },
  { name: 'NUL in header name', bytes: `GET / HTTP/1.1\r\n${H}X-\x00A: b\r\n\r\n`, status: 400 },
  { name: 'CTL (0x01) in header value', bytes: `GET / HTTP/1.1\r\n${H}X-A: b\x01c\r\n\r\n`, status: 400 },
  { name: 'CTL (0x1f) in header value', bytes: `GET / HTTP/1.1\r\n${H}X-A: b\x1fc\r\n\r\n`, status: 400 },
  { name: 'DEL in header value', bytes: `GET / HTTP/1.1\r\n${H}X-A: b\x7fc\r\n\r\n`, status: 400 },
  { name: 'CTL (0x01) in header name', bytes: `GET / HTTP/1.1\r\n${H}X-\x01A: b\r\n\r\n`, status: 400 },
  { name: 'tab in header name', bytes: `GET / HTTP/1.1\r\n${H}X\tA: b\r\n\r\n`, status: 400 },
  { name: 'NUL in Host', bytes: `GET / HTTP/1.1\r\nHost: a\x00b\r\nConnection: close\r\n\r\n`, status: 400 },
  // Request line (section 3)
  { name: 'space in request target', bytes: `GET /a b HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'space in the query of the request target', bytes: `GET /a?x=1 2 HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'tab in request target', bytes: `GET /a\tb HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'NUL in request target', bytes: `GET /a\x00b HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'CTL in request target', bytes: `GET /a\x01b HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'HTTP/0.9 request', bytes: 'GET /\r\n\r\n', status: 400 },
  { name: 'HTTP/2.0 over HTTP/1 framing', bytes: `GET / HTTP/2.0\r\n${H}\r\n`, status: 505 },
  { name: 'HTTP/1.2', bytes: `GET / HTTP/1.2\r\n${H}\r\n`, status: 400 },
  { name: 'HTTP/3.1', bytes: `GET / HTTP/3.1\r\n${H}\r\n`, status: 400 },
  { name: 'lowercase http version', bytes: `GET / http/1.1\r\n${H}\r\n`, status: 400 },
  // RFC 9112 section 3 lets recipients split the request line on whitespace runs.
  { name: 'double space in request line', bytes: `GET  / HTTP/1.1\r\n${H}\r\n`, status: 200, forwarded: true },
  { name: 'lowercase method', bytes: `get / HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'asterisk-form on GET', bytes: `GET * HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'authority-form CONNECT', bytes: `CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n`, status: 400 },
  { name: 'relative target without slash', bytes: `GET x HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'garbage line', bytes: '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n', status: 400 },
  // The default maxHeaderSize is 16 KiB, as Node's (RFC 6585 section 5).
  { name: 'headers over the size limit', bytes: `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(20000)}\r\n\r\n`, status: 431 },
  { name: 'missing Host on HTTP/1.1', bytes: 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n', status: 400 },
  { name: 'two Host headers', bytes: `GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n`, status: 400 },
];

let backend: TestBackend & { completed: number; bodies: string[] };
let lb: Awaited<ReturnType<typeof startLb>>;

before(async () => {
  // Counts request bodies that arrived whole, so a cut body is told apart from a forwarded one.
  const b = Object.assign(await startBackend('b1', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      b.completed++;
      b.bodies.push(Buffer.concat(chunks).toString('latin1'));
      res.end('b1');
    });
  }), { completed: 0, bodies: [] as string[] });
  backend = b;
  lb = await startLb({ backends: [backend.url] });
});

after(async () => {
  await lb.close();
  await backend.close();
});

describe('hostile request vectors', () => {
  for (const v of vectors) {
    test(`${v.name} → ${v.status}`, async () => {
      const seenBefore = backend.seen.length;
      const completedBefore = backend.completed;
      const res = await rawExchange(lb.address.port, [Buffer.from(v.bytes, 'latin1')]);
      assert.equal(res.status, v.status, res.head);
      const seen = backend.seen.length - seenBefore;
      if (v.cut === true) assert.ok(seen <= 1 && backend.completed === completedBefore, 'no complete request forwarded');
      else assert.equal(seen, v.forwarded === true ? 1 : 0, 'requests the backend saw');
      if (v.body !== undefined) assert.equal(backend.bodies.at(-1), v.body, 'the body the backend received');
      const ok = await rawExchange(lb.address.port, `GET /after HTTP/1.1\r\n${H}\r\n`);
      assert.equal(ok.status, 200);
      // The follow-up may share the pool's connection with the vector: no smuggled request may precede it.
      assert.equal(backend.seen.at(-1)?.url, '/after');
      assert.equal(backend.seen.length - seenBefore, seen + 1, 'nothing but the follow-up after the vector');
      assert.ok(!backend.seen.some((r) => r.url.includes('smuggled')), 'no smuggled request reached the backend');
    });
  }
});

// Not an open proxy: an absolute-form target naming another server is served by our backends
// (RFC 9112 section 3.2.2: the target's authority replaces Host), and that server is never contacted.
test('absolute-form targets naming another listening server never reach it', async () => {
  const other = await startCountingServer();
  try {
    const seenBefore = backend.seen.length;
    const targets = [`http://127.0.0.1:${other.port}/x`, `https://127.0.0.1:${other.port}/x?y=1`, `http://127.0.0.1:${other.port}`];
    for (const target of targets) {
      const res = await rawExchange(lb.address.port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${other.port}\r\nConnection: close\r\n\r\n`);
      assert.equal(res.status, 200, target);
      assert.equal(res.body.toString(), 'b1', 'answered by our backend');
    }
    assert.deepEqual(backend.seen.slice(seenBefore).map((r) => r.url), ['/x', '/x?y=1', '/']);
    assert.equal(other.acceptedAt.length, 0, 'the named server was never contacted');
  } finally {
    await other.close();
  }
});

test('the process keeps serving after 200 garbage connections in parallel', async () => {
  const seenBefore = backend.seen.length;
  const garbage: Promise<void>[] = [];
  for (let i = 0; i < 200; i++) {
    garbage.push(
      new Promise<void>((resolve) => {
        const socket = net.connect(lb.address.port, '127.0.0.1');
        socket.setTimeout(5000, () => socket.destroy());
        socket.on('error', () => resolve());
        socket.on('close', () => resolve());
        socket.on('data', () => {});
        socket.end(Buffer.from(`\x00\xff${i} GARBAGE \r\n\r\n\x16\x03`, 'latin1'));
      }),
    );
  }
  await Promise.all(garbage);
  assert.equal(backend.seen.length, seenBefore);
  const ok = await rawExchange(lb.address.port, `GET / HTTP/1.1\r\n${H}\r\n`);
  assert.equal(ok.status, 200);
});
