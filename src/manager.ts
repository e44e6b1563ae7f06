import type { Dispatcher } from 'undici';

import { defaultRetryPolicy, resolveConfig, type Config, type ResolvedConfig } from './config.js';
import {
  createDeliveryAgent,
  type DeliveryAgent,
  type DeliveryAgentPoolOptions,
} from './delivery/delivery-agent.js';
import { STRICT_EGRESS_POLICY, type EgressPolicy } from './delivery/egress-policy.js';
import type { EgressRefusal, GuardLookup } from './delivery/guarded-connector.js';
import { DeadLetterService } from './dead-letters.js';
import {
  DeliveryService,
  batchItems,
  itemError,
  type QueueDeliveriesRequest,
} from './deliveries.js';
import { HookdError } from './errors.js';
import type { Publish } from './event-payloads.js';
import { InProcessEventBus, type EventBus, type EventHandler, type Topic } from './events.js';
import { silentLogger, type Logger } from './logger.js';
import { MaintenanceService, type CleanupOptions } from './maintenance.js';
import type {
  BatchResponse,
  CleanupFilter,
  CleanupResult,
  DeadLetterFilter,
  Delivery,
  DeliveryAttempt,
  DeliveryFilter,
  IdempotencyCleanupResult,
  MaintenanceStats,
  PurgeDeadLetterResult,
  PurgeFilter,
  RetryDeadLetterResult,
  Subscription,
  SubscriptionFilter,
  TestResult,
} from './models.js';
import type { Repository } from './repository/repository.js';
import {
  storedSecretResolver,
  toSecretResolver,
  type SecretResolver,
  type SecretResolverLike,
} from './secret.js';
import type { ServiceContext, TransactionOptions } from './service-context.js';
import { SubscriptionService } from './subscriptions.js';
import type {
  CreateSubscriptionRequest,
  QueueDeliveryRequest,
  QueueInlineDeliveryRequest,
  UpdateSubscriptionRequest,
} from './validation.js';
import { DatabaseClock } from './worker/database-clock.js';
import { WorkerPool } from './worker/worker-pool.js';
import { RequestTargets } from './delivery/http-sender.js';
import { createTracing, type TracerLike, type Tracing } from './telemetry/tracing.js';
import { SigningKeyCache } from './delivery/request-headers.js';

/** Options of {@link Manager} (go-hookd's functional options). */
export interface ManagerOptions {
  /** Where events are published. @default a new {@link InProcessEventBus} */
  readonly eventBus?: EventBus;
  /** A pino-compatible logger. @default silent */
  readonly logger?: Logger;
  /** Turns stored secrets into signing keys, once per attempt. @default the stored value */
  readonly secretResolver?: SecretResolverLike;
  /**
   * Let webhooks reach loopback, RFC 1918 / ULA and CGNAT addresses — for development and tests
   * only. Link-local (cloud metadata), multicast and reserved ranges stay refused. @default false
   */
  readonly allowPrivateDestinations?: boolean;
  /** Called whenever the egress guard refuses a destination (the cause is never shown to subscribers). */
  readonly onEgressRefused?: (refusal: EgressRefusal) => void;
  /** Tuning of the HTTP connection pool (connections per origin, keep-alive, TLS CA …). */
  readonly agentOptions?: DeliveryAgentPoolOptions;
  /**
   * Refused: a custom undici dispatcher would bypass the egress guard. Use `agentOptions`.
   * Present so that passing one fails loudly instead of being ignored.
   */
  readonly dispatcher?: unknown;
  /** Replaces DNS resolution of webhook hosts (tests, split-horizon DNS). */
  readonly lookup?: GuardLookup;
  /** Turn the circuit breaker off entirely: no reads, no writes, nothing parked. @default false */
  readonly disableCircuitBreaker?: boolean;
  /**
   * An OpenTelemetry tracer (`trace.getTracer('my-app')`): one CLIENT span per attempt, linked
   * to the span that queued the delivery, and a `traceparent` header on the webhook. Needs
   * `@opentelemetry/api` installed. @default no tracing
   */
  readonly tracer?: TracerLike;
}

/** Options of {@link Manager.stop}. */
export interface StopOptions {
  /** How long to wait for in-flight attempts before aborting them. @default config.shutdownTimeoutMs */
  readonly timeoutMs?: number;
  /** Also close the repository (only when this manager should own it). @default false */
  readonly closeRepository?: boolean;
}

