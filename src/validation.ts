import { z } from 'zod';

import {
  MAX_EVENT_TYPES_PER_SUBSCRIPTION,
  MAX_EVENT_TYPE_LENGTH,
  MAX_FILTERS_PER_SUBSCRIPTION,
  MAX_HEADERS_PER_SUBSCRIPTION,
  MAX_HEADER_KEY_LENGTH,
  MAX_HEADER_VALUE_LENGTH,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  MAX_METADATA_SIZE,
  MAX_PAYLOAD_SIZE,
  MAX_SECRET_LENGTH,
  MAX_TENANT_ID_LENGTH,
  MIN_EVENT_TYPE_LENGTH,
  MIN_SECRET_LENGTH,
} from './constants.js';
import { STANDARD_SECRET_PREFIX, standardWebhookKey } from '../verify/signature.js';
import { isReservedHeaderName } from './delivery/request-headers.js';
import { parseDestinationUrl, type EgressPolicy } from './delivery/egress-policy.js';
import { HookdError, invalidArgument } from './errors.js';
import { assertTenantScope } from './filters.js';
import { serializeJsonObject } from './json-body.js';
import {
  DELIVERY_STATUSES,
  SUBSCRIPTION_STATUSES,
  type DeadLetterFilter,
  type DeliveryFilter,
  type JsonObject,
  type JsonValue,
  type PurgeFilter,
  type RetryPolicy,
  type SubscriptionFilter,
  type SubscriptionStatus,
} from './models.js';

/**
 * Validation of every request the manager accepts. zod does the checking; callers only ever
 * see a `HookdError` (`HOOKD_ERR_INVALID_ARGUMENT`) whose `field` names the offending value —
 * dotted for nested ones (`retryPolicy.maxAttempts`, `eventTypes.2`). A request that fails
 * validation changes nothing.
 */

/** Largest attempt budget a policy may ask for. */
const MAX_ATTEMPTS_LIMIT = 100_000;
/** Longest backoff a policy may ask for: 30 days. */
const MAX_BACKOFF_LIMIT_MS = 30 * 24 * 60 * 60 * 1000;
/** Largest backoff factor. */
const MAX_BACKOFF_FACTOR = 1000;
const MAX_FILTER_VALUE_LENGTH = 2048;
/**
 * Longest age ("older than") a cleanup or purge may name: the range of a JavaScript Date, so that
 * `now - age` is always a valid cutoff (a longer one would become an Invalid Date).
 */
const MAX_AGE_MS = 8.64e15;

const byteLength = (value: string) => Buffer.byteLength(value, 'utf8');

const requiredString = () =>
  z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
    .min(1, { error: 'is required' });

const boundedString = (maxBytes: number) =>
  requiredString().refine((value) => byteLength(value) <= maxBytes, {
    error: `must be at most ${maxBytes} bytes`,
  });

// Event types travel in a request header (X-Webhook-Event-Type): printable ASCII only, so a
// stored value can never break or forge a header.
const PRINTABLE = /^[\x20-\x7e]+$/;
const EDGE_WHITESPACE = /^\s|\s$/;

const tenantIdSchema = boundedString(MAX_TENANT_ID_LENGTH);

const eventTypeSchema = boundedString(MAX_EVENT_TYPE_LENGTH)
  .refine((value) => PRINTABLE.test(value), {
    error: 'must contain only printable ASCII characters',
  })
  .refine((value) => !EDGE_WHITESPACE.test(value), {
    error: 'must not start or end with whitespace',
  });

const eventTypePatternSchema = eventTypeSchema.superRefine((value, context) => {
  if (value === '*') return;
  if (value.endsWith('.*')) {
    if (value.length - 2 < 1)
      context.addIssue({ code: 'custom', message: 'wildcard needs a prefix before ".*"' });
    if (value.length - 2 > MAX_EVENT_TYPE_LENGTH - 2)
      context.addIssue({ code: 'custom', message: 'wildcard prefix is too long' });
    return;
  }
  if (value.length < MIN_EVENT_TYPE_LENGTH) {
    context.addIssue({
      code: 'custom',
      message: `must be at least ${MIN_EVENT_TYPE_LENGTH} characters`,
    });
  }
});

