import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { KubernetesSource, type KubernetesDeps, type KubernetesOptions } from '../../src/discovery/kubernetes.js';
import type { DiscoveredBackend, DiscoverySink } from '../../src/discovery/source.js';
import { ConfigError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startKubeApi, type KubeApi, type KubeApiOptions, type SeenRequest, type SliceSpec } from '../helpers/kube-api.js';
import { ManualClock, type ManualTimer } from '../helpers/health.js';
import { makeCa, type IssuedCert, type TestCa } from '../helpers/tls.js';

const logger = createLogger({ level: 'silent' });

/** A sink that records what it is told and lets a test await a condition on it, bounded. */
class RecordingSink implements DiscoverySink {
  readonly updates: DiscoveredBackend[][] = [];
  readonly errors: Error[] = [];
  private waiters: (() => void)[] = [];

  update(backends: readonly DiscoveredBackend[]): void {
    this.updates.push([...backends]);
    this.poke();
  }

  error(err: Error): void {
    this.errors.push(err);
    this.poke();
  }

  get last(): DiscoveredBackend[] | undefined {
    return this.updates.at(-1);
  }

  /** Resolves when `check()` holds, checked after every update and error; fails after `ms`. */
  until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; last update ${JSON.stringify(this.last)}, errors ${this.errors.map((e) => e.message).join(' | ')}`));
      }, ms);
      const waiter = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve();
      };
      this.waiters.push(waiter);
    });
  }

  /** Resolves when the last update is exactly `urls` (a `~` suffix marks a terminating backend). */
  untilSet(urls: readonly string[], ms?: number): Promise<void> {
    return this.until(`the set ${urls.join(' ')}`, () => this.last !== undefined && sameSet(this.last, urls), ms);
  }

  private poke(): void {
    for (const w of [...this.waiters]) w();
  }
}

function sameSet(backends: readonly DiscoveredBackend[], urls: readonly string[]): boolean {
  const got = backends.map((b) => `${b.url}${b.terminating ? '~' : ''}`).sort();
  return JSON.stringify(got) === JSON.stringify([...urls].sort());
}

/** A clock whose timers fire only by hand, and that lets a test await a timer being set. */
class AwaitableClock extends ManualClock {
  private waiters: (() => void)[] = [];

  override setTimeout(fn: () => void, ms: number): ManualTimer {
    const timer = super.setTimeout(fn, ms) as ManualTimer;
    for (const w of [...this.waiters]) w();
    return timer;
  }

  /** Resolves with the first pending timer whose delay `check` accepts; fails after `ms`. */
  untilTimer(what: string, check: (delayMs: number) => boolean, ms = 10_000): Promise<ManualTimer> {
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        const timer = this.pending().find((p) => check(p.ms));
        if (timer === undefined) return;
        clearTimeout(deadline);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(timer);
      };
      const deadline = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      this.waiters.push(waiter);
      waiter();
    });
  }
}

/** Resolves when the stand-in has answered a request that `check` accepts, from request number `from` on; fails after `ms`. */
function untilRequest(api: KubeApi, what: string, check: (r: SeenRequest) => boolean, from = 0, ms = 10_000): Promise<SeenRequest> {
  const seen = api.requests.slice(from).find(check);
  if (seen !== undefined) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      api.events.off('request', listener);
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    const listener = (r: SeenRequest): void => {
      if (!check(r)) return;
      clearTimeout(timer);
      api.events.off('request', listener);
      resolve(r);
    };
    api.events.on('request', listener);
  });
}

/** Resolves when no watch is open on the stand-in; fails after `ms`. */
function untilNoWatch(api: KubeApi, ms = 10_000): Promise<void> {
  if (api.watchCount === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      api.events.off('watchEnd', listener);
      reject(new Error(`timed out after ${ms} ms waiting for the watches to close (${api.watchCount} open)`));
    }, ms);
    const listener = (): void => {
      if (api.watchCount !== 0) return;
      clearTimeout(timer);
      api.events.off('watchEnd', listener);
      resolve();
    };
    api.events.on('watchEnd', listener);
  });
}

const lists = (api: KubeApi): SeenRequest[] => api.requests.filter((r) => !r.watch && r.status === 200);

function slice(name: string, addresses: readonly string[], extra: Partial<SliceSpec> = {}): SliceSpec {
  return { name, service: 'web', endpoints: addresses.map((a) => ({ addresses: [a] })), ports: [{ name: 'http', port: 8080 }], ...extra };
}

let ca: TestCa;
let serverCert: IssuedCert;
let scratch: string;

before(async () => {
  ca = await makeCa('Kubernetes Test CA');
  serverCert = await ca.issue('kube-apiserver', ['DNS:localhost', 'IP:127.0.0.1']);
  scratch = await mkdtemp(path.join(tmpdir(), 'swy-k8s-'));
});

after(async () => {
  await ca.remove();
  await rm(scratch, { recursive: true, force: true });
});

let fileSerial = 0;

interface Stand {
  readonly api: KubeApi;
  readonly sink: RecordingSink;
  readonly source: KubernetesSource;
  readonly tokenFile: string;
}

/** A TLS stand-in with a token, and a started source pointed at it with the CA and the token file. */
async function stand(t: TestContext, setup: (api: KubeApi) => void, options: Partial<KubernetesOptions> = {}, deps: Partial<KubernetesDeps> = {}, apiOptions: KubeApiOptions = {}): Promise<Stand> {
  const cleanup = cleanupFor(t);
  const tokenFile = path.join(scratch, `token-${++fileSerial}`);
  await writeFile(tokenFile, 'token-one\n');
  const api = await startKubeApi({ token: 'token-one', tls: serverCert, bookmarkIntervalMs: 200, ...apiOptions });
  cleanup(() => api.close());
  setup(api);
  const source = new KubernetesSource(
    { service: 'web', namespace: 'default', apiServer: api.url, tokenFile, caFile: ca.caFile, ...options },
    { logger, backoffMs: { initial: 20, max: 200 }, ...deps },
  );
  const sink = new RecordingSink();
  source.start(sink);
  cleanup(() => source.stop());
  return { api, sink, source, tokenFile };
}

describe('KubernetesSource against the stand-in API server', () => {
  test('the initial list: ready endpoints of the service, by port name, IPv6 in brackets, https by appProtocol', async (t) => {
    const { api, sink } = await stand(t, (api) => {
      api.applySlice({
        name: 'web-a',
        service: 'web',
        endpoints: [{ addresses: ['10.0.0.1'] }, { addresses: ['10.0.0.2'], ready: false }, { addresses: ['10.0.0.3'], ready: false, terminating: true }],
        ports: [{ name: 'metrics', port: 9090 }, { name: 'http', port: 8080 }],
      });
      api.applySlice({ name: 'web-b', service: 'web', addressType: 'IPv6', endpoints: [{ addresses: ['fd00::7'] }], ports: [{ name: 'http', port: 8443, appProtocol: 'https' }] });
      api.applySlice({ name: 'other-a', service: 'other', endpoints: [{ addresses: ['10.9.9.9'] }], ports: [{ name: 'http', port: 8080 }] });
      api.applySlice({ name: 'web-c', service: 'web', namespace: 'elsewhere', endpoints: [{ addresses: ['10.8.8.8'] }], ports: [{ name: 'http', port: 8080 }] });
    }, { port: 'http' });
    await sink.untilSet(['http://10.0.0.1:8080', 'http://10.0.0.3:8080~', 'https://[fd00::7]:8443']);
    assert.deepEqual(sink.last?.map((b) => b.weight), [1, 1, 1]);
    const first = api.requests[0];
    assert.equal(first?.path, '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dweb');
    assert.equal(first?.authorization, 'Bearer token-one');
    const watch = await untilRequest(api, 'the watch', (r) => r.watch);
    assert.match(watch.path, new RegExp(`&watch=1&allowWatchBookmarks=true&resourceVersion=${api.resourceVersion}&timeoutSeconds=\\d+$`));
    assert.deepEqual(sink.errors, []);
  });

  test('scale up, scale down, an endpoint turning not-ready, terminating, scaled to zero', async (t) => {
    const { api, sink } = await stand(t, (api) => api.applySlice(slice('web-a', ['10.0.0.1'])));
    await sink.untilSet(['http://10.0.0.1:8080']);
    await untilRequest(api, 'the watch', (r) => r.watch);

    api.applySlice(slice('web-a', ['10.0.0.1', '10.0.0.2']));
    api.applySlice(slice('web-b', ['10.0.1.1']));
    await sink.untilSet(['http://10.0.0.1:8080', 'http://10.0.0.2:8080', 'http://10.0.1.1:8080']);

    api.setConditions('web-a', '10.0.0.2', { ready: false, serving: false });
    await sink.untilSet(['http://10.0.0.1:8080', 'http://10.0.1.1:8080']);

    api.setConditions('web-a', '10.0.0.1', { ready: false, serving: true, terminating: true });
    await sink.untilSet(['http://10.0.0.1:8080~', 'http://10.0.1.1:8080']);
    api.setConditions('web-a', '10.0.0.2', { ready: true, serving: true });
    await sink.untilSet(['http://10.0.0.1:8080~', 'http://10.0.0.2:8080', 'http://10.0.1.1:8080']);
    api.applySlice(slice('web-a', []));
    await sink.untilSet(['http://10.0.1.1:8080']);

    api.deleteSlice('web-b');
    await sink.until('an explicit empty set', () => sink.last?.length === 0);
    api.deleteSlice('web-a');
    api.applySlice(slice('web-c', ['10.0.2.1']));
    await sink.untilSet(['http://10.0.2.1:8080']);
    // A slice relabelled to another Service reaches this watch as DELETED.
    api.applySlice(slice('web-c', ['10.0.2.1'], { service: 'other' }));
    await sink.until('the relabelled slice gone', () => sink.last?.length === 0);
    assert.equal(lists(api).length, 1, 'every change came through the one watch');
    assert.deepEqual(sink.errors, []);
  });

  test('an ERROR 410 event in the middle of a watch: lists again, and a change made meanwhile is not lost', async (t) => {
    const { api, sink } = await stand(t, (api) => api.applySlice(slice('web-a', ['10.0.0.1'])));
    await sink.untilSet(['http://10.0.0.1:8080']);
    await untilRequest(api, 'the watch', (r) => r.watch);
    const before = api.requests.length;
    const relisted = untilRequest(api, 'a second list', (r) => !r.watch, before);
    api.compact({ expireWatches: true });
    api.applySlice(slice('web-a', ['10.0.0.1', '10.0.0.2']));
    await relisted;
    await sink.untilSet(['http://10.0.0.1:8080', 'http://10.0.0.2:8080']);
    await untilRequest(api, 'the watch after the list', (r) => r.watch && r.status === 200, before);
    api.applySlice(slice('web-a', ['10.0.0.2']));
    await sink.untilSet(['http://10.0.0.2:8080']);
    assert.deepEqual(sink.errors, [], '410 is routine, not an error');
  });

  for (const expiredWatchAs of ['status', 'event'] as const) {
    test(`a watch from a compacted version answered 410 Gone as ${expiredWatchAs === 'status' ? 'a status' : 'an ERROR event'}: lists again`, async (t) => {
      const { api, sink } = await stand(t, (api) => api.applySlice(slice('web-a', ['10.0.0.1'])), {}, {}, { expiredWatchAs });
      await sink.untilSet(['http://10.0.0.1:8080']);
      await untilRequest(api, 'the watch', (r) => r.watch);
      await api.down();
      await sink.until('an error while down', () => sink.errors.length >= 1);
      // Changes and a compaction while the source cannot see them: its version is now too old.
      api.applySlice(slice('web-b', ['10.0.1.1']));
      api.compact();
      const gone = untilRequest(api, 'the watch from the old version', (r) => r.watch, api.requests.length);
      await api.up();
      assert.equal((await gone).status, expiredWatchAs === 'status' ? 410 : 200);
      await sink.untilSet(['http://10.0.0.1:8080', 'http://10.0.1.1:8080']);
      assert.equal(lists(api).length, 2);
    });
  }

  test('a watch that ends at its timeout starts again from the version of the last bookmark, without a list', async (t) => {
    const { api, sink } = await stand(t, (api) => api.applySlice(slice('web-a', ['10.0.0.1'])), {}, { watchTimeoutSeconds: 1 }, { bookmarkIntervalMs: 100 });
    await sink.untilSet(['http://10.0.0.1:8080']);
    const first = await untilRequest(api, 'the watch', (r) => r.watch);
    // Another Service's changes move the version; only bookmarks tell this watch about it.
    api.applySlice(slice('other-a', ['10.9.0.1'], { service: 'other' }));
    api.applySlice(slice('other-a', ['10.9.0.2'], { service: 'other' }));
    const version = api.resourceVersion;
    const second = await untilRequest(api, 'the second watch', (r) => r.watch && r !== first);
    assert.match(first.path, new RegExp(`&resourceVersion=${version - 2}&`));
    assert.match(second.path, new RegExp(`&resourceVersion=${version}&`));
    assert.equal(lists(api).length, 1);
    assert.deepEqual(sink.errors, []);
  });

  test('410 at once after every list: waits a backoff before listing again, instead of spinning', async (t) => {
    const clock = new AwaitableClock();
    let others = 0;
    const { api } = await stand(t, (api) => {
      api.applySlice(slice('web-a', ['10.0.0.1']));
      // Each list's version is compacted away before its watch comes.
      api.events.on('request', (r: SeenRequest) => {
        if (r.watch) return;
        api.applySlice(slice('other-a', [`10.9.0.${++others}`], { service: 'other' }));
        api.compact();
      });
    }, {}, { clock, backoffMs: { initial: 1000, max: 1000 } }, { expiredWatchAs: 'status' });
    await untilRequest(api, 'a watch answered 410', (r) => r.watch && r.status === 410);
    const wait = await clock.untilTimer('the backoff timer', (ms) => ms >= 500 && ms <= 1000);
    assert.equal(lists(api).length, 1, 'no second list before the backoff');
    clock.fire(wait);
    await untilRequest(api, 'the second list', (r) => !r.watch, 2);
  });

  test('a watch that goes silent: the idle timer aborts it and lists again', async (t) => {
    const { api, sink } = await stand(t, (api) => api.applySlice(slice('web-a', ['10.0.0.1'])), {}, { watchTimeoutSeconds: 1, idleMarginMs: 300 }, { bookmarkIntervalMs: 100 });
    await sink.untilSet(['http://10.0.0.1:8080']);
    await untilRequest(api, 'the watch', (r) => r.watch);
    api.stallWatches();
    api.applySlice(slice('web-a', ['10.0.0.2']));
    await sink.untilSet(['http://10.0.0.2:8080']);
    assert.equal(lists(api).length, 2, 'the change came from a second list');
    assert.deepEqual(sink.errors, []);
  });

  test('the API server down for a while: sink.error with the reason, retries, then the changes made meanwhile', async (t) => {
    const { api, sink } = await stand(t, (api) => api.applySlice(slice('web-a', ['10.0.0.1'])));
    await sink.untilSet(['http://10.0.0.1:8080']);
    await untilRequest(api, 'the watch', (r) => r.watch);
    const updatesBefore = sink.updates.length;
    await api.down();
    await sink.until('three errors', () => sink.errors.length >= 3);
    assert.match(sink.errors[0]?.message ?? '', /^watching EndpointSlices of k8s:\/\/default\/web \(https:\/\/127\.0\.0\.1:\d+\): /);
    assert.match(sink.errors.at(-1)?.message ?? '', /ECONNREFUSED/);
    assert.equal(sink.updates.length, updatesBefore, 'no empty set on error');
    api.applySlice(slice('web-a', ['10.0.0.1', '10.0.0.2']));
    await api.up();
    await sink.untilSet(['http://10.0.0.1:8080', 'http://10.0.0.2:8080']);
  });

  test('token rotation: a 401 says so, and the rewritten token file is read for the next request', async (t) => {
    // The watch ends at its 1 s timeout; the next request meets the new token.
    const { api, sink, tokenFile } = await stand(t, (api) => api.applySlice(slice('web-a', ['10.0.0.1'])), {}, { watchTimeoutSeconds: 1 });
    await sink.untilSet(['http://10.0.0.1:8080']);
    await untilRequest(api, 'the watch', (r) => r.watch);
    api.setToken('token-two');
    await sink.until('a 401 error', () => sink.errors.length >= 1);
    assert.match(sink.errors[0]?.message ?? '', /401 Unauthorized \(token from .*token-\d+\): Unauthorized$/);
    const updatesBefore = sink.updates.length;
    await writeFile(tokenFile, 'token-two\n');
    // After an error, the first good answer is reported even though the set did not change.
    await sink.until('an update after the 401', () => sink.updates.length > updatesBefore);
    api.applySlice(slice('web-a', ['10.0.0.5']));
    await sink.untilSet(['http://10.0.0.5:8080']);
    assert.equal(api.requests.at(-1)?.authorization, 'Bearer token-two');
  });

  test('403 names the permission the account lacks; the set comes once it is granted', async (t) => {
    const { api, sink } = await stand(t, (api) => {
      api.applySlice(slice('web-a', ['10.0.0.1']));
      api.setForbidden(true);
    });
    await sink.until('an error', () => sink.errors.length >= 1);
    assert.match(sink.errors[0]?.message ?? '', /^listing EndpointSlices of k8s:\/\/default\/web \(https:\/\/127\.0\.0\.1:\d+\): 403 Forbidden \(the account needs list and watch on endpointslices\.discovery\.k8s\.io in namespace default\): endpointslices\.discovery\.k8s\.io is forbidden: User "system:serviceaccount:default:switchyard" cannot list /);
    assert.deepEqual(sink.updates, []);
    api.setForbidden(false);
    await sink.untilSet(['http://10.0.0.1:8080']);
  });

  test('a sink that throws does not stop the watch', async (t) => {
    const cleanup = cleanupFor(t);
    const api = await startKubeApi();
    cleanup(() => api.close());
    api.applySlice(slice('web-a', ['10.0.0.1']));
    const sink = new RecordingSink();
    let throws = true;
    const source = new KubernetesSource({ service: 'web', apiServer: api.url }, { logger, env: {} });
    source.start({
      update: (backends) => {
        sink.update(backends);
        if (throws) throw new Error('a bug in the sink');
      },
      error: (err) => sink.error(err),
    });
    cleanup(() => source.stop());
    await sink.untilSet(['http://10.0.0.1:8080']);
    throws = false;
    await untilRequest(api, 'the watch', (r) => r.watch);
    api.applySlice(slice('web-a', ['10.0.0.2']));
    await sink.untilSet(['http://10.0.0.2:8080']);
    assert.equal(lists(api).length, 1);
    assert.deepEqual(sink.errors, []);
  });

  test('a burst of 100 changes in one second ends in the right set', async (t) => {
    const { api, sink } = await stand(t, (api) => api.applySlice(slice('web-0', ['10.0.0.1'])));
    await sink.untilSet(['http://10.0.0.1:8080']);
    await untilRequest(api, 'the watch', (r) => r.watch);
    for (let i = 0; i < 100; i++) {
      const addresses = Array.from({ length: (i % 7) + 1 }, (_, j) => `10.1.${i}.${j + 1}`);
      api.applySlice(slice(`web-${i % 5}`, addresses));
      if (i % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
    }
    // The last write to each of web-0..web-4 is i = 95..99, with (i % 7) + 1 addresses.
    const expected = [95, 96, 97, 98, 99].flatMap((i) => Array.from({ length: (i % 7) + 1 }, (_, j) => `http://10.1.${i}.${j + 1}:8080`));
    await sink.untilSet(expected);
    assert.equal(lists(api).length, 1);
    assert.deepEqual(sink.errors, []);
  });

  test('bad JSON in a watch: sink.error, then the watch resumes from the last version', async (t) => {
    const { api, sink } = await stand(t, (api) => api.applySlice(slice('web-a', ['10.0.0.1'])));
    await sink.untilSet(['http://10.0.0.1:8080']);
    await untilRequest(api, 'the watch', (r) => r.watch);
    api.injectRaw('{"type":"MODIFIED","object":\n');
    await sink.until('an error', () => sink.errors.length >= 1);
    assert.match(sink.errors[0]?.message ?? '', /bad JSON in a watch event/);
    api.applySlice(slice('web-a', ['10.0.0.9']));
    await sink.untilSet(['http://10.0.0.9:8080']);
  });

  test('a server that ends every watch at once: an error, not a tight loop of watches', async (t) => {
    const { api, sink } = await stand(t, (api) => api.applySlice(slice('web-a', ['10.0.0.1'])));
    api.events.on('request', (r: SeenRequest) => {
      if (r.watch) setImmediate(() => api.endWatches());
    });
    await sink.until('an error', () => sink.errors.length >= 1);
    assert.match(sink.errors[0]?.message ?? '', /: the server ended the watch at once$/);
    assert.deepEqual(sink.updates.map((u) => u.map((b) => b.url)), [['http://10.0.0.1:8080']]);
  });

  test('several ports and none chosen: an error naming them, and no set', async (t) => {
    const { sink } = await stand(t, (api) => api.applySlice({ ...slice('web-a', ['10.0.0.1']), ports: [{ name: 'http', port: 8080 }, { name: 'admin', port: 9000 }] }));
    await sink.until('an error', () => sink.errors.length >= 1);
    assert.equal(sink.errors[0]?.message, 'k8s://default/web: EndpointSlice web-a has several ports (http=8080, admin=9000): set port to one name or number');
    assert.deepEqual(sink.updates, []);
  });
});

