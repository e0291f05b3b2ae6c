import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { normaliseAuthority, requestHost } from '../../src/proxy/request-host.js';

/** requestHost for one Host field and an origin-form target, as HTTP/1.1. */
const ofHost = (value: string) => requestHost(['Host', value], '/', true);

describe('requestHost: one valid Host field (RFC 9110 section 7.2, RFC 3986 section 3.2.2)', () => {
  const valid: readonly (readonly [string, string])[] = [
    ['example.com', 'example.com'],
    ['127.0.0.1:3030', '127.0.0.1:3030'],
    ['Example.COM', 'example.com'],
    ['Example.COM:8080', 'example.com:8080'],
    ['localhost', 'localhost'],
    ['a', 'a'],
    ['x-y_z~1.test', 'x-y_z~1.test'],
    // sub-delims are reg-name characters
    ["a!$&'()*+,;=b", "a!$&'()*+,;=b"],
    // pct-encoded, lower-cased like the rest
    ['a%2Db', 'a%2db'],
    ['%41', '%41'.toLowerCase()],
    // port = *DIGIT: empty after the colon is allowed and dropped (RFC 3986 section 6.2.3)
    ['example.com:', 'example.com'],
    ['example.com:0', 'example.com:0'],
    ['example.com:65535', 'example.com:65535'],
    ['example.com:080', 'example.com:080'],
    ['example.com:00000000000000000080', 'example.com:00000000000000000080'],
    // A trailing dot (a fully qualified name) names the same host: dropped.
    ['example.com.', 'example.com'],
    ['Example.com.:8080', 'example.com:8080'],
    ['a.', 'a'],
    // Not an IPv4address, but a valid reg-name all the same.
    ['999.1.1.1', '999.1.1.1'],
    ['1.2.3', '1.2.3'],
    // IP-literals: IPv6 in brackets, port after
    ['[::1]', '[::1]'],
    ['[::1]:3030', '[::1]:3030'],
    ['[::]', '[::]'],
    ['[::1]:', '[::1]'],
    ['[2001:DB8::1]', '[2001:db8::1]'],
    ['[2001:db8:0:0:0:0:0:1]:443', '[2001:db8:0:0:0:0:0:1]:443'],
    ['[1:2:3:4:5:6:7:8]', '[1:2:3:4:5:6:7:8]'],
    ['[1:2:3:4:5:6:7::]', '[1:2:3:4:5:6:7::]'],
    ['[::2:3:4:5:6:7:8]', '[::2:3:4:5:6:7:8]'],
    ['[1::8]', '[1::8]'],
    ['[::ffff:192.0.2.1]', '[::ffff:192.0.2.1]'],
    ['[1:2:3:4:5:6:192.0.2.1]', '[1:2:3:4:5:6:192.0.2.1]'],
    ['[::192.0.2.1]', '[::192.0.2.1]'],
    ['[0000:0:00:000:0:0:0:ffff]', '[0000:0:00:000:0:0:0:ffff]'],
    // IPvFuture
    ['[v1.x]', '[v1.x]'],
    ['[VF.a:b!]:80', '[vf.a:b!]:80'],
  ];
  for (const [value, expected] of valid) {
    test(`${JSON.stringify(value)} → ${JSON.stringify(expected)}`, () => {
      assert.equal(ofHost(value), expected);
    });
  }

  test('normaliseAuthority reads a range of a longer string (the absolute-form case)', () => {
    assert.equal(normaliseAuthority('http://Example.com:8080/x', 7, 23), 'example.com:8080');
    assert.equal(normaliseAuthority('http://example.com/x', 7, 18), 'example.com');
    assert.equal(normaliseAuthority('http:///x', 7, 7), '');
  });

  test('the field name matches in any case', () => {
    for (const name of ['host', 'HOST', 'hOsT']) assert.equal(requestHost([name, 'a.example'], '/', true), 'a.example');
  });

  test('other fields are not taken for Host, whatever their length', () => {
    assert.equal(requestHost(['Hast', 'x', 'Host', 'a', 'X-Host', 'b', 'Hosts', 'c'], '/', true), 'a');
  });
});

