import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { rawExchange } from '../helpers/raw.js';
import { startBackend, startLb, type TestBackend } from '../helpers/servers.js';

type Lb = Awaited<ReturnType<typeof startLb>>;

const C = 'Connection: close\r\n';

// Issue 10 section 2: a Host that is not `uri-host [ ":" port ]` (RFC 9110 section 7.2, RFC 3986
// section 3.2.2), a missing Host on HTTP/1.1 or a second Host line gets 400 (RFC 9112 section 3.2),
// and so does an absolute-form target whose authority breaks the same rules (section 3.2.2).
const refused: readonly (readonly [string, string])[] = [
  ['a path in Host', `GET / HTTP/1.1\r\nHost: a.example/x\r\n${C}\r\n`],
  ['userinfo in Host', `GET / HTTP/1.1\r\nHost: u@a.example\r\n${C}\r\n`],
  ['userinfo and password in Host', `GET / HTTP/1.1\r\nHost: u:p@a.example\r\n${C}\r\n`],
  ['a space inside Host', `GET / HTTP/1.1\r\nHost: a .example\r\n${C}\r\n`],
  ['a tab inside Host', `GET / HTTP/1.1\r\nHost: a\t.example\r\n${C}\r\n`],
  ['two names in one Host', `GET / HTTP/1.1\r\nHost: a.example b.example\r\n${C}\r\n`],
  ['a port above 65535', `GET / HTTP/1.1\r\nHost: a.example:65536\r\n${C}\r\n`],
  ['a port that overflows', `GET / HTTP/1.1\r\nHost: a.example:18446744073709551697\r\n${C}\r\n`],
  ['a non-numeric port', `GET / HTTP/1.1\r\nHost: a.example:http\r\n${C}\r\n`],
  ['a negative port', `GET / HTTP/1.1\r\nHost: a.example:-1\r\n${C}\r\n`],
  ['two ports', `GET / HTTP/1.1\r\nHost: a.example:80:81\r\n${C}\r\n`],
  ['a port without a host', `GET / HTTP/1.1\r\nHost: :80\r\n${C}\r\n`],
  ['a double quote in Host', `GET / HTTP/1.1\r\nHost: a"b.example\r\n${C}\r\n`],
  ['angle brackets in Host', `GET / HTTP/1.1\r\nHost: <a.example>\r\n${C}\r\n`],
  ['a backslash in Host', `GET / HTTP/1.1\r\nHost: a\\b.example\r\n${C}\r\n`],
  ['braces in Host', `GET / HTTP/1.1\r\nHost: {a}.example\r\n${C}\r\n`],
  ['a non-ASCII byte in Host', `GET / HTTP/1.1\r\nHost: ex\xe4mple.com\r\n${C}\r\n`],
  ['a bad percent-encoding in Host', `GET / HTTP/1.1\r\nHost: a%zz.example\r\n${C}\r\n`],
  ['an unclosed IPv6 literal', `GET / HTTP/1.1\r\nHost: [::1\r\n${C}\r\n`],
  ['an IPv6 literal with two elisions', `GET / HTTP/1.1\r\nHost: [1::2::3]:80\r\n${C}\r\n`],
  ['an IPv6 literal with a zone id', `GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n${C}\r\n`],
  ['IPv6 without brackets', `GET / HTTP/1.1\r\nHost: ::1\r\n${C}\r\n`],
  ['only a dot', `GET / HTTP/1.1\r\nHost: .\r\n${C}\r\n`],
  ['missing Host on HTTP/1.1', `GET / HTTP/1.1\r\n${C}\r\n`],
  ['two different Host lines', `GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n${C}\r\n`],
  ['two identical Host lines', `GET / HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n${C}\r\n`],
  ['two Host lines in different cases', `GET / HTTP/1.1\r\nHost: a.example\r\nhOST: a.example\r\n${C}\r\n`],
  ['a second, empty Host line', `GET / HTTP/1.1\r\nHost: a.example\r\nHost:\r\n${C}\r\n`],
  ['two Host lines on HTTP/1.0', 'GET / HTTP/1.0\r\nHost: a.example\r\nHost: b.example\r\n\r\n'],
  ['an invalid Host on HTTP/1.0', 'GET / HTTP/1.0\r\nHost: u@a.example\r\n\r\n'],
  ['absolute-form with userinfo', `GET http://u@a.example/ HTTP/1.1\r\nHost: a.example\r\n${C}\r\n`],
  ['absolute-form with userinfo and password', `GET http://u:p@a.example/x HTTP/1.1\r\nHost: a.example\r\n${C}\r\n`],
  ['absolute-form with a port above 65535', `GET http://a.example:70000/ HTTP/1.1\r\nHost: a.example\r\n${C}\r\n`],
  ['absolute-form with a non-numeric port', `GET http://a.example:x/ HTTP/1.1\r\nHost: a.example\r\n${C}\r\n`],
  ['absolute-form with an empty host', `GET http:///x HTTP/1.1\r\nHost: a.example\r\n${C}\r\n`],
  ['absolute-form with only a port', `GET http://:80/x HTTP/1.1\r\nHost: a.example\r\n${C}\r\n`],
  ['absolute-form with a bad IPv6 literal', `GET http://[::1/ HTTP/1.1\r\nHost: a.example\r\n${C}\r\n`],
  ['absolute-form with an invalid Host field', `GET http://a.example/ HTTP/1.1\r\nHost: u@a.example\r\n${C}\r\n`],
  ['absolute-form without Host on HTTP/1.1', `GET http://a.example/ HTTP/1.1\r\n${C}\r\n`],
];

