import { createHash } from 'node:crypto';

import { INLINE_IDEMPOTENCY_SCOPE_PREFIX, MAX_BATCH_ITEMS } from './constants.js';
import { HookdError, invalidArgument, isHookdError } from './errors.js';
import { queuedEvent } from './event-payloads.js';
import { generateDeliveryId } from './ids.js';
import { matchesAnyEventType, matchesMetadata } from './matching.js';
import type {
  BatchItemResult,
  BatchResponse,
  Delivery,
  DeliveryAttempt,
  ItemError,
  Subscription,
} from './models.js';
import type { IdempotencyClaim, NewDelivery, NewDeliveryItem } from './repository/repository.js';
import { repositoryFor, type ServiceContext, type TransactionOptions } from './service-context.js';
import {
  requireId,
  validateDeliveryFilter,
  validateQueueDelivery,
  validateQueueInlineDelivery,
  type QueueDeliveryRequest,
  type QueueInlineDeliveryRequest,
  type ValidQueueDelivery,
} from './validation.js';

/** Input of `queueDeliveries`. */
export interface QueueDeliveriesRequest {
  /** 1–100 requests; each succeeds or fails on its own. */
  readonly deliveries: readonly QueueDeliveryRequest[];
}

/** Delivery operations (go-hookd §1.6, §1.7, §3.8, §3.14). */
export class DeliveryService {
  readonly #context: ServiceContext;

  constructor(context: ServiceContext) {
    this.#context = context;
  }

