import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, rename, writeFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { rawExchange } from '../helpers/raw.js';
import { startBackend, startLb, until } from '../helpers/servers.js';
import { makeCa, type IssuedCert, type TestCa } from '../helpers/tls.js';
import { ConfigError, start, type ConfigInput } from '../../src/index.js';
import { configSchema } from '../../src/config/schema.js';

const run = promisify(execFile);

let ca: TestCa;
/** SAN DNS:a.test: the first certificate, so also the one for clients without SNI. */
let certA: IssuedCert;
/** SAN DNS:b.test and DNS:*.wild.test. */
let certB: IssuedCert;
/** Another a.test certificate (a new serial), what a renewal looks like. */
let certA2: IssuedCert;

before(async () => {
  ca = await makeCa();
  certA = await ca.issue('a.test', ['DNS:a.test']);
  certB = await ca.issue('b.test', ['DNS:b.test', 'DNS:*.wild.test']);
  certA2 = await ca.issue('a.test', ['DNS:a.test']);
});

after(() => ca.remove());

type Listener = NonNullable<ConfigInput['listeners']>[number];

function tlsListener(certificates: readonly IssuedCert[], extra: Partial<Listener> = {}): Listener {
  return { host: '127.0.0.1', port: 0, tls: { certificates: certificates.map((c) => ({ cert: c.certFile, key: c.keyFile })) }, ...extra };
}

/** The handshake's outcome: the served certificate's CN and serial and the ALPN protocol, or the error's text. */
function handshake(port: number, options: tls.ConnectionOptions = {}): Promise<{ cn: string; serial: string; alpn: string | false } | { error: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.caPem, ALPNProtocols: ['h2', 'http/1.1'], ...options });
    const timer = setTimeout(() => socket.destroy(new Error('handshake timed out')), 5000);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const peer = socket.getPeerCertificate();
      resolve({ cn: String(peer.subject.CN), serial: peer.serialNumber, alpn: socket.alpnProtocol ?? false });
      socket.end();
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      resolve({ error: err.message });
    });
  });
}

async function startHttps(t: import('node:test').TestContext, listener: Listener) {
  const cleanup = cleanupFor(t);
  const backend = await startBackend('web');
  cleanup(() => backend.close());
  const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url] } }, { listeners: [listener] }) });
  cleanup(() => lb.close());
  return { lb, backend, port: lb.address.port, cleanup };
}