describe('requests with an invalid host get 400 and reach no backend', () => {
  let backend: TestBackend;
  let lb: Lb;
  before(async () => {
    backend = await startBackend('untouched');
    lb = await startLb({ backends: [backend.url] });
  });
  after(async () => {
    await lb.close();
    await backend.close();
  });

  for (const [name, bytes] of refused) {
    test(`${name} → 400`, async () => {
      const res = await rawExchange(lb.address.port, [Buffer.from(bytes, 'latin1')]);
      assert.equal(res.status, 400, res.head);
      assert.equal(backend.seen.length, 0, 'the backend saw nothing');
    });
  }
});

describe('a valid host reaches the backend lower-cased, as Host and X-Forwarded-Host', () => {
  let backend: TestBackend;
  let lb: Lb;
  before(async () => {
    backend = await startBackend('b1');
    lb = await startLb({ backends: [backend.url] });
  });
  after(async () => {
    await lb.close();
    await backend.close();
  });

  /** Sends `bytes`, expects 200, and returns what the backend saw of it. */
  async function forwarded(bytes: string): Promise<TestBackend['seen'][number]> {
    const before = backend.seen.length;
    const res = await rawExchange(lb.address.port, [Buffer.from(bytes, 'latin1')]);
    assert.equal(res.status, 200, res.head);
    assert.equal(backend.seen.length, before + 1, 'forwarded once');
    return backend.seen.at(-1) as TestBackend['seen'][number];
  }

  const cases: readonly (readonly [string, string, string])[] = [
    ['an upper-case name and a port', `GET / HTTP/1.1\r\nHost: Example.COM:8080\r\n${C}\r\n`, 'example.com:8080'],
    ['a trailing dot, dropped', `GET / HTTP/1.1\r\nHost: Example.com.\r\n${C}\r\n`, 'example.com'],
    ['an empty port, dropped', `GET / HTTP/1.1\r\nHost: example.com:\r\n${C}\r\n`, 'example.com'],
    ['an IPv6 literal with a port', `GET / HTTP/1.1\r\nHost: [2001:DB8::1]:3030\r\n${C}\r\n`, '[2001:db8::1]:3030'],
    ['an IPv4 address with a port', `GET / HTTP/1.1\r\nHost: 127.0.0.1:3030\r\n${C}\r\n`, '127.0.0.1:3030'],
    ['the absolute-form authority over Host', `GET http://Target.Example:8080/x HTTP/1.1\r\nHost: other.example\r\n${C}\r\n`, 'target.example:8080'],
    ['the absolute-form authority on HTTP/1.0 without Host', 'GET http://Target.Example/x HTTP/1.0\r\n\r\n', 'target.example'],
  ];
  for (const [name, bytes, host] of cases) {
    test(`${name} → ${host}`, async () => {
      const seen = await forwarded(bytes);
      assert.equal(seen.headers.host, host, 'Host');
      assert.equal(seen.headers['x-forwarded-host'], host, 'X-Forwarded-Host');
      assert.match(String(seen.headers.forwarded), new RegExp(`;host="?${host.replace(/[.[\]]/g, '\\$&')}"?$`), 'Forwarded host=');
      assert.equal(seen.rawHeaders.filter((_, i) => i % 2 === 0 && seen.rawHeaders[i]?.toLowerCase() === 'host').length, 1, 'one Host line');
    });
  }

  test('the absolute-form target reaches the backend as origin-form', async () => {
    const seen = await forwarded(`GET http://target.example/x?y=1 HTTP/1.1\r\nHost: other.example\r\n${C}\r\n`);
    assert.equal(seen.url, '/x?y=1');
  });

  test('HTTP/1.0 without Host is served, with no X-Forwarded-Host', async () => {
    const seen = await forwarded('GET / HTTP/1.0\r\n\r\n');
    assert.equal(seen.headers.host, `127.0.0.1:${backend.port}`, "the pool's own Host");
    assert.equal(seen.headers['x-forwarded-host'], undefined);
    assert.doesNotMatch(String(seen.headers.forwarded), /host=/);
  });

  test('an empty Host on HTTP/1.1 is valid (RFC 9110 section 7.2) and names no host', async () => {
    const seen = await forwarded(`GET / HTTP/1.1\r\nHost:\r\n${C}\r\n`);
    assert.equal(seen.headers['x-forwarded-host'], undefined);
  });
});

