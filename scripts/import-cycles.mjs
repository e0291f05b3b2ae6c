#!/usr/bin/env node
// Lists the import cycles among the TypeScript files under a folder (default src/), type-only
// imports included: DESIGN.md wants lower layers never to import higher ones, not even for a type.
// Usage: node scripts/import-cycles.mjs [DIR] [--json]. Exit 0: no cycle, 1: cycles, 2: usage.
// Reads imports with the TypeScript compiler's parser (the devDependency), so multi-line,
// `import type`, `export … from` and `import('…')` all count; nothing is compiled or run.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** Every .ts file under `dir` (declaration files left out), as paths relative to `dir`, sorted. */
function sourceFiles(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => path.relative(dir, path.join(e.parentPath ?? e.path, e.name)).split(path.sep).join('/'))
    .sort();
}

/** The relative module specifiers of one file, each with whether only types are imported. */
function importsOf(text, fileName) {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found = [];
  const visit = (node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push({ specifier: node.moduleSpecifier.text, typeOnly: node.importClause?.isTypeOnly === true });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push({ specifier: node.moduleSpecifier.text, typeOnly: node.isTypeOnly });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      if (arg !== undefined && ts.isStringLiteralLike(arg)) found.push({ specifier: arg.text, typeOnly: false });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push({ specifier: node.argument.literal.text, typeOnly: true });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found.filter((i) => i.specifier.startsWith('./') || i.specifier.startsWith('../'));
}

/** `./x.js` from `a/b.ts` → `a/x.ts` (NodeNext style), or null when no such file is under `dir`. */
function resolve(dir, from, specifier) {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
  const stem = base.replace(/\.(?:m|c)?js$/, '');
  for (const candidate of [`${stem}.ts`, `${stem}.mts`, `${stem}.cts`, `${stem}/index.ts`]) {
    if (!candidate.startsWith('../') && existsSync(path.join(dir, candidate))) return candidate;
  }
  return null;
}

/** The import graph: file → (imported file → true when every import of it is type-only). */
export function importGraph(dir) {
  const graph = new Map();
  for (const file of sourceFiles(dir)) {
    const edges = new Map();
    for (const { specifier, typeOnly } of importsOf(readFileSync(path.join(dir, file), 'utf8'), file)) {
      const target = resolve(dir, file, specifier);
      if (target !== null) edges.set(target, (edges.get(target) ?? true) && typeOnly);
    }
    graph.set(file, edges);
  }
  return graph;
}

/** Strongly connected components with a cycle in them (Tarjan), each sorted, in order of first file. */
function cyclicComponents(graph) {
  let next = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const components = [];
  const connect = (v) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) !== index.get(v)) return;
    const component = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || graph.get(v)?.has(v)) components.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) connect(v);
  return components.sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

/** A shortest loop from `start` back to itself inside `members`, as a list of files ending at `start`. */
function shortestLoop(graph, start, members) {
  const cameFrom = new Map();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i];
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const loop = [start];
        for (let u = v; u !== start; u = cameFrom.get(u)) loop.unshift(u);
        loop.unshift(start);
        return loop;
      }
      if (!cameFrom.has(w)) {
        cameFrom.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/**
 * The cycles under `dir`: for each group of files that import one another in a ring, the files
 * and one shortest loop through the first of them, each step marked when it imports types only.
 */
export function importCycles(dir) {
  const graph = importGraph(dir);
  return cyclicComponents(graph).map((files) => {
    const loop = shortestLoop(graph, files[0], new Set(files));
    const steps = loop.slice(1).map((to, i) => ({ from: loop[i], to, typeOnly: graph.get(loop[i]).get(to) }));
    return { files, loop: steps };
  });
}

/** `a.ts → b.ts → (type) a.ts`: one loop on one line. */
export function showLoop(cycle) {
  return [cycle.loop[0].from, ...cycle.loop.map((s) => (s.typeOnly ? `(type) ${s.to}` : s.to))].join(' → ');
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const rest = args.filter((a) => a !== '--json');
  const dir = path.resolve(rest[0] ?? 'src');
  if (rest.length > 1 || rest.some((a) => a.startsWith('-')) || !existsSync(dir)) {
    process.stderr.write(`import-cycles: ${rest.length > 1 || rest.some((a) => a.startsWith('-')) ? 'usage: node scripts/import-cycles.mjs [DIR] [--json]' : `no such folder: ${dir}`}\n`);
    process.exit(2);
  }
  const cycles = importCycles(dir);
  if (json) process.stdout.write(`${JSON.stringify(cycles, null, 2)}\n`);
  else if (cycles.length === 0) process.stdout.write(`no import cycles under ${path.relative(process.cwd(), dir) || '.'}\n`);
  else {
    process.stdout.write(`${cycles.length} import cycle${cycles.length === 1 ? '' : 's'} under ${path.relative(process.cwd(), dir) || '.'} ("(type)": that import is type-only):\n`);
    for (const cycle of cycles) process.stdout.write(`  ${showLoop(cycle)}\n    files in the ring: ${cycle.files.join(', ')}\n`);
  }
  process.exitCode = cycles.length === 0 ? 0 : 1;
}