describe('HTTPS listeners', () => {
  test('each certificate serves its subjectAltName names by SNI, wildcards too; the first serves clients without SNI; ALPN picks h2 when offered', async (t) => {
    const { port } = await startHttps(t, tlsListener([certA, certB]));
    const a = await handshake(port, { servername: 'a.test' });
    assert.ok('cn' in a, JSON.stringify(a));
    assert.equal(a.cn, 'a.test');
    assert.equal(a.alpn, 'h2');
    assert.equal((await handshake(port, { servername: 'b.test' }) as { cn: string }).cn, 'b.test');
    assert.equal((await handshake(port, { servername: 'x.wild.test' }) as { cn: string }).cn, 'b.test');
    // An unknown name and no SNI at all (an IP address sends none) get the first certificate.
    assert.equal((await handshake(port, { servername: 'other.test', checkServerIdentity: () => undefined }) as { cn: string }).cn, 'a.test');
    assert.equal((await handshake(port, { checkServerIdentity: () => undefined }) as { cn: string }).cn, 'a.test');
  });

  test('TLS 1.0 and 1.1 clients are refused; minVersion TLSv1.3 refuses TLS 1.2 too', async (t) => {
    const { port } = await startHttps(t, tlsListener([certA]));
    assert.ok('error' in (await handshake(port, { servername: 'a.test', minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' })));
    assert.ok('cn' in (await handshake(port, { servername: 'a.test', maxVersion: 'TLSv1.2' })));
    const strict = await startHttps(t, tlsListener([certA], { tls: { certificates: [{ cert: certA.certFile, key: certA.keyFile }], minVersion: 'TLSv1.3' } }));
    assert.ok('error' in (await handshake(strict.port, { servername: 'a.test', maxVersion: 'TLSv1.2' })));
    assert.ok('cn' in (await handshake(strict.port, { servername: 'a.test' })));
  });

  test('undici with the test CA gets the answer; the backend sees X-Forwarded-Proto: https and Forwarded proto=https', async (t) => {
    const { lb, port, backend, cleanup } = await startHttps(t, tlsListener([certA, certB]));
    assert.equal(lb.url, `https://127.0.0.1:${port}`);
    const agent = new Agent({ connect: { ca: ca.caPem, servername: 'b.test' } });
    cleanup(() => agent.close());
    const res = await request(`https://127.0.0.1:${port}/x`, { dispatcher: agent, headers: { host: 'b.test' } });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'web');
    const seen = backend.seen.at(-1);
    assert.equal(seen?.headers['x-forwarded-proto'], 'https');
    assert.match(String(seen?.headers['forwarded']), /proto=https/);
  });

  test('curl --resolve with --cacert verifies the name it asked for', async (t) => {
    const { port } = await startHttps(t, tlsListener([certA, certB]));
    for (const name of ['a.test', 'b.test', 'x.wild.test']) {
      const { stdout } = await run('curl', ['-sS', '--max-time', '10', '--resolve', `${name}:${port}:127.0.0.1`, '--cacert', ca.caFile, `https://${name}:${port}/`], { timeout: 15_000 });
      assert.equal(stdout, 'web', name);
    }
  });
});

describe('start() with tls', () => {
  test('the tls option serves HTTPS; a bad file rejects with a ConfigError naming the option and the file', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startBackend('web');
    cleanup(() => backend.close());
    const lb = await startLb({ backends: [backend.url], tls: { certificates: [{ cert: certA.certFile, key: certA.keyFile }] } });
    cleanup(() => lb.close());
    const agent = new Agent({ connect: { ca: ca.caPem, servername: 'a.test' } });
    cleanup(() => agent.close());
    const res = await request(lb.url, { dispatcher: agent });
    assert.equal(await res.body.text(), 'web');
    const missing = path.join(ca.dir, 'missing.pem');
    await assert.rejects(start({ backends: [backend.url], port: 0, tls: { certificates: [{ cert: missing, key: certA.keyFile }] } }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.message, `tls.certificates.0.cert: cannot read "${missing}": no such file`);
      return true;
    });
  });
});

describe('HTTPS listener close', () => {
  test('close() lets an in-flight request finish and does not wait on an idle keep-alive TLS connection', async (t) => {
    const cleanup = cleanupFor(t);
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const backend = await startBackend('slow', (req, res) => {
      req.resume();
      if (req.url === '/slow') void held.then(() => res.end('late'));
      else res.end('fast');
    });
    cleanup(() => backend.close());
    const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url] } }, { listeners: [tlsListener([certA])], gracePeriod: '5s' }) });
    const port = lb.address.port;
    const idle = new Agent({ connect: { ca: ca.caPem, servername: 'a.test' } });
    const busy = new Agent({ connect: { ca: ca.caPem, servername: 'a.test' } });
    cleanup(() => idle.close());
    cleanup(() => busy.close());
    const fast = await request(`https://127.0.0.1:${port}/`, { dispatcher: idle, headers: { host: 'a.test' } });
    assert.equal(fast.statusCode, 200);
    await fast.body.dump();
    const slow = request(`https://127.0.0.1:${port}/slow`, { dispatcher: busy, headers: { host: 'a.test' } });
    await until(() => backend.seen.length === 2, 5000, 'the slow request at the backend');
    const started = performance.now();
    const closed = lb.close();
    release();
    const res = await slow;
    assert.equal(await res.body.text(), 'late');
    await closed;
    assert.ok(performance.now() - started < 4000, 'close did not wait out the grace period');
  });
});

