/** Address classes, ranges and domain entries of the tool proxy policy, and its configuration checks (SPEC §10). */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/config/config-error.js';
import { CidrSet, matchDomain, nonPublicClass, parseCidr } from '../../src/tools/address-policy.js';
import type { RawToolsConfig } from '../../src/tools/tools-config.js';
import { simPool } from '../support/harness.js';

describe('non-public addresses', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['100.64.0.1', 'shared (CGNAT)'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'link-local'],
    ['fd12:3456::1', 'unique-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['0:0:0:0:0:ffff:a00:1', 'private'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['64:ff9b::7f00:1', 'NAT64'],
  ])('%s is %s', (address, cls) => expect(nonPublicClass(address)).toBe(cls));

  it.each(['8.8.8.8', '172.32.0.1', '100.128.0.1', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])(
    '%s is public',
    (address) => expect(nonPublicClass(address)).toBeUndefined(),
  );
});

describe('allowed ranges', () => {
  it('parse IPv4, IPv6 and mapped ranges, and refuse malformed ones', () => {
    expect(parseCidr('10.0.0.0/8')).toEqual({ address: '10.0.0.0', prefix: 8, family: 4 });
    expect(parseCidr('fd00::/8')).toEqual({ address: 'fd00::', prefix: 8, family: 6 });
    expect(parseCidr('::ffff:10.0.0.0/104')).toEqual({ address: '10.0.0.0', prefix: 8, family: 4 });
    expect(parseCidr('127.0.0.1')).toEqual({ address: '127.0.0.1', prefix: 32, family: 4 });
    for (const bad of ['10.0.0.0/33', '10.0.0.0/x', 'example.com/8', '10.0.0.0/8/1', '::/129'])
      expect(parseCidr(bad), bad).toBeUndefined();
  });

  it('match addresses, mapped ones as IPv4', () => {
    const set = new CidrSet(['127.0.0.0/8', 'fd00::/8']);
    expect(set.has('127.0.0.5')).toBe(true);
    expect(set.has('::ffff:127.0.0.5')).toBe(true);
    expect(set.has('fd00::1')).toBe(true);
    expect(set.has('10.0.0.1')).toBe(false);
    expect(new CidrSet([]).has('127.0.0.1')).toBe(false);
  });
});

describe('domain entries', () => {
  it('match exactly, or strictly below a .suffix', () => {
    const list = ['example.com', '.corp.example'];
    expect(matchDomain('example.com', list)).toBe('example.com');
    expect(matchDomain('EXAMPLE.com.', list)).toBe('example.com');
    expect(matchDomain('www.example.com', list)).toBeUndefined();
    expect(matchDomain('a.corp.example', list)).toBe('.corp.example');
    expect(matchDomain('b.a.corp.example', list)).toBe('.corp.example');
    expect(matchDomain('corp.example', list)).toBeUndefined();
    expect(matchDomain('evilcorp.example', list)).toBeUndefined();
  });
});

describe('tools: configuration', () => {
  const load = (tools: RawToolsConfig) =>
    validateConfig({ profile: 'dev', pools: [simPool('p', 'vllm')], tools });

  it('defaults to off, with the documented bounds; tenant overrides replace fields', () => {
    const { config } = load({ tenants: [{ id: 'alice', enabled: true, deny_domains: ['Bad.Example'] }] });
    expect(config.tools.defaults).toMatchObject({
      enabled: false,
      allowPrivate: false,
      allowIpLiterals: false,
      maxResponseBytes: 1_048_576,
      timeoutMs: 10_000,
      maxRedirects: 5,
    });
    expect(config.tools.tenants.get('alice')).toMatchObject({
      enabled: true,
      denyDomains: ['bad.example'],
      timeoutMs: 10_000,
    });
    expect(config.tools.forwardHeaders).toContain('accept');
  });

  it('names every malformed entry', () => {
    let err: unknown;
    try {
      load({
        allow_cidrs: ['10.0.0.0/40'],
        deny_domains: ['bad domain'],
        allowed_mime_types: ['text'],
        redact_patterns: ['('],
        forward_headers: ['bad header'],
        search: { provider: 'template', url: 'http://search.example/?q=' },
        tenants: [{ id: 'a' }, { id: 'a' }],
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const text = (err as Error).message;
    for (const part of [
      'tools.allow_cidrs[0]',
      'tools.deny_domains[0]',
      'tools.allowed_mime_types[0]',
      'tools.redact_patterns[0]',
      'tools.forward_headers[0]',
      'tools.search.url: a template needs a {query} placeholder',
      "tools.tenants[1].id: duplicate tenant 'a'",
    ])
      expect(text).toContain(part);
  });
});
