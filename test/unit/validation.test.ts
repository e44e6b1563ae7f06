import { describe, expect, it } from 'vitest';

import { STRICT_EGRESS_POLICY, type EgressPolicy } from '../../src/delivery/egress-policy.js';
import { HookdError, type HookdErrorCode } from '../../src/errors.js';
import type { RetryPolicy } from '../../src/models.js';
import {
  requireAge,
  requireId,
  resolveRetryPolicy,
  validateCreateSubscription,
  validateDeadLetterFilter,
  validateDeliveryFilter,
  validatePurgeFilter,
  validateQueueDelivery,
  validateQueueInlineDelivery,
  validateSubscriptionFilter,
  validateUpdateSubscription,
} from '../../src/validation.js';

const PRIVATE_OK: EgressPolicy = { allowPrivateDestinations: true };
const DEFAULT_POLICY: RetryPolicy = {
  maxAttempts: 10,
  initialBackoffMs: 1000,
  maxBackoffMs: 3_600_000,
  backoffFactor: 2,
};

/** Calls `run` and returns the HookdError it must throw. */
function thrown(run: () => unknown): HookdError {
  try {
    run();
  } catch (error) {
    if (!(error instanceof HookdError)) {
      throw new Error(`expected a HookdError, got ${String(error)}`, { cause: error });
    }
    return error;
  }
  throw new Error('expected the call to throw');
}

function expectInvalid(
  run: () => unknown,
  field: string,
  code: HookdErrorCode = 'HOOKD_ERR_INVALID_ARGUMENT',
): HookdError {
  const error = thrown(run);
  expect({ code: error.code, field: error.field }).toEqual({ code, field });
  expect(error.category).toBe('validation');
  return error;
}

const ascii = (length: number, char = 'a') => char.repeat(length);

/** An object whose `key` getter throws. */
function throwingGetter<T extends object>(base: T, key: string): T {
  const copy = { ...base } as Record<string, unknown>;
  delete copy[key];
  Object.defineProperty(copy, key, {
    enumerable: true,
    get() {
      throw new Error(`getter ${key} exploded`);
    },
  });
  return copy as T;
}

