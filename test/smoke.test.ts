import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startBackend, startLb, type TestBackend } from './helpers/servers.js';

let backends: TestBackend[] = [];
let lb: Awaited<ReturnType<typeof startLb>>;

before(async () => {
  backends = await Promise.all(['a', 'b', 'c'].map((n) => startBackend(n)));
  lb = await startLb({ backends: backends.map((b) => b.url) });
});

after(async () => {
  await lb.close();
  await Promise.all(backends.map((b) => b.close()));
});

test('round-robin rotates over every backend in order', async () => {
  const names: string[] = [];
  for (let i = 0; i < 6; i++) {
    const res = await request(`${lb.url}/`);
    names.push(await res.body.text());
  }
  assert.deepEqual(names, ['a', 'b', 'c', 'a', 'b', 'c']);
});