const OPTION_KEYS = new Set([
  'eventBus',
  'logger',
  'secretResolver',
  'allowPrivateDestinations',
  'onEgressRefused',
  'agentOptions',
  'dispatcher',
  'lookup',
  'disableCircuitBreaker',
  'tracer',
]);

/**
 * The one entry point of node-hookd: subscriptions, deliveries, dead letters, maintenance, and
 * the worker pool that delivers.
 *
 * Queueing works whether or not this manager is started (a process may only produce, while
 * others deliver); `start()` begins delivering from this process.
 *
 * @example
 * ```ts
 * const manager = new Manager({ workerCount: 20 }, repository, { logger: pino() });
 * await manager.start();
 * const subscription = await manager.createSubscription({
 *   tenantId: 'acme', url: 'https://example.com/hooks', secret: generateSecret(), eventTypes: ['order.*'],
 * });
 * await manager.queueDelivery({ subscriptionId: subscription.id, eventType: 'order.created', payload: { id: 42 } });
 * // on shutdown:
 * await manager.stop();
 * ```
 */
export class Manager implements AsyncDisposable {
  readonly #config: ResolvedConfig;
  readonly #repository: Repository;
  readonly #bus: EventBus;
  readonly #logger: Logger;
  readonly #publish: Publish;
  readonly #options: ManagerOptions;
  readonly #pool: WorkerPool;
  readonly #subscriptions: SubscriptionService;
  readonly #deliveries: DeliveryService;
  readonly #deadLetters: DeadLetterService;
  readonly #maintenance: MaintenanceService;
  #agent: DeliveryAgent | null = null;
  #started = false;
  #transition: Promise<void> = Promise.resolve();
  #unlisten: (() => Promise<void>) | null = null;
  #depthTimer: NodeJS.Timeout | undefined;

