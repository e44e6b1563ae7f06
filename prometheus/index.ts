/**
 * node-hookd/prometheus: Prometheus metrics for node-hookd through prom-client (an optional peer
 * dependency, loaded only by this entry point). Start with {@link PrometheusCollector}.
 *
 * @packageDocumentation
 */

import { register } from 'prom-client';

import {
  HookdError,
  InProcessEventBus,
  type CircuitBreakerEvent,
  type DeliveryAttemptEvent,
  type DeliveryEvent,
  type EventBus,
  type EventHandler,
  type HookdEventMap,
  type QueueDepthEvent,
  type Topic,
} from '../src/index.js';
import {
  DEFAULT_DURATION_BUCKETS,
  DEFAULT_LATENCY_BUCKETS,
  hookdMetrics,
  type HookdMetrics,
  type PromRegistry,
} from './metrics.js';

export { DEFAULT_DURATION_BUCKETS, DEFAULT_LATENCY_BUCKETS, type PromRegistry };

/** Options of {@link PrometheusCollector}. */
export interface PrometheusCollectorOptions {
  /**
   * Where the metrics are registered: the application's prom-client `Registry`, or `'global'` to
   * opt into prom-client's default `register`. Required, so that metrics never land on the
   * global registry by accident.
   */
  readonly registry: PromRegistry | 'global';
  /** Prepended to every metric name. @default 'hookd_' */
  readonly prefix?: string;
  /** Histogram buckets, in seconds, each list strictly increasing. */
  readonly buckets?: {
    /** `hookd_delivery_duration_seconds`. @default {@link DEFAULT_DURATION_BUCKETS} (go-hookd's) */
    readonly duration?: readonly number[];
    /** `hookd_delivery_latency_seconds`. @default {@link DEFAULT_LATENCY_BUCKETS} */
    readonly latency?: readonly number[];
  };
  /**
   * Turns a circuit's endpoint URL into the `endpoint` label of `hookd_circuit_breaker_state`.
   * The default drops credentials, query and fragment, which often carry tokens that must not
   * reach a metrics store; endpoints that differ only there then share one series (the last
   * transition wins). Return the URL unchanged for go-hookd's labels, or e.g. the host for
   * fewer series.
   */
  readonly endpointLabel?: (endpoint: string) => string;
  /**
   * Called with an error thrown (or a promise rejected) by a handler subscribed through the
   * collector, or with an error updating a metric; the default drops it. Neither ever reaches
   * the publisher. Pass something like `(error, topic) => logger.warn({ error, topic }, …)`.
   */
  readonly onError?: (error: unknown, topic: Topic) => void;
}

