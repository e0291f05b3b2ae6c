import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { spawnCli } from '../helpers/cli.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startBackend } from '../helpers/servers.js';

const run = promisify(execFile);

test('switchyard --h2c accepts HTTP/2 with prior knowledge beside HTTP/1.1', async (t) => {
  const cleanup = cleanupFor(t);
  const backend = await startBackend('a');
  cleanup(() => backend.close());
  const cli = spawnCli(['--backends', backend.url, '--port', '0', '--host', '127.0.0.1', '--h2c'], cleanup);
  const port = await cli.started();
  for (const [flag, version] of [['--http2-prior-knowledge', '2'], ['--http1.1', '1.1']] as const) {
    const { stdout } = await run('curl', ['-s', flag, '-w', ' %{http_version}', `http://127.0.0.1:${port}/`], { timeout: 10_000 });
    assert.equal(stdout, `a ${version}`);
  }
});
