import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { TrustedProxies, trustedProxiesFrom, trustedProxyProblem } from '../../src/proxy/trusted.js';

describe('TrustedProxies', () => {
  test('matches IPv4 addresses and CIDR ranges, and nothing outside them', () => {
    const trusted = new TrustedProxies(['10.0.0.0/8', '192.168.1.7', '172.16.0.0/12', '0.0.0.0/32']);
    for (const yes of ['10.0.0.0', '10.255.255.255', '192.168.1.7', '172.16.0.1', '172.31.255.255', '0.0.0.0']) assert.equal(trusted.contains(yes), true, yes);
    for (const no of ['11.0.0.0', '9.255.255.255', '192.168.1.8', '172.32.0.0', '172.15.255.255', '127.0.0.1', '', 'garbage']) assert.equal(trusted.contains(no), false, no);
  });

  test('a /0 range trusts every IPv4 peer; a host bits set in the entry are ignored', () => {
    assert.equal(new TrustedProxies(['0.0.0.0/0']).contains('203.0.113.9'), true);
    const trusted = new TrustedProxies(['10.1.2.3/16']);
    assert.equal(trusted.contains('10.1.200.200'), true);
    assert.equal(trusted.contains('10.2.0.0'), false);
  });

  test('matches IPv6 ranges in any spelling, with and without a zone', () => {
    const trusted = new TrustedProxies(['2001:db8::/32', '::1', 'fe80::/10', '2001:0db8:0000:0000:0000:0000:0000:0000/127']);
    for (const yes of ['2001:db8::1', '2001:DB8:ffff::', '::1', '0:0:0:0:0:0:0:1', 'fe80::1%eth0', 'febf::1']) assert.equal(trusted.contains(yes), true, yes);
    for (const no of ['2001:db9::1', '::2', 'fec0::1', '::', '1::2::3', '2001:db8:::1', ':1::', '1:2:3:4:5:6:7:8:9']) assert.equal(trusted.contains(no), false, no);
  });

  test('IPv4-mapped IPv6 is normalised, in entries and in peer addresses', () => {
    const trusted = new TrustedProxies(['::ffff:10.0.0.0/104', '192.0.2.1']);
    for (const yes of ['10.20.30.40', '::ffff:10.20.30.40', '::ffff:192.0.2.1', '::FFFF:c000:0201']) assert.equal(trusted.contains(yes), true, yes);
    for (const no of ['11.0.0.1', '::ffff:11.0.0.1', '::10.0.0.1']) assert.equal(trusted.contains(no), false, no);
  });

  test('bad entries are refused with the reason; an empty list trusts no one', () => {
    for (const bad of ['10.0.0.0/33', '10.0.0/8', '256.1.1.1', '10.0.0.01', '10.0.0.0/', '10.0.0.0/x', '::1/129', '2001:db8::g', 'example.com', '']) {
      assert.notEqual(trustedProxyProblem(bad), null, bad);
      assert.throws(() => new TrustedProxies([bad]), ConfigError, bad);
    }
    assert.match(trustedProxyProblem('10.0.0.0/33') ?? '', /at most 32/);
    assert.equal(trustedProxyProblem('::/0'), null);
    assert.equal(trustedProxiesFrom([]), null);
    assert.equal(trustedProxiesFrom(undefined), null);
  });
});