  async queue(request: QueueDeliveryRequest, options?: TransactionOptions): Promise<Delivery> {
    const valid = validateQueueDelivery(request);
    const repository = repositoryFor(this.#context, options);
    const subscription = await repository.getSubscription(valid.subscriptionId);
    const item = this.#subscriptionItem(valid, subscription);
    const delivery = await repository.createDelivery(item.delivery, {
      idempotency: item.idempotency,
    });
    this.#queued(delivery);
    this.#context.wake();
    return delivery;
  }

  async queueInline(
    request: QueueInlineDeliveryRequest,
    options?: TransactionOptions,
  ): Promise<Delivery> {
    const { config } = this.#context;
    const valid = validateQueueInlineDelivery(request, this.#context.egressPolicy);
    const repository = repositoryFor(this.#context, options);
    const maxAttempts = valid.maxRetries > 0 ? valid.maxRetries : config.defaultMaxRetries;
    const delivery = await repository.createDelivery(
      {
        id: generateDeliveryId(),
        subscriptionId: null,
        tenantId: valid.tenantId,
        eventType: valid.eventType,
        body: valid.body,
        maxAttempts,
        attemptBudget: maxAttempts,
        url: valid.url,
        secret: valid.secret,
        idempotencyKey: valid.idempotencyKey,
        traceContext: this.#traceContext(),
      },
      {
        idempotency: this.#claim(
          valid.idempotencyKey,
          inlineIdempotencyScope(valid.tenantId, valid.url),
        ),
      },
    );
    this.#queued(delivery);
    this.#context.wake();
    return delivery;
  }

  /**
   * Queues up to 100 deliveries in one storage round trip. Every item is validated and stored
   * on its own: a bad item yields an error at its index and never affects the others.
   */
  async queueBatch(
    request: QueueDeliveriesRequest,
    options?: TransactionOptions,
  ): Promise<BatchResponse<Delivery>> {
    const items = batchItems(request, 'deliveries');
    const repository = repositoryFor(this.#context, options);
    const results = new Array<BatchItemResult<Delivery> | undefined>(items.length);
    const prepared: Array<{ index: number; item: NewDeliveryItem }> = [];
    const subscriptions = new Map<string, Promise<Subscription>>();

    await Promise.all(
      items.map(async (input, index) => {
        try {
          const valid = validateQueueDelivery(input);
          let lookup = subscriptions.get(valid.subscriptionId);
          if (!lookup) {
            lookup = repository.getSubscription(valid.subscriptionId);
            subscriptions.set(valid.subscriptionId, lookup);
          }
          prepared.push({ index, item: this.#subscriptionItem(valid, await lookup) });
        } catch (error) {
          results[index] = { index, success: false, error: itemError(error) };
        }
      }),
    );
    prepared.sort((a, b) => a.index - b.index);
    if (prepared.length > 0) {
      const stored = await repository.createDeliveries(prepared.map((entry) => entry.item));
      prepared.forEach(({ index }, position) => {
        const outcome = stored[position];
        if (outcome?.ok) {
          results[index] = { index, success: true, result: outcome.delivery };
          this.#queued(outcome.delivery);
        } else {
          results[index] = { index, success: false, error: itemError(outcome?.error) };
        }
      });
      if (stored.some((outcome) => outcome.ok)) this.#context.wake();
    }
    const finished = results.map(
      (result, index) => result ?? { index, success: false as const, error: itemError(undefined) },
    );
    const succeeded = finished.filter((result) => result.success).length;
    return {
      results: finished,
      totalRequested: items.length,
      totalSucceeded: succeeded,
      totalFailed: items.length - succeeded,
    };
  }

  async get(id: string): Promise<Delivery> {
    return this.#context.repository.getDelivery(requireId(id, 'deliveryId'));
  }

  async attempts(id: string): Promise<DeliveryAttempt[]> {
    return this.#context.repository.getDeliveryAttempts(requireId(id, 'deliveryId'));
  }

  /**
   * Makes a delivery due now. Unlike go-hookd this is fenced: a delivery being attempted right
   * now is refused (`HOOKD_ERR_DELIVERY_IN_PROGRESS`) instead of racing the worker, and a
   * dead-lettered one gets at least one more attempt.
   */
  async retry(id: string): Promise<Delivery> {
    const delivery = await this.#context.repository.retryDelivery(requireId(id, 'deliveryId'));
    this.#queued(delivery, 'manual');
    this.#context.wake();
    return delivery;
  }

  async list(filter: unknown): Promise<Delivery[]> {
    return this.#context.repository.listDeliveries(validateDeliveryFilter(filter));
  }

  #subscriptionItem(valid: ValidQueueDelivery, subscription: Subscription): NewDeliveryItem {
    if (subscription.status !== 'active') {
      throw new HookdError(
        'HOOKD_ERR_SUBSCRIPTION_NOT_ACTIVE',
        `subscription ${subscription.id} is ${subscription.status}`,
        {
          field: 'subscriptionId',
        },
      );
    }
    if (!matchesAnyEventType(subscription.eventTypes, valid.eventType)) {
      throw new HookdError(
        'HOOKD_ERR_EVENT_TYPE_MISMATCH',
        `event type ${JSON.stringify(valid.eventType)} does not match the subscription's event types`,
        { field: 'eventType' },
      );
    }
    if (!matchesMetadata(subscription.filters, valid.metadata)) {
      throw new HookdError(
        'HOOKD_ERR_METADATA_FILTER_MISMATCH',
        "event metadata does not match subscription's filter criteria",
        {
          field: 'metadata',
        },
      );
    }
    const delivery: NewDelivery = {
      id: generateDeliveryId(),
      subscriptionId: subscription.id,
      tenantId: subscription.tenantId,
      eventType: valid.eventType,
      body: valid.body,
      maxAttempts: subscription.retryPolicy.maxAttempts,
      attemptBudget: subscription.retryPolicy.maxAttempts,
      url: null,
      secret: null,
      idempotencyKey: valid.idempotencyKey,
      traceContext: this.#traceContext(),
    };
    return { delivery, idempotency: this.#claim(valid.idempotencyKey, subscription.id) };
  }

  #traceContext(): string | null {
    return this.#context.tracing?.currentTraceparent() ?? null;
  }

  #claim(key: string | null, scope: string): IdempotencyClaim | undefined {
    if (key === null) return undefined;
    return { key, scope, ttlMs: this.#context.config.idempotencyTtlHours * 3_600_000 };
  }

  #queued(delivery: Delivery, source: 'api' | 'manual' = 'api'): void {
    this.#context.publish('delivery.queued', queuedEvent(delivery, source, new Date()));
  }
}

/**
 * The idempotency scope of inline deliveries: one key namespace per tenant and endpoint
 * (`inline:` + hex SHA-256 of tenant, NUL, URL). The URL is already normalised, so scheme and
 * host case do not matter.
 */
export function inlineIdempotencyScope(tenantId: string, url: string): string {
  const digest = createHash('sha256').update(tenantId).update('\u0000').update(url).digest('hex');
  return `${INLINE_IDEMPOTENCY_SCOPE_PREFIX}${digest}`;
}

/**
 * Checks the outer shape of a batch request (go-hookd §1.7) and returns a dense copy of its
 * list: holes in a sparse array become `undefined` items (reported per item), and a list that
 * cannot even be read (a throwing getter, a revoked proxy) is a validation error.
 */
export function batchItems<T>(request: unknown, field: string): ReadonlyArray<T | undefined> {
  if (request === null || typeof request !== 'object')
    throw invalidArgument('request', 'request is required');
  let items: unknown[];
  try {
    const list = (request as Record<string, unknown>)[field];
    if (!Array.isArray(list)) throw invalidArgument(field, `${field} must be an array`);
    items = Array.from(list as unknown[]);
  } catch (error) {
    if (isHookdError(error)) throw error;
    throw new HookdError('HOOKD_ERR_INVALID_ARGUMENT', `${field} could not be read`, {
      field,
      cause: error,
    });
  }
  if (items.length === 0) throw invalidArgument(field, `at least one item is required in ${field}`);
  if (items.length > MAX_BATCH_ITEMS)
    throw invalidArgument(field, `batch size exceeds maximum (${MAX_BATCH_ITEMS})`);
  return items as Array<T | undefined>;
}

/** A serialisable per-item error. */
export function itemError(error: unknown): ItemError {
  if (isHookdError(error)) {
    return {
      code: error.code,
      message: error.message,
      ...(error.field === undefined ? {} : { field: error.field }),
    };
  }
  return {
    code: 'HOOKD_ERR_INTERNAL',
    message: error instanceof Error ? error.message : 'item was not processed',
  };
}