const eventTypesSchema = z
  .array(eventTypePatternSchema, {
    error: (issue) => (issue.input === undefined ? 'is required' : 'must be an array of strings'),
  })
  .min(1, { error: 'must list at least one event type' })
  .max(MAX_EVENT_TYPES_PER_SUBSCRIPTION, {
    error: `must list at most ${MAX_EVENT_TYPES_PER_SUBSCRIPTION} event types`,
  });

/**
 * A `whsec_` secret is a promise to Standard Webhooks receivers that the rest is base64 of the
 * key; one that is not could never produce a signature they accept.
 */
function isUsableStandardSecret(value: string): boolean {
  if (!value.startsWith(STANDARD_SECRET_PREFIX)) return true;
  try {
    standardWebhookKey(value);
    return true;
  } catch {
    return false;
  }
}

const WHSEC_MESSAGE = `starts with ${STANDARD_SECRET_PREFIX} but the rest is not padded base64 of the key (use generateSecret())`;

const secretSchema = requiredString()
  .refine((value) => byteLength(value) >= MIN_SECRET_LENGTH, {
    error: `must be at least ${MIN_SECRET_LENGTH} characters`,
  })
  .refine((value) => byteLength(value) <= MAX_SECRET_LENGTH, {
    error: `must be at most ${MAX_SECRET_LENGTH} bytes`,
  })
  .refine(isUsableStandardSecret, { error: WHSEC_MESSAGE });

const idempotencyKeySchema = z
  .string({ error: 'must be a string' })
  .refine((value) => byteLength(value) <= MAX_IDEMPOTENCY_KEY_LENGTH, {
    error: `must be at most ${MAX_IDEMPOTENCY_KEY_LENGTH} bytes`,
  })
  .refine((value) => value === '' || PRINTABLE.test(value), {
    error: 'must contain only printable ASCII characters (0x20-0x7E)',
  });

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Tab and printable ASCII: no CR, LF or NUL, so a value can never split or smuggle a header.
const HEADER_VALUE = /^[\t\x20-\x7e]*$/;

// zod's record drops an own `__proto__` key (as JSON.parse makes) without a word; refuse it, so
// that no header or filter the caller sent silently goes missing.
const withoutProtoKey = <T extends z.ZodType>(schema: T) =>
  z
    .unknown()
    .superRefine((value, context) => {
      if (typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')) {
        context.addIssue({
          code: 'custom',
          message: 'must not use the key "__proto__"',
          path: ['__proto__'],
        });
      }
    })
    .pipe(schema);

const headersSchema = z
  .record(z.string(), z.string({ error: 'must be a string' }), {
    error: 'must be an object of strings',
  })
  .superRefine((headers, context) => {
    const names = Object.keys(headers);
    if (names.length > MAX_HEADERS_PER_SUBSCRIPTION) {
      context.addIssue({
        code: 'custom',
        message: `must have at most ${MAX_HEADERS_PER_SUBSCRIPTION} entries`,
      });
    }
    const seen = new Set<string>();
    for (const name of names) {
      const value = headers[name]!;
      const problem =
        name.length === 0 || name.length > MAX_HEADER_KEY_LENGTH || !HEADER_NAME.test(name)
          ? `name must be an HTTP token of 1-${MAX_HEADER_KEY_LENGTH} characters`
          : isReservedHeaderName(name)
            ? 'is reserved: node-hookd sets it (signature, timestamp, ids, attempt, idempotency key, tracing) or HTTP does'
            : seen.has(name.toLowerCase())
              ? 'is given twice (header names are case-insensitive)'
              : value.length > MAX_HEADER_VALUE_LENGTH
                ? `value must be at most ${MAX_HEADER_VALUE_LENGTH} characters`
                : !HEADER_VALUE.test(value)
                  ? 'value must contain only printable ASCII and tabs (no CR, LF or NUL)'
                  : null;
      seen.add(name.toLowerCase());
      if (problem) context.addIssue({ code: 'custom', message: problem, path: [name] });
    }
  });

