import pg from 'pg';

import { HookdError, invalidArgument } from '../errors.js';
import { assertTenantScope, validateCleanupFilter } from '../filters.js';
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
import {
  applyCircuitEvent,
  closedCircuit,
  type CircuitSettings,
  type CircuitTransition,
} from '../retry/circuit-breaker.js';
import { MIGRATIONS } from '../schema/migrations.js';
import { newSchemaConfig, type SchemaConfig } from '../schema/schema-config.js';
import { InsertBatcher, type InsertBatcherOptions } from './insert-batcher.js';
import { LookupBatcher } from './postgres-lookup-batcher.js';
import { mapPgError } from './pg-errors.js';
import {
  ClientRunner,
  PoolRunner,
  SerialClientRunner,
  closedError,
  type Row,
  type Runner,
} from './pg-runner.js';
import { isPgPool, isPgQueryable, type PgPool, type PgQueryable } from './pg-types.js';
import { WorkListener, type ListenClient, type ListenConnection } from './postgres-listener.js';
import { PostgresQueries } from './postgres-queries.js';
import {
  collectSharedRecords,
  subscriptionValues,
  toAttempt,
  toCircuit,
  toClaimedDelivery,
  toDelivery,
  toSubscription,
  type SharedRecords,
} from './postgres-rows.js';
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

/** Connection-pool settings, used when the repository creates its own pool. */
export interface PostgresPoolOptions {
  /** Most connections. @default 10 */
  readonly max?: number;
  /** Close a connection idle this long (ms); 0 keeps idle connections. @default 10000 */
  readonly idleTimeoutMillis?: number;
  /**
   * Give up opening a connection after this long (ms); 0 waits forever. A network that silently
   * drops packets would otherwise hang every call until it recovers. @default 10000
   */
  readonly connectionTimeoutMillis?: number;
  /** Replace connections older than this (seconds); 0 = never. @default 0 */
  readonly maxLifetimeSeconds?: number;
  /** `ssl` of `pg` (e.g. `{ rejectUnauthorized: true, ca }`). */
  readonly ssl?: boolean | Readonly<Record<string, unknown>>;
  /** Shown in `pg_stat_activity`. @default 'node-hookd' */
  readonly applicationName?: string;
}

/** Options of {@link PostgresRepository}. */
export interface PostgresRepositoryOptions {
  /**
   * The table prefix (`{prefix}_hookd_deliveries` …), the same one given to `SchemaManager`.
   * Required.
   */
  readonly tablePrefix: string;
  /** Settings of the pool created from a connection string (ignored when a pool is passed). */
  readonly pool?: PostgresPoolOptions;
  /**
   * Coalescing of concurrent single `createDelivery` calls into multi-row inserts (see
   * `InsertBatcher`); `false` sends one statement per call. Calls inside a transaction or on a
   * caller's client are never coalesced. Options given replace the defaults one by one.
   * @default { maxBatchSize: 500, maxInFlight: 2, busyGroupMs: 2 }
   */
  readonly insertBatching?: false | InsertBatcherOptions;
  /**
   * Fail a statement that gets no answer within this long (ms), and discard its connection: a
   * partitioned network fails calls with `HOOKD_ERR_DATABASE` instead of hanging them. Cleanup
   * and statistics statements, which may legitimately run long, are not limited. 0 disables.
   * Applies to pools and clients passed in too (set `connectionTimeoutMillis` and `keepAlive`
   * on those yourself). @default 30000
   */
  readonly queryTimeoutMs?: number;
}

type Mode = 'pool' | 'serial' | 'tx' | 'client';

/** @internal What every view of one repository shares. */
export interface Core {
  readonly schema: SchemaConfig;
  readonly queries: PostgresQueries;
  readonly mapError: (error: unknown) => Error;
  /** The pool, when there is one (not when the application handed over a single client). */
  readonly pool: PgPool | null;
  readonly ownsPool: boolean;
  /** Set when the repository was created from a connection string: LISTEN gets its own client. */
  readonly connectionString: string | null;
  readonly applicationName: string;
  /** Client-side timeout of each bounded statement (0 = none). */
  readonly queryTimeoutMs: number;
  readonly rootRunner: Runner;
  batcher: InsertBatcher | null;
  /** Coalesces concurrent `getSubscription` reads on the pool (null on a single client). */
  subscriptionLookups: LookupBatcher<Subscription> | null;
  listener: WorkListener | null;
  closed: boolean;
  closing: Promise<void> | null;
}

const DEFAULT_APPLICATION_NAME = 'node-hookd';
const DEFAULT_QUERY_TIMEOUT_MS = 30_000;
/** Maintenance statements that may legitimately run long: no client-side timeout. */
const UNBOUNDED = { unbounded: true } as const;
const DEFAULT_CONNECTION_TIMEOUT_MS = 10_000;
/** First TCP keep-alive probe on an idle connection: a dead peer is noticed in minutes, not hours. */
const KEEP_ALIVE_INITIAL_DELAY_MS = 10_000;
/**
 * How long a busy batcher lets single `queueDelivery()` reads and inserts gather (see
 * `InsertBatcher`). At 3,000 calls/s with no wait, statements carried ~3 rows each and
 * PostgreSQL spent more on planning them than on the rows.
 */
const DEFAULT_BUSY_GROUP_MS = 2;

