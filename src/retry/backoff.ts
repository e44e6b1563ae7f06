import type { RetryPolicy } from '../models.js';

/**
 * Retry timing (go-hookd §3.3–3.4, plus jitter and `Retry-After`). Pure functions.
 */

/**
 * The wait after the `attemptNumber`-th failed attempt of the current budget (1-based):
 * `initialBackoffMs` after the first, then multiplied by `backoffFactor` each time, and
 * `maxBackoffMs` as soon as the growing value reaches it. With the defaults (1 s, ×2, 1 h):
 * 1 s, 2 s, 4 s, 8 s …
 */
export function calculateBackoff(attemptNumber: number, policy: RetryPolicy): number {
  if (attemptNumber <= 1) return Math.min(policy.initialBackoffMs, policy.maxBackoffMs);
  // The factor is at least 1, so the value only grows: the cap applies once it is reached.
  const delay = policy.initialBackoffMs * policy.backoffFactor ** (attemptNumber - 1);
  return delay >= policy.maxBackoffMs ? policy.maxBackoffMs : Math.round(delay);
}

/**
 * Applies jitter to a delay: a value in `[delay × (1 − jitter), delay]`, so the schedule's upper
 * bound stays exact while endpoints that failed together spread out. `random` is injectable.
 */
export function applyJitter(
  delayMs: number,
  jitter: number,
  random: () => number = Math.random,
): number {
  if (jitter <= 0 || delayMs <= 0) return delayMs;
  return Math.round(delayMs * (1 - jitter * random()));
}

/**
 * The number of the attempt within the current attempt budget (go-hookd's derived helper):
 * `attemptCount − (maxAttempts − budget)`, at least 1. A dead-letter redrive adds a budget, so a
 * redriven delivery starts its backoff schedule afresh.
 */
export function attemptNumberInBudget(
  attemptCount: number,
  maxAttempts: number,
  budget: number,
): number {
  return Math.max(1, attemptCount - (maxAttempts - budget));
}

/**
 * Parses a `Retry-After` header (delta-seconds or an HTTP date) into milliseconds from `nowMs`.
 * Returns null for absent or malformed values and for dates in the past.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | null {
  if (value === null || value === undefined) return null;
  const text = value.trim();
  if (text === '') return null;
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds) ? seconds * 1000 : null;
  }
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  const delta = at - nowMs;
  return delta > 0 ? delta : null;
}

/** Everything the retry delay depends on. */
export interface RetryDelayInput {
  readonly policy: RetryPolicy;
  /** The failed attempt's number within the current budget (see {@link attemptNumberInBudget}). */
  readonly attemptNumber: number;
  readonly jitter: number;
  /** The receiver's `Retry-After`, already parsed; honoured only to lengthen the wait. */
  readonly retryAfterMs: number | null;
  readonly random?: () => number;
}

/**
 * The wait before the next attempt: the policy's backoff with jitter, lengthened to the
 * receiver's `Retry-After` when that asks for more, and never beyond `maxBackoffMs`.
 */
export function retryDelay(input: RetryDelayInput): number {
  const jittered = applyJitter(
    calculateBackoff(input.attemptNumber, input.policy),
    input.jitter,
    input.random,
  );
  const wanted = input.retryAfterMs === null ? jittered : Math.max(jittered, input.retryAfterMs);
  return Math.min(wanted, input.policy.maxBackoffMs);
}
