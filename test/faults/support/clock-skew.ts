/**
 * Preload (`node --import`) that moves this process's wall clock by
 * `HOOKD_FAULTS_CLOCK_SKEW_MS` milliseconds: `Date.now()` and `new Date()` are off by that much,
 * while dates built from explicit values (those parsed from database rows) stay exact, and the
 * monotonic clock (`performance.now()`) is untouched — as on a host whose clock is wrong.
 */
const skewMs = Number(process.env['HOOKD_FAULTS_CLOCK_SKEW_MS'] ?? 0);

if (skewMs !== 0) {
  const RealDate = Date;
  class SkewedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(RealDate.now() + skewMs);
      else super(...(args as [string | number | Date]));
    }

    static override now(): number {
      return RealDate.now() + skewMs;
    }
  }
  globalThis.Date = SkewedDate as DateConstructor;
}
