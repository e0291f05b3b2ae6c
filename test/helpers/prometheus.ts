/**
 * A small reader of the Prometheus text exposition format 0.0.4 (prometheus.io/docs/instrumenting/
 * exposition_formats): it checks every line and returns the samples by name and labels.
 */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const types = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, line: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad value "${text}" in: ${line}`);
  return Number(text);
}

/** Reads `{a="x",b="y"}` starting at `start` (the brace); returns the labels and the index after `}`. */
function parseLabels(line: string, start: number): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  let i = start + 1;
  while (line[i] !== '}') {
    const eq = line.indexOf('=', i);
    if (eq === -1) throw new Error(`label without "=" in: ${line}`);
    const name = line.slice(i, eq);
    if (!labelName.test(name)) throw new Error(`bad label name "${name}" in: ${line}`);
    if (name in labels) throw new Error(`label "${name}" repeated in: ${line}`);
    if (line[eq + 1] !== '"') throw new Error(`unquoted label value in: ${line}`);
    let value = '';
    let j = eq + 2;
    for (;;) {
      const c = line[j];
      if (c === undefined) throw new Error(`unterminated label value in: ${line}`);
      if (c === '"') break;
      if (c === '\\') {
        const next = line[j + 1];
        if (next === 'n') value += '\n';
        else if (next === '\\' || next === '"') value += next;
        else throw new Error(`bad escape in label value in: ${line}`);
        j += 2;
      } else {
        value += c;
        j++;
      }
    }
    labels[name] = value;
    i = j + 1;
    if (line[i] === ',') i++;
    else if (line[i] !== '}') throw new Error(`expected "," or "}" after a label in: ${line}`);
  }
  return [labels, i + 1];
}

/**
 * Parses and validates an exposition: HELP/TYPE comments well formed, TYPE at most once per family
 * and before its samples, each family's samples together, names and labels valid, no duplicate
 * series, histogram samples only as _bucket (with `le`), _sum and _count. Throws on the first problem.
 */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  const typed = new Map<string, string>();
  const seen = new Set<string>();
  const closedFamilies = new Set<string>();
  let currentFamily = '';
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (m === null) continue; // other comments are allowed
      const [, kind, name = '', rest = ''] = m;
      if (!metricName.test(name)) throw new Error(`bad metric name in: ${line}`);
      if (kind === 'TYPE') {
        if (!types.has(rest)) throw new Error(`unknown type in: ${line}`);
        if (typed.has(name)) throw new Error(`second TYPE for ${name}`);
        if (seen.has(name) || closedFamilies.has(name)) throw new Error(`TYPE for ${name} after its samples`);
        typed.set(name, rest);
      }
      continue;
    }
    const nameEnd = line.search(/[{ ]/);
    if (nameEnd === -1) throw new Error(`sample without a value: ${line}`);
    const name = line.slice(0, nameEnd);
    if (!metricName.test(name)) throw new Error(`bad metric name in: ${line}`);
    let labels: Record<string, string> = {};
    let rest = nameEnd;
    if (line[nameEnd] === '{') [labels, rest] = parseLabels(line, nameEnd);
    const fields = line.slice(rest).trim().split(' ');
    if (line[rest] !== ' ' || fields.length < 1 || fields.length > 2) throw new Error(`expected " value [timestamp]" in: ${line}`);
    const value = parseValue(fields[0] ?? '', line);
    if (fields[1] !== undefined && !/^-?\d+$/.test(fields[1])) throw new Error(`bad timestamp in: ${line}`);

    const family = familyOf(name, typed);
    if (typed.get(family) === 'histogram') {
      if (name === family || (name.endsWith('_bucket') && !('le' in labels))) throw new Error(`histogram sample without _bucket{le}/_sum/_count: ${line}`);
    }
    if (family !== currentFamily) {
      if (closedFamilies.has(family)) throw new Error(`samples of ${family} are not together`);
      if (currentFamily !== '') closedFamilies.add(currentFamily);
      currentFamily = family;
    }
    const key = seriesKey(name, labels);
    if (seen.has(key)) throw new Error(`duplicate series ${key}`);
    seen.add(key);
    samples.push({ name, labels, value });
  }
  return samples;
}

function familyOf(name: string, typed: ReadonlyMap<string, string>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const type = typed.get(base);
      if (type === 'histogram' || type === 'summary') return base;
    }
  }
  return name;
}

/** `name{a="x",b="y"}` with the labels sorted, for lookups. */
export function seriesKey(name: string, labels: Readonly<Record<string, string>>): string {
  const keys = Object.keys(labels).sort();
  return `${name}{${keys.map((k) => `${k}="${labels[k]}"`).join(',')}}`;
}

/** Samples by series key. */
export function byKey(samples: readonly Sample[]): Map<string, number> {
  return new Map(samples.map((s) => [seriesKey(s.name, s.labels), s.value]));
}