const filtersSchema = z
  .record(z.string(), z.string({ error: 'must be a string' }), {
    error: 'must be an object of strings',
  })
  .superRefine((filters, context) => {
    const keys = Object.keys(filters);
    if (keys.length > MAX_FILTERS_PER_SUBSCRIPTION) {
      context.addIssue({
        code: 'custom',
        message: `must have at most ${MAX_FILTERS_PER_SUBSCRIPTION} entries`,
      });
    }
    for (const key of keys) {
      if (key.length === 0 || key.length > 255)
        context.addIssue({ code: 'custom', message: 'key must be 1-255 characters', path: [key] });
      else if (filters[key]!.length > MAX_FILTER_VALUE_LENGTH) {
        context.addIssue({
          code: 'custom',
          message: `value must be at most ${MAX_FILTER_VALUE_LENGTH} characters`,
          path: [key],
        });
      }
    }
  });

const int = (min: number, max: number) =>
  z
    .number({ error: 'must be a number' })
    .int({ error: 'must be an integer' })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });

const retryPolicySchema = z.strictObject(
  {
    maxAttempts: int(0, MAX_ATTEMPTS_LIMIT).optional(),
    initialBackoffMs: int(0, MAX_BACKOFF_LIMIT_MS).optional(),
    maxBackoffMs: int(0, MAX_BACKOFF_LIMIT_MS).optional(),
    backoffFactor: z
      .number({ error: 'must be a number' })
      .min(1, { error: 'must be at least 1' })
      .max(MAX_BACKOFF_FACTOR, { error: `must be at most ${MAX_BACKOFF_FACTOR}` })
      .optional(),
  },
  { error: 'must be an object' },
);

const statusSchema = z.enum(
  SUBSCRIPTION_STATUSES as [SubscriptionStatus, ...SubscriptionStatus[]],
  {
    error: `must be one of ${SUBSCRIPTION_STATUSES.join(', ')}`,
  },
);

// A key that is the empty string is shown as "" in a dotted field, so a field is never empty.
const pathSegment = (key: PropertyKey) => (key === '' ? '""' : String(key));

function firstIssue(error: z.ZodError): HookdError {
  const issue = error.issues[0]!;
  const path = issue.path.map(pathSegment);
  if (issue.code === 'unrecognized_keys') {
    const field = [...path, pathSegment(issue.keys[0]!)].join('.');
    return invalidArgument(field, `${field} is not a known field`);
  }
  const field = path.length > 0 ? path.join('.') : 'request';
  return invalidArgument(field, `${field} ${issue.message}`);
}

function parse<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  let result: z.ZodSafeParseResult<T>;
  try {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      throw invalidArgument('request', `${what} must be an object`);
    }
    result = schema.safeParse(input);
  } catch (error) {
    if (error instanceof HookdError) throw error;
    // A getter or Proxy trap of the caller's object threw while it was being read.
    throw new HookdError('HOOKD_ERR_INVALID_ARGUMENT', `${what} could not be read`, {
      field: 'request',
      cause: error,
    });
  }
  if (!result.success) throw firstIssue(result.error);
  return result.data;
}

function metadataObject(value: unknown, field: string): Record<string, JsonValue> {
  return serializeJsonObject(value, field, MAX_METADATA_SIZE).object;
}

/**
 * Merges a partial retry policy over `defaults` and checks the result (go-hookd
 * `RetryPolicy.Validate`): `maxBackoffMs` at least `initialBackoffMs`.
 */