const OPTION_KEYS = new Set(['registry', 'prefix', 'buckets', 'endpointLabel', 'onError']);
const METRIC_PREFIX = /^(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?$/;

/**
 * Prometheus metrics for node-hookd, as an {@link EventBus}: give it to the manager
 * (`new Manager(config, repository, { eventBus: collector })`, or `fanOut(collector, otherBus)`
 * to keep another bus). `publish` updates the metrics, then runs the handlers subscribed through
 * the collector, isolated like {@link InProcessEventBus} does; `subscribe` returns a function
 * that really unsubscribes. So `manager.on(…)` keeps working with the collector as the bus.
 *
 * The metrics are computed from the manager's events alone: every name, type, label and bucket
 * of go-hookd's collector, plus latency, oldest-pending age, retries and worker errors. How each
 * one is fed (and why it stays right under retries and across processes) is documented on
 * {@link PrometheusCollector.publish}.
 *
 * Construction registers the metrics, not the import. Collectors on the same registry with
 * the same `prefix` share one set of metrics (so counters add up and nothing is registered
 * twice); a conflicting bucket list throws. For two managers on *different* repositories in one
 * process, give each collector its own registry (merge them with `Registry.merge`) or prefix,
 * otherwise their queue-depth gauges overwrite each other.
 *
 * @example
 * ```ts
 * import { Registry } from 'prom-client';
 * import { Manager } from 'node-hookd';
 * import { PrometheusCollector } from 'node-hookd/prometheus';
 *
 * const registry = new Registry();
 * const collector = new PrometheusCollector({ registry });
 * const manager = new Manager(config, repository, { eventBus: collector });
 * // GET /metrics: respond with `await registry.metrics()` and `registry.contentType`.
 * ```
 */
export class PrometheusCollector implements EventBus {
  readonly #registry: PromRegistry;
  readonly #metrics: HookdMetrics;
  readonly #subscribers: InProcessEventBus;
  readonly #endpointLabel: (endpoint: string) => string;
  readonly #onError: (error: unknown, topic: Topic) => void;
  readonly #recorders: Recorders;

  /**
   * Registers the metrics on `options.registry` (reusing those another collector already
   * registered there).
   * @throws HookdError `HOOKD_ERR_INVALID_CONFIG` (with `field`) for a missing registry, a bad
   *   option, or a registry that already holds a same-named metric of another shape.
   */
  constructor(options: PrometheusCollectorOptions) {
    const valid = checkOptions(options);
    this.#registry = valid.registry;
    this.#endpointLabel = options.endpointLabel ?? redactEndpoint;
    const onError = options.onError;
    this.#onError = (error, topic) => {
      // The bus contract: publish never throws, not even when the error callback does.
      try {
        onError?.(error, topic);
      } catch {
        // Nowhere left to report it.
      }
    };
    this.#subscribers = new InProcessEventBus({ onSubscriberError: this.#onError });
    this.#metrics = hookdMetrics(valid);
    this.#recorders = this.#createRecorders();
  }

  /** The registry the metrics are on (prom-client's `register` for `'global'`). */
  get registry(): PromRegistry {
    return this.#registry;
  }

  /**
   * Updates the metrics from one event, then hands it to the handlers subscribed to `topic`.
   * Never throws; returns after the handlers ran (promises they return are not awaited).
   *
   * How the metrics are fed:
   * - `hookd_deliveries_total{status,event_type,delivery_type}` counts state changes of
   *   deliveries: `queued` per `delivery.queued` (new, `retryDelivery`, dead-letter redrive),
   *   `success` per `delivery.success`, `dead_letter` per `delivery.dead_letter`, and `failed`
   *   per `delivery.failed` whose outcome is `retry` — an attempt failed and the delivery went
   *   back to pending. The `delivery.failed` that accompanies every dead-lettering is not
   *   counted, so a dead-lettered delivery appears once, under `dead_letter`. Every queue entry
   *   thus ends in exactly one `success` or `dead_letter`.
   * - `hookd_delivery_attempts_total{status_code,event_type}` and
   *   `hookd_delivery_duration_seconds{status,event_type}` come from `metrics.delivery_attempt`,
   *   published exactly once per recorded attempt (also for an attempt whose claim was lost,
   *   which sent a request all the same). `status_code` is `2xx`/`3xx`/`4xx`/`5xx`, `error` for
   *   no response (0), else `other`; `status` is `success` or `failed`.
   * - `hookd_retries_total{event_type}`: one per `metrics.retry_triggered`.
   * - `hookd_delivery_latency_seconds{event_type}`: on `delivery.success`, the event's time
   *   minus the delivery's `createdAt` (a redriven delivery keeps its original `createdAt`).
   * - `hookd_circuit_breaker_state{endpoint}`: set to 2, 1, 0 by `circuit.opened`,
   *   `circuit.half_open`, `circuit.closed`. It shows the transitions this process made: a
   *   series appears with an endpoint's first transition here, and other processes sharing the
   *   breaker may have moved it since.
   * - `hookd_queue_depth`, `hookd_dead_letter_queue_size`, `hookd_oldest_pending_age_seconds`:
   *   *set* from each `metrics.queue_depth` (counts the manager reads from the repository every
   *   `queueDepthIntervalMs`), and from nothing else. Adjusting them by delivery events in
   *   between would make them drift — deliveries are queued, delivered, deleted and purged by
   *   other processes, by rolled-back transactions and by cleanups that this process does not
   *   see — whereas each reconciled value is the true global count at a known instant, at most
   *   one interval old, and the same on every process (aggregate them with `max`, not `sum`).
   *   Negative or non-numeric values are never stored. They read 0 until the first
   *   reconciliation, and keep their last value while the manager is stopped.
   * - `hookd_worker_errors_total{operation}`: one per `worker.error`.
   */
  publish<T extends Topic>(topic: T, event: HookdEventMap[T]): void {
    const record = this.#recorders[topic];
    if (record) {
      try {
        record(event);
      } catch (error) {
        this.#onError(error, topic);
      }
    }
    this.#subscribers.publish(topic, event);
  }

  /**
   * Runs `handler` for every event published on `topic` through this collector, after the
   * metrics were updated. Returns the function that removes exactly this subscription.
   */
  subscribe<T extends Topic>(topic: T, handler: EventHandler<T>): () => void {
    return this.#subscribers.subscribe(topic, handler);
  }

  #createRecorders(): Recorders {
    const metrics = this.#metrics;
    const deliveryLabels = (event: DeliveryEvent, status: string) => ({
      status,
      event_type: String(event.eventType),
      delivery_type: event.subscriptionId === null ? 'inline' : 'subscription',
    });
    const circuit = (value: number) => (event: CircuitBreakerEvent) => {
      metrics.circuitState.set({ endpoint: this.#endpointLabel(String(event.endpoint)) }, value);
    };
    return {
      'delivery.queued': (event) => metrics.deliveries.inc(deliveryLabels(event, 'queued')),
      'delivery.success': (event) => {
        metrics.deliveries.inc(deliveryLabels(event, 'success'));
        const latency = secondsBetween(event.createdAt, event.timestamp);
        if (latency !== null)
          metrics.latency.observe({ event_type: String(event.eventType) }, latency);
      },
      'delivery.failed': (event) => {
        // The dead-letter path publishes `delivery.failed` after `delivery.dead_letter`;
        // counting both would count that delivery twice.
        if (event.outcome === 'retry') metrics.deliveries.inc(deliveryLabels(event, 'failed'));
      },
      'delivery.dead_letter': (event) =>
        metrics.deliveries.inc(deliveryLabels(event, 'dead_letter')),
      'metrics.delivery_attempt': (event) => recordAttempt(metrics, event),
      'metrics.retry_triggered': (event) =>
        metrics.retries.inc({ event_type: String(event.eventType) }),
      'circuit.opened': circuit(2),
      'circuit.half_open': circuit(1),
      'circuit.closed': circuit(0),
      'metrics.queue_depth': (event) => recordQueueDepth(metrics, event),
      'worker.error': (event) => metrics.workerErrors.inc({ operation: String(event.operation) }),
    };
  }
}

/** The metric update of each topic the collector reads. */
type Recorders = { readonly [K in Topic]?: (event: HookdEventMap[K]) => void };

function recordAttempt(metrics: HookdMetrics, event: DeliveryAttemptEvent): void {
  const eventType = String(event.eventType);
  metrics.attempts.inc({ status_code: statusCodeClass(event.statusCode), event_type: eventType });
  const seconds = event.durationMs / 1000;
  // A duration that is not a number says nothing; a negative one can only be clock noise.
  if (Number.isFinite(seconds)) {
    metrics.duration.observe(
      { status: event.outcome === 'success' ? 'success' : 'failed', event_type: eventType },
      Math.max(0, seconds),
    );
  }
}

function recordQueueDepth(metrics: HookdMetrics, event: QueueDepthEvent): void {
  setCount(metrics.queueDepth, event.pending);
  setCount(metrics.deadLetterQueueSize, event.deadLetter);
  if (event.oldestPendingAt === null || event.pending === 0) {
    metrics.oldestPendingAge.set(0);
  } else {
    const age = secondsBetween(event.oldestPendingAt, event.timestamp);
    if (age !== null) metrics.oldestPendingAge.set(age);
  }
}

/** Stores a repository count; a value that is not a count leaves the last good one in place. */
function setCount(gauge: HookdMetrics['queueDepth'], value: number): void {
  if (typeof value === 'number' && Number.isFinite(value)) gauge.set(Math.max(0, value));
}

/**
 * Seconds from `from` to `to`, at least 0 (the two can come from different clocks: the
 * repository's and this process's), or `null` when either is not a valid time.
 */
function secondsBetween(from: Date, to: Date): number | null {
  const ms = new Date(to).getTime() - new Date(from).getTime();
  return Number.isFinite(ms) ? Math.max(0, ms) / 1000 : null;
}

/** go-hookd's status-code label: the class of an HTTP status, `error` for no response. */
function statusCodeClass(statusCode: number): string {
  if (statusCode === 0) return 'error';
  if (Number.isInteger(statusCode) && statusCode >= 200 && statusCode <= 599)
    return `${Math.floor(statusCode / 100)}xx`;
  return 'other';
}

/** The default `endpoint` label: the URL without credentials, query and fragment. */
function redactEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    // Not a URL (the engine only ever passes URLs): nothing to strip.
    return endpoint;
  }
  url.username = '';
  url.password = '';
  url.search = '';
  url.hash = '';
  return url.href;
}

