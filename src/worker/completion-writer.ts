import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import type { CircuitSettings, CircuitTransition } from '../retry/circuit-breaker.js';
import type {
  AttemptCompletion,
  CircuitEventInput,
  CompletionResult,
  Repository,
} from '../repository/repository.js';

/**
 * Records finished attempts in batches: everything that finished while the previous write was
 * under way goes out in the next single `completeDeliveryAttempts` call (and one
 * `recordCircuitEvents` call), so a busy pool costs a bounded number of round trips per batch
 * instead of several per delivery, and an idle one adds no delay (a lone completion is written
 * at once).
 *
 * An attempt that happened must be recorded: failed writes are retried with backoff until they
 * succeed or the writer is abandoned at the end of a shutdown.
 */

/** What recording one entry produced. */
export interface RecordedCompletion {
  readonly result: CompletionResult;
  /** The circuit transition the entry's circuit event caused, if any. */
  readonly transition: CircuitTransition | null;
}

interface Entry {
  readonly completion: AttemptCompletion;
  readonly circuit: CircuitEventInput | null;
  result?: CompletionResult;
  resolve(recorded: RecordedCompletion): void;
  reject(error: unknown): void;
}

const FIRST_RETRY_DELAY_MS = 50;
const MAX_RETRY_DELAY_MS = 5_000;
/**
 * Under load (a write finished within BUSY_WINDOW_MS), a write of fewer than LINGER_BATCH
 * entries waits LINGER_MS for more: each statement has a fixed cost (round trip, commit, flush)
 * — PostgreSQL spent ~55–65 µs per row on batches of 35 and ~50–55 on batches of 100 — and
 * nothing waits on the outcome but its bookkeeping, the worker slot being free already. An idle
 * writer writes a lone completion at once, and failures (which may open a circuit) never wait.
 */
const LINGER_MS = 3;
const LINGER_BATCH = 100;
const BUSY_WINDOW_MS = 20;

/** Batches and retries the bookkeeping writes of finished attempts. */
export class CompletionWriter {
  readonly #repository: Repository;
  readonly #circuitSettings: CircuitSettings | null;
  readonly #onWriteError: (operation: string, error: unknown) => void;
  #completions: Entry[] = [];
  #circuitEvents: Entry[] = [];
  #flushing: Promise<void> | null = null;
  #abandoned: Error | null = null;
  readonly #abort = new AbortController();
  /** `performance.now()` when the last completion write finished. */
  #lastWriteAt = Number.NEGATIVE_INFINITY;
  /** Something waiting to be written should not wait for company (see LINGER_MS). */
  #urgent = false;

  constructor(options: {
    repository: Repository;
    /** `null` when the circuit breaker is disabled: circuit events are then never written. */
    circuitSettings: CircuitSettings | null;
    onWriteError: (operation: string, error: unknown) => void;
  }) {
    this.#repository = options.repository;
    this.#circuitSettings = options.circuitSettings;
    this.#onWriteError = options.onWriteError;
  }

  /** Queues a completion; resolves once it (and its circuit event) is durably recorded. */
  submit(
    completion: AttemptCompletion,
    circuit: CircuitEventInput | null,
  ): Promise<RecordedCompletion> {
    if (this.#abandoned) return Promise.reject(this.#abandoned);
    return new Promise<RecordedCompletion>((resolve, reject) => {
      this.#completions.push({
        completion,
        circuit: this.#circuitSettings ? circuit : null,
        resolve,
        reject,
      });
      // A failure may be what opens a circuit: its write does not linger.
      if (circuit !== null || completion.outcome.status !== 'success') this.#urgent = true;
      this.#flushing ??= this.#flushLoop().finally(() => {
        this.#flushing = null;
      });
    });
  }

  /** Number of entries not yet recorded. */
  get backlog(): number {
    return this.#completions.length + this.#circuitEvents.length;
  }

  /** Resolves when everything submitted so far is recorded. */
  async drain(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  /** Stops retrying: entries still unrecorded are rejected with `reason`. */
  abandon(reason: Error): void {
    this.#abandoned = reason;
    this.#abort.abort(reason);
    for (const entry of [...this.#completions, ...this.#circuitEvents]) entry.reject(reason);
    this.#completions = [];
    this.#circuitEvents = [];
  }

  async #flushLoop(): Promise<void> {
    let failures = 0;
    // Yield once so completions that finish in the same tick share the first write.
    await Promise.resolve();
    while (!this.#abandoned && (this.#completions.length > 0 || this.#circuitEvents.length > 0)) {
      if (
        LINGER_MS > 0 &&
        !this.#urgent &&
        this.#completions.length < LINGER_BATCH &&
        performance.now() - this.#lastWriteAt < BUSY_WINDOW_MS
      ) {
        await sleep(LINGER_MS);
      }
      this.#urgent = false;
      try {
        if (this.#completions.length > 0) await this.#writeCompletions();
        if (this.#circuitEvents.length > 0) await this.#writeCircuitEvents();
        failures = 0;
      } catch (error) {
        failures += 1;
        const delay = Math.min(MAX_RETRY_DELAY_MS, FIRST_RETRY_DELAY_MS * 2 ** (failures - 1));
        await sleep(delay, undefined, { signal: this.#abort.signal }).catch(() => undefined);
      }
    }
  }

  async #writeCompletions(): Promise<void> {
    const batch = this.#completions;
    this.#completions = [];
    let results: CompletionResult[];
    try {
      results = await this.#repository.completeDeliveryAttempts(
        batch.map((entry) => entry.completion),
      );
      this.#lastWriteAt = performance.now();
    } catch (error) {
      this.#completions = [...batch, ...this.#completions];
      this.#onWriteError('completeDeliveryAttempts', error);
      throw error;
    }
    batch.forEach((entry, index) => {
      entry.result = results[index] ?? { applied: false, nextRetryAt: null };
      if (entry.circuit) this.#circuitEvents.push(entry);
      else entry.resolve({ result: entry.result, transition: null });
    });
  }

  async #writeCircuitEvents(): Promise<void> {
    const batch = this.#circuitEvents;
    this.#circuitEvents = [];
    let transitions: Array<CircuitTransition | null>;
    try {
      transitions = await this.#repository.recordCircuitEvents(
        batch.map((entry) => entry.circuit!),
        this.#circuitSettings!,
      );
    } catch (error) {
      this.#circuitEvents = [...batch, ...this.#circuitEvents];
      this.#onWriteError('recordCircuitEvents', error);
      throw error;
    }
    batch.forEach((entry, index) =>
      entry.resolve({ result: entry.result!, transition: transitions[index] ?? null }),
    );
  }
}
