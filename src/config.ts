import { z } from 'zod';

import {
  DEFAULT_CLAIM_LEASE_MARGIN_MS,
  DELIVERY_BOOKKEEPING_TIMEOUT_MS,
  MIN_CLAIM_LEASE_MARGIN_MS,
} from './constants.js';
import { HookdError } from './errors.js';
import type { RetryPolicy } from './models.js';

/**
 * Manager configuration: the go-hookd `Config` fields in camelCase, durations in milliseconds.
 * Pass any subset to `new Manager(config, …)`; missing fields take the defaults below.
 */
export interface Config {
  /**
   * Most HTTP requests in flight at once for this manager (its worker slots). A slot is freed
   * when its request is over; the attempt's outcome is then written in batches. The manager holds
   * at most `workerCount × effectiveBatchSize` claimed deliveries (see {@link effectiveBatchSize}).
   * @default 10
   */
  readonly workerCount: number;
  /** Base interval (ms) between polls for due deliveries when nothing wakes the workers. @default 1000 */
  readonly queuePollInterval: number;
  /** Timeout (ms) of one HTTP attempt, response body included. At least 1000. @default 30000 */
  readonly deliveryTimeoutMs: number;
  /**
   * Deliveries one worker slot may hold claimed at once (one in flight, the rest waiting), capped
   * by what fits in a claim lease: see {@link effectiveBatchSize}. @default 1
   */
  readonly maxBatchSize: number;
  /**
   * How long (ms) a claim hides a delivery from other workers. 0 derives
   * `deliveryTimeoutMs + 60000`; an explicit value must be at least `deliveryTimeoutMs + 15000`.
   * @default 0
   */
  readonly claimLeaseMs: number;
  /** Longest idle poll interval (ms) the idle backoff grows to. 0 means 30000. @default 30000 */
  readonly queueIdleMaxInterval: number;
  /** Growth of the poll interval while the queue stays empty; 1 disables idle backoff. @default 2 */
  readonly queueIdleBackoffFactor: number;
  /** Attempts (not retries: the first one counts) of deliveries whose policy says nothing else. @default 10 */
  readonly defaultMaxRetries: number;
  /** First retry delay (ms) of the default retry policy. @default 1000 */
  readonly defaultInitialBackoffMs: number;
  /** Longest retry delay (ms) of the default retry policy. @default 3600000 */
  readonly defaultMaxBackoffMs: number;
  /** Growth of the retry delay after each failure. @default 2 */
  readonly defaultBackoffFactor: number;
  /**
   * Random spread of retry delays, 0–1: a delay of `d` becomes a value in `[d × (1 − j), d]`, so
   * endpoints that fail together do not retry together. 0 makes delays exact. @default 0.2
   */
  readonly retryJitter: number;
  /** Consecutive failures that open an endpoint's circuit. @default 5 */
  readonly circuitBreakerThreshold: number;
  /** How long (ms) an open circuit parks deliveries before a trial. At least 1000. @default 60000 */
  readonly circuitBreakerTimeoutMs: number;
  /** Successful trials in half-open state that close the circuit again. @default 3 */
  readonly circuitBreakerHalfOpenRequests: number;
  /** How long (hours) an idempotency key blocks duplicates. @default 24 */
  readonly idempotencyTtlHours: number;
  /** Default time `stop()` waits for in-flight attempts before aborting them. @default 30000 */
  readonly shutdownTimeoutMs: number;
  /**
   * Interval (ms) of the `metrics.queue_depth` event while started, with counts read from the
   * repository; 0 turns it off. @default 15000
   */
  readonly queueDepthIntervalMs: number;
}

/** The configuration after defaults were applied and every rule checked. Frozen. */
export type ResolvedConfig = Readonly<Config>;

const DEFAULTS: ResolvedConfig = Object.freeze({
  workerCount: 10,
  queuePollInterval: 1000,
  deliveryTimeoutMs: 30_000,
  maxBatchSize: 1,
  claimLeaseMs: 0,
  queueIdleMaxInterval: 30_000,
  queueIdleBackoffFactor: 2,
  defaultMaxRetries: 10,
  defaultInitialBackoffMs: 1000,
  defaultMaxBackoffMs: 3_600_000,
  defaultBackoffFactor: 2,
  retryJitter: 0.2,
  circuitBreakerThreshold: 5,
  circuitBreakerTimeoutMs: 60_000,
  circuitBreakerHalfOpenRequests: 3,
  idempotencyTtlHours: 24,
  shutdownTimeoutMs: 30_000,
  queueDepthIntervalMs: 15_000,
});

/** Every default, as a fresh object (the port of go-hookd's `NewConfig`). */
export function defaultConfig(): Config {
  return { ...DEFAULTS };
}

const int = (min: number) =>
  z
    .number({ error: 'must be a number' })
    .int({ error: 'must be an integer' })
    .min(min, { error: `must be at least ${min}` })
    .max(Number.MAX_SAFE_INTEGER, { error: 'is too large' });
const factor = (min: number) =>
  z
    .number({ error: 'must be a number' })
    .min(min, { error: `must be at least ${min}` })
    .refine(Number.isFinite, { error: 'must be finite' });

