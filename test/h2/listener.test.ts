import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import type http2 from 'node:http2';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { makeCa, type IssuedCert, type TestCa } from '../helpers/tls.js';
import { connectH2, h2Request, startH2 } from './support.js';

const run = promisify(execFile);

let ca: TestCa;
let cert: IssuedCert;

before(async () => {
  ca = await makeCa();
  cert = await ca.issue('localhost', ['DNS:localhost', 'IP:127.0.0.1']);
});

after(() => ca.remove());

function alpnOf(port: number): Promise<string | false> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: ca.caPem, ALPNProtocols: ['h2', 'http/1.1'] });
    socket.once('secureConnect', () => {
      resolve(socket.alpnProtocol ?? false);
      socket.end();
    });
    socket.once('error', reject);
  });
}

describe('HTTP/2 over TLS (ALPN h2)', () => {
  test('a stream is proxied as a request: :authority is the Host, no pseudo-header goes upstream, Via and X-Forwarded-Proto say so', async (t) => {
    const { port, backend, lb } = await startH2(t, { cert });
    const session = await connectH2(t, port, ca);
    const answer = await h2Request(session, { ':path': '/a/./b?q=1', ':authority': `localhost:${port}`, cookie: 'a=1' });
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'web');
    assert.equal(answer.headers['x-backend'], 'web');
    assert.equal(answer.headers.via, '1.1 switchyard');
    const seen = backend.seen[0];
    assert.ok(seen !== undefined);
    assert.equal(seen.url, '/a/b?q=1');
    assert.equal(seen.headers.host, `localhost:${port}`);
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers.via, '2 switchyard');
    assert.deepEqual(seen.rawHeaders.filter((_, i) => i % 2 === 0 && seen.rawHeaders[i]?.startsWith(':')), []);
    const line = lb.logs.find((l) => l['access'] === true);
    assert.equal(line?.['protocol'], 'HTTP/2');
    assert.equal(await alpnOf(port), 'h2');
  });

  test('response fields: repeated Set-Cookie kept, names lower-cased, hop-by-hop dropped; HEAD has no body', async (t) => {
    const { port } = await startH2(t, {
      cert,
      handler: (req, res) => {
        req.resume();
        res.writeHead(200, 'Fine Thanks', ['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-Upper', 'yes', 'Connection', 'keep-alive, x-hop', 'X-Hop', 'no', 'Keep-Alive', 'timeout=5', 'Content-Length', '4']);
        res.end(req.method === 'HEAD' ? undefined : 'body');
      },
    });
    const session = await connectH2(t, port, ca);
    const answer = await h2Request(session, { ':path': '/' });
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(answer.headers['x-upper'], 'yes');
    for (const name of ['connection', 'keep-alive', 'x-hop']) assert.equal(answer.headers[name], undefined, name);
    assert.equal(answer.body, 'body');
    const head = await h2Request(session, { ':method': 'HEAD', ':path': '/' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '4');
    assert.equal(head.body, '');
  });

  test('103 Early Hints reach an HTTP/2 client before the final response', async (t) => {
    const { port } = await startH2(t, {
      cert,
      handler: (req, res) => {
        req.resume();
        res.writeEarlyHints({ link: ['</a.css>; rel=preload; as=style'] }, () => res.end('final'));
      },
    });
    const session = await connectH2(t, port, ca);
    const stream = session.request({ ':path': '/' });
    const hints = await new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('headers', resolve));
    assert.equal(hints[':status'], 103);
    assert.equal(hints.link, '</a.css>; rel=preload; as=style');
    stream.resume();
    await new Promise((resolve) => stream.once('close', resolve));
  });

  test('HTTP/1.1 clients are still served on the same port (ALPN http/1.1 or none)', async (t) => {
    const { port } = await startH2(t, { cert });
    const dispatcher = new Agent({ connect: { ca: ca.caPem, servername: 'localhost' } });
    t.after(() => dispatcher.close());
    const res = await request(`https://127.0.0.1:${port}/`, { dispatcher });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'web');
  });

  test('http2: false offers HTTP/1.1 only', async (t) => {
    const { port } = await startH2(t, { cert, listener: { http2: false } });
    assert.equal(await alpnOf(port), 'http/1.1');
  });

  test('curl --http2 gets HTTP/2 answers', async (t) => {
    const { port } = await startH2(t, { cert });
    const { stdout } = await run('curl', ['-s', '--http2', '--cacert', ca.caFile, '--resolve', `localhost:${port}:127.0.0.1`, '-w', ' %{http_version} %{response_code}', `https://localhost:${port}/x`], { timeout: 10_000 });
    assert.equal(stdout, 'web 2 200');
  });

  test('nghttp gets HTTP/2 answers', async (t) => {
    const { port } = await startH2(t, { cert });
    const { stdout } = await run('nghttp', ['-n', '-s', '-H', ':authority: localhost', `https://127.0.0.1:${port}/x`], { timeout: 10_000 });
    assert.match(stdout, /complete/);
  });

  test('a 1 MiB request body streams through to an HTTP/1.1 backend, with and without Content-Length', async (t) => {
    const { port } = await startH2(t, {
      cert,
      handler: (req, res) => {
        const hash = createHash('sha256');
        req.on('data', (chunk: Buffer) => hash.update(chunk));
        req.on('end', () => res.end(`${req.headers['content-length'] ?? req.headers['transfer-encoding']} ${hash.digest('hex')}`));
      },
    });
    const body = randomBytes(1024 * 1024);
    const digest = createHash('sha256').update(body).digest('hex');
    const session = await connectH2(t, port, ca);
    const withLength = await h2Request(session, { ':method': 'POST', ':path': '/up', 'content-length': String(body.length) }, body);
    assert.equal(withLength.body, `${body.length} ${digest}`);
    const streamed = await h2Request(session, { ':method': 'POST', ':path': '/up' }, body);
    assert.equal(streamed.body, `chunked ${digest}`);
  });
});

