import type { CircuitState, DeliveryStatus, QueueDepth, SubscriptionStatus } from './models.js';

/**
 * Everything node-hookd does is published on an {@link EventBus} under a dotted topic (the
 * go-hookd topics, all of them really published). Payloads are single objects so fields can be
 * added without breaking subscribers. Events are notifications after the fact: a subscriber can
 * neither veto nor slow down a delivery, and a throwing subscriber is isolated and logged.
 */
export const TOPICS = {
  deliveryQueued: 'delivery.queued',
  deliveryStarted: 'delivery.started',
  deliverySuccess: 'delivery.success',
  deliveryFailed: 'delivery.failed',
  deliveryDeadLetter: 'delivery.dead_letter',
  circuitOpened: 'circuit.opened',
  circuitHalfOpen: 'circuit.half_open',
  circuitClosed: 'circuit.closed',
  metricsDeliveryAttempt: 'metrics.delivery_attempt',
  metricsRetryTriggered: 'metrics.retry_triggered',
  metricsQueueDepth: 'metrics.queue_depth',
  subscriptionCreated: 'audit.subscription_created',
  subscriptionUpdated: 'audit.subscription_updated',
  subscriptionDeleted: 'audit.subscription_deleted',
  maintenanceCleanup: 'maintenance.cleanup',
  workerError: 'worker.error',
} as const;

/** Fields every delivery event carries. */
export interface DeliveryEvent {
  readonly timestamp: Date;
  readonly deliveryId: string;
  /** `null` for inline deliveries. */
  readonly subscriptionId: string | null;
  readonly tenantId: string;
  readonly eventType: string;
  /** The delivery's status at this moment. */
  readonly status: DeliveryStatus;
  readonly idempotencyKey: string | null;
  readonly attemptCount: number;
  readonly maxAttempts: number;
  /** When the delivery was queued (for queue-to-delivery latency). */
  readonly createdAt: Date;
}

/** `delivery.queued`: a delivery was stored and is due. */
export interface DeliveryQueuedEvent extends DeliveryEvent {
  /** `api` for new deliveries, `dead_letter` for redrives, `manual` for `retryDelivery`. */
  readonly source: 'api' | 'dead_letter' | 'manual';
}

/** `delivery.started`: an attempt is about to be sent. */
export interface DeliveryStartedEvent extends DeliveryEvent {
  readonly attemptNumber: number;
}

/** What the attempt did to the delivery. */
export type AttemptOutcome = 'success' | 'retry' | 'dead_letter';

/**
 * `delivery.success`, `delivery.failed`, `delivery.dead_letter`, `metrics.retry_triggered`
 * and `metrics.delivery_attempt`: an attempt finished and its result was recorded.
 */
export interface DeliveryAttemptEvent extends DeliveryEvent {
  readonly attemptNumber: number;
  readonly outcome: AttemptOutcome;
  /** HTTP status, or 0 when no response arrived. */
  readonly statusCode: number;
  readonly durationMs: number;
  /** The attempt's error text (transport failure, refused destination …), else `null`. */
  readonly error: string | null;
  /** When the next attempt is due, for `retry` outcomes. */
  readonly nextRetryAt: Date | null;
}

/** `circuit.opened`, `circuit.half_open`, `circuit.closed`. */
export interface CircuitBreakerEvent {
  readonly timestamp: Date;
  /** The endpoint URL the breaker guards. */
  readonly endpoint: string;
  readonly state: CircuitState;
  readonly previousState: CircuitState;
  readonly failureCount: number;
}

/** `audit.subscription_created` / `_updated` / `_deleted`. */
export interface AuditEvent {
  readonly timestamp: Date;
  /** The topic, repeated for consumers that store events of several topics together. */
  readonly type:
    'audit.subscription_created' | 'audit.subscription_updated' | 'audit.subscription_deleted';
  /** The subscription id. */
  readonly resourceId: string;
  readonly tenantId: string;
  readonly url: string;
  readonly eventTypes: readonly string[];
  readonly status: SubscriptionStatus;
  /** For updates: the fields that changed. */
  readonly changes: readonly string[];
}

/** `metrics.queue_depth`: periodic counts read from the repository. */
export interface QueueDepthEvent extends QueueDepth {
  readonly timestamp: Date;
}

/** `maintenance.cleanup`: a cleanup deleted rows (not published for dry runs or zero deletions). */
export interface CleanupEvent {
  readonly timestamp: Date;
  readonly type: 'deliveries' | 'idempotency_keys' | 'dead_letters';
  readonly deletedCount: number;
  readonly attemptsDeleted: number;
  readonly tenantId: string | null;
  readonly statuses: readonly string[];
  readonly createdBefore: Date | null;
}

/**
 * `worker.error`: a background operation failed (claiming, recording an outcome, a wake-up
 * listener). The worker keeps going; this is the place to alert.
 */
export interface WorkerErrorEvent {
  readonly timestamp: Date;
  readonly operation: string;
  readonly error: Error;
}

