import type { CircuitEvent, CircuitSettings, CircuitTransition } from '../retry/circuit-breaker.js';
import type {
  CircuitBreakerState,
  CleanupFilter,
  Delivery,
  DeliveryAttempt,
  DeliveryFilter,
  MaintenanceStats,
  QueueDepth,
  Subscription,
  SubscriptionFilter,
} from '../models.js';

/**
 * The storage contract. `MockRepository` (memory) and `PostgresRepository` implement it and pass
 * one shared contract test suite; nothing else in node-hookd knows how data is stored.
 *
 * Times that decide *when* something is due (claim leases, retry delays, idempotency expiry,
 * circuit timeouts) are computed by the repository from durations, on its own clock — for
 * PostgreSQL the database clock — so managers whose clocks disagree still agree on leases.
 *
 * Errors are `HookdError`s: `…_NOT_FOUND` for missing rows, `…_DUPLICATE_…` for uniqueness
 * conflicts, `HOOKD_ERR_DELIVERY_CLAIM_LOST` for a failed fence, `HOOKD_ERR_DATABASE` for
 * storage failures, `HOOKD_ERR_TENANT_SCOPE_REQUIRED` for unscoped list/cleanup filters.
 */
export interface Repository {
  // ── Subscriptions ────────────────────────────────────────────────────────────────────────
  /** Inserts; a second subscription of the tenant for the same URL → `HOOKD_ERR_DUPLICATE_SUBSCRIPTION`. */
  createSubscription(subscription: Subscription): Promise<void>;
  getSubscription(id: string): Promise<Subscription>;
  getSubscriptionByTenantAndUrl(tenantId: string, url: string): Promise<Subscription>;
  /** Overwrites the mutable columns; a URL collision → `HOOKD_ERR_DUPLICATE_SUBSCRIPTION`. */
  updateSubscription(subscription: Subscription): Promise<void>;
  /** Deletes the subscription, its deliveries and their attempts, and its idempotency keys. */
  deleteSubscription(id: string): Promise<void>;
  /** Newest first. Refuses a filter without `tenantId` unless `allTenants`. */
  listSubscriptions(filter: SubscriptionFilter): Promise<Subscription[]>;

  // ── Deliveries ───────────────────────────────────────────────────────────────────────────
  /**
   * Stores a new pending delivery, due now. With `idempotency`, the key is claimed in the same
   * atomic step: a live key in the scope → `HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY` (with
   * `details.deliveryId` of the delivery that holds it) and nothing is stored; an expired key is
   * taken over. Either both the key and the delivery exist afterwards or neither does.
   */
  createDelivery(delivery: NewDelivery, options?: CreateDeliveryOptions): Promise<Delivery>;
  /**
   * {@link Repository.createDelivery} for many deliveries at once; each item succeeds or fails
   * on its own (results in input order). Two items with the same key and scope: the first wins.
   */
  createDeliveries(items: readonly NewDeliveryItem[]): Promise<CreateDeliveryResult[]>;
  getDelivery(id: string): Promise<Delivery>;
  /** Overwrites the delivery's state columns (go-hookd `UpdateDelivery`; not fenced). */
  updateDelivery(delivery: Delivery): Promise<void>;
  /** Newest first. Refuses a filter without `tenantId` unless `allTenants`. */
  listDeliveries(filter: DeliveryFilter): Promise<Delivery[]>;
  /** Deletes a delivery and its attempts. */
  deleteDelivery(id: string): Promise<void>;
  /** Marks the delivery dead-lettered (go-hookd `MoveToDeadLetter`; `reason` is not stored). */
  moveToDeadLetter(id: string, reason: string): Promise<void>;

