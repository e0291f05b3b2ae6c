import assert from 'node:assert/strict';
import type http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { requestHeadersForUpstream as headersForUpstream, responseHeadersForClient, type ForwardingOptions } from '../../src/proxy/headers.js';
import { requestHost } from '../../src/proxy/request-host.js';
import { TrustedProxies } from '../../src/proxy/trusted.js';
import { fields, rawExchange } from '../helpers/raw.js';
import { closeServer, startBackend, startLb, type TestBackend } from '../helpers/servers.js';

/** requestHeadersForUpstream with the host admission would pass: the first Host, validated. */
function forward(raw: readonly string[], clientIp: string, proto: string, httpVersion: string, options: ForwardingOptions, host?: string): string[] {
  return headersForUpstream(raw, clientIp, proto, httpVersion, options, host ?? requestHost(raw, '/', httpVersion !== '1.0') ?? '');
}

type Lb = Awaited<ReturnType<typeof startLb>>;

const forwarding: ForwardingOptions = { preserveHost: true, viaName: 'switchyard', via11: '1.1 switchyard', trusted: null, rewriteLocation: true };
/** Trusts the 10.0.0.0/8 peers the unit tests below use as the client address. */
const trusting: ForwardingOptions = { ...forwarding, trusted: new TrustedProxies(['10.0.0.0/8']) };

/** Strings as the Buffers undici hands to a dispatch handler. */
function buffers(flat: readonly string[]): Buffer[] {
  return flat.map((s) => Buffer.from(s, 'latin1'));
}

/** The last comma-separated entry of a list field. */
function lastEntry(value: string | string[] | undefined): string | undefined {
  return (Array.isArray(value) ? value.join(', ') : value)?.split(',').at(-1)?.trim();
}

/**
 * A backend written on node:net so its response head is exactly `responseHead` (plus a
 * Content-Length for `body`); it answers every request on a connection, keeping it open.
 */
