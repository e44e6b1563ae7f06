/**
 * Bounded or soak: `npm test` runs every fault scenario small enough to keep the whole faults
 * suite near a minute and a half on a 2-core machine; `npm run test:faults:soak`
 * (`HOOKD_FAULTS_SOAK=1`) runs each with at least 2,000 deliveries and more faults.
 */
export const SOAK = process.env['HOOKD_FAULTS_SOAK'] === '1';

/** The bounded value, or the soak value under `HOOKD_FAULTS_SOAK=1`. */
export function size<T>(bounded: T, soak: T): T {
  return SOAK ? soak : bounded;
}

/** Per-test timeout: generous for the soak, tight enough in `npm test` to catch a hang. */
export function testTimeout(boundedMs: number, soakMs = 15 * 60_000): number {
  return SOAK ? soakMs : boundedMs;
}