function revokedProxy(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

const throwingProxy = () =>
  new Proxy(
    {},
    {
      ownKeys() {
        throw new Error('ownKeys trap');
      },
      get() {
        throw new Error('get trap');
      },
      getOwnPropertyDescriptor() {
        throw new Error('descriptor trap');
      },
    },
  );

// ── createSubscription ─────────────────────────────────────────────────────────────────────

const validCreate = {
  tenantId: 'acme',
  url: 'https://example.com/hooks',
  secret: 'secret-123',
  eventTypes: ['order.created'],
};
const create = (patch: Record<string, unknown>, policy: EgressPolicy = STRICT_EGRESS_POLICY) =>
  validateCreateSubscription({ ...validCreate, ...patch }, policy, DEFAULT_POLICY);
const omit = (key: string) => {
  const copy: Record<string, unknown> = { ...validCreate };
  delete copy[key];
  return copy;
};

describe('validateCreateSubscription', () => {
  it('accepts a minimal request and fills the defaults', () => {
    expect(create({})).toEqual({
      tenantId: 'acme',
      url: 'https://example.com/hooks',
      secret: 'secret-123',
      eventTypes: ['order.created'],
      filters: {},
      retryPolicy: DEFAULT_POLICY,
      headers: {},
      metadata: {},
    });
  });

  const bad: Array<[string, Record<string, unknown>, string]> = [
    // tenant
    ['tenant empty', { tenantId: '' }, 'tenantId'],
    ['tenant 256 bytes', { tenantId: ascii(256) }, 'tenantId'],
    ['tenant 256 UTF-8 bytes in 128 characters', { tenantId: 'é'.repeat(128) }, 'tenantId'],
    ['tenant a number', { tenantId: 42 }, 'tenantId'],
    ['tenant null', { tenantId: null }, 'tenantId'],
    // url
    ['url empty', { url: '' }, 'url'],
    ['url blank', { url: '   ' }, 'url'],
    ['url ftp', { url: 'ftp://example.com/' }, 'url'],
    ['url javascript', { url: 'javascript:alert(1)' }, 'url'],
    ['url without host', { url: 'http://' }, 'url'],
    ['url relative', { url: '/hooks' }, 'url'],
    ['url 2049 characters', { url: `https://example.com/${ascii(2049 - 20)}` }, 'url'],
    ['url loopback under the strict policy', { url: 'http://127.0.0.1/' }, 'url'],
    ['url private under the strict policy', { url: 'http://10.1.2.3/' }, 'url'],
    ['url IPv6 loopback', { url: 'http://[::1]:8080/' }, 'url'],
    ['url decimal loopback', { url: 'http://2130706433/' }, 'url'],
    ['url metadata endpoint', { url: 'http://169.254.169.254/latest' }, 'url'],
    ['url IPv6 zone id', { url: 'http://[fe80::1%25eth0]/' }, 'url'],
    ['url a number', { url: 80 }, 'url'],
    // secret
    ['secret empty', { secret: '' }, 'secret'],
    ['secret 7 bytes', { secret: ascii(7) }, 'secret'],
    ['secret 513 bytes', { secret: ascii(513) }, 'secret'],
    ['secret bytes', { secret: new Uint8Array(16) }, 'secret'],
    // event types
    ['eventTypes empty', { eventTypes: [] }, 'eventTypes'],
    [
      'eventTypes 101 entries',
      { eventTypes: Array.from({ length: 101 }, (_, i) => `evt.${i}`) },
      'eventTypes',
    ],
    ['eventTypes a string', { eventTypes: 'order.created' }, 'eventTypes'],
    ['eventTypes with a number', { eventTypes: [7] }, 'eventTypes.0'],
    ['eventTypes 2 characters', { eventTypes: ['order.created', 'ab'] }, 'eventTypes.1'],
    ['eventTypes empty entry', { eventTypes: [''] }, 'eventTypes.0'],
    ['eventTypes ".*"', { eventTypes: ['.*'] }, 'eventTypes.0'],
    ['eventTypes 256 characters', { eventTypes: [ascii(256)] }, 'eventTypes.0'],
    ['eventTypes leading space', { eventTypes: [' order.created'] }, 'eventTypes.0'],
    ['eventTypes trailing space', { eventTypes: ['a.b', 'order.created '] }, 'eventTypes.1'],
    ['eventTypes tab inside', { eventTypes: ['order\tcreated'] }, 'eventTypes.0'],
    ['eventTypes CR LF', { eventTypes: ['order\r\nX-Evil: 1'] }, 'eventTypes.0'],
    ['eventTypes NUL', { eventTypes: ['order\u0000created'] }, 'eventTypes.0'],
    ['eventTypes non-ASCII', { eventTypes: ['commande.créée'] }, 'eventTypes.0'],
    // headers
    [
      'headers 51 entries',
      { headers: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`X-H${i}`, 'v'])) },
      'headers',
    ],
    ['headers not an object', { headers: 'X-A: 1' }, 'headers'],
    ['header name with a space', { headers: { 'X Bad': '1' } }, 'headers.X Bad'],
    ['header name with a colon', { headers: { 'X-Bad:': '1' } }, 'headers.X-Bad:'],
    [
      'header name 256 characters',
      { headers: { [ascii(256, 'h')]: '1' } },
      `headers.${ascii(256, 'h')}`,
    ],
    ['header value CR LF', { headers: { 'X-Bad': 'a\r\nX-Evil: 1' } }, 'headers.X-Bad'],
    ['header value LF', { headers: { 'X-Bad': 'a\nb' } }, 'headers.X-Bad'],
    ['header value NUL', { headers: { 'X-Bad': 'a\u0000b' } }, 'headers.X-Bad'],
    ['header value non-ASCII', { headers: { 'X-Bad': 'naïve' } }, 'headers.X-Bad'],
    ['header value 2049 characters', { headers: { 'X-Bad': ascii(2049) } }, 'headers.X-Bad'],
    ['header value a number', { headers: { 'X-Num': 1 } }, 'headers.X-Num'],
    [
      'reserved X-Webhook-Signature',
      { headers: { 'X-Webhook-Signature': 'forged' } },
      'headers.X-Webhook-Signature',
    ],
    [
      'reserved x-webhook-signature',
      { headers: { 'x-webhook-signature': 'forged' } },
      'headers.x-webhook-signature',
    ],
    [
      'reserved X-Webhook-Idempotency-Key',
      { headers: { 'X-Webhook-Idempotency-Key': 'k' } },
      'headers.X-Webhook-Idempotency-Key',
    ],
    [
      'reserved X-WEBHOOK-anything',
      { headers: { 'X-WEBHOOK-Custom': '1' } },
      'headers.X-WEBHOOK-Custom',
    ],
    ['reserved webhook-id', { headers: { 'webhook-id': 'x' } }, 'headers.webhook-id'],
    [
      'reserved Webhook-Signature',
      { headers: { 'Webhook-Signature': 'v1,x' } },
      'headers.Webhook-Signature',
    ],
    ['reserved Host', { headers: { Host: 'internal' } }, 'headers.Host'],
    ['reserved HOST', { headers: { HOST: 'internal' } }, 'headers.HOST'],
    ['reserved traceparent', { headers: { Traceparent: '00-abc' } }, 'headers.Traceparent'],
    ['reserved Content-Length', { headers: { 'Content-Length': '1' } }, 'headers.Content-Length'],
    [
      'reserved Transfer-Encoding',
      { headers: { 'Transfer-Encoding': 'chunked' } },
      'headers.Transfer-Encoding',
    ],
    [
      'duplicate header differing in case',
      { headers: { 'X-Tenant': 'a', 'x-tenant': 'b' } },
      'headers.x-tenant',
    ],
    // filters
    ['filters not an object', { filters: ['a'] }, 'filters'],
    ['filter value a number', { filters: { plan: 3 } }, 'filters.plan'],
    [
      'filter key 256 characters',
      { filters: { [ascii(256, 'k')]: 'v' } },
      `filters.${ascii(256, 'k')}`,
    ],
    ['filter value 2049 characters', { filters: { plan: ascii(2049) } }, 'filters.plan'],
    [
      'filters 51 entries',
      { filters: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v'])) },
      'filters',
    ],
    // metadata
    ['metadata over 64 KiB', { metadata: { blob: ascii(65_536) } }, 'metadata'],
    ['metadata an array', { metadata: [1, 2] }, 'metadata'],
    ['metadata null', { metadata: null }, 'metadata'],
    ['metadata a string', { metadata: 'x' }, 'metadata'],
    ['metadata with a bigint', { metadata: { n: 1n } }, 'metadata'],
    ['metadata with NaN', { metadata: { n: Number.NaN } }, 'metadata'],
    // retry policy
    ['retryPolicy not an object', { retryPolicy: 5 }, 'retryPolicy'],
    [
      'retryPolicy.maxAttempts negative',
      { retryPolicy: { maxAttempts: -1 } },
      'retryPolicy.maxAttempts',
    ],
    [
      'retryPolicy.maxAttempts fractional',
      { retryPolicy: { maxAttempts: 1.5 } },
      'retryPolicy.maxAttempts',
    ],
    [
      'retryPolicy.maxAttempts too large',
      { retryPolicy: { maxAttempts: 100_001 } },
      'retryPolicy.maxAttempts',
    ],
    [
      'retryPolicy.initialBackoffMs negative',
      { retryPolicy: { initialBackoffMs: -1 } },
      'retryPolicy.initialBackoffMs',
    ],
    [
      'retryPolicy.maxBackoffMs over 30 days',
      { retryPolicy: { maxBackoffMs: 2_592_000_001 } },
      'retryPolicy.maxBackoffMs',
    ],
    [
      'retryPolicy.backoffFactor below 1',
      { retryPolicy: { backoffFactor: 0.5 } },
      'retryPolicy.backoffFactor',
    ],
    [
      'retryPolicy.backoffFactor NaN',
      { retryPolicy: { backoffFactor: Number.NaN } },
      'retryPolicy.backoffFactor',
    ],
    [
      'retryPolicy.backoffFactor over 1000',
      { retryPolicy: { backoffFactor: 1001 } },
      'retryPolicy.backoffFactor',
    ],
    [
      'retryPolicy max below initial',
      { retryPolicy: { initialBackoffMs: 20, maxBackoffMs: 10 } },
      'retryPolicy.maxBackoffMs',
    ],
    ['retryPolicy unknown key', { retryPolicy: { maxAttempt: 3 } }, 'retryPolicy.maxAttempt'],
    // unknown keys
    ['unknown key', { tenant: 'acme' }, 'tenant'],
    ['an empty unknown key, named ""', { '': 1 }, '""'],
    ['an empty header name, named ""', { headers: { '': 'x' } }, 'headers.""'],
    ['an empty filter key, named ""', { filters: { '': 'x' } }, 'filters.""'],
    ['an empty key in retryPolicy', { retryPolicy: { '': 1 } }, 'retryPolicy.""'],
    ['idempotencyKey is not a create field', { idempotencyKey: 'k' }, 'idempotencyKey'],
  ];

  it.each(bad)('refuses %s', (_name, patch, field) => {
    expectInvalid(() => create(patch), field);
  });

  it.each(['tenantId', 'url', 'secret', 'eventTypes'])('requires %s', (key) => {
    expectInvalid(
      () => validateCreateSubscription(omit(key), STRICT_EGRESS_POLICY, DEFAULT_POLICY),
      key,
    );
  });

  it.each([
    ['null', null],
    ['a string', 'request'],
    ['an array', [validCreate]],
    ['undefined', undefined],
  ])('refuses %s as the request', (_name, input) => {
    expectInvalid(
      () => validateCreateSubscription(input, STRICT_EGRESS_POLICY, DEFAULT_POLICY),
      'request',
    );
  });

  it('accepts the limits exactly', () => {
    const valid = create({
      tenantId: ascii(255),
      secret: ascii(512),
      eventTypes: [
        '*',
        'a.*',
        `${ascii(253)}.*`,
        'abc',
        ascii(255),
        'order.item.added',
        ...Array.from({ length: 94 }, (_, i) => `evt.${i}`),
      ],
      headers: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`X-H${i}`, 'v'])),
      metadata: { blob: ascii(65_536 - '{"blob":""}'.length) },
    });
    expect(valid.eventTypes).toHaveLength(100);
    expect(valid.secret).toHaveLength(512);
    expect(Object.keys(valid.headers)).toHaveLength(50);
    expect(create({ secret: ascii(8) }).secret).toBe(ascii(8));
    expect(create({ secret: 'é'.repeat(4) }).secret).toBe('éééé');
  });

  it('accepts headers that may replace defaults, and tabs in values', () => {
    const valid = create({
      headers: {
        'Content-Type': 'application/cloudevents+json',
        'User-Agent': 'acme-hooks/1.0',
        Authorization: 'Bearer\ttoken',
        'X-Custom_Header.v2': "!#$%&'*+-.^_`|~",
      },
    });
    expect(valid.headers['Content-Type']).toBe('application/cloudevents+json');
    expect(valid.headers['Authorization']).toBe('Bearer\ttoken');
  });

  it('refuses a "__proto__" header or filter instead of silently dropping it', () => {
    const headers: unknown = JSON.parse('{"__proto__": "x", "X-Ok": "1"}');
    expectInvalid(() => create({ headers }), 'headers.__proto__');
    const filters: unknown = JSON.parse('{"__proto__": "gold"}');
    expectInvalid(() => create({ filters }), 'filters.__proto__');
    expect(({} as Record<string, unknown>)['X-Ok']).toBeUndefined();
  });

  it('keeps prototype-looking metadata keys as plain data', () => {
    const metadata: unknown = JSON.parse('{"__proto__": {"polluted": true}, "constructor": 1}');
    const valid = create({ metadata });
    expect(Object.hasOwn(valid.metadata, '__proto__')).toBe(true);
    expect(valid.metadata['constructor']).toBe(1);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('normalises the URL: scheme and host lower-cased, path kept', () => {
    expect(create({ url: 'HTTPS://Example.COM/Hooks?Token=AbC' }).url).toBe(
      'https://example.com/Hooks?Token=AbC',
    );
    expect(create({ url: 'https://example.com' }).url).toBe('https://example.com/');
    expect(create({ url: 'http://EXAMPLE.com:8080/x' }).url).toBe('http://example.com:8080/x');
  });

  it('applies the egress policy to IP literals only at write time', () => {
    expectInvalid(() => create({ url: 'http://127.0.0.1/' }), 'url');
    expect(create({ url: 'http://127.0.0.1/' }, PRIVATE_OK).url).toBe('http://127.0.0.1/');
    expect(create({ url: 'http://[::1]:9000/h' }, PRIVATE_OK).url).toBe('http://[::1]:9000/h');
    // Link-local (cloud metadata) stays refused even with private destinations allowed.
    expectInvalid(() => create({ url: 'http://169.254.169.254/' }, PRIVATE_OK), 'url');
    // Hostnames are not resolved at write time.
    expect(create({ url: 'http://localhost/' }).url).toBe('http://localhost/');
  });

  it('merges a partial retry policy over the defaults and accepts an immediate-retry policy', () => {
    expect(create({ retryPolicy: { maxAttempts: 3 } }).retryPolicy).toEqual({
      ...DEFAULT_POLICY,
      maxAttempts: 3,
    });
    expect(
      create({
        retryPolicy: { maxAttempts: 0, initialBackoffMs: 0, maxBackoffMs: 0, backoffFactor: 1 },
      }).retryPolicy,
    ).toEqual({ maxAttempts: 0, initialBackoffMs: 0, maxBackoffMs: 0, backoffFactor: 1 });
  });

  it('copies maps so later changes to the request do not leak in', () => {
    const headers = { 'X-A': '1' };
    const filters = { plan: 'gold' };
    const metadata = { nested: { n: 1 } };
    const valid = create({ headers, filters, metadata });
    headers['X-A'] = 'changed';
    filters.plan = 'changed';
    metadata.nested.n = 2;
    expect(valid.headers).toEqual({ 'X-A': '1' });
    expect(valid.filters).toEqual({ plan: 'gold' });
    expect(valid.metadata).toEqual({ nested: { n: 1 } });
  });

  it('turns a throwing getter or a hostile Proxy into a validation error', () => {
    expectInvalid(
      () =>
        validateCreateSubscription(
          throwingGetter(validCreate, 'tenantId'),
          STRICT_EGRESS_POLICY,
          DEFAULT_POLICY,
        ),
      'request',
    );
    expectInvalid(
      () => validateCreateSubscription(throwingProxy(), STRICT_EGRESS_POLICY, DEFAULT_POLICY),
      'request',
    );
    expectInvalid(
      () => validateCreateSubscription(revokedProxy(), STRICT_EGRESS_POLICY, DEFAULT_POLICY),
      'request',
    );
    expectInvalid(() => create({ metadata: throwingGetter({ a: 1 }, 'a') }), 'metadata');
  });
});

