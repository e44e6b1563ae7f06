import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  classifyAddress,
  parseDestinationUrl,
  STRICT_EGRESS_POLICY,
  type EgressPolicy,
} from '../src/delivery/egress-policy.js';
import { HookdError } from '../src/errors.js';

const strict: EgressPolicy = STRICT_EGRESS_POLICY;
const relaxed: EgressPolicy = { allowPrivateDestinations: true };

/**
 * [address, what it is, allowed under the relaxed policy?]. Every entry is refused under the
 * strict policy with cause `internal_address`. Ranges with unusual prefix lengths get their first
 * and last address; the neighbours just outside are in PUBLIC below.
 */
const INTERNAL: ReadonlyArray<readonly [string, string, boolean]> = [
  // IPv4
  ['0.0.0.0', 'unspecified', false],
  ['0.1.2.3', '0.0.0.0/8 "this network"', false],
  ['0.255.255.255', '0.0.0.0/8 last', false],
  ['127.0.0.1', 'loopback', true],
  ['127.255.255.254', 'loopback (end of 127/8)', true],
  ['10.0.0.0', 'RFC 1918 10/8 first', true],
  ['10.255.255.255', 'RFC 1918 10/8 last', true],
  ['172.16.0.0', 'RFC 1918 172.16/12 first', true],
  ['172.31.255.255', 'RFC 1918 172.16/12 last', true],
  ['192.168.0.1', 'RFC 1918 192.168/16', true],
  ['192.168.255.255', 'RFC 1918 192.168/16 last', true],
  ['100.64.0.0', 'CGNAT first', true],
  ['100.127.255.255', 'CGNAT last', true],
  ['169.254.169.254', 'cloud metadata (link-local)', false],
  ['169.254.0.1', 'link-local', false],
  ['169.254.255.255', 'link-local last', false],
  ['224.0.0.1', 'multicast first block', false],
  ['239.255.255.250', 'multicast (SSDP)', false],
  ['240.0.0.1', '240/4 reserved', false],
  ['255.255.255.254', '240/4 reserved last', false],
  ['255.255.255.255', 'limited broadcast', false],
  ['192.0.0.1', 'IETF protocol assignments 192.0.0.0/24', false],
  ['192.0.0.8', 'IPv4 dummy address', false],
  ['192.0.0.170', 'NAT64/DNS64 discovery', false],
  ['192.0.0.255', '192.0.0.0/24 last', false],
  ['192.0.2.1', 'TEST-NET-1', false],
  ['198.51.100.7', 'TEST-NET-2', false],
  ['203.0.113.9', 'TEST-NET-3', false],
  ['192.88.99.1', '6to4 relay anycast', false],
  ['198.18.0.0', 'benchmarking first', false],
  ['198.19.255.255', 'benchmarking last', false],
  // IPv6
  ['::', 'unspecified', false],
  ['::1', 'loopback', true],
  ['0:0:0:0:0:0:0:1', 'loopback (long form)', true],
  ['::7f00:1', 'IPv4-compatible ::/96 embedding 127.0.0.1', false],
  ['::127.0.0.1', 'IPv4-compatible, dotted', false],
  ['::8.8.8.8', 'IPv4-compatible embedding a public IPv4 (refused as a range)', false],
  ['::ffff:0:7f00:1', 'SIIT ::ffff:0:0:0/96 embedding 127.0.0.1', false],
  ['::ffff:0:169.254.169.254', 'SIIT, dotted', false],
  ['64:ff9b::a9fe:a9fe', 'NAT64 embedding 169.254.169.254', false],
  ['64:ff9b::127.0.0.1', 'NAT64 embedding 127.0.0.1, dotted', false],
  ['64:ff9b::808:808', 'NAT64 embedding 8.8.8.8 (refused as a range)', false],
  ['64:ff9b:1::1', 'NAT64 local-use 64:ff9b:1::/48', false],
  ['64:ff9b:1:ffff:ffff:ffff:ffff:ffff', 'NAT64 local-use last', false],
  ['100::1', 'discard-only 100::/64', false],
  ['100:0:0:1::1', 'dummy prefix 100:0:0:1::/64', false],
  ['2001::1', 'Teredo 2001::/32', false],
  ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'Teredo embedding (obfuscated) 127.0.0.1', false],
  ['2001:1::1', 'IETF protocol assignments 2001::/23', false],
  ['2001:2::1', 'benchmarking 2001:2::/48', false],
  ['2001:10::1', 'ORCHID 2001:10::/28', false],
  ['2001:1f:ffff::1', 'ORCHID last', false],
  ['2001:20::1', 'ORCHIDv2 2001:20::/28', false],
  ['2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff', '2001::/23 last', false],
  ['2001:db8::1', 'documentation 2001:db8::/32', false],
  ['2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', 'documentation 2001:db8::/32 last', false],
  ['3fff::1', 'documentation 3fff::/20', false],
  ['3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff', 'documentation 3fff::/20 last', false],
  ['2002:7f00:1::', '6to4 embedding 127.0.0.1', false],
  ['2002:a9fe:a9fe::1', '6to4 embedding 169.254.169.254', false],
  ['2002:808:808::1', '6to4 embedding 8.8.8.8 (refused as a range)', false],
  ['5f00::1', 'SRv6 SIDs 5f00::/16', false],
  ['fc00::1', 'ULA fc00::/7 first half', true],
  ['fd12:3456:789a::1', 'ULA fd00::/8', true],
  ['fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ULA last', true],
  ['fe80::1', 'link-local', false],
  ['febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'link-local last', false],
  ['fec0::1', 'site-local (deprecated)', false],
  ['feff::1', 'site-local last block', false],
  ['ff02::1', 'multicast all-nodes', false],
  ['ff05::1:3', 'multicast site-local', false],
  ['4000::1', 'outside 2000::/3', false],
  ['1000::1', 'outside 2000::/3', false],
  ['fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'just below ULA (outside 2000::/3)', false],
  ['fe00::1', 'just above ULA (outside 2000::/3)', false],
  ['2:3::4', 'in ::/8 but not ::/96', false],
];

/** Global unicast: allowed under both policies. Includes the neighbours of refused ranges. */
const PUBLIC: readonly string[] = [
  '8.8.8.8',
  '1.1.1.1',
  '93.184.216.34',
  '1.0.0.0',
  '9.255.255.255',
  '11.0.0.0',
  '100.63.255.255',
  '100.128.0.0',
  '126.255.255.255',
  '128.0.0.0',
  '169.253.255.255',
  '169.255.0.0',
  '172.15.255.255',
  '172.32.0.0',
  '192.0.1.0',
  '192.0.3.0',
  '192.31.196.1',
  '192.88.98.255',
  '192.88.100.0',
  '192.167.255.255',
  '192.169.0.0',
  '198.17.255.255',
  '198.20.0.0',
  '223.255.255.255',
  '2606:4700:4700::1111',
  '2a00:1450:4001:81b::200e',
  '2001:200::1',
  '2001:db7:ffff::1',
  '2001:db9::1',
  '2003::1',
  '3fff:1000::1',
  '3ffe:ffff::1',
  '2620:4f:8000::1',
  '::ffff:8.8.8.8',
  '::ffff:808:808',
];

describe('classifyAddress', () => {
  it.each(INTERNAL)('refuses %s (%s) under the strict policy', (address) => {
    const verdict = classifyAddress(address, strict);
    expect(verdict).toMatchObject({ allowed: false, cause: 'internal_address' });
  });

  it.each(INTERNAL)('relaxed policy on %s (%s): re-admitted = %s', (address, _what, readmitted) => {
    const verdict = classifyAddress(address, relaxed);
    if (readmitted) expect(verdict).toEqual({ allowed: true });
    else expect(verdict).toMatchObject({ allowed: false, cause: 'internal_address' });
  });

  it.each(PUBLIC)('allows the global unicast address %s under both policies', (address) => {
    expect(classifyAddress(address, strict)).toEqual({ allowed: true });
    expect(classifyAddress(address, relaxed)).toEqual({ allowed: true });
  });

  it('names the matching range in the reason, for operators', () => {
    const verdict = classifyAddress('169.254.169.254', strict);
    expect(verdict.allowed).toBe(false);
    if (!verdict.allowed) expect(verdict.reason).toContain('169.254.0.0/16');
    const outside = classifyAddress('4000::1', strict);
    if (!outside.allowed) expect(outside.reason).toContain('2000::/3');
  });

  describe('IPv4-mapped IPv6 is unmapped and judged as IPv4', () => {
    it.each([
      ['::ffff:127.0.0.1', true],
      ['::ffff:7f00:1', true],
      ['::FFFF:7F00:0001', true],
      ['0:0:0:0:0:ffff:7f00:1', true],
      ['::ffff:10.0.0.1', true],
      ['::ffff:a00:1', true],
      ['::ffff:169.254.169.254', false],
      ['::ffff:a9fe:a9fe', false],
      ['::ffff:0.0.0.0', false],
      ['::ffff:224.0.0.1', false],
      ['::ffff:192.0.2.1', false],
    ] as const)('%s (relaxed re-admits: %s)', (address, readmitted) => {
      expect(classifyAddress(address, strict)).toMatchObject({
        allowed: false,
        cause: 'internal_address',
      });
      expect(classifyAddress(address, relaxed).allowed).toBe(readmitted);
    });

    it('judges every mapped form exactly like the IPv4 address (property)', () => {
      fc.assert(
        fc.property(fc.nat({ max: 0xffffffff }), fc.boolean(), (value, allowPrivate) => {
          const policy = { allowPrivateDestinations: allowPrivate };
          const octets = [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff);
          const dotted = octets.join('.');
          const hex = `::ffff:${((value >>> 16) & 0xffff).toString(16)}:${(value & 0xffff).toString(16)}`;
          const expected = classifyAddress(dotted, policy).allowed;
          expect(classifyAddress(`::ffff:${dotted}`, policy).allowed).toBe(expected);
          expect(classifyAddress(hex, policy).allowed).toBe(expected);
        }),
        { numRuns: 2000 },
      );
    });
  });

  it.each(['fe80::1%eth0', '::1%lo', 'fe80::1%25eth0', '2606:4700:4700::1111%1'])(
    'refuses the zone id %s as malformed under both policies',
    (address) => {
      expect(classifyAddress(address, strict)).toMatchObject({ cause: 'malformed_address' });
      expect(classifyAddress(address, relaxed)).toMatchObject({ cause: 'malformed_address' });
    },
  );

  it.each([
    '',
    'localhost',
    'example.com',
    '1.2.3',
    '01.2.3.4',
    '256.1.1.1',
    '1.2.3.4.5',
    '0x7f.0.0.1',
    '2130706433',
    '[::1]',
    ' 8.8.8.8',
    '8.8.8.8 ',
    '::g',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    '::ffff:1.2.3.256',
  ])('refuses the non-literal %j as malformed under both policies', (address) => {
    expect(classifyAddress(address, strict)).toMatchObject({
      allowed: false,
      cause: 'malformed_address',
    });
    expect(classifyAddress(address, relaxed)).toMatchObject({
      allowed: false,
      cause: 'malformed_address',
    });
  });

  it('fails closed for a policy object from untyped config', () => {
    const loose = { allowPrivateDestinations: 'yes' } as unknown as EgressPolicy;
    expect(classifyAddress('127.0.0.1', loose).allowed).toBe(false);
  });
});

function expectInvalid(run: () => unknown, field = 'url'): HookdError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(HookdError);
  const error = caught as HookdError;
  expect(error.code).toBe('HOOKD_ERR_INVALID_ARGUMENT');
  expect(error.field).toBe(field);
  expect(error.message.startsWith(`${field} `)).toBe(true);
  return error;
}