async function startRawBackend(responseHead: string, body: string): Promise<{ port: number; url: string; heads: string[]; close(): Promise<void> }> {
  const heads: string[] = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      let end: number;
      while ((end = pending.indexOf('\r\n\r\n')) !== -1) {
        heads.push(pending.slice(0, end));
        pending = pending.slice(end + 4);
        socket.write(`${responseHead}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { port, url: `http://127.0.0.1:${port}`, heads, close: () => closeServer(server) };
}

/** Collects a request body. */
function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

describe('requestHeadersForUpstream', () => {
  test('appends the client to X-Forwarded-For, sets X-Forwarded-Proto/Host and Via, keeps the rest', () => {
    const out = fields(forward(['Host', 'app.example', 'Accept', '*/*'], '10.0.0.9', 'http', '1.1', forwarding));
    assert.deepEqual(
      out,
      new Map([
        ['host', ['app.example']],
        ['accept', ['*/*']],
        ['x-forwarded-for', ['10.0.0.9']],
        ['x-forwarded-proto', ['http']],
        ['forwarded', ['for=10.0.0.9;proto=http;host=app.example']],
        ['via', ['1.1 switchyard']],
        ['x-forwarded-host', ['app.example']],
      ]),
    );
  });

  test('from a trusted peer, joins every X-Forwarded-For it sent into one field and appends the client once', () => {
    const out = fields(
      forward(['X-Forwarded-For', '1.2.3.4', 'host', 'h', 'x-forwarded-for', '5.6.7.8'], '10.0.0.9', 'http', '1.1', trusting),
    );
    assert.deepEqual(out.get('x-forwarded-for'), ['1.2.3.4, 5.6.7.8, 10.0.0.9']);
  });

  test('from an untrusted peer drops X-Forwarded-For and Forwarded and sends only ours', () => {
    const raw = ['Host', 'h', 'X-Forwarded-For', '1.2.3.4', 'Forwarded', 'for=1.2.3.4'];
    assert.equal(forwarding.trusted, null);
    const notListed: ForwardingOptions = { ...forwarding, trusted: new TrustedProxies(['10.0.0.1', '192.168.0.0/16']) };
    for (const options of [forwarding, notListed]) {
      const out = fields(forward(raw, '10.0.0.9', 'http', '1.1', options));
      assert.deepEqual(out.get('x-forwarded-for'), ['10.0.0.9']);
      assert.deepEqual(out.get('forwarded'), ['for=10.0.0.9;proto=http;host=h']);
    }
  });

  test('from a trusted peer appends a new Forwarded element after those it sent (RFC 7239 section 4)', () => {
    const raw = ['Host', 'h', 'Forwarded', 'for=192.0.2.60;proto=https', 'forwarded', 'for=198.51.100.17'];
    const out = fields(forward(raw, '10.0.0.9', 'http', '1.1', trusting));
    assert.deepEqual(out.get('forwarded'), ['for=192.0.2.60;proto=https, for=198.51.100.17, for=10.0.0.9;proto=http;host=h']);
  });

  test('quotes an IPv6 client as for="[…]" and values that are not tokens (RFC 7239 section 6)', () => {
    const out = fields(forward(['Host', 'app.example:8443'], '2001:db8:cafe::17', 'https', '1.1', forwarding));
    assert.deepEqual(out.get('forwarded'), ['for="[2001:db8:cafe::17]";proto=https;host="app.example:8443"']);
    assert.deepEqual(out.get('x-forwarded-for'), ['2001:db8:cafe::17']);
    // Admission refuses such a Host; the quoting is still checked with the value passed directly.
    const weird = fields(forward(['Host', 'x'], '', 'http', '1.1', forwarding, 'a"b\\c'));
    assert.deepEqual(weird.get('forwarded'), ['for=unknown;proto=http;host="a\\"b\\\\c"']);
  });

  test('each request gets the Forwarded element of its own client, scheme and host, whatever came before', () => {
    // The element is reused while client, scheme and host repeat (a keep-alive client): never across a change.
    const cases: [ip: string, proto: string, host: string, expected: string][] = [
      ['10.0.0.1', 'http', 'a.example', 'for=10.0.0.1;proto=http;host=a.example'],
      ['10.0.0.1', 'http', 'a.example', 'for=10.0.0.1;proto=http;host=a.example'],
      ['10.0.0.2', 'http', 'a.example', 'for=10.0.0.2;proto=http;host=a.example'],
      ['10.0.0.2', 'https', 'a.example', 'for=10.0.0.2;proto=https;host=a.example'],
      ['10.0.0.2', 'https', 'a.example:8443', 'for=10.0.0.2;proto=https;host="a.example:8443"'],
      ['10.0.0.2', 'https', '', 'for=10.0.0.2;proto=https'],
      ['10.0.0.2', 'https', 'a.example', 'for=10.0.0.2;proto=https;host=a.example'],
      ['', 'https', 'a.example', 'for=unknown;proto=https;host=a.example'],
    ];
    for (const [ip, proto, host, expected] of cases) {
      assert.deepEqual(fields(forward(['Host', 'x'], ip, proto, '1.1', forwarding, host)).get('forwarded'), [expected], `${ip} ${proto} ${host}`);
    }
  });

  test('an IPv6 trusted range matches an IPv6 peer; an IPv4-mapped peer matches its IPv4 range', () => {
    const options: ForwardingOptions = { ...forwarding, trusted: new TrustedProxies(['2001:db8::/32', '10.0.0.0/8']) };
    const v6 = fields(forward(['Host', 'h', 'X-Forwarded-For', '1.2.3.4'], '2001:db8::1', 'http', '1.1', options));
    assert.deepEqual(v6.get('x-forwarded-for'), ['1.2.3.4, 2001:db8::1']);
    const mapped = fields(forward(['Host', 'h', 'X-Forwarded-For', '1.2.3.4'], '::ffff:10.9.8.7', 'http', '1.1', options));
    assert.deepEqual(mapped.get('x-forwarded-for'), ['1.2.3.4, ::ffff:10.9.8.7']);
    const outside = fields(forward(['Host', 'h', 'X-Forwarded-For', '1.2.3.4'], '2001:db9::1', 'http', '1.1', options));
    assert.deepEqual(outside.get('x-forwarded-for'), ['2001:db9::1']);
  });

  test('replaces client-sent X-Forwarded-Proto and X-Forwarded-Host instead of trusting them', () => {
    const out = fields(
      forward(['Host', 'real.example', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'evil.example'], '10.0.0.9', 'http', '1.1', forwarding),
    );
    assert.deepEqual(out.get('x-forwarded-proto'), ['http']);
    assert.deepEqual(out.get('x-forwarded-host'), ['real.example']);
  });

  test('appends our Via entry to the client\'s, with the protocol version the client used', () => {
    const out11 = fields(forward(['Host', 'h', 'Via', '1.0 fred', 'via', '1.1 p.example (Apache/1.1)'], '10.0.0.9', 'http', '1.1', forwarding));
    assert.deepEqual(out11.get('via'), ['1.0 fred, 1.1 p.example (Apache/1.1), 1.1 switchyard']);
    const out10 = fields(forward(['Host', 'h'], '10.0.0.9', 'http', '1.0', forwarding));
    assert.deepEqual(out10.get('via'), ['1.0 switchyard']);
  });

  test('drops every hop-by-hop field (RFC 9110 section 7.6.1), whatever its case', () => {
    const raw = [
      'Host', 'h',
      'CONNECTION', 'keep-alive',
      'Keep-Alive', 'timeout=5',
      'Proxy-Connection', 'keep-alive',
      'TE', 'gzip, deflate',
      'Trailer', 'X-Sum',
      'Transfer-Encoding', 'chunked',
      'Upgrade', 'h2c',
      'HTTP2-Settings', 'AAMAAABkAAQAoAAAAAIAAAAA',
      'Proxy-Authorization', 'Basic Zm9vOmJhcg==',
      'Expect', '100-continue',
      'X-Kept', 'yes',
    ];
    const out = fields(forward(raw, '10.0.0.9', 'http', '1.1', forwarding));
    assert.deepEqual([...out.keys()].sort(), ['forwarded', 'host', 'via', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-kept']);
  });

  test('a name is hop-by-hop only when it is one in ASCII case: same-length look-alikes are forwarded', () => {
    const raw = ['Host', 'h', 'kEEP-aLIVE', 'timeout=5', 'keep\ralive', '1', 'keep_alive', '2', 'Kep-alive', '3', 'VIA', '1.0 a', 'Vi\u00e1', '4', 'tE', 'trailers'];
    const out = fields(forward(raw, '10.0.0.9', 'http', '1.1', forwarding));
    assert.deepEqual(out.get('keep\ralive'), ['1']);
    assert.deepEqual(out.get('keep_alive'), ['2']);
    assert.deepEqual(out.get('kep-alive'), ['3']);
    assert.deepEqual(out.get('vi\u00e1'), ['4']);
    assert.equal(out.get('keep-alive'), undefined);
    assert.deepEqual(out.get('via'), ['1.0 a, 1.1 switchyard']);
    assert.deepEqual(out.get('te'), ['trailers']);
  });

  test('TE goes on as `trailers` alone when it lists that member (RFC 9110 section 10.1.4), even named in Connection', () => {
    const out = fields(forward(['Host', 'h', 'Connection', 'TE', 'TE', 'gzip;q=0.5, Trailers', 'TE', 'deflate'], '10.0.0.9', 'http', '1.1', forwarding));
    assert.deepEqual(out.get('te'), ['trailers']);
    assert.equal(fields(forward(['Host', 'h', 'TE', 'gzip, trailersx'], '10.0.0.9', 'http', '1.1', forwarding)).get('te'), undefined);
  });

  test('drops the fields named in Connection, across several Connection fields and any case', () => {
    const raw = [
      'Host', 'h',
      'Connection', 'close, X-Secret',
      'x-secret', 's',
      'connection', ' keep-alive ,x-OTHER ',
      'X-Other', 'o',
      'X-Kept', 'yes',
    ];
    const out = fields(forward(raw, '10.0.0.9', 'http', '1.1', forwarding));
    assert.equal(out.has('x-secret'), false);
    assert.equal(out.has('x-other'), false);
    assert.equal(out.has('connection'), false);
    assert.deepEqual(out.get('x-kept'), ['yes']);
  });

  test('with preserveHost false sends no Host (the pool adds the backend\'s) but still X-Forwarded-Host', () => {
    const out = fields(forward(['Host', 'app.example'], '10.0.0.9', 'http', '1.1', { ...forwarding, preserveHost: false }));
    assert.equal(out.has('host'), false);
    assert.deepEqual(out.get('x-forwarded-host'), ['app.example']);
  });

  test('the validated host replaces the client\'s Host in place, and is X-Forwarded-Host and Forwarded host=', () => {
    const raw = ['Accept', '*/*', 'HOST', 'Other.Example', 'X-Kept', 'yes'];
    const out = forward(raw, '10.0.0.9', 'http', '1.1', forwarding, 'target.example:8080');
    assert.deepEqual(out.slice(0, 6), ['Accept', '*/*', 'HOST', 'target.example:8080', 'X-Kept', 'yes'], 'at the client\'s position');
    const named = fields(out);
    assert.deepEqual(named.get('host'), ['target.example:8080']);
    assert.deepEqual(named.get('x-forwarded-host'), ['target.example:8080']);
    assert.deepEqual(named.get('forwarded'), ['for=10.0.0.9;proto=http;host="target.example:8080"']);
  });

  test('a host with no Host field (HTTP/1.0 absolute-form) gets a Host line (RFC 9112 section 3.2.2)', () => {
    const out = fields(forward(['Accept', '*/*'], '10.0.0.9', 'http', '1.0', forwarding, 'target.example'));
    assert.deepEqual(out.get('host'), ['target.example']);
    assert.deepEqual(out.get('x-forwarded-host'), ['target.example']);
    const kept = fields(forward(['Accept', '*/*'], '10.0.0.9', 'http', '1.0', { ...forwarding, preserveHost: false }, 'target.example'));
    assert.equal(kept.has('host'), false, 'without preserveHost the pool sends the backend\'s');
  });

  test('no host (\'\'): no Host line, no X-Forwarded-Host, no Forwarded host=', () => {
    const out = fields(forward(['Host', '', 'Accept', '*/*'], '10.0.0.9', 'http', '1.1', forwarding, ''));
    assert.equal(out.has('host'), false);
    assert.equal(out.has('x-forwarded-host'), false);
    assert.deepEqual(out.get('forwarded'), ['for=10.0.0.9;proto=http']);
  });

  test('a second Host line, which requestHost refuses first, is kept so the pool refuses the request', () => {
    const out = forward(['Host', 'A.example', 'Host', 'b.example'], '10.0.0.9', 'http', '1.1', forwarding, 'a.example');
    assert.deepEqual(fields(out).get('host'), ['a.example', 'b.example']);
  });

  test('a client naming Host in Connection cannot remove it: Host is end to end', () => {
    const out = fields(forward(['Host', 'app.example', 'Connection', 'Host'], '10.0.0.9', 'http', '1.1', forwarding, 'app.example'));
    assert.deepEqual(out.get('host'), ['app.example']);
  });

  // A client must not be able to strip what the proxy adds by naming it in Connection: the
  // fields it lists are removed from the message *received* (RFC 9110 section 7.6.1), and the
  // proxy's own entries are added after. Same flaw as Traefik's CVE-2024-45410.
  test('a client naming X-Forwarded-* or Via in Connection cannot remove the entries we add', () => {
    const raw = ['Host', 'app.example', 'Connection', 'X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, Via', 'X-Forwarded-For', '6.6.6.6'];
    const out = fields(forward(raw, '10.0.0.9', 'http', '1.1', forwarding));
    assert.equal(lastEntry(out.get('x-forwarded-for')?.[0]), '10.0.0.9', 'our X-Forwarded-For entry');
    assert.deepEqual(out.get('x-forwarded-proto'), ['http']);
    assert.deepEqual(out.get('x-forwarded-host'), ['app.example']);
    assert.equal(lastEntry(out.get('via')?.[0]), '1.1 switchyard', 'our Via entry');
  });
});

describe('responseHeadersForClient', () => {
  test('drops hop-by-hop fields and those named in Connection, appends our Via, keeps repeated fields', () => {
    const raw = buffers([
      'Content-Type', 'text/plain',
      'Connection', 'X-Internal',
      'X-Internal', '1',
      'Keep-Alive', 'timeout=5',
      'Proxy-Authenticate', 'Basic realm="inner"',
      'Proxy-Connection', 'keep-alive',
      'Transfer-Encoding', 'chunked',
      'Trailer', 'X-Sum',
      'TE', 'trailers',
      'Upgrade', 'h2c',
      'Set-Cookie', 'a=1',
      'Set-Cookie', 'b=2',
      'Via', '1.0 inner',
    ]);
    const out = fields(responseHeadersForClient(raw, '1.1 switchyard', null, '', 'http'));
    assert.deepEqual(
      out,
      new Map([
        ['content-type', ['text/plain']],
        ['set-cookie', ['a=1', 'b=2']],
        ['via', ['1.0 inner, 1.1 switchyard']],
      ]),
    );
  });

  test('adds Via when the backend sent none', () => {
    assert.deepEqual(fields(responseHeadersForClient(buffers(['Content-Length', '0']), '1.1 switchyard', null, '', 'http')).get('via'), ['1.1 switchyard']);
  });

  // RFC 9110 section 7.6.3: a proxy MUST send Via in responses it forwards; a backend naming
  // Via in Connection removes its own Via, not the entry we add after.
  test('a backend naming Via in Connection cannot remove our Via entry', () => {
    const out = fields(responseHeadersForClient(buffers(['Connection', 'Via', 'Via', '1.0 inner', 'Content-Length', '0']), '1.1 switchyard', null, '', 'http'));
    assert.equal(lastEntry(out.get('via')?.[0]), '1.1 switchyard', 'our Via entry');
  });
});

describe('forwarding headers end to end', () => {
  let recorder: TestBackend;
  let lb: Lb;
  let lbNoHost: Lb;
  const bodies: Buffer[] = [];

  before(async () => {
    recorder = await startBackend('rec', (req, res) => {
      void readBody(req).then((body) => {
        bodies.push(body);
        res.writeHead(200, { 'content-type': 'text/plain', via: '1.0 inner' });
        res.end('ok');
      });
    });
    lb = await startLb({ backends: [recorder.url] });
    lbNoHost = await startLb({ backends: [recorder.url], preserveHost: false });
  });

  after(async () => {
    await lb.close();
    await lbNoHost.close();
    await recorder.close();
  });

  function lastSeen(): TestBackend['seen'][number] {
    const seen = recorder.seen.at(-1);
    assert.ok(seen !== undefined, 'the backend saw a request');
    return seen;
  }

  test('X-Forwarded-For gains the client, X-Forwarded-Proto is http, X-Forwarded-Host is the Host, Via is added both ways', async () => {
    const res = await request(`${lb.url}/fwd`, { headers: { host: 'app.example:8080', via: '1.0 client-proxy', 'x-forwarded-proto': 'https' } });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'ok');
    assert.equal(res.headers['via'], '1.0 inner, 1.1 switchyard');
    const { headers } = lastSeen();
    assert.equal(headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(headers['x-forwarded-proto'], 'http');
    assert.equal(headers['x-forwarded-host'], 'app.example:8080');
    assert.equal(headers['via'], '1.0 client-proxy, 1.1 switchyard');
    assert.equal(headers['host'], 'app.example:8080', 'the client\'s Host is kept by default');
  });

  test('from an untrusted peer (the default), spoofed forwarding fields are replaced by ours', async () => {
    const res = await request(`${lb.url}/`, {
      headers: {
        host: 'app.example',
        'x-forwarded-for': '1.2.3.4',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'evil.example',
        forwarded: 'for=1.2.3.4;proto=https;host=evil.example',
      },
    });
    await res.body.dump();
    const { headers, rawHeaders } = lastSeen();
    assert.equal(headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(headers['x-forwarded-proto'], 'http');
    assert.equal(headers['x-forwarded-host'], 'app.example');
    assert.equal(headers['forwarded'], 'for=127.0.0.1;proto=http;host=app.example');
    for (const name of ['x-forwarded-for', 'forwarded']) {
      assert.equal(rawHeaders.filter((_, i, a) => i % 2 === 0 && a[i]?.toLowerCase() === name).length, 1, `one ${name} field`);
    }
  });

  test('with preserveHost false the backend sees its own host:port as Host', async () => {
    const res = await request(`${lbNoHost.url}/`, { headers: { host: 'app.example' } });
    await res.body.dump();
    const { headers } = lastSeen();
    assert.equal(headers['host'], `127.0.0.1:${recorder.port}`);
    assert.equal(headers['x-forwarded-host'], 'app.example');
  });

  test('hop-by-hop request fields never reach the backend; a chunked body arrives whole', async () => {
    const port = lb.address.port;
    const response = await rawExchange(port, [
      'POST /upload HTTP/1.1\r\n' +
        'Host: app.example\r\n' +
        'Connection: close, X-Secret, TE\r\n' +
        'X-Secret: hunter2\r\n' +
        'Keep-Alive: timeout=5\r\n' +
        'Proxy-Connection: keep-alive\r\n' +
        'TE: gzip;q=0.5, Trailers\r\n' +
        'Trailer: X-Sum\r\n' +
        'Upgrade: h2c\r\n' +
        'Proxy-Authorization: Basic Zm9vOmJhcg==\r\n' +
        'X-Kept: yes\r\n' +
        'Transfer-Encoding: chunked\r\n' +
        '\r\n',
      '5\r\nhello\r\n',
      '6\r\n world\r\n',
      '0\r\nX-Sum: 1\r\n\r\n',
    ]);
    assert.equal(response.status, 200);
    assert.equal(bodies.at(-1)?.toString(), 'hello world');
    const { headers, rawHeaders } = lastSeen();
    for (const name of ['x-secret', 'keep-alive', 'proxy-connection', 'trailer', 'upgrade', 'proxy-authorization']) {
      assert.equal(headers[name], undefined, `${name} must not be forwarded`);
    }
    // TE's `trailers` member is end to end (RFC 9110 §10.1.4); the client's codings are not.
    assert.equal(headers['te'], 'trailers');
    assert.equal(headers['x-kept'], 'yes');
    // The pool frames the body itself: at most its own `chunked`, never a second coding.
    const te = rawHeaders.filter((_, i, a) => i % 2 === 1 && a[i - 1]?.toLowerCase() === 'transfer-encoding');
    assert.ok(te.length <= 1 && (te[0] === undefined || te[0] === 'chunked'), `transfer-encoding: ${JSON.stringify(te)}`);
    // Connection, if any, is the pool's own keep-alive, not the client's list.
    assert.ok(headers['connection'] === undefined || headers['connection'] === 'keep-alive', `connection: ${headers['connection']}`);
  });

  test('a client naming X-Forwarded-For in Connection still gets our entry forwarded', async () => {
    const response = await rawExchange(lb.address.port, [
      'GET / HTTP/1.1\r\nHost: app.example\r\nConnection: close, X-Forwarded-For, Via\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n',
    ]);
    assert.equal(response.status, 200);
    const { headers } = lastSeen();
    assert.equal(lastEntry(headers['x-forwarded-for']), '127.0.0.1', 'our X-Forwarded-For entry reaches the backend');
    assert.equal(lastEntry(headers['via']), '1.1 switchyard', 'our Via entry reaches the backend');
  });
});

describe('hop-by-hop response fields end to end', () => {
  test('the client never sees the backend\'s hop-by-hop fields or those it names in Connection', async (t) => {
    const backend = await startRawBackend(
      'HTTP/1.1 200 OK\r\n' +
        'Connection: X-Internal\r\n' +
        'X-Internal: 1\r\n' +
        'Keep-Alive: timeout=5\r\n' +
        'Proxy-Authenticate: Basic realm="inner"\r\n' +
        'Proxy-Connection: keep-alive\r\n' +
        'Upgrade: h2c\r\n' +
        'Trailer: X-Sum\r\n' +
        'TE: trailers\r\n' +
        'Via: 1.0 inner\r\n' +
        'X-Kept: yes',
      'ok',
    );
    t.after(() => backend.close());
    const lb = await startLb({ backends: [backend.url] });
    t.after(() => lb.close());

    const response = await rawExchange(lb.address.port, ['GET / HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n']);
    assert.equal(response.status, 200);
    assert.equal(response.body.toString(), 'ok');
    const h = response.headers;
    for (const name of ['x-internal', 'keep-alive', 'proxy-authenticate', 'proxy-connection', 'upgrade', 'trailer', 'te']) {
      assert.equal(h.get(name), undefined, `${name} must not reach the client`);
    }
    // Our own listener's Connection for this exchange, nothing of the backend's.
    assert.deepEqual(h.get('connection'), ['close']);
    assert.deepEqual(h.get('x-kept'), ['yes']);
    assert.deepEqual(h.get('via'), ['1.0 inner, 1.1 switchyard']);
  });

  test('on a kept-alive client connection only our own Keep-Alive is sent, never the backend\'s', async (t) => {
    const backend = await startRawBackend('HTTP/1.1 200 OK\r\nConnection: X-Internal\r\nX-Internal: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic', 'ok');
    t.after(() => backend.close());
    const lb = await startLb({ backends: [backend.url], clientKeepAliveMs: 7000 });
    t.after(() => lb.close());

    // Two requests on one connection: the first response is a keep-alive one.
    const response = await rawExchange(lb.address.port, [
      'GET /1 HTTP/1.1\r\nHost: app.example\r\n\r\n',
      'GET /2 HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n',
    ]);
    assert.equal(response.status, 200);
    assert.deepEqual(response.headers.get('keep-alive'), ['timeout=7'], 'our listener\'s keep-alive');
    assert.deepEqual(response.headers.get('connection'), ['keep-alive']);
    const everything = response.body.toString('latin1');
    assert.doesNotMatch(everything, /x-internal|proxy-authenticate|timeout=5/i, 'nothing of the backend\'s hop-by-hop fields in the second response');
    assert.equal(backend.heads.length, 2);
  });

  test('a chunked backend response with a Trailer field reaches the client whole, re-framed', async (t) => {
    const server = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => {
        socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => closeServer(server));
    const lb = await startLb({ backends: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`] });
    t.after(() => lb.close());

    const res = await request(`${lb.url}/`);
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'abcde');
    assert.equal(res.headers['trailer'], undefined);
  });
});

describe('forwarding fields from a trusted proxy, end to end', () => {
  let recorder: TestBackend;
  let lb: Lb;

  before(async () => {
    recorder = await startBackend('rec');
    lb = await startLb({ backends: [recorder.url], trustedProxies: ['10.1.0.0/16', '127.0.0.1/8'] });
  });

  after(async () => {
    await lb.close();
    await recorder.close();
  });

  function lastSeen(): TestBackend['seen'][number] {
    const seen = recorder.seen.at(-1);
    assert.ok(seen !== undefined, 'the backend saw a request');
    return seen;
  }

  test('X-Forwarded-For and Forwarded are kept and appended to, X-Forwarded-Proto/Host kept as sent', async () => {
    const res = await request(`${lb.url}/`, {
      headers: {
        host: 'inner.example:8080',
        'x-forwarded-for': '203.0.113.7, 10.1.2.3',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'www.example',
        forwarded: 'for=203.0.113.7;proto=https;host=www.example, for="[2001:db8::9]"',
      },
    });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    const { headers, rawHeaders } = lastSeen();
    assert.equal(headers['x-forwarded-for'], '203.0.113.7, 10.1.2.3, 127.0.0.1');
    assert.equal(headers['x-forwarded-proto'], 'https');
    assert.equal(headers['x-forwarded-host'], 'www.example');
    // RFC 7239 section 4: our element is a new comma-separated one; a host with a port is quoted.
    assert.equal(headers['forwarded'], 'for=203.0.113.7;proto=https;host=www.example, for="[2001:db8::9]", for=127.0.0.1;proto=http;host="inner.example:8080"');
    for (const name of ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded']) {
      assert.equal(rawHeaders.filter((_, i, a) => i % 2 === 0 && a[i]?.toLowerCase() === name).length, 1, `one ${name} field`);
    }
  });

  test('without forwarding fields from the trusted peer, ours are the only entries', async () => {
    const res = await request(`${lb.url}/`, { headers: { host: 'app.example' } });
    await res.body.dump();
    const { headers } = lastSeen();
    assert.equal(headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(headers['x-forwarded-proto'], 'http');
    assert.equal(headers['x-forwarded-host'], 'app.example');
    assert.equal(headers['forwarded'], 'for=127.0.0.1;proto=http;host=app.example');
  });

  test('a trusted peer naming the forwarding fields in Connection drops its own entries, never ours', async () => {
    const response = await rawExchange(lb.address.port, [
      'GET / HTTP/1.1\r\nHost: app.example\r\nConnection: close, X-Forwarded-For, Forwarded, X-Forwarded-Proto\r\n' +
        'X-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Forwarded-Proto: https\r\n\r\n',
    ]);
    assert.equal(response.status, 200);
    const { headers } = lastSeen();
    assert.equal(headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(headers['forwarded'], 'for=127.0.0.1;proto=http;host=app.example');
    assert.equal(headers['x-forwarded-proto'], 'http');
  });
});

describe('X-Forwarded-For across attempts', () => {
  /**
   * A listener that passes the load balancer's start-up health check, then is closed so every
   * attempt on it is refused while the load balancer still believes it is up.
   */
  async function dyingPort(): Promise<{ url: string; kill(): Promise<void> }> {
    const server = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, kill: () => closeServer(server) };
  }

  for (const clientXff of [undefined, '1.2.3.4']) {
    test(`is appended once when the request moved backends after retries (client XFF: ${clientXff ?? 'none'})`, async (t) => {
      const dead = await dyingPort();
      t.after(() => dead.kill());
      const live = await startBackend('live');
      t.after(() => live.close());
      const lb = await startLb({ backends: [dead.url, live.url], retry: { retryDelayMs: 1 }, trustedProxies: ['127.0.0.1'] });
      t.after(() => lb.close());
      await dead.kill();

      const headers: Record<string, string> = clientXff === undefined ? {} : { 'x-forwarded-for': clientXff };
      const res = await request(`${lb.url}/`, { headers });
      assert.equal(res.statusCode, 200);
      assert.equal(await res.body.text(), 'live');
      const deadBackend = lb.upstream.backends[0];
      assert.equal(deadBackend?.failuresTotal, 4, 'one attempt and 3 retries on the dead backend');
      assert.equal(deadBackend?.available, false);
      assert.equal(live.seen.length, 1);
      assert.equal(live.seen[0]?.headers['x-forwarded-for'], clientXff === undefined ? '127.0.0.1' : `${clientXff}, 127.0.0.1`);
    });
  }
});