/**
 * The {@link Repository} on PostgreSQL (13 or newer). Every view — the repository itself, a
 * transaction from `beginTx()`, a caller's client from `withClient()` — runs the same SQL
 * (`postgres-queries.ts`) through a different connection. Use {@link PostgresRepository} to
 * create one; this class carries the shared implementation.
 */
export abstract class PostgresStore implements Repository {
  readonly #core: Core;
  readonly #runner: Runner;
  readonly #mode: Mode;

  /** @internal */
  protected constructor(core: Core, runner: Runner, mode: Mode) {
    this.#core = core;
    this.#runner = runner;
    this.#mode = mode;
  }

  /** The prefix and object names this repository uses. */
  get schemaConfig(): SchemaConfig {
    return this.#core.schema;
  }

  /** @internal */
  protected get core(): Core {
    return this.#core;
  }

  get #q(): PostgresQueries {
    return this.#core.queries;
  }

  // ── Subscriptions ────────────────────────────────────────────────────────────────────────

  async createSubscription(subscription: Subscription): Promise<void> {
    const values = subscriptionValues(subscription);
    const rows = await this.#runner.rows(this.#q.insertSubscription, values);
    if (rows.length > 0) return;
    const [conflict] = await this.#runner.rows(this.#q.subscriptionConflicts, [
      subscription.id,
      subscription.tenantId,
      subscription.url,
    ]);
    if (conflict?.['same_id'] != null) {
      throw new HookdError(
        'HOOKD_ERR_DUPLICATE_SUBSCRIPTION',
        `subscription ${subscription.id} already exists`,
        { field: 'id' },
      );
    }
    throw duplicateUrl(subscription, conflict?.['same_url']);
  }

  async getSubscription(id: string): Promise<Subscription> {
    const lookups = this.#mode === 'pool' ? this.#core.subscriptionLookups : null;
    if (lookups) {
      this.#assertOpen();
      if (this.#core.closing) throw closedError('repository');
      const subscription = await lookups.get(id);
      if (!subscription) throw subscriptionNotFound(id);
      return subscription;
    }
    const [row] = await this.#runner.rows(this.#q.selectSubscription, [id]);
    if (!row) throw subscriptionNotFound(id);
    return toSubscription(row);
  }

  async getSubscriptionByTenantAndUrl(tenantId: string, url: string): Promise<Subscription> {
    const [row] = await this.#runner.rows(this.#q.selectSubscriptionByTenantAndUrl, [
      tenantId,
      url,
    ]);
    if (!row) throw subscriptionNotFound(`${tenantId} ${url}`);
    return toSubscription(row);
  }

  async updateSubscription(subscription: Subscription): Promise<void> {
    const [row] = await this.#runner.rows(
      this.#q.updateSubscription,
      subscriptionValues(subscription),
    );
    if (row?.['conflict_id'] != null) throw duplicateUrl(subscription, row['conflict_id']);
    if (row?.['updated_id'] == null) throw subscriptionNotFound(subscription.id);
  }

  async deleteSubscription(id: string): Promise<void> {
    // Unbounded: deleting a subscription deletes all of its deliveries and attempts.
    const rows = await this.#runner.rows(this.#q.deleteSubscription, [id], UNBOUNDED);
    if (rows.length === 0) throw subscriptionNotFound(id);
  }

  async listSubscriptions(filter: SubscriptionFilter): Promise<Subscription[]> {
    assertTenantScope(filter);
    const { text, values } = this.#q.listSubscriptions(filter);
    return (await this.#runner.rows(text, values)).map((row) => toSubscription(row));
  }

  // ── Deliveries ───────────────────────────────────────────────────────────────────────────

  async createDelivery(
    delivery: NewDelivery,
    options: CreateDeliveryOptions = {},
  ): Promise<Delivery> {
    const item: NewDeliveryItem = { delivery, idempotency: options.idempotency };
    const batcher = this.#mode === 'pool' ? this.#core.batcher : null;
    if (batcher) {
      this.#assertOpen();
      // Closing waits for the batcher: it must not accept work that would keep it waiting.
      if (this.#core.closing) throw closedError('repository');
      return batcher.submit(item);
    }
    const [result] = await this.#createMany([item]);
    if (!result?.ok) throw result?.error ?? new HookdError('HOOKD_ERR_INTERNAL', 'no result');
    return result.delivery;
  }

  async createDeliveries(items: readonly NewDeliveryItem[]): Promise<CreateDeliveryResult[]> {
    if (items.length === 0) return [];
    return this.#createMany(items);
  }

  async getDelivery(id: string): Promise<Delivery> {
    const [row] = await this.#runner.rows(this.#q.selectDelivery, [id]);
    if (!row) throw deliveryNotFound(id);
    return toDelivery(row);
  }

  async updateDelivery(delivery: Delivery): Promise<void> {
    const rows = await this.#runner.rows(this.#q.updateDelivery, [
      delivery.id,
      delivery.status,
      delivery.attemptCount,
      delivery.maxAttempts,
      delivery.attemptBudget,
      delivery.nextRetryAt,
      delivery.completedAt,
    ]);
    if (rows.length === 0) throw deliveryNotFound(delivery.id);
  }

  async listDeliveries(filter: DeliveryFilter): Promise<Delivery[]> {
    assertTenantScope(filter);
    const { text, values } = this.#q.listDeliveries(filter);
    return (await this.#runner.rows(text, values)).map((row) => toDelivery(row));
  }

  async deleteDelivery(id: string): Promise<void> {
    const rows = await this.#runner.rows(this.#q.deleteDelivery, [id]);
    if (rows.length === 0) throw deliveryNotFound(id);
  }

  async moveToDeadLetter(id: string, _reason: string): Promise<void> {
    const rows = await this.#runner.rows(this.#q.moveToDeadLetter, [id]);
    if (rows.length === 0) throw deliveryNotFound(id);
  }

  // ── Claims ───────────────────────────────────────────────────────────────────────────────

  async claimPendingDeliveries(limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    if (!Number.isInteger(limit) || limit < 1)
      throw invalidArgument('limit', 'claim limit must be an integer of at least 1');
    assertLease(leaseMs);
    // One token per claim statement: the fence compares (id, token), and every claim of a row
    // gets a new token, so a stale holder can never match.
    const token = generateClaimToken();
    // Inside a caller's or our own open transaction the claim cannot bring its own (and a
    // SET LOCAL would outlive it there): the plain statement, planned as PostgreSQL likes.
    const rows =
      this.#mode === 'pool' || this.#mode === 'serial'
        ? await this.#runner.script(this.#q.claimScript(limit, leaseMs, token))
        : await this.#runner.rows(this.#q.claim, [limit, leaseMs, token]);
    // Each subscription and circuit comes in full on one row of the batch (see the claim SQL):
    // build each record once, then share it with every row that names it.
    const shared: SharedRecords = { subscriptions: new Map(), circuits: new Map() };
    for (const row of rows) collectSharedRecords(row, shared);
    return rows.map((row) => toClaimedDelivery(row, shared));
  }

  async renewDeliveryClaim(deliveryId: string, claimToken: string, leaseMs: number): Promise<void> {
    assertLease(leaseMs);
    const rows = await this.#runner.rows(this.#q.renewClaim, [deliveryId, claimToken, leaseMs]);
    if (rows.length === 0) throw claimLost(deliveryId);
  }

  async releaseDeliveryClaim(release: ClaimRelease): Promise<void> {
    if ((await this.#release([release])) === 0) throw claimLost(release.deliveryId);
  }

  async releaseDeliveryClaims(releases: readonly ClaimRelease[]): Promise<number> {
    if (releases.length === 0) return 0;
    return this.#release(releases);
  }

  async completeDeliveryAttempts(
    completions: readonly AttemptCompletion[],
  ): Promise<CompletionResult[]> {
    if (completions.length === 0) return [];
    const attempts = completions.flatMap((completion) =>
      completion.attempt ? [completion.attempt] : [],
    );
    const input = JSON.stringify(
      completions.map((completion, index) => ({
        ord: index,
        delivery_id: completion.deliveryId,
        claim_token: completion.claimToken,
        outcome: outcomeOf(completion),
        delay_ms: completion.outcome.status === 'retry' ? completion.outcome.delayMs : null,
        refund: completion.refundAttempt === true,
        ensure_next:
          completion.outcome.status === 'retry' && completion.outcome.ensureNextAttempt === true,
      })),
    );
    const attemptRows = JSON.stringify(attempts.map(attemptRecord));
    // Root views send it as a short transaction of its own with its plan pinned; inside a
    // transaction (ours or the caller's) it runs as the plain statement.
    const rows =
      this.#mode === 'pool' || this.#mode === 'serial'
        ? await this.#runner.script(this.#q.completeScript(input, attemptRows))
        : await this.#runner.rows(this.#q.completeAttempts, [input, attemptRows]);
    const results = new Array<CompletionResult>(completions.length);
    for (const row of rows) {
      results[Number(row['ord'])] = {
        applied: row['applied'] === true,
        nextRetryAt: row['next_retry_at'] instanceof Date ? row['next_retry_at'] : null,
      };
    }
    return Array.from(results, (result) => result ?? { applied: false, nextRetryAt: null });
  }

  async requeueDeadLetter(id: string): Promise<Delivery> {
    const [row] = await this.#runner.rows(this.#q.requeueDeadLetter, [id]);
    if (!row) throw deliveryNotFound(id);
    if (row['id'] == null) {
      throw new HookdError(
        'HOOKD_ERR_DELIVERY_NOT_DEAD_LETTER',
        'delivery must be in dead_letter status to retry',
        { field: 'deliveryId', details: { deliveryId: id, status: row['found_status'] } },
      );
    }
    return toDelivery(row);
  }

  async retryDelivery(id: string): Promise<Delivery> {
    const [row] = await this.#runner.rows(this.#q.retryDelivery, [id]);
    if (!row) throw deliveryNotFound(id);
    if (row['id'] != null) return toDelivery(row);
    if (row['found_status'] === 'success') {
      throw new HookdError(
        'HOOKD_ERR_CANNOT_RETRY_SUCCESSFUL',
        'cannot retry a successful delivery',
        {
          field: 'deliveryId',
          details: { deliveryId: id },
        },
      );
    }
    throw new HookdError(
      'HOOKD_ERR_DELIVERY_IN_PROGRESS',
      'delivery is being attempted right now; retry after the attempt finished',
      { details: { deliveryId: id } },
    );
  }

  async wakeSubscriptionDeliveries(subscriptionId: string): Promise<number> {
    const [row] = await this.#runner.rows(this.#q.wakeSubscriptionDeliveries, [subscriptionId]);
    return Number(row?.['woken'] ?? 0);
  }

  // ── Attempts ─────────────────────────────────────────────────────────────────────────────

  async createDeliveryAttempt(attempt: DeliveryAttempt): Promise<void> {
    const [row] = await this.#runner.rows(this.#q.insertAttempt, [
      attempt.id,
      attempt.deliveryId,
      attempt.attemptNumber,
      attempt.statusCode,
      attempt.responseBody,
      JSON.stringify(attempt.responseHeaders),
      attempt.error,
      Math.max(0, Math.round(attempt.durationMs)),
      attempt.attemptedAt,
    ]);
    if (Number(row?.['found']) === 0) throw deliveryNotFound(attempt.deliveryId);
    if (Number(row?.['inserted']) === 0) {
      throw new HookdError(
        'HOOKD_ERR_DUPLICATE_ATTEMPT',
        `attempt ${attempt.attemptNumber} of delivery ${attempt.deliveryId} already exists`,
      );
    }
  }

  async getDeliveryAttempts(deliveryId: string): Promise<DeliveryAttempt[]> {
    return (await this.#runner.rows(this.#q.selectAttempts, [deliveryId])).map(toAttempt);
  }

  // ── Idempotency store ────────────────────────────────────────────────────────────────────

  async checkIdempotency(key: string, scope: string): Promise<boolean> {
    const [row] = await this.#runner.rows(this.#q.checkIdempotency, [key, scope]);
    return row?.['live'] === true;
  }

  async storeIdempotencyKey(key: string, scope: string, expiresAt: Date): Promise<void> {
    const rows = await this.#runner.rows(this.#q.storeIdempotencyKey, [key, scope, expiresAt]);
    if (rows.length > 0) return;
    const [holder] = await this.#runner.rows(this.#q.selectIdempotencyKey, [key, scope]);
    throw duplicateKey(key, holder?.['delivery_id'], holder?.['expires_at']);
  }

  async countExpiredIdempotencyKeys(): Promise<number> {
    const [row] = await this.#runner.rows(this.#q.countExpiredIdempotencyKeys, [], UNBOUNDED);
    return Number(row?.['n'] ?? 0);
  }

  async cleanupExpiredIdempotencyKeys(): Promise<number> {
    const [row] = await this.#runner.rows(this.#q.deleteExpiredIdempotencyKeys, [], UNBOUNDED);
    return Number(row?.['n'] ?? 0);
  }

  // ── Circuit breaker ──────────────────────────────────────────────────────────────────────

  async getCircuitBreakerState(endpoint: string): Promise<CircuitBreakerState> {
    const [row] = await this.#runner.rows(this.#q.selectCircuit, [endpoint]);
    return row ? toCircuit(row) : closedCircuit(endpoint);
  }

  async updateCircuitBreakerState(state: CircuitBreakerState): Promise<void> {
    await this.#runner.rows(this.#q.upsertCircuit, [
      state.endpoint,
      state.state,
      state.failureCount,
      state.successCount,
      state.lastFailureAt,
      state.openedAt,
      state.nextRetryAt,
    ]);
  }

  async recordCircuitEvents(
    events: readonly CircuitEventInput[],
    settings: CircuitSettings,
  ): Promise<Array<CircuitTransition | null>> {
    if (events.length === 0) return [];
    // Sorted, so concurrent batches take their row locks in the same order (no deadlock).
    const endpoints = [...new Set(events.map((event) => event.endpoint))].sort();
    const q = this.#q;
    return this.#runner.transaction(async (tx) => {
      await tx.rows(q.insertMissingCircuits, [endpoints]);
      const locked = await tx.rows(q.lockCircuits, [endpoints]);
      const states = new Map<string, CircuitBreakerState>();
      let now = new Date();
      for (const row of locked) {
        states.set(String(row['endpoint']), toCircuit(row));
        if (row['db_now'] instanceof Date) now = row['db_now'];
      }
      const changed = new Set<string>();
      const transitions = events.map(({ endpoint, event }) => {
        const current = states.get(endpoint) ?? closedCircuit(endpoint);
        const step = applyCircuitEvent(current, event, settings, now);
        if (step.changed) {
          states.set(endpoint, step.state);
          changed.add(endpoint);
        }
        return step.transition;
      });
      if (changed.size > 0) {
        const rows = [...changed].map((endpoint) => states.get(endpoint)!);
        await tx.rows(q.updateCircuits, [
          rows.map((state) => state.endpoint),
          rows.map((state) => state.state),
          rows.map((state) => state.failureCount),
          rows.map((state) => state.successCount),
          rows.map((state) => state.lastFailureAt),
          rows.map((state) => state.openedAt),
          rows.map((state) => state.nextRetryAt),
        ]);
      }
      return transitions;
    });
  }

  // ── Maintenance ──────────────────────────────────────────────────────────────────────────

  async countDeliveriesByFilter(input: CleanupFilter): Promise<number> {
    const filter = validateCleanupFilter(input);
    const { text, values } = this.#q.countDeliveries(filter);
    const [row] = await this.#runner.rows(text, values, UNBOUNDED);
    return Number(row?.['n'] ?? 0);
  }

  async deleteDeliveriesByFilter(input: CleanupFilter): Promise<DeletedCounts> {
    const filter = validateCleanupFilter(input);
    const { text, values } = this.#q.deleteDeliveries(filter);
    const [row] = await this.#runner.rows(text, values, UNBOUNDED);
    return {
      deliveries: Number(row?.['deliveries'] ?? 0),
      attempts: Number(row?.['attempts'] ?? 0),
    };
  }

  async getMaintenanceStats(): Promise<MaintenanceStats> {
    const [row] = await this.#runner.rows(this.#q.maintenanceStats, [], UNBOUNDED);
    const counts = (row?.['by_status'] ?? {}) as Partial<Record<DeliveryStatus, number>>;
    const byStatus: Record<DeliveryStatus, number> = {
      pending: Number(counts.pending ?? 0),
      success: Number(counts.success ?? 0),
      failed: Number(counts.failed ?? 0),
      dead_letter: Number(counts.dead_letter ?? 0),
    };
    return {
      totalDeliveries: Object.values(byStatus).reduce((sum, n) => sum + n, 0),
      deliveriesByStatus: byStatus,
      oldestDeliveryAt: dateOrNull(row?.['oldest']),
      newestDeliveryAt: dateOrNull(row?.['newest']),
      totalDeliveryAttempts: Number(row?.['attempts'] ?? 0),
      idempotencyKeys: Number(row?.['keys'] ?? 0),
      expiredIdempotencyKeys: Number(row?.['expired_keys'] ?? 0),
      asOf: dateOrNull(row?.['as_of']) ?? new Date(),
    };
  }

  async getQueueDepth(): Promise<QueueDepth> {
    const [row] = await this.#runner.rows(this.#q.queueDepth);
    return {
      pending: Number(row?.['pending'] ?? 0),
      deadLetter: Number(row?.['dead_letter'] ?? 0),
      oldestPendingAt: dateOrNull(row?.['oldest_pending']),
    };
  }

  // ── Transactions, wake-ups, lifecycle ────────────────────────────────────────────────────

  /**
   * Starts a transaction on a connection of the pool: the returned repository runs every
   * method inside it; its writes (and the wake-ups they announce) become visible on `commit()`.
   * Not available on a transaction or on a caller's client.
   */
  async beginTx(): Promise<RepositoryTx> {
    const core = this.#core;
    if (this.#mode === 'tx') {
      throw new HookdError('HOOKD_ERR_UNSUPPORTED', 'nested transactions are not supported');
    }
    if (this.#mode !== 'pool' || !core.pool) {
      throw new HookdError(
        'HOOKD_ERR_UNSUPPORTED',
        this.#mode === 'client'
          ? 'the caller owns this client transaction; begin and commit it on the client itself'
          : 'beginTx needs a pool; this repository was given a single client',
      );
    }
    const state = { done: false };
    const open = await new PoolRunner(
      core.pool,
      core.mapError,
      () => assertOpen(core),
      core.queryTimeoutMs,
    ).begin(() => {
      assertOpen(core);
      if (state.done) throw closedError('transaction');
    });
    return new PostgresTransaction(core, open.runner, state, open);
  }

  /**
   * A view of this repository that runs inside the caller's open transaction on `client` (a
   * `pg` `PoolClient` or `Client` after `BEGIN`, from any copy of `pg`). The caller commits or
   * rolls back; a delivery queued through the view exists, and wakes workers, only if the
   * caller commits. Its inserts are never coalesced with other callers'. Operations of several
   * statements (`recordCircuitEvents`) are atomic only through the caller's transaction.
   */
  withClient(client: unknown): Repository {
    if (!isPgQueryable(client)) {
      throw new HookdError(
        'HOOKD_ERR_UNSUPPORTED',
        'client must be a pg client (an object with a query method) with an open transaction',
        { field: 'client' },
      );
    }
    const core = this.#core;
    return new PostgresClientRepository(
      core,
      new ClientRunner(client, core.mapError, () => assertOpen(core), core.queryTimeoutMs),
    );
  }

  /**
   * Calls `listener` on every wake-up NOTIFY of this prefix (new, released, retried or redriven
   * deliveries, from any process). One dedicated connection serves all listeners of this
   * repository; after it drops, it is re-established with backoff (errors go to `onError`) and
   * every listener is called once, as work may have been queued meanwhile. A repository made
   * from a connection string opens a client of its own for this; one given a pool holds one of
   * the pool's connections while anyone listens.
   */
  async listenForWork(
    listener: () => void,
    onError: (error: Error) => void,
  ): Promise<() => Promise<void>> {
    const core = this.#core;
    assertOpen(core);
    core.listener ??= createWorkListener(core);
    if (!core.listener) {
      throw new HookdError(
        'HOOKD_ERR_UNSUPPORTED',
        'wake-ups need a pool or a connection string; this repository was given a single client',
      );
    }
    return core.listener.add(listener, onError);
  }

  /**
   * Checks that the database answers and that the schema for this prefix is at the version this
   * build expects.
   * @throws HookdError `HOOKD_ERR_SCHEMA_MISSING` (call `SchemaManager.ensureSchema()`),
   *   `HOOKD_ERR_SCHEMA_VERSION`, `HOOKD_ERR_DATABASE`.
   */
  async ping(): Promise<void> {
    const [row] = await this.#runner.rows(this.#q.schemaVersion);
    const version = Number(row?.['version'] ?? 0);
    const latest = MIGRATIONS.length;
    if (version === latest) return;
    const prefix = this.#core.schema.prefix;
    if (version < latest) {
      throw new HookdError(
        version === 0 ? 'HOOKD_ERR_SCHEMA_MISSING' : 'HOOKD_ERR_SCHEMA_VERSION',
        `the schema for prefix "${prefix}" is at migration ${version} but this build of node-hookd needs ${latest}; ` +
          `run SchemaManager.ensureSchema() to apply the missing migrations`,
      );
    }
    throw new HookdError(
      'HOOKD_ERR_SCHEMA_VERSION',
      `the schema for prefix "${prefix}" is at migration ${version} but this build of node-hookd knows only ${latest}; upgrade node-hookd`,
    );
  }

  abstract close(): Promise<void>;

  // ── Internals ────────────────────────────────────────────────────────────────────────────

  #assertOpen(): void {
    assertOpen(this.#core);
  }

  async #release(releases: readonly ClaimRelease[]): Promise<number> {
    const [row] = await this.#runner.rows(this.#q.releaseClaims, [
      releases.map((release) => release.deliveryId),
      releases.map((release) => release.claimToken),
      releases.map((release) => (release.retryAt instanceof Date ? release.retryAt : null)),
      releases.map((release) =>
        release.retryAt !== null && !(release.retryAt instanceof Date)
          ? release.retryAt.delayMs
          : null,
      ),
      releases.map((release) => release.refundAttempt),
    ]);
    return Number(row?.['released'] ?? 0);
  }

  /**
   * Stores deliveries with one statement (see `createDeliveries` in postgres-queries.ts). Items
   * that repeat an earlier item's key and scope are settled here, before the statement: the
   * first one wins.
   */
  async #createMany(items: readonly NewDeliveryItem[]): Promise<CreateDeliveryResult[]> {
    const firstByKey = new Map<string, number>();
    const duplicateOf = new Map<number, number>();
    const sent: number[] = [];
    items.forEach((item, index) => {
      const claim = item.idempotency;
      if (claim) {
        const key = `${claim.scope}\u0000${claim.key}`;
        const first = firstByKey.get(key);
        if (first !== undefined) {
          duplicateOf.set(index, first);
          return;
        }
        firstByKey.set(key, index);
      }
      sent.push(index);
    });
    const input = sent.map((index) => items[index]!);
    const rows = await this.#runner.rows(this.#q.createDeliveries, [
      input.map((_, ord) => ord),
      input.map(({ delivery }) => delivery.id),
      input.map(({ delivery }) => delivery.subscriptionId),
      input.map(({ delivery }) => delivery.tenantId),
      input.map(({ delivery }) => delivery.eventType),
      JSON.stringify(input.map(({ delivery }) => delivery.body)),
      input.map(({ delivery }) => delivery.maxAttempts),
      input.map(({ delivery }) => delivery.attemptBudget),
      input.map(({ delivery }) => delivery.url),
      input.map(({ delivery }) => delivery.secret),
      input.map(({ idempotency }) => idempotency?.key ?? null),
      input.map(({ idempotency }) => idempotency?.scope ?? null),
      input.map(({ idempotency }) => idempotency?.ttlMs ?? null),
      input.map(({ delivery }) => delivery.traceContext ?? null),
      input.map(({ delivery }) => delivery.idempotencyKey),
    ]);
    const results = new Array<CreationResult>(items.length);
    for (const row of rows) {
      const index = sent[Number(row['ord'])]!;
      results[index] = creationResult(items[index]!, row);
    }
    for (const [index, first] of duplicateOf) {
      const winner = results[first];
      const claim = items[index]!.idempotency!;
      results[index] = winner?.ok
        ? {
            ok: false,
            error: duplicateKey(claim.key, winner.delivery.id, winner.expiresAt ?? null),
          }
        : (winner ?? { ok: false, error: new HookdError('HOOKD_ERR_INTERNAL', 'no result') });
    }
    return Array.from(results, (result): CreateDeliveryResult => {
      if (!result) return { ok: false, error: new HookdError('HOOKD_ERR_INTERNAL', 'no result') };
      return result.ok ? { ok: true, delivery: result.delivery } : result;
    });
  }
}

