import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import type { Document, LineCounter, Node } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { jsonSyntaxProblem } from './json-syntax.js';
import { configErrors, configSchema, type Config } from './schema.js';

type PathKey = string | number;

const require = createRequire(import.meta.url);
let yamlModule: typeof Yaml | null = null;

/** yaml, loaded with the first config file: a process started from flags never needs it (issue 12, memory). */
function yaml(): typeof Yaml {
  return (yamlModule ??= require('yaml') as typeof Yaml);
}

/** Where a problem is: the node at `path`, or the nearest ancestor that exists (a missing field points at its parent). */
function offsetOf(doc: Document, path: readonly PathKey[], atKey: boolean): number {
  const { isMap, isPair, isScalar, isSeq } = yaml();
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

/** One problem: where (`atKey`: point at the key, not its value) and what is wrong. */
export interface ConfigProblem {
  readonly path: readonly PathKey[];
  readonly atKey: boolean;
  readonly message: string;
}

/**
 * Zod's issues as problems, one per unknown key, and for a union the branch that explains the
 * value best: one that got past the value's type (a URL that is not http, a bad hash key), else
 * the union's own message, which says what forms are accepted.
 */
export function configProblems(issues: readonly z.core.$ZodIssue[], prefix: readonly PathKey[] = []): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path.filter((p): p is PathKey => typeof p !== 'symbol')];
    if (issue.code === 'unrecognized_keys') {
      const messages = issue.message.split('\n');
      issue.keys.forEach((key, i) => out.push({ path: [...path, key], atKey: true, message: messages[i] ?? `unknown key "${key}"` }));
    } else if (issue.code === 'invalid_union') {
      const wrongKind = (e: z.core.$ZodIssue): boolean => e.path.length === 0 && (e.code === 'invalid_type' || e.code === 'invalid_value');
      const branches = issue.errors.map((branch) => branch.filter((e) => !wrongKind(e)));
      const best = branches.find((b) => b.length > 0 && b.every((e) => e.path.length > 0)) ?? branches.find((b) => b.length > 0);
      if (best === undefined) out.push({ path, atKey: false, message: issue.message });
      else out.push(...configProblems(best, path));
    } else {
      out.push({ path, atKey: false, message: issue.message });
    }
  }
  return out;
}

const shownPath = (path: readonly PathKey[]): string => (path.length === 0 ? '(top level)' : path.join('.'));

/** One line per problem: `FILE:LINE:COL path.to.field: what is wrong`, in file order. */
function issueLines(file: string, doc: Document, lines: LineCounter, issues: readonly z.core.$ZodIssue[]): string[] {
  return configProblems(issues)
    .map((problem) => ({ pos: lines.linePos(offsetOf(doc, problem.path, problem.atKey)), problem }))
    .sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col)
    .map(({ pos, problem }) => `${file}:${pos.line}:${pos.col} ${shownPath(problem.path)}: ${problem.message}`);
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
 * Parses and validates config text: JSON when `file` ends in `.json`, else YAML. `file` names the source in
 * error lines. Throws a ConfigError with one `FILE:LINE:COL path: problem` line per problem.
 */
export function parseConfig(text: string, file: string): Config {
  const { LineCounter, parseDocument } = yaml();
  const lines = new LineCounter();
  const at = (offset: number): string => {
    const pos = lines.linePos(offset);
    return `${file}:${pos.line}:${pos.col}`;
  };
  let json: { value: unknown } | null = null;
  if (file.toLowerCase().endsWith('.json')) {
    // JSON by its own rules: YAML would accept a trailing comma, comments and bare words.
    try {
      json = { value: JSON.parse(text) as unknown };
    } catch (err) {
      const problem = jsonSyntaxProblem(text) ?? { offset: 0, message: (err as Error).message };
      const before = text.slice(0, problem.offset);
      const line = before.split('\n').length;
      throw new ConfigError(`${file}:${line}:${problem.offset - before.lastIndexOf('\n')} not valid JSON: ${problem.message}`);
    }
  }
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((err) => `${at(err.pos[0])} ${err.message.split('\n')[0] ?? err.code}`).join('\n'));
  }
  const data: unknown = (json === null ? doc.toJS() : json.value) ?? {};
  const result = configSchema.safeParse(data, { error: configErrors });
  if (!result.success) throw new ConfigError(issueLines(file, doc, lines, result.error.issues).join('\n'));
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
  const result = configSchema.safeParse(input, { error: configErrors });
  if (!result.success) {
    throw new ConfigError(configProblems(result.error.issues).map((problem) => `${shownPath(problem.path)}: ${problem.message.split('\n')[0] ?? problem.message}`).join('\n'));
  }
  return deepFreeze(withDefaults(result.data));
}