describe('parseDestinationUrl', () => {
  it.each([
    ['https://example.com/hooks', 'https://example.com/hooks'],
    ['http://example.com:8080/x?y=1#z', 'http://example.com:8080/x?y=1#z'],
    ['HTTPS://Hooks.Example.COM', 'https://hooks.example.com/'],
    ['https://hooks.example.com./', 'https://hooks.example.com./'],
    ['https://8.8.8.8/', 'https://8.8.8.8/'],
    ['https://[2606:4700:4700::1111]:8443/', 'https://[2606:4700:4700::1111]:8443/'],
    // Hostnames are not resolved at write time: the connect-time guard judges what they resolve
    // to. So a name that happens to mean loopback passes here and is refused when dialled.
    ['http://localhost:3000/', 'http://localhost:3000/'],
    ['https://internal.corp.example/', 'https://internal.corp.example/'],
  ])('accepts %s', (raw, href) => {
    expect(parseDestinationUrl(raw, strict).href).toBe(href);
  });

  it.each([
    'ftp://example.com/',
    'javascript:alert(1)',
    'file:///etc/passwd',
    'ws://example.com/',
    'data:text/plain,hi',
    'mailto:ops@example.com',
  ])('refuses the scheme of %s', (raw) => {
    const error = expectInvalid(() => parseDestinationUrl(raw, strict));
    expect(error.message).toBe('url must use the http or https scheme');
  });

  it.each(['http://', 'https://', 'http:///', 'https://?x=1'])('refuses %s: no host', (raw) => {
    const error = expectInvalid(() => parseDestinationUrl(raw, strict));
    expect(error.message).toBe('url must include a host');
  });

  it.each([
    'not a url',
    'http://exa mple.com/',
    '//example.com/path',
    'http://[::1/',
    'http://:80/',
  ])('refuses the unparseable %j', (raw) => {
    const error = expectInvalid(() => parseDestinationUrl(raw, strict));
    expect(error.message).toBe('url must be an absolute http:// or https:// URL');
  });

  it.each(['', '   '])('refuses the empty %j', (raw) => {
    expectInvalid(() => parseDestinationUrl(raw, strict));
  });

  it('refuses a non-string from untyped callers', () => {
    expectInvalid(() => parseDestinationUrl(42 as unknown as string, strict));
  });

  it('accepts 2048 characters and refuses 2049', () => {
    const base = 'https://example.com/';
    const exact = base + 'a'.repeat(2048 - base.length);
    expect(parseDestinationUrl(exact, strict).href).toBe(exact);
    const error = expectInvalid(() => parseDestinationUrl(`${exact}a`, strict));
    expect(error.message).toBe('url must be at most 2048 characters long');
  });

  it('refuses a URL whose normalised form exceeds 2048 characters', () => {
    const raw = `https://example.com/${' '.repeat(1000)}x`; // each space becomes %20
    expectInvalid(() => parseDestinationUrl(raw, strict));
  });

  it.each(['http://[fe80::1%25eth0]/', 'http://[fe80::1%eth0]/', 'https://[::1%lo]:8080/'])(
    'refuses the zone id in %s',
    (raw) => {
      const error = expectInvalid(() => parseDestinationUrl(raw, relaxed));
      expect(error.message).toBe('url must not contain an IPv6 zone id');
    },
  );

  const REFUSED_LITERALS = [
    'http://127.0.0.1/',
    'http://127.0.0.1:8080/hook',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://2130706433/',
    'http://0x7f.0.0.1/',
    'http://0x7f.1/',
    'http://0177.0.0.1/',
    'http://127.1/',
    'http://%31%32%37.0.0.1/',
    'http://0/',
    'http://10.0.0.1/',
    'http://[fd00::1]/',
    'http://169.254.169.254/latest/meta-data',
    'http://[fe80::1]/',
    'http://224.0.0.1/',
    'http://[64:ff9b::a9fe:a9fe]/',
    'http://[64:ff9b::169.254.169.254]/',
    'http://[2002:7f00:1::]/',
    'http://[2001:db8::1]/',
    'https://192.0.2.10/',
  ];

  it.each(REFUSED_LITERALS)('refuses the IP literal host of %s (strict)', (raw) => {
    const error = expectInvalid(() => parseDestinationUrl(raw, strict));
    // Deliberately generic: which range matched is nobody's business but the operator's.
    expect(error.message).toBe('url points to a destination that is not allowed');
  });

  it.each([
    ['http://127.0.0.1:8080/', true],
    ['http://[::1]/', true],
    ['http://2130706433/', true],
    ['http://0x7f.0.0.1/', true],
    ['http://[::ffff:127.0.0.1]/', true],
    ['http://10.1.2.3/', true],
    ['http://100.64.1.1/', true],
    ['http://[fd00::1]/', true],
    ['http://169.254.169.254/latest/meta-data', false],
    ['http://[fe80::1]/', false],
    ['http://224.0.0.1/', false],
    ['http://0.0.0.0/', false],
    ['http://192.0.2.1/', false],
    ['http://[2001:db8::1]/', false],
  ] as const)('relaxed policy on %s: accepted = %s', (raw, accepted) => {
    if (accepted) expect(parseDestinationUrl(raw, relaxed)).toBeInstanceOf(URL);
    else expectInvalid(() => parseDestinationUrl(raw, relaxed));
  });

  it('names the given field', () => {
    const error = expectInvalid(
      () => parseDestinationUrl('http://169.254.169.254/', strict, 'subscription.url'),
      'subscription.url',
    );
    expect(error.message).toBe('subscription.url points to a destination that is not allowed');
  });
});