/** A successful creation, with the key's expiry for duplicates settled in the same batch. */
type CreationResult = CreateDeliveryResult & { readonly expiresAt?: Date | null };

function creationResult(item: NewDeliveryItem, row: Row): CreationResult {
  const { delivery } = item;
  if (row['subscription_found'] !== true) {
    return { ok: false, error: subscriptionNotFound(delivery.subscriptionId ?? '') };
  }
  if (!(row['created_at'] instanceof Date)) {
    return {
      ok: false,
      error: duplicateKey(item.idempotency?.key ?? '', row['holder_id'], row['holder_expires_at']),
    };
  }
  return {
    ok: true,
    delivery: {
      id: delivery.id,
      subscriptionId: delivery.subscriptionId,
      tenantId: delivery.tenantId,
      eventType: delivery.eventType,
      payload: JSON.parse(delivery.body) as JsonObject,
      status: 'pending',
      attemptCount: 0,
      maxAttempts: delivery.maxAttempts,
      attemptBudget: delivery.attemptBudget,
      nextRetryAt: null,
      completedAt: null,
      createdAt: row['created_at'],
      url: delivery.url,
      idempotencyKey: delivery.idempotencyKey,
    },
    expiresAt: dateOrNull(row['holder_expires_at']),
  };
}

/**
 * The PostgreSQL {@link Repository}.
 *
 * Give it a connection string (it creates, owns and on `close()` ends a `pg.Pool`) or the
 * application's own `pg.Pool` (never closed by node-hookd). The tables must exist: create them
 * with `SchemaManager.ensureSchema()` using the same prefix; a missing schema surfaces as
 * `HOOKD_ERR_SCHEMA_MISSING`.
 *
 * The request body is stored as the exact text that is signed and sent, never as jsonb: key
 * order, whitespace and large integers survive unchanged, and `getDelivery().payload` is
 * `JSON.parse` of it.
 *
 * @example
 * ```ts
 * const repository = new PostgresRepository(process.env.DATABASE_URL!, { tablePrefix: 'billing' });
 * ```
 */
