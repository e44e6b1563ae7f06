import { describe, expect, it } from 'vitest';

import type { CircuitBreakerState } from '../../src/models.js';
import {
  applyCircuitEvent,
  closedCircuit,
  isParking,
  type CircuitSettings,
} from '../../src/retry/circuit-breaker.js';

const ENDPOINT = 'https://example.com/hooks';
const settings: CircuitSettings = { threshold: 3, timeoutMs: 60_000, halfOpenRequests: 2 };
const t0 = new Date(Date.UTC(2030, 0, 1, 0, 0, 0));
const at = (ms: number) => new Date(t0.getTime() + ms);

function open(overrides: Partial<CircuitBreakerState> = {}): CircuitBreakerState {
  return {
    endpoint: ENDPOINT,
    state: 'open',
    failureCount: 3,
    successCount: 0,
    lastFailureAt: t0,
    openedAt: t0,
    nextRetryAt: at(60_000),
    ...overrides,
  };
}

describe('closedCircuit and isParking', () => {
  it('starts closed with no counts', () => {
    expect(closedCircuit(ENDPOINT)).toEqual({
      endpoint: ENDPOINT,
      state: 'closed',
      failureCount: 0,
      successCount: 0,
      lastFailureAt: null,
      openedAt: null,
      nextRetryAt: null,
    });
  });

  it('parks only while open and before nextRetryAt', () => {
    expect(isParking(open(), at(59_999))).toBe(true);
    expect(isParking(open(), at(60_000))).toBe(false);
    expect(isParking(open(), at(60_001))).toBe(false);
    expect(isParking(open({ nextRetryAt: null }), t0)).toBe(false);
    expect(isParking(open({ state: 'half_open' }), t0)).toBe(false);
    expect(isParking(closedCircuit(ENDPOINT), t0)).toBe(false);
  });
});

describe('applyCircuitEvent', () => {
  it('counts failures while closed and opens at the threshold', () => {
    let state = closedCircuit(ENDPOINT);
    for (let i = 1; i < settings.threshold; i++) {
      const step = applyCircuitEvent(state, 'failure', settings, at(i));
      expect(step.state).toMatchObject({ state: 'closed', failureCount: i, lastFailureAt: at(i) });
      expect(step.changed).toBe(true);
      expect(step.transition).toBeNull();
      state = step.state;
    }
    const opening = applyCircuitEvent(state, 'failure', settings, at(10));
    expect(opening.state).toEqual({
      endpoint: ENDPOINT,
      state: 'open',
      failureCount: 3,
      successCount: 0,
      lastFailureAt: at(10),
      openedAt: at(10),
      nextRetryAt: at(10 + settings.timeoutMs),
    });
    expect(opening.transition).toEqual({
      endpoint: ENDPOINT,
      from: 'closed',
      to: 'open',
      failureCount: 3,
      at: at(10),
    });
  });

  it('opens at once with a threshold of 1', () => {
    const step = applyCircuitEvent(
      closedCircuit(ENDPOINT),
      'failure',
      { ...settings, threshold: 1 },
      t0,
    );
    expect(step.state.state).toBe('open');
    expect(step.transition?.to).toBe('open');
  });

  it('resets the failure count on a success while closed', () => {
    const failing = { ...closedCircuit(ENDPOINT), failureCount: 2, lastFailureAt: t0 };
    const step = applyCircuitEvent(failing, 'success', settings, at(5));
    expect(step.state).toEqual({ ...failing, failureCount: 0 });
    expect(step.changed).toBe(true);
    expect(step.transition).toBeNull();
  });

  it('reports no change for a success on a healthy closed circuit', () => {
    const healthy = closedCircuit(ENDPOINT);
    const step = applyCircuitEvent(healthy, 'success', settings, at(5));
    expect(step.changed).toBe(false);
    expect(step.transition).toBeNull();
    expect(step.state).toEqual(healthy);
  });

  it('stays open on a further failure, counting it but keeping the retry time', () => {
    const step = applyCircuitEvent(open(), 'failure', settings, at(1000));
    expect(step.state).toEqual(open({ failureCount: 4, lastFailureAt: at(1000) }));
    expect(step.changed).toBe(true);
    expect(step.transition).toBeNull();
  });

  it('refuses a trial while the timeout runs, without changing anything', () => {
    const step = applyCircuitEvent(open(), 'trial', settings, at(59_999));
    expect(step.changed).toBe(false);
    expect(step.transition).toBeNull();
    expect(step.state).toEqual(open());
  });

  it('goes half-open on a trial after the timeout, keeping the failure count', () => {
    const step = applyCircuitEvent(open({ successCount: 7 }), 'trial', settings, at(60_000));
    expect(step.state).toEqual(open({ state: 'half_open', successCount: 0 }));
    expect(step.state.failureCount).toBe(3);
    expect(step.changed).toBe(true);
    expect(step.transition).toEqual({
      endpoint: ENDPOINT,
      from: 'open',
      to: 'half_open',
      failureCount: 3,
      at: at(60_000),
    });
  });

  it('ignores a trial on a closed or half-open circuit', () => {
    for (const state of [closedCircuit(ENDPOINT), open({ state: 'half_open', successCount: 1 })]) {
      const step = applyCircuitEvent(state, 'trial', settings, at(120_000));
      expect(step.changed).toBe(false);
      expect(step.transition).toBeNull();
      expect(step.state).toEqual(state);
    }
  });

  it('closes after halfOpenRequests successes in half-open, resetting the counts', () => {
    const halfOpen = open({ state: 'half_open' });
    const first = applyCircuitEvent(halfOpen, 'success', settings, at(61_000));
    expect(first.state).toEqual({ ...halfOpen, successCount: 1 });
    expect(first.transition).toBeNull();
    const second = applyCircuitEvent(first.state, 'success', settings, at(62_000));
    expect(second.state).toEqual({
      endpoint: ENDPOINT,
      state: 'closed',
      failureCount: 0,
      successCount: 0,
      lastFailureAt: t0,
      openedAt: null,
      nextRetryAt: null,
    });
    expect(second.transition).toEqual({
      endpoint: ENDPOINT,
      from: 'half_open',
      to: 'closed',
      failureCount: 0,
      at: at(62_000),
    });
  });

  it('reopens on a failure in half-open with a fresh retry time', () => {
    const halfOpen = open({ state: 'half_open', successCount: 1 });
    const step = applyCircuitEvent(halfOpen, 'failure', settings, at(61_000));
    expect(step.state).toEqual({
      endpoint: ENDPOINT,
      state: 'open',
      failureCount: 4,
      successCount: 0,
      lastFailureAt: at(61_000),
      openedAt: at(61_000),
      nextRetryAt: at(61_000 + settings.timeoutMs),
    });
    expect(step.transition).toMatchObject({ from: 'half_open', to: 'open', failureCount: 4 });
  });

  it('closes an open circuit when an in-flight attempt succeeds', () => {
    const step = applyCircuitEvent(open(), 'success', settings, at(10));
    expect(step.state).toMatchObject({
      state: 'closed',
      failureCount: 0,
      successCount: 0,
      openedAt: null,
      nextRetryAt: null,
    });
    expect(step.transition).toMatchObject({ from: 'open', to: 'closed' });
  });

  it('does not modify the state it is given', () => {
    const state = open({ state: 'half_open' });
    const snapshot = structuredClone(state);
    applyCircuitEvent(state, 'failure', settings, at(1));
    applyCircuitEvent(state, 'success', settings, at(1));
    expect(state).toEqual(snapshot);
  });
});