describe('HTTPS certificate reload', () => {
  /** Copies of certA's files the test may overwrite. */
  async function ownFiles(): Promise<{ cert: string; key: string }> {
    const stamp = `${process.pid}-${Math.random().toString(36).slice(2)}`;
    const files = { cert: path.join(ca.dir, `live-${stamp}.pem`), key: path.join(ca.dir, `live-${stamp}.key`) };
    await copyFile(certA.certFile, files.cert);
    await copyFile(certA.keyFile, files.key);
    return files;
  }

  function keepAliveGet(agent: https.Agent, port: number): Promise<{ reused: boolean; serial: string; body: string }> {
    return new Promise((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port, path: '/', agent, servername: 'a.test', headers: { host: 'a.test' }, timeout: 5000 }, (res) => {
        const serial = (res.socket as tls.TLSSocket).getPeerCertificate().serialNumber;
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => resolve({ reused: req.reusedSocket, serial, body }));
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('request timed out')));
    });
  }

  test('a changed certificate file is served to new connections; an open keep-alive connection goes on', async (t) => {
    const files = await ownFiles();
    const { lb, port, cleanup } = await startHttps(t, { host: '127.0.0.1', port: 0, tls: { certificates: [files] } });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.caPem });
    cleanup(() => agent.destroy());
    const first = await keepAliveGet(agent, port);
    const oldSerial = ((await handshake(port, { servername: 'a.test' })) as { serial: string }).serial;
    assert.equal(first.serial, oldSerial);
    const logged = lb.logs.length;
    // The key first, then the certificate: in between the pair does not match and is not taken.
    await writeFile(files.key, certA2.key);
    await writeFile(files.cert, certA2.cert);
    await until(() => lb.logs.slice(logged).some((e) => String(e['msg']).startsWith('TLS certificates reloaded')), 5000, 'the reload');
    const fresh = (await handshake(port, { servername: 'a.test' })) as { serial: string };
    assert.notEqual(fresh.serial, oldSerial);
    const second = await keepAliveGet(agent, port);
    assert.equal(second.reused, true, 'the keep-alive connection survived');
    assert.equal(second.serial, oldSerial);
    assert.equal(second.body, 'web');
  });

  test('files replaced by rename (as certbot and Kubernetes secrets do) are picked up, again and again', async (t) => {
    const files = await ownFiles();
    const { lb, port } = await startHttps(t, { host: '127.0.0.1', port: 0, tls: { certificates: [files] } });
    const oldSerial = ((await handshake(port, { servername: 'a.test' })) as { serial: string }).serial;
    const reloads = () => lb.logs.filter((e) => String(e['msg']).startsWith('TLS certificates reloaded')).length;
    for (const [round, next] of [certA2, certA].entries()) {
      await writeFile(`${files.key}.new`, next.key);
      await writeFile(`${files.cert}.new`, next.cert);
      await rename(`${files.key}.new`, files.key);
      await rename(`${files.cert}.new`, files.cert);
      await until(() => reloads() > round, 5000, `reload ${round + 1}`);
      const serial = ((await handshake(port, { servername: 'a.test' })) as { serial: string }).serial;
      assert.equal(serial === oldSerial, next === certA, `round ${round + 1}`);
    }
  });

  test('a broken new file keeps the old certificate and logs the path and the error', async (t) => {
    const files = await ownFiles();
    const { lb, port } = await startHttps(t, { host: '127.0.0.1', port: 0, tls: { certificates: [files] } });
    const oldSerial = ((await handshake(port, { servername: 'a.test' })) as { serial: string }).serial;
    await writeFile(files.cert, '-----BEGIN CERTIFICATE-----\nhalf a certif');
    await until(() => lb.logs.some((e) => String(e['msg']).startsWith('TLS certificate not reloaded')), 5000, 'the refused reload');
    const entry = lb.logs.find((e) => String(e['msg']).startsWith('TLS certificate not reloaded'));
    assert.equal(entry?.['file'], files.cert);
    assert.match(String(entry?.['msg']), /not a certificate/);
    assert.equal(((await handshake(port, { servername: 'a.test' })) as { serial: string }).serial, oldSerial);
  });

  test('a config reload reads the certificates again, from new paths too, without closing the listener', async (t) => {
    const { lb, port, backend } = await startHttps(t, tlsListener([certA]));
    const before = ((await handshake(port, { servername: 'a.test' })) as { serial: string }).serial;
    const result = await lb.reload(localConfig({ web: { backends: [backend.url] } }, { listeners: [tlsListener([certA2, certB])] }));
    assert.equal(result.ok, true, result.error);
    assert.deepEqual(result.ignored, []);
    const after = (await handshake(port, { servername: 'a.test' })) as { serial: string; alpn: string | false };
    assert.notEqual(after.serial, before);
    // The reload keeps the ALPN list: h2 is still offered.
    assert.equal(after.alpn, 'h2');
    assert.equal(((await handshake(port, { checkServerIdentity: () => undefined })) as { serial: string }).serial, after.serial, 'the new first certificate serves clients without SNI');
    assert.equal(((await handshake(port, { servername: 'b.test' })) as { cn: string }).cn, 'b.test');
    // Turning TLS off needs a new server: the reload says so and the listener stays HTTPS.
    const off = await lb.reload(localConfig({ web: { backends: [backend.url] } }, { listeners: [{ host: '127.0.0.1', port: 0 }] }));
    assert.deepEqual(off.ignored, ['listeners[0].tls']);
    assert.equal(((await handshake(port, { servername: 'a.test' })) as { serial: string }).serial, after.serial);
  });
});

