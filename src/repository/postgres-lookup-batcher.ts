/**
 * Coalesces concurrent reads by key into one statement, the way `InsertBatcher` coalesces
 * inserts: keys asked for in the same turn of the event loop are read together at once, and keys
 * asked for while `maxInFlight` reads are under way wait for one of them to finish and then go
 * together. Every caller still gets a read that started after it asked, so nothing is served
 * from a cache: it is the same read, shared.
 *
 * `queueDelivery` reads its subscription before it inserts; with one statement per call, those
 * reads cost more than the coalesced inserts themselves (a parse, a plan and a round trip each).
 */

import { performance } from 'node:perf_hooks';

/** Tuning of a {@link LookupBatcher}. */
export interface LookupBatcherOptions {
  /** Most keys per statement. @default 500 */
  readonly maxBatchSize?: number;
  /** Most read statements under way at once. @default 2 */
  readonly maxInFlight?: number;
  /** As `InsertBatcher`'s `busyGroupMs`: a busy batcher lets reads gather this long. @default 0 */
  readonly busyGroupMs?: number;
}

const BUSY_WINDOW_MS = 10;

interface Waiting<V> {
  readonly resolve: Array<(value: V | undefined) => void>;
  readonly reject: Array<(error: unknown) => void>;
}

/** Groups reads by key; see the module comment. */
export class LookupBatcher<V> {
  readonly #read: (keys: readonly string[]) => Promise<ReadonlyMap<string, V>>;
  readonly #maxBatchSize: number;
  readonly #maxInFlight: number;
  readonly #busyGroupMs: number;
  #pending = new Map<string, Waiting<V>>();
  #scheduled = false;
  readonly #inFlight = new Set<Promise<void>>();
  #lastSentAt = Number.NEGATIVE_INFINITY;

  constructor(
    read: (keys: readonly string[]) => Promise<ReadonlyMap<string, V>>,
    options: LookupBatcherOptions = {},
  ) {
    this.#read = read;
    this.#maxBatchSize = Math.max(1, Math.floor(options.maxBatchSize ?? 500));
    this.#maxInFlight = Math.max(1, Math.floor(options.maxInFlight ?? 2));
    this.#busyGroupMs = Math.max(0, options.busyGroupMs ?? 0);
  }

  /** Reads one key; resolves with its value, `undefined` when there is none. */
  get(key: string): Promise<V | undefined> {
    return new Promise<V | undefined>((resolve, reject) => {
      let waiting = this.#pending.get(key);
      if (!waiting) {
        waiting = { resolve: [], reject: [] };
        this.#pending.set(key, waiting);
      }
      waiting.resolve.push(resolve);
      waiting.reject.push(reject);
      this.#schedule();
    });
  }

  /** Resolves once every read asked for so far has finished. */
  async drain(): Promise<void> {
    while (this.#pending.size > 0 || this.#inFlight.size > 0) {
      if (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#pending.size === 0 || this.#inFlight.size >= this.#maxInFlight)
      return;
    this.#scheduled = true;
    const flush = () => {
      this.#scheduled = false;
      this.#flush();
    };
    if (this.#busyGroupMs > 0 && performance.now() - this.#lastSentAt < BUSY_WINDOW_MS) {
      setTimeout(flush, this.#busyGroupMs);
      return;
    }
    // setImmediate, not a microtask: it also collects calls that resume in this I/O phase.
    setImmediate(flush);
  }

  #flush(): void {
    while (this.#pending.size > 0 && this.#inFlight.size < this.#maxInFlight) {
      let batch: Map<string, Waiting<V>>;
      if (this.#pending.size <= this.#maxBatchSize) {
        batch = this.#pending;
        this.#pending = new Map();
      } else {
        batch = new Map();
        for (const [key, waiting] of this.#pending) {
          if (batch.size >= this.#maxBatchSize) break;
          batch.set(key, waiting);
        }
        for (const key of batch.keys()) this.#pending.delete(key);
      }
      this.#lastSentAt = performance.now();
      const done: Promise<void> = this.#send(batch).finally(() => {
        this.#inFlight.delete(done);
        this.#schedule();
      });
      this.#inFlight.add(done);
    }
  }

  async #send(batch: ReadonlyMap<string, Waiting<V>>): Promise<void> {
    let values: ReadonlyMap<string, V>;
    try {
      values = await this.#read([...batch.keys()]);
    } catch (error) {
      for (const waiting of batch.values()) for (const reject of waiting.reject) reject(error);
      return;
    }
    for (const [key, waiting] of batch) {
      const value = values.get(key);
      for (const resolve of waiting.resolve) resolve(value);
    }
  }
}
