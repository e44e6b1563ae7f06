/**
 * The data node-hookd stores and returns. Field names follow go-hookd in camelCase; identifiers
 * end in `Id`, durations in `Ms`, times are `Date`, and "absent" is `null`.
 */

/** A JSON value as stored in payloads and metadata. */
export type JsonValue =
  string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** A JSON object: the shape of every webhook payload. */
export type JsonObject = { [key: string]: JsonValue };

/** `active` subscriptions receive deliveries; `paused` and `disabled` ones hold them. */
export type SubscriptionStatus = 'active' | 'paused' | 'disabled';
/** Every subscription status. */
export const SUBSCRIPTION_STATUSES: readonly SubscriptionStatus[] = [
  'active',
  'paused',
  'disabled',
];

/**
 * `pending` until delivered (an in-flight delivery stays `pending` under its claim), then
 * `success` or `dead_letter`. `failed` is a terminal state kept for go-hookd compatibility; the
 * worker never writes it.
 */
export type DeliveryStatus = 'pending' | 'success' | 'failed' | 'dead_letter';
/** Every delivery status. */
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = [
  'pending',
  'success',
  'failed',
  'dead_letter',
];

/** Circuit-breaker states of one endpoint. */
export type CircuitState = 'closed' | 'half_open' | 'open';

/** How often and how far apart a delivery is retried. */
export interface RetryPolicy {
  /** Total HTTP attempts allowed, the first one included (go-hookd's "max retries"). */
  readonly maxAttempts: number;
  /** Wait after the first failed attempt. */
  readonly initialBackoffMs: number;
  /** Longest wait between two attempts. */
  readonly maxBackoffMs: number;
  /** Growth of the wait after each further failure. */
  readonly backoffFactor: number;
}