/** Without `session`: connects and waits for a session ticket. With it: whether it was resumed. */
function sessionOf(port: number, session?: Buffer): Promise<{ ticket: Buffer | null; resumed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.caPem, servername: 'a.test', ...(session === undefined ? {} : { session }) });
    const timer = setTimeout(() => socket.destroy(new Error('no session ticket within 5 s')), 5000);
    const done = (ticket: Buffer | null): void => {
      clearTimeout(timer);
      resolve({ ticket, resumed: socket.isSessionReused() });
      socket.end();
    };
    socket.resume();
    // A resumed TLS 1.3 session gets no new ticket from Node: its handshake is the answer.
    if (session === undefined) socket.once('session', done);
    else socket.once('secureConnect', () => done(null));
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

describe('session tickets', () => {
  test('a ticket issued before a config reload resumes a session after it', async (t) => {
    const { lb, port, backend } = await startHttps(t, tlsListener([certA, certB]));
    const ticket = (await sessionOf(port)).ticket as Buffer;
    assert.equal((await sessionOf(port, ticket)).resumed, true, 'resumed before the reload');
    const result = await lb.reload(localConfig({ web: { backends: [backend.url] } }, { listeners: [tlsListener([certA2, certB])] }));
    assert.equal(result.ok, true, result.error);
    assert.equal((await sessionOf(port, ticket)).resumed, true, 'resumed after the reload');
  });
});

describe('redirectHttps', () => {
  test('a plain listener answers 308 to https:// the same host (no port) and target', async (t) => {
    const { port, backend } = await startHttps(t, { host: '127.0.0.1', port: 0, redirectHttps: true });
    const res = await rawExchange(port, 'GET /a/b?q=1 HTTP/1.1\r\nHost: Example.com:8080\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 308);
    assert.match(res.head, /\r\nlocation: https:\/\/example\.com\/a\/b\?q=1\r\n/i);
    assert.equal(backend.seen.length, 0);
    // An HTTPS listener redirecting to itself would loop: the config is refused.
    const refused = configSchema.safeParse(localConfig({ web: { backends: [backend.url] } }, { listeners: [tlsListener([certA], { redirectHttps: true })] }));
    assert.equal(refused.success, false);
    assert.match(String(refused.error?.issues[0]?.message), /cannot redirect/);
    const bad = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n');
    assert.equal(bad.status, 400);
  });
});