export class PostgresRepository extends PostgresStore {
  /**
   * @param connection - A connection string, a `pg.Pool` (or any object with `query()` and a
   *   pool's `connect()`), or a single connected client (then `beginTx` and wake-ups are not
   *   available).
   * @param options - `tablePrefix` is required.
   * @throws HookdError `HOOKD_ERR_INVALID_PREFIX`, `HOOKD_ERR_INVALID_CONFIG`.
   */
  constructor(connection: string | object, options: PostgresRepositoryOptions) {
    const core = createCore(connection, options);
    super(core, core.rootRunner, core.pool ? 'pool' : 'serial');
    if (core.pool) {
      // Reads of the root runner never go through the batcher, so it can read with it.
      const runner = core.rootRunner;
      const select = core.queries.selectSubscriptions;
      core.subscriptionLookups = new LookupBatcher(
        async (ids) => {
          const rows = await runner.rows(select, [ids]);
          return new Map(rows.map((row) => [String(row['id']), toSubscription(row)]));
        },
        { busyGroupMs: DEFAULT_BUSY_GROUP_MS },
      );
    }
    if (core.pool && options.insertBatching !== false) {
      // createDeliveries never goes through the batcher, so the batcher can write with it.
      core.batcher = new InsertBatcher((items) => this.createDeliveries(items), {
        busyGroupMs: DEFAULT_BUSY_GROUP_MS,
        ...options.insertBatching,
      });
    }
  }