  // ── Claims (lease + fencing token) ───────────────────────────────────────────────────────
  /**
   * Claims up to `limit` due pending deliveries, oldest due first, for `leaseMs`: no other claim
   * can take them until the lease expires. Each claim counts as a started attempt
   * (`attemptCount` is incremented and is the number of the attempt this claim may make) and
   * carries a fresh `claimToken`; renew, release and complete must present it.
   * `limit < 1` or `leaseMs <= 0` → `HOOKD_ERR_INVALID_ARGUMENT`.
   */
  claimPendingDeliveries(limit: number, leaseMs: number): Promise<ClaimedDelivery[]>;
  /** Extends a claim's lease to `leaseMs` from now; a claim that is no longer held → `HOOKD_ERR_DELIVERY_CLAIM_LOST`. */
  renewDeliveryClaim(deliveryId: string, claimToken: string, leaseMs: number): Promise<void>;
  /** Gives one claim back (see {@link ClaimRelease}); not held → `HOOKD_ERR_DELIVERY_CLAIM_LOST`. */
  releaseDeliveryClaim(release: ClaimRelease): Promise<void>;
  /** Gives many claims back; returns how many were still held (the others are skipped). */
  releaseDeliveryClaims(releases: readonly ClaimRelease[]): Promise<number>;
  /**
   * Records finished attempts: each attempt row is stored, and the delivery's new state is
   * written only while the claim is still held. Results in input order.
   */
  completeDeliveryAttempts(completions: readonly AttemptCompletion[]): Promise<CompletionResult[]>;
  /**
   * Atomic dead-letter redrive: `pending`, due now, `maxAttempts = attemptCount + attemptBudget`.
   * Not dead-lettered (anymore) → `HOOKD_ERR_DELIVERY_NOT_DEAD_LETTER`.
   */
  requeueDeadLetter(id: string): Promise<Delivery>;
  /**
   * Makes a delivery due now (`retryDelivery`): a dead-lettered or failed one becomes pending
   * with room for at least one more attempt. `success` → `HOOKD_ERR_CANNOT_RETRY_SUCCESSFUL`;
   * currently claimed → `HOOKD_ERR_DELIVERY_IN_PROGRESS`.
   */
  retryDelivery(id: string): Promise<Delivery>;
  /** Makes the unclaimed pending deliveries of a subscription due now (after a resume); returns how many. */
  wakeSubscriptionDeliveries(subscriptionId: string): Promise<number>;

  // ── Attempts ─────────────────────────────────────────────────────────────────────────────
  /** Inserts; a second attempt with the same number → `HOOKD_ERR_DUPLICATE_ATTEMPT`. */
  createDeliveryAttempt(attempt: DeliveryAttempt): Promise<void>;
  /** Ordered by attempt number; empty when there are none. */
  getDeliveryAttempts(deliveryId: string): Promise<DeliveryAttempt[]>;

  // ── Idempotency store ────────────────────────────────────────────────────────────────────
  /** Whether a live key exists in the scope. */
  checkIdempotency(key: string, scope: string): Promise<boolean>;
  /** Claims a key until `expiresAt` (taking over an expired one); a live key → `HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY`. */
  storeIdempotencyKey(key: string, scope: string, expiresAt: Date): Promise<void>;
  countExpiredIdempotencyKeys(): Promise<number>;
  cleanupExpiredIdempotencyKeys(): Promise<number>;

  // ── Circuit breaker ──────────────────────────────────────────────────────────────────────
  /** The endpoint's record, or a closed one with zero counts when there is none. */
  getCircuitBreakerState(endpoint: string): Promise<CircuitBreakerState>;
  /** Upserts the record as given. */
  updateCircuitBreakerState(state: CircuitBreakerState): Promise<void>;
  /**
   * Applies circuit events atomically, in order, to the shared records (no increment is lost
   * between processes). Returns, per input event, the transition it caused or `null`.
   */
  recordCircuitEvents(
    events: readonly CircuitEventInput[],
    settings: CircuitSettings,
  ): Promise<Array<CircuitTransition | null>>;

  // ── Maintenance ──────────────────────────────────────────────────────────────────────────
  /** Counts deliveries matching a validated cleanup filter. */
  countDeliveriesByFilter(filter: CleanupFilter): Promise<number>;
  /** Deletes deliveries matching a validated cleanup filter, and their attempts. */
  deleteDeliveriesByFilter(filter: CleanupFilter): Promise<DeletedCounts>;
  getMaintenanceStats(): Promise<MaintenanceStats>;
  getQueueDepth(): Promise<QueueDepth>;

