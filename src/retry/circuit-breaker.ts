import type { CircuitBreakerState, CircuitState } from '../models.js';

/**
 * The per-endpoint circuit breaker as pure state transitions (go-hookd §3.5 with DESIGN.md's
 * fixes). Repositories apply these atomically to the shared record, so every process sees the
 * same state and no increment is lost.
 *
 * closed ──(threshold consecutive failures)──► open ──(timeout passed, next claim)──► half_open
 * half_open ──(halfOpenRequests successes)──► closed;  half_open ──(any failure)──► open
 * open ──(a success that was already in flight)──► closed
 */

/** Thresholds of the breaker, from the manager config. */
export interface CircuitSettings {
  /** Consecutive failures that open a closed circuit. */
  readonly threshold: number;
  /** How long an open circuit parks deliveries. */
  readonly timeoutMs: number;
  /** Successes in half-open state that close the circuit. */
  readonly halfOpenRequests: number;
}

/**
 * What happened to one endpoint: an attempt succeeded, an attempt failed in a way that says the
 * endpoint is unhealthy, or a worker wants to send a trial request through an open circuit
 * whose timeout has passed.
 */
export type CircuitEvent = 'success' | 'failure' | 'trial';

/** A state change worth publishing (`circuit.opened`, `circuit.half_open`, `circuit.closed`). */
export interface CircuitTransition {
  readonly endpoint: string;
  readonly from: CircuitState;
  readonly to: CircuitState;
  readonly failureCount: number;
  readonly at: Date;
}

/** Result of applying one event. */
export interface CircuitStep {
  readonly state: CircuitBreakerState;
  /** True when the record differs from the input and must be written. */
  readonly changed: boolean;
  readonly transition: CircuitTransition | null;
}

/** The record of an endpoint that has none yet: closed, no counts. */
export function closedCircuit(endpoint: string): CircuitBreakerState {
  return {
    endpoint,
    state: 'closed',
    failureCount: 0,
    successCount: 0,
    lastFailureAt: null,
    openedAt: null,
    nextRetryAt: null,
  };
}

/** Whether an open circuit still parks deliveries at `now`. */
export function isParking(state: CircuitBreakerState, now: Date): boolean {
  return (
    state.state === 'open' &&
    state.nextRetryAt !== null &&
    state.nextRetryAt.getTime() > now.getTime()
  );
}

/** Applies one event to a circuit record. */
export function applyCircuitEvent(
  current: CircuitBreakerState,
  event: CircuitEvent,
  settings: CircuitSettings,
  now: Date,
): CircuitStep {
  switch (event) {
    case 'success':
      return onSuccess(current, settings, now);
    case 'failure':
      return onFailure(current, settings, now);
    case 'trial':
      return onTrial(current, now);
  }
}

function step(current: CircuitBreakerState, next: CircuitBreakerState, now: Date): CircuitStep {
  const transition =
    next.state === current.state
      ? null
      : {
          endpoint: current.endpoint,
          from: current.state,
          to: next.state,
          failureCount: next.failureCount,
          at: now,
        };
  return { state: next, changed: !sameRecord(current, next), transition };
}

function onSuccess(
  current: CircuitBreakerState,
  settings: CircuitSettings,
  now: Date,
): CircuitStep {
  switch (current.state) {
    case 'closed':
      // A success ends the run of consecutive failures.
      return step(current, { ...current, failureCount: 0 }, now);
    case 'half_open': {
      const successCount = current.successCount + 1;
      if (successCount >= settings.halfOpenRequests)
        return step(current, closedRecord(current), now);
      return step(current, { ...current, successCount }, now);
    }
    case 'open':
      // An attempt that was already in flight when the circuit opened got through: the endpoint
      // answers again, so parking further deliveries would only delay them.
      return step(current, closedRecord(current), now);
  }
}

function onFailure(
  current: CircuitBreakerState,
  settings: CircuitSettings,
  now: Date,
): CircuitStep {
  const failureCount = current.failureCount + 1;
  const failed = { ...current, failureCount, lastFailureAt: now };
  const opened: CircuitBreakerState = {
    ...failed,
    state: 'open',
    successCount: 0,
    openedAt: now,
    nextRetryAt: new Date(now.getTime() + settings.timeoutMs),
  };
  switch (current.state) {
    case 'closed':
      return step(current, failureCount >= settings.threshold ? opened : failed, now);
    case 'half_open':
      return step(current, opened, now);
    case 'open':
      return step(current, failed, now);
  }
}

function onTrial(current: CircuitBreakerState, now: Date): CircuitStep {
  if (current.state !== 'open' || isParking(current, now)) return step(current, current, now);
  return step(current, { ...current, state: 'half_open', successCount: 0 }, now);
}

function closedRecord(current: CircuitBreakerState): CircuitBreakerState {
  return {
    ...current,
    state: 'closed',
    failureCount: 0,
    successCount: 0,
    openedAt: null,
    nextRetryAt: null,
  };
}

function sameRecord(a: CircuitBreakerState, b: CircuitBreakerState): boolean {
  return (
    a.state === b.state &&
    a.failureCount === b.failureCount &&
    a.successCount === b.successCount &&
    a.lastFailureAt?.getTime() === b.lastFailureAt?.getTime() &&
    a.openedAt?.getTime() === b.openedAt?.getTime() &&
    a.nextRetryAt?.getTime() === b.nextRetryAt?.getTime()
  );
}
