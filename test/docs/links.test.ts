import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

// Checks the links of README.md and docs/*.md as GitHub renders them: a relative link names a file
// or folder of the repository, and a #fragment names a heading of the target page (GitHub's slugs).
// External links are not fetched (the suite runs offline); they only have to be well-formed URLs.

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** Blanks fenced code blocks, keeping offsets and line breaks. */
function withoutFences(markdown: string): string {
  const lines = markdown.split('\n');
  let fence: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === undefined && marker !== undefined) {
      fence = marker;
      lines[i] = '';
    } else if (fence !== undefined) {
      if (marker !== undefined && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker) fence = undefined;
      lines[i] = '';
    }
  }
  return lines.join('\n');
}

/** Blanks fenced code blocks and inline code spans, keeping offsets and line breaks. */
function withoutCode(markdown: string): string {
  return withoutFences(markdown).replace(/(`+)([\s\S]*?[^`])\1(?!`)/g, (span) => span.replace(/[^\n]/g, ' '));
}

/** GitHub's id for a heading (github-slugger): lowercase, punctuation dropped but `-` and `_`, a `-` per space. */
function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .replace(/<[^>]+>/g, '') // inline HTML
    .replace(/[`*]/g, '') // code and emphasis marks
    .replace(/(^|[^\p{L}\p{N}])_+|_+(?=[^\p{L}\p{N}]|$)/gu, '$1'); // _emphasis_, not snake_case
  return text.trim().toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

/** Every anchor a page defines: heading slugs (duplicates get -1, -2, …) and HTML id/name attributes. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const add = (base: string): void => {
    let id = base;
    while (anchors.has(id)) {
      const n = (seen.get(base) ?? 0) + 1;
      seen.set(base, n);
      id = `${base}-${n}`;
    }
    anchors.add(id);
  };
  const lines = withoutFences(markdown).split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const atx = /^ {0,3}#{1,6}(?:\s+(.*?))?(?:\s+#+)?\s*$/.exec(line);
    // A setext heading is a paragraph line underlined with === or ---.
    const previous = i > 0 ? (lines[i - 1] as string) : '';
    const setext = /^ {0,3}(=+|-+)\s*$/.test(line) && /\S/.test(previous) && !/^ {0,3}([-*+>#|]|\d+[.)])/.test(previous);
    if (atx !== null) add(slug(atx[1] ?? ''));
    else if (setext) add(slug(previous));
    for (const m of line.matchAll(/<[a-z][^>]*\s(?:id|name)="([^"]+)"/gi)) anchors.add(m[1] as string);
  }
  return anchors;
}

interface Link {
  readonly target: string;
  readonly line: number;
  /** A `](` that does not open a valid destination (a space in it, an unclosed parenthesis): GitHub shows it as text. */
  readonly malformed: boolean;
}

/** Inline links and images, autolinks, reference definitions and HTML href/src, outside code. */
function linksOf(markdown: string): Link[] {
  const text = withoutCode(markdown);
  const lineAt = (index: number): number => text.slice(0, index).split('\n').length;
  const found: { target: string; index: number; malformed: boolean }[] = [];
  const covered: [number, number][] = [];
  for (const m of text.matchAll(/!?\[(?:[^[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]*)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g)) {
    found.push({ target: (m[1] as string).replace(/^<|>$/g, ''), index: m.index, malformed: false });
    covered.push([m.index, m.index + m[0].length]);
  }
  for (const m of text.matchAll(/\]\(([^)\n]*)/g)) {
    if (!covered.some(([from, to]) => m.index >= from && m.index < to)) found.push({ target: m[1] as string, index: m.index, malformed: true });
  }
  for (const m of text.matchAll(/<([a-z][a-z0-9+.-]*:[^<>\s]*)>/gi)) found.push({ target: m[1] as string, index: m.index, malformed: false });
  for (const m of text.matchAll(/^ {0,3}\[[^\]]+\]:\s*(\S+)/gm)) found.push({ target: m[1] as string, index: m.index, malformed: false });
  for (const m of text.matchAll(/\s(?:href|src)="([^"]*)"/g)) found.push({ target: m[1] as string, index: m.index, malformed: false });
  return found.sort((a, b) => a.index - b.index).map(({ target, index, malformed }) => ({ target, line: lineAt(index), malformed }));
}

/**
 * Problems with the links of `pages` (paths relative to `root`), one line each as FILE:LINE: link: why.
 * An anchor into another .md file is checked against that file's headings even when it is not a page.
 */
