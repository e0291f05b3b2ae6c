import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { httpProbe, tcpProbe } from '../../src/health/active.js';
import { resolveHealthOptions } from '../../src/health/options.js';
import type { BackendTlsConfig } from '../../src/index.js';
import { Backend, downReasonNames, parseBackendUrl } from '../../src/upstream/backend.js';
import { loadBackendTls } from '../../src/upstream/tls.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { closeServer, until } from '../helpers/servers.js';
import { makeTestPki, startTlsBackend, type IssuedCert, type TestCa, type TestPki } from '../helpers/tls.js';

let ca: TestCa;
let local: IssuedCert;
let named: IssuedCert;
let stranger: IssuedCert;
let pki: TestPki;

before(async () => {
  pki = await makeTestPki();
  ({ ca, local, named, stranger } = pki);
});

after(() => pki.remove());

const pool = { connectTimeoutMs: 1000, headersTimeoutMs: 1000, bodyTimeoutMs: 1000, keepAliveTimeoutMs: 1000 };

function backendFor(url: string, tls: BackendTlsConfig | undefined, cleanup: (fn: () => unknown) => void): Backend {
  const backend = new Backend(parseBackendUrl(url), 1, { ...pool, tls: loadBackendTls(tls) });
  cleanup(() => backend.close());
  return backend;
}

const never = new AbortController().signal;

describe('TCP health checks of https backends complete a verified TLS handshake', () => {
  test('tcpProbe: verified passes; unknown CA, wrong name and no CA fail; insecureSkipVerify passes', async (t) => {
    const cleanup = cleanupFor(t);
    const good = await startTlsBackend('good', local);
    cleanup(() => good.close());
    const bad = await startTlsBackend('bad', stranger);
    cleanup(() => bad.close());
    const onlyNamed = await startTlsBackend('named', named);
    cleanup(() => onlyNamed.close());

    await tcpProbe(backendFor(good.url, { ca: ca.caFile }, cleanup), 2000, never);
    // TLS 1.3: the client is done one flight before the server.
    await until(() => good.handshakes.length > 0, 2000, 'the server side of the handshake');
    assert.deepEqual(good.handshakes, [{ servername: false, clientCn: null }], 'one handshake, no SNI for an IP');
    await assert.rejects(tcpProbe(backendFor(bad.url, { ca: ca.caFile }, cleanup), 2000, never), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    await assert.rejects(tcpProbe(backendFor(good.url, undefined, cleanup), 2000, never), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    await assert.rejects(tcpProbe(backendFor(onlyNamed.url, { ca: ca.caFile }, cleanup), 2000, never), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    await tcpProbe(backendFor(onlyNamed.url, { ca: ca.caFile, servername: 'backend.test' }, cleanup), 2000, never);
    await until(() => onlyNamed.handshakes.length > 0, 2000, 'the server side of the handshake');
    assert.deepEqual(onlyNamed.handshakes, [{ servername: 'backend.test', clientCn: null }]);
    await tcpProbe(backendFor(bad.url, { insecureSkipVerify: true }, cleanup), 2000, never);
  });

  test('a backend whose certificate cannot be verified is marked down at start and stays down', async (t) => {
    const cleanup = cleanupFor(t);
    const good = await startTlsBackend('good', local);
    cleanup(() => good.close());
    const bad = await startTlsBackend('bad', stranger);
    cleanup(() => bad.close());
    const lb = await startConfigured({ config: localConfig({ web: { backends: [good.url, bad.url], tls: { ca: ca.caFile } } }) });
    cleanup(() => lb.close());

    const [up, down] = lb.upstream.backends;
    assert.equal(up?.available, true);
    assert.deepEqual(downReasonNames(down?.downReasons ?? 0), ['health-check']);
    // Node 24 appends a hint (`; if the root CA is installed locally, try ... --use-system-ca`).
    assert.match(String(lb.logs.find((e) => e['msg'] === `${bad.url} [down]`)?.['error']), /^unable to verify the first certificate(;|$)/);
    for (let i = 0; i < 3; i++) await lb.checkHealth();
    assert.equal(down?.available, false, 'no flapping back up: every check fails the same way');
    assert.equal(lb.logs.filter((e) => e['msg'] === `${bad.url} [up]`).length, 0);

    // Every client request goes to the verified backend.
    for (let i = 0; i < 4; i++) {
      const res = await request(lb.url, { headers: { host: 'evil.example' } });
      assert.equal(await res.body.text(), 'good');
    }
    assert.equal(bad.hosts.length, 0);
  });
});

describe('HTTP health checks of https backends', () => {
  test("the check's Host option is a header only: SNI and the certificate name stay the backend's", async (t) => {
    const cleanup = cleanupFor(t);
    const good = await startTlsBackend('good', local);
    cleanup(() => good.close());
    const onlyNamed = await startTlsBackend('named', named);
    cleanup(() => onlyNamed.close());
    const options = resolveHealthOptions({ type: 'http', host: 'evil.example' });

    await httpProbe(backendFor(good.url, { ca: ca.caFile }, cleanup), options, never);
    assert.deepEqual(good.hosts, ['evil.example']);
    assert.deepEqual(good.handshakes, [{ servername: false, clientCn: null }]);

    await httpProbe(backendFor(onlyNamed.url, { ca: ca.caFile, servername: 'backend.test' }, cleanup), options, never);
    assert.deepEqual(onlyNamed.handshakes, [{ servername: 'backend.test', clientCn: null }]);
    // A Host naming the certificate does not make an unmatched backend pass.
    const hostNamed = resolveHealthOptions({ type: 'http', host: 'backend.test' });
    await assert.rejects(httpProbe(backendFor(onlyNamed.url, { ca: ca.caFile }, cleanup), hostNamed, never), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  test('an unverifiable certificate fails the HTTP check; insecureSkipVerify passes it', async (t) => {
    const cleanup = cleanupFor(t);
    const bad = await startTlsBackend('bad', stranger);
    cleanup(() => bad.close());
    const options = resolveHealthOptions({ type: 'http' });
    await assert.rejects(httpProbe(backendFor(bad.url, { ca: ca.caFile }, cleanup), options, never), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    assert.equal(bad.hosts.length, 0);
    await httpProbe(backendFor(bad.url, { insecureSkipVerify: true }, cleanup), options, never);
    assert.equal(bad.hosts.length, 1);
  });
});

describe('TCP health checks of https backends: timeouts', () => {
  test('a backend that accepts but never completes a handshake fails with "no TLS handshake within"', async (t) => {
    const cleanup = cleanupFor(t);
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => sockets.add(socket.on('error', () => {})));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanup(() => {
      for (const socket of sockets) socket.destroy();
      return closeServer(silent);
    });
    const url = `https://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    await assert.rejects(tcpProbe(backendFor(url, { ca: ca.caFile }, cleanup), 300, never), { message: 'no TLS handshake within 300 ms' });
  });
});
