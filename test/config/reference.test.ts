import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { configReference, spliceConfigReference } from '../../src/config/reference.js';

const page = fileURLToPath(new URL('../../../docs/configuration.md', import.meta.url));

test('the config reference in docs/configuration.md matches the schema (regenerate with npm run docs:config)', () => {
  const doc = readFileSync(page, 'utf8');
  const match = /<!-- config-reference:start -->\n([\s\S]*?)<!-- config-reference:end -->/.exec(doc);
  assert.ok(match !== null, 'docs/configuration.md has the config-reference markers');
  assert.equal(match[1], configReference());
  for (const line of configReference().split('\n').slice(2, -1)) assert.match(line, /^\| `[^`]+` \| .+ \| .* \| \S.* \|$/, `every field has a description: ${line}`);
});

test('npm run docs:config replaces only the text between the markers', () => {
  const doc = '# Title\n\nbefore\n\n<!-- config-reference:start -->\n| old |\n<!-- config-reference:end -->\n\nafter\n';
  assert.equal(
    spliceConfigReference(doc, '| new |\n| rows |\n'),
    '# Title\n\nbefore\n\n<!-- config-reference:start -->\n| new |\n| rows |\n<!-- config-reference:end -->\n\nafter\n',
  );
  assert.equal(spliceConfigReference(readFileSync(page, 'utf8'), configReference()), readFileSync(page, 'utf8'));
  assert.throws(() => spliceConfigReference('# no markers\n', '| x |\n'), /markers/);
});