// ── updateSubscription ─────────────────────────────────────────────────────────────────────

describe('validateUpdateSubscription', () => {
  const update = (input: unknown, policy: EgressPolicy = STRICT_EGRESS_POLICY) =>
    validateUpdateSubscription(input, policy);

  it('returns only the fields that were given', () => {
    expect(update({})).toEqual({});
    expect(update({ status: 'paused', url: undefined })).toEqual({ status: 'paused' });
    expect(update({ retryPolicy: { maxAttempts: 3 } })).toEqual({
      retryPolicy: { maxAttempts: 3 },
    });
    expect(update({ url: 'HTTPS://EXAMPLE.com/new', eventTypes: ['a.*'] })).toEqual({
      url: 'https://example.com/new',
      eventTypes: ['a.*'],
    });
  });

  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['empty eventTypes', { eventTypes: [] }, 'eventTypes'],
    ['bad event type', { eventTypes: ['ok.type', ' x.y'] }, 'eventTypes.1'],
    ['empty url', { url: '' }, 'url'],
    ['ftp url', { url: 'ftp://example.com/' }, 'url'],
    ['loopback url', { url: 'http://127.0.0.1:9/' }, 'url'],
    ['unknown status', { status: 'archived' }, 'status'],
    ['status in upper case', { status: 'ACTIVE' }, 'status'],
    ['retry factor', { retryPolicy: { backoffFactor: 0 } }, 'retryPolicy.backoffFactor'],
    ['reserved header', { headers: { 'X-Webhook-Attempt': '9' } }, 'headers.X-Webhook-Attempt'],
    ['header CR LF', { headers: { 'X-A': 'x\r\n' } }, 'headers.X-A'],
    ['metadata too large', { metadata: { blob: ascii(70_000) } }, 'metadata'],
    ['filter not a string', { filters: { a: true } }, 'filters.a'],
    ['secret cannot change', { secret: 'new-secret-123' }, 'secret'],
    ['tenant cannot change', { tenantId: 'other' }, 'tenantId'],
  ];

  it.each(bad)('refuses %s', (_name, input, field) => {
    expectInvalid(() => update(input), field);
  });

  it('accepts every subscription status and a private URL when allowed', () => {
    for (const status of ['active', 'paused', 'disabled']) {
      expect(update({ status })).toEqual({ status });
    }
    expect(update({ url: 'http://127.0.0.1:9/' }, PRIVATE_OK)).toEqual({
      url: 'http://127.0.0.1:9/',
    });
  });

  it.each([null, 42, 'x', []])('refuses %j as the request', (input) => {
    expectInvalid(() => update(input), 'request');
  });
});

