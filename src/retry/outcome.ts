import type { RetryPolicy } from '../models.js';
import { attemptNumberInBudget, parseRetryAfter, retryDelay } from './backoff.js';

/**
 * What one attempt's result means for its delivery (go-hookd §3.2, with DESIGN.md's rules).
 * Pure functions.
 */

/** The class of an attempt result. */
export type AttemptClass = 'success' | 'retryable' | 'permanent';

/**
 * Classifies an attempt: 2xx without a transport error is a success; 4xx other than 408 and 429
 * is permanent (dead letter at once: the receiver says the request itself is wrong); everything
 * else — no response, 408, 429, 3xx (redirects are never followed), 5xx, odd codes — is worth
 * retrying.
 */
export function classifyAttempt(statusCode: number, transportError: boolean): AttemptClass {
  if (!transportError && statusCode >= 200 && statusCode <= 299) return 'success';
  if (
    !transportError &&
    statusCode >= 400 &&
    statusCode <= 499 &&
    statusCode !== 408 &&
    statusCode !== 429
  ) {
    return 'permanent';
  }
  return 'retryable';
}

/** Status codes whose `Retry-After` header node-hookd honours. */
export function honoursRetryAfter(statusCode: number): boolean {
  return statusCode === 429 || statusCode === 503;
}

/**
 * Whether a failed attempt may be followed by another: attempts are counted before they are
 * made, and at least one is always made (so a budget of 0 behaves like 1).
 */
export function hasAttemptsLeft(attemptCount: number, maxAttempts: number): boolean {
  return attemptCount < maxAttempts;
}

/** What the manager does with a delivery after one attempt. */
export interface AttemptDecision {
  readonly outcome: 'success' | 'retry' | 'dead_letter';
  /** Wait before the next attempt, for `retry` (0 otherwise). */
  readonly delayMs: number;
}

/** Everything the decision depends on. */
export interface DecisionInput {
  readonly attemptClass: AttemptClass;
  readonly statusCode: number;
  /** The attempt's number (attempts are counted before they are made). */
  readonly attemptCount: number;
  readonly maxAttempts: number;
  readonly attemptBudget: number;
  readonly policy: RetryPolicy;
  readonly jitter: number;
  /** The response's raw `Retry-After` header. */
  readonly retryAfter: string | null;
  readonly nowMs: number;
  readonly random?: () => number;
}

/**
 * Decides the delivery's next state: success; dead letter for a permanent failure or when no
 * attempt is left; otherwise a retry after the backoff of this attempt's number within the
 * current budget (with jitter, lengthened by `Retry-After` on 429 and 503, capped by the
 * policy's maximum).
 */
export function decideAfterAttempt(input: DecisionInput): AttemptDecision {
  if (input.attemptClass === 'success') return { outcome: 'success', delayMs: 0 };
  if (
    input.attemptClass === 'permanent' ||
    !hasAttemptsLeft(input.attemptCount, input.maxAttempts)
  ) {
    return { outcome: 'dead_letter', delayMs: 0 };
  }
  const retryAfterMs = honoursRetryAfter(input.statusCode)
    ? parseRetryAfter(input.retryAfter, input.nowMs)
    : null;
  const delayMs = retryDelay({
    policy: input.policy,
    attemptNumber: attemptNumberInBudget(
      input.attemptCount,
      input.maxAttempts,
      input.attemptBudget,
    ),
    jitter: input.jitter,
    retryAfterMs,
    ...(input.random ? { random: input.random } : {}),
  });
  return { outcome: 'retry', delayMs };
}