describe('requestHost: invalid Host fields are refused (RFC 9112 section 3.2)', () => {
  const invalid: readonly (readonly [string, string])[] = [
    ['a path', 'example.com/x'],
    ['a path after the port', 'example.com:80/x'],
    ['a query', 'example.com?x'],
    ['a fragment', 'example.com#x'],
    ['userinfo', 'u@a'],
    ['userinfo with password', 'u:p@a'],
    ['inner space', 'exa mple.com'],
    ['a tab', 'a\tb'],
    ['space before the port', 'a :80'],
    ['a backslash', 'a\\b'],
    ['a double quote', 'a"b'],
    ['angle brackets', '<a>'],
    ['a caret', 'a^b'],
    ['a pipe', 'a|b'],
    ['a NUL', 'a\x00b'],
    ['a control char', 'a\x01b'],
    ['DEL', 'a\x7fb'],
    ['non-ASCII', 'exämple.com'],
    ['a comma-joined second host is fine by the grammar, but not a space', 'a, b'],
    ['port out of range', 'a:65536'],
    ['port far out of range', 'a:99999999999999999999'],
    ['non-numeric port', 'a:http'],
    ['hex port', 'a:0x50'],
    ['signed port', 'a:+80'],
    ['negative port', 'a:-1'],
    ['two ports', 'a:80:81'],
    ['a port without a host', ':80'],
    ['only a colon', ':'],
    ['only a dot', '.'],
    ['two trailing dots', 'a..'],
    ['a bad pct-encoding', 'a%zz'],
    ['a short pct-encoding', 'a%4'],
    ['a lone percent', '%'],
    ['unclosed IPv6 literal', '[::1'],
    ['IPv6 without brackets', '::1'],
    ['IPv6 with garbage after the bracket', '[::1]x'],
    ['IPv6 with a port but no colon', '[::1]80'],
    ['IPv6 with a zone id (not in RFC 3986)', '[fe80::1%25eth0]'],
    ['IPv6 with two elisions', '[1::2::3]'],
    ['IPv6 with nine pieces', '[1:2:3:4:5:6:7:8:9]'],
    ['IPv6 with seven pieces and no elision', '[1:2:3:4:5:6:7]'],
    ['IPv6 with eight pieces and an elision', '[1:2:3:4::5:6:7:8]'],
    ['IPv6 with a five-digit piece', '[12345::1]'],
    ['IPv6 with a single leading colon', '[:1::2]'],
    ['IPv6 with a single trailing colon', '[1::2:]'],
    ['IPv6 with a non-hex digit', '[::g]'],
    ['IPv6 with a bad IPv4 tail', '[::256.0.0.1]'],
    ['IPv6 with a leading-zero IPv4 octet', '[::01.2.3.4]'],
    ['IPv6 with a short IPv4 tail', '[::1.2.3]'],
    ['IPv6 with an IPv4 tail not last', '[::1.2.3.4:5]'],
    ['IPv6 with too many pieces before IPv4', '[1:2:3:4:5:6:7:1.2.3.4]'],
    ['empty brackets', '[]'],
    ['a name in brackets', '[example.com]'],
    ['IPvFuture without a version', '[v.x]'],
    ['IPvFuture without a dot', '[v1x]'],
    ['IPvFuture with nothing after the dot', '[v1.]'],
    ['IPvFuture with a slash', '[v1.a/b]'],
    ['a bracket inside a name', 'a[b]'],
  ];
  for (const [name, value] of invalid) {
    test(`${name}: ${JSON.stringify(value)}`, () => {
      assert.equal(ofHost(value), null);
    });
  }

  test('a second Host line, even an identical one', () => {
    assert.equal(requestHost(['Host', 'a', 'Host', 'b'], '/', true), null);
    assert.equal(requestHost(['Host', 'a', 'host', 'a'], '/', true), null);
    assert.equal(requestHost(['Host', 'a', 'X', 'y', 'HOST', ''], '/', true), null);
    assert.equal(requestHost(['Host', 'a', 'Host', 'a'], '/', false), null, 'on HTTP/1.0 too');
  });
});

describe('requestHost: a missing or empty Host', () => {
  test('HTTP/1.1 without Host is refused; HTTP/1.0 without Host has none', () => {
    assert.equal(requestHost(['Accept', '*/*'], '/', true), null);
    assert.equal(requestHost([], '/', true), null);
    assert.equal(requestHost([], '/', false), '');
  });

  test('an empty Host field is valid (RFC 9110 section 7.2) and names no host', () => {
    assert.equal(requestHost(['Host', ''], '/', true), '');
    assert.equal(requestHost(['Host', ''], '/', false), '');
  });
});

describe('requestHost: an absolute-form target replaces Host (RFC 9112 section 3.2.2)', () => {
  const cases: readonly (readonly [string, string | null])[] = [
    ['http://a.example:8080/x', 'a.example:8080'],
    ['http://A.Example/x?y', 'a.example'],
    ['HTTPS://a.example', 'a.example'],
    ['http://a.example?q=1', 'a.example'],
    ['http://a.example#f', 'a.example'],
    ['http://[::1]:3030/', '[::1]:3030'],
    ['http://a.example:/', 'a.example'],
    ['http://a.example./', 'a.example'],
    ['svn+ssh://a.example/', 'a.example'],
    // the same rules as Host
    ['http://u@a.example/', null],
    ['http://u:p@a.example/', null],
    ['http://a.example:99999/', null],
    ['http://a.example:x/', null],
    ['http://a b/', null],
    ['http://[::1/', null],
    ['http://a%zz/', null],
    // an "http" URI with an empty host is invalid (RFC 9110 section 4.2.1)
    ['http:///x', null],
    ['http://', null],
    ['http://:80/', null],
  ];
  for (const [target, expected] of cases) {
    test(`${target} → ${JSON.stringify(expected)}`, () => {
      assert.equal(requestHost(['Host', 'ignored.example'], target, true), expected);
    });
  }

  test('the Host rules still apply to the field the target replaces', () => {
    assert.equal(requestHost([], 'http://a.example/', true), null, 'HTTP/1.1 still needs a Host field');
    assert.equal(requestHost(['Host', 'a', 'Host', 'a'], 'http://a/', true), null, 'and only one');
    assert.equal(requestHost(['Host', 'u@a'], 'http://a/', true), null, 'and a valid one');
    assert.equal(requestHost([], 'http://A.example/', false), 'a.example', 'HTTP/1.0 needs none');
  });

  test('targets without an authority leave Host in charge', () => {
    for (const target of ['/', '/x://y', '*', 'a.example:443', 'http:/x', '1http://b/', 'x', '']) {
      assert.equal(requestHost(['Host', 'H.example'], target, true), 'h.example', target);
    }
  });
});
