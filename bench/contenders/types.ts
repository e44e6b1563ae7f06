/**
 * What every contender (node-hookd, pg-boss, graphile-worker, the ceiling) provides to the
 * benchmark processes. Each method runs inside a child process; `Info` is the JSON handed from the
 * process that set a run up to the processes that produce or deliver in it.
 */

/** Identifies one fresh run's storage; JSON-serialisable. */
export interface Info {
  readonly contender: string;
  /** Schema name or table prefix of this run (fresh per run). */
  readonly namespace: string;
  /** Webhook endpoint URLs of this run. */
  readonly urls: readonly string[];
  /** Contender-specific ids (e.g. node-hookd subscription ids, one per URL). */
  readonly targets: readonly string[];
}

/** Settings of a contender's delivering side, fixed for the whole benchmark. */
export type WorkerSettings = Readonly<Record<string, number | string | boolean>>;

/** A producer: queues webhooks as the application would. */
export interface Producer {
  /** One delivery to endpoint `endpoint` through the single-item API. */
  one(payload: Record<string, unknown>, endpoint: number): Promise<void>;
  /** Several deliveries through the batch API (one call). */
  batch(payloads: readonly Record<string, unknown>[], endpoint: number): Promise<void>;
  /** Largest number of items the batch API takes per call. */
  readonly maxBatch: number;
  close(): Promise<void>;
}

/** A running delivering side. */
export interface Workers {
  stop(): Promise<void>;
}

export interface Contender {
  readonly name: string;
  /** Fresh storage for one run, with `urls` as endpoints. */
  setup(runId: string, urls: readonly string[]): Promise<Info>;
  producer(info: Info): Promise<Producer>;
  start(info: Info, settings: WorkerSettings): Promise<Workers>;
  /** Deliveries (jobs) not yet finished (cheap: polled while a run drains). */
  pending(info: Info): Promise<number>;
  /** Deliveries (jobs) recorded as succeeded; `null` where completed jobs are deleted. */
  succeeded(info: Info): Promise<number | null>;
  /** Refreshes the planner statistics of the run's tables (autovacuum's job in production). */
  analyze(info: Info): Promise<void>;
  /** Drops the run's storage. */
  teardown(info: Info): Promise<void>;
  /** The settings used for the benchmark, for the record. */
  describe(settings: WorkerSettings): Record<string, unknown>;
}
