import { assertTenantScope, cleanupStatuses, validateCleanupFilter } from '../filters.js';
import { HookdError, invalidArgument } from '../errors.js';
import { generateClaimToken } from '../ids.js';
import type {
  CircuitBreakerState,
  CleanupFilter,
  Delivery,
  DeliveryAttempt,
  DeliveryFilter,
  DeliveryStatus,
  JsonObject,
  MaintenanceStats,
  QueueDepth,
  Subscription,
  SubscriptionFilter,
} from '../models.js';
import { subscriptionRecord } from '../records.js';
import {
  applyCircuitEvent,
  closedCircuit,
  isParking,
  type CircuitSettings,
  type CircuitTransition,
} from '../retry/circuit-breaker.js';
import { OverlayTable, type Table } from './memory-tables.js';
import type {
  AttemptCompletion,
  CircuitEventInput,
  ClaimRelease,
  ClaimedDelivery,
  CompletionResult,
  CreateDeliveryOptions,
  CreateDeliveryResult,
  DeletedCounts,
  NewDelivery,
  NewDeliveryItem,
  Repository,
  RepositoryTx,
} from './repository.js';

/** Options of {@link MockRepository}. */
export interface MockRepositoryOptions {
  /** The repository's clock, in epoch milliseconds (the database clock of the mock). @default Date.now */
  readonly now?: () => number;
}

interface DeliveryRow {
  readonly id: string;
  readonly subscriptionId: string | null;
  readonly tenantId: string;
  readonly eventType: string;
  readonly body: string;
  readonly status: DeliveryStatus;
  readonly attemptCount: number;
  readonly maxAttempts: number;
  readonly attemptBudget: number;
  readonly nextRetryAt: number | null;
  readonly completedAt: number | null;
  readonly createdAt: number;
  readonly url: string | null;
  readonly secret: string | null;
  readonly idempotencyKey: string | null;
  readonly claimToken: string | null;
  /** The token of the claim whose completion was applied last (recognises a retried write). */
  readonly completedClaimToken?: string | null;
  readonly traceContext?: string | null;
  /** Insertion order: breaks ties between rows created in the same millisecond. */
  readonly seq: number;
}

interface IdempotencyRow {
  readonly key: string;
  readonly scope: string;
  readonly expiresAt: number;
  readonly deliveryId: string | null;
}

interface Tables {
  readonly subscriptions: Table<string, Subscription>;
  readonly deliveries: Table<string, DeliveryRow>;
  readonly attempts: Table<string, readonly DeliveryAttempt[]>;
  readonly idempotency: Table<string, IdempotencyRow>;
  readonly circuits: Table<string, CircuitBreakerState>;
}

interface SharedState {
  readonly tables: {
    readonly subscriptions: Map<string, Subscription>;
    readonly deliveries: Map<string, DeliveryRow>;
    readonly attempts: Map<string, readonly DeliveryAttempt[]>;
    readonly idempotency: Map<string, IdempotencyRow>;
    readonly circuits: Map<string, CircuitBreakerState>;
  };
  readonly now: () => number;
  readonly listeners: Set<() => void>;
  readonly failures: Map<string, { error: Error; remaining: number }>;
  seq: number;
  closed: boolean;
}

type RepositoryMethod = keyof Repository | 'commit' | 'rollback';

const idempotencyKeyOf = (key: string, scope: string) => `${scope}\u0000${key}`;

// Only this module can reach the internal constructor path that transactions use.
const INTERNAL = Symbol('MockRepository.internal');

interface InternalWiring {
  readonly shared: SharedState;
  readonly tables: Tables;
  /** Set in transactions: wake-ups are held until commit, like NOTIFY in PostgreSQL. */
  readonly onSignal: () => void;
  /** Set in transactions: false once committed or rolled back. */
  readonly isOpen: () => boolean;
}

/**
 * An in-memory {@link Repository} with PostgreSQL-like semantics, for tests, demos and
 * prototyping: claims with a lease and a fencing token, an atomic idempotency store, atomic
 * dead-letter redrive, tenant-scope rules, cascading deletes, and transactions whose writes
 * become visible on commit. Every operation is atomic (it never yields mid-way), so concurrent
 * callers see the same guarantees a database gives. Data lives as long as the object.
 */
export class MockRepository implements Repository {
  readonly #shared: SharedState;
  readonly #tables: Tables;
  readonly #onSignal: (() => void) | null;
  readonly #isOpen: () => boolean;

