import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { bodiesStreamed, burstBytes, noteBodyBytes, whenBodiesStream } from '../src/body-streams.js';

/**
 * body-streams.ts (issue 12, scenario c): once bodies stream, the CLI's bulk-transfer tuning runs
 * (gc-tuning.ts): glibc keeps its freed heap, so the 64 KiB blocks of the next socket reads are
 * not faulted in afresh, and V8's old-generation bound is its own again.
 */
const srcUrl = (file: string): string => JSON.stringify(new URL(`../src/${file}`, import.meta.url).href);
const helpersUrl = JSON.stringify(new URL('./helpers/servers.js', import.meta.url).href);
const onGlibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime !== undefined;

test('a stream is a second burst of body bytes within a second; the tuning runs once', () => {
  let runs = 0;
  whenBodiesStream(() => runs++);
  for (let i = 0; i < burstBytes / 65536; i++) noteBodyBytes(65536);
  assert.equal(runs, 0, 'one burst');
  for (let i = 0; i < burstBytes / 65536 - 1; i++) noteBodyBytes(65536);
  assert.equal(runs, 0, 'one byte short of the second');
  noteBodyBytes(65536);
  assert.equal(runs, 1);
  assert.equal(bodiesStreamed(), true);
  for (let i = 0; i < (4 * burstBytes) / 65536; i++) noteBodyBytes(65536);
  assert.equal(runs, 1, 'once');
  whenBodiesStream(null);
});

/**
 * Through a real proxy and backend, in a child: three large bodies are no stream; a stream of
 * them (downloads, or uploads) runs the tuning the CLI registered, and only that: a library
 * process ('library': nothing registered) is left alone. Downloads also count the child's minor
 * page faults per 2 MiB body before and after the tuning (glibc only). At most 200 bodies.
 */
const throughProxy = `
  const { startBackend, startLb } = await import(${helpersUrl});
  const { bodiesStreamed } = await import(${srcUrl('body-streams.js')});
  const { tuneGarbageCollector } = await import(${srcUrl('gc-tuning.js')});
  const { request } = await import('undici');
  const mode = process.argv[1];
  if (mode !== 'library') tuneGarbageCollector();
  const upload = mode === 'upload';
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
  const afterThree = bodiesStreamed();
  const before = await faultsPerBody();
  while (!bodiesStreamed() && bodies < 200) await one();
  gc();
  // The first bodies after the tuning grow the heap that glibc keeps from then on.
  const after = [await faultsPerBody(), await faultsPerBody(), await faultsPerBody()];
  await lb.close();
  await backend.close();
  console.log(JSON.stringify({ afterThree, streamed: bodiesStreamed(), bodies, before, after }));
`;

function runChild(mode: string): Promise<{ afterThree: boolean; streamed: boolean; bodies: number; before: number; after: number[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', throughProxy, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const timer = setTimeout(() => child.kill(), 90_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`child exited with ${code}: ${err}`));
      resolve(JSON.parse(out.trim().split('\n').pop() as string));
    });
  });
}

for (const mode of ['download', 'upload']) {
  test(`a stream of ${mode}s through the proxy runs the CLI's tuning; three do not`, async () => {
    const result = await runChild(mode);
    assert.equal(result.afterThree, false, '6 MiB of bodies is not a stream');
    assert.equal(result.streamed, true, `after ${result.bodies} bodies of 2 MiB`);
    if (mode === 'download' && onGlibc) {
      // 2 MiB is 512 pages per copy: without the hint glibc trims its heap and the reads fault them in again.
      const after = Math.min(result.after[1] as number, result.after[2] as number);
      assert.ok(after < result.before / 3, `page faults per body: ${result.before} before the tuning, ${result.after.join(' and ')} after`);
    }
  });
}

test('in a library process (no CLI tuning registered) a stream changes nothing', async () => {
  const result = await runChild('library');
  assert.equal(result.streamed, false);
  assert.ok(result.bodies >= 200, `streamed the whole bound: ${result.bodies} bodies of 2 MiB`);
});