describe('h2c: HTTP/2 with prior knowledge on a cleartext listener', () => {
  test('curl --http2-prior-knowledge and HTTP/1.1 clients share the port', async (t) => {
    const { port } = await startH2(t, { listener: { h2c: true } });
    const h2 = await run('curl', ['-s', '--http2-prior-knowledge', '-w', ' %{http_version} %{response_code}', `http://127.0.0.1:${port}/x`], { timeout: 10_000 });
    assert.equal(h2.stdout, 'web 2 200');
    const h1 = await run('curl', ['-s', '--http1.1', '-w', ' %{http_version} %{response_code}', `http://127.0.0.1:${port}/x`], { timeout: 10_000 });
    assert.equal(h1.stdout, 'web 1.1 200');
    const res = await request(`http://127.0.0.1:${port}/`);
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    // Upgrade: h2c stays unsupported: a plain HTTP/1.1 answer.
    const upgrade = await run('curl', ['-s', '--http2', '-w', ' %{http_version} %{response_code}', `http://127.0.0.1:${port}/x`], { timeout: 10_000 });
    assert.equal(upgrade.stdout, 'web 1.1 200');
  });

  test('nghttp with prior knowledge', async (t) => {
    const { port, backend } = await startH2(t, { listener: { h2c: true } });
    const { stdout } = await run('nghttp', ['-n', '-s', `http://127.0.0.1:${port}/n`], { timeout: 10_000 });
    assert.match(stdout, /complete/);
    assert.equal(backend.seen[0]?.headers['x-forwarded-proto'], 'http');
  });

  test('without h2c a cleartext listener speaks HTTP/1.1 only', async (t) => {
    const { port } = await startH2(t);
    await assert.rejects(run('curl', ['-s', '-f', '--http2-prior-knowledge', `http://127.0.0.1:${port}/x`], { timeout: 10_000 }));
  });

  test('h2c is refused on a TLS listener, with the field named', async (t) => {
    await assert.rejects(startH2(t, { cert, listener: { h2c: true } }), /listeners\.0\.h2c.*ALPN/s);
  });
});