// Field order is go-hookd's validation order: when several fields are wrong, the first one in
// this list is the one reported.
const configSchema = z.strictObject({
  workerCount: int(1),
  queuePollInterval: int(1),
  deliveryTimeoutMs: int(1000),
  maxBatchSize: int(1),
  queueIdleMaxInterval: int(0),
  queueIdleBackoffFactor: z.union([z.literal(0), factor(1)], { error: 'must be 0 or at least 1' }),
  claimLeaseMs: int(0),
  defaultMaxRetries: int(0),
  defaultInitialBackoffMs: int(1),
  defaultMaxBackoffMs: int(1),
  defaultBackoffFactor: factor(1),
  retryJitter: factor(0).max(1, { error: 'must be at most 1' }),
  circuitBreakerThreshold: int(1),
  circuitBreakerTimeoutMs: int(1000),
  circuitBreakerHalfOpenRequests: int(1),
  idempotencyTtlHours: int(1),
  shutdownTimeoutMs: int(1),
  queueDepthIntervalMs: int(0),
});

const FIELD_ORDER = Object.keys(configSchema.shape) as Array<keyof typeof configSchema.shape>;

type MutableConfig = { -readonly [K in keyof Config]: Config[K] };

function configError(field: string, message: string): HookdError {
  return new HookdError('HOOKD_ERR_INVALID_CONFIG', `invalid config: ${field} ${message}`, {
    field,
  });
}

/**
 * Applies the defaults to `overrides`, checks every rule of go-hookd's `Config.Validate` and
 * returns a frozen configuration. The input is not modified.
 *
 * @throws HookdError `HOOKD_ERR_INVALID_CONFIG` naming the first offending field.
 */
export function resolveConfig(overrides: Partial<Config> = {}): ResolvedConfig {
  if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) {
    throw configError('config', 'must be an object');
  }
  const merged: Record<string, unknown> = { ...DEFAULTS };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    // Judged by own key, before anything else: an own `__proto__` key (as JSON.parse makes) is
    // refused like any other unknown key instead of silently replacing the prototype.
    if (!Object.hasOwn(DEFAULTS, key)) {
      throw configError(key === '' ? '""' : key, 'is not a config field');
    }
    merged[key] = value;
  }
  // One field at a time in go-hookd's order, each followed by the rules that relate it to the
  // fields before it, so that when several values are wrong the first one in that order is named.
  const config = {} as MutableConfig;
  for (const field of FIELD_ORDER) {
    const parsed = (configSchema.shape[field] as z.ZodType).safeParse(merged[field]);
    if (!parsed.success) throw configError(field, parsed.error.issues[0]!.message);
    (config as Record<string, unknown>)[field] = parsed.data;
    switch (field) {
      case 'queueIdleMaxInterval':
        applyIdleCeiling(config, overrides);
        break;
      case 'queueIdleBackoffFactor':
        if (config.queueIdleBackoffFactor === 0)
          config.queueIdleBackoffFactor = DEFAULTS.queueIdleBackoffFactor;
        break;
      case 'claimLeaseMs':
        checkClaimLease(config);
        break;
      case 'defaultMaxBackoffMs':
        if (config.defaultInitialBackoffMs >= config.defaultMaxBackoffMs) {
          throw configError(
            'defaultInitialBackoffMs',
            `must be less than defaultMaxBackoffMs (${config.defaultMaxBackoffMs})`,
          );
        }
        break;
      default:
        break;
    }
  }
  return Object.freeze(config);
}

function applyIdleCeiling(config: MutableConfig, overrides: Partial<Config>): void {
  const explicitCeiling = overrides.queueIdleMaxInterval;
  if (explicitCeiling === undefined || explicitCeiling === 0) {
    // Only the default ceiling follows a long poll interval up; an explicit one is the user's word.
    config.queueIdleMaxInterval = Math.max(DEFAULTS.queueIdleMaxInterval, config.queuePollInterval);
  } else if (explicitCeiling < config.queuePollInterval) {
    throw configError(
      'queueIdleMaxInterval',
      `must be at least queuePollInterval (${config.queuePollInterval})`,
    );
  }
}

function checkClaimLease(config: Config): void {
  if (config.claimLeaseMs === 0) return;
  const minimum =
    config.deliveryTimeoutMs + DELIVERY_BOOKKEEPING_TIMEOUT_MS + MIN_CLAIM_LEASE_MARGIN_MS;
  if (config.claimLeaseMs < minimum) {
    throw configError(
      'claimLeaseMs',
      `must be at least deliveryTimeoutMs + ${DELIVERY_BOOKKEEPING_TIMEOUT_MS + MIN_CLAIM_LEASE_MARGIN_MS} (${minimum}), ` +
        'so an attempt and its bookkeeping always finish inside the lease',
    );
  }
}

/** The claim lease in milliseconds: `claimLeaseMs`, or `deliveryTimeoutMs + 60000` when 0. */
export function claimLease(config: Config): number {
  return config.claimLeaseMs > 0
    ? config.claimLeaseMs
    : config.deliveryTimeoutMs + DEFAULT_CLAIM_LEASE_MARGIN_MS;
}

/**
 * How many deliveries one worker slot may hold claimed: `maxBatchSize`, capped so that a
 * delivery waiting behind the others is still sent inside its lease:
 * `min(maxBatchSize, max(1, floor(lease / (deliveryTimeout + 10 s))))`.
 */
export function effectiveBatchSize(config: Config): number {
  const perAttempt = config.deliveryTimeoutMs + DELIVERY_BOOKKEEPING_TIMEOUT_MS;
  const cap = Math.max(1, Math.floor(claimLease(config) / perAttempt));
  return Math.min(config.maxBatchSize, cap);
}

/** The retry policy of deliveries that bring none: built from the four `default…` fields. */
export function defaultRetryPolicy(config: Config): RetryPolicy {
  return {
    maxAttempts: config.defaultMaxRetries,
    initialBackoffMs: config.defaultInitialBackoffMs,
    maxBackoffMs: config.defaultMaxBackoffMs,
    backoffFactor: config.defaultBackoffFactor,
  };
}
