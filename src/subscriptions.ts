import {
  MAX_TEST_RESPONSE_BODY_LENGTH,
  TEST_PING_EVENT_TYPE,
  TEST_PING_MESSAGE,
  TEST_SUBSCRIPTION_COOLDOWN_MS,
} from './constants.js';
import { sendWebhook } from './delivery/http-sender.js';
import { buildDeliveryHeaders } from './delivery/request-headers.js';
import { HookdError } from './errors.js';
import type { AuditEvent } from './events.js';
import { generateSubscriptionId, generateTestPingId } from './ids.js';
import type { Subscription, SubscriptionStatus, TestResult } from './models.js';
import { subscriptionRecord } from './records.js';
import { resolveSigningSecret, SECRET_UNAVAILABLE_MESSAGE } from './resolve-secret.js';
import type { ServiceContext } from './service-context.js';
import {
  requireId,
  resolveRetryPolicy,
  validateCreateSubscription,
  validateSubscriptionFilter,
  validateUpdateSubscription,
  type CreateSubscriptionRequest,
  type UpdateSubscriptionRequest,
} from './validation.js';

/** Subscription operations (go-hookd §1.5). */
export class SubscriptionService {
  readonly #context: ServiceContext;
  /** subscription id → end of its `testSubscription` cooldown (epoch ms). */
  readonly #testCooldowns = new Map<string, number>();

  constructor(context: ServiceContext) {
    this.#context = context;
  }

  async create(request: CreateSubscriptionRequest | undefined): Promise<Subscription> {
    const { repository, egressPolicy, defaultPolicy } = this.#context;
    const valid = validateCreateSubscription(request, egressPolicy, defaultPolicy);
    const now = new Date();
    const subscription = subscriptionRecord({
      id: generateSubscriptionId(),
      tenantId: valid.tenantId,
      url: valid.url,
      secret: valid.secret,
      status: 'active',
      eventTypes: valid.eventTypes,
      filters: valid.filters,
      retryPolicy: valid.retryPolicy,
      headers: valid.headers,
      metadata: valid.metadata,
      createdAt: now,
      updatedAt: now,
    });
    // Uniqueness of (tenant, url) is the repository's job: a pre-check here would race.
    await repository.createSubscription(subscription);
    this.#audit('audit.subscription_created', subscription, []);
    return subscription;
  }

  async get(id: string): Promise<Subscription> {
    return this.#context.repository.getSubscription(requireId(id, 'subscriptionId'));
  }

  async update(id: string, request: UpdateSubscriptionRequest): Promise<Subscription> {
    const { repository, egressPolicy } = this.#context;
    requireId(id, 'subscriptionId');
    const changes = validateUpdateSubscription(request, egressPolicy);
    const current = await repository.getSubscription(id);
    const next = {
      ...current,
      secret: current.secret,
      ...(changes.url !== undefined ? { url: changes.url } : {}),
      ...(changes.eventTypes !== undefined ? { eventTypes: changes.eventTypes } : {}),
      ...(changes.status !== undefined ? { status: changes.status } : {}),
      ...(changes.headers !== undefined ? { headers: changes.headers } : {}),
      ...(changes.metadata !== undefined ? { metadata: changes.metadata } : {}),
      ...(changes.filters !== undefined ? { filters: changes.filters } : {}),
      ...(changes.retryPolicy !== undefined
        ? { retryPolicy: resolveRetryPolicy(changes.retryPolicy, current.retryPolicy) }
        : {}),
    };
    const changed = changedFields(current, next, changes.status !== undefined);
    if (changed.length === 0) return current;
    const updated = subscriptionRecord({ ...next, updatedAt: new Date() });
    if (current.status !== 'active' && updated.status === 'active') {
      await this.#activate(updated);
    } else {
      await repository.updateSubscription(updated);
    }
    this.#audit('audit.subscription_updated', updated, changed);
    return updated;
  }