describe('routing by host reads the validated host', () => {
  test('case, trailing dot, port and an absolute-form authority all route by the one host', async (t) => {
    const cleanup = cleanupFor(t);
    const [app, dot, other] = await Promise.all(['app', 'dot', 'other'].map((name) => startBackend(name)));
    for (const b of [app, dot, other]) cleanup(() => b?.close());
    const lb = await startConfigured({
      config: localConfig(
        { app: { backends: [app!.url] }, dot: { backends: [dot!.url] }, other: { backends: [other!.url] } },
        {
          routes: [
            { host: 'app.example', upstream: 'app' },
            // A route written with a trailing dot matches the name without one, and the reverse.
            { host: 'Dot.Example.', upstream: 'dot' },
            { upstream: 'other' },
          ],
        },
      ),
    });
    cleanup(() => lb.close());
    const port = Number(new URL(lb.url).port);
    const servedBy = async (head: string): Promise<string> => {
      const res = await rawExchange(port, `${head}\r\n\r\n`);
      assert.equal(res.status, 200, res.head);
      return res.headers.get('x-backend')?.[0] ?? '';
    };
    assert.equal(await servedBy(`GET / HTTP/1.1\r\nHost: APP.example\r\n${C}`), 'app');
    assert.equal(await servedBy(`GET / HTTP/1.1\r\nHost: app.example.\r\n${C}`), 'app');
    assert.equal(await servedBy(`GET / HTTP/1.1\r\nHost: app.example:8080\r\n${C}`), 'app');
    assert.equal(await servedBy(`GET / HTTP/1.1\r\nHost: dot.example\r\n${C}`), 'dot');
    assert.equal(await servedBy(`GET / HTTP/1.1\r\nHost: dot.example.:80\r\n${C}`), 'dot');
    assert.equal(await servedBy(`GET http://App.Example/ HTTP/1.1\r\nHost: other.example\r\n${C}`), 'app', 'the target authority, not Host');
    assert.equal(await servedBy(`GET http://other.example/ HTTP/1.1\r\nHost: app.example\r\n${C}`), 'other', 'the target authority, not Host');
    assert.equal(await servedBy('GET / HTTP/1.0'), 'other', 'no Host matches only routes for any host');
    assert.equal(await servedBy(`GET / HTTP/1.1\r\nHost:\r\n${C}`), 'other', 'an empty Host matches only routes for any host');
    const refusedBefore = app!.seen.length + dot!.seen.length + other!.seen.length;
    const res = await rawExchange(port, `GET / HTTP/1.1\r\nHost: app.example\r\nHost: app.example\r\n${C}\r\n`);
    assert.equal(res.status, 400, res.head);
    assert.equal(app!.seen.length + dot!.seen.length + other!.seen.length, refusedBefore, 'no backend saw the refused request');
  });
});