describe('KubernetesSource settings', () => {
  test('in a pod: API server from KUBERNETES_SERVICE_HOST/PORT, token, CA and namespace from the service account', async (t) => {
    const cleanup = cleanupFor(t);
    const api = await startKubeApi({ token: 'pod-token', tls: serverCert });
    cleanup(() => api.close());
    api.applySlice(slice('web-a', ['10.2.0.1'], { namespace: 'shop' }));
    api.applySlice(slice('web-b', ['10.3.0.1'], { namespace: 'default' }));
    const account = await mkdtemp(path.join(scratch, 'account-'));
    await writeFile(path.join(account, 'token'), 'pod-token');
    await writeFile(path.join(account, 'ca.crt'), ca.caPem);
    await writeFile(path.join(account, 'namespace'), 'shop');
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port) };
    const source = new KubernetesSource({ service: 'web' }, { logger, env, serviceAccountDir: account });
    assert.equal(source.description, 'k8s://shop/web');
    assert.equal(source.kind, 'kubernetes');
    const sink = new RecordingSink();
    source.start(sink);
    cleanup(() => source.stop());
    await sink.untilSet(['http://10.2.0.1:8080']);
    assert.equal(api.requests[0]?.authorization, 'Bearer pod-token');
    assert.match(api.requests[0]?.path ?? '', /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/shop\/endpointslices\?/);
  });

  test('plain http without a token (kubectl proxy), a port by number', async (t) => {
    const cleanup = cleanupFor(t);
    const api = await startKubeApi();
    cleanup(() => api.close());
    api.applySlice({ ...slice('web-a', ['10.0.0.1']), ports: [{ name: 'http', port: 8080 }, { name: 'admin', port: 9000 }] });
    const source = new KubernetesSource({ service: 'web', apiServer: api.url, port: '9000' }, { logger, env: {} });
    assert.equal(source.description, 'k8s://default/web:9000');
    const sink = new RecordingSink();
    source.start(sink);
    cleanup(() => source.stop());
    await sink.untilSet(['http://10.0.0.1:9000']);
    assert.equal(api.requests[0]?.authorization, undefined);
  });

  test('user mistakes are one-line ConfigErrors at construction', () => {
    const make = (options: Partial<KubernetesOptions>): unknown => new KubernetesSource({ service: 'web', ...options }, { logger, env: {} });
    assert.throws(() => make({}), (err: Error) => err instanceof ConfigError && err.message === 'discover.kubernetes.apiServer is required outside a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set)');
    assert.throws(() => make({ apiServer: 'ftp://k8s.example' }), { message: 'discover.kubernetes.apiServer: "ftp://k8s.example" is not an http:// or https:// URL' });
    const missing = path.join(scratch, 'no-such-ca.pem');
    assert.throws(() => make({ apiServer: 'https://k8s.example', caFile: missing }), { message: `discover.kubernetes.caFile: cannot read "${missing}": no such file` });
  });
});