  /**
   * Writes a subscription that becomes active and, in the same transaction, makes the deliveries
   * it held while paused or disabled due now: either both happen or neither does.
   */
  async #activate(updated: Subscription): Promise<void> {
    const { repository, logger } = this.#context;
    const tx = await repository.beginTx();
    let woken: number;
    try {
      await tx.updateSubscription(updated);
      woken = await tx.wakeSubscriptionDeliveries(updated.id);
      await tx.commit();
    } catch (error) {
      await tx
        .rollback()
        .catch((rollbackError: unknown) =>
          logger.warn(
            { error: rollbackError, subscriptionId: updated.id },
            'rollback after a failed resume failed',
          ),
        );
      throw error;
    }
    if (woken > 0) this.#context.wake();
  }

  async setStatus(id: string, status: SubscriptionStatus): Promise<Subscription> {
    return this.update(id, { status });
  }

  async delete(id: string): Promise<void> {
    const { repository } = this.#context;
    const subscription = await repository.getSubscription(requireId(id, 'subscriptionId'));
    await repository.deleteSubscription(id);
    this.#audit('audit.subscription_deleted', subscription, []);
  }

  async list(filter: unknown): Promise<Subscription[]> {
    return this.#context.repository.listSubscriptions(validateSubscriptionFilter(filter));
  }

  /**
   * Sends a signed `test.ping` to the subscription's endpoint once and reports what came back
   * (go-hookd §3.15). Allowed once per subscription every 10 s per manager; writes nothing,
   * publishes nothing, never retries, ignores the circuit breaker and the subscription status.
   */
  async test(id: string): Promise<TestResult> {
    const context = this.#context;
    const subscription = await context.repository.getSubscription(requireId(id, 'subscriptionId'));
    // The cooldown slot is taken only after the lookup, so unknown ids cannot grow the map.
    this.#takeTestSlot(subscription.id);

    const pingId = generateTestPingId();
    // The ping's tenant is the subscription's own, so the tenant guard passes by construction; the
    // shared path still brings the resolver timeout and the warning a real attempt would log.
    const secret = await resolveSigningSecret(
      {
        ref: subscription.secret,
        tenantId: subscription.tenantId,
        subscriptionId: subscription.id,
        deliveryId: pingId,
        idempotencyKey: null,
      },
      subscription.tenantId,
      {
        secretResolver: context.secretResolver,
        emptySecretAllowed: context.emptySecretAllowed,
        deliveryTimeoutMs: context.config.deliveryTimeoutMs,
        logger: context.logger,
      },
    );
    if (secret === null) {
      return {
        success: false,
        pingId,
        statusCode: 0,
        responseTimeMs: 0,
        responseBody: null,
        error: SECRET_UNAVAILABLE_MESSAGE,
      };
    }
    // Stamped once the key is known, as attempts are: a slow vault must not age the signature.
    const timestampSeconds = Math.floor(this.#context.now() / 1000);
    const body = JSON.stringify({
      message: TEST_PING_MESSAGE,
      timestamp: timestampSeconds,
      type: TEST_PING_EVENT_TYPE,
    });
    const headers = buildDeliveryHeaders({
      deliveryId: pingId,
      subscriptionId: subscription.id,
      eventType: TEST_PING_EVENT_TYPE,
      attemptNumber: 1,
      idempotencyKey: null,
      customHeaders: subscription.headers,
      secret,
      body,
      timestampSeconds,
      signingKeys: context.signingKeys,
    });
    const response = await sendWebhook(context.dispatcher(), {
      url: subscription.url,
      headers,
      body,
      timeoutMs: context.config.deliveryTimeoutMs,
      bodyLimit: MAX_TEST_RESPONSE_BODY_LENGTH,
    });
    if (response.failure !== null) {
      return {
        success: false,
        pingId,
        statusCode: 0,
        responseTimeMs: response.durationMs,
        responseBody: null,
        error: response.error,
      };
    }
    const success = response.statusCode >= 200 && response.statusCode <= 299;
    return {
      success,
      pingId,
      statusCode: response.statusCode,
      responseTimeMs: response.durationMs,
      responseBody: response.body,
      error: success ? null : `endpoint returned status ${response.statusCode}`,
    };
  }

  #takeTestSlot(subscriptionId: string): void {
    const now = Date.now();
    for (const [id, until] of this.#testCooldowns) if (until <= now) this.#testCooldowns.delete(id);
    const until = this.#testCooldowns.get(subscriptionId);
    if (until !== undefined) {
      const retryAfterMs = until - now;
      throw new HookdError(
        'HOOKD_ERR_TEST_RATE_LIMITED',
        `test subscription rate limited, try again in ${Math.ceil(retryAfterMs / 1000)} seconds`,
        { field: 'subscriptionId', details: { retryAfterMs } },
      );
    }
    this.#testCooldowns.set(subscriptionId, now + TEST_SUBSCRIPTION_COOLDOWN_MS);
  }

  #audit(type: AuditEvent['type'], subscription: Subscription, changes: readonly string[]): void {
    this.#context.publish(type, {
      timestamp: new Date(),
      type,
      resourceId: subscription.id,
      tenantId: subscription.tenantId,
      url: subscription.url,
      eventTypes: subscription.eventTypes,
      status: subscription.status,
      changes,
    });
  }
}

const COMPARED_FIELDS = [
  'url',
  'eventTypes',
  'status',
  'retryPolicy',
  'headers',
  'metadata',
  'filters',
] as const;

function changedFields(
  before: Subscription,
  after: Omit<Subscription, 'createdAt' | 'updatedAt'>,
  statusRequested: boolean,
): string[] {
  return COMPARED_FIELDS.filter((field) => {
    // A status set explicitly counts as a change even when it is the same (go-hookd writes and
    // publishes it), so pause/resume calls are always audited.
    if (field === 'status') return statusRequested || after.status !== before.status;
    return JSON.stringify(before[field]) !== JSON.stringify(after[field]);
  });
}
