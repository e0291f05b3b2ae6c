import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { parseDurationMs, parseSizeBytes } from '../units.js';

/** The building blocks of the config schema: its error words, strict objects, durations and sizes. */

/**
 * The configuration file's schema: the single source of truth for validation, defaults and the
 * config reference in docs/configuration.md (`npm run docs:config`). Durations are `500ms`/`2s`/`1m` or a number of
 * milliseconds; sizes are `64KiB`/`1MiB` or a number of bytes. After parsing both are numbers.
 */

/** Levenshtein distance, for "did you mean" on unknown keys. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** ` (did you mean "y"?)` when a known name is a likely typo of `value`, else ''. */
export function didYouMean(value: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const distance = editDistance(value.toLowerCase(), candidate.toLowerCase());
    // At most 2 edits, and at most half the word: "udp" is not a typo of "tcp".
    if (distance < bestDistance && distance <= value.length / 2) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best === undefined ? '' : ` (did you mean "${best}"?)`;
}

/** `unknown key "x"`, with ` (did you mean "y"?)` when a known key is at most 2 edits away. */
export function unknownKeyMessage(key: string, known: readonly string[]): string {
  return `unknown key "${key}"${didYouMean(key, known)}`;
}

const kindWords: Readonly<Record<string, string>> = {
  string: 'text', number: 'a number', int: 'a whole number', boolean: 'true or false', array: 'a list', object: 'a mapping', record: 'a mapping', tuple: 'a list',
};

function inputWords(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  if (typeof input === 'string') return `"${input}"`;
  return String(input);
}

/**
 * Zod's issues in the project's words (given to every safeParse of the schema): no bare
 * "Invalid input". Messages set on a schema itself take precedence over these.
 */
export const configErrors: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type': {
      const expected = kindWords[issue.expected] ?? issue.expected;
      if (issue.input === undefined) return `required ${issue.expected === 'string' ? 'text' : issue.expected} is missing`;
      if (issue.expected === 'int' && typeof issue.input === 'number') return `${issue.input} must be a whole number`;
      return `expected ${expected}, got ${inputWords(issue.input)}`;
    }
    case 'too_big': {
      const max = String(issue.maximum);
      if (issue.origin === 'array') return `at most ${max} items`;
      if (issue.origin === 'string') return `at most ${max} characters`;
      return issue.inclusive === false ? `must be less than ${max}` : `must be at most ${max}`;
    }
    case 'too_small': {
      const min = Number(issue.minimum);
      if (issue.origin === 'array') return min === 1 ? 'needs at least one item' : `needs at least ${min} items`;
      if (issue.origin === 'string') return min === 1 ? 'must not be empty' : `must be at least ${min} characters`;
      return issue.inclusive === false ? `must be greater than ${min}` : `must be at least ${min}`;
    }
    case 'invalid_value': {
      const known = issue.values.map(String);
      const shown = typeof issue.input === 'string' ? `"${issue.input}"` : inputWords(issue.input);
      return `${shown} is not one of ${known.join(', ')}${typeof issue.input === 'string' ? didYouMean(issue.input, known) : ''}`;
    }
    case 'invalid_format':
      if (issue.format === 'starts_with') return `must start with "${(issue as { prefix?: string }).prefix ?? ''}"`;
      return `${inputWords(issue.input)} is not a valid ${issue.format}`;
    case 'invalid_union':
      return `${inputWords(issue.input)} is not an accepted form`;
    default:
      return undefined;
  }
};

/**
 * A strict object: unknown keys are errors. The message holds one line per unknown key, in the
 * order of the issue's `keys`, so the loader can point at each key's own position.
 */
export function strict<T extends z.core.$ZodLooseShape>(shape: T) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys' ? issue.keys.map((key) => unknownKeyMessage(key, known)).join('\n') : undefined,
  });
}

/** Runs a units.ts parser inside zod, turning its ConfigError into a validation issue. */
export function parsed<T, C>(parse: (text: string) => T, value: string, ctx: z.core.$RefinementCtx<C>): T {
  try {
    return parse(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: err instanceof ConfigError ? err.message.replace(/^value: /, '') : String(err) });
    return z.NEVER;
  }
}

/** A duration: `500ms`, `2s`, `1m`, `1h`, or a number of milliseconds. Parses to milliseconds. */
export const duration = (allowZero = false) =>
  z.union([
    allowZero ? z.number().nonnegative() : z.number().positive(),
    z.string().transform((text, ctx) => parsed((t) => parseDurationMs(t, 'value', allowZero), text, ctx)),
  ]).meta({ 'x-kind': 'duration' });

/** A size: `65536`, `64KiB`, `1MiB`, or a number of bytes. Parses to bytes. */
export const size = () =>
  z.union([z.number().int().nonnegative(), z.string().transform((text, ctx) => parsed((t) => parseSizeBytes(t, 'value'), text, ctx))]).meta({ 'x-kind': 'size' });