describe('the stand-in API server read by kubectl', () => {
  const kubectl = spawnSync('kubectl', ['version', '--client'], { timeout: 30_000 }).status === 0;
  const skip = kubectl ? false : 'kubectl is not installed (Debian: apt-get install kubernetes-client; .ci/run installs it)';

  /** Runs `kubectl --kubeconfig FILE ARGS…`, bounded. */
  function runKubectl(kubeconfig: string, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      execFile('kubectl', ['--kubeconfig', kubeconfig, ...args], { timeout: 30_000, env: { ...process.env, HOME: scratch } }, (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== 'number') reject(error);
        else resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr });
      });
    });
  }

  async function kubeconfig(api: KubeApi, token: string): Promise<string> {
    const file = path.join(scratch, `kubeconfig-${++fileSerial}`);
    await writeFile(file, [
      'apiVersion: v1', 'kind: Config',
      'clusters:', '- name: stand-in', '  cluster:', `    server: ${api.url}`, `    certificate-authority: ${ca.caFile}`,
      'users:', '- name: tester', '  user:', `    token: ${token}`,
      'contexts:', '- name: stand-in', '  context:', '    cluster: stand-in', '    user: tester',
      'current-context: stand-in', '',
    ].join('\n'));
    return file;
  }

  const base = '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dweb';

  test('get --raw reads the list, over TLS with a bearer token', { skip }, async (t) => {
    const cleanup = cleanupFor(t);
    const api = await startKubeApi({ token: 'kube-token', tls: serverCert });
    cleanup(() => api.close());
    api.applySlice(slice('web-a', ['10.0.0.1', '10.0.0.2']));
    api.applySlice(slice('other-a', ['10.9.0.1'], { service: 'other' }));
    const result = await runKubectl(await kubeconfig(api, 'kube-token'), ['get', '--raw', base]);
    assert.equal(result.code, 0, result.stderr);
    const list = JSON.parse(result.stdout) as { kind: string; apiVersion: string; metadata: { resourceVersion: string }; items: { metadata: { name: string } }[] };
    assert.equal(list.kind, 'EndpointSliceList');
    assert.equal(list.apiVersion, 'discovery.k8s.io/v1');
    assert.equal(list.metadata.resourceVersion, String(api.resourceVersion));
    assert.deepEqual(list.items.map((i) => i.metadata.name), ['web-a']);
    assert.equal(api.requests.at(-1)?.authorization, 'Bearer kube-token');

    const refused = await runKubectl(await kubeconfig(api, 'wrong-token'), ['get', '--raw', base]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /Unauthorized/);
  });

  test('get --raw reads a watch: the existing slices as ADDED, a change as MODIFIED, bookmarks', { skip }, async (t) => {
    const cleanup = cleanupFor(t);
    const api = await startKubeApi({ token: 'kube-token', tls: serverCert, bookmarkIntervalMs: 300 });
    cleanup(() => api.close());
    api.applySlice(slice('web-a', ['10.0.0.1']));
    const watching = untilRequest(api, 'the watch', (r) => r.watch);
    const running = runKubectl(await kubeconfig(api, 'kube-token'), ['get', '--raw', `${base}&watch=1&allowWatchBookmarks=true&timeoutSeconds=2`]);
    await watching;
    api.applySlice(slice('web-a', ['10.0.0.1', '10.0.0.2']));
    const result = await running;
    assert.equal(result.code, 0, result.stderr);
    const events = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { type: string; object: { metadata: { name?: string; resourceVersion: string } } });
    const changes = events.filter((e) => e.type !== 'BOOKMARK');
    assert.deepEqual(changes.map((e) => `${e.type} ${e.object.metadata.name}`), ['ADDED web-a', 'MODIFIED web-a']);
    assert.equal(changes[1]?.object.metadata.resourceVersion, String(api.resourceVersion));
    assert.ok(events.some((e) => e.type === 'BOOKMARK'), 'bookmarks were asked for');
  });
});

