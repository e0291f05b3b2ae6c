import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

/**
 * tuneGarbageCollector (issue 12, scenario c): dead ArrayBuffers (the proxy's socket reads) are
 * freed inside the scavenge that finds them, so V8's external-memory count drops at once instead
 * of when a background thread gets round to it. Checked in a child process, whose V8 flags are
 * its own: a minor GC right after 12.5 MiB of buffers died must have freed them, five times over.
 */
const moduleUrl = new URL('../src/gc-tuning.js', import.meta.url).href;

const probe = `
  const { tuneGarbageCollector } = await import(${JSON.stringify(moduleUrl)});
  if (process.argv[1] === 'tuned') tuneGarbageCollector();
  const freedMiB = [];
  for (let round = 0; round < 5; round++) {
    let buffers = [];
    for (let i = 0; i < 200; i++) buffers.push(Buffer.allocUnsafeSlow(64 * 1024));
    const before = process.memoryUsage().arrayBuffers;
    buffers = null;
    gc({ type: 'minor' });
    freedMiB.push(Math.floor((before - process.memoryUsage().arrayBuffers) / 1048576));
  }
  console.log(JSON.stringify(freedMiB));
`;

test('after tuneGarbageCollector, a scavenge frees dead ArrayBuffers before it returns', () => {
  const run = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', probe, 'tuned'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stderr, '', 'V8 knows the flag');
  const freedMiB = JSON.parse(run.stdout) as number[];
  for (const mib of freedMiB) assert.ok(mib >= 12, `12.5 MiB freed by each scavenge: ${freedMiB.join(', ')} MiB`);
});