// ── queueDelivery ──────────────────────────────────────────────────────────────────────────

const validQueue = { subscriptionId: 'sub_1', eventType: 'order.created', payload: { id: 1 } };
const queue = (patch: Record<string, unknown>) =>
  validateQueueDelivery({ ...validQueue, ...patch });

function cyclic(): Record<string, unknown> {
  const value: Record<string, unknown> = { a: 1 };
  value['self'] = value;
  return value;
}

describe('validateQueueDelivery', () => {
  it('serialises the payload once and normalises the idempotency key', () => {
    expect(queue({ metadata: { tier: 'gold' }, idempotencyKey: 'k-1' })).toEqual({
      subscriptionId: 'sub_1',
      eventType: 'order.created',
      body: '{"id":1}',
      metadata: { tier: 'gold' },
      idempotencyKey: 'k-1',
    });
    expect(queue({}).idempotencyKey).toBeNull();
    expect(queue({ idempotencyKey: '' }).idempotencyKey).toBeNull();
    expect(queue({}).metadata).toEqual({});
  });

  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['subscriptionId empty', { subscriptionId: '' }, 'subscriptionId'],
    ['subscriptionId 256 characters', { subscriptionId: ascii(256) }, 'subscriptionId'],
    ['subscriptionId a number', { subscriptionId: 1 }, 'subscriptionId'],
    ['eventType empty', { eventType: '' }, 'eventType'],
    ['eventType 256 characters', { eventType: ascii(256) }, 'eventType'],
    ['eventType CR LF', { eventType: 'a\r\nb' }, 'eventType'],
    ['eventType leading space', { eventType: ' a' }, 'eventType'],
    ['eventType non-ASCII', { eventType: 'é.x' }, 'eventType'],
    ['payload missing', { payload: undefined }, 'payload'],
    ['payload null', { payload: null }, 'payload'],
    ['payload an array', { payload: [1, 2] }, 'payload'],
    ['payload a string', { payload: '{"a":1}' }, 'payload'],
    ['payload a number', { payload: 42 }, 'payload'],
    ['payload over 1 MiB', { payload: { blob: ascii(1_048_576) } }, 'payload'],
    ['payload with NaN', { payload: { n: Number.NaN } }, 'payload'],
    ['payload with Infinity', { payload: { deep: { n: Number.NEGATIVE_INFINITY } } }, 'payload'],
    ['payload with a bigint', { payload: { n: 10n } }, 'payload'],
    ['payload with a cycle', { payload: cyclic() }, 'payload'],
    ['payload with a function', { payload: { f: () => 1 } }, 'payload'],
    ['payload with a symbol', { payload: { s: Symbol('s') } }, 'payload'],
    ['payload a Date', { payload: new Date(0) }, 'payload'],
    ['payload a boxed string', { payload: new String('x') }, 'payload'],
    ['payload whose toJSON returns undefined', { payload: { toJSON: () => undefined } }, 'payload'],
    ['payload whose toJSON returns an array', { payload: { toJSON: () => [1] } }, 'payload'],
    ['payload with a throwing getter', { payload: throwingGetter({ a: 1 }, 'a') }, 'payload'],
    ['payload a revoked proxy', { payload: revokedProxy() }, 'payload'],
    ['metadata an array', { metadata: ['a'] }, 'metadata'],
    ['metadata a string', { metadata: 'tier=gold' }, 'metadata'],
    ['idempotencyKey 256 characters', { idempotencyKey: ascii(256) }, 'idempotencyKey'],
    ['idempotencyKey with LF', { idempotencyKey: 'a\nb' }, 'idempotencyKey'],
    ['idempotencyKey with CR', { idempotencyKey: 'a\rb' }, 'idempotencyKey'],
    ['idempotencyKey with a tab', { idempotencyKey: 'a\tb' }, 'idempotencyKey'],
    ['idempotencyKey with NUL', { idempotencyKey: 'a\u0000b' }, 'idempotencyKey'],
    ['idempotencyKey with DEL', { idempotencyKey: 'a\u007fb' }, 'idempotencyKey'],
    ['idempotencyKey non-ASCII', { idempotencyKey: 'clé' }, 'idempotencyKey'],
    ['idempotencyKey emoji', { idempotencyKey: '🔑' }, 'idempotencyKey'],
    ['idempotencyKey a number', { idempotencyKey: 7 }, 'idempotencyKey'],
    ['unknown key', { payloads: {} }, 'payloads'],
  ];

  it.each(bad)('refuses %s', (_name, patch, field) => {
    expectInvalid(() => queue(patch), field);
  });

  it('accepts the limits exactly', () => {
    const payload = { blob: ascii(1_048_576 - '{"blob":""}'.length) };
    expect(Buffer.byteLength(queue({ payload }).body)).toBe(1_048_576);
    expect(queue({ idempotencyKey: ascii(255) }).idempotencyKey).toBe(ascii(255));
    expect(queue({ idempotencyKey: ' spaced key ~ ' }).idempotencyKey).toBe(' spaced key ~ ');
    expect(queue({ eventType: 'x' }).eventType).toBe('x');
    expect(queue({ subscriptionId: ascii(255) }).subscriptionId).toBe(ascii(255));
  });

  it('serialises exactly like JSON.stringify, Date values through toJSON', () => {
    const payload = {
      z: 1,
      a: [true, null, 'é'],
      when: new Date(Date.UTC(2024, 0, 2)),
      skip: undefined,
    };
    expect(queue({ payload }).body).toBe(
      '{"z":1,"a":[true,null,"é"],"when":"2024-01-02T00:00:00.000Z"}',
    );
  });

  it('turns hostile request objects into validation errors', () => {
    expectInvalid(() => validateQueueDelivery(throwingGetter(validQueue, 'eventType')), 'request');
    expectInvalid(() => validateQueueDelivery(throwingProxy()), 'request');
    expectInvalid(() => validateQueueDelivery(revokedProxy()), 'request');
    expectInvalid(
      () => validateQueueDelivery({ ...validQueue, metadata: throwingGetter({ a: 1 }, 'a') }),
      'request',
    );
  });
});

