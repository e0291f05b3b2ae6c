import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { cleanupFor } from '../helpers/cleanup.js';
import { cliPath, spawnCli } from '../helpers/cli.js';
import { startBackend } from '../helpers/servers.js';
import { makeCa, type IssuedCert, type TestCa } from '../helpers/tls.js';

const run = promisify(execFile);

let ca: TestCa;
let certA: IssuedCert;
let certB: IssuedCert;

before(async () => {
  ca = await makeCa();
  certA = await ca.issue('a.test', ['DNS:a.test']);
  certB = await ca.issue('b.test', ['DNS:b.test']);
});

after(() => ca.remove());

/** A self-signed certificate valid only on 1 January 2020, made with `openssl ca` (whose -enddate may lie in the past). */
async function expiredCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const cnf = ['[ca]', 'default_ca = d', '[d]', 'database = expired-index.txt', 'new_certs_dir = .', 'default_md = sha256', 'policy = p', 'serial = expired-serial', '[p]', 'commonName = supplied', ''].join('\n');
  await writeFile(path.join(dir, 'expired.cnf'), cnf);
  await writeFile(path.join(dir, 'expired-index.txt'), '');
  await writeFile(path.join(dir, 'expired-serial'), '01\n');
  const opts = { cwd: dir, timeout: 30_000 };
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'expired.key', '-out', 'expired.csr', '-subj', '/CN=old.test'], opts);
  await run('openssl', ['ca', '-batch', '-config', 'expired.cnf', '-selfsign', '-keyfile', 'expired.key', '-in', 'expired.csr', '-out', 'expired.pem', '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-notext'], opts);
  return { cert: path.join(dir, 'expired.pem'), key: path.join(dir, 'expired.key') };
}

describe('--tls-cert and --tls-key', () => {
  test('pairs of flags serve HTTPS, each certificate by SNI', async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startBackend('web');
    cleanup(() => backend.close());
    const cli = spawnCli(['--backends', backend.url, '--port', '0', '--host', '127.0.0.1', '--tls-cert', certA.certFile, '--tls-key', certA.keyFile, '--tls-cert', certB.certFile, '--tls-key', certB.keyFile], cleanup);
    const port = await cli.started();
    for (const name of ['a.test', 'b.test']) {
      const { stdout } = await run('curl', ['-sS', '--max-time', '10', '--resolve', `${name}:${port}:127.0.0.1`, '--cacert', ca.caFile, `https://${name}:${port}/`], { timeout: 15_000 });
      assert.equal(stdout, 'web', name);
    }
  });

  test('a bad file is one line naming it, and exit 2', async (t) => {
    const cleanup = cleanupFor(t);
    const notPem = path.join(ca.dir, 'not-pem.txt');
    await writeFile(notPem, 'hello\n');
    const cases: [string[], string][] = [
      [['--tls-cert', path.join(ca.dir, 'nope.pem'), '--tls-key', certA.keyFile], `--tls-cert: cannot read "${path.join(ca.dir, 'nope.pem')}": no such file`],
      [['--tls-cert', certA.certFile, '--tls-key', notPem], `--tls-key: "${notPem}" is not a PEM file (no "-----BEGIN" line)`],
      [['--tls-cert', certA.certFile, '--tls-key', certB.keyFile], `--tls-key: "${certB.keyFile}" does not match the certificate "${certA.certFile}"`],
      [['--tls-cert', certA.certFile], '--tls-cert and --tls-key come in pairs: 1 --tls-cert, 0 --tls-key'],
    ];
    for (const [flags, expected] of cases) {
      const cli = spawnCli(['--backends', 'http://127.0.0.1:1', '--port', '0', ...flags], cleanup);
      const [code] = await cli.exited;
      assert.equal(code, 2, cli.stderr());
      const lines = cli.stderr().split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 1, cli.stderr());
      assert.ok(lines[0]?.startsWith(`switchyard: ${expected}`), `${lines[0]} should start with ${expected}`);
    }
  });

  test('an expired certificate starts, with a warning naming the file', async (t) => {
    const cleanup = cleanupFor(t);
    const expired = await expiredCertificate(ca.dir);
    const cli = spawnCli(['--backends', 'http://127.0.0.1:1', '--port', '0', '--host', '127.0.0.1', '--tls-cert', expired.cert, '--tls-key', expired.key], cleanup);
    await cli.started();
    const warning = cli.logs().find((e) => String(e['msg']).startsWith(`certificate "${expired.cert}" expired on 2020-01-02`));
    assert.ok(warning, cli.stdout());
    assert.equal(warning['level'], 40);
  });

  test('validate names a bad certificate file at its FILE:LINE:COL', async () => {
    const file = path.join(ca.dir, 'tls-bad.yaml');
    await writeFile(file, ['listeners:', '  - port: 0', '    tls:', '      certificates:', `        - cert: ${certA.certFile}`, `          key: ${certB.keyFile}`, 'upstreams:', '  web:', '    backends: [http://127.0.0.1:1]', ''].join('\n'));
    const failed = (await run(process.execPath, [cliPath, 'validate', file], { timeout: 15_000 }).then(() => null, (err: unknown) => err)) as { code: number; stderr: string } | null;
    assert.equal(failed?.code, 2);
    assert.match(failed.stderr, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:\\d+ listeners.0.tls.certificates.0.key: .*does not match the certificate`));
  });
});
