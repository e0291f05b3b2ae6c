import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { configReference } from '../../src/config/reference.js';

test('the README config reference matches the schema (regenerate with npm run docs:config)', () => {
  const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');
  const match = /<!-- config-reference:start -->\n([\s\S]*?)<!-- config-reference:end -->/.exec(readme);
  assert.ok(match !== null, 'README has the config-reference markers');
  assert.equal(match[1], configReference());
  for (const line of configReference().split('\n').slice(2, -1)) assert.match(line, /^\| `[^`]+` \| .+ \| .* \| \S.* \|$/, `every field has a description: ${line}`);
});