  constructor(options: MockRepositoryOptions = {}) {
    const wiring = (options as { [INTERNAL]?: InternalWiring })[INTERNAL];
    this.#shared = wiring?.shared ?? {
      tables: {
        subscriptions: new Map(),
        deliveries: new Map(),
        attempts: new Map(),
        idempotency: new Map(),
        circuits: new Map(),
      },
      now: options.now ?? Date.now,
      listeners: new Set(),
      failures: new Map(),
      seq: 0,
      closed: false,
    };
    this.#tables = wiring?.tables ?? this.#shared.tables;
    this.#onSignal = wiring?.onSignal ?? null;
    this.#isOpen = wiring?.isOpen ?? (() => true);
  }

  // ── Test helpers ─────────────────────────────────────────────────────────────────────────

  /**
   * Makes the next `times` calls of `method` fail with `error` (default: a `HOOKD_ERR_DATABASE`
   * error), to exercise failure handling. Returns an undo function.
   */
  failNext(method: RepositoryMethod, error?: Error, times = 1): () => void {
    this.#shared.failures.set(method, {
      error: error ?? new HookdError('HOOKD_ERR_DATABASE', `injected failure in ${method}`),
      remaining: times,
    });
    return () => {
      this.#shared.failures.delete(method);
    };
  }

  /** Clears the claim on one delivery (go-hookd `UnlockDelivery`): it becomes due now. */
  unlockDelivery(id: string): void {
    const row = this.#tables.deliveries.get(id);
    if (row) this.#tables.deliveries.set(id, { ...row, claimToken: null, nextRetryAt: null });
  }

  /** Clears every claim (go-hookd `UnlockAllDeliveries`). */
  unlockAllDeliveries(): void {
    for (const row of [...this.#tables.deliveries.values()]) {
      if (row.claimToken !== null) this.unlockDelivery(row.id);
    }
  }

  // ── Subscriptions ────────────────────────────────────────────────────────────────────────

  async createSubscription(subscription: Subscription): Promise<void> {
    this.#check('createSubscription');
    const { subscriptions } = this.#tables;
    if (subscriptions.has(subscription.id)) {
      throw new HookdError(
        'HOOKD_ERR_DUPLICATE_SUBSCRIPTION',
        `subscription ${subscription.id} already exists`,
        { field: 'id' },
      );
    }
    this.#assertUniqueUrl(subscription);
    subscriptions.set(subscription.id, copySubscription(subscription));
  }

  async getSubscription(id: string): Promise<Subscription> {
    this.#check('getSubscription');
    return this.#subscription(id);
  }

  async getSubscriptionByTenantAndUrl(tenantId: string, url: string): Promise<Subscription> {
    this.#check('getSubscriptionByTenantAndUrl');
    for (const subscription of this.#tables.subscriptions.values()) {
      if (subscription.tenantId === tenantId && subscription.url === url) return subscription;
    }
    throw subscriptionNotFound(`${tenantId} ${url}`);
  }

  async updateSubscription(subscription: Subscription): Promise<void> {
    this.#check('updateSubscription');
    this.#subscription(subscription.id);
    this.#assertUniqueUrl(subscription);
    this.#tables.subscriptions.set(subscription.id, copySubscription(subscription));
  }

  async deleteSubscription(id: string): Promise<void> {
    this.#check('deleteSubscription');
    this.#subscription(id);
    const { subscriptions, deliveries, attempts, idempotency } = this.#tables;
    subscriptions.delete(id);
    for (const row of [...deliveries.values()]) {
      if (row.subscriptionId === id) {
        deliveries.delete(row.id);
        attempts.delete(row.id);
      }
    }
    for (const row of [...idempotency.values()]) {
      if (row.scope === id) idempotency.delete(idempotencyKeyOf(row.key, row.scope));
    }
  }

  async listSubscriptions(filter: SubscriptionFilter): Promise<Subscription[]> {
    this.#check('listSubscriptions');
    assertTenantScope(filter);
    const matches = [...this.#tables.subscriptions.values()].filter(
      (s) =>
        (!filter.tenantId || s.tenantId === filter.tenantId) &&
        (filter.status === undefined || s.status === filter.status) &&
        (!filter.eventTypes?.length ||
          s.eventTypes.some((type) => filter.eventTypes!.includes(type))),
    );
    matches.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
    return page(matches, filter.limit, filter.offset);
  }

  // ── Deliveries ───────────────────────────────────────────────────────────────────────────

  async createDelivery(
    delivery: NewDelivery,
    options: CreateDeliveryOptions = {},
  ): Promise<Delivery> {
    this.#check('createDelivery');
    const created = this.#insertDelivery({ delivery, idempotency: options.idempotency });
    this.#signalWork();
    return created;
  }

  async createDeliveries(items: readonly NewDeliveryItem[]): Promise<CreateDeliveryResult[]> {
    this.#check('createDeliveries');
    const results = items.map((item): CreateDeliveryResult => {
      try {
        return { ok: true, delivery: this.#insertDelivery(item) };
      } catch (error) {
        return { ok: false, error: error as Error };
      }
    });
    if (results.some((result) => result.ok)) this.#signalWork();
    return results;
  }

  async getDelivery(id: string): Promise<Delivery> {
    this.#check('getDelivery');
    return toDelivery(this.#delivery(id));
  }

  async updateDelivery(delivery: Delivery): Promise<void> {
    this.#check('updateDelivery');
    const row = this.#delivery(delivery.id);
    this.#tables.deliveries.set(row.id, {
      ...row,
      status: delivery.status,
      attemptCount: delivery.attemptCount,
      maxAttempts: delivery.maxAttempts,
      attemptBudget: delivery.attemptBudget,
      nextRetryAt: delivery.nextRetryAt?.getTime() ?? null,
      completedAt: delivery.completedAt?.getTime() ?? null,
      claimToken: null,
    });
  }

  async listDeliveries(filter: DeliveryFilter): Promise<Delivery[]> {
    this.#check('listDeliveries');
    assertTenantScope(filter);
    const matches = [...this.#tables.deliveries.values()].filter(
      (d) =>
        (!filter.tenantId || d.tenantId === filter.tenantId) &&
        (filter.subscriptionId === undefined || d.subscriptionId === filter.subscriptionId) &&
        (filter.status === undefined || d.status === filter.status) &&
        (filter.eventType === undefined || d.eventType === filter.eventType) &&
        (filter.createdBefore === undefined || d.createdAt < filter.createdBefore.getTime()) &&
        (filter.createdAfter === undefined || d.createdAt > filter.createdAfter.getTime()),
    );
    matches.sort(newestFirst);
    return page(matches, filter.limit, filter.offset).map((row) => toDelivery(row));
  }

  async deleteDelivery(id: string): Promise<void> {
    this.#check('deleteDelivery');
    this.#delivery(id);
    this.#tables.deliveries.delete(id);
    this.#tables.attempts.delete(id);
  }

  async moveToDeadLetter(id: string, _reason: string): Promise<void> {
    this.#check('moveToDeadLetter');
    const row = this.#delivery(id);
    this.#tables.deliveries.set(id, {
      ...row,
      status: 'dead_letter',
      completedAt: this.#now(),
      nextRetryAt: null,
      claimToken: null,
    });
  }

  // ── Claims ───────────────────────────────────────────────────────────────────────────────

  async claimPendingDeliveries(limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    this.#check('claimPendingDeliveries');
    assertClaimArguments(limit, leaseMs);
    const now = this.#now();
    const due = [...this.#tables.deliveries.values()].filter(
      (row) => row.status === 'pending' && (row.nextRetryAt === null || row.nextRetryAt <= now),
    );
    due.sort(
      (a, b) =>
        (a.nextRetryAt ?? a.createdAt) - (b.nextRetryAt ?? b.createdAt) ||
        a.createdAt - b.createdAt ||
        a.seq - b.seq,
    );
    return due.slice(0, limit).map((row) => {
      const claimed: DeliveryRow = {
        ...row,
        attemptCount: row.attemptCount + 1,
        nextRetryAt: now + leaseMs,
        claimToken: generateClaimToken(),
      };
      this.#tables.deliveries.set(row.id, claimed);
      return this.#toClaimed(claimed, now);
    });
  }

  async renewDeliveryClaim(deliveryId: string, claimToken: string, leaseMs: number): Promise<void> {
    this.#check('renewDeliveryClaim');
    if (!(leaseMs > 0)) throw invalidArgument('leaseMs', 'leaseMs must be positive');
    const row = this.#heldClaim(deliveryId, claimToken);
    if (!row) throw claimLost(deliveryId);
    const now = this.#now();
    this.#tables.deliveries.set(deliveryId, {
      ...row,
      nextRetryAt: Math.max(now + leaseMs, (row.nextRetryAt ?? now) + 1),
    });
  }

  async releaseDeliveryClaim(release: ClaimRelease): Promise<void> {
    this.#check('releaseDeliveryClaim');
    if (!this.#release(release)) throw claimLost(release.deliveryId);
  }

  async releaseDeliveryClaims(releases: readonly ClaimRelease[]): Promise<number> {
    this.#check('releaseDeliveryClaims');
    let released = 0;
    for (const release of releases) if (this.#release(release)) released += 1;
    return released;
  }

  async completeDeliveryAttempts(
    completions: readonly AttemptCompletion[],
  ): Promise<CompletionResult[]> {
    this.#check('completeDeliveryAttempts');
    const now = this.#now();
    return completions.map((completion) => {
      if (completion.attempt) this.#storeAttempt(completion.attempt, false);
      const row = this.#heldClaim(completion.deliveryId, completion.claimToken);
      if (!row) return this.#alreadyCompleted(completion);
      const attemptCount = completion.refundAttempt
        ? Math.max(0, row.attemptCount - 1)
        : row.attemptCount;
      const base = {
        ...row,
        attemptCount,
        claimToken: null,
        completedClaimToken: completion.claimToken,
      };
      const { outcome } = completion;
      switch (outcome.status) {
        case 'success':
          this.#tables.deliveries.set(row.id, {
            ...base,
            status: 'success',
            completedAt: now,
            nextRetryAt: null,
          });
          return { applied: true, nextRetryAt: null };
        case 'dead_letter':
          this.#tables.deliveries.set(row.id, {
            ...base,
            status: 'dead_letter',
            completedAt: now,
            nextRetryAt: null,
          });
          return { applied: true, nextRetryAt: null };
        case 'retry': {
          const nextRetryAt = now + Math.max(0, outcome.delayMs);
          const maxAttempts =
            outcome.ensureNextAttempt === true
              ? Math.max(row.maxAttempts, attemptCount + 1)
              : row.maxAttempts;
          this.#tables.deliveries.set(row.id, { ...base, nextRetryAt, maxAttempts });
          return { applied: true, nextRetryAt: new Date(nextRetryAt) };
        }
      }
    });
  }

  async requeueDeadLetter(id: string): Promise<Delivery> {
    this.#check('requeueDeadLetter');
    const row = this.#delivery(id);
    if (row.status !== 'dead_letter') {
      throw new HookdError(
        'HOOKD_ERR_DELIVERY_NOT_DEAD_LETTER',
        'delivery must be in dead_letter status to retry',
        {
          field: 'deliveryId',
          details: { deliveryId: id, status: row.status },
        },
      );
    }
    const requeued: DeliveryRow = {
      ...row,
      status: 'pending',
      maxAttempts: row.attemptCount + row.attemptBudget,
      nextRetryAt: null,
      completedAt: null,
      claimToken: null,
    };
    this.#tables.deliveries.set(id, requeued);
    this.#signalWork();
    return toDelivery(requeued);
  }

  async retryDelivery(id: string): Promise<Delivery> {
    this.#check('retryDelivery');
    const row = this.#delivery(id);
    if (row.status === 'success') {
      throw new HookdError(
        'HOOKD_ERR_CANNOT_RETRY_SUCCESSFUL',
        'cannot retry a successful delivery',
        {
          field: 'deliveryId',
          details: { deliveryId: id },
        },
      );
    }
    if (
      row.status === 'pending' &&
      row.claimToken !== null &&
      (row.nextRetryAt ?? 0) > this.#now()
    ) {
      throw new HookdError(
        'HOOKD_ERR_DELIVERY_IN_PROGRESS',
        'delivery is being attempted right now; retry after the attempt finished',
        {
          details: { deliveryId: id },
        },
      );
    }
    const retried: DeliveryRow = {
      ...row,
      status: 'pending',
      maxAttempts: Math.max(row.maxAttempts, row.attemptCount + 1),
      nextRetryAt: null,
      completedAt: null,
      claimToken: null,
    };
    this.#tables.deliveries.set(id, retried);
    this.#signalWork();
    return toDelivery(retried);
  }

  async wakeSubscriptionDeliveries(subscriptionId: string): Promise<number> {
    this.#check('wakeSubscriptionDeliveries');
    const now = this.#now();
    let woken = 0;
    for (const row of [...this.#tables.deliveries.values()]) {
      const claimed = row.claimToken !== null && (row.nextRetryAt ?? 0) > now;
      if (
        row.subscriptionId === subscriptionId &&
        row.status === 'pending' &&
        !claimed &&
        row.nextRetryAt !== null
      ) {
        this.#tables.deliveries.set(row.id, { ...row, nextRetryAt: null, claimToken: null });
        woken += 1;
      }
    }
    if (woken > 0) this.#signalWork();
    return woken;
  }

  // ── Attempts ─────────────────────────────────────────────────────────────────────────────

  async createDeliveryAttempt(attempt: DeliveryAttempt): Promise<void> {
    this.#check('createDeliveryAttempt');
    this.#storeAttempt(attempt, true);
  }

  async getDeliveryAttempts(deliveryId: string): Promise<DeliveryAttempt[]> {
    this.#check('getDeliveryAttempts');
    return [...(this.#tables.attempts.get(deliveryId) ?? [])];
  }

  // ── Idempotency store ────────────────────────────────────────────────────────────────────

  async checkIdempotency(key: string, scope: string): Promise<boolean> {
    this.#check('checkIdempotency');
    const row = this.#tables.idempotency.get(idempotencyKeyOf(key, scope));
    return row !== undefined && row.expiresAt > this.#now();
  }

  async storeIdempotencyKey(key: string, scope: string, expiresAt: Date): Promise<void> {
    this.#check('storeIdempotencyKey');
    this.#claimKey(key, scope, expiresAt.getTime(), null);
  }

  async countExpiredIdempotencyKeys(): Promise<number> {
    this.#check('countExpiredIdempotencyKeys');
    const now = this.#now();
    return [...this.#tables.idempotency.values()].filter((row) => row.expiresAt < now).length;
  }

  async cleanupExpiredIdempotencyKeys(): Promise<number> {
    this.#check('cleanupExpiredIdempotencyKeys');
    const now = this.#now();
    let deleted = 0;
    for (const row of [...this.#tables.idempotency.values()]) {
      if (row.expiresAt < now) {
        this.#tables.idempotency.delete(idempotencyKeyOf(row.key, row.scope));
        deleted += 1;
      }
    }
    return deleted;
  }

  // ── Circuit breaker ──────────────────────────────────────────────────────────────────────

  async getCircuitBreakerState(endpoint: string): Promise<CircuitBreakerState> {
    this.#check('getCircuitBreakerState');
    return this.#tables.circuits.get(endpoint) ?? closedCircuit(endpoint);
  }

  async updateCircuitBreakerState(state: CircuitBreakerState): Promise<void> {
    this.#check('updateCircuitBreakerState');
    this.#tables.circuits.set(state.endpoint, { ...state });
  }

  async recordCircuitEvents(
    events: readonly CircuitEventInput[],
    settings: CircuitSettings,
  ): Promise<Array<CircuitTransition | null>> {
    this.#check('recordCircuitEvents');
    const now = new Date(this.#now());
    return events.map(({ endpoint, event }) => {
      const current = this.#tables.circuits.get(endpoint) ?? closedCircuit(endpoint);
      const step = applyCircuitEvent(current, event, settings, now);
      if (step.changed) this.#tables.circuits.set(endpoint, step.state);
      return step.transition;
    });
  }

  // ── Maintenance ──────────────────────────────────────────────────────────────────────────

  async countDeliveriesByFilter(input: CleanupFilter): Promise<number> {
    this.#check('countDeliveriesByFilter');
    const filter = validateCleanupFilter(input);
    return this.#cleanupMatches(filter).length;
  }

  async deleteDeliveriesByFilter(input: CleanupFilter): Promise<DeletedCounts> {
    this.#check('deleteDeliveriesByFilter');
    const filter = validateCleanupFilter(input);
    let attempts = 0;
    const matches = this.#cleanupMatches(filter);
    for (const row of matches) {
      attempts += this.#tables.attempts.get(row.id)?.length ?? 0;
      this.#tables.deliveries.delete(row.id);
      this.#tables.attempts.delete(row.id);
    }
    return { deliveries: matches.length, attempts };
  }

  async getMaintenanceStats(): Promise<MaintenanceStats> {
    this.#check('getMaintenanceStats');
    const byStatus: Record<DeliveryStatus, number> = {
      pending: 0,
      success: 0,
      failed: 0,
      dead_letter: 0,
    };
    let oldest: number | null = null;
    let newest: number | null = null;
    let total = 0;
    for (const row of this.#tables.deliveries.values()) {
      total += 1;
      byStatus[row.status] += 1;
      oldest = oldest === null ? row.createdAt : Math.min(oldest, row.createdAt);
      newest = newest === null ? row.createdAt : Math.max(newest, row.createdAt);
    }
    let attempts = 0;
    for (const list of this.#tables.attempts.values()) attempts += list.length;
    const now = this.#now();
    const keys = [...this.#tables.idempotency.values()];
    return {
      totalDeliveries: total,
      deliveriesByStatus: byStatus,
      oldestDeliveryAt: oldest === null ? null : new Date(oldest),
      newestDeliveryAt: newest === null ? null : new Date(newest),
      totalDeliveryAttempts: attempts,
      idempotencyKeys: keys.length,
      expiredIdempotencyKeys: keys.filter((row) => row.expiresAt < now).length,
      asOf: new Date(now),
    };
  }

  async getQueueDepth(): Promise<QueueDepth> {
    this.#check('getQueueDepth');
    let pending = 0;
    let deadLetter = 0;
    let oldest: number | null = null;
    for (const row of this.#tables.deliveries.values()) {
      if (row.status === 'pending') {
        pending += 1;
        oldest = oldest === null ? row.createdAt : Math.min(oldest, row.createdAt);
      } else if (row.status === 'dead_letter') {
        deadLetter += 1;
      }
    }
    return { pending, deadLetter, oldestPendingAt: oldest === null ? null : new Date(oldest) };
  }

  // ── Transactions, wake-ups, lifecycle ────────────────────────────────────────────────────

  async beginTx(): Promise<RepositoryTx> {
    this.#check('beginTx');
    return MockTransaction.open(this.#shared);
  }

  /** Accepts a transaction of this repository as the "client" of a transactional enqueue. */
  withClient(client: unknown): Repository {
    if (client instanceof MockTransaction && client.sharesStoreWith(this)) return client;
    throw new HookdError(
      'HOOKD_ERR_UNSUPPORTED',
      'MockRepository accepts only its own transactions (from beginTx()) as a client; pg clients need PostgresRepository',
      { field: 'client' },
    );
  }

  async listenForWork(
    listener: () => void,
    _onError: (error: Error) => void,
  ): Promise<() => Promise<void>> {
    this.#check('listenForWork');
    // Registered per call, so one manager's listener can be removed without touching another's.
    const registration = () => listener();
    this.#shared.listeners.add(registration);
    return async () => {
      this.#shared.listeners.delete(registration);
    };
  }

  async ping(): Promise<void> {
    this.#check('ping');
  }

  /** Marks the repository closed: later calls fail with `HOOKD_ERR_DATABASE`. Idempotent. */
  async close(): Promise<void> {
    this.#shared.closed = true;
    this.#shared.listeners.clear();
  }

  // ── Internals ────────────────────────────────────────────────────────────────────────────

  #signalWork(): void {
    if (this.#onSignal) this.#onSignal();
    else signalListeners(this.#shared);
  }

  /** @internal Whether this repository reads and writes the given store. */
  sharesStoreWith(other: MockRepository): boolean {
    return this.#shared === other.#shared;
  }

  #check(method: RepositoryMethod): void {
    if (this.#shared.closed) throw new HookdError('HOOKD_ERR_DATABASE', 'repository is closed');
    if (!this.#isOpen() && method !== 'commit' && method !== 'rollback') {
      throw new HookdError('HOOKD_ERR_DATABASE', 'transaction is already committed or rolled back');
    }
    const failure = this.#shared.failures.get(method);
    if (!failure) return;
    failure.remaining -= 1;
    if (failure.remaining <= 0) this.#shared.failures.delete(method);
    throw failure.error;
  }

  #now(): number {
    return this.#shared.now();
  }

  #subscription(id: string): Subscription {
    const subscription = this.#tables.subscriptions.get(id);
    if (!subscription) throw subscriptionNotFound(id);
    return subscription;
  }

  #delivery(id: string): DeliveryRow {
    const row = this.#tables.deliveries.get(id);
    if (!row)
      throw new HookdError('HOOKD_ERR_DELIVERY_NOT_FOUND', `delivery ${id} not found`, {
        details: { deliveryId: id },
      });
    return row;
  }

  #assertUniqueUrl(subscription: Subscription): void {
    for (const other of this.#tables.subscriptions.values()) {
      if (
        other.id !== subscription.id &&
        other.tenantId === subscription.tenantId &&
        other.url === subscription.url
      ) {
        throw new HookdError(
          'HOOKD_ERR_DUPLICATE_SUBSCRIPTION',
          `tenant ${subscription.tenantId} already has a subscription for ${subscription.url}`,
          { field: 'url', details: { subscriptionId: other.id } },
        );
      }
    }
  }

  #insertDelivery(item: NewDeliveryItem): Delivery {
    const { delivery, idempotency } = item;
    if (this.#tables.deliveries.has(delivery.id)) {
      throw new HookdError('HOOKD_ERR_INTERNAL', `delivery id ${delivery.id} already exists`);
    }
    if (delivery.subscriptionId !== null) this.#subscription(delivery.subscriptionId);
    const now = this.#now();
    // Key and row are written together with no await in between: both exist or neither does.
    if (idempotency)
      this.#claimKey(idempotency.key, idempotency.scope, now + idempotency.ttlMs, delivery.id);
    this.#shared.seq += 1;
    const row: DeliveryRow = {
      ...delivery,
      status: 'pending',
      attemptCount: 0,
      nextRetryAt: null,
      completedAt: null,
      createdAt: now,
      claimToken: null,
      seq: this.#shared.seq,
    };
    this.#tables.deliveries.set(row.id, row);
    return toDelivery(row);
  }

  #claimKey(key: string, scope: string, expiresAt: number, deliveryId: string | null): void {
    const id = idempotencyKeyOf(key, scope);
    const existing = this.#tables.idempotency.get(id);
    if (existing && existing.expiresAt > this.#now()) {
      throw new HookdError(
        'HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY',
        `duplicate delivery detected: idempotency key ${JSON.stringify(key)} is in use`,
        {
          field: 'idempotencyKey',
          details: { deliveryId: existing.deliveryId, expiresAt: new Date(existing.expiresAt) },
        },
      );
    }
    this.#tables.idempotency.set(id, { key, scope, expiresAt, deliveryId });
  }

  /** A completion presented again (its first answer lost) counts as the write it repeats. */
  #alreadyCompleted(completion: AttemptCompletion): CompletionResult {
    const row = this.#tables.deliveries.get(completion.deliveryId);
    if (row?.completedClaimToken !== completion.claimToken) {
      return { applied: false, nextRetryAt: null };
    }
    return {
      applied: true,
      nextRetryAt: row.nextRetryAt === null ? null : new Date(row.nextRetryAt),
    };
  }

  #heldClaim(deliveryId: string, claimToken: string): DeliveryRow | undefined {
    const row = this.#tables.deliveries.get(deliveryId);
    return row && row.status === 'pending' && row.claimToken === claimToken ? row : undefined;
  }

  #release(release: ClaimRelease): boolean {
    const row = this.#heldClaim(release.deliveryId, release.claimToken);
    if (!row) return false;
    const { retryAt } = release;
    const nextRetryAt =
      retryAt === null
        ? null
        : retryAt instanceof Date
          ? retryAt.getTime()
          : this.#now() + Math.max(0, retryAt.delayMs);
    this.#tables.deliveries.set(row.id, {
      ...row,
      nextRetryAt,
      claimToken: null,
      attemptCount: release.refundAttempt ? Math.max(0, row.attemptCount - 1) : row.attemptCount,
    });
    if (nextRetryAt === null) this.#signalWork();
    return true;
  }

  #storeAttempt(attempt: DeliveryAttempt, strict: boolean): void {
    const existing = this.#tables.attempts.get(attempt.deliveryId) ?? [];
    if (existing.some((a) => a.attemptNumber === attempt.attemptNumber)) {
      if (!strict) return;
      throw new HookdError(
        'HOOKD_ERR_DUPLICATE_ATTEMPT',
        `attempt ${attempt.attemptNumber} of delivery ${attempt.deliveryId} already exists`,
      );
    }
    if (!this.#tables.deliveries.has(attempt.deliveryId)) {
      if (!strict) return;
      throw new HookdError(
        'HOOKD_ERR_DELIVERY_NOT_FOUND',
        `delivery ${attempt.deliveryId} not found`,
      );
    }
    const next = [...existing, { ...attempt, responseHeaders: { ...attempt.responseHeaders } }];
    next.sort((a, b) => a.attemptNumber - b.attemptNumber);
    this.#tables.attempts.set(attempt.deliveryId, next);
  }

  #cleanupMatches(filter: CleanupFilter): DeliveryRow[] {
    const statuses = cleanupStatuses(filter);
    return [...this.#tables.deliveries.values()].filter(
      (d) =>
        (!filter.tenantId || d.tenantId === filter.tenantId) &&
        (filter.subscriptionId === undefined || d.subscriptionId === filter.subscriptionId) &&
        (statuses.length === 0 || statuses.includes(d.status)) &&
        (filter.eventType === undefined || d.eventType === filter.eventType) &&
        (filter.createdBefore === undefined || d.createdAt < filter.createdBefore.getTime()) &&
        (filter.createdAfter === undefined || d.createdAt > filter.createdAfter.getTime()),
    );
  }

  #toClaimed(row: DeliveryRow, now: number): ClaimedDelivery {
    const subscription =
      row.subscriptionId === null
        ? null
        : (this.#tables.subscriptions.get(row.subscriptionId) ?? null);
    const endpoint = row.url ?? subscription?.url ?? null;
    const circuit = endpoint === null ? undefined : this.#tables.circuits.get(endpoint);
    const { payload: _payload, ...delivery } = toDelivery(row, false);
    return {
      ...delivery,
      body: row.body,
      inlineSecret: row.secret,
      claimToken: row.claimToken!,
      subscription,
      circuit: circuit ? { ...circuit, parking: isParking(circuit, new Date(now)) } : null,
      traceContext: row.traceContext ?? null,
    };
  }
}

