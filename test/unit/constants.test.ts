import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import * as constants from '../../src/constants.js';
import * as root from '../../src/index.js';
import * as headers from '../../verify/headers.js';

describe('constants', () => {
  it('VERSION matches package.json and is what User-Agent carries', () => {
    const pkg = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as { version: string };
    expect(constants.VERSION).toBe(pkg.version);
    expect(constants.USER_AGENT).toBe(`node-hookd/${pkg.version}`);
  });

  it('header names are go-hookd wire spellings and the Standard Webhooks names', () => {
    expect({ ...headers }).toEqual({
      SIGNATURE_HEADER: 'X-Webhook-Signature',
      TIMESTAMP_HEADER: 'X-Webhook-Timestamp',
      DELIVERY_ID_HEADER: 'X-Webhook-Delivery-Id',
      EVENT_TYPE_HEADER: 'X-Webhook-Event-Type',
      ATTEMPT_HEADER: 'X-Webhook-Attempt',
      SUBSCRIPTION_ID_HEADER: 'X-Webhook-Subscription-Id',
      IDEMPOTENCY_KEY_HEADER: 'X-Webhook-Idempotency-Key',
      STANDARD_ID_HEADER: 'webhook-id',
      STANDARD_TIMESTAMP_HEADER: 'webhook-timestamp',
      STANDARD_SIGNATURE_HEADER: 'webhook-signature',
    });
    // The package root re-exports them.
    expect(root.SIGNATURE_HEADER).toBe('X-Webhook-Signature');
    expect(root.STANDARD_SIGNATURE_HEADER).toBe('webhook-signature');
  });

  it('limits keep the go-hookd values (spec 2.9)', () => {
    expect({
      MAX_URL_LENGTH: constants.MAX_URL_LENGTH,
      MAX_EVENT_TYPE_LENGTH: constants.MAX_EVENT_TYPE_LENGTH,
      MIN_EVENT_TYPE_LENGTH: constants.MIN_EVENT_TYPE_LENGTH,
      MAX_TENANT_ID_LENGTH: constants.MAX_TENANT_ID_LENGTH,
      MAX_SECRET_LENGTH: constants.MAX_SECRET_LENGTH,
      MIN_SECRET_LENGTH: constants.MIN_SECRET_LENGTH,
      MAX_METADATA_SIZE: constants.MAX_METADATA_SIZE,
      MAX_PAYLOAD_SIZE: constants.MAX_PAYLOAD_SIZE,
      MAX_EVENT_TYPES_PER_SUBSCRIPTION: constants.MAX_EVENT_TYPES_PER_SUBSCRIPTION,
      MAX_HEADERS_PER_SUBSCRIPTION: constants.MAX_HEADERS_PER_SUBSCRIPTION,
      MAX_HEADER_KEY_LENGTH: constants.MAX_HEADER_KEY_LENGTH,
      MAX_HEADER_VALUE_LENGTH: constants.MAX_HEADER_VALUE_LENGTH,
      MAX_BATCH_ITEMS: constants.MAX_BATCH_ITEMS,
      MAX_IDEMPOTENCY_KEY_LENGTH: constants.MAX_IDEMPOTENCY_KEY_LENGTH,
      MAX_RESPONSE_BODY_LENGTH: constants.MAX_RESPONSE_BODY_LENGTH,
      MAX_STORED_RESPONSE_HEADERS: constants.MAX_STORED_RESPONSE_HEADERS,
      MAX_STORED_RESPONSE_HEADER_VALUE_LENGTH: constants.MAX_STORED_RESPONSE_HEADER_VALUE_LENGTH,
      MAX_TEST_RESPONSE_BODY_LENGTH: constants.MAX_TEST_RESPONSE_BODY_LENGTH,
    }).toEqual({
      MAX_URL_LENGTH: 2048,
      MAX_EVENT_TYPE_LENGTH: 255,
      MIN_EVENT_TYPE_LENGTH: 3,
      MAX_TENANT_ID_LENGTH: 255,
      MAX_SECRET_LENGTH: 512,
      MIN_SECRET_LENGTH: 8,
      MAX_METADATA_SIZE: 65_536,
      MAX_PAYLOAD_SIZE: 1_048_576,
      MAX_EVENT_TYPES_PER_SUBSCRIPTION: 100,
      MAX_HEADERS_PER_SUBSCRIPTION: 50,
      MAX_HEADER_KEY_LENGTH: 255,
      MAX_HEADER_VALUE_LENGTH: 2048,
      MAX_BATCH_ITEMS: 100,
      MAX_IDEMPOTENCY_KEY_LENGTH: 255,
      MAX_RESPONSE_BODY_LENGTH: 10_240,
      MAX_STORED_RESPONSE_HEADERS: 32,
      MAX_STORED_RESPONSE_HEADER_VALUE_LENGTH: 512,
      MAX_TEST_RESPONSE_BODY_LENGTH: 1024,
    });
  });

  it('timing, id and ping constants keep their values', () => {
    expect(constants.ID_PREFIX).toEqual({ subscription: 'sub', delivery: 'dlv', attempt: 'att' });
    expect(constants.ID_RANDOM_LENGTH).toBe(21);
    expect(constants.TEST_PING_EVENT_TYPE).toBe('test.ping');
    expect(constants.TEST_PING_ID_PREFIX).toBe('test');
    expect(constants.TEST_SUBSCRIPTION_COOLDOWN_MS).toBe(10_000);
    expect(constants.INLINE_IDEMPOTENCY_SCOPE_PREFIX).toBe('inline:');
    expect(constants.DELIVERY_BOOKKEEPING_TIMEOUT_MS).toBe(10_000);
    expect(constants.MIN_CLAIM_LEASE_MARGIN_MS).toBe(5000);
    expect(constants.DEFAULT_CLAIM_LEASE_MARGIN_MS).toBe(60_000);
    expect(constants.QUEUE_IDLE_JITTER_FRACTION).toBe(0.2);
  });
});
