import { QUEUE_IDLE_JITTER_FRACTION } from '../constants.js';

/**
 * Poll timing of an idle worker pool (go-hookd §3.6). Pure functions.
 */

/**
 * The next poll interval after a poll that found nothing: the current one times `factor`,
 * capped at `ceiling`, never below `base`. A factor of 1 (or a ceiling at the base) keeps it
 * fixed. The default sequence is 1 s, 2 s, 4 s, 8 s, 16 s, 30 s, 30 s …
 */
export function nextIdleInterval(
  current: number,
  base: number,
  ceiling: number,
  factor: number,
): number {
  if (factor <= 1 || ceiling <= base) return base;
  return Math.max(base, Math.min(current * factor, ceiling));
}

/**
 * Spreads an interval by ±20 % (at least 1 ms), so many idle processes do not poll in lock-step.
 */
export function jitterInterval(interval: number, random: () => number = Math.random): number {
  const spread = interval * QUEUE_IDLE_JITTER_FRACTION;
  return Math.max(1, Math.round(interval - spread + 2 * spread * random()));
}
