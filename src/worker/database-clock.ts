/**
 * The database's clock, estimated from this process's. Leases, due times and retry times are
 * computed by the repository on its own clock; the times a worker writes into a request
 * (`webhook-timestamp`, which receivers compare with theirs) and the waits it derives from
 * stored times follow the same clock, so a host whose clock is minutes off neither signs
 * webhooks that receivers refuse as stale nor waits minutes too long for a circuit to reopen.
 */

/** Estimates older than this are replaced by any new sample, however imprecise. */
const MAX_ESTIMATE_AGE_MS = 30_000;
/** Offsets smaller than this are normal drift and network noise: not worth a warning. */
export const NOTABLE_OFFSET_MS = 2_000;

/** What `observe` learned, for logging. */
export interface OffsetChange {
  readonly offsetMs: number;
  /** The offset became notable, or moved by a notable amount since it last was. */
  readonly notable: boolean;
}

export class DatabaseClock {
  readonly #localNow: () => number;
  readonly #monotonicNow: () => number;
  #offsetMs = 0;
  /** Half the round trip of the sample the offset came from: its uncertainty. */
  #errorMs = Number.POSITIVE_INFINITY;
  #sampledAt = Number.NEGATIVE_INFINITY;
  #reportedOffsetMs = 0;

  constructor(localNow: () => number, monotonicNow: () => number = () => performance.now()) {
    this.#localNow = localNow;
    this.#monotonicNow = monotonicNow;
  }

  /** This process's clock (uncorrected), in epoch milliseconds. */
  localNow(): number {
    return this.#localNow();
  }

  /** The current time on the database's clock, in epoch milliseconds. */
  now(): number {
    return this.#localNow() + this.#offsetMs;
  }

  /** How far the database's clock is ahead of this process's (negative: behind). */
  get offsetMs(): number {
    return this.#offsetMs;
  }

  /**
   * Takes a reading: the database said `databaseMs` during a call that started at `sentAt` and
   * ended at `answeredAt` (this process's clock). The most precise recent reading wins.
   */
  observe(databaseMs: number, sentAt: number, answeredAt: number): OffsetChange | null {
    if (!Number.isFinite(databaseMs) || answeredAt < sentAt) return null;
    const errorMs = (answeredAt - sentAt) / 2;
    const monotonic = this.#monotonicNow();
    const stale = monotonic - this.#sampledAt > MAX_ESTIMATE_AGE_MS;
    if (!stale && errorMs > this.#errorMs) return null;
    this.#offsetMs = Math.round(databaseMs - (sentAt + errorMs));
    this.#errorMs = errorMs;
    this.#sampledAt = monotonic;
    const moved = Math.abs(this.#offsetMs - this.#reportedOffsetMs) >= NOTABLE_OFFSET_MS;
    if (moved) this.#reportedOffsetMs = this.#offsetMs;
    return { offsetMs: this.#offsetMs, notable: moved };
  }
}