  // ── Transactions, wake-ups, lifecycle ────────────────────────────────────────────────────
  /** Starts a transaction: a repository whose writes become visible on `commit()`. */
  beginTx(): Promise<RepositoryTx>;
  /**
   * A repository view that runs inside the caller's open transaction (`queueDelivery(req,
   * { client })`). Repositories that cannot do this omit the method.
   */
  withClient?(client: unknown): Repository;
  /**
   * Calls `listener` whenever another process (or another manager on the same repository)
   * queues work, so an idle manager wakes at once. Returns the function that stops listening.
   */
  listenForWork?(
    listener: () => void,
    onError: (error: Error) => void,
  ): Promise<() => Promise<void>>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A transaction. `rollback()` after `commit()` does nothing. */
export interface RepositoryTx extends Repository {
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/** What the manager hands to {@link Repository.createDelivery}. */
export interface NewDelivery {
  readonly id: string;
  readonly subscriptionId: string | null;
  readonly tenantId: string;
  readonly eventType: string;
  /** The exact bytes sent on every attempt (serialised JSON object). */
  readonly body: string;
  readonly maxAttempts: number;
  readonly attemptBudget: number;
  /** Inline target; `null` for subscription deliveries. */
  readonly url: string | null;
  /** Inline signing secret (or resolver reference); `null` for subscription deliveries. */
  readonly secret: string | null;
  readonly idempotencyKey: string | null;
  /** W3C `traceparent` of the span that queued the delivery (tracing on), for span links. */
  readonly traceContext?: string | null;
}

/** An idempotency key to claim together with a new delivery. */
export interface IdempotencyClaim {
  readonly key: string;
  /** The subscription id, or `inline:<hash>` for inline deliveries. */
  readonly scope: string;
  readonly ttlMs: number;
}

/** Options of {@link Repository.createDelivery}. */
export interface CreateDeliveryOptions {
  readonly idempotency?: IdempotencyClaim | undefined;
}

/** One item of {@link Repository.createDeliveries}. */
export interface NewDeliveryItem {
  readonly delivery: NewDelivery;
  readonly idempotency?: IdempotencyClaim | undefined;
}

/** Result of one item of {@link Repository.createDeliveries}. */
export type CreateDeliveryResult =
  | { readonly ok: true; readonly delivery: Delivery }
  | { readonly ok: false; readonly error: Error };

/** Whether an open circuit still parks deliveries, decided on the repository's clock. */
export interface CircuitSnapshot extends CircuitBreakerState {
  readonly parking: boolean;
}

/** A claimed delivery with everything a worker needs to attempt it. */
export interface ClaimedDelivery extends Omit<Delivery, 'payload'> {
  /** The exact request body. */
  readonly body: string;
  /** The inline delivery's secret (or resolver reference); `null` for subscription deliveries. */
  readonly inlineSecret: string | null;
  readonly claimToken: string;
  /** The subscription as it is now; `null` for inline deliveries (or if it was deleted). */
  readonly subscription: Subscription | null;
  /** The target endpoint's breaker, `null` when it has no record (closed). */
  readonly circuit: CircuitSnapshot | null;
  /** The `traceparent` stored with the delivery at queue time, if any. */
  readonly traceContext?: string | null;
}

/** A claim given back without (another) attempt. */
export interface ClaimRelease {
  readonly deliveryId: string;
  readonly claimToken: string;
  /**
   * When the delivery becomes due again: `null` = now, at its original position in the queue; a
   * `Date` = that instant (a circuit's reopening time); `{ delayMs }` = that long from now.
   */
  readonly retryAt: Date | { readonly delayMs: number } | null;
  /** Undo the claim's attempt count (nothing was sent). */
  readonly refundAttempt: boolean;
}

/** The state a finished attempt leaves its delivery in. */
export type CompletionOutcome =
  | { readonly status: 'success' }
  | {
      readonly status: 'retry';
      readonly delayMs: number;
      /**
       * The attempt was cut short by this process (its shutdown), not by the receiver: raise
       * `maxAttempts` if needed so that at least one more attempt is allowed. Otherwise an
       * aborted last attempt would leave the delivery to be dead-lettered unsent.
       */
      readonly ensureNextAttempt?: boolean;
    }
  | { readonly status: 'dead_letter' };

/** A finished attempt to record. */
export interface AttemptCompletion {
  readonly deliveryId: string;
  readonly claimToken: string;
  /** The attempt row; `null` when nothing was sent (a budget exhausted by interrupted attempts). */
  readonly attempt: DeliveryAttempt | null;
  readonly outcome: CompletionOutcome;
  /** Undo the claim's attempt count (used with `attempt: null`). */
  readonly refundAttempt?: boolean;
}

/** What recording one completion did. */
export interface CompletionResult {
  /** False when the claim had been lost: the attempt row was kept, the delivery left alone. */
  readonly applied: boolean;
  /** When the delivery is due again (retry outcomes). */
  readonly nextRetryAt: Date | null;
}

/** One circuit event for {@link Repository.recordCircuitEvents}. */
export interface CircuitEventInput {
  readonly endpoint: string;
  readonly event: CircuitEvent;
}

/** Rows removed by a cleanup. */
export interface DeletedCounts {
  readonly deliveries: number;
  readonly attempts: number;
}
