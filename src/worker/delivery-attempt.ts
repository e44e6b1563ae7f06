import type { Dispatcher } from 'undici';

import { MAX_RESPONSE_BODY_LENGTH } from '../constants.js';
import { buildDeliveryHeaders, type SigningKeyCache } from '../delivery/request-headers.js';
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
import { resolveSigningSecret, SECRET_UNAVAILABLE_MESSAGE } from '../resolve-secret.js';
import type { SecretResolver } from '../secret.js';
import type { Tracing } from '../telemetry/tracing.js';

/**
 * One attempt of one claimed delivery: resolve the target and the secret, sign, send, and
 * decide what the result means. Writes nothing: the worker pool records the report.
 */

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
  /** The manager's cache of signing keys. */
  readonly signingKeys: SigningKeyCache;
}

/** The result of an attempt. */
export interface AttemptReport {
  readonly attempt: DeliveryAttempt;
  readonly decision: AttemptDecision;
  /** What the attempt says about the endpoint's health, or `null` when it says nothing. */
  readonly circuitEvent: 'success' | 'failure' | null;
  /** Whether an HTTP request left the process. */
  readonly sent: boolean;
  /** Cut short by this process's shutdown: the delivery keeps a next attempt. */
  readonly aborted?: boolean;
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
  // For subscription deliveries the ref, and so the key, belongs to the subscription's tenant: a
  // delivery row naming another tenant must not get it (the resolver is never even asked).
  const secret = await resolveSigningSecret(
    {
      ref: item.subscription?.secret ?? item.inlineSecret ?? '',
      tenantId: item.tenantId,
      subscriptionId: item.subscriptionId,
      deliveryId: item.id,
      idempotencyKey: item.idempotencyKey,
    },
    item.subscription?.tenantId ?? null,
    context,
  );
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
    signingKeys: context.signingKeys,
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
    // Cut short by our own shutdown: says nothing about the receiver, so it is retried at once,
    // does not count against the endpoint's circuit, and never uses up the last attempt.
    span?.end({ statusCode: 0, failure: 'aborted', outcome: 'retry' });
    return {
      attempt,
      decision: { outcome: 'retry', delayMs: 0 },
      circuitEvent: null,
      sent: true,
      aborted: true,
    };
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
