#!/usr/bin/env node
// Reads a .cpuprofile (or a sampling .heapprofile) and prints self and inclusive cost by
// function and self cost by file: where the time (or the allocated bytes) goes.
//   node bench/profile-summary.mjs FILE [--top 25] [--under NAME]
// --under NAME: only the samples below a frame whose function is NAME (e.g. onHeaders, handleRequest).
import fs from 'node:fs';

const args = process.argv.slice(2);
const file = args[0];
if (file === undefined) {
  console.error('usage: node bench/profile-summary.mjs FILE [--top N] [--under FUNCTION]');
  process.exit(2);
}
const topAt = args.indexOf('--top');
const top = topAt === -1 ? 25 : Number(args[topAt + 1]);
const underAt = args.indexOf('--under');
const under = underAt === -1 ? null : args[underAt + 1];
const profile = JSON.parse(fs.readFileSync(file, 'utf8'));

const shortUrl = (url) => url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/').replace(/^node:/, 'node:') || '(native)';
const keyOf = (cf) => `${cf.functionName || '(anonymous)'} ${shortUrl(cf.url)}:${cf.lineNumber + 1}`;

// Normalise both formats to a tree of { key, file, self, children } with self in µs or bytes.
const nodes = new Map();
let unit = 'ms';
if (profile.samples !== undefined && profile.nodes !== undefined) {
  for (const n of profile.nodes) nodes.set(n.id, { key: keyOf(n.callFrame), name: n.callFrame.functionName, file: shortUrl(n.callFrame.url), self: 0, children: n.children ?? [] });
  const deltas = profile.timeDeltas;
  // Each sample's time is the gap to the next sample.
  for (let i = 0; i < profile.samples.length; i++) {
    const node = nodes.get(profile.samples[i]);
    node.self += (deltas[i + 1] ?? 0) / 1000;
  }
} else {
  unit = 'bytes';
  const walk = (n) => {
    nodes.set(n.id, { key: keyOf(n.callFrame), name: n.callFrame.functionName, file: shortUrl(n.callFrame.url), self: n.selfSize, children: n.children.map((c) => c.id) });
    for (const c of n.children) walk(c);
  };
  walk(profile.head);
}
const parents = new Map();
for (const [id, n] of nodes) for (const c of n.children) parents.set(c, id);
const roots = [...nodes.keys()].filter((id) => !parents.has(id));

const self = new Map();
const selfByFile = new Map();
const inclusive = new Map();
let total = 0;
// Depth-first with the set of keys on the stack, so a recursive function counts a sample once.
function visit(id, stack, inside) {
  const n = nodes.get(id);
  const within = inside || under === null || n.name === under;
  const added = !stack.has(n.key);
  if (added) stack.add(n.key);
  if (within && n.self > 0) {
    total += n.self;
    self.set(n.key, (self.get(n.key) ?? 0) + n.self);
    selfByFile.set(n.file, (selfByFile.get(n.file) ?? 0) + n.self);
    for (const k of stack) inclusive.set(k, (inclusive.get(k) ?? 0) + n.self);
  }
  for (const c of n.children) visit(c, stack, within);
  if (added) stack.delete(n.key);
}
for (const r of roots) visit(r, new Set(), false);

const fmt = (v) => (unit === 'ms' ? `${v.toFixed(1)} ms` : `${Math.round(v)} B`);
const pct = (v) => `${((100 * v) / total).toFixed(1)}%`;
function table(title, map) {
  console.log(`\n## ${title}`);
  for (const [k, v] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v).padStart(6)}  ${fmt(v).padStart(12)}  ${k}`);
}
console.log(`total ${fmt(total)}${under === null ? '' : ` under ${under}`}`);
table('self, by function', self);
table('self, by file', selfByFile);
table('inclusive, by function', inclusive);
