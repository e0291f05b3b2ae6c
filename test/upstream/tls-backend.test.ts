import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { cleanupFor } from '../helpers/cleanup.js';
import { spawnCli } from '../helpers/cli.js';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError, start, type BackendTlsConfig, type ConfigInput } from '../../src/index.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { makeTestPki, startTlsBackend, type IssuedCert, type TestCa, type TestPki } from '../helpers/tls.js';

let ca: TestCa;
/** SAN DNS:localhost and IP:127.0.0.1. */
let local: IssuedCert;
/** SAN DNS:backend.test only. */
let named: IssuedCert;
/** A client certificate for mTLS. */
let client: IssuedCert;
/** Signed by a CA the proxy does not trust. */
let stranger: IssuedCert;
let pki: TestPki;

before(async () => {
  pki = await makeTestPki();
  ({ ca, local, named, client, stranger } = pki);
});

after(() => pki.remove());

type UpstreamInput = ConfigInput['upstreams'][string];

/**
 * Switchyard in front of `backends` with upstream `tls`. `panic: true` ignores health (panic
 * threshold 100%) so a request reaches the request path even when the TLS health check failed,
 * and one try per request makes a failed attempt the request's 502.
 */
function startProxy(backends: string[], tls: BackendTlsConfig | undefined, options: { panic?: boolean } = {}) {
  const upstream: UpstreamInput = {
    backends,
    ...(tls === undefined ? {} : { tls }),
    ...(options.panic === true ? { panicThreshold: 100, retry: { retriesPerBackend: 0, maxBackends: 1 } } : {}),
  };
  return startConfigured({ config: localConfig({ web: upstream }) });
}

/** The `error` field of the logged failed attempts. */
function attemptErrors(lb: { logs: Record<string, unknown>[] }): unknown[] {
  return lb.logs.filter((entry) => String(entry['msg']).startsWith('attempt to ')).map((entry) => entry['error']);
}

async function get(url: string, host?: string): Promise<{ status: number; body: string }> {
  const res = await request(url, host === undefined ? {} : { headers: { host } });
  return { status: res.statusCode, body: await res.body.text() };
}

describe('https backends: the server name comes from the backend, not the client', () => {
  test("a client's Host header changes neither SNI nor the certificate check, and keeps pooled connections", async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startTlsBackend('b', local);
    cleanup(() => backend.close());
    const lb = await startProxy([backend.url], { ca: ca.caFile });
    cleanup(() => lb.close());

    const hosts = ['evil.example', 'other.example', 'evil.example', '127.0.0.1', 'x.example:8443', 'evil.example'];
    for (const host of hosts) assert.deepEqual(await get(lb.url, host), { status: 200, body: 'b' }, `Host: ${host}`);
    // preserveHost: the backend sees each client's Host unchanged.
    assert.deepEqual(backend.hosts, hosts);
    // One connection for them all, without SNI: the backend is an IP (RFC 6066 §3), checked against its IP SAN.
    assert.deepEqual(backend.servingHandshakes(), [{ servername: false, clientCn: null }]);
    assert.equal(lb.upstream.backends[0]?.available, true);
    assert.equal(lb.upstream.backends[0]?.failuresTotal, 0);
  });

  test('a hostname backend sends its own name as SNI whatever the Host', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startTlsBackend('b', local);
    cleanup(() => backend.close());
    const lb = await startProxy([`https://localhost:${backend.port}`], { ca: ca.caFile });
    cleanup(() => lb.close());
    assert.deepEqual(await get(lb.url, 'evil.example'), { status: 200, body: 'b' });
    assert.deepEqual(await get(lb.url, 'other.example'), { status: 200, body: 'b' });
    assert.deepEqual(backend.servingHandshakes(), [{ servername: 'localhost', clientCn: null }]);
  });

  test('servername: the configured name is sent as SNI and checked while connecting to an IP', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startTlsBackend('named', named);
    cleanup(() => backend.close());
    const lb = await startProxy([backend.url], { ca: ca.caFile, servername: 'backend.test' });
    cleanup(() => lb.close());
    assert.deepEqual(await get(lb.url, 'evil.example'), { status: 200, body: 'named' });
    assert.deepEqual(backend.servingHandshakes(), [{ servername: 'backend.test', clientCn: null }]);
  });

  test('without servername the same certificate does not match the IP: 502, and the Host cannot rescue it', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startTlsBackend('named', named);
    cleanup(() => backend.close());
    const lb = await startProxy([backend.url], { ca: ca.caFile }, { panic: true });
    cleanup(() => lb.close());
    assert.equal((await get(lb.url, 'backend.test')).status, 502);
    assert.equal(backend.hosts.length, 0);
    assert.deepEqual(attemptErrors(lb), ['ERR_TLS_CERT_ALTNAME_INVALID']);
  });
});

