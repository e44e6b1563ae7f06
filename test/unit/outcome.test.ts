import { describe, expect, it } from 'vitest';

import type { RetryPolicy } from '../../src/models.js';
import {
  classifyAttempt,
  decideAfterAttempt,
  hasAttemptsLeft,
  honoursRetryAfter,
  type AttemptClass,
  type DecisionInput,
} from '../../src/retry/outcome.js';

describe('classifyAttempt (spec 3.2)', () => {
  const table: Array<[statusCode: number, transportError: boolean, expected: AttemptClass]> = [
    [200, false, 'success'],
    [201, false, 'success'],
    [204, false, 'success'],
    [299, false, 'success'],
    [100, false, 'retryable'],
    [199, false, 'retryable'],
    [300, false, 'retryable'],
    [301, false, 'retryable'],
    [302, false, 'retryable'],
    [304, false, 'retryable'],
    [308, false, 'retryable'],
    [400, false, 'permanent'],
    [401, false, 'permanent'],
    [403, false, 'permanent'],
    [404, false, 'permanent'],
    [408, false, 'retryable'],
    [409, false, 'permanent'],
    [410, false, 'permanent'],
    [422, false, 'permanent'],
    [429, false, 'retryable'],
    [499, false, 'permanent'],
    [500, false, 'retryable'],
    [502, false, 'retryable'],
    [503, false, 'retryable'],
    [599, false, 'retryable'],
    [600, false, 'retryable'],
    [999, false, 'retryable'],
    [0, true, 'retryable'],
    [0, false, 'retryable'],
    [200, true, 'retryable'],
    [404, true, 'retryable'],
  ];

  it.each(table)('status %i with transport error %s is %s', (status, transport, expected) => {
    expect(classifyAttempt(status, transport)).toBe(expected);
  });
});

describe('honoursRetryAfter and hasAttemptsLeft', () => {
  it('honours Retry-After on 429 and 503 only', () => {
    expect(honoursRetryAfter(429)).toBe(true);
    expect(honoursRetryAfter(503)).toBe(true);
    for (const status of [0, 200, 301, 408, 500, 502, 504]) {
      expect(honoursRetryAfter(status)).toBe(false);
    }
  });

  it('counts attempts before they are made', () => {
    expect(hasAttemptsLeft(1, 2)).toBe(true);
    expect(hasAttemptsLeft(2, 2)).toBe(false);
    expect(hasAttemptsLeft(1, 1)).toBe(false);
    expect(hasAttemptsLeft(1, 0)).toBe(false);
  });
});

describe('decideAfterAttempt', () => {
  const policy: RetryPolicy = {
    maxAttempts: 5,
    initialBackoffMs: 1000,
    maxBackoffMs: 60_000,
    backoffFactor: 2,
  };
  const now = Date.UTC(2030, 0, 1);
  const base: DecisionInput = {
    attemptClass: 'retryable',
    statusCode: 500,
    attemptCount: 1,
    maxAttempts: 5,
    attemptBudget: 5,
    policy,
    jitter: 0,
    retryAfter: null,
    nowMs: now,
    random: () => 0,
  };
  const decide = (patch: Partial<DecisionInput>) => decideAfterAttempt({ ...base, ...patch });

  it('succeeds on success, whatever the budget', () => {
    expect(decide({ attemptClass: 'success', statusCode: 200, attemptCount: 99 })).toEqual({
      outcome: 'success',
      delayMs: 0,
    });
  });

  it('dead-letters a permanent failure at once', () => {
    expect(decide({ attemptClass: 'permanent', statusCode: 404 })).toEqual({
      outcome: 'dead_letter',
      delayMs: 0,
    });
  });

  it('dead-letters the first retryable failure with maxAttempts 0 or 1', () => {
    for (const maxAttempts of [0, 1]) {
      expect(decide({ maxAttempts, attemptBudget: maxAttempts })).toEqual({
        outcome: 'dead_letter',
        delayMs: 0,
      });
    }
  });

  it('retries with the backoff of the attempt number until the budget is spent', () => {
    const delays = [1, 2, 3, 4].map((attemptCount) => decide({ attemptCount }));
    expect(delays).toEqual([
      { outcome: 'retry', delayMs: 1000 },
      { outcome: 'retry', delayMs: 2000 },
      { outcome: 'retry', delayMs: 4000 },
      { outcome: 'retry', delayMs: 8000 },
    ]);
    expect(decide({ attemptCount: 5 })).toEqual({ outcome: 'dead_letter', delayMs: 0 });
  });

  it('restarts the backoff within a redriven budget', () => {
    // Budget 3, redriven once: max 6, attempt 4 is the first of the new budget.
    expect(decide({ attemptCount: 4, maxAttempts: 6, attemptBudget: 3 })).toEqual({
      outcome: 'retry',
      delayMs: 1000,
    });
    expect(decide({ attemptCount: 5, maxAttempts: 6, attemptBudget: 3 })).toEqual({
      outcome: 'retry',
      delayMs: 2000,
    });
    expect(decide({ attemptCount: 6, maxAttempts: 6, attemptBudget: 3 }).outcome).toBe(
      'dead_letter',
    );
  });

  it('lengthens the wait to Retry-After on 429 and 503, capped by maxBackoffMs', () => {
    expect(decide({ statusCode: 429, retryAfter: '30' })).toEqual({
      outcome: 'retry',
      delayMs: 30_000,
    });
    expect(decide({ statusCode: 503, retryAfter: '7200' })).toEqual({
      outcome: 'retry',
      delayMs: 60_000,
    });
    expect(
      decide({ statusCode: 503, retryAfter: new Date(now + 45_000).toUTCString() }).delayMs,
    ).toBe(45_000);
    // A short Retry-After never shortens the backoff.
    expect(decide({ statusCode: 429, retryAfter: '1', attemptCount: 4 }).delayMs).toBe(8000);
  });

  it('ignores Retry-After on other statuses and garbage values', () => {
    expect(decide({ statusCode: 500, retryAfter: '30' }).delayMs).toBe(1000);
    expect(decide({ statusCode: 502, retryAfter: '30' }).delayMs).toBe(1000);
    expect(decide({ statusCode: 408, retryAfter: '30' }).delayMs).toBe(1000);
    expect(decide({ statusCode: 429, retryAfter: 'later' }).delayMs).toBe(1000);
  });

  it('applies jitter to the backoff', () => {
    expect(decide({ jitter: 0.2, random: () => 1, attemptCount: 2 }).delayMs).toBe(1600);
  });
});