interface ValidOptions {
  readonly registry: PromRegistry;
  readonly prefix: string;
  readonly durationBuckets: readonly number[];
  readonly latencyBuckets: readonly number[];
}

function checkOptions(options: PrometheusCollectorOptions): ValidOptions {
  const invalid = (field: string, message: string) =>
    new HookdError('HOOKD_ERR_INVALID_CONFIG', `prometheus: ${message}`, { field });
  if (options === null || typeof options !== 'object') {
    throw invalid(
      'options',
      "options must be an object with a registry (a prom-client Registry, or 'global')",
    );
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw invalid(key, `${key} is not a collector option`);
  }
  const registry = options.registry === 'global' ? register : options.registry;
  if (!isRegistry(registry)) {
    throw invalid(
      'registry',
      "registry is required: pass the application's prom-client Registry, or 'global' for prom-client's default register",
    );
  }
  const prefix = options.prefix ?? 'hookd_';
  if (typeof prefix !== 'string' || !METRIC_PREFIX.test(prefix)) {
    throw invalid(
      'prefix',
      'prefix must be a valid start of a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)',
    );
  }
  const buckets: PrometheusCollectorOptions['buckets'] = options.buckets ?? {};
  if (buckets === null || typeof buckets !== 'object') {
    throw invalid('buckets', 'buckets must be an object ({ duration?, latency? })');
  }
  for (const key of Object.keys(buckets)) {
    if (key !== 'duration' && key !== 'latency')
      throw invalid(`buckets.${key}`, `buckets.${key} is not a histogram of the collector`);
  }
  if (options.endpointLabel !== undefined && typeof options.endpointLabel !== 'function') {
    throw invalid('endpointLabel', 'endpointLabel must be a function');
  }
  if (options.onError !== undefined && typeof options.onError !== 'function') {
    throw invalid('onError', 'onError must be a function');
  }
  return {
    registry,
    prefix,
    durationBuckets: checkBuckets(buckets.duration, DEFAULT_DURATION_BUCKETS, 'buckets.duration'),
    latencyBuckets: checkBuckets(buckets.latency, DEFAULT_LATENCY_BUCKETS, 'buckets.latency'),
  };
}

function checkBuckets(
  value: readonly number[] | undefined,
  fallback: readonly number[],
  field: string,
): readonly number[] {
  if (value === undefined) return fallback;
  const list: readonly unknown[] = Array.isArray(value) ? (value as readonly unknown[]) : [];
  const ok =
    list.length > 0 &&
    list.every(
      (bound, index) =>
        typeof bound === 'number' &&
        Number.isFinite(bound) &&
        (index === 0 || bound > (list[index - 1] as number)),
    );
  if (!ok) {
    throw new HookdError(
      'HOOKD_ERR_INVALID_CONFIG',
      `prometheus: ${field} must be a non-empty, strictly increasing list of finite numbers (+Inf is implied)`,
      { field },
    );
  }
  return Object.freeze([...(list as readonly number[])]);
}

function isRegistry(value: unknown): value is PromRegistry {
  const candidate = value as Partial<PromRegistry> | null | undefined;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.registerMetric === 'function' &&
    typeof candidate.getSingleMetric === 'function' &&
    typeof candidate.metrics === 'function'
  );
}