export function resolveRetryPolicy(
  partial: Partial<RetryPolicy> | undefined,
  defaults: RetryPolicy,
  field = 'retryPolicy',
): RetryPolicy {
  const policy = { ...defaults, ...stripUndefined(partial ?? {}) };
  if (policy.maxBackoffMs < policy.initialBackoffMs) {
    throw invalidArgument(
      `${field}.maxBackoffMs`,
      `${field}.maxBackoffMs must be at least ${field}.initialBackoffMs`,
    );
  }
  return policy;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

// ── Subscriptions ──────────────────────────────────────────────────────────────────────────

/** Input of `createSubscription`. */
export interface CreateSubscriptionRequest {
  readonly tenantId: string;
  /** `http://` or `https://` endpoint. */
  readonly url: string;
  /** HMAC key (8–512 bytes), or a reference for a custom secret resolver. See `generateSecret()`. */
  readonly secret: string;
  /** Exact event types or patterns (`*`, `order.*`); 1–100 entries. */
  readonly eventTypes: readonly string[];
  /** Metadata equality filters a queued event must satisfy. */
  readonly filters?: Readonly<Record<string, string>>;
  /** Any subset; the rest comes from the manager's default policy. */
  readonly retryPolicy?: Partial<RetryPolicy>;
  /** Extra request headers (at most 50; node-hookd's own names are reserved). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Free-form data of the application, at most 64 KiB as JSON. */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

const createSubscriptionSchema = z.strictObject({
  tenantId: tenantIdSchema,
  url: requiredString(),
  secret: secretSchema,
  eventTypes: eventTypesSchema,
  filters: withoutProtoKey(filtersSchema).optional(),
  retryPolicy: retryPolicySchema.optional(),
  headers: withoutProtoKey(headersSchema).optional(),
  metadata: z.unknown().optional(),
});

/** A create request after validation, with the normalised URL and the full retry policy. */
export interface ValidCreateSubscription {
  readonly tenantId: string;
  readonly url: string;
  readonly secret: string;
  readonly eventTypes: readonly string[];
  readonly filters: Record<string, string>;
  readonly retryPolicy: RetryPolicy;
  readonly headers: Record<string, string>;
  readonly metadata: Record<string, JsonValue>;
}

/** Validates a `createSubscription` request. */
export function validateCreateSubscription(
  input: unknown,
  policy: EgressPolicy,
  defaults: RetryPolicy,
): ValidCreateSubscription {
  const request = parse(createSubscriptionSchema, input, 'createSubscription request');
  const url = parseDestinationUrl(request.url, policy, 'url').href;
  return {
    tenantId: request.tenantId,
    url,
    secret: request.secret,
    eventTypes: [...request.eventTypes],
    filters: { ...request.filters },
    retryPolicy: resolveRetryPolicy(request.retryPolicy, defaults),
    headers: { ...request.headers },
    metadata: request.metadata === undefined ? {} : metadataObject(request.metadata, 'metadata'),
  };
}

/** Input of `updateSubscription`: only the given fields change. */
export interface UpdateSubscriptionRequest {
  readonly url?: string;
  readonly eventTypes?: readonly string[];
  readonly status?: SubscriptionStatus;
  /** Any subset; merged over the subscription's current policy. */
  readonly retryPolicy?: Partial<RetryPolicy>;
  /** Replaces all custom headers. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Replaces the metadata. */
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** Replaces the filters. */
  readonly filters?: Readonly<Record<string, string>>;
}

const updateSubscriptionSchema = z.strictObject({
  url: requiredString().optional(),
  eventTypes: eventTypesSchema.optional(),
  status: statusSchema.optional(),
  retryPolicy: retryPolicySchema.optional(),
  headers: withoutProtoKey(headersSchema).optional(),
  metadata: z.unknown().optional(),
  filters: withoutProtoKey(filtersSchema).optional(),
});

/** An update request after validation (URL normalised; unspecified fields absent). */
export interface ValidUpdateSubscription {
  readonly url?: string;
  readonly eventTypes?: readonly string[];
  readonly status?: SubscriptionStatus;
  readonly retryPolicy?: Partial<RetryPolicy>;
  readonly headers?: Record<string, string>;
  readonly metadata?: Record<string, JsonValue>;
  readonly filters?: Record<string, string>;
}

/** Validates an `updateSubscription` request (every field, unlike go-hookd). */
export function validateUpdateSubscription(
  input: unknown,
  policy: EgressPolicy,
): ValidUpdateSubscription {
  const request = parse(updateSubscriptionSchema, input, 'updateSubscription request');
  return stripUndefined({
    url:
      request.url === undefined ? undefined : parseDestinationUrl(request.url, policy, 'url').href,
    eventTypes: request.eventTypes,
    status: request.status,
    retryPolicy:
      request.retryPolicy === undefined ? undefined : stripUndefined(request.retryPolicy),
    headers: request.headers,
    metadata:
      request.metadata === undefined ? undefined : metadataObject(request.metadata, 'metadata'),
    filters: request.filters,
  });
}

// ── Deliveries ─────────────────────────────────────────────────────────────────────────────

/** Input of `queueDelivery`. */
export interface QueueDeliveryRequest {
  readonly subscriptionId: string;
  /** Must match one of the subscription's patterns. */
  readonly eventType: string;
  /** The JSON object to send (at most 1 MiB as JSON). */
  readonly payload: Readonly<Record<string, unknown>>;
  /** Matched against the subscription's filters; not stored. */
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** At most 255 printable ASCII characters; a live duplicate in the subscription is refused. */
  readonly idempotencyKey?: string;
}

const queueDeliverySchema = z.strictObject({
  subscriptionId: boundedString(255),
  eventType: eventTypeSchema,
  payload: z.unknown(),
  metadata: z.record(z.string(), z.unknown(), { error: 'must be an object' }).optional(),
  idempotencyKey: idempotencyKeySchema.optional(),
});

/** A queue request after validation, with the serialised body. */
export interface ValidQueueDelivery {
  readonly subscriptionId: string;
  readonly eventType: string;
  readonly body: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly idempotencyKey: string | null;
}

function payloadBody(payload: unknown): string {
  if (payload === undefined || payload === null)
    throw invalidArgument('payload', 'payload is required');
  return serializeJsonObject(payload, 'payload', MAX_PAYLOAD_SIZE).body;
}

/** Validates a `queueDelivery` request. */
export function validateQueueDelivery(input: unknown): ValidQueueDelivery {
  const request = parse(queueDeliverySchema, input, 'queueDelivery request');
  return {
    subscriptionId: request.subscriptionId,
    eventType: request.eventType,
    body: payloadBody(request.payload),
    metadata: request.metadata ?? {},
    idempotencyKey: request.idempotencyKey ? request.idempotencyKey : null,
  };
}

/** Input of `queueInlineDelivery`: a one-off webhook without a subscription. */
export interface QueueInlineDeliveryRequest {
  readonly url: string;
  /** Signing secret (or resolver reference); empty signs with an empty key. */
  readonly secret?: string;
  readonly tenantId: string;
  readonly eventType: string;
  readonly payload: Readonly<Record<string, unknown>>;
  /** Total attempts; 0 or absent = the manager's `defaultMaxRetries`. */
  readonly maxRetries?: number;
  readonly idempotencyKey?: string;
}

const queueInlineSchema = z.strictObject({
  url: requiredString(),
  secret: z
    .string({ error: 'must be a string' })
    .refine((value) => byteLength(value) <= MAX_SECRET_LENGTH, {
      error: `must be at most ${MAX_SECRET_LENGTH} bytes`,
    })
    .refine(isUsableStandardSecret, { error: WHSEC_MESSAGE })
    .optional(),
  tenantId: tenantIdSchema,
  eventType: eventTypeSchema,
  payload: z.unknown(),
  maxRetries: int(0, MAX_ATTEMPTS_LIMIT).optional(),
  idempotencyKey: idempotencyKeySchema.optional(),
});

/** An inline request after validation. */
export interface ValidQueueInlineDelivery {
  readonly url: string;
  readonly secret: string;
  readonly tenantId: string;
  readonly eventType: string;
  readonly body: string;
  readonly maxRetries: number;
  readonly idempotencyKey: string | null;
}

/** Validates a `queueInlineDelivery` request under the manager's egress policy. */
export function validateQueueInlineDelivery(
  input: unknown,
  policy: EgressPolicy,
): ValidQueueInlineDelivery {
  const request = parse(queueInlineSchema, input, 'queueInlineDelivery request');
  const url = parseDestinationUrl(request.url, policy, 'url').href;
  return {
    url,
    secret: request.secret ?? '',
    tenantId: request.tenantId,
    eventType: request.eventType,
    body: payloadBody(request.payload),
    maxRetries: request.maxRetries ?? 0,
    idempotencyKey: request.idempotencyKey ? request.idempotencyKey : null,
  };
}

// ── Ids and filters ────────────────────────────────────────────────────────────────────────

/** Checks an id argument. */
export function requireId(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '')
    throw invalidArgument(field, `${field} is required`);
  if (value.length > 255) throw invalidArgument(field, `${field} must be at most 255 characters`);
  return value;
}

const pagingShape = {
  limit: int(0, Number.MAX_SAFE_INTEGER).optional(),
  offset: int(0, Number.MAX_SAFE_INTEGER).optional(),
};
const dateSchema = z
  .date({ error: 'must be a valid Date' })
  .refine((date) => !Number.isNaN(date.getTime()), {
    error: 'must be a valid Date',
  });

const subscriptionFilterSchema = z.strictObject({
  tenantId: z.string({ error: 'must be a string' }).optional(),
  allTenants: z.boolean({ error: 'must be a boolean' }).optional(),
  status: statusSchema.optional(),
  eventTypes: z
    .array(z.string({ error: 'must be a string' }), { error: 'must be an array of strings' })
    .optional(),
  ...pagingShape,
});

/** Validates a subscription list filter, including the tenant-scope rule. */
export function validateSubscriptionFilter(input: unknown): SubscriptionFilter {
  const filter = parse(subscriptionFilterSchema, input, 'filter');
  assertTenantScope(filter);
  return filter;
}

const deliveryStatusSchema = z.enum(DELIVERY_STATUSES as [string, ...string[]], {
  error: `must be one of ${DELIVERY_STATUSES.join(', ')}`,
});

const deliveryFilterSchema = z.strictObject({
  tenantId: z.string({ error: 'must be a string' }).optional(),
  allTenants: z.boolean({ error: 'must be a boolean' }).optional(),
  subscriptionId: z.string({ error: 'must be a string' }).optional(),
  status: deliveryStatusSchema.optional(),
  eventType: z.string({ error: 'must be a string' }).optional(),
  createdBefore: dateSchema.optional(),
  createdAfter: dateSchema.optional(),
  ...pagingShape,
});

/** Validates a delivery list filter, including the tenant-scope rule. */
export function validateDeliveryFilter(input: unknown): DeliveryFilter {
  const filter = parse(deliveryFilterSchema, input, 'filter') as DeliveryFilter;
  assertTenantScope(filter);
  return filter;
}

const deadLetterFilterSchema = z.strictObject({
  tenantId: z.string({ error: 'must be a string' }).optional(),
  subscriptionId: z.string({ error: 'must be a string' }).optional(),
  eventType: z.string({ error: 'must be a string' }).optional(),
  createdAfter: dateSchema.optional(),
  createdBefore: dateSchema.optional(),
  ...pagingShape,
});

function requireTenant(tenantId: string | undefined): string {
  if (tenantId === undefined || tenantId === '') {
    throw new HookdError(
      'HOOKD_ERR_TENANT_SCOPE_REQUIRED',
      'tenantId is required for dead-letter operations',
      { field: 'tenantId' },
    );
  }
  return tenantId;
}

/** Validates a dead-letter filter: the tenant is mandatory. */
export function validateDeadLetterFilter(input: unknown): DeadLetterFilter {
  const filter = parse(deadLetterFilterSchema, input, 'filter');
  return { ...filter, tenantId: requireTenant(filter.tenantId) };
}

const purgeFilterSchema = z.strictObject({
  tenantId: z.string({ error: 'must be a string' }).optional(),
  subscriptionId: z.string({ error: 'must be a string' }).optional(),
  olderThanMs: int(0, MAX_AGE_MS).optional(),
});

/** Validates a dead-letter purge filter: the tenant is mandatory, `olderThanMs` non-negative. */
export function validatePurgeFilter(input: unknown): PurgeFilter {
  const filter = parse(purgeFilterSchema, input, 'filter');
  return { ...filter, tenantId: requireTenant(filter.tenantId) };
}

/** Validates a cleanup age ("older than") argument. */
export function requireAge(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_AGE_MS) {
    throw invalidArgument(
      field,
      `${field} must be a non-negative integer (milliseconds) of at most ${MAX_AGE_MS}`,
    );
  }
  return value;
}

/** Re-exported for callers that only need the payload check. */
export type { JsonObject };
