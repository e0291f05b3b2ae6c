import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { rawExchange } from '../helpers/raw.js';
import { closeServer, startBackend, type TestBackend } from '../helpers/servers.js';

/**
 * `Location` rewriting (issue 9, section 7), as nginx's `proxy_redirect default`: a backend's
 * redirect to its own address becomes one to the address the client used. The backend answers
 * 302 with the Location (and Content-Location) the test asks for in x-location headers.
 */
function redirecting(req: http.IncomingMessage, res: http.ServerResponse): void {
  req.resume();
  const headers: http.OutgoingHttpHeaders = { location: String(req.headers['x-location']), 'content-length': 0 };
  if (req.headers['x-content-location'] !== undefined) headers['content-location'] = String(req.headers['x-content-location']);
  res.writeHead(302, headers);
  res.end();
}

type Lb = Awaited<ReturnType<typeof startConfigured>>;

/** The Location (and Content-Location) the client gets for a backend's `location`. */
async function redirectVia(lb: Lb, location: string, host?: string, contentLocation?: string): Promise<[string, string | undefined]> {
  const headers: Record<string, string> = { 'x-location': location };
  if (host !== undefined) headers['host'] = host;
  if (contentLocation !== undefined) headers['x-content-location'] = contentLocation;
  const res = await request(`${lb.url}/go`, { headers });
  await res.body.dump();
  assert.equal(res.statusCode, 302);
  const cl = res.headers['content-location'];
  return [String(res.headers['location']), cl === undefined ? undefined : String(cl)];
}

describe('Location from a backend naming itself is rewritten to the client\'s address', () => {
  let plain: TestBackend;
  let based: TestBackend;
  let lb: Lb;
  let lbBase: Lb;
  let lbOff: Lb;

  before(async () => {
    [plain, based] = await Promise.all([startBackend('plain', redirecting), startBackend('based', redirecting)]);
    lb = await startConfigured({ config: localConfig({ web: { backends: [plain.url] } }) });
    lbBase = await startConfigured({ config: localConfig({ web: { backends: [`${based.url}/base/`] } }) });
    lbOff = await startConfigured({ config: localConfig({ web: { backends: [`${based.url}/base`], rewriteLocation: false } }) });
  });

  after(async () => {
    await Promise.all([lb.close(), lbBase.close(), lbOff.close()]);
    await Promise.all([plain.close(), based.close()]);
  });

  test('absolute to the backend itself: scheme of the listener, host (with its port) from the client', async () => {
    assert.deepEqual(await redirectVia(lb, `${plain.url}/dest?q=1#f`, 'app.example:8080'), ['http://app.example:8080/dest?q=1#f', undefined]);
    assert.deepEqual(await redirectVia(lb, `${plain.url}/`, 'app.example'), ['http://app.example/', undefined]);
    assert.deepEqual(await redirectVia(lb, plain.url, 'app.example'), ['http://app.example/', undefined]);
    // Scheme and host compare case-insensitively (RFC 3986 section 6.2.2.1).
    assert.deepEqual(await redirectVia(lb, `HTTP://127.0.0.1:${plain.port}/Up`, 'app.example'), ['http://app.example/Up', undefined]);
    // Without a Host of its own, undici sends the listener's address.
    const port = lb.address.port;
    assert.deepEqual(await redirectVia(lb, `${plain.url}/x`), [`http://127.0.0.1:${port}/x`, undefined]);
  });

  test('absolute to the backend with its base path: the base path maps to /', async () => {
    const self = `${based.url}/base`;
    assert.deepEqual(await redirectVia(lbBase, `${self}/x/y?z`, 'app.example'), ['http://app.example/x/y?z', undefined]);
    assert.deepEqual(await redirectVia(lbBase, self, 'app.example'), ['http://app.example/', undefined]);
    assert.deepEqual(await redirectVia(lbBase, `${self}?a=1`, 'app.example'), ['http://app.example/?a=1', undefined]);
    // Outside the base path, or a longer segment, is not the backend's own address: left alone.
    assert.deepEqual(await redirectVia(lbBase, `${based.url}/other`, 'app.example'), [`${based.url}/other`, undefined]);
    assert.deepEqual(await redirectVia(lbBase, `${based.url}/basement`, 'app.example'), [`${based.url}/basement`, undefined]);
  });

  test('Content-Location is rewritten by the same rule', async () => {
    assert.deepEqual(await redirectVia(lbBase, '/rel', 'app.example', `${based.url}/base/doc.json`), ['/rel', 'http://app.example/doc.json']);
  });

  test('relative Locations and other hosts or ports are left alone', async () => {
    for (const location of ['/base/x', 'x/y', '?q', `//127.0.0.1:${based.port}/base/x`, 'http://other.example/base/x', `http://127.0.0.1:${based.port}1/base/x`, `https://127.0.0.1:${based.port}/base/x`, `http://localhost:${based.port}/base/x`]) {
      assert.deepEqual(await redirectVia(lbBase, location, 'app.example'), [location, undefined], location);
    }
  });

  test('rewriteLocation: false leaves the backend\'s own address as it is', async () => {
    const location = `${based.url}/base/x`;
    assert.deepEqual(await redirectVia(lbOff, location, 'app.example', location), [location, location]);
  });

  test('a client that sent no Host (HTTP/1.0) gets the path alone', async () => {
    const port = lbBase.address.port;
    const res = await rawExchange(port, `GET /go HTTP/1.0\r\nX-Location: ${based.url}/base/x?y\r\n\r\n`);
    assert.equal(res.status, 302);
    assert.deepEqual(res.headers.get('location'), ['/x?y']);
  });
});

test('an IPv6 backend literal is recognised', async (t) => {
  const cleanup = cleanupFor(t);
  const server = http.createServer(redirecting);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '::1', resolve);
    });
  } catch {
    t.skip('no IPv6 loopback here');
    return;
  }
  cleanup(() => closeServer(server));
  const url = `http://[::1]:${(server.address() as AddressInfo).port}`;
  const lb = await startConfigured({ config: localConfig({ web: { backends: [`${url}/v6`] } }) });
  cleanup(() => lb.close());
  assert.deepEqual(await redirectVia(lb, `${url}/v6/x`, '[2001:db8::1]:8443'), ['http://[2001:db8::1]:8443/x', undefined]);
  assert.deepEqual(await redirectVia(lb, `http://[::2]:${(server.address() as AddressInfo).port}/v6/x`, 'app.example'), [`http://[::2]:${(server.address() as AddressInfo).port}/v6/x`, undefined]);
});
