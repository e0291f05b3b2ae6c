import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';

// .test-build/test/layout/ -> the repository root.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const script = join(root, 'scripts', 'import-cycles.mjs');

/** Files of src/ still allowed in an import cycle, each with why: none (issue 10 removed the last). */
const knownCycleFiles: ReadonlyMap<string, string> = new Map();

interface Step {
  readonly from: string;
  readonly to: string;
  readonly typeOnly: boolean;
}
interface Cycle {
  readonly files: string[];
  readonly loop: Step[];
}
interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the script as a user would, bounded; `node scripts/import-cycles.mjs DIR [--json]`. */
function run(args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, ...args], { cwd: root, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number') reject(error);
      else resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr });
    });
  });
}

function show(cycle: Cycle): string {
  const first = cycle.loop[0];
  return [first === undefined ? '' : first.from, ...cycle.loop.map((s) => (s.typeOnly ? `(type) ${s.to}` : s.to))].join(' → ');
}

describe('import cycles in src/', () => {
  test('none, but for the files the request path split is taking apart', async (t) => {
    const result = await run(['src', '--json']);
    assert.ok(result.code === 0 || result.code === 1, result.stderr);
    const cycles = JSON.parse(result.stdout) as Cycle[];
    const known = cycles.filter((c) => c.files.every((f) => knownCycleFiles.has(f)));
    for (const cycle of known) t.diagnostic(`known cycle, to be removed: ${show(cycle)} (the ring: ${cycle.files.join(', ')})`);
    const unknown = cycles.filter((c) => !known.includes(c)).map((c) => `${show(c)}\n  the ring: ${c.files.join(', ')}`);
    assert.deepEqual(unknown, [], `import cycles in src/ (lower layers must not import higher ones, not even for a type):\n${unknown.join('\n')}`);
    const inCycles = new Set(known.flatMap((c) => c.files));
    const stale = [...knownCycleFiles.keys()].filter((f) => !inCycles.has(f));
    assert.deepEqual(stale, [], `no longer in any cycle: take ${stale.join(', ')} off knownCycleFiles in this test`);
  });

  test('the script names a cycle closed by a type import, and exits 1', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-cycles-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    // A value import written over two lines, an `import type`, and an `import('…')` type.
    writeFileSync(join(dir, 'low.ts'), "import { multiline,\n  other } from './high.js';\nexport const low = multiline + other;\n");
    writeFileSync(join(dir, 'high.ts'), "import type { Low } from './types/low-type.js';\nexport const multiline = 1, other = 2;\nexport type High = Low;\n");
    mkdirSync(join(dir, 'types'));
    writeFileSync(join(dir, 'types', 'low-type.ts'), "export type Low = typeof import('../low.js').low;\n");
    writeFileSync(join(dir, 'leaf.ts'), "import { low } from './low.js';\nexport const leaf = low;\n");

    const text = await run([dir]);
    assert.equal(text.code, 1, text.stderr);
    assert.match(text.stdout, /^1 import cycle under /);
    assert.match(text.stdout, /\n {2}high\.ts → \(type\) types\/low-type\.ts → \(type\) low\.ts → high\.ts\n/);

    const json = JSON.parse((await run([dir, '--json'])).stdout) as Cycle[];
    assert.deepEqual(json.map((c) => c.files), [['high.ts', 'low.ts', 'types/low-type.ts']]);
  });

  test('the script says so when there is none, and exits 0', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-cycles-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'a.ts'), "import { b } from './b.js';\nexport const a = b;\n");
    writeFileSync(join(dir, 'b.ts'), 'export const b = 1;\n');
    const result = await run([dir]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^no import cycles under /);
  });
});