/** A transaction on a {@link MockRepository}: writes are private until `commit()`. */
class MockTransaction extends MockRepository implements RepositoryTx {
  readonly #shared: SharedState;
  readonly #overlays: ReadonlyArray<OverlayTable<string, unknown>>;
  readonly #state: { done: boolean; signalled: boolean };

  private constructor(
    options: MockRepositoryOptions,
    shared: SharedState,
    overlays: ReadonlyArray<OverlayTable<string, unknown>>,
    state: { done: boolean; signalled: boolean },
  ) {
    super(options);
    this.#shared = shared;
    this.#overlays = overlays;
    this.#state = state;
  }

  static open(shared: SharedState): MockTransaction {
    const tables = {
      subscriptions: new OverlayTable(shared.tables.subscriptions),
      deliveries: new OverlayTable(shared.tables.deliveries),
      attempts: new OverlayTable(shared.tables.attempts),
      idempotency: new OverlayTable(shared.tables.idempotency),
      circuits: new OverlayTable(shared.tables.circuits),
    };
    const state = { done: false, signalled: false };
    const wiring: InternalWiring = {
      shared,
      tables,
      onSignal: () => {
        state.signalled = true;
      },
      isOpen: () => !state.done,
    };
    return new MockTransaction(
      { [INTERNAL]: wiring } as MockRepositoryOptions,
      shared,
      Object.values(tables),
      state,
    );
  }

