import type { Dispatcher } from 'undici';

import { MAX_RESPONSE_BODY_LENGTH } from '../constants.js';
import { buildDeliveryHeaders } from '../delivery/request-headers.js';
import { sendWebhook, type AbortHandle, type RequestTargets } from '../delivery/http-sender.js';
import { generateAttemptId } from '../ids.js';
import type { Logger } from '../logger.js';
import type { DeliveryAttempt, RetryPolicy } from '../models.js';
import type { ClaimedDelivery } from '../repository/repository.js';
import {
  classifyAttempt,
  decideAfterAttempt,
  type AttemptClass,
  type AttemptDecision,
} from '../retry/outcome.js';
import type { SecretResolver } from '../secret.js';
import type { Tracing } from '../telemetry/tracing.js';

/**
 * One attempt of one claimed delivery: resolve the target and the secret, sign, send, and
 * decide what the result means. Writes nothing: the worker pool records the report.
 */

/** The opaque text recorded when no signing key could be obtained (go-hookd §1.11). */
export const SECRET_UNAVAILABLE_MESSAGE = 'webhook signing secret unavailable';

/** What an attempt needs from the manager. */
export interface AttemptContext {
  readonly dispatcher: Dispatcher;
  /** Requests the dispatcher carries to one origin at once: the worker pool's per-origin cap. */
  readonly requestsPerOrigin: number;
  /** Parsed webhook URLs, remembered for this manager. */
  readonly targets: RequestTargets;
  readonly deliveryTimeoutMs: number;
  readonly retryJitter: number;
  readonly secretResolver: SecretResolver;
  /** Whether the resolver is the stored-secret default (which may return '' for inline deliveries). */
  readonly emptySecretAllowed: boolean;
  /** Retry policy of inline deliveries (the manager's default policy). */
  readonly inlinePolicy: RetryPolicy;
  readonly logger: Logger;
  readonly now: () => number;
  readonly random: () => number;
  /** OpenTelemetry hooks, when a tracer is configured. */
  readonly tracing: Tracing | null;
}

/** The result of an attempt. */
export interface AttemptReport {
  readonly attempt: DeliveryAttempt;
  readonly decision: AttemptDecision;
  /** What the attempt says about the endpoint's health, or `null` when it says nothing. */
  readonly circuitEvent: 'success' | 'failure' | null;
  /** Whether an HTTP request left the process. */
  readonly sent: boolean;
}

/**
 * Runs the attempt. `onSend` is called right before the request goes out (for
 * `delivery.started`); `abort` cuts the request short when the manager stops.
 */
export async function performAttempt(
  item: ClaimedDelivery,
  context: AttemptContext,
  abort: AbortHandle,
  onSend: () => void,
): Promise<AttemptReport> {
  const attemptedAt = new Date(context.now());
  const policy = item.subscription?.retryPolicy ?? context.inlinePolicy;
  const url = item.url ?? item.subscription?.url ?? null;
  if (url === null || url === '') {
    return notSent(item, context, attemptedAt, policy, 'delivery has no target URL', 'permanent');
  }
  const secret = await resolveSecret(item, context);
  if (secret === null) {
    return notSent(item, context, attemptedAt, policy, SECRET_UNAVAILABLE_MESSAGE, 'retryable');
  }

  const span =
    context.tracing?.startAttempt({
      url,
      deliveryId: item.id,
      subscriptionId: item.subscriptionId,
      tenantId: item.tenantId,
      eventType: item.eventType,
      attemptNumber: item.attemptCount,
      queuedTraceparent: item.traceContext ?? null,
    }) ?? null;
  const headers = buildDeliveryHeaders({
    deliveryId: item.id,
    subscriptionId: item.subscriptionId,
    eventType: item.eventType,
    attemptNumber: item.attemptCount,
    idempotencyKey: item.idempotencyKey,
    customHeaders: item.subscription?.headers ?? {},
    secret,
    body: item.body,
    timestampSeconds: Math.floor(context.now() / 1000),
    traceparent: span?.traceparent,
  });
  onSend();
  const response = await sendWebhook(
    context.dispatcher,
    {
      url,
      headers,
      body: item.body,
      timeoutMs: context.deliveryTimeoutMs,
      bodyLimit: MAX_RESPONSE_BODY_LENGTH,
      abort,
    },
    context.targets,
  );

  const attemptClass = classifyAttempt(response.statusCode, response.failure !== null);
  const attempt: DeliveryAttempt = {
    id: generateAttemptId(),
    deliveryId: item.id,
    attemptNumber: item.attemptCount,
    statusCode: response.statusCode,
    responseBody: response.body,
    responseHeaders: response.headers,
    error: response.error,
    durationMs: response.durationMs,
    attemptedAt,
  };
  if (response.failure === 'aborted') {
    // Cut short by our own shutdown: says nothing about the receiver, so it is retried at once
    // and does not count against the endpoint's circuit.
    span?.end({ statusCode: 0, failure: 'aborted', outcome: 'retry' });
    return { attempt, decision: { outcome: 'retry', delayMs: 0 }, circuitEvent: null, sent: true };
  }
  const decision = decideAfterAttempt({
    attemptClass,
    statusCode: response.statusCode,
    attemptCount: item.attemptCount,
    maxAttempts: item.maxAttempts,
    attemptBudget: item.attemptBudget,
    policy,
    jitter: context.retryJitter,
    retryAfter: response.retryAfter,
    nowMs: context.now(),
    random: context.random,
  });
  span?.end({
    statusCode: response.statusCode,
    failure: response.failure,
    outcome: decision.outcome,
  });
  return { attempt, decision, circuitEvent: circuitEventOf(attemptClass), sent: true };
}