// ── queueInlineDelivery ────────────────────────────────────────────────────────────────────

const validInline = {
  url: 'https://example.com/inline',
  tenantId: 'acme',
  eventType: 'order.created',
  payload: { id: 1 },
};
const inline = (patch: Record<string, unknown>, policy: EgressPolicy = STRICT_EGRESS_POLICY) =>
  validateQueueInlineDelivery({ ...validInline, ...patch }, policy);

describe('validateQueueInlineDelivery', () => {
  it('accepts a minimal request: no secret means an empty one, no maxRetries means 0', () => {
    expect(inline({})).toEqual({
      url: 'https://example.com/inline',
      secret: '',
      tenantId: 'acme',
      eventType: 'order.created',
      body: '{"id":1}',
      maxRetries: 0,
      idempotencyKey: null,
    });
    expect(inline({ secret: '', maxRetries: 0 }).secret).toBe('');
    expect(inline({ secret: 'short', maxRetries: 3 })).toMatchObject({
      secret: 'short',
      maxRetries: 3,
    });
    expect(inline({ url: 'HTTP://Example.com/A' }).url).toBe('http://example.com/A');
  });

  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['url missing', { url: undefined }, 'url'],
    ['url ftp', { url: 'ftp://example.com/' }, 'url'],
    ['url loopback', { url: 'http://127.0.0.1:8080/' }, 'url'],
    ['secret 513 bytes', { secret: ascii(513) }, 'secret'],
    ['secret a number', { secret: 12_345_678 }, 'secret'],
    ['tenant missing', { tenantId: undefined }, 'tenantId'],
    ['tenant 256 bytes', { tenantId: ascii(256) }, 'tenantId'],
    ['eventType missing', { eventType: undefined }, 'eventType'],
    ['eventType with LF', { eventType: 'a\nb' }, 'eventType'],
    ['payload missing', { payload: undefined }, 'payload'],
    ['payload an array', { payload: [] }, 'payload'],
    ['payload over 1 MiB', { payload: { blob: ascii(1_048_577) } }, 'payload'],
    ['maxRetries negative', { maxRetries: -1 }, 'maxRetries'],
    ['maxRetries fractional', { maxRetries: 1.5 }, 'maxRetries'],
    ['maxRetries a string', { maxRetries: '3' }, 'maxRetries'],
    ['maxRetries too large', { maxRetries: 100_001 }, 'maxRetries'],
    ['maxRetries NaN', { maxRetries: Number.NaN }, 'maxRetries'],
    ['idempotencyKey 256 characters', { idempotencyKey: ascii(256) }, 'idempotencyKey'],
    ['idempotencyKey with CR LF', { idempotencyKey: 'k\r\n' }, 'idempotencyKey'],
    ['unknown key', { subscriptionId: 'sub_1' }, 'subscriptionId'],
  ];

  it.each(bad)('refuses %s', (_name, patch, field) => {
    expectInvalid(() => inline(patch), field);
  });

  it('allows a loopback URL only under allowPrivateDestinations', () => {
    expect(inline({ url: 'http://127.0.0.1:8080/x' }, PRIVATE_OK).url).toBe(
      'http://127.0.0.1:8080/x',
    );
    expectInvalid(() => inline({ url: 'http://169.254.169.254/' }, PRIVATE_OK), 'url');
  });
});

