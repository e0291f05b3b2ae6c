import { readFileSync } from 'node:fs';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { configSchema, type Config } from './schema.js';

type PathKey = string | number;

/** Where a problem is: the node at `path`, or the nearest ancestor that exists (a missing field points at its parent). */
function offsetOf(doc: Document, path: readonly PathKey[], atKey: boolean): number {
  let node: unknown = doc.contents;
  let offset = (node as Node | null)?.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const key = path[i];
    let next: unknown;
    let keyNode: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(key));
      keyNode = pair?.key;
      next = pair?.value;
    } else if (isSeq(node) && typeof key === 'number') {
      next = node.items[key];
    }
    const last = i === path.length - 1;
    if (last && atKey && keyNode !== undefined) return (keyNode as Node).range?.[0] ?? offset;
    if (next === undefined || next === null) return keyNode !== undefined ? ((keyNode as Node).range?.[0] ?? offset) : offset;
    node = next;
    offset = (node as Node).range?.[0] ?? offset;
  }
  return offset;
}

/** One line per problem: `FILE:LINE:COL path.to.field: what is wrong`. */
function issueLines(file: string, doc: Document, lines: LineCounter, issues: readonly z.core.$ZodIssue[]): string[] {
  const out: string[] = [];
  const at = (path: readonly PathKey[], atKey: boolean, message: string): void => {
    const pos = lines.linePos(offsetOf(doc, path, atKey));
    const shown = path.length === 0 ? '(top level)' : path.join('.');
    out.push(`${file}:${pos.line}:${pos.col} ${shown}: ${message}`);
  };
  for (const issue of issues) {
    const path = issue.path.filter((p): p is PathKey => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      const messages = issue.message.split('\n');
      issue.keys.forEach((key, i) => at([...path, key], true, messages[i] ?? `unknown key "${key}"`));
    } else if (issue.code === 'invalid_union') {
      // A union's branches each explain themselves; the most specific branch (deepest path) is the useful one.
      const branches = issue.errors.map((branch) => branch.filter((e) => e.code !== 'invalid_type' || e.path.length > 0));
      const best = branches.find((b) => b.length > 0 && b.every((e) => e.path.length > 0)) ?? branches.find((b) => b.length > 0);
      if (best === undefined) at(path, false, issue.message);
      else for (const line of issueLines(file, doc, lines, best.map((e) => ({ ...e, path: [...path, ...e.path] }) as z.core.$ZodIssue))) out.push(line);
    } else if (issue.code === 'invalid_type' && issue.message.endsWith('received undefined')) {
      at(path, false, `required ${issue.expected === 'string' ? 'text' : issue.expected} is missing`);
    } else {
      at(path, false, issue.message);
    }
  }
  return out;
}

/** Fills in what the schema cannot: with no routes, everything goes to the only upstream. */
function withDefaults(config: Config): Config {
  const names = Object.keys(config.upstreams);
  if (config.routes.length > 0 || names.length !== 1) return config;
  return { ...config, routes: [{ upstream: names[0] as string }] };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Parses and validates config text (YAML or JSON, which is YAML too). `file` names the source in
 * error lines. Throws a ConfigError with one `FILE:LINE:COL path: problem` line per problem.
 */
export function parseConfig(text: string, file: string): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((err) => {
      const pos = lines.linePos(err.pos[0]);
      return `${file}:${pos.line}:${pos.col} ${err.message.split('\n')[0] ?? err.code}`;
    });
    throw new ConfigError(problems.join('\n'));
  }
  const data: unknown = doc.toJS() ?? {};
  const result = configSchema.safeParse(data);
  if (!result.success) {
    // In file order: line, then column.
    const position = (line: string): number[] => line.slice(file.length + 1).split(' ')[0]?.split(':').map(Number) ?? [];
    const sorted = issueLines(file, doc, lines, result.error.issues).sort((a, b) => {
      const [al = 0, ac = 0] = position(a);
      const [bl = 0, bc = 0] = position(b);
      return al - bl || ac - bc;
    });
    throw new ConfigError(sorted.join('\n'));
  }
  return deepFreeze(withDefaults(result.data));
}

/** Reads and validates a config file (`.yaml`, `.yml` or `.json`); see parseConfig. */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  return parseConfig(text, file);
}

/**
 * Validates a config given as a value (library use). Problems are one `path: what is wrong`
 * line each, as in files but without positions.
 */
export function parseConfigInput(input: unknown): Config {
  const result = configSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const path = issue.path.filter((p): p is PathKey => typeof p !== 'symbol').join('.');
      return `${path === '' ? '(top level)' : path}: ${issue.message.split('\n')[0] ?? issue.message}`;
    });
    throw new ConfigError(lines.join('\n'));
  }
  return deepFreeze(withDefaults(result.data));
}
