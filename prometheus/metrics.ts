import { Counter, Gauge, Histogram, type Registry, type RegistryContentType } from 'prom-client';

import { HookdError } from '../src/index.js';

/** A prom-client registry in either exposition format (Prometheus text or OpenMetrics). */
export type PromRegistry = Registry<RegistryContentType>;

/**
 * Buckets (seconds) of `hookd_delivery_duration_seconds`, the duration of one HTTP attempt:
 * go-hookd's buckets, unchanged, so existing dashboards keep their `le` values.
 */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/**
 * Buckets (seconds) of `hookd_delivery_latency_seconds`, queueing to successful delivery. It
 * spans retries, circuit parking and dead-letter redrives, so it runs from 50 ms to a day:
 * 50 ms, 250 ms, 1 s, 5 s, 15 s, 1 min, 5 min, 15 min, 1 h, 3 h, 12 h, 24 h.
 */
export const DEFAULT_LATENCY_BUCKETS: readonly number[] = Object.freeze([
  0.05, 0.25, 1, 5, 15, 60, 300, 900, 3_600, 10_800, 43_200, 86_400,
]);

/** The collector's metrics; one set per registry and name prefix, shared by its collectors. */
export interface HookdMetrics {
  readonly deliveries: Counter<'status' | 'event_type' | 'delivery_type'>;
  readonly attempts: Counter<'status_code' | 'event_type'>;
  readonly duration: Histogram<'status' | 'event_type'>;
  readonly circuitState: Gauge<'endpoint'>;
  readonly queueDepth: Gauge;
  readonly deadLetterQueueSize: Gauge;
  readonly latency: Histogram<'event_type'>;
  readonly oldestPendingAge: Gauge;
  readonly retries: Counter<'event_type'>;
  readonly workerErrors: Counter<'operation'>;
}

/** What {@link hookdMetrics} needs to know. */
export interface MetricSettings {
  readonly registry: PromRegistry;
  readonly prefix: string;
  readonly durationBuckets: readonly number[];
  readonly latencyBuckets: readonly number[];
}

/**
 * Returns the metrics on `settings.registry`, creating the missing ones.
 *
 * A metric that is already registered under the same name is reused when it has the same type,
 * label names and buckets — that is what lets several collectors share one registry. The lookup
 * goes through the registry itself rather than a module-level cache, so it also holds across a
 * re-evaluated module (hot reload, two installed copies of node-hookd sharing one prom-client)
 * and follows `registry.clear()` / `removeSingleMetric()` instead of handing out metrics the
 * registry no longer exports. A same-named metric of another shape cannot be shared, and
 * silently dropping our updates would be worse than failing, so that throws.
 */
export function hookdMetrics(settings: MetricSettings): HookdMetrics {
  const { registry, prefix } = settings;
  const name = (suffix: string) => `${prefix}${suffix}`;
  return {
    deliveries: counter(
      registry,
      name('deliveries_total'),
      'Delivery state changes by the status entered: queued (entered the queue: new, manual retry or dead-letter redrive), success (delivered), failed (an attempt failed and a retry was scheduled), dead_letter (moved to the dead-letter queue).',
      ['status', 'event_type', 'delivery_type'],
    ),
    attempts: counter(
      registry,
      name('delivery_attempts_total'),
      'Delivery attempts recorded, by response status class (error: no HTTP response).',
      ['status_code', 'event_type'],
    ),
    duration: histogram(
      registry,
      name('delivery_duration_seconds'),
      'Duration of one delivery attempt, by its outcome.',
      ['status', 'event_type'],
      settings.durationBuckets,
    ),
    circuitState: gauge(
      registry,
      name('circuit_breaker_state'),
      'Circuit breaker state of an endpoint, as last changed by this process: 0 closed, 1 half-open, 2 open.',
      ['endpoint'],
    ),
    queueDepth: gauge(
      registry,
      name('queue_depth'),
      'Pending deliveries in the repository (in flight included), as of the last queue-depth reconciliation.',
      [],
    ),
    deadLetterQueueSize: gauge(
      registry,
      name('dead_letter_queue_size'),
      'Dead-lettered deliveries in the repository, as of the last queue-depth reconciliation.',
      [],
    ),
    latency: histogram(
      registry,
      name('delivery_latency_seconds'),
      'Time from the creation of a delivery to its successful delivery, retries, parking and redrives included.',
      ['event_type'],
      settings.latencyBuckets,
    ),
    oldestPendingAge: gauge(
      registry,
      name('oldest_pending_age_seconds'),
      'Age of the oldest pending delivery at the last queue-depth reconciliation; 0 when none is pending.',
      [],
    ),
    retries: counter(registry, name('retries_total'), 'Retries scheduled after a failed attempt.', [
      'event_type',
    ]),
    workerErrors: counter(
      registry,
      name('worker_errors_total'),
      'Background worker operations that failed (claiming, recording outcomes, wake-ups), by operation.',
      ['operation'],
    ),
  };
}

function counter<L extends string>(
  registry: PromRegistry,
  name: string,
  help: string,
  labelNames: readonly L[],
): Counter<L> {
  return (
    reuse(registry, name, Counter<L>, labelNames, null) ??
    new Counter<L>({ name, help, labelNames, registers: [asRegister(registry)] })
  );
}

function gauge<L extends string>(
  registry: PromRegistry,
  name: string,
  help: string,
  labelNames: readonly L[],
): Gauge<L> {
  return (
    reuse(registry, name, Gauge<L>, labelNames, null) ??
    new Gauge<L>({ name, help, labelNames, registers: [asRegister(registry)] })
  );
}

function histogram<L extends string>(
  registry: PromRegistry,
  name: string,
  help: string,
  labelNames: readonly L[],
  buckets: readonly number[],
): Histogram<L> {
  return (
    reuse(registry, name, Histogram<L>, labelNames, buckets) ??
    new Histogram<L>({
      name,
      help,
      labelNames,
      buckets: [...buckets],
      registers: [asRegister(registry)],
    })
  );
}

/** The runtime fields prom-client keeps on every metric (not part of its typings). */
interface MetricShape {
  readonly labelNames?: readonly string[];
  readonly upperBounds?: readonly number[];
}

function reuse<M extends object>(
  registry: PromRegistry,
  name: string,
  kind: abstract new (...args: never[]) => M,
  labelNames: readonly string[],
  buckets: readonly number[] | null,
): M | undefined {
  const existing: unknown = registry.getSingleMetric(name);
  if (existing === undefined) return undefined;
  const shape = existing as MetricShape;
  const compatible =
    existing instanceof kind &&
    sameSet(shape.labelNames ?? [], labelNames) &&
    (buckets === null || sameList(shape.upperBounds ?? [], buckets));
  if (!compatible) {
    throw new HookdError(
      'HOOKD_ERR_INVALID_CONFIG',
      `prometheus: the registry already has a metric ${name} of another type, label set or bucket list; ` +
        'use the same buckets for every collector on a registry, another prefix, or another registry',
      { field: 'registry', details: { metric: name } },
    );
  }
  return existing;
}

// prom-client types `registers` per content type; a registry of either type is accepted at runtime.
function asRegister(registry: PromRegistry): Registry {
  return registry as Registry;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return sameList([...a].sort(), [...b].sort());
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}
