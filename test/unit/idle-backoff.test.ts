import { describe, expect, it } from 'vitest';

import { QUEUE_IDLE_JITTER_FRACTION } from '../../src/constants.js';
import { jitterInterval, nextIdleInterval } from '../../src/worker/idle-backoff.js';

describe('nextIdleInterval (spec 3.6)', () => {
  it('grows 1, 2, 4, 8, 16, 30, 30 s with the defaults', () => {
    const sequence = [1000];
    for (let i = 0; i < 6; i++) sequence.push(nextIdleInterval(sequence.at(-1)!, 1000, 30_000, 2));
    expect(sequence).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  });

  const table: Array<[string, [number, number, number, number], number]> = [
    ['factor 1 keeps the base', [4000, 1000, 30_000, 1], 1000],
    ['factor below 1 keeps the base', [4000, 1000, 30_000, 0.5], 1000],
    ['ceiling equal to the base keeps the base', [1000, 1000, 1000, 2], 1000],
    ['ceiling below the base keeps the base', [1000, 1000, 500, 2], 1000],
    ['growth is capped at the ceiling', [20_000, 1000, 30_000, 2], 30_000],
    ['a non-integer factor', [1000, 1000, 30_000, 1.5], 1500],
    ['an interval below the base is floored at the base', [10, 1000, 30_000, 2], 1000],
    ['an interval above the ceiling comes back to the ceiling', [90_000, 1000, 30_000, 2], 30_000],
  ];

  it.each(table)('%s', (_name, [current, base, ceiling, factor], expected) => {
    expect(nextIdleInterval(current, base, ceiling, factor)).toBe(expected);
  });
});

describe('jitterInterval', () => {
  it('uses a ±20 % spread', () => {
    expect(QUEUE_IDLE_JITTER_FRACTION).toBe(0.2);
    expect(jitterInterval(1000, () => 0)).toBe(800);
    expect(jitterInterval(1000, () => 0.5)).toBe(1000);
    expect(jitterInterval(1000, () => 0.999_999)).toBe(1200);
  });

  it('stays within ±20 % and at least 1 ms over many random draws', () => {
    const seen = new Set<number>();
    for (const interval of [1, 2, 7, 1000, 30_000]) {
      for (let i = 0; i < 4000; i++) {
        const value = jitterInterval(interval);
        expect(value).toBeGreaterThanOrEqual(Math.max(1, Math.floor(interval * 0.8)));
        expect(value).toBeLessThanOrEqual(Math.ceil(interval * 1.2));
        expect(Number.isInteger(value)).toBe(true);
        if (interval === 30_000) seen.add(value);
      }
    }
    // It really spreads: thousands of draws over a 12 s window give many distinct values.
    expect(seen.size).toBeGreaterThan(1000);
  });

  it('never returns less than 1 ms', () => {
    expect(jitterInterval(0, () => 0)).toBe(1);
    expect(jitterInterval(1, () => 0)).toBe(1);
    expect(jitterInterval(0.1, () => 0.5)).toBe(1);
  });
});