  /**
   * Waits for coalesced inserts under way, stops wake-up listening and, if the repository
   * created the pool, ends it. Later calls fail with `HOOKD_ERR_DATABASE`. Idempotent.
   */
  close(): Promise<void> {
    const core = this.core;
    core.closing ??= (async () => {
      await core.subscriptionLookups?.drain();
      await core.batcher?.drain();
      core.closed = true;
      await core.listener?.close();
      if (core.ownsPool) await core.pool?.end?.();
    })();
    return core.closing;
  }
}

/** A transaction from {@link PostgresStore.beginTx}. */
class PostgresTransaction extends PostgresStore implements RepositoryTx {
  readonly #state: { done: boolean };
  readonly #open: { commit(): Promise<void>; rollback(): Promise<void> };

  constructor(
    core: Core,
    runner: Runner,
    state: { done: boolean },
    open: { commit(): Promise<void>; rollback(): Promise<void> },
  ) {
    super(core, runner, 'tx');
    this.#state = state;
    this.#open = open;
  }

  async commit(): Promise<void> {
    if (this.#state.done) return;
    this.#state.done = true;
    await this.#open.commit();
  }

  async rollback(): Promise<void> {
    if (this.#state.done) return;
    this.#state.done = true;
    await this.#open.rollback();
  }

  /** Rolls back if still open; the repository itself stays open. */
  close(): Promise<void> {
    return this.rollback();
  }
}

/** A view on the caller's client, from {@link PostgresStore.withClient}. */
class PostgresClientRepository extends PostgresStore {
  constructor(core: Core, runner: Runner) {
    super(core, runner, 'client');
  }

  /** Does nothing: the client and its transaction belong to the caller. */
  async close(): Promise<void> {}
}

function createCore(connection: string | object, options: PostgresRepositoryOptions): Core {
  if (options === null || typeof options !== 'object') {
    throw new HookdError(
      'HOOKD_ERR_INVALID_PREFIX',
      'tablePrefix is required - specify new PostgresRepository(connection, { tablePrefix: "yourprefix" })',
      { field: 'tablePrefix' },
    );
  }
  const schema = newSchemaConfig(options.tablePrefix);
  const queries = new PostgresQueries(schema);
  const mapError = (error: unknown) => mapPgError(error, schema);
  const applicationName = options.pool?.applicationName ?? DEFAULT_APPLICATION_NAME;
  const queryTimeoutMs = options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
  if (!Number.isInteger(queryTimeoutMs) || queryTimeoutMs < 0) {
    throw new HookdError(
      'HOOKD_ERR_INVALID_CONFIG',
      'queryTimeoutMs must be a non-negative integer (milliseconds)',
      {
        field: 'queryTimeoutMs',
      },
    );
  }
  let pool: PgPool | null = null;
  let single: PgQueryable | null = null;
  let ownsPool = false;
  let connectionString: string | null = null;
  if (typeof connection === 'string') {
    if (connection.trim() === '') throw invalidConnection();
    connectionString = connection;
    pool = new pg.Pool({ connectionString, ...poolConfig(options.pool ?? {}, applicationName) });
    // An idle connection that dies must not crash the process; the next query reconnects.
    (pool as pg.Pool).on('error', () => undefined);
    ownsPool = true;
  } else if (isPgPool(connection)) {
    pool = connection;
  } else if (isPgQueryable(connection)) {
    single = connection;
  } else {
    throw invalidConnection();
  }
  const core: Core = {
    schema,
    queries,
    mapError,
    pool,
    ownsPool,
    connectionString,
    applicationName,
    queryTimeoutMs,
    rootRunner: pool
      ? new PoolRunner(pool, mapError, () => assertOpen(core), queryTimeoutMs)
      : new SerialClientRunner(single!, mapError, () => assertOpen(core), queryTimeoutMs),
    batcher: null,
    subscriptionLookups: null,
    listener: null,
    closed: false,
    closing: null,
  };
  return core;
}

function poolConfig(options: PostgresPoolOptions, applicationName: string): pg.PoolConfig {
  const config: pg.PoolConfig = {
    application_name: applicationName,
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? DEFAULT_CONNECTION_TIMEOUT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEP_ALIVE_INITIAL_DELAY_MS,
  };
  if (options.max !== undefined) config.max = options.max;
  if (options.idleTimeoutMillis !== undefined) config.idleTimeoutMillis = options.idleTimeoutMillis;
  if (options.maxLifetimeSeconds !== undefined)
    config.maxLifetimeSeconds = options.maxLifetimeSeconds;
  if (options.ssl !== undefined) config.ssl = options.ssl;
  return config;
}

function createWorkListener(core: Core): WorkListener | null {
  let connect: () => Promise<ListenConnection>;
  if (core.connectionString !== null) {
    const connectionString = core.connectionString;
    // A client of its own, outside the pool: a LISTEN connection is held for as long as
    // anyone listens and must not take a pool slot.
    connect = async () => {
      const client = new pg.Client({
        connectionString,
        application_name: core.applicationName,
        connectionTimeoutMillis: DEFAULT_CONNECTION_TIMEOUT_MS,
        keepAlive: true,
        keepAliveInitialDelayMillis: KEEP_ALIVE_INITIAL_DELAY_MS,
      });
      client.on('error', () => undefined);
      await client.connect();
      return { client, release: () => client.end() };
    };
  } else if (core.pool) {
    const pool = core.pool;
    connect = async () => {
      const client = await pool.connect();
      return {
        client: client as unknown as ListenClient,
        release: async (broken) => client.release(broken),
      };
    };
  } else {
    return null;
  }
  return new WorkListener({ channel: core.schema.workChannel, connect });
}

function assertOpen(core: Core): void {
  if (core.closed) throw closedError('repository');
}

function assertLease(leaseMs: number): void {
  if (typeof leaseMs !== 'number' || !(leaseMs > 0) || !Number.isFinite(leaseMs))
    throw invalidArgument('leaseMs', 'claim lease must be positive');
}

function outcomeOf(completion: AttemptCompletion): string {
  const status = completion.outcome.status;
  if (status !== 'success' && status !== 'retry' && status !== 'dead_letter') {
    throw invalidArgument('outcome', `unknown completion outcome ${String(status)}`);
  }
  return status;
}

/** One attempt as a row of the completion statement's JSON input. */
function attemptRecord(attempt: DeliveryAttempt): Record<string, unknown> {
  return {
    id: attempt.id,
    delivery_id: attempt.deliveryId,
    attempt_number: attempt.attemptNumber,
    status_code: attempt.statusCode,
    response_body: attempt.responseBody,
    response_headers: attempt.responseHeaders,
    error: attempt.error,
    duration_ms: Math.max(0, Math.round(attempt.durationMs)),
    // An ISO string: the same instant, to the millisecond, as the Date itself.
    attempted_at: attempt.attemptedAt,
  };
}

function dateOrNull(value: unknown): Date | null {
  return value instanceof Date ? value : null;
}

function invalidConnection(): HookdError {
  return new HookdError(
    'HOOKD_ERR_INVALID_CONFIG',
    'connection must be a PostgreSQL connection string or a pg.Pool',
    { field: 'connection' },
  );
}

function subscriptionNotFound(id: string): HookdError {
  return new HookdError('HOOKD_ERR_SUBSCRIPTION_NOT_FOUND', `subscription ${id} not found`, {
    details: { subscriptionId: id },
  });
}

function deliveryNotFound(id: string): HookdError {
  return new HookdError('HOOKD_ERR_DELIVERY_NOT_FOUND', `delivery ${id} not found`, {
    details: { deliveryId: id },
  });
}

function claimLost(deliveryId: string): HookdError {
  return new HookdError(
    'HOOKD_ERR_DELIVERY_CLAIM_LOST',
    `claim on delivery ${deliveryId} is no longer held`,
    { details: { deliveryId } },
  );
}

function duplicateUrl(subscription: Subscription, otherId: unknown): HookdError {
  return new HookdError(
    'HOOKD_ERR_DUPLICATE_SUBSCRIPTION',
    `tenant ${subscription.tenantId} already has a subscription for ${subscription.url}`,
    { field: 'url', details: { subscriptionId: typeof otherId === 'string' ? otherId : null } },
  );
}

function duplicateKey(key: string, holderId: unknown, expiresAt: unknown): HookdError {
  return new HookdError(
    'HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY',
    `duplicate delivery detected: idempotency key ${JSON.stringify(key)} is in use`,
    {
      field: 'idempotencyKey',
      details: {
        deliveryId: typeof holderId === 'string' ? holderId : null,
        expiresAt: expiresAt instanceof Date ? expiresAt : null,
      },
    },
  );
}
