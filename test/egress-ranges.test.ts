import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';

import { STRICT_EGRESS_POLICY, parseDestinationUrl } from '../src/delivery/egress-policy.js';
import { createDeliveryAgent } from '../src/delivery/delivery-agent.js';
import type { EgressRefusal } from '../src/delivery/guarded-connector.js';

/**
 * Every refused range, both where a URL is written (IP literals) and where a connection is made
 * (the address a resolver answered, and literal URLs, which undici never resolves). One address
 * per range; the exhaustive classification table lives in egress-policy.test.ts.
 */
const REFUSED: ReadonlyArray<readonly [range: string, address: string]> = [
  ['unspecified v4', '0.0.0.0'],
  ['this network 0/8', '0.1.2.3'],
  ['loopback 127/8', '127.0.0.1'],
  ['RFC 1918 10/8', '10.1.2.3'],
  ['RFC 1918 172.16/12', '172.20.0.5'],
  ['RFC 1918 192.168/16', '192.168.1.10'],
  ['CGNAT 100.64/10', '100.100.0.1'],
  ['link-local 169.254/16', '169.254.10.10'],
  ['cloud metadata', '169.254.169.254'],
  ['IETF protocol assignments 192.0.0/24', '192.0.0.8'],
  ['TEST-NET-1', '192.0.2.10'],
  ['6to4 relay anycast', '192.88.99.1'],
  ['benchmarking 198.18/15', '198.19.0.1'],
  ['TEST-NET-2', '198.51.100.7'],
  ['TEST-NET-3', '203.0.113.9'],
  ['multicast 224/4', '239.1.2.3'],
  ['reserved 240/4', '240.0.0.1'],
  ['broadcast', '255.255.255.255'],
  ['unspecified v6', '::'],
  ['loopback v6', '::1'],
  ['IPv4-mapped loopback', '::ffff:127.0.0.1'],
  ['IPv4-mapped metadata (hex)', '::ffff:a9fe:a9fe'],
  ['IPv4-compatible', '::10.0.0.1'],
  ['NAT64 embedding metadata', '64:ff9b::a9fe:a9fe'],
  ['local-use NAT64', '64:ff9b:1::1'],
  ['discard-only', '100::1'],
  ['Teredo', '2001::1'],
  ['ORCHIDv2', '2001:20::1'],
  ['documentation 2001:db8::/32', '2001:db8::1'],
  ['6to4 embedding loopback', '2002:7f00:1::1'],
  ['documentation 3fff::/20', '3fff::1'],
  ['SRv6 SIDs', '5f00::1'],
  ['ULA fc00::/7', 'fd12:3456::1'],
  ['link-local fe80::/10', 'fe80::1'],
  ['site-local fec0::/10', 'fec0::1'],
  ['multicast ff00::/8', 'ff02::1'],
];

/** Ranges `allowPrivateDestinations` re-admits; every other one stays refused. */
const PRIVATE = new Set([
  'loopback 127/8',
  'RFC 1918 10/8',
  'RFC 1918 172.16/12',
  'RFC 1918 192.168/16',
  'CGNAT 100.64/10',
  'loopback v6',
  'IPv4-mapped loopback',
  'ULA fc00::/7',
]);

const literalHost = (address: string) => (address.includes(':') ? `[${address}]` : address);

const refusals: EgressRefusal[] = [];
let answer = '';
let lookups = 0;
const strict = createDeliveryAgent({
  onEgressRefused: (refusal) => void refusals.push(refusal),
  lookup: async () => {
    lookups += 1;
    return [{ address: answer, family: answer.includes(':') ? 6 : 4 }];
  },
  agentOptions: { connectTimeout: 2_000 },
});
const relaxed = createDeliveryAgent({
  allowPrivateDestinations: true,
  onEgressRefused: (refusal) => void refusals.push(refusal),
  lookup: async () => [{ address: answer, family: answer.includes(':') ? 6 : 4 }],
  agentOptions: { connectTimeout: 2_000 },
});

afterAll(async () => {
  await Promise.all([strict.close(), relaxed.close()]);
});

async function postThrough(dispatcher: typeof strict.dispatcher, url: string): Promise<unknown> {
  return request(url, { dispatcher, method: 'POST', body: '{}' }).then(
    () => new Error('the request went through'),
    (error: unknown) => error,
  );
}

// A host name of its own per case: undici keeps connections alive per origin, and a kept-alive
// connection is reused without a new lookup (the guard judges connections, not requests).
let hosts = 0;
const freshHost = () => `hooks-${++hosts}.customer.example:8080`;

describe.each(REFUSED)('%s (%s)', (range, address) => {
  it('is refused in a URL at write time', () => {
    expect(() =>
      parseDestinationUrl(`http://${literalHost(address)}:8080/hook`, STRICT_EGRESS_POLICY),
    ).toThrow(expect.objectContaining({ code: 'HOOKD_ERR_INVALID_ARGUMENT', field: 'url' }));
  });

  it('is refused at connect time when the resolver answers it, after one lookup', async () => {
    refusals.length = 0;
    lookups = 0;
    answer = address;
    const error = await postThrough(strict.dispatcher, 'http://hooks.customer.example:8080/hook');
    expect(error).toMatchObject({
      code: 'HOOKD_ERR_EGRESS_DESTINATION_UNREACHABLE',
      message: 'webhook destination unreachable',
    });
    expect(refusals.map((r) => [r.cause, r.hostname])).toEqual([
      ['internal_address', 'hooks.customer.example'],
    ]);
    expect(lookups).toBe(1);
  });

  it('is refused at connect time as a literal URL (no lookup involved)', async () => {
    refusals.length = 0;
    const error = await postThrough(strict.dispatcher, `http://${literalHost(address)}:8080/hook`);
    expect(error).toMatchObject({ code: 'HOOKD_ERR_EGRESS_DESTINATION_UNREACHABLE' });
    expect(refusals.map((r) => r.cause)).toEqual(['internal_address']);
  });

  it(
    PRIVATE.has(range)
      ? 'is re-admitted by allowPrivateDestinations'
      : 'stays refused with allowPrivateDestinations',
    async () => {
      refusals.length = 0;
      answer = address;
      await postThrough(relaxed.dispatcher, `http://${freshHost()}/hook`);
      // Re-admitted addresses are dialled (and may then fail to connect); the others never are.
      expect(refusals.map((r) => r.cause)).toEqual(PRIVATE.has(range) ? [] : ['internal_address']);
    },
  );
});