/** A receiver endpoint of one tenant, and what it wants to receive. */
export interface Subscription {
  /** `sub_` + 21-character nanoid. */
  readonly id: string;
  readonly tenantId: string;
  /** The endpoint, normalised on write (scheme and host lower-cased). */
  readonly url: string;
  /**
   * The HMAC key, or a reference a custom `SecretResolver` understands. Not enumerable: it never
   * appears in `JSON.stringify`, `console.log` or events, only when read explicitly.
   */
  readonly secret: string;
  readonly status: SubscriptionStatus;
  /** Exact event types or wildcard patterns (`*`, `order.*`). */
  readonly eventTypes: readonly string[];
  /** Metadata equality filters a queued event must satisfy (empty = accept all). */
  readonly filters: Readonly<Record<string, string>>;
  readonly retryPolicy: RetryPolicy;
  /** Extra request headers sent with every delivery. */
  readonly headers: Readonly<Record<string, string>>;
  /** Free-form data of the application; not used for delivery. */
  readonly metadata: Readonly<Record<string, JsonValue>>;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** One webhook to send, with its state. */
export interface Delivery {
  /** `dlv_` + 21-character nanoid; sent as `webhook-id` and `X-Webhook-Delivery-Id`. */
  readonly id: string;
  /** `null` for inline deliveries. */
  readonly subscriptionId: string | null;
  readonly tenantId: string;
  readonly eventType: string;
  /** The JSON object sent as the request body. */
  readonly payload: JsonObject;
  readonly status: DeliveryStatus;
  /** Attempts started so far; the number of the attempt in flight while one is. */
  readonly attemptCount: number;
  /** Total attempts allowed; grows by {@link Delivery.attemptBudget} on every dead-letter redrive. */
  readonly maxAttempts: number;
  /** Attempts granted when queued, and again by every redrive. */
  readonly attemptBudget: number;
  /** When the next attempt is due (the claim's lease expiry while one is in flight). */
  readonly nextRetryAt: Date | null;
  readonly completedAt: Date | null;
  readonly createdAt: Date;
  /** Target of an inline delivery; `null` for subscription deliveries. */
  readonly url: string | null;
  readonly idempotencyKey: string | null;
}

/** One HTTP attempt of a delivery. */
export interface DeliveryAttempt {
  /** `att_` + 21-character nanoid. */
  readonly id: string;
  readonly deliveryId: string;
  /** 1-based; never repeats for a delivery, not even across dead-letter redrives. */
  readonly attemptNumber: number;
  /** HTTP status, or 0 when no response arrived. */
  readonly statusCode: number;
  /** The first 10 KiB of the response body (UTF-8, invalid sequences replaced). */
  readonly responseBody: string | null;
  /** Up to 32 response headers, first value each, values cut at 512 bytes. */
  readonly responseHeaders: Readonly<Record<string, string>>;
  /** Why the attempt failed without a usable response; safe to show to the subscriber. */
  readonly error: string | null;
  readonly durationMs: number;
  readonly attemptedAt: Date;
}

/** The shared circuit-breaker record of one endpoint URL. */
export interface CircuitBreakerState {
  readonly endpoint: string;
  readonly state: CircuitState;
  readonly failureCount: number;
  readonly successCount: number;
  readonly lastFailureAt: Date | null;
  readonly openedAt: Date | null;
  /** While open: when the next trial request may go out. */
  readonly nextRetryAt: Date | null;
}

/** Which subscriptions to list. */
export interface SubscriptionFilter {
  /** Required unless {@link SubscriptionFilter.allTenants} is true. */
  readonly tenantId?: string;
  /** Opt in to listing across every tenant. */
  readonly allTenants?: boolean;
  readonly status?: SubscriptionStatus;
  /** Subscriptions whose pattern list contains any of these strings (exact comparison). */
  readonly eventTypes?: readonly string[];
  /** 0 or absent = no limit. */
  readonly limit?: number;
  readonly offset?: number;
}

/** Which deliveries to list. */
export interface DeliveryFilter {
  /** Required unless {@link DeliveryFilter.allTenants} is true. */
  readonly tenantId?: string;
  readonly allTenants?: boolean;
  readonly subscriptionId?: string;
  readonly status?: DeliveryStatus;
  readonly eventType?: string;
  /** Only deliveries created strictly before this time. */
  readonly createdBefore?: Date;
  /** Only deliveries created strictly after this time. */
  readonly createdAfter?: Date;
  /** 0 or absent = no limit. */
  readonly limit?: number;
  readonly offset?: number;
}

/** Which deliveries a cleanup counts or deletes. At least one real constraint is required. */
export interface CleanupFilter {
  /** Required unless {@link CleanupFilter.allTenants} is true. */
  readonly tenantId?: string;
  readonly allTenants?: boolean;
  readonly subscriptionId?: string;
  /** One status or several. */
  readonly status?: DeliveryStatus | readonly DeliveryStatus[];
  readonly eventType?: string;
  readonly createdBefore?: Date;
  readonly createdAfter?: Date;
}

/** Which dead letters to list or redrive. */
export interface DeadLetterFilter {
  readonly tenantId: string;
  readonly subscriptionId?: string;
  readonly eventType?: string;
  readonly createdAfter?: Date;
  readonly createdBefore?: Date;
  /** Page size of `listDeadLetters` (default 100); the most rows `retryDeadLetters` touches. */
  readonly limit?: number;
  readonly offset?: number;
}

/** Which dead letters to delete. */
export interface PurgeFilter {
  readonly tenantId: string;
  readonly subscriptionId?: string;
  /** Only dead letters created more than this long ago. */
  readonly olderThanMs?: number;
}

/** Outcome of `testSubscription`. */
export interface TestResult {
  readonly success: boolean;
  /** The ping's delivery id (`test_…`, sent as `webhook-id`), to find it in the receiver's logs. */
  readonly pingId: string;
  /** 0 when no response arrived. */
  readonly statusCode: number;
  readonly responseTimeMs: number;
  /** At most 1 KiB of the response body. */
  readonly responseBody: string | null;
  readonly error: string | null;
}

/** Outcome of a delivery cleanup. */
export interface CleanupResult {
  /** Deleted, or on a dry run: would be deleted. */
  readonly deliveriesDeleted: number;
  /** Attempt rows removed with them (0 on a dry run). */
  readonly attemptsDeleted: number;
  readonly durationMs: number;
  readonly dryRun: boolean;
}

/** Outcome of an idempotency-key cleanup. */
export interface IdempotencyCleanupResult {
  readonly keysDeleted: number;
  readonly durationMs: number;
  readonly dryRun: boolean;
}

/** Counts across the whole store. */
export interface MaintenanceStats {
  readonly totalDeliveries: number;
  readonly deliveriesByStatus: Readonly<Record<DeliveryStatus, number>>;
  readonly oldestDeliveryAt: Date | null;
  readonly newestDeliveryAt: Date | null;
  readonly totalDeliveryAttempts: number;
  readonly idempotencyKeys: number;
  readonly expiredIdempotencyKeys: number;
  readonly asOf: Date;
}

/** Pending and dead-lettered work right now (published as `metrics.queue_depth`). */
export interface QueueDepth {
  /** Pending deliveries, in flight included. */
  readonly pending: number;
  readonly deadLetter: number;
  /** Creation time of the oldest pending delivery. */
  readonly oldestPendingAt: Date | null;
}

/** A per-item failure inside a batch or bulk result: never a raw `Error`, always serialisable. */
export interface ItemError {
  readonly code: string;
  readonly message: string;
  readonly field?: string;
}

/** Outcome of `retryDeadLetters`. */
export interface RetryDeadLetterResult {
  readonly totalFound: number;
  readonly totalRetried: number;
  readonly errors: ReadonlyArray<ItemError & { readonly deliveryId: string }>;
}

/** Outcome of `purgeDeadLetters`. */
export interface PurgeDeadLetterResult {
  readonly totalPurged: number;
}

/** One item of a batch response, at the same index as its request. */
export type BatchItemResult<T> =
  | { readonly index: number; readonly success: true; readonly result: T }
  | { readonly index: number; readonly success: false; readonly error: ItemError };

/** Response of the batch APIs. The call itself succeeds even when every item failed. */
export interface BatchResponse<T> {
  readonly results: ReadonlyArray<BatchItemResult<T>>;
  readonly totalRequested: number;
  readonly totalSucceeded: number;
  readonly totalFailed: number;
}
