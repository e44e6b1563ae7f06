import { inspect } from 'node:util';

import { describe, expect, it } from 'vitest';

import {
  generateAttemptId,
  generateClaimToken,
  generateDeliveryId,
  generateSubscriptionId,
} from '../../src/ids.js';
import type { Subscription } from '../../src/models.js';
import { subscriptionRecord } from '../../src/records.js';
import { generateSecret, storedSecretResolver, toSecretResolver } from '../../src/secret.js';
import { standardWebhookKey } from '../../verify/signature.js';

const NANOID = /^[A-Za-z0-9_-]{21}$/;

describe('ids', () => {
  it.each([
    ['sub_', generateSubscriptionId],
    ['dlv_', generateDeliveryId],
    ['att_', generateAttemptId],
  ])('%s + 21 URL-safe characters, unique over 10,000 generations', (prefix, generate) => {
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const id = generate();
      expect(id.startsWith(prefix)).toBe(true);
      expect(id).toHaveLength(25);
      expect(id.slice(4)).toMatch(NANOID);
      ids.add(id);
    }
    expect(ids.size).toBe(10_000);
  });

  it('never contains a dot (forbidden in webhook-id by Standard Webhooks)', () => {
    for (let i = 0; i < 1000; i++) expect(generateDeliveryId()).not.toContain('.');
  });

  it('claim tokens are bare 21-character nanoids', () => {
    const token = generateClaimToken();
    expect(token).toMatch(NANOID);
    expect(generateClaimToken()).not.toBe(token);
  });
});

const fields = {
  id: 'sub_1',
  tenantId: 'acme',
  url: 'https://example.com/hooks',
  secret: 'top-secret-value',
  status: 'active',
  eventTypes: ['order.*'],
  filters: { tier: 'gold' },
  retryPolicy: { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 100, backoffFactor: 2 },
  headers: { 'X-A': '1' },
  metadata: { owner: 'team-a' },
  createdAt: new Date(0),
  updatedAt: new Date(0),
} satisfies Omit<Subscription, 'secret'> & { secret: string };

describe('subscriptionRecord', () => {
  it('keeps the secret readable but out of JSON, inspect, spreads and key lists', () => {
    const record = subscriptionRecord(fields);
    expect(record.secret).toBe('top-secret-value');
    expect(JSON.stringify(record)).not.toContain('top-secret-value');
    expect(inspect(record, { depth: 10 })).not.toContain('top-secret-value');
    expect(Object.keys(record)).not.toContain('secret');
    expect({ ...record }).not.toHaveProperty('secret');
    expect(Object.getOwnPropertyDescriptor(record, 'secret')).toMatchObject({
      enumerable: false,
      writable: false,
    });
    expect(JSON.parse(JSON.stringify(record))).toMatchObject({ id: 'sub_1', tenantId: 'acme' });
  });

  it('is deeply frozen and detached from the input maps', () => {
    const input = structuredClone(fields);
    const record = subscriptionRecord(input);
    expect(Object.isFrozen(record)).toBe(true);
    for (const key of ['eventTypes', 'filters', 'headers', 'metadata', 'retryPolicy'] as const) {
      expect(Object.isFrozen(record[key])).toBe(true);
      expect(record[key]).not.toBe(input[key]);
    }
    input.filters.tier = 'changed';
    input.eventTypes.push('user.*');
    expect(record.filters).toEqual({ tier: 'gold' });
    expect(record.eventTypes).toEqual(['order.*']);
    expect(() => {
      (record as { status: string }).status = 'paused';
    }).toThrow(TypeError);
  });
});

describe('generateSecret', () => {
  it('is whsec_ + base64 of 32 random bytes, accepted by the verifier key derivation', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const secret = generateSecret();
      expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      const key = standardWebhookKey(secret);
      expect(key).toHaveLength(32);
      expect(Buffer.from(key).toString('base64')).toBe(secret.slice(6));
      seen.add(secret);
    }
    expect(seen.size).toBe(200);
  });
});

describe('secret resolvers', () => {
  const request = {
    ref: 'stored',
    tenantId: 't',
    subscriptionId: null,
    deliveryId: 'dlv_1',
    idempotencyKey: null,
  };

  it('the stored resolver returns the reference, empty included', () => {
    expect(storedSecretResolver.resolve(request)).toBe('stored');
    expect(storedSecretResolver.resolve({ ...request, ref: '' })).toBe('');
    expect(Object.isFrozen(storedSecretResolver)).toBe(true);
  });

  it('toSecretResolver accepts a function or an object', async () => {
    const fromFunction = toSecretResolver((r) => `fn:${r.ref}`);
    expect(await fromFunction.resolve(request)).toBe('fn:stored');
    const object = { resolve: async () => 'object' };
    expect(toSecretResolver(object)).toBe(object);
  });
});