// ── Filters and scalar arguments ───────────────────────────────────────────────────────────

describe('validateSubscriptionFilter', () => {
  it('requires a tenant unless allTenants is set', () => {
    for (const filter of [{}, { tenantId: '' }, { allTenants: false }, { status: 'active' }]) {
      expectInvalid(
        () => validateSubscriptionFilter(filter),
        'tenantId',
        'HOOKD_ERR_TENANT_SCOPE_REQUIRED',
      );
    }
    expect(validateSubscriptionFilter({ allTenants: true })).toEqual({ allTenants: true });
    expect(validateSubscriptionFilter({ tenantId: 't', limit: 0, offset: 5 })).toEqual({
      tenantId: 't',
      limit: 0,
      offset: 5,
    });
  });

  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['tenant a number', { tenantId: 5 }, 'tenantId'],
    ['allTenants a string', { allTenants: 'yes' }, 'allTenants'],
    ['status unknown', { tenantId: 't', status: 'deleted' }, 'status'],
    ['eventTypes a string', { tenantId: 't', eventTypes: 'a.b' }, 'eventTypes'],
    ['eventTypes with a number', { tenantId: 't', eventTypes: ['a.b', 1] }, 'eventTypes.1'],
    ['limit negative', { tenantId: 't', limit: -1 }, 'limit'],
    ['limit fractional', { tenantId: 't', limit: 1.5 }, 'limit'],
    ['limit unsafe', { tenantId: 't', limit: 2 ** 60 }, 'limit'],
    ['offset negative', { tenantId: 't', offset: -5 }, 'offset'],
    ['unknown key', { tenantId: 't', tenant: 'x' }, 'tenant'],
  ];

  it.each(bad)('refuses %s', (_name, filter, field) => {
    expectInvalid(() => validateSubscriptionFilter(filter), field);
  });

  it.each([null, undefined, 'acme', []])('refuses %j as the filter', (filter) => {
    expectInvalid(() => validateSubscriptionFilter(filter), 'request');
  });
});