/**
 * A 4xx answer means "this request is wrong", not "this endpoint is down", so only retryable
 * failures count against the circuit.
 */
function circuitEventOf(attemptClass: AttemptClass): 'success' | 'failure' | null {
  switch (attemptClass) {
    case 'success':
      return 'success';
    case 'retryable':
      return 'failure';
    case 'permanent':
      return null;
  }
}

function notSent(
  item: ClaimedDelivery,
  context: AttemptContext,
  attemptedAt: Date,
  policy: RetryPolicy,
  error: string,
  attemptClass: AttemptClass,
): AttemptReport {
  const attempt: DeliveryAttempt = {
    id: generateAttemptId(),
    deliveryId: item.id,
    attemptNumber: item.attemptCount,
    statusCode: 0,
    responseBody: null,
    responseHeaders: {},
    error,
    durationMs: Math.max(0, context.now() - attemptedAt.getTime()),
    attemptedAt,
  };
  const decision = decideAfterAttempt({
    attemptClass,
    statusCode: 0,
    attemptCount: item.attemptCount,
    maxAttempts: item.maxAttempts,
    attemptBudget: item.attemptBudget,
    policy,
    jitter: context.retryJitter,
    retryAfter: null,
    nowMs: context.now(),
    random: context.random,
  });
  // Our own failure (no secret, no URL) says nothing about the endpoint.
  return { attempt, decision, circuitEvent: null, sent: false };
}

/**
 * Resolves the signing key once per attempt (never cached, so rotated vault secrets take effect
 * at once). Fails closed: a subscription whose tenant differs from the delivery's, a resolver
 * error, an empty key from a custom resolver, or a resolver slower than the delivery timeout
 * all yield `null` — nothing is sent. The log names the delivery and the kind of failure, never
 * the resolver's message (it may name a vault path).
 */
async function resolveSecret(
  item: ClaimedDelivery,
  context: AttemptContext,
): Promise<string | null> {
  const subscription = item.subscription;
  const fields = {
    deliveryId: item.id,
    tenantId: item.tenantId,
    subscriptionId: item.subscriptionId,
  };
  if (subscription && subscription.tenantId !== item.tenantId) {
    context.logger.warn(
      { ...fields, reason: 'tenant_mismatch' },
      'signing secret refused: delivery and subscription tenants differ',
    );
    return null;
  }
  const ref = subscription?.secret ?? item.inlineSecret ?? '';
  let timer: NodeJS.Timeout | undefined;
  try {
    let resolved: unknown = context.secretResolver.resolve({
      ref,
      tenantId: item.tenantId,
      subscriptionId: item.subscriptionId,
      deliveryId: item.id,
      idempotencyKey: item.idempotencyKey,
    });
    // Only a resolver that answers later can be too slow; a synchronous answer (the default
    // resolver's) needs no timer and no race, which cost more than the rest of this function.
    if (isThenable(resolved)) {
      resolved = await Promise.race([
        resolved,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error('secret resolver timed out')),
            context.deliveryTimeoutMs,
          );
        }),
      ]);
    }
    if (typeof resolved !== 'string' || (resolved === '' && !context.emptySecretAllowed)) {
      context.logger.warn(
        { ...fields, reason: 'empty' },
        'signing secret unavailable: resolver returned no secret',
      );
      return null;
    }
    return resolved;
  } catch (error) {
    context.logger.warn(
      {
        ...fields,
        reason: 'resolver_error',
        errorType: error instanceof Error ? error.constructor.name : typeof error,
      },
      'signing secret unavailable: resolver failed',
    );
    return null;
  } finally {
    clearTimeout(timer);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
