import type {
  AttemptOutcome,
  CircuitBreakerEvent,
  DeliveryAttemptEvent,
  DeliveryQueuedEvent,
  DeliveryStartedEvent,
  HookdEventMap,
  Topic,
} from './events.js';
import type { Delivery, DeliveryStatus } from './models.js';
import type { CircuitTransition } from './retry/circuit-breaker.js';

/** Publishes one event; never throws (the manager's safe wrapper around the bus). */
export type Publish = <T extends Topic>(topic: T, event: HookdEventMap[T]) => void;

/** The delivery fields events are built from (a claimed delivery has no parsed payload). */
export type DeliveryFields = Omit<Delivery, 'payload'>;

// Every builder writes its event as one object literal: these run for every attempt, and an
// object spread costs V8 several microseconds against a fraction of one for a literal. The event
// types make the compiler check that no field is missing.

/** `delivery.queued`. */
export function queuedEvent(
  delivery: DeliveryFields,
  source: DeliveryQueuedEvent['source'],
  timestamp: Date,
): DeliveryQueuedEvent {
  return {
    timestamp,
    deliveryId: delivery.id,
    subscriptionId: delivery.subscriptionId,
    tenantId: delivery.tenantId,
    eventType: delivery.eventType,
    status: delivery.status,
    idempotencyKey: delivery.idempotencyKey,
    attemptCount: delivery.attemptCount,
    maxAttempts: delivery.maxAttempts,
    createdAt: delivery.createdAt,
    source,
  };
}

/** `delivery.started`: the attempt about to be sent is the claim's `attemptCount`. */
export function startedEvent(delivery: DeliveryFields, timestamp: Date): DeliveryStartedEvent {
  return {
    timestamp,
    deliveryId: delivery.id,
    subscriptionId: delivery.subscriptionId,
    tenantId: delivery.tenantId,
    eventType: delivery.eventType,
    status: 'pending',
    idempotencyKey: delivery.idempotencyKey,
    attemptCount: delivery.attemptCount,
    maxAttempts: delivery.maxAttempts,
    createdAt: delivery.createdAt,
    attemptNumber: delivery.attemptCount,
  };
}

/** The payload of the post-attempt topics. */
export function attemptEvent(
  delivery: DeliveryFields,
  details: {
    readonly status: DeliveryStatus;
    readonly outcome: AttemptOutcome;
    readonly attemptNumber: number;
    readonly statusCode: number;
    readonly durationMs: number;
    readonly error: string | null;
    readonly nextRetryAt: Date | null;
  },
  timestamp: Date,
): DeliveryAttemptEvent {
  return {
    timestamp,
    deliveryId: delivery.id,
    subscriptionId: delivery.subscriptionId,
    tenantId: delivery.tenantId,
    eventType: delivery.eventType,
    status: details.status,
    idempotencyKey: delivery.idempotencyKey,
    attemptCount: delivery.attemptCount,
    maxAttempts: delivery.maxAttempts,
    createdAt: delivery.createdAt,
    attemptNumber: details.attemptNumber,
    outcome: details.outcome,
    statusCode: details.statusCode,
    durationMs: details.durationMs,
    error: details.error,
    nextRetryAt: details.nextRetryAt,
  };
}

/** Publishes a circuit transition on the topic of its new state. */
export function publishCircuitTransition(publish: Publish, transition: CircuitTransition): void {
  const event: CircuitBreakerEvent = {
    timestamp: transition.at,
    endpoint: transition.endpoint,
    state: transition.to,
    previousState: transition.from,
    failureCount: transition.failureCount,
  };
  switch (transition.to) {
    case 'open':
      publish('circuit.opened', event);
      break;
    case 'half_open':
      publish('circuit.half_open', event);
      break;
    case 'closed':
      publish('circuit.closed', event);
      break;
  }
}