describe('validateDeliveryFilter', () => {
  it('requires a tenant unless allTenants is set, and keeps valid fields', () => {
    expectInvalid(() => validateDeliveryFilter({}), 'tenantId', 'HOOKD_ERR_TENANT_SCOPE_REQUIRED');
    const before = new Date('2024-01-01T00:00:00Z');
    expect(
      validateDeliveryFilter({ allTenants: true, status: 'dead_letter', createdBefore: before }),
    ).toEqual({ allTenants: true, status: 'dead_letter', createdBefore: before });
  });

  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['status processing', { tenantId: 't', status: 'processing' }, 'status'],
    ['createdBefore a string', { tenantId: 't', createdBefore: '2024-01-01' }, 'createdBefore'],
    ['createdAfter invalid', { tenantId: 't', createdAfter: new Date(Number.NaN) }, 'createdAfter'],
    ['subscriptionId a number', { tenantId: 't', subscriptionId: 1 }, 'subscriptionId'],
    ['eventType null', { tenantId: 't', eventType: null }, 'eventType'],
    ['unknown key', { tenantId: 't', statuses: ['pending'] }, 'statuses'],
  ];

  it.each(bad)('refuses %s', (_name, filter, field) => {
    expectInvalid(() => validateDeliveryFilter(filter), field);
  });
});

