import { performance } from 'node:perf_hooks';

import type { Delivery } from '../models.js';
import type { CreateDeliveryResult, NewDeliveryItem } from './repository.js';

/**
 * Coalesces concurrent single `createDelivery` calls into multi-row inserts.
 *
 * One commit per `queueDelivery()` caps this machine at ≈ 2.5–3k deliveries/s, CPU-bound on the
 * commits themselves; grouping the calls that arrive together into one statement (each caller
 * still awaits its own durable row or its own error) sustained 7k/s (perf.md §3b).
 *
 * The window is adaptive rather than a fixed timer: calls made in the same turn of the event
 * loop go out together at once, and calls that arrive while `maxInFlight` inserts are under way
 * wait for one of them to finish and then go out together. An idle system therefore adds no
 * latency, and a busy one batches as much as its load provides.
 */

/** Tuning of {@link InsertBatcher}. */
export interface InsertBatcherOptions {
  /** Most rows per statement. @default 500 */
  readonly maxBatchSize?: number;
  /**
   * Most body characters per statement (a single larger body still goes out, alone), so large
   * payloads do not add up to one huge statement. @default 4194304
   */
  readonly maxBatchChars?: number;
  /** Most insert statements under way at once. @default 2 */
  readonly maxInFlight?: number;
  /**
   * While busy (a statement went out less than 10 ms ago), calls wait up to this long for
   * company before the next statement goes out; an idle batcher still sends at once. Rows per
   * statement grow with the load instead of shrinking to the few calls of one event-loop turn.
   * @default 0
   */
  readonly busyGroupMs?: number;
}

/** How recently a statement must have gone out for the batcher to count as busy. */
const BUSY_WINDOW_MS = 10;

interface Pending {
  readonly item: NewDeliveryItem;
  resolve(delivery: Delivery): void;
  reject(error: unknown): void;
}

/** Groups single inserts; see the module comment. */
export class InsertBatcher {
  readonly #write: (items: readonly NewDeliveryItem[]) => Promise<CreateDeliveryResult[]>;
  readonly #maxBatchSize: number;
  readonly #maxBatchChars: number;
  readonly #maxInFlight: number;
  readonly #busyGroupMs: number;
  #pending: Pending[] = [];
  #scheduled = false;
  readonly #inFlight = new Set<Promise<void>>();
  #lastSentAt = Number.NEGATIVE_INFINITY;

  constructor(
    write: (items: readonly NewDeliveryItem[]) => Promise<CreateDeliveryResult[]>,
    options: InsertBatcherOptions = {},
  ) {
    this.#write = write;
    this.#maxBatchSize = Math.max(1, Math.floor(options.maxBatchSize ?? 500));
    this.#maxBatchChars = Math.max(1, Math.floor(options.maxBatchChars ?? 4 * 1024 * 1024));
    this.#maxInFlight = Math.max(1, Math.floor(options.maxInFlight ?? 2));
    this.#busyGroupMs = Math.max(0, options.busyGroupMs ?? 0);
  }

  /** Queues one insert; resolves with its row or rejects with its own error. */
  submit(item: NewDeliveryItem): Promise<Delivery> {
    return new Promise<Delivery>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves once everything submitted so far has been written (or has failed). */
  async drain(): Promise<void> {
    while (this.#pending.length > 0 || this.#inFlight.size > 0) {
      if (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#pending.length === 0 || this.#inFlight.size >= this.#maxInFlight)
      return;
    this.#scheduled = true;
    const flush = () => {
      this.#scheduled = false;
      this.#flush();
    };
    if (
      this.#busyGroupMs > 0 &&
      this.#pending.length < this.#maxBatchSize &&
      performance.now() - this.#lastSentAt < BUSY_WINDOW_MS
    ) {
      setTimeout(flush, this.#busyGroupMs);
      return;
    }
    // setImmediate, not a microtask: it also collects calls that resume in this I/O phase.
    setImmediate(flush);
  }

  #flush(): void {
    while (this.#pending.length > 0 && this.#inFlight.size < this.#maxInFlight) {
      const batch = this.#pending.splice(0, this.#batchLength());
      this.#lastSentAt = performance.now();
      const done: Promise<void> = this.#send(batch).finally(() => {
        this.#inFlight.delete(done);
        this.#schedule();
      });
      this.#inFlight.add(done);
    }
  }

  /** How many of the pending calls the next statement takes (always at least one). */
  #batchLength(): number {
    let chars = 0;
    let count = 0;
    for (const entry of this.#pending) {
      if (count >= this.#maxBatchSize) break;
      chars += entry.item.delivery.body.length;
      if (count > 0 && chars > this.#maxBatchChars) break;
      count += 1;
    }
    return count;
  }

  async #send(batch: readonly Pending[]): Promise<void> {
    let results: CreateDeliveryResult[];
    try {
      results = await this.#write(batch.map((entry) => entry.item));
    } catch (error) {
      for (const entry of batch) entry.reject(error);
      return;
    }
    batch.forEach((entry, index) => {
      const result = results[index];
      if (result?.ok) entry.resolve(result.delivery);
      else entry.reject(result?.error ?? new Error('no result for a batched insert'));
    });
  }
}