function checkLinks(root: string, pages: readonly string[]): string[] {
  const problems: string[] = [];
  const anchorCache = new Map<string, Set<string>>();
  const anchorsIn = (file: string): Set<string> => {
    let anchors = anchorCache.get(file);
    if (anchors === undefined) anchorCache.set(file, (anchors = anchorsOf(readFileSync(join(root, file), 'utf8'))));
    return anchors;
  };
  for (const page of pages) {
    for (const { target, line, malformed } of linksOf(readFileSync(join(root, page), 'utf8'))) {
      const problem = (why: string): void => {
        problems.push(`${page}:${line}: ${target === '' ? '()' : target}: ${why}`);
      };
      if (malformed) {
        problem('not a well-formed link (a space or an unclosed parenthesis in the address?)');
        continue;
      }
      if (target === '') {
        problem('empty link');
        continue;
      }
      const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(target)?.[1]?.toLowerCase();
      if (scheme !== undefined) {
        if (scheme === 'mailto') continue;
        if (scheme !== 'http' && scheme !== 'https') problem(`scheme ${scheme}: is not http or https`);
        else if (!URL.canParse(target) || new URL(target).hostname === '' || !/^https?:\/\/[^/?#]/i.test(target)) problem('not a well-formed URL');
        continue;
      }
      if (!/^(?:[^%]|%[0-9a-f]{2})*$/i.test(target)) {
        problem('malformed percent-escape');
        continue;
      }
      const hash = target.indexOf('#');
      const path = (hash === -1 ? target : target.slice(0, hash)).replace(/\?.*$/, '');
      const fragment = hash === -1 ? undefined : target.slice(hash + 1);
      if (path.startsWith('/')) {
        problem('a link from the repository root breaks on GitHub; write it relative to this file');
        continue;
      }
      let file = page;
      if (path !== '') {
        file = normalize(join(dirname(page), decodeURIComponent(path)));
        if (file === '..' || file.startsWith(`..${sep}`)) {
          problem('points outside the repository');
          continue;
        }
        if (!existsSync(join(root, file))) {
          problem(`no such file ${file.split(sep).join('/')}`);
          continue;
        }
      }
      if (fragment === undefined || !file.endsWith('.md')) continue;
      if (!anchorsIn(file).has(decodeURIComponent(fragment))) problem(`no heading #${fragment} in ${file.split(sep).join('/')}`);
    }
  }
  return problems;
}

const docsPages = (root: string): string[] => [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
];

test('every link and anchor in README.md and docs/*.md resolves', () => {
  const pages = docsPages(repoRoot);
  assert.ok(pages.length > 5, `README.md and the docs pages: ${pages.join(', ')}`);
  assert.deepEqual(checkLinks(repoRoot, pages), []);
});

test('the README links every docs page', () => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const linked = new Set(linksOf(readme).map((l) => l.target.replace(/#.*$/, '')));
  const missing = docsPages(repoRoot)
    .slice(1)
    .filter((page) => !linked.has(page));
  assert.deepEqual(missing, []);
});

test('heading ids follow GitHub: lowercase, punctuation dropped but - and _, duplicates numbered', () => {
  const anchors = anchorsOf(
    [
      '# Switchyard',
      '## Forwarding headers and trusted proxies',
      '## `maxInFlight` and the queue (v2)',
      '## Hello, world!',
      '## A -- B',
      '## snake_case and _emphasis_',
      '## [Linked](x.md) **bold**',
      '## Dup',
      '## Dup',
      '## Dup',
      '```',
      '## Not a heading, in a code block',
      '```',
      'Setext',
      '------',
    ].join('\n'),
  );
  assert.deepEqual(
    [...anchors],
    [
      'switchyard',
      'forwarding-headers-and-trusted-proxies',
      'maxinflight-and-the-queue-v2',
      'hello-world',
      'a----b',
      'snake_case-and-emphasis',
      'linked-bold',
      'dup',
      'dup-1',
      'dup-2',
      'setext',
    ],
  );
});

test('the check fails on a missing file, a missing anchor and a malformed URL, and ignores code', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'swy-links-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'docs'));
  writeFileSync(join(root, 'docs', 'b.md'), '# B\n\n## Part\n\n## Part\n\nBack to [the start](../README.md#top).\n');
  writeFileSync(join(root, 'docs', 'c.txt'), 'plain\n');
  writeFileSync(
    join(root, 'README.md'),
    [
      '# Top',
      '',
      'Good: [b](docs/b.md), [part](docs/b.md#part), [second part](docs/b.md#part-1), [here](#top),',
      '[folder](docs/), [text](docs/c.txt), ![image](docs/c.txt "title"), <https://example.com/x>,',
      '[spaced](<docs/b.md>) and [a link whose text',
      'wraps](docs/b.md#part).',
      '',
      'Bad: [gone](docs/missing.md), [no part](docs/b.md#third-part), [here](#bottom),',
      '[third](docs/b.md#part-2), [url](https://exa mple.com), <https://>, [root](/docs/b.md),',
      '[outside](../elsewhere.md), [scheme](ftp://example.com/x), [empty]().',
      '',
      'Ignored: `[code](nowhere.md)` and',
      '',
      '```md',
      '[fenced](nowhere.md)',
      '```',
    ].join('\n'),
  );
  assert.deepEqual(checkLinks(root, docsPages(root)), [
    'README.md:8: docs/missing.md: no such file docs/missing.md',
    'README.md:8: docs/b.md#third-part: no heading #third-part in docs/b.md',
    'README.md:8: #bottom: no heading #bottom in README.md',
    'README.md:9: docs/b.md#part-2: no heading #part-2 in docs/b.md',
    'README.md:9: https://exa mple.com: not a well-formed link (a space or an unclosed parenthesis in the address?)',
    'README.md:9: https://: not a well-formed URL',
    'README.md:9: /docs/b.md: a link from the repository root breaks on GitHub; write it relative to this file',
    'README.md:10: ../elsewhere.md: points outside the repository',
    'README.md:10: ftp://example.com/x: scheme ftp: is not http or https',
    'README.md:10: (): empty link',
  ]);
});