/** Payload type of each topic. */
export interface HookdEventMap {
  'delivery.queued': DeliveryQueuedEvent;
  'delivery.started': DeliveryStartedEvent;
  'delivery.success': DeliveryAttemptEvent;
  'delivery.failed': DeliveryAttemptEvent;
  'delivery.dead_letter': DeliveryAttemptEvent;
  'circuit.opened': CircuitBreakerEvent;
  'circuit.half_open': CircuitBreakerEvent;
  'circuit.closed': CircuitBreakerEvent;
  'metrics.delivery_attempt': DeliveryAttemptEvent;
  'metrics.retry_triggered': DeliveryAttemptEvent;
  'metrics.queue_depth': QueueDepthEvent;
  'audit.subscription_created': AuditEvent;
  'audit.subscription_updated': AuditEvent;
  'audit.subscription_deleted': AuditEvent;
  'maintenance.cleanup': CleanupEvent;
  'worker.error': WorkerErrorEvent;
}

/** Every topic name. */
export type Topic = keyof HookdEventMap;

/** A subscriber of one topic. A returned promise is not awaited; its rejection is caught. */
export type EventHandler<T extends Topic> = (event: HookdEventMap[T]) => void | Promise<void>;

/**
 * Where node-hookd publishes (go-hookd's `EventBus`). Implement it to forward events elsewhere
 * (a log, a broker), or use {@link InProcessEventBus}. `publish` must not throw and should return
 * quickly: it runs on the delivery path.
 */
export interface EventBus {
  publish<T extends Topic>(topic: T, event: HookdEventMap[T]): void;
  /** Registers a handler and returns the function that removes it. */
  subscribe<T extends Topic>(topic: T, handler: EventHandler<T>): () => void;
}

/** Called with a subscriber's error; the default drops it (the manager passes its logger). */
export type SubscriberErrorHandler = (error: unknown, topic: Topic) => void;

/**
 * The default bus: handlers run synchronously in subscription order; each is isolated, so one
 * that throws (or returns a rejected promise) neither reaches the publisher nor stops the others.
 */
export class InProcessEventBus implements EventBus {
  readonly #handlers = new Map<Topic, Set<EventHandler<Topic>>>();
  readonly #onSubscriberError: SubscriberErrorHandler;

  constructor(options: { onSubscriberError?: SubscriberErrorHandler } = {}) {
    this.#onSubscriberError = options.onSubscriberError ?? (() => undefined);
  }

  publish<T extends Topic>(topic: T, event: HookdEventMap[T]): void {
    const handlers = this.#handlers.get(topic);
    if (!handlers) return;
    for (const handler of [...handlers]) {
      try {
        const result = (handler as EventHandler<T>)(event);
        if (result && typeof result.then === 'function') {
          result.then(undefined, (error: unknown) => this.#report(error, topic));
        }
      } catch (error) {
        this.#report(error, topic);
      }
    }
  }

  // The reporter is the application's code too (a logger): if it throws, the error must neither
  // reach the publisher, nor skip the remaining handlers, nor become an unhandled rejection.
  #report(error: unknown, topic: Topic): void {
    try {
      this.#onSubscriberError(error, topic);
    } catch {
      // Nothing left to tell.
    }
  }

  subscribe<T extends Topic>(topic: T, handler: EventHandler<T>): () => void {
    let handlers = this.#handlers.get(topic);
    if (!handlers) {
      handlers = new Set();
      this.#handlers.set(topic, handlers);
    }
    // A fresh wrapper per subscription, so subscribing the same function twice and unsubscribing
    // once removes exactly one registration.
    const registration: EventHandler<Topic> = (event) => handler(event as HookdEventMap[T]);
    handlers.add(registration);
    return () => {
      handlers.delete(registration);
    };
  }

  /** Number of handlers on `topic` (useful in tests and for skipping costly event assembly). */
  listenerCount(topic: Topic): number {
    return this.#handlers.get(topic)?.size ?? 0;
  }
}

/**
 * Combines several buses into one: `publish` reaches every bus even when one throws (the errors
 * are rethrown together afterwards, for the manager to log) and then the combined bus's own
 * subscribers; `subscribe` registers on the combined bus only, so a handler sees each event once
 * however many buses there are. Subscribe to a member bus directly to see only its traffic.
 */
export function fanOut(...buses: EventBus[]): EventBus {
  // The combined bus's own subscribers are isolated like any InProcessEventBus's. Errors they
  // throw during publish are rethrown with the member buses' ones, so the manager logs them; a
  // promise one returns that rejects later has no caller left to tell, so it becomes a process
  // warning rather than vanishing.
  let collecting: unknown[] | null = null;
  const local = new InProcessEventBus({
    onSubscriberError: (error, topic) => {
      if (collecting) collecting.push(error);
      else {
        process.emitWarning(`node-hookd event subscriber failed on ${topic}: ${String(error)}`, {
          code: 'HOOKD_SUBSCRIBER_ERROR',
        });
      }
    },
  });
  return {
    publish(topic, event) {
      const errors: unknown[] = [];
      for (const bus of buses) {
        try {
          bus.publish(topic, event);
        } catch (error) {
          errors.push(error);
        }
      }
      collecting = errors;
      try {
        local.publish(topic, event);
      } finally {
        collecting = null;
      }
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) {
        throw new AggregateError(
          errors,
          `${errors.length} event buses or subscribers failed on ${topic}`,
        );
      }
    },
    subscribe(topic, handler) {
      return local.subscribe(topic, handler);
    },
  };
}
