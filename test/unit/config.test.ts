import { describe, expect, it } from 'vitest';

import {
  claimLease,
  defaultConfig,
  defaultRetryPolicy,
  effectiveBatchSize,
  resolveConfig,
  type Config,
} from '../../src/config.js';
import { HookdError } from '../../src/errors.js';

/** Runs `resolveConfig` and returns the error it must throw. */
function refusal(overrides: unknown): HookdError {
  try {
    resolveConfig(overrides as Partial<Config>);
  } catch (error) {
    expect(error).toBeInstanceOf(HookdError);
    return error as HookdError;
  }
  throw new Error(`resolveConfig accepted ${String(JSON.stringify(overrides))}`);
}

function expectRefused(overrides: unknown, field: string): HookdError {
  const error = refusal(overrides);
  expect(error.code).toBe('HOOKD_ERR_INVALID_CONFIG');
  expect(error.category).toBe('validation');
  expect(error.field).toBe(field);
  expect(error.message).toContain(field);
  return error;
}

describe('defaultConfig', () => {
  it('returns every go-hookd default (spec 1.2) plus the node-hookd additions', () => {
    expect(defaultConfig()).toEqual({
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
  });

  it('returns a fresh, mutable object each time', () => {
    const first = defaultConfig() as { workerCount: number };
    first.workerCount = 99;
    expect(defaultConfig().workerCount).toBe(10);
    expect(Object.isFrozen(defaultConfig())).toBe(false);
  });

  it('is accepted unchanged by resolveConfig, as are no overrides at all', () => {
    expect(resolveConfig(defaultConfig())).toEqual(defaultConfig());
    expect(resolveConfig()).toEqual(defaultConfig());
    expect(resolveConfig({})).toEqual(defaultConfig());
  });
});

describe('resolveConfig refusals', () => {
  const cases: Array<[string, Partial<Record<keyof Config, unknown>>]> = [
    ['workerCount', { workerCount: 0 }],
    ['workerCount', { workerCount: -1 }],
    ['queuePollInterval', { queuePollInterval: 0 }],
    ['deliveryTimeoutMs', { deliveryTimeoutMs: 999 }],
    ['maxBatchSize', { maxBatchSize: 0 }],
    ['defaultMaxRetries', { defaultMaxRetries: -1 }],
    ['defaultInitialBackoffMs', { defaultInitialBackoffMs: 0 }],
    ['defaultInitialBackoffMs', { defaultInitialBackoffMs: 5000, defaultMaxBackoffMs: 5000 }],
    ['defaultInitialBackoffMs', { defaultInitialBackoffMs: 6000, defaultMaxBackoffMs: 5000 }],
    ['defaultMaxBackoffMs', { defaultMaxBackoffMs: 0 }],
    ['defaultBackoffFactor', { defaultBackoffFactor: 0.99 }],
    ['defaultBackoffFactor', { defaultBackoffFactor: 0 }],
    ['circuitBreakerThreshold', { circuitBreakerThreshold: 0 }],
    ['circuitBreakerTimeoutMs', { circuitBreakerTimeoutMs: 999 }],
    ['circuitBreakerHalfOpenRequests', { circuitBreakerHalfOpenRequests: 0 }],
    ['idempotencyTtlHours', { idempotencyTtlHours: 0 }],
    ['shutdownTimeoutMs', { shutdownTimeoutMs: 0 }],
    ['retryJitter', { retryJitter: -0.01 }],
    ['retryJitter', { retryJitter: 1.01 }],
    ['queueDepthIntervalMs', { queueDepthIntervalMs: -1 }],
    ['queueIdleBackoffFactor', { queueIdleBackoffFactor: 0.5 }],
    ['queueIdleMaxInterval', { queueIdleMaxInterval: -1 }],
    ['claimLeaseMs', { claimLeaseMs: -1 }],
    // Non-integers where an integer is required.
    ['workerCount', { workerCount: 2.5 }],
    ['queuePollInterval', { queuePollInterval: 10.1 }],
    ['circuitBreakerThreshold', { circuitBreakerThreshold: 1.5 }],
    ['idempotencyTtlHours', { idempotencyTtlHours: 0.5 }],
    // NaN, infinities and other types.
    ['workerCount', { workerCount: Number.NaN }],
    ['deliveryTimeoutMs', { deliveryTimeoutMs: Number.POSITIVE_INFINITY }],
    ['defaultBackoffFactor', { defaultBackoffFactor: Number.NaN }],
    ['defaultBackoffFactor', { defaultBackoffFactor: Number.POSITIVE_INFINITY }],
    ['retryJitter', { retryJitter: Number.NaN }],
    ['workerCount', { workerCount: '10' }],
    ['workerCount', { workerCount: null }],
    ['workerCount', { workerCount: 10n }],
    ['shutdownTimeoutMs', { shutdownTimeoutMs: true }],
    ['workerCount', { workerCount: Number.MAX_SAFE_INTEGER + 2 }],
  ];

  it.each(cases)('refuses %s (case %#)', (field, overrides) => {
    expectRefused(overrides, field);
  });

  it('accepts the boundary values', () => {
    const config = resolveConfig({
      workerCount: 1,
      queuePollInterval: 1,
      deliveryTimeoutMs: 1000,
      maxBatchSize: 1,
      defaultMaxRetries: 0,
      defaultInitialBackoffMs: 1,
      defaultMaxBackoffMs: 2,
      defaultBackoffFactor: 1,
      retryJitter: 0,
      circuitBreakerThreshold: 1,
      circuitBreakerTimeoutMs: 1000,
      circuitBreakerHalfOpenRequests: 1,
      idempotencyTtlHours: 1,
      shutdownTimeoutMs: 1,
      queueDepthIntervalMs: 0,
    });
    expect(config.workerCount).toBe(1);
    expect(config.defaultMaxRetries).toBe(0);
    expect(config.defaultMaxBackoffMs).toBe(2);
    expect(resolveConfig({ retryJitter: 1 }).retryJitter).toBe(1);
  });

  it('refuses unknown keys, naming the key', () => {
    const error = expectRefused({ workerCnt: 3 }, 'workerCnt');
    expect(error.message).toContain('not a config field');
  });

  it('refuses a "__proto__" key from parsed JSON instead of ignoring it', () => {
    const overrides: unknown = JSON.parse('{"__proto__": {"workerCount": 0}}');
    expectRefused(overrides, '__proto__');
    expect(({} as Record<string, unknown>)['workerCount']).toBeUndefined();
  });

  it('names an empty unknown key "" so that the field is never empty', () => {
    expectRefused({ '': 1 }, '""');
  });

  it('refuses "constructor" and "toString" as unknown keys', () => {
    expectRefused({ constructor: 1 }, 'constructor');
    expectRefused({ toString: 'x' }, 'toString');
  });

  it('treats keys whose value is undefined as absent', () => {
    expect(resolveConfig({ workerCount: undefined })).toEqual(defaultConfig());
  });

  it.each([null, 'config', 42, [1, 2]])('refuses a non-object config %j', (value) => {
    expectRefused(value, 'config');
  });

  it('reports the first failure in go-hookd order when several fields are wrong', () => {
    // Simple field rules, listed out of order in the object on purpose.
    expectRefused({ shutdownTimeoutMs: 0, workerCount: 0 }, 'workerCount');
    expectRefused({ circuitBreakerThreshold: 0, defaultMaxRetries: -1 }, 'defaultMaxRetries');
    expectRefused(
      { idempotencyTtlHours: 0, circuitBreakerTimeoutMs: 1 },
      'circuitBreakerTimeoutMs',
    );
    expectRefused({ maxBatchSize: 0, deliveryTimeoutMs: 5 }, 'deliveryTimeoutMs');
    // Unknown keys come before everything.
    expectRefused({ workerCount: 0, workerCnt: 1 }, 'workerCnt');
  });

  it('orders the cross-field rules at their field, not after every simple rule', () => {
    // The idle ceiling (worker-pool group) comes before the circuit breaker.
    expectRefused(
      { queueIdleMaxInterval: 500, queuePollInterval: 1000, circuitBreakerThreshold: 0 },
      'queueIdleMaxInterval',
    );
    // The claim lease comes before the retry defaults.
    expectRefused({ claimLeaseMs: 1000, defaultMaxRetries: -1 }, 'claimLeaseMs');
    // initial >= max (retry defaults) comes before the circuit breaker and the TTL.
    expectRefused(
      { defaultInitialBackoffMs: 5000, defaultMaxBackoffMs: 1000, circuitBreakerThreshold: 0 },
      'defaultInitialBackoffMs',
    );
    expectRefused(
      { defaultInitialBackoffMs: 5000, defaultMaxBackoffMs: 1000, idempotencyTtlHours: 0 },
      'defaultInitialBackoffMs',
    );
    // But a worker-pool field still comes before the idle ceiling.
    expectRefused({ queueIdleMaxInterval: 500, maxBatchSize: 0 }, 'maxBatchSize');
  });

  it('does not modify the input and returns a frozen object', () => {
    const input = { workerCount: 3, queuePollInterval: 60_000, queueIdleBackoffFactor: 0 };
    const snapshot = structuredClone(input);
    const config = resolveConfig(input);
    expect(input).toEqual(snapshot);
    expect(Object.isFrozen(config)).toBe(true);
    expect(config).not.toBe(input);
    expect(() => {
      (config as { workerCount: number }).workerCount = 1;
    }).toThrow(TypeError);
  });
});

describe('idle poll defaults', () => {
  it('replaces a 0 ceiling with 30000', () => {
    expect(resolveConfig({ queueIdleMaxInterval: 0 }).queueIdleMaxInterval).toBe(30_000);
  });

  it('raises the default ceiling to the poll interval when the poll is longer than 30 s', () => {
    expect(resolveConfig({ queuePollInterval: 45_000 }).queueIdleMaxInterval).toBe(45_000);
    expect(
      resolveConfig({ queuePollInterval: 45_000, queueIdleMaxInterval: 0 }).queueIdleMaxInterval,
    ).toBe(45_000);
    expect(resolveConfig({ queuePollInterval: 20_000 }).queueIdleMaxInterval).toBe(30_000);
  });

  it('refuses an explicit ceiling below the poll interval, accepts one equal to it', () => {
    const error = expectRefused(
      { queuePollInterval: 5000, queueIdleMaxInterval: 4999 },
      'queueIdleMaxInterval',
    );
    expect(error.message).toContain('5000');
    expect(
      resolveConfig({ queuePollInterval: 5000, queueIdleMaxInterval: 5000 }).queueIdleMaxInterval,
    ).toBe(5000);
    // An explicit ceiling below the 30 s default is the user's choice.
    expect(resolveConfig({ queueIdleMaxInterval: 2000 }).queueIdleMaxInterval).toBe(2000);
  });

  it('replaces a 0 factor with 2 and refuses factors below 1', () => {
    expect(resolveConfig({ queueIdleBackoffFactor: 0 }).queueIdleBackoffFactor).toBe(2);
    expect(resolveConfig({ queueIdleBackoffFactor: 1 }).queueIdleBackoffFactor).toBe(1);
    expect(resolveConfig({ queueIdleBackoffFactor: 1.5 }).queueIdleBackoffFactor).toBe(1.5);
    expectRefused({ queueIdleBackoffFactor: 0.99 }, 'queueIdleBackoffFactor');
    expectRefused({ queueIdleBackoffFactor: -1 }, 'queueIdleBackoffFactor');
  });
});

describe('claim lease', () => {
  it('derives deliveryTimeoutMs + 60 s from 0', () => {
    expect(claimLease(resolveConfig({}))).toBe(90_000);
    expect(claimLease(resolveConfig({ deliveryTimeoutMs: 5000 }))).toBe(65_000);
    expect(resolveConfig({}).claimLeaseMs).toBe(0);
  });

  it('refuses an explicit lease below deliveryTimeoutMs + 15 s and accepts exactly that', () => {
    const error = expectRefused({ claimLeaseMs: 44_999 }, 'claimLeaseMs');
    expect(error.message).toContain('45000');
    expectRefused({ deliveryTimeoutMs: 10_000, claimLeaseMs: 24_999 }, 'claimLeaseMs');
    expect(claimLease(resolveConfig({ claimLeaseMs: 45_000 }))).toBe(45_000);
    expect(claimLease(resolveConfig({ deliveryTimeoutMs: 10_000, claimLeaseMs: 25_000 }))).toBe(
      25_000,
    );
  });
});

describe('effectiveBatchSize', () => {
  const table: Array<[string, Partial<Config>, number]> = [
    ['maxBatchSize 1 stays 1', { maxBatchSize: 1, claimLeaseMs: 615_000 }, 1],
    ['defaults: lease 90 s / (30 s + 10 s) caps at 2', { maxBatchSize: 50 }, 2],
    ['lease 90 s / timeout 30 s: cap 2', { maxBatchSize: 100, claimLeaseMs: 90_000 }, 2],
    ['lease 615 s / timeout 30 s: cap 15', { maxBatchSize: 100, claimLeaseMs: 615_000 }, 15],
    ['lease 120 s / timeout 30 s: cap 3', { maxBatchSize: 100, claimLeaseMs: 120_000 }, 3],
    ['below the cap the configured size wins', { maxBatchSize: 2, claimLeaseMs: 615_000 }, 2],
    [
      'the smallest lease still allows 1',
      { maxBatchSize: 100, deliveryTimeoutMs: 30_000, claimLeaseMs: 45_000 },
      1,
    ],
  ];

  it.each(table)('%s', (_name, overrides, expected) => {
    expect(effectiveBatchSize(resolveConfig(overrides))).toBe(expected);
  });

  it('uses the default config as go-hookd does: min(1, 2) = 1', () => {
    expect(effectiveBatchSize(resolveConfig())).toBe(1);
  });
});

describe('defaultRetryPolicy', () => {
  it('is built from the four default retry fields', () => {
    expect(defaultRetryPolicy(resolveConfig())).toEqual({
      maxAttempts: 10,
      initialBackoffMs: 1000,
      maxBackoffMs: 3_600_000,
      backoffFactor: 2,
    });
    expect(
      defaultRetryPolicy(
        resolveConfig({
          defaultMaxRetries: 3,
          defaultInitialBackoffMs: 50,
          defaultMaxBackoffMs: 400,
          defaultBackoffFactor: 1.5,
        }),
      ),
    ).toEqual({ maxAttempts: 3, initialBackoffMs: 50, maxBackoffMs: 400, backoffFactor: 1.5 });
  });
});