  /**
   * @param config - Any subset of {@link Config}; the rest takes the defaults.
   * @param repository - Where subscriptions and deliveries live (`PostgresRepository`, or
   *   `MockRepository` for tests and demos). The manager never closes it unless asked.
   * @param options - See {@link ManagerOptions}.
   * @throws HookdError `HOOKD_ERR_INVALID_CONFIG` naming the bad field, or
   *   `HOOKD_ERR_UNGUARDABLE_DISPATCHER` for a dispatcher that would bypass the egress guard.
   */
  constructor(
    config: Partial<Config> | undefined,
    repository: Repository,
    options: ManagerOptions = {},
  ) {
    this.#config = resolveConfig(config ?? {});
    this.#options = checkOptions(options);
    if (!isRepository(repository)) {
      throw new HookdError(
        'HOOKD_ERR_INVALID_CONFIG',
        'repository is required (a PostgresRepository or MockRepository)',
        {
          field: 'repository',
        },
      );
    }
    this.#repository = repository;
    this.#logger = options.logger ?? silentLogger;
    this.#bus =
      options.eventBus ??
      new InProcessEventBus({
        onSubscriberError: (error, topic) =>
          this.#logger.warn({ topic, error }, 'event subscriber failed'),
      });
    this.#publish = (topic, event) => {
      try {
        this.#bus.publish(topic, event);
      } catch (error) {
        this.#logger.warn({ topic, error }, 'event bus failed to publish');
      }
    };
    if (options.allowPrivateDestinations === true) {
      this.#logger.warn(
        {},
        'allowPrivateDestinations is on: webhooks may reach loopback and private networks. Use it only in development and tests.',
      );
    }
    // Built now so that a bad agent option fails here, not at the first delivery.
    this.#agent = this.#createAgent();

    const tracing: Tracing | null = options.tracer ? createTracing(options.tracer) : null;
    // The database's clock: read off claims by the worker pool, used for every time this
    // process signs or records (see DatabaseClock).
    const clock = new DatabaseClock(Date.now);
    const signingKeys = new SigningKeyCache();
    const secretResolver: SecretResolver = options.secretResolver
      ? toSecretResolver(options.secretResolver)
      : storedSecretResolver;
    const egressPolicy: EgressPolicy =
      options.allowPrivateDestinations === true
        ? Object.freeze({ allowPrivateDestinations: true })
        : STRICT_EGRESS_POLICY;
    const context: ServiceContext = {
      repository,
      config: this.#config,
      defaultPolicy: defaultRetryPolicy(this.#config),
      egressPolicy,
      publish: this.#publish,
      logger: this.#logger,
      secretResolver,
      emptySecretAllowed: secretResolver === storedSecretResolver,
      dispatcher: () => this.#dispatcher(),
      wake: () => this.notify(),
      now: () => clock.now(),
      tracing,
      signingKeys,
    };
    this.#subscriptions = new SubscriptionService(context);
    this.#deliveries = new DeliveryService(context);
    this.#deadLetters = new DeadLetterService(context);
    this.#maintenance = new MaintenanceService(context);
    this.#pool = new WorkerPool({
      repository,
      clock,
      config: this.#config,
      circuitBreakerEnabled: options.disableCircuitBreaker !== true,
      publish: this.#publish,
      logger: this.#logger,
      attemptContext: () => ({
        dispatcher: this.#dispatcher(),
        requestsPerOrigin: this.#deliveryAgent().requestsPerOrigin,
        targets: new RequestTargets(),
        deliveryTimeoutMs: this.#config.deliveryTimeoutMs,
        retryJitter: this.#config.retryJitter,
        secretResolver,
        emptySecretAllowed: context.emptySecretAllowed,
        inlinePolicy: context.defaultPolicy,
        logger: this.#logger,
        now: () => clock.now(),
        random: Math.random,
        tracing,
        signingKeys,
      }),
    });
  }

  /** The configuration in effect, with every default applied. */
  get config(): ResolvedConfig {
    return this.#config;
  }

  // ── Lifecycle ────────────────────────────────────────────────────────────────────────────

  /**
   * Starts delivering from this process: the worker pool, cross-process wake-ups (when the
   * repository offers them), and the periodic `metrics.queue_depth` event. Idempotent; a
   * stopped manager can be started again.
   */
  start(): Promise<void> {
    this.#transition = this.#transition.then(async () => {
      if (this.#started) return;
      this.#started = true;
      this.#pool.start();
      await this.#listen();
      this.#startDepthTimer();
      this.#logger.info({ workerCount: this.#config.workerCount }, 'node-hookd manager started');
    });
    return this.#transition;
  }

  /**
   * Stops delivering: no new claims; claimed deliveries that have not started are given back at
   * once; in-flight attempts get until `timeoutMs` to finish (then they are aborted and recorded
   * as interrupted, to be retried). Resolves within `timeoutMs`. Idempotent. The repository
   * stays open unless `closeRepository` is set.
   */
  stop(options: StopOptions = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? this.#config.shutdownTimeoutMs;
    if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0) {
      return Promise.reject(
        new HookdError('HOOKD_ERR_INVALID_ARGUMENT', 'timeoutMs must be a non-negative number', {
          field: 'timeoutMs',
        }),
      );
    }
    this.#transition = this.#transition.then(async () => {
      if (this.#started) {
        this.#started = false;
        clearInterval(this.#depthTimer);
        const unlisten = this.#unlisten;
        this.#unlisten = null;
        await Promise.all([
          this.#pool.stop(timeoutMs),
          unlisten?.().catch((error: unknown) =>
            this.#logger.warn({ error }, 'stopping the wake-up listener failed'),
          ),
        ]);
        const agent = this.#agent;
        this.#agent = null;
        await agent
          ?.close()
          .catch((error: unknown) => this.#logger.warn({ error }, 'closing the HTTP agent failed'));
        this.#logger.info({}, 'node-hookd manager stopped');
      }
      if (options.closeRepository === true) await this.#repository.close();
    });
    return this.#transition;
  }

  /** `await using manager = new Manager(…)` stops it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** Whether `start()` has run and `stop()` has not. */
  isStarted(): boolean {
    return this.#started;
  }

  /**
   * Wakes the worker pool for an immediate claim (queueing does this by itself). Never blocks;
   * does nothing when the manager is not started.
   */
  notify(): void {
    this.#pool.notify();
  }

  /** Subscribes to a topic of this manager's event bus; returns the unsubscribe function. */
  on<T extends Topic>(topic: T, handler: EventHandler<T>): () => void {
    return this.#bus.subscribe(topic, handler);
  }

  // ── Subscriptions ────────────────────────────────────────────────────────────────────────

  /**
   * Creates an active subscription. The URL is checked against the egress policy and
   * normalised; a second subscription of the tenant for the same URL is a conflict.
   * @throws HookdError `HOOKD_ERR_INVALID_ARGUMENT` (with `field`), `HOOKD_ERR_DUPLICATE_SUBSCRIPTION`.
   */
  createSubscription(request: CreateSubscriptionRequest): Promise<Subscription> {
    return this.#subscriptions.create(request);
  }

  /** Creates up to 100 subscriptions; each succeeds or fails on its own. */
  async createSubscriptions(request: {
    readonly subscriptions: readonly CreateSubscriptionRequest[];
  }): Promise<BatchResponse<Subscription>> {
    const items = batchItems<CreateSubscriptionRequest>(request, 'subscriptions');
    const results = await Promise.all(
      items.map(async (item, index) => {
        try {
          return { index, success: true as const, result: await this.#subscriptions.create(item) };
        } catch (error) {
          return { index, success: false as const, error: itemError(error) };
        }
      }),
    );
    const succeeded = results.filter((result) => result.success).length;
    return {
      results,
      totalRequested: items.length,
      totalSucceeded: succeeded,
      totalFailed: items.length - succeeded,
    };
  }

  /** @throws HookdError `HOOKD_ERR_SUBSCRIPTION_NOT_FOUND`. */
  getSubscription(id: string): Promise<Subscription> {
    return this.#subscriptions.get(id);
  }

  /**
   * Changes the given fields (all validated like `createSubscription`). Returns the subscription
   * unchanged, without writing, when nothing differs. Setting the status to `active` makes
   * deliveries held during a pause due at once.
   */
  updateSubscription(id: string, request: UpdateSubscriptionRequest): Promise<Subscription> {
    return this.#subscriptions.update(id, request);
  }

  /** Deletes the subscription with its deliveries, their attempts and its idempotency keys. */
  deleteSubscription(id: string): Promise<void> {
    return this.#subscriptions.delete(id);
  }

  /** Lists newest first; a `tenantId` is required unless `allTenants` is set. */
  listSubscriptions(filter: SubscriptionFilter): Promise<Subscription[]> {
    return this.#subscriptions.list(filter);
  }

  /** Holds new and pending deliveries (queueing is refused) until resumed. */
  pauseSubscription(id: string): Promise<Subscription> {
    return this.#subscriptions.setStatus(id, 'paused');
  }

  /** Makes the subscription active again; deliveries held meanwhile become due at once. */
  resumeSubscription(id: string): Promise<Subscription> {
    return this.#subscriptions.setStatus(id, 'active');
  }

  /** Like pause, for endpoints an operator turned off; resume re-enables. */
  disableSubscription(id: string): Promise<Subscription> {
    return this.#subscriptions.setStatus(id, 'disabled');
  }

  /**
   * Sends one signed `test.ping` to the endpoint and reports the answer. Once per subscription
   * every 10 s. Transport failures are reported in the result, not thrown.
   * @throws HookdError `HOOKD_ERR_TEST_RATE_LIMITED` (with `details.retryAfterMs`).
   */
  testSubscription(id: string): Promise<TestResult> {
    return this.#subscriptions.test(id);
  }

  // ── Deliveries ───────────────────────────────────────────────────────────────────────────

  /**
   * Queues a webhook to a subscription. The event type must match one of its patterns and the
   * metadata its filters. With `idempotencyKey`, a live duplicate in the subscription is refused
   * (`HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY`, `details.deliveryId` names the original). With
   * `{ client }`, the delivery is written inside the caller's open transaction.
   */
  queueDelivery(request: QueueDeliveryRequest, options?: TransactionOptions): Promise<Delivery> {
    return this.#deliveries.queue(request, options);
  }

  /**
   * Queues a one-off webhook to a URL without a subscription. Retries with the manager's default
   * policy (`maxRetries` overrides the attempt count).
   */
  queueInlineDelivery(
    request: QueueInlineDeliveryRequest,
    options?: TransactionOptions,
  ): Promise<Delivery> {
    return this.#deliveries.queueInline(request, options);
  }

  /** Queues up to 100 deliveries in one call; each succeeds or fails on its own. */
  queueDeliveries(
    request: QueueDeliveriesRequest,
    options?: TransactionOptions,
  ): Promise<BatchResponse<Delivery>> {
    return this.#deliveries.queueBatch(request, options);
  }

  /** @throws HookdError `HOOKD_ERR_DELIVERY_NOT_FOUND`. */
  getDelivery(id: string): Promise<Delivery> {
    return this.#deliveries.get(id);
  }

  /** The delivery's attempts, oldest first. */
  getDeliveryAttempts(deliveryId: string): Promise<DeliveryAttempt[]> {
    return this.#deliveries.attempts(deliveryId);
  }

  /**
   * Makes a delivery due now (one more attempt for a dead-lettered one). Refused for successful
   * deliveries and for one being attempted at this moment.
   */
  retryDelivery(id: string): Promise<Delivery> {
    return this.#deliveries.retry(id);
  }

  /** Lists newest first; a `tenantId` is required unless `allTenants` is set. */
  listDeliveries(filter: DeliveryFilter): Promise<Delivery[]> {
    return this.#deliveries.list(filter);
  }

  // ── Dead letters ─────────────────────────────────────────────────────────────────────────

  /** A tenant's dead letters, newest first (100 per page unless `limit` says otherwise). */
  listDeadLetters(filter: DeadLetterFilter): Promise<Delivery[]> {
    return this.#deadLetters.list(filter);
  }

  /**
   * Redrives one dead letter with a fresh attempt budget. Of two concurrent redrives exactly
   * one succeeds. @throws HookdError `HOOKD_ERR_DELIVERY_NOT_DEAD_LETTER`.
   */
  retryDeadLetter(deliveryId: string): Promise<Delivery> {
    return this.#deadLetters.retryOne(deliveryId);
  }

  /** Redrives every dead letter matching the filter (up to `filter.limit` when given). */
  retryDeadLetters(filter: DeadLetterFilter): Promise<RetryDeadLetterResult> {
    return this.#deadLetters.retryMany(filter);
  }

  /** Deletes a tenant's dead letters, optionally only those older than `olderThanMs`. */
  purgeDeadLetters(filter: PurgeFilter): Promise<PurgeDeadLetterResult> {
    return this.#deadLetters.purge(filter);
  }

  /** Number of a tenant's dead letters. */
  getDeadLetterCount(tenantId: string): Promise<number> {
    return this.#deadLetters.count(tenantId);
  }

  // ── Maintenance ──────────────────────────────────────────────────────────────────────────

  /** Counts across all tenants. */
  getMaintenanceStats(): Promise<MaintenanceStats> {
    return this.#maintenance.stats();
  }

  /**
   * Deletes (or with `dryRun` counts) deliveries matching the filter, with their attempts. The
   * filter must name a tenant or set `allTenants`, and hold at least one real constraint.
   */
  cleanupDeliveries(filter: CleanupFilter, options?: CleanupOptions): Promise<CleanupResult> {
    return this.#maintenance.cleanupDeliveries(filter, options);
  }

  /** Deletes expired idempotency keys (all scopes). */
  cleanupIdempotencyKeys(options?: CleanupOptions): Promise<IdempotencyCleanupResult> {
    return this.#maintenance.cleanupIdempotencyKeys(options);
  }

  /** Fleet-wide: deletes successful deliveries created more than `olderThanMs` ago. */
  cleanupSuccessfulDeliveries(
    olderThanMs: number,
    options?: CleanupOptions,
  ): Promise<CleanupResult> {
    return this.#maintenance.cleanupByStatus(['success'], olderThanMs, options);
  }

  /** Fleet-wide: deletes failed deliveries created more than `olderThanMs` ago. */
  cleanupFailedDeliveries(olderThanMs: number, options?: CleanupOptions): Promise<CleanupResult> {
    return this.#maintenance.cleanupByStatus(['failed'], olderThanMs, options);
  }

  /** Fleet-wide: deletes dead letters created more than `olderThanMs` ago. */
  cleanupDeadLetterDeliveries(
    olderThanMs: number,
    options?: CleanupOptions,
  ): Promise<CleanupResult> {
    return this.#maintenance.cleanupByStatus(['dead_letter'], olderThanMs, options);
  }

  /** Fleet-wide: deletes successful and failed (not dead-lettered) deliveries older than `olderThanMs`. */
  cleanupAllCompletedDeliveries(
    olderThanMs: number,
    options?: CleanupOptions,
  ): Promise<CleanupResult> {
    return this.#maintenance.cleanupByStatus(['success', 'failed'], olderThanMs, options);
  }

  // ── Internals ────────────────────────────────────────────────────────────────────────────

  #createAgent(): DeliveryAgent {
    const options = this.#options;
    return createDeliveryAgent({
      allowPrivateDestinations: options.allowPrivateDestinations === true,
      ...(options.agentOptions === undefined ? {} : { agentOptions: options.agentOptions }),
      ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
      ...(options.lookup === undefined ? {} : { lookup: options.lookup }),
      onEgressRefused: (refusal) => {
        this.#logger.warn(
          { cause: refusal.cause, host: refusal.hostname },
          'egress guard refused a webhook destination',
        );
        options.onEgressRefused?.(refusal);
      },
    });
  }

  #deliveryAgent(): DeliveryAgent {
    this.#agent ??= this.#createAgent();
    return this.#agent;
  }

  #dispatcher(): Dispatcher {
    return this.#deliveryAgent().dispatcher;
  }

  async #listen(): Promise<void> {
    if (!this.#repository.listenForWork) return;
    try {
      this.#unlisten = await this.#repository.listenForWork(
        () => this.notify(),
        (error) => {
          this.#logger.warn(
            { error },
            'wake-up listener lost its connection; reconnecting (polling delivers meanwhile)',
          );
          this.#publish('worker.error', {
            timestamp: new Date(),
            operation: 'listenForWork',
            error,
          });
        },
      );
    } catch (error) {
      // Wake-ups only cut latency; polling keeps delivering without them.
      this.#logger.warn({ error }, 'cross-process wake-ups unavailable; relying on polling');
    }
  }

  #startDepthTimer(): void {
    const interval = this.#config.queueDepthIntervalMs;
    if (interval <= 0) return;
    this.#depthTimer = setInterval(() => {
      this.#repository.getQueueDepth().then(
        (depth) => this.#publish('metrics.queue_depth', { ...depth, timestamp: new Date() }),
        (error: unknown) => {
          const wrapped = error instanceof Error ? error : new Error(String(error));
          this.#logger.warn({ error: wrapped }, 'reading the queue depth failed');
          this.#publish('worker.error', {
            timestamp: new Date(),
            operation: 'getQueueDepth',
            error: wrapped,
          });
        },
      );
    }, interval);
    this.#depthTimer.unref();
  }
}

