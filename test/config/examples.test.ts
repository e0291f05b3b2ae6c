import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { loadConfig } from '../../src/config/load.js';
import { startFromConfig } from '../../src/index.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startBackend } from '../helpers/servers.js';

// .test-build/test/config/ -> the repository's examples/
const examplesDir = fileURLToPath(new URL('../../../examples/', import.meta.url));
const exampleFiles = readdirSync(examplesDir).filter((name) => /\.(ya?ml|json)$/.test(name));

describe('examples/', () => {
  test('holds the documented examples', () => {
    for (const name of ['basic.yaml', 'weighted.yaml', 'hashing.json']) assert.ok(exampleFiles.includes(name), name);
  });

  for (const name of exampleFiles) {
    test(`${name} is valid`, () => {
      loadConfig(join(examplesDir, name));
    });
  }

  test('basic.yaml runs, with its backends swapped for local test backends', async (t) => {
    const cleanup = cleanupFor(t);
    const backends = await Promise.all(['a', 'b', 'c'].map((name) => startBackend(name)));
    for (const backend of backends) cleanup(() => backend.close());
    const config = loadConfig(join(examplesDir, 'basic.yaml'));
    const [name, upstream] = Object.entries(config.upstreams)[0] ?? [];
    assert.ok(name !== undefined && upstream !== undefined);
    assert.equal(upstream.backends?.length, backends.length);
    // The example as written, on test ports: its own backends swapped for live ones.
    const lb = await startFromConfig(
      { config: { ...config, listeners: [{ ...config.listeners[0], host: '127.0.0.1', port: 0 }], admin: false, upstreams: { [name]: { ...upstream, backends: backends.map((b) => b.url) } } } },
      { log: { level: 'silent' }, watch: false },
    );
    cleanup(() => lb.close());
    const answers: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await request(`${lb.url}/`);
      assert.equal(response.statusCode, 200);
      answers.push(await response.body.text());
    }
    assert.deepEqual(answers.sort(), ['a', 'b', 'c'], 'round-robin reaches every backend');
  });
});
