// Runs the compiled test suite: every `*.test.js` under .test-build/test/, helpers excluded.
// Files, not the directory: Node 22+ reads a directory argument as a module path, and Node 20
// runs every .js file under a `test` directory, helpers included, as a test file.
// --expose-gc reaches each file's subprocess (the runner passes its execArgv on), so the
// client-abort suite's heap check runs. Paths are relative to the package root, where npm runs it.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

const root = path.join('.test-build', 'test');
const files = (existsSync(root) ? readdirSync(root, { recursive: true, encoding: 'utf8' }) : [])
  .filter((file) => file.endsWith('.test.js') && !file.split(path.sep).includes('helpers'))
  .sort()
  .map((file) => path.join(root, file));
if (files.length === 0) {
  console.error(`no test files under ${root}: run \`npx tsc -p tsconfig.test.json\` first`);
  process.exit(1);
}
const runner = spawn(
  process.execPath,
  ['--expose-gc', '--test', '--test-concurrency=1', '--test-timeout=300000', ...process.argv.slice(2), ...files],
  { stdio: 'inherit' },
);
runner.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)));