function checkOptions(options: ManagerOptions): ManagerOptions {
  if (options === null || typeof options !== 'object') {
    throw new HookdError('HOOKD_ERR_INVALID_CONFIG', 'options must be an object', {
      field: 'options',
    });
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key))
      throw new HookdError('HOOKD_ERR_INVALID_CONFIG', `${key} is not a manager option`, {
        field: key,
      });
  }
  const need = (field: keyof ManagerOptions, ok: boolean, what: string) => {
    if (options[field] !== undefined && !ok)
      throw new HookdError('HOOKD_ERR_INVALID_CONFIG', `${field} must be ${what}`, { field });
  };
  const bus = options.eventBus as Partial<EventBus> | undefined;
  need(
    'eventBus',
    typeof bus?.publish === 'function' && typeof bus.subscribe === 'function',
    'an EventBus (publish and subscribe)',
  );
  const logger = options.logger as Partial<Logger> | undefined;
  need(
    'logger',
    ['debug', 'info', 'warn', 'error'].every(
      (level) => typeof logger?.[level as keyof Logger] === 'function',
    ),
    'a logger with debug, info, warn and error methods',
  );
  const resolver = options.secretResolver as unknown;
  need(
    'secretResolver',
    typeof resolver === 'function' ||
      (typeof resolver === 'object' &&
        resolver !== null &&
        typeof (resolver as SecretResolver).resolve === 'function'),
    'a function or an object with a resolve method',
  );
  need(
    'allowPrivateDestinations',
    typeof options.allowPrivateDestinations === 'boolean',
    'a boolean',
  );
  need('onEgressRefused', typeof options.onEgressRefused === 'function', 'a function');
  need('lookup', typeof options.lookup === 'function', 'a function');
  need('disableCircuitBreaker', typeof options.disableCircuitBreaker === 'boolean', 'a boolean');
  need(
    'tracer',
    typeof (options.tracer as Partial<TracerLike> | undefined)?.startSpan === 'function',
    'an OpenTelemetry Tracer',
  );
  return options;
}

function isRepository(value: unknown): value is Repository {
  const candidate = value as Partial<Repository> | null | undefined;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.claimPendingDeliveries === 'function' &&
    typeof candidate.createDelivery === 'function' &&
    typeof candidate.completeDeliveryAttempts === 'function'
  );
}
