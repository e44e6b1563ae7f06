import { describe, expect, it } from 'vitest';

import { DatabaseClock, NOTABLE_OFFSET_MS } from '../../src/worker/database-clock.js';

/** A clock whose local and monotonic time the test sets. */
function fixture(local = 1_000_000) {
  const time = { local, monotonic: 0 };
  const clock = new DatabaseClock(
    () => time.local,
    () => time.monotonic,
  );
  return { time, clock };
}

describe('DatabaseClock', () => {
  it('reads the local clock until it has a reading', () => {
    const { time, clock } = fixture();
    expect(clock.offsetMs).toBe(0);
    expect(clock.now()).toBe(time.local);
  });

  it('places the database reading in the middle of the round trip', () => {
    const { time, clock } = fixture();
    // Sent at 1,000,000, answered 10 ms later; the database said 5 minutes later than midway.
    expect(clock.observe(1_000_005 + 300_000, 1_000_000, 1_000_010)).toEqual({
      offsetMs: 300_000,
      notable: true,
    });
    time.local = 2_000_000;
    expect(clock.now()).toBe(2_300_000);
  });

  it('keeps the most precise recent reading, and replaces an old one with any', () => {
    const { time, clock } = fixture();
    clock.observe(1_000_002 - 1_000, 1_000_000, 1_000_004); // ±2 ms: 1 s behind
    // Less precise (±50 ms): ignored while the precise one is recent.
    expect(clock.observe(1_000_050 + 5_000, 1_000_000, 1_000_100)).toBeNull();
    expect(clock.offsetMs).toBe(-1_000);
    // As precise or better: taken.
    expect(clock.observe(1_000_001 - 1_200, 1_000_000, 1_000_002)?.offsetMs).toBe(-1_200);
    // Half a minute later, even an imprecise reading replaces it.
    time.monotonic = 31_000;
    expect(clock.observe(1_000_050 + 5_000, 1_000_000, 1_000_100)?.offsetMs).toBe(5_000);
  });

  it('calls an offset notable when it first exceeds the threshold and each time it moves by as much', () => {
    const { time, clock } = fixture();
    const observe = (offset: number) => {
      time.monotonic += 60_000;
      return clock.observe(1_000_000 + offset, 1_000_000, 1_000_000)?.notable;
    };
    expect(observe(NOTABLE_OFFSET_MS - 1)).toBe(false);
    expect(observe(NOTABLE_OFFSET_MS)).toBe(true);
    expect(observe(NOTABLE_OFFSET_MS + 10)).toBe(false);
    expect(observe(0)).toBe(true); // back in agreement
    expect(observe(-NOTABLE_OFFSET_MS)).toBe(true);
  });

  it('ignores readings it cannot use', () => {
    const { clock } = fixture();
    expect(clock.observe(Number.NaN, 1_000_000, 1_000_010)).toBeNull();
    expect(clock.observe(2_000_000, 1_000_010, 1_000_000)).toBeNull();
    expect(clock.offsetMs).toBe(0);
  });
});