describe('KubernetesSource.stop()', () => {
  test('stops the watch mid-stream and leaves nothing running: the process exits by itself', async (t) => {
    const cleanup = cleanupFor(t);
    const api = await startKubeApi({ token: 'token-one', tls: serverCert });
    cleanup(() => api.close());
    api.applySlice(slice('web-a', ['10.0.0.1']));
    const tokenFile = path.join(scratch, `token-${++fileSerial}`);
    await writeFile(tokenFile, 'token-one');
    const script = path.join(scratch, `stop-${fileSerial}.mjs`);
    // Starts the source, says when it has a set, and stops it when its standard input closes.
    await writeFile(script, [
      `const { KubernetesSource } = await import(${JSON.stringify(new URL('../../src/discovery/kubernetes.js', import.meta.url).href)});`,
      `const { createLogger } = await import(${JSON.stringify(new URL('../../src/log.js', import.meta.url).href)});`,
      'const source = new KubernetesSource(JSON.parse(process.argv[2]), { logger: createLogger({ level: "silent" }), env: {} });',
      'source.start({ update: (b) => console.log("update " + b.length), error: (e) => console.log("error " + e.message) });',
      'for await (const _ of process.stdin);',
      'await source.stop();',
      'console.log("stopped");',
    ].join('\n'));
    const options = { service: 'web', apiServer: api.url, tokenFile, caFile: ca.caFile };
    const child = spawn(process.execPath, [script, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'pipe'] });
    cleanup(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await untilRequest(api, 'the child\'s watch', (r) => r.watch);
    assert.equal(api.watchCount, 1);
    child.stdin.end();
    const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running 10 s after stop()'), 10_000).unref())]);
    assert.equal(code, 0, `${stdout}${stderr}`);
    assert.equal(stdout, 'update 1\nstopped\n');
    await untilNoWatch(api);
  });
});