  override async beginTx(): Promise<RepositoryTx> {
    throw new HookdError('HOOKD_ERR_UNSUPPORTED', 'nested transactions are not supported');
  }

  async commit(): Promise<void> {
    if (this.#state.done) return;
    this.#state.done = true;
    for (const overlay of this.#overlays) overlay.commitInto();
    if (this.#state.signalled) signalListeners(this.#shared);
  }

  async rollback(): Promise<void> {
    this.#state.done = true;
  }
}

function signalListeners(shared: SharedState): void {
  for (const listener of [...shared.listeners]) queueMicrotask(listener);
}

function assertClaimArguments(limit: number, leaseMs: number): void {
  if (!Number.isInteger(limit) || limit < 1)
    throw invalidArgument('limit', 'claim limit must be an integer of at least 1');
  if (!(leaseMs > 0)) throw invalidArgument('leaseMs', 'claim lease must be positive');
}

function subscriptionNotFound(id: string): HookdError {
  return new HookdError('HOOKD_ERR_SUBSCRIPTION_NOT_FOUND', `subscription ${id} not found`, {
    details: { subscriptionId: id },
  });
}

function claimLost(deliveryId: string): HookdError {
  return new HookdError(
    'HOOKD_ERR_DELIVERY_CLAIM_LOST',
    `claim on delivery ${deliveryId} is no longer held`,
    {
      details: { deliveryId },
    },
  );
}

function copySubscription(subscription: Subscription): Subscription {
  return subscriptionRecord({ ...subscription, secret: subscription.secret });
}

function newestFirst(a: DeliveryRow, b: DeliveryRow): number {
  return b.createdAt - a.createdAt || b.seq - a.seq;
}

function page<T>(rows: T[], limit: number | undefined, offset: number | undefined): T[] {
  const start = offset && offset > 0 ? offset : 0;
  return limit && limit > 0 ? rows.slice(start, start + limit) : rows.slice(start);
}

function toDelivery(row: DeliveryRow, withPayload = true): Delivery {
  return {
    id: row.id,
    subscriptionId: row.subscriptionId,
    tenantId: row.tenantId,
    eventType: row.eventType,
    payload: withPayload ? (JSON.parse(row.body) as JsonObject) : {},
    status: row.status,
    attemptCount: row.attemptCount,
    maxAttempts: row.maxAttempts,
    attemptBudget: row.attemptBudget,
    nextRetryAt: row.nextRetryAt === null ? null : new Date(row.nextRetryAt),
    completedAt: row.completedAt === null ? null : new Date(row.completedAt),
    createdAt: new Date(row.createdAt),
    url: row.url,
    idempotencyKey: row.idempotencyKey,
  };
}
