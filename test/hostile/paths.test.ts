import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ConfigInput } from '../../src/index.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { rawExchange } from '../helpers/raw.js';
import { startBackend, startLb, type TestBackend } from '../helpers/servers.js';

// Issue 9, section 3: paths must not slip past base paths and routes. Every request goes out on a
// raw socket, so no client library normalises it first, and the backends say what they received.

type Lb = { readonly address: { readonly port: number }; close(): Promise<void> };

/** What one request came to: the status, and the targets each backend received for it. */
async function send(lb: Lb, target: string, backends: readonly TestBackend[]): Promise<{ status: number; seen: string[][] }> {
  const before = backends.map((b) => b.seen.length);
  const response = await rawExchange(lb.address.port, `GET ${target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
  return { status: response.status, seen: backends.map((b, i) => b.seen.slice(before[i]).map((r) => r.url)) };
}

/** [request target, status, what the backend received (none for a refused request)] */
type BaseCase = readonly [target: string, status: number, received?: string];

const routesConfig = (files: TestBackend, deny: TestBackend, ambiguousPaths: 'reject' | 'keep'): ConfigInput =>
  localConfig(
    { files: { backends: [files.url] }, deny: { backends: [deny.url] } },
    {
      listeners: [{ host: '127.0.0.1', port: 0, ambiguousPaths }],
      routes: [
        { pathPrefix: '/secret/', upstream: 'deny' },
        { upstream: 'files' },
      ],
    },
  );

describe('hostile paths', () => {
  let files: TestBackend;
  let deny: TestBackend;
  let base: Lb;
  let baseKeep: Lb;
  let routes: Lb;
  let routesKeep: Lb;

  before(async () => {
    files = await startBackend('files');
    deny = await startBackend('deny', (req, res) => {
      req.resume();
      res.writeHead(403, { 'content-type': 'text/plain' }).end('denied');
    });
    base = await startLb({ backends: [`${files.url}/base/`] });
    baseKeep = await startLb({ backends: [`${files.url}/base/`], ambiguousPaths: 'keep' });
    routes = await startConfigured({ config: routesConfig(files, deny, 'reject') });
    routesKeep = await startConfigured({ config: routesConfig(files, deny, 'keep') });
  });

  after(async () => {
    await Promise.all([base, baseKeep, routes, routesKeep].map((lb) => lb?.close()));
    await Promise.all([files?.close(), deny?.close()]);
  });

  describe('a backend with a base path receives the normal path under it, never above it', () => {
    const cases: readonly BaseCase[] = [
      ['/../secret/s.txt', 400],
      ['/%2e%2e/secret/s.txt', 400],
      ['/%2E%2E/secret/s.txt', 400],
      ['/.%2e/secret/s.txt', 400],
      ['/..%2fsecret/s.txt', 400],
      ['/..%5csecret/s.txt', 400],
      ['/..\\secret/s.txt', 400],
      ['/a/../../secret/s.txt', 400],
      ['/a/b/../../..', 400],
      ['/%zz/s.txt', 400],
      ['/%4', 400],
      ['http://a/../secret/s.txt', 400],
      ['/a/../secret/s.txt', 200, '/base/secret/s.txt'],
      ['/a/./b/../../secret/./s.txt', 200, '/base/secret/s.txt'],
      ['/%73ecret/s.txt', 200, '/base/secret/s.txt'],
      ['//secret//s.txt', 200, '/base/secret/s.txt'],
      ['/a/..', 200, '/base/'],
      ['/%252e%252e/s.txt', 200, '/base/%252e%252e/s.txt'],
      ['/s.txt?x=/../%2e%2e&y=%2F', 200, '/base/s.txt?x=/../%2e%2e&y=%2F'],
      ['http://a/x/../s.txt?q', 200, '/base/s.txt?q'],
    ];
    for (const [target, status, received] of cases) {
      test(`${target} → ${status}${received === undefined ? '' : ` and the backend receives ${received}`}`, async () => {
        const result = await send(base, target, [files]);
        assert.equal(result.status, status);
        assert.deepEqual(result.seen, [received === undefined ? [] : [received]]);
      });
    }
  });

  describe('routes match the normal path: /secret/ cannot be reached past its route', () => {
    const cases: readonly (readonly [target: string, status: number, files: string[], deny: string[]])[] = [
      ['/base/../secret/s.txt', 403, [], ['/secret/s.txt']],
      ['/%73ecret/s.txt', 403, [], ['/secret/s.txt']],
      ['/%73%65%63%72%65%74/s.txt', 403, [], ['/secret/s.txt']],
      ['//secret/s.txt', 403, [], ['/secret/s.txt']],
      ['/./secret/s.txt', 403, [], ['/secret/s.txt']],
      ['/public//../secret/s.txt', 403, [], ['/secret/s.txt']],
      ['/public/%2e%2e/secret/s.txt', 400, [], []],
      ['/public/..%2fsecret/s.txt', 400, [], []],
      ['/secret%2fs.txt', 400, [], []],
      ['/public/..\\secret\\s.txt', 400, [], []],
      ['/secret/../public/p.txt', 200, ['/public/p.txt'], []],
      ['/public/p.txt', 200, ['/public/p.txt'], []],
    ];
    for (const [target, status, seenByFiles, seenByDeny] of cases) {
      test(`${target} → ${status}`, async () => {
        const result = await send(routes, target, [files, deny]);
        assert.equal(result.status, status);
        assert.deepEqual(result.seen, [seenByFiles, seenByDeny]);
      });
    }
  });

  describe('ambiguousPaths: keep forwards ambiguous forms as sent, still under the base path and the route', () => {
    const baseCases: readonly BaseCase[] = [
      ['/a%2fb', 200, '/base/a%2Fb'],
      ['/a%5Cb', 200, '/base/a%5Cb'],
      ['/a\\b', 200, '/base/a\\b'],
      ['/x/%2e%2e/y', 200, '/base/x/%2E%2E/y'],
      ['/x/.%2e/y', 200, '/base/x/.%2E/y'],
      ['/%73ecret/a/../s.txt', 200, '/base/secret/s.txt'],
      // Read decoded, each of these climbs above the base path.
      ['/%2e%2e/secret/s.txt', 400],
      ['/..%2fsecret/s.txt', 400],
      ['/x\\..\\..\\secret', 400],
      ['/../secret/s.txt', 400],
      ['/%zz', 400],
    ];
    for (const [target, status, received] of baseCases) {
      test(`base path: ${target} → ${status}${received === undefined ? '' : ` and the backend receives ${received}`}`, async () => {
        const result = await send(baseKeep, target, [files]);
        assert.equal(result.status, status);
        assert.deepEqual(result.seen, [received === undefined ? [] : [received]]);
      });
    }

    const routeCases: readonly (readonly [target: string, status: number, files: string[], deny: string[]])[] = [
      ['/public/a%2Fb', 200, ['/public/a%2Fb'], []],
      ['/secret/a%2Fb', 403, [], ['/secret/a%2Fb']],
      // As sent and read decoded, these match different routes: refused either way.
      ['/public/..%2fsecret/s.txt', 400, [], []],
      ['/public/%2e%2e/secret/s.txt', 400, [], []],
      ['/secret%2fs.txt', 400, [], []],
      ['/secret/%2e%2e/public/p.txt', 400, [], []],
      ['/base/../secret/s.txt', 403, [], ['/secret/s.txt']],
    ];
    for (const [target, status, seenByFiles, seenByDeny] of routeCases) {
      test(`routes: ${target} → ${status}`, async () => {
        const result = await send(routesKeep, target, [files, deny]);
        assert.equal(result.status, status);
        assert.deepEqual(result.seen, [seenByFiles, seenByDeny]);
      });
    }
  });
});
