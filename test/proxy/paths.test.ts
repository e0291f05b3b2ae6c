import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { originFormTarget } from '../../src/proxy/request-target.js';
import { rawExchange } from '../helpers/raw.js';
import { startBackend, startLb, type TestBackend } from '../helpers/servers.js';

type Lb = Awaited<ReturnType<typeof startLb>>;

describe('originFormTarget', () => {
  const cases: [string, string | null][] = [
    ['/x?q=1', '/x?q=1'],
    ['/', '/'],
    ['http://other.example/y?z', '/y?z'],
    ['HTTP://other.example:8080/y', '/y'],
    ['https://other.example', '/'],
    ['http://other.example?z=1', '/?z=1'],
    ['*', null],
    ['ftp://other.example/y', null],
    ['other.example:443', null],
    ['y', null],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input)} → ${JSON.stringify(expected)}`, () => {
      assert.equal(originFormTarget(input), expected);
    });
  }
});

describe('backend URL path is a prefix', () => {
  let backend: TestBackend;
  let lbBase: Lb;
  let lbBaseSlash: Lb;
  let lbRoot: Lb;

  before(async () => {
    backend = await startBackend('paths');
    lbBase = await startLb({ backends: [`${backend.url}/base`] });
    lbBaseSlash = await startLb({ backends: [`${backend.url}/base/`] });
    lbRoot = await startLb({ backends: [backend.url] });
  });

  after(async () => {
    await Promise.all([lbBase.close(), lbBaseSlash.close(), lbRoot.close()]);
    await backend.close();
  });

  /** Sends `path` through `lb` (as sent: a raw socket, no URL parsing) and returns the request target the backend saw. */
  async function seenPath(lb: Lb, path: string): Promise<string> {
    const before = backend.seen.length;
    const res = await rawExchange(lb.address.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    assert.equal(res.status, 200, res.head);
    assert.equal(backend.seen.length, before + 1, 'one request reached the backend');
    return backend.seen.at(-1)?.url ?? '';
  }

  test('/base + /x?q=1 → /base/x?q=1', async () => {
    assert.equal(await seenPath(lbBase, '/x?q=1'), '/base/x?q=1');
  });

  test('a trailing slash on the base changes nothing: /base/ + /x?q=1 → /base/x?q=1', async () => {
    assert.equal(await seenPath(lbBaseSlash, '/x?q=1'), '/base/x?q=1');
  });

  test('the root request / → /base/ (with or without the trailing slash on the base)', async () => {
    assert.equal(await seenPath(lbBase, '/'), '/base/');
    assert.equal(await seenPath(lbBaseSlash, '/'), '/base/');
  });

  test('a query on the root request → /base/?a=b', async () => {
    assert.equal(await seenPath(lbBase, '/?a=b'), '/base/?a=b');
  });

  // Issue 9: the path is normalised (test/hostile/paths.test.ts has the hostile forms); escapes
  // of reserved characters and the query pass through untouched.
  test('the path arrives in normal form, the query as sent', async () => {
    assert.equal(await seenPath(lbBase, '/a%20b/%3f/%7ec?x=%26&y=/../%2F'), '/base/a%20b/%3F/~c?x=%26&y=/../%2F');
    assert.equal(await seenPath(lbRoot, '/a//c/./d/../e'), '/a/c/e');
  });

  test('without a base the target is forwarded as is', async () => {
    assert.equal(await seenPath(lbRoot, '/x?q=1'), '/x?q=1');
    assert.equal(await seenPath(lbRoot, '/'), '/');
  });

  test('an absolute-form target goes to our backend as origin-form, never to the host it names', async () => {
    for (const [lb, expected] of [
      [lbRoot, '/y?z'],
      [lbBase, '/base/y?z'],
    ] as const) {
      const before = backend.seen.length;
      const response = await rawExchange(lb.address.port, 'GET http://other.example/y?z HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n');
      assert.equal(response.status, 200, response.head);
      assert.match(response.body.toString('latin1'), /\bpaths\b/, 'answered by our backend');
      assert.equal(backend.seen.length, before + 1);
      assert.equal(backend.seen.at(-1)?.url, expected);
    }
  });

  test('an absolute-form target without a path → / (or the base)', async () => {
    const response = await rawExchange(lbBase.address.port, 'GET http://other.example HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n');
    assert.equal(response.status, 200, response.head);
    assert.equal(backend.seen.at(-1)?.url, '/base/');
  });

  for (const target of ['*', 'ftp://other.example/y']) {
    test(`a target that is neither origin- nor absolute-form (${target}) gets 400 and reaches no backend`, async () => {
      const before = backend.seen.length;
      const response = await rawExchange(lbBase.address.port, `OPTIONS ${target} HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n`);
      assert.equal(response.status, 400, response.head);
      assert.equal(response.body.toString('latin1'), 'Bad Request\n');
      assert.match(response.head, /^content-type: text\/plain/im);
      assert.equal(backend.seen.length, before);
    });
  }
});
