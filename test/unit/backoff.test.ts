import { describe, expect, it } from 'vitest';

import type { RetryPolicy } from '../../src/models.js';
import {
  applyJitter,
  attemptNumberInBudget,
  calculateBackoff,
  parseRetryAfter,
  retryDelay,
} from '../../src/retry/backoff.js';

const DEFAULTS: RetryPolicy = {
  maxAttempts: 10,
  initialBackoffMs: 1000,
  maxBackoffMs: 3_600_000,
  backoffFactor: 2,
};

describe('calculateBackoff (spec 3.4)', () => {
  it('follows 1 s, 2 s, 4 s … with the defaults', () => {
    const delays = Array.from({ length: 9 }, (_, i) => calculateBackoff(i + 1, DEFAULTS));
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 64_000, 128_000, 256_000]);
  });

  it('caps at maxBackoffMs as soon as the growing value reaches it', () => {
    expect(calculateBackoff(12, DEFAULTS)).toBe(2_048_000);
    expect(calculateBackoff(13, DEFAULTS)).toBe(3_600_000);
    expect(calculateBackoff(50, DEFAULTS)).toBe(3_600_000);
    expect(calculateBackoff(10_000, DEFAULTS)).toBe(3_600_000);
    const policy = { ...DEFAULTS, initialBackoffMs: 100, maxBackoffMs: 400 };
    expect([1, 2, 3, 4, 5].map((n) => calculateBackoff(n, policy))).toEqual([
      100, 200, 400, 400, 400,
    ]);
  });

  it('treats attempt numbers up to 1 as the first', () => {
    expect(calculateBackoff(0, DEFAULTS)).toBe(1000);
    expect(calculateBackoff(-3, DEFAULTS)).toBe(1000);
  });

  it('keeps the delay constant with factor 1 and immediate with initial 0', () => {
    const constant = { ...DEFAULTS, initialBackoffMs: 250, backoffFactor: 1 };
    expect([1, 2, 3, 10].map((n) => calculateBackoff(n, constant))).toEqual([250, 250, 250, 250]);
    const immediate = { ...DEFAULTS, initialBackoffMs: 0 };
    expect([1, 2, 5].map((n) => calculateBackoff(n, immediate))).toEqual([0, 0, 0]);
  });

  it('never exceeds the cap, even when initial is above it', () => {
    const odd = { ...DEFAULTS, initialBackoffMs: 5000, maxBackoffMs: 1000 };
    expect(calculateBackoff(1, odd)).toBe(1000);
    expect(calculateBackoff(2, odd)).toBe(1000);
  });

  it('rounds fractional factors to whole milliseconds', () => {
    const policy = { ...DEFAULTS, initialBackoffMs: 1000, backoffFactor: 1.5 };
    expect([1, 2, 3, 4].map((n) => calculateBackoff(n, policy))).toEqual([1000, 1500, 2250, 3375]);
    expect(calculateBackoff(5, policy)).toBe(5063);
  });
});

describe('attemptNumberInBudget', () => {
  it('equals the attempt count before any redrive', () => {
    expect(attemptNumberInBudget(1, 10, 10)).toBe(1);
    expect(attemptNumberInBudget(7, 10, 10)).toBe(7);
  });

  it('restarts after each dead-letter redrive (budget 3: max 3 → 6 → 9)', () => {
    // After the first redrive: attempts 4, 5, 6 are numbers 1, 2, 3 of the new budget.
    expect([4, 5, 6].map((count) => attemptNumberInBudget(count, 6, 3))).toEqual([1, 2, 3]);
    expect([7, 8, 9].map((count) => attemptNumberInBudget(count, 9, 3))).toEqual([1, 2, 3]);
  });

  it('is at least 1', () => {
    expect(attemptNumberInBudget(0, 10, 10)).toBe(1);
    expect(attemptNumberInBudget(2, 20, 3)).toBe(1);
  });
});

describe('applyJitter', () => {
  it('keeps the upper bound exact and the lower bound at delay × (1 − jitter)', () => {
    expect(applyJitter(10_000, 0.2, () => 0)).toBe(10_000);
    expect(applyJitter(10_000, 0.2, () => 1)).toBe(8000);
    expect(applyJitter(10_000, 0.2, () => 0.5)).toBe(9000);
    expect(applyJitter(10_000, 1, () => 1)).toBe(0);
  });

  it('leaves the delay alone without jitter or without a delay', () => {
    const random = () => {
      throw new Error('random must not be called');
    };
    expect(applyJitter(10_000, 0, random)).toBe(10_000);
    expect(applyJitter(0, 0.5, random)).toBe(0);
  });

  it('stays within bounds for many real random draws', () => {
    for (let i = 0; i < 5000; i++) {
      const value = applyJitter(1000, 0.3);
      expect(value).toBeGreaterThanOrEqual(700);
      expect(value).toBeLessThanOrEqual(1000);
      expect(Number.isInteger(value)).toBe(true);
    }
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2030, 0, 1, 12, 0, 0);

  it('reads delta-seconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('  5 ', now)).toBe(5000);
    expect(parseRetryAfter('0', now)).toBe(0);
  });

  it('reads an HTTP date relative to now, and ignores dates in the past', () => {
    expect(parseRetryAfter('Tue, 01 Jan 2030 12:01:30 GMT', now)).toBe(90_000);
    expect(parseRetryAfter('Tue, 01 Jan 2030 11:59:00 GMT', now)).toBeNull();
    expect(parseRetryAfter('Tue, 01 Jan 2030 12:00:00 GMT', now)).toBeNull();
  });

  it.each([null, undefined, '', '   ', 'soon', '-5', '1.5e3', 'NaN', '0x10'])(
    'returns null for %j',
    (value) => {
      expect(parseRetryAfter(value, now)).toBeNull();
    },
  );

  it('returns null for a number of seconds too large to be exact, and keeps big safe ones', () => {
    expect(parseRetryAfter('9'.repeat(30), now)).toBeNull();
    expect(parseRetryAfter('9007199254740991', now)).toBe(9_007_199_254_740_991_000);
  });
});

describe('retryDelay', () => {
  const exact = { policy: DEFAULTS, jitter: 0, random: () => 0 };

  it('is the backoff of the attempt number, with jitter applied', () => {
    expect(retryDelay({ ...exact, attemptNumber: 3, retryAfterMs: null })).toBe(4000);
    expect(
      retryDelay({
        policy: DEFAULTS,
        attemptNumber: 3,
        jitter: 0.5,
        retryAfterMs: null,
        random: () => 1,
      }),
    ).toBe(2000);
  });

  it('lets Retry-After lengthen the wait but never shorten it', () => {
    expect(retryDelay({ ...exact, attemptNumber: 1, retryAfterMs: 30_000 })).toBe(30_000);
    expect(retryDelay({ ...exact, attemptNumber: 5, retryAfterMs: 1000 })).toBe(16_000);
    expect(retryDelay({ ...exact, attemptNumber: 5, retryAfterMs: 0 })).toBe(16_000);
  });

  it('never goes beyond maxBackoffMs, whatever Retry-After asks', () => {
    const policy = { ...DEFAULTS, maxBackoffMs: 60_000 };
    expect(retryDelay({ ...exact, policy, attemptNumber: 1, retryAfterMs: 3_600_000 })).toBe(
      60_000,
    );
    expect(
      retryDelay({ ...exact, policy, attemptNumber: 1, retryAfterMs: Number.MAX_SAFE_INTEGER }),
    ).toBe(60_000);
    expect(retryDelay({ ...exact, policy, attemptNumber: 40, retryAfterMs: null })).toBe(60_000);
  });
});