describe('https backends: verification', () => {
  test('a certificate from an unknown CA gets 502; insecureSkipVerify accepts it', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startTlsBackend('unverified', stranger);
    cleanup(() => backend.close());
    const strict = await startProxy([backend.url], { ca: ca.caFile }, { panic: true });
    cleanup(() => strict.close());
    assert.equal((await get(strict.url)).status, 502);
    assert.equal(backend.hosts.length, 0, 'no request reached the unverified backend');
    assert.deepEqual(attemptErrors(strict), ['UNABLE_TO_VERIFY_LEAF_SIGNATURE']);

    const trusting = await startProxy([backend.url], { insecureSkipVerify: true });
    cleanup(() => trusting.close());
    assert.deepEqual(await get(trusting.url, 'evil.example'), { status: 200, body: 'unverified' });
  });

  test('without a ca the system roots apply: a private CA is not trusted', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startTlsBackend('b', local);
    cleanup(() => backend.close());
    const lb = await startProxy([backend.url], undefined, { panic: true });
    cleanup(() => lb.close());
    assert.equal((await get(lb.url)).status, 502);
    assert.deepEqual(attemptErrors(lb), ['UNABLE_TO_VERIFY_LEAF_SIGNATURE']);
  });

  test('mTLS: the client certificate is presented to a backend that requires one', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startTlsBackend('mtls', local, { clientCa: ca.caPem });
    cleanup(() => backend.close());
    const without = await startProxy([backend.url], { ca: ca.caFile }, { panic: true });
    cleanup(() => without.close());
    assert.equal((await get(without.url)).status, 502);

    const lb = await startProxy([backend.url], { ca: ca.caFile, cert: client.certFile, key: client.keyFile });
    cleanup(() => lb.close());
    assert.deepEqual(await get(lb.url), { status: 200, body: 'mtls' });
    assert.deepEqual(backend.servingHandshakes(), [{ servername: false, clientCn: 'switchyard-client' }]);
  });
});

describe('https backends: config', () => {
  test('upstream tls in a config file; a reload that changes it replaces the pool', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startTlsBackend('named', named);
    cleanup(() => backend.close());
    const upstream = { backends: [backend.url], retry: { retriesPerBackend: 0, maxBackends: 1 }, panicThreshold: 100 };
    const lb = await startConfigured({ config: localConfig({ web: { ...upstream, tls: { ca: ca.caFile } } }) });
    cleanup(() => lb.close());
    assert.equal((await get(lb.url)).status, 502);
    const before = lb.upstream.backends[0];

    const result = await lb.reload(localConfig({ web: { ...upstream, tls: { ca: ca.caFile, servername: 'backend.test' } } }));
    assert.equal(result.ok, true, result.error);
    assert.notEqual(lb.upstream.backends[0], before, 'new TLS settings, new pool');
    const kept = lb.upstream.backends[0];
    assert.deepEqual(await get(lb.url), { status: 200, body: 'named' });

    const same = await lb.reload(localConfig({ web: { ...upstream, tls: { ca: ca.caFile, servername: 'backend.test' } } }));
    assert.equal(same.ok, true, same.error);
    assert.equal(lb.upstream.backends[0], kept, 'same TLS settings and files: the backend and its pool are kept');
  });
});

describe('https backends: config errors', () => {
  /** The one-line error parseConfig gives for an upstream `tls` section written as YAML. */
  function tlsError(lines: string): string {
    const text = `upstreams:\n  web:\n    backends: [https://127.0.0.1:1]\n    tls:\n${lines}`;
    try {
      parseConfig(text, 'lb.yaml');
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.message;
    }
    assert.fail('config accepted');
  }

  test('a missing, unreadable or non-PEM file is one line naming the field and the file', async () => {
    const missing = `${ca.dir}/nope.pem`;
    assert.equal(tlsError(`      ca: ${missing}\n`), `lb.yaml:5:11 upstreams.web.tls.ca: cannot read "${missing}": no such file`);
    assert.equal(tlsError(`      ca: ${ca.dir}\n`), `lb.yaml:5:11 upstreams.web.tls.ca: cannot read "${ca.dir}": is a directory`);
    const text = `${ca.dir}/not-pem.txt`;
    await writeFile(text, 'hello\n');
    assert.equal(tlsError(`      ca: ${text}\n`), `lb.yaml:5:11 upstreams.web.tls.ca: "${text}" is not a PEM file (no "-----BEGIN" line)`);
  });

  test('cert without key, a key that is not the certificate\'s, an IP as servername', () => {
    assert.equal(tlsError(`      cert: ${client.certFile}\n`), 'lb.yaml:5:13 upstreams.web.tls.cert: cert without key: a client certificate needs both');
    assert.match(tlsError(`      cert: ${client.certFile}\n      key: ${local.keyFile}\n`), /^lb\.yaml:5:13 upstreams\.web\.tls\.cert: ".*" cannot be used: .*key values mismatch$/);
    assert.match(tlsError('      servername: 127.0.0.1\n'), /^lb\.yaml:5:19 upstreams\.web\.tls\.servername: "127\.0\.0\.1" is an IP address; SNI takes host names only \(RFC 6066 §3\)/);
  });

  test('the library option names backendTls', async () => {
    await assert.rejects(start({ port: 0, backends: ['https://127.0.0.1:1'], backendTls: { ca: `${ca.dir}/nope.pem` }, log: { level: 'silent' } }), {
      message: `backendTls.ca: cannot read "${ca.dir}/nope.pem": no such file`,
    });
  });
});

describe('https backends: --backend-ca', () => {
  test('the CLI trusts the given CA; the client Host does not matter', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startTlsBackend('cli', local);
    cleanup(() => backend.close());
    const cli = spawnCli(['--backends', backend.url, '--backend-ca', ca.caFile, '--port', '0', '--host', '127.0.0.1'], cleanup);
    const port = await cli.started();
    assert.deepEqual(await get(`http://127.0.0.1:${port}`, 'evil.example'), { status: 200, body: 'cli' });
  });

  test('a missing --backend-ca file: one line naming the flag and the file, exit 2', async (t) => {
    const cleanup = cleanupFor(t);
    const cli = spawnCli(['--backends', 'https://127.0.0.1:1', '--backend-ca', `${ca.dir}/nope.pem`, '--port', '0'], cleanup);
    const [code] = await cli.exited;
    assert.equal(code, 2);
    assert.equal(cli.stderr(), `switchyard: --backend-ca: cannot read "${ca.dir}/nope.pem": no such file\n`);
  });
});
