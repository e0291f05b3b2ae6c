import { readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { configSchema } from './schema.js';

/**
 * The config reference in docs/configuration.md, generated from the schema's descriptions and
 * defaults (`npm run docs:config` rewrites it in place); a test checks the page still matches it.
 */

interface JsonSchema {
  readonly type?: string | readonly string[];
  readonly description?: string;
  readonly default?: unknown;
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly 'x-kind'?: string;
  /** Markdown shown as the default where it depends on another field (health check type). */
  readonly 'x-default'?: string;
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: JsonSchema | boolean;
  readonly items?: JsonSchema;
  readonly anyOf?: readonly JsonSchema[];
}

const showMs = (ms: number): string => (ms === 0 ? '0' : ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);
const showBytes = (bytes: number): string => (bytes % 1024 ** 2 === 0 && bytes > 0 ? `${bytes / 1024 ** 2}MiB` : bytes % 1024 === 0 && bytes > 0 ? `${bytes / 1024}KiB` : String(bytes));

function typeOf(node: JsonSchema): string {
  if (node['x-kind'] !== undefined) return node['x-kind'];
  if (node.enum !== undefined) return node.enum.map((v) => JSON.stringify(v)).join(' \\| ');
  if (node.anyOf !== undefined) return node.anyOf.map((n) => (n.const !== undefined ? JSON.stringify(n.const) : typeOf(n))).join(' or ');
  if (node.type === 'array') return `list of ${node.items === undefined ? 'any' : typeOf(node.items)}`;
  if (node.type === 'object' && typeof node.additionalProperties === 'object') return 'map of name to object';
  return typeof node.type === 'string' ? node.type : (node.type?.join(' or ') ?? 'any');
}

// JSON Schema drops defaults behind transforms (durations, sizes), so defaults come from parsing
// minimal configs: one without and one with a sticky object (whose fields only exist then).
const minimal = (sticky: unknown): unknown => configSchema.parse({ upstreams: { NAME: { backends: ['http://127.0.0.1:1'], sticky } } });
const defaultConfigs = [minimal(false), minimal({})];

function lookup(root: unknown, path: string): unknown {
  let value = root;
  for (const key of path.replace(/\[\]/g, '.0').split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function defaultOf(node: JsonSchema, path: string, required: boolean): string {
  if (required) return 'required';
  if (node['x-default'] !== undefined) return node['x-default'];
  let value: unknown = typeof node.default === 'object' ? undefined : node.default;
  for (const config of defaultConfigs) {
    if (value !== undefined) break;
    value = lookup(config, path);
  }
  if (value === undefined || (typeof value === 'object' && value !== null)) return '';
  if (node['x-kind'] === 'duration' && typeof value === 'number') return `\`${showMs(value)}\``;
  if (node['x-kind'] === 'size' && typeof value === 'number') return `\`${showBytes(value)}\``;
  return `\`${JSON.stringify(value)}\``;
}

/** The object fields nested in a node: a plain object, a map's value, a list's items or a union's object branch. */
function fieldsOf(node: JsonSchema): { node: JsonSchema; suffix: string } | undefined {
  if (node.properties !== undefined) return { node, suffix: '' };
  if (typeof node.additionalProperties === 'object') return { node: node.additionalProperties, suffix: '.NAME' };
  if (node.items !== undefined) {
    const inner = fieldsOf(node.items);
    return inner === undefined ? undefined : { node: inner.node, suffix: `[]${inner.suffix}` };
  }
  const branch = node.anyOf?.find((n) => n.properties !== undefined);
  return branch === undefined ? undefined : { node: branch, suffix: '' };
}

function rows(node: JsonSchema, prefix: string, out: string[]): void {
  for (const [name, field] of Object.entries(node.properties ?? {})) {
    const path = `${prefix}${name}`;
    const description = (field.description ?? '').replace(/\|/g, '\\|');
    out.push(`| \`${path}\` | ${typeOf(field)} | ${defaultOf(field, path, node.required?.includes(name) === true)} | ${description} |`);
    const nested = fieldsOf(field);
    if (nested !== undefined) rows(nested.node, `${path}${nested.suffix}.`, out);
  }
}

/** The markdown table of every config field: path, type, default, description. */
export function configReference(): string {
  const root = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const out = ['| Field | Type | Default | Description |', '| --- | --- | --- | --- |'];
  rows(root, '', out);
  return `${out.join('\n')}\n`;
}

const markers = /(<!-- config-reference:start -->\n)[\s\S]*?(<!-- config-reference:end -->)/;

/** `markdown` with the text between its config-reference markers replaced by `table`. */
export function spliceConfigReference(markdown: string, table: string): string {
  if (!markers.test(markdown)) throw new Error('no <!-- config-reference:start --> ... :end --> markers');
  return markdown.replace(markers, (_, start: string, end: string) => `${start}${table}${end}`);
}

/** Rewrites the reference between the markers of `file` (docs/configuration.md); says whether it changed. */
export function writeConfigReference(file: string): boolean {
  const before = readFileSync(file, 'utf8');
  const after = spliceConfigReference(before, configReference());
  if (after !== before) writeFileSync(file, after);
  return after !== before;
}
