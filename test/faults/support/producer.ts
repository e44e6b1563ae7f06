import {
  Manager,
  PostgresRepository,
  type RetryPolicy,
  type Subscription,
} from '../../../src/index.js';

/**
 * The application side of a scenario: a `Manager` that is never started (it only queues, as a
 * web process of an application would) on a repository of its own.
 */
export class Producer {
  readonly manager: Manager;
  readonly repository: PostgresRepository;

  constructor(
    databaseUrl: string,
    tablePrefix: string,
    options: { applicationName?: string; timeoutsMs?: number } = {},
  ) {
    this.repository = new PostgresRepository(databaseUrl, {
      tablePrefix,
      pool: {
        max: 4,
        ...(options.applicationName === undefined
          ? {}
          : { applicationName: options.applicationName }),
        ...(options.timeoutsMs === undefined
          ? {}
          : { connectionTimeoutMillis: options.timeoutsMs }),
      },
      ...(options.timeoutsMs === undefined ? {} : { queryTimeoutMs: options.timeoutsMs }),
    });
    this.manager = new Manager({}, this.repository, { allowPrivateDestinations: true });
  }

  /** A subscription of tenant `faults` to `url`. */
  subscribe(url: string, retryPolicy?: Partial<RetryPolicy>): Promise<Subscription> {
    return this.manager.createSubscription({
      tenantId: 'faults',
      url,
      secret: 'whsec_ZmF1bHRzLWZhdWx0cy1mYXVsdHM=',
      eventTypes: ['fault.*'],
      ...(retryPolicy === undefined ? {} : { retryPolicy }),
    });
  }

  /**
   * Queues one delivery to each subscription of `targets`, in order, in calls of at most 100
   * (`queueDeliveries`); resolves with the ids of the deliveries stored.
   */
  async queue(targets: readonly Subscription[], tag = ''): Promise<string[]> {
    const ids: string[] = [];
    for (let start = 0; start < targets.length; start += 100) {
      const chunk = targets.slice(start, start + 100);
      const response = await this.manager.queueDeliveries({
        deliveries: chunk.map((subscription, index) => ({
          subscriptionId: subscription.id,
          eventType: 'fault.test',
          payload: { tag, n: start + index },
        })),
      });
      for (const result of response.results) {
        if (!result.success) throw new Error(`queueing failed: ${result.error.message}`);
        ids.push(result.result.id);
      }
    }
    return ids;
  }

  /**
   * Queues `targets` in small batches spread over about `durationMs` (load that keeps arriving
   * while faults happen); resolves with every id stored.
   */
  async trickle(
    targets: readonly Subscription[],
    durationMs: number,
    options: { batch?: number; tag?: string; gate?: Gate } = {},
  ): Promise<string[]> {
    const batch = options.batch ?? 10;
    const batches = Math.ceil(targets.length / batch);
    const pauseMs = batches > 1 ? durationMs / batches : 0;
    const gate = options.gate ?? new Gate();
    const ids: string[] = [];
    for (let start = 0; start < targets.length; start += batch) {
      const chunk = targets.slice(start, start + batch);
      ids.push(...(await gate.run(() => this.queue(chunk, options.tag))));
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
    return ids;
  }

  close(): Promise<void> {
    return this.repository.close();
  }
}

/** `count` targets cycling through `subscriptions` in a shuffled order. */
export function spread(subscriptions: readonly Subscription[], count: number): Subscription[] {
  const targets = Array.from({ length: count }, (_, i) => subscriptions[i % subscriptions.length]!);
  for (let i = targets.length - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [targets[i], targets[j]] = [targets[j]!, targets[i]!];
  }
  return targets;
}

/**
 * Lets a test hold the load back: `close()` resolves once the call under way has finished and
 * no new one starts until `open()`, so no queueing call straddles a fault whose outcome it could
 * not know.
 */
export class Gate {
  #closed: Promise<void> | null = null;
  #open: () => void = () => undefined;
  #busy: Promise<unknown> = Promise.resolve();

  async run<T>(work: () => Promise<T>): Promise<T> {
    while (this.#closed) await this.#closed;
    const running = work();
    this.#busy = running.catch(() => undefined);
    return running;
  }

  async close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => (this.#open = resolve));
    await this.#busy;
  }

  open(): void {
    this.#closed = null;
    this.#open();
  }
}