describe('validateDeadLetterFilter and validatePurgeFilter', () => {
  it('make the tenant mandatory (there is no allTenants for dead letters)', () => {
    expectInvalid(
      () => validateDeadLetterFilter({}),
      'tenantId',
      'HOOKD_ERR_TENANT_SCOPE_REQUIRED',
    );
    expectInvalid(
      () => validateDeadLetterFilter({ tenantId: '' }),
      'tenantId',
      'HOOKD_ERR_TENANT_SCOPE_REQUIRED',
    );
    expectInvalid(() => validateDeadLetterFilter({ allTenants: true }), 'allTenants');
    expectInvalid(() => validatePurgeFilter({}), 'tenantId', 'HOOKD_ERR_TENANT_SCOPE_REQUIRED');
    expectInvalid(
      () => validatePurgeFilter({ subscriptionId: 's' }),
      'tenantId',
      'HOOKD_ERR_TENANT_SCOPE_REQUIRED',
    );
    expect(validateDeadLetterFilter({ tenantId: 't', limit: 10 })).toEqual({
      tenantId: 't',
      limit: 10,
    });
    expect(validatePurgeFilter({ tenantId: 't', olderThanMs: 0 })).toEqual({
      tenantId: 't',
      olderThanMs: 0,
    });
  });

  it.each<[string, () => unknown, string]>([
    [
      'dead-letter limit negative',
      () => validateDeadLetterFilter({ tenantId: 't', limit: -1 }),
      'limit',
    ],
    [
      'dead-letter createdAfter a number',
      () => validateDeadLetterFilter({ tenantId: 't', createdAfter: 0 }),
      'createdAfter',
    ],
    ['dead-letter tenant a number', () => validateDeadLetterFilter({ tenantId: 1 }), 'tenantId'],
    [
      'purge olderThanMs negative',
      () => validatePurgeFilter({ tenantId: 't', olderThanMs: -1 }),
      'olderThanMs',
    ],
    [
      'purge olderThanMs fractional',
      () => validatePurgeFilter({ tenantId: 't', olderThanMs: 0.5 }),
      'olderThanMs',
    ],
    ['purge unknown key', () => validatePurgeFilter({ tenantId: 't', olderThan: 5 }), 'olderThan'],
    ['purge null', () => validatePurgeFilter(null), 'request'],
  ])('refuses %s', (_name, run, field) => {
    expectInvalid(run, field);
  });
});

describe('requireId and requireAge', () => {
  it.each([undefined, null, '', 5, {}, ['sub_1'], ascii(256)])('requireId refuses %j', (value) => {
    expectInvalid(() => requireId(value, 'deliveryId'), 'deliveryId');
  });

  it('requireId returns a valid id unchanged', () => {
    expect(requireId('sub_abc', 'subscriptionId')).toBe('sub_abc');
    expect(requireId(ascii(255), 'subscriptionId')).toBe(ascii(255));
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '60000', null, undefined])(
    'requireAge refuses %j',
    (value) => {
      expectInvalid(() => requireAge(value, 'olderThanMs'), 'olderThanMs');
    },
  );

  it('requireAge accepts non-negative integers', () => {
    expect(requireAge(0, 'olderThanMs')).toBe(0);
    expect(requireAge(86_400_000, 'olderThanMs')).toBe(86_400_000);
  });

  it('ages are bounded by the Date range, so "now - age" is always a valid Date', () => {
    expect(requireAge(8.64e15, 'olderThanMs')).toBe(8.64e15);
    expect(new Date(Date.now() - 8.64e15).getTime()).not.toBeNaN();
    expectInvalid(() => requireAge(8.64e15 + 1, 'olderThanMs'), 'olderThanMs');
    expectInvalid(() => requireAge(Number.MAX_SAFE_INTEGER, 'olderThanMs'), 'olderThanMs');
    expect(validatePurgeFilter({ tenantId: 't', olderThanMs: 8.64e15 }).olderThanMs).toBe(8.64e15);
    expectInvalid(
      () => validatePurgeFilter({ tenantId: 't', olderThanMs: Number.MAX_SAFE_INTEGER }),
      'olderThanMs',
    );
  });
});

describe('resolveRetryPolicy', () => {
  it('merges over the defaults, ignoring undefined entries', () => {
    expect(
      resolveRetryPolicy({ maxAttempts: 2, backoffFactor: undefined }, DEFAULT_POLICY),
    ).toEqual({ ...DEFAULT_POLICY, maxAttempts: 2 });
    expect(resolveRetryPolicy(undefined, DEFAULT_POLICY)).toEqual(DEFAULT_POLICY);
  });

  it('refuses maxBackoffMs below initialBackoffMs, naming the given field prefix', () => {
    expectInvalid(
      () => resolveRetryPolicy({ initialBackoffMs: 5000 }, { ...DEFAULT_POLICY, maxBackoffMs: 10 }),
      'retryPolicy.maxBackoffMs',
    );
    expectInvalid(
      () => resolveRetryPolicy({ maxBackoffMs: 1 }, DEFAULT_POLICY, 'policy'),
      'policy.maxBackoffMs',
    );
  });
});
