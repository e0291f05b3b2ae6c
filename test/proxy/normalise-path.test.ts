import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodedTarget, normaliseTarget } from '../../src/proxy/normalise-path.js';
import { originFormTarget } from '../../src/proxy/request-target.js';

type Case = readonly [input: string, expected: string | null];

function check(cases: readonly Case[], normalise: (target: string) => string | null): void {
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input)} → ${JSON.stringify(expected)}`, () => {
      assert.equal(normalise(input), expected);
    });
  }
}

describe('normaliseTarget: already normal targets come back as the same string', () => {
  for (const target of ['/', '/api/users?id=1', '/a/b/', '/.well-known/x', '/a..b/c.', '/..a/.b/...', '/a?x=/../b', '/a?%zz', '/a?x=//y\\z']) {
    test(JSON.stringify(target), () => {
      assert.equal(normaliseTarget(target, false), target);
      assert.equal(normaliseTarget(target, true), target);
      assert.equal(decodedTarget(target), target);
    });
  }
});

describe('normaliseTarget: dot segments (RFC 3986 section 5.2.4 and the section 5.4 examples as paths)', () => {
  check(
    [
      ['/a/b/c/./../../g', '/a/g'],
      ['/mid/content=5/../6', '/mid/6'],
      ['/b/c/./g', '/b/c/g'],
      ['/b/c/.', '/b/c/'],
      ['/b/c/./', '/b/c/'],
      ['/b/c/..', '/b/'],
      ['/b/c/../', '/b/'],
      ['/b/c/../g', '/b/g'],
      ['/b/c/../..', '/'],
      ['/b/c/../../g', '/g'],
      ['/b/c/g.', '/b/c/g.'],
      ['/b/c/.g', '/b/c/.g'],
      ['/b/c/g..', '/b/c/g..'],
      ['/b/c/..g', '/b/c/..g'],
      ['/b/c/./../g', '/b/g'],
      ['/b/c/./g/.', '/b/c/g/'],
      ['/b/c/g/./h', '/b/c/g/h'],
      ['/b/c/g/../h', '/b/c/h'],
      ['/b/c/g;x=1/./y', '/b/c/g;x=1/y'],
      ['/b/c/g;x=1/../y', '/b/c/y'],
      ['/.', '/'],
      ['/./', '/'],
      ['/a/..', '/'],
      ['/a/../', '/'],
      ['/a/./b/../c?q=/../x', '/a/c?q=/../x'],
      ['/a/..?q', '/?q'],
      ['/a/.?q', '/a/?q'],
    ],
    (t) => normaliseTarget(t, false),
  );
});

describe('normaliseTarget: climbing above the root has no normal form', () => {
  check(
    [
      ['/..', null],
      ['/../', null],
      ['/../secret/s.txt', null],
      ['/a/../..', null],
      ['/a/../../b', null],
      ['/a/./../../b?q', null],
      ['/b/c/../../../g', null],
      ['/..?q', null],
    ],
    (t) => normaliseTarget(t, false),
  );
});

describe('normaliseTarget: repeated slashes merge', () => {
  check(
    [
      ['//', '/'],
      ['//secret/s.txt', '/secret/s.txt'],
      ['/a//b///c', '/a/b/c'],
      ['/a//', '/a/'],
      // Merged before dot segments are removed, as the merged path reads.
      ['/a//../b', '/b'],
      ['/a//..//..', null],
      ['/a?b//c', '/a?b//c'],
    ],
    (t) => normaliseTarget(t, false),
  );
});

describe('normaliseTarget: percent-encoding (RFC 3986 sections 2.3, 6.2.2.1, 6.2.2.2)', () => {
  check(
    [
      ['/%73ecret/s.txt', '/secret/s.txt'],
      ['/%7Euser/%41%7a%30-%5F%2D', '/~user/Az0-_-'],
      ['/caf%c3%a9', '/caf%C3%A9'],
      ['/caf%C3%A9', '/caf%C3%A9'],
      ['/a%20b', '/a%20b'],
      ['/%3f?q', '/%3F?q'],
      // Decoded once only: %25 is `%`, not unreserved, so `%252e` stays as it is.
      ['/%252e%252e/secret', '/%252e%252e/secret'],
      ['/%25%32%65', '/%252e'],
      ['/a%2e', '/a.'],
      ['/%2ea', '/.a'],
      ['/a%2e%2e', '/a..'],
      ['/x?%2e%2e/%2F', '/x?%2e%2e/%2F'],
    ],
    (t) => normaliseTarget(t, false),
  );
});

describe('normaliseTarget: malformed escapes have no normal form', () => {
  check(
    [
      ['/%zz', null],
      ['/%4', null],
      ['/a%', null],
      ['/a%4?b', null],
      ['/a%?41', null],
      ['/%g1', null],
      ['/%1g/x', null],
    ],
    (t) => normaliseTarget(t, false),
  );
});

describe('normaliseTarget: ambiguous forms are rejected by default', () => {
  check(
    [
      ['/%2e%2e/secret/s.txt', null],
      ['/%2E%2E/secret', null],
      ['/.%2e/secret', null],
      ['/%2e./secret', null],
      ['/a/%2e/b', null],
      ['/..%2fsecret/s.txt', null],
      ['/a%2Fb', null],
      ['/a%5cb', null],
      ['/a%5Cb', null],
      ['/a\\b', null],
      ['/..\\secret', null],
    ],
    (t) => normaliseTarget(t, false),
  );
});

describe('normaliseTarget with ambiguous forms kept', () => {
  check(
    [
      ['/a%2fb', '/a%2Fb'],
      ['/a%5cb', '/a%5Cb'],
      ['/a\\b', '/a\\b'],
      ['/%2e%2e/secret', '/%2E%2E/secret'],
      ['/.%2e/secret', '/.%2E/secret'],
      ['/a/%2e/b', '/a/%2E/b'],
      ['/..%2fsecret', '/..%2Fsecret'],
      // Still normal otherwise: unreserved decoded, dots removed, slashes merged, no climbing.
      ['/x/%73ecret/../%7e', '/x/~'],
      ['/a//%2e%2e/./b/..', '/a/%2E%2E/'],
      ['/../%2e%2e', null],
      ['/%zz', null],
    ],
    (t) => normaliseTarget(t, true),
  );
});

describe('decodedTarget: how a decoding backend reads a target with ambiguous forms kept', () => {
  check(
    [
      ['/a%2Fb', '/a/b'],
      ['/a%5Cb', '/a/b'],
      ['/a\\b', '/a/b'],
      ['/%2E%2E/secret', null],
      ['/x/%2E%2E/secret', '/secret'],
      ['/x/.%2E/secret/', '/secret/'],
      ['/x/..%2Fsecret', '/secret'],
      ['/x/..%5Csecret?q=%2F', '/secret?q=%2F'],
      ['/x/..\\..\\secret', null],
      ['/a/%2E/b', '/a/b'],
      ['/a%2F%2Fb', '/a/b'],
      ['/%252E%252E', '/%252E%252E'],
    ],
    decodedTarget,
  );
});

describe('absolute-form targets are normalised after originFormTarget', () => {
  check(
    [
      ['http://other.example/a/./b/../c?x=/..', '/a/c?x=/..'],
      ['http://other.example/../secret', null],
      ['http://other.example/%73ecret', '/secret'],
      ['http://other.example?q=/../x', '/?q=/../x'],
    ],
    (t) => normaliseTarget(originFormTarget(t) ?? '', false),
  );
});
