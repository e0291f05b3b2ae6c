import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';

/**
 * malloc-heap.ts (issue 12, scenario c): once a process streams bodies, glibc keeps the top of
 * its heap, so the 64 KiB blocks of the next socket reads are not faulted in afresh each time.
 * Each check runs in a child process: the hint changes the child's malloc for good.
 */
const srcUrl = (file: string): string => JSON.stringify(new URL(`../src/${file}`, import.meta.url).href);
const helpersUrl = JSON.stringify(new URL('./helpers/servers.js', import.meta.url).href);
const onGlibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime !== undefined;

test('the hint waits for a second burst of body bytes: one burst alone leaves malloc alone', () => {
  const probe = `
    const { noteBodyBytes, mallocHeapKept, burstBytes } = await import(${srcUrl('malloc-heap.js')});
    const seen = [];
    for (let i = 0; i < burstBytes / 65536; i++) noteBodyBytes(65536);
    seen.push(mallocHeapKept());
    for (let i = 0; i < burstBytes / 65536 - 1; i++) noteBodyBytes(65536);
    seen.push(mallocHeapKept());
    noteBodyBytes(65536);
    seen.push(mallocHeapKept());
    console.log(JSON.stringify(seen));
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(JSON.parse(child.stdout), [false, false, true]);
});

/**
 * Through a real proxy and backend: a few large bodies leave malloc alone; a stream of them
 * (downloads in one child, uploads in another) turns the hint on. Downloads also count the
 * child's minor page faults per 2 MiB body before and after (glibc only). Bounded: at most 200 bodies.
 */
const throughProxy = `
  const { startBackend, startLb } = await import(${helpersUrl});
  const { mallocHeapKept } = await import(${srcUrl('malloc-heap.js')});
  const { tuneGarbageCollector } = await import(${srcUrl('gc-tuning.js')});
  const { request } = await import('undici');
  tuneGarbageCollector();
  const upload = process.argv[1] === 'upload';
  const body = Buffer.alloc(2 * 1024 * 1024, 0x61);
  const backend = await startBackend('b1', (req, res) => {
    let length = 0;
    req.on('data', (chunk) => { length += chunk.length; });
    req.on('end', () => res.end(upload ? String(length) : body));
  });
  const lb = await startLb({ backends: [backend.url] });
  const url = 'http://127.0.0.1:' + lb.address.port + '/';
  let bodies = 0;
  const one = async () => {
    const res = await request(url, upload ? { method: 'PUT', body } : {});
    let length = 0;
    for await (const chunk of res.body) length += chunk.length;
    if (res.statusCode !== 200 || length !== (upload ? String(body.length).length : body.length)) throw new Error('bad answer ' + res.statusCode);
    bodies++;
  };
  /** Minor page faults per body over 20 bodies, 4 at a time. */
  const faultsPerBody = async () => {
    const before = process.resourceUsage().minorPageFault;
    for (let i = 0; i < 5; i++) await Promise.all([one(), one(), one(), one()]);
    return (process.resourceUsage().minorPageFault - before) / 20;
  };
  for (let i = 0; i < 3; i++) await one();
  const afterThree = mallocHeapKept();
  const before = await faultsPerBody();
  while (!mallocHeapKept() && bodies < 200) await one();
  gc();
  const after = [await faultsPerBody(), await faultsPerBody()];
  await lb.close();
  await backend.close();
  console.log(JSON.stringify({ afterThree, kept: mallocHeapKept(), bodies, before, after }));
`;

for (const mode of ['download', 'upload']) {
  test(`a stream of ${mode}s through the proxy turns the hint on; three do not`, async () => {
    const child = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', throughProxy, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const timer = setTimeout(() => child.kill(), 90_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearTimeout(timer);
    assert.equal(code, 0, err);
    const result = JSON.parse(out.trim().split('\n').pop() as string) as { afterThree: boolean; kept: boolean; bodies: number; before: number; after: number[] };
    assert.equal(result.afterThree, false, '6 MiB of bodies is not a stream');
    assert.equal(result.kept, true, `on after ${result.bodies} bodies of 2 MiB`);
    if (mode === 'download' && onGlibc) {
      // 2 MiB is 512 pages per copy: without the hint glibc trims its heap and the reads fault them in again.
      const after = (result.after[0]! + result.after[1]!) / 2;
      assert.ok(after < result.before / 3, `page faults per body: ${result.before} before the hint, ${result.after.join(' and ')} after`);
    }
  });
}
