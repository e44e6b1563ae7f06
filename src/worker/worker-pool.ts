import { performance } from 'node:perf_hooks';

import { claimLease, effectiveBatchSize, type ResolvedConfig } from '../config.js';
import { DELIVERY_BOOKKEEPING_TIMEOUT_MS, MIN_CLAIM_LEASE_MARGIN_MS } from '../constants.js';
import { HookdError, isHookdError } from '../errors.js';
import {
  attemptEvent,
  publishCircuitTransition,
  startedEvent,
  type Publish,
} from '../event-payloads.js';
import type { Logger } from '../logger.js';
import type {
  ClaimRelease,
  ClaimedDelivery,
  CircuitEventInput,
  Repository,
} from '../repository/repository.js';
import type { CircuitSettings } from '../retry/circuit-breaker.js';
import { AbortHandle } from '../delivery/http-sender.js';
import { CompletionWriter, type RecordedCompletion } from './completion-writer.js';
import { performAttempt, type AttemptContext, type AttemptReport } from './delivery-attempt.js';
import { DatabaseClock, NOTABLE_OFFSET_MS } from './database-clock.js';
import { jitterInterval, nextIdleInterval } from './idle-backoff.js';

/**
 * The delivery engine of one process. It claims due deliveries in batches sized to its free
 * slots, runs up to `workerCount` attempts at once, records their outcomes in batches, and
 * sleeps with idle backoff when the queue is empty — unless `notify()` (a local enqueue, or a
 * NOTIFY from another process) wakes it, in which case it claims at once.
 *
 * Safety rules it keeps:
 * - A claim is a lease with a fencing token; an attempt that waited long enough for its lease to
 *   be in doubt renews it first and is dropped, unsent, if the claim was lost.
 * - Deliveries that will not be attempted now (paused subscription, open circuit, shutdown) are
 *   released with their attempt count refunded, never left to wait out a whole lease.
 * - Every attempt that started is recorded. Its worker slot is freed when its request is over;
 *   until its outcome is written the delivery still counts as held, so unrecorded attempts are
 *   bounded by the claim capacity, and stop() waits for them.
 */

/** Dependencies of a {@link WorkerPool}. */
export interface WorkerPoolOptions {
  readonly repository: Repository;
  readonly config: ResolvedConfig;
  /** Built per start, because the HTTP agent is recreated after a stop. */
  readonly attemptContext: () => AttemptContext;
  readonly circuitBreakerEnabled: boolean;
  readonly publish: Publish;
  readonly logger: Logger;
  readonly random?: () => number;
  /**
   * The database's clock, which this pool keeps reading off its claims; attempts should take
   * their time from it (see DatabaseClock). @default a clock of its own on `Date.now`
   */
  readonly clock?: DatabaseClock;
}

interface Held {
  readonly item: ClaimedDelivery;
  /** `performance.now()` just before the claim statement was sent: the lease started after it. */
  readonly claimedAt: number;
  /** Endpoint whose half-open trial slot this delivery holds. */
  readonly trialEndpoint: string | null;
  /** The origin (scheme://host:port) its request goes to: the unit of the per-origin cap. */
  readonly origin: string;
  /** The endpoint URL (what the circuit breaker keys on). */
  readonly endpoint: string;
  /** `performance.now()` when it joined the queue. */
  readonly queuedAt: number;
}

/**
 * A class rather than an object literal: a held delivery lives long enough for V8 to allocate a
 * literal's objects directly in the old generation in some runs ("allocation-site pretenuring"),
 * where each kept its claimed delivery, request body included, alive through every
 * young-generation collection until the next full one. V8 never pretenures class instances.
 */
class HeldDelivery implements Held {
  readonly item: ClaimedDelivery;
  readonly claimedAt: number;
  readonly trialEndpoint: string | null;
  readonly origin: string;
  readonly endpoint: string;
  readonly queuedAt: number;

  constructor(
    item: ClaimedDelivery,
    claimedAt: number,
    trialEndpoint: string | null,
    origin: string,
    endpoint: string,
    queuedAt: number,
  ) {
    this.item = item;
    this.claimedAt = claimedAt;
    this.trialEndpoint = trialEndpoint;
    this.origin = origin;
    this.endpoint = endpoint;
    this.queuedAt = queuedAt;
  }
}

/**
 * One origin's share of the pool: requests under way, how long they take, and its claimed
 * deliveries waiting to start (in claim order).
 */
interface OriginLoad {
  sending: number;
  /** Moving average of its attempts' durations, in ms (0 until one finished). */
  averageMs: number;
  /** `performance.now()` when one of its requests last finished (or it was first seen). */
  lastDoneAt: number;
  /** Its claimed deliveries not started yet, oldest first. */
  readonly queue: Held[];
}

/** Largest claim statement, whatever the pool size. */
const MAX_CLAIM_SIZE = 500;
/**
 * A delivery whose origin is at its request cap, and slow (none of its requests finished for
 * this long), waits this long for it at most; then it goes back to the database (attempt
 * refunded) so it cannot keep places of the claimed queue from other origins' work. A fast
 * origin that is merely busy keeps its deliveries: they will go within milliseconds.
 */
const ORIGIN_WAIT_MS = 250;
/** Shortest and longest delay before a delivery given back for a busy origin is due again. */
const ORIGIN_RETRY_MIN_MS = 1_000;
const ORIGIN_RETRY_MAX_MS = 30_000;
/** How long a delivery waits when its half-open circuit already has enough trials in flight. */
const HALF_OPEN_RECHECK_MS = 1_000;
/** When a delivery whose claim renewal failed (not lost) is due again. */
const RENEW_FAILURE_RETRY_MS = 1_000;
/** Due times remembered for early wake-ups; beyond this, polling alone finds the work. */
const MAX_KNOWN_DUE_TIMES = 10_000;
/** Share of `stop()`'s timeout kept to record attempts that had to be aborted. */
const MAX_RECORDING_RESERVE_MS = 2_000;

/** Runs deliveries; owned and driven by the `Manager`. */
export class WorkerPool {
  readonly #repository: Repository;
  readonly #config: ResolvedConfig;
  readonly #attemptContext: () => AttemptContext;
  readonly #publish: Publish;
  readonly #logger: Logger;
  readonly #random: () => number;
  readonly #circuitSettings: CircuitSettings | null;
  readonly #leaseMs: number;
  readonly #maxHeld: number;
  readonly #backlogClaimThreshold: number;
  readonly #renewAfterMs: number;

  #running = false;
  #generation = 0;
  #context: AttemptContext | null = null;
  /** The database's clock as seen from here. */
  readonly #clock: DatabaseClock;
  #writer: CompletionWriter;
  /** Claimed deliveries not started yet, across every origin's queue. */
  #queued = 0;
  /** Attempts whose request is over and whose outcome is being recorded. */
  readonly #recording = new Set<Promise<void>>();
  /** Per-origin load, kept while an origin has requests under way or deliveries waiting. */
  readonly #origins = new Map<string, OriginLoad>();
  /** Requests one origin may have under way (the HTTP agent's connections per origin). */
  #originLimit = Number.POSITIVE_INFINITY;
  /** When waiting deliveries were last checked against ORIGIN_WAIT_MS. */
  #lastWaitCheck = 0;
  readonly #active = new Map<
    string,
    { readonly abort: AbortHandle; readonly done: Promise<void> }
  >();
  readonly #trials = new Map<string, number>();
  #claiming: Promise<void> | null = null;
  #wantClaim = false;
  #backlog = false;
  #interval: number;
  #timer: NodeJS.Timeout | undefined;
  /** `performance.now()` at which the armed timer fires. */
  #timerDueAt = Number.POSITIVE_INFINITY;
  /** Ascending `performance.now()` times at which work this process scheduled becomes due. */
  readonly #knownDue: number[] = [];
  #pumpScheduled = false;
  #stopping: Promise<void> | null = null;

  constructor(options: WorkerPoolOptions) {
    this.#repository = options.repository;
    this.#config = options.config;
    this.#attemptContext = options.attemptContext;
    this.#publish = options.publish;
    this.#logger = options.logger;
    this.#random = options.random ?? Math.random;
    this.#clock = options.clock ?? new DatabaseClock(Date.now);
    this.#circuitSettings = options.circuitBreakerEnabled
      ? {
          threshold: options.config.circuitBreakerThreshold,
          timeoutMs: options.config.circuitBreakerTimeoutMs,
          halfOpenRequests: options.config.circuitBreakerHalfOpenRequests,
        }
      : null;
    this.#leaseMs = claimLease(options.config);
    this.#maxHeld = options.config.workerCount * effectiveBatchSize(options.config);
    // While busy, wait for a quarter of the pool to free up before claiming again, so claims stay
    // batched instead of degrading to one row per statement.
    this.#backlogClaimThreshold = Math.max(1, Math.ceil(this.#maxHeld / 4));
    // Until this much time has passed since the claim, the lease certainly still covers a whole
    // attempt plus its bookkeeping; after it, renew before sending.
    this.#renewAfterMs = Math.max(
      0,
      this.#leaseMs -
        options.config.deliveryTimeoutMs -
        DELIVERY_BOOKKEEPING_TIMEOUT_MS -
        MIN_CLAIM_LEASE_MARGIN_MS,
    );
    this.#interval = options.config.queuePollInterval;
    this.#writer = this.#newWriter();
  }

  /** Deliveries being attempted right now (their requests; not those being recorded). */
  get inFlight(): number {
    return this.#active.size;
  }

  /** Deliveries claimed and waiting for a free slot. */
  get queued(): number {
    return this.#queued;
  }

  /** Starts claiming. Called by `Manager.start()`. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#generation += 1;
    this.#context = this.#attemptContext();
    this.#originLimit = this.#context.requestsPerOrigin;
    this.#interval = this.#config.queuePollInterval;
    this.#wantClaim = true;
    this.#schedulePump();
  }

  /**
   * Wakes the pool for an immediate claim and resets the idle backoff. Cheap, never blocks,
   * safe at any time (a no-op while stopped).
   */
  notify(): void {
    if (!this.#running) return;
    this.#wantClaim = true;
    this.#backlog = false;
    this.#interval = this.#config.queuePollInterval;
    this.#schedulePump();
  }

  /**
   * Stops claiming, gives back claimed deliveries that have not started, waits for in-flight
   * attempts and aborts those still running near the deadline, and records everything it can
   * within `timeoutMs`. Concurrent calls share one shutdown.
   */
  stop(timeoutMs: number): Promise<void> {
    if (this.#stopping) return this.#stopping;
    if (!this.#running) return Promise.resolve();
    this.#stopping = this.#shutdown(timeoutMs).finally(() => {
      this.#stopping = null;
    });
    return this.#stopping;
  }

  // ── Scheduling ───────────────────────────────────────────────────────────────────────────

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    // Coalesces the many wake-ups of one tick (a batch enqueue, several completions) into one pass.
    queueMicrotask(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    if (!this.#running) return;
    this.#startQueued();
    if (this.#claiming || !this.#wantClaim) return;
    const held = this.#active.size + this.#recording.size + this.#queued;
    const capacity = Math.min(this.#maxHeld - held, MAX_CLAIM_SIZE);
    if (capacity <= 0) return;
    // Busy: claim only once a quarter of the capacity is free, wake-up or not. A NOTIFY arrives
    // with every insert statement; claiming each time a single slot freed turned a busy pool's
    // claims into statements of a few rows (each paying the whole statement's cost) and the pool
    // fell behind a steady 3,000/s it drains at twice that rate. An idle pool (nothing held)
    // still claims at once.
    if (held > 0 && capacity < this.#backlogClaimThreshold) return;
    this.#wantClaim = false;
    this.#claiming = this.#claim(capacity).finally(() => {
      this.#claiming = null;
      this.#schedulePump();
    });
  }

  /**
   * Starts claimed deliveries while worker slots are free: one at a time from each origin in
   * turn (claim order within an origin), passing over origins that already have as many
   * requests under way as the HTTP agent carries to them — those would only wait inside the
   * agent while holding a slot, and a slow origin would end up holding every slot. A delivery
   * that waited too long for a slow origin goes back to the database.
   */
  #startQueued(): void {
    const workers = this.#config.workerCount;
    let started = true;
    while (started && this.#queued > 0 && this.#active.size < workers) {
      started = false;
      const waiting = this.#waitingOrigins();
      for (const load of this.#origins.values()) {
        if (this.#active.size >= workers) break;
        if (load.queue.length === 0 || load.sending >= this.#limitOf(waiting)) continue;
        this.#startAttempt(load.queue.shift()!);
        started = true;
      }
    }
    if (this.#queued > 0) this.#checkWaiting();
  }

  /** How many origins have claimed deliveries waiting to start. */
  #waitingOrigins(): number {
    let waiting = 0;
    for (const load of this.#origins.values()) if (load.queue.length > 0) waiting += 1;
    return waiting;
  }

  /**
   * Requests one origin with deliveries waiting may have under way: what the HTTP agent carries
   * to it, but no more than half the worker slots while other origins are waiting too. Which
   * origin is slow shows only once its requests hang, and a slot cannot be taken back from a
   * hung request; round-robin alone would hand a hanging origin one more slot each round until
   * it held them all, and every other endpoint would wait out the delivery timeout. Alone, an
   * origin may use every slot.
   */
  #limitOf(waitingOrigins: number): number {
    if (waitingOrigins <= 1) return this.#originLimit;
    return Math.min(this.#originLimit, Math.max(1, Math.ceil(this.#config.workerCount / 2)));
  }

  #checkWaiting(): void {
    const now = performance.now();
    if (now - this.#lastWaitCheck < ORIGIN_WAIT_MS / 4) return;
    this.#lastWaitCheck = now;
    this.#giveBackWaiting(now);
  }

  #loadOf(origin: string): OriginLoad {
    let load = this.#origins.get(origin);
    if (!load) {
      load = { sending: 0, averageMs: 0, lastDoneAt: performance.now(), queue: [] };
      this.#origins.set(origin, load);
    }
    return load;
  }

  #dropIfIdle(origin: string, load: OriginLoad): void {
    if (load.sending <= 0 && load.queue.length === 0) this.#origins.delete(origin);
  }

  /** Takes the queued deliveries `leave` selects out of the queue; their trial slots end. */
  #unqueue(leave: (held: Held, load: OriginLoad) => boolean): Held[] {
    const left: Held[] = [];
    for (const [origin, load] of this.#origins) {
      if (load.queue.length === 0) continue;
      const stay = load.queue.filter((held) => {
        if (!leave(held, load)) return true;
        left.push(held);
        return false;
      });
      if (stay.length === load.queue.length) continue;
      load.queue.length = 0;
      load.queue.push(...stay);
      this.#dropIfIdle(origin, load);
    }
    this.#queued -= left.length;
    for (const held of left) if (held.trialEndpoint !== null) this.#endTrial(held.trialEndpoint);
    return left;
  }

  /**
   * Sends deliveries that waited too long for a slow origin back to the database, due again
   * when the origin can be expected to take them: one round of its requests (its average
   * attempt time, at least ORIGIN_RETRY_MIN_MS) per `limit` deliveries ahead of them, so they
   * come back in turn instead of all at once.
   */
  #giveBackWaiting(now: number): void {
    const limit = this.#limitOf(this.#waitingOrigins());
    const back: ClaimRelease[] = [];
    const ahead = new Map<string, number>();
    this.#unqueue((held, load) => {
      // Slow: at its cap, and no request of it finished for ORIGIN_WAIT_MS (a busy fast origin
      // finishes some every few milliseconds).
      if (
        load.sending < limit ||
        now - load.lastDoneAt < ORIGIN_WAIT_MS ||
        now - held.queuedAt < ORIGIN_WAIT_MS
      ) {
        return false;
      }
      const position = ahead.get(held.origin) ?? 0;
      ahead.set(held.origin, position + 1);
      const round = Math.max(ORIGIN_RETRY_MIN_MS, load.averageMs);
      const delayMs = Math.min(
        ORIGIN_RETRY_MAX_MS,
        Math.round(round * (1 + Math.floor(position / limit))),
      );
      back.push({ ...releaseNow(held.item), retryAt: { delayMs } });
      return true;
    });
    if (back.length === 0) return;
    void this.#release(back);
    this.#schedulePump();
  }

  /** Gives back the waiting deliveries of an endpoint whose circuit this process just opened. */
  #parkEndpoint(endpoint: string): void {
    if (!this.#circuitSettings) return;
    const delayMs = this.#circuitSettings.timeoutMs;
    const left = this.#unqueue((held) => held.endpoint === endpoint);
    if (left.length === 0) return;
    void this.#release(left.map((held) => ({ ...releaseNow(held.item), retryAt: { delayMs } })));
    this.#schedulePump();
  }

  /**
   * Arms the poll timer: the jittered idle interval, or earlier when this process knows of work
   * falling due sooner (retries and parked deliveries it scheduled itself).
   */
  #armTimer(): void {
    const now = performance.now();
    // Times already passed were served by the claim that just ran.
    while (this.#knownDue.length > 0 && this.#knownDue[0]! <= now) this.#knownDue.shift();
    const poll = jitterInterval(this.#interval, this.#random);
    const next = this.#knownDue[0];
    this.#setTimer(next === undefined ? poll : Math.min(poll, next - now));
  }

  /**
   * Records that work this process scheduled falls due `delayMs` from now, and makes sure a claim
   * happens then, so short backoffs are not stretched to the next poll.
   */
  #wakeIn(delayMs: number): void {
    if (!this.#running) return;
    const at = performance.now() + Math.max(1, delayMs);
    if (this.#knownDue.length < MAX_KNOWN_DUE_TIMES) insertSorted(this.#knownDue, at);
    if (at < this.#timerDueAt) this.#setTimer(delayMs);
  }

  #setTimer(delayMs: number): void {
    clearTimeout(this.#timer);
    this.#timerDueAt = Number.POSITIVE_INFINITY;
    if (!this.#running) return;
    const delay = Math.max(1, Math.round(delayMs));
    this.#timerDueAt = performance.now() + delay;
    this.#timer = setTimeout(() => {
      this.#timerDueAt = Number.POSITIVE_INFINITY;
      this.#wantClaim = true;
      this.#pump();
    }, delay);
    // Pending work is in the database; an idle poll timer must not keep the process alive.
    this.#timer.unref();
  }

  #idleLonger(): void {
    const config = this.#config;
    this.#interval = nextIdleInterval(
      this.#interval,
      config.queuePollInterval,
      config.queueIdleMaxInterval,
      config.queueIdleBackoffFactor,
    );
  }

  // ── Claiming and triage ──────────────────────────────────────────────────────────────────

  async #claim(limit: number): Promise<void> {
    const generation = this.#generation;
    const claimedAt = performance.now();
    const sentAt = this.#clock.localNow();
    let items: ClaimedDelivery[];
    try {
      items = await this.#repository.claimPendingDeliveries(limit, this.#leaseMs);
    } catch (error) {
      this.#reportError('claimPendingDeliveries', error);
      this.#backlog = false;
      this.#idleLonger();
      this.#armTimer();
      return;
    }
    this.#readClock(items, sentAt);
    if (!this.#running || generation !== this.#generation) {
      // Stopped while the claim was under way: give everything back untouched.
      await this.#release(items.map((item) => releaseNow(item)));
      return;
    }
    this.#backlog = items.length === limit;
    if (items.length === 0) this.#idleLonger();
    else this.#interval = this.#config.queuePollInterval;
    if (this.#backlog) this.#wantClaim = true;
    this.#armTimer();
    if (items.length > 0) await this.#triage(items, claimedAt);
  }

  /**
   * A claim's lease ends `leaseMs` after the database's "now" of the claim: one reading of the
   * database's clock per non-empty claim, at no cost.
   */
  #readClock(items: readonly ClaimedDelivery[], sentAt: number): void {
    const leaseEnd = items[0]?.nextRetryAt;
    if (!leaseEnd) return;
    const clock = this.#clock;
    const change = clock.observe(leaseEnd.getTime() - this.#leaseMs, sentAt, clock.localNow());
    if (!change?.notable) return;
    const seconds = Math.round(change.offsetMs / 100) / 10;
    if (Math.abs(change.offsetMs) >= NOTABLE_OFFSET_MS) {
      this.#logger.warn(
        { clockOffsetMs: change.offsetMs },
        `this host's clock is ${Math.abs(seconds)} s ${seconds > 0 ? 'behind' : 'ahead of'} the database's; webhook timestamps follow the database's clock`,
      );
    } else {
      this.#logger.info(
        { clockOffsetMs: change.offsetMs },
        "this host's clock agrees with the database's again",
      );
    }
  }

  async #triage(items: readonly ClaimedDelivery[], claimedAt: number): Promise<void> {
    const releases: ClaimRelease[] = [];
    const exhausted: ClaimedDelivery[] = [];
    const candidates: ClaimedDelivery[] = [];
    for (const item of items) {
      const subscription = item.subscription;
      if (item.attemptCount > Math.max(item.maxAttempts, 1)) {
        exhausted.push(item);
      } else if (item.subscriptionId !== null && subscription === null) {
        // The subscription vanished between claim and now (its deletion cascades to this row).
        releases.push({ ...releaseNow(item), retryAt: { delayMs: this.#leaseMs } });
      } else if (subscription && subscription.status !== 'active') {
        // Held, not failed: resuming the subscription makes these due again at once.
        releases.push({ ...releaseNow(item), retryAt: { delayMs: this.#leaseMs } });
      } else {
        candidates.push(item);
      }
    }
    const admitted = await this.#admitThroughCircuits(candidates, releases);
    if (releases.length > 0) await this.#release(releases);
    for (const item of exhausted) this.#finishExhausted(item);
    const queuedAt = performance.now();
    for (const [item, trialEndpoint] of admitted) {
      const endpoint = item.url ?? item.subscription?.url ?? '';
      const origin = this.#context!.targets.origin(endpoint);
      this.#loadOf(origin).queue.push(
        new HeldDelivery(item, claimedAt, trialEndpoint, origin, endpoint, queuedAt),
      );
      this.#queued += 1;
    }
  }

  /**
   * Applies the circuit breaker to a claimed batch: open circuits park their deliveries until
   * they reopen; circuits whose timeout has passed move to half-open (one shared write per
   * endpoint); half-open circuits let through at most `circuitBreakerHalfOpenRequests` trials
   * at a time from this process, and hold the rest back briefly.
   */
  async #admitThroughCircuits(
    items: readonly ClaimedDelivery[],
    releases: ClaimRelease[],
  ): Promise<Array<[ClaimedDelivery, string | null]>> {
    const settings = this.#circuitSettings;
    if (!settings) return items.map((item) => [item, null]);
    const needTrial = new Set<string>();
    for (const item of items) {
      if (item.circuit?.state === 'open' && !item.circuit.parking)
        needTrial.add(item.circuit.endpoint);
    }
    const halfOpen = new Set<string>();
    if (needTrial.size > 0) {
      try {
        const events: CircuitEventInput[] = [...needTrial].map((endpoint) => ({
          endpoint,
          event: 'trial',
        }));
        const transitions = await this.#repository.recordCircuitEvents(events, settings);
        for (const transition of transitions)
          if (transition) publishCircuitTransition(this.#publish, transition);
        for (const endpoint of needTrial) halfOpen.add(endpoint);
      } catch (error) {
        this.#reportError('recordCircuitEvents', error);
      }
    }
    const admitted: Array<[ClaimedDelivery, string | null]> = [];
    for (const item of items) {
      const circuit = item.circuit;
      if (!circuit || circuit.state === 'closed') {
        admitted.push([item, null]);
      } else if (circuit.state === 'open' && circuit.parking) {
        releases.push({
          ...releaseNow(item),
          retryAt: circuit.nextRetryAt ?? { delayMs: settings.timeoutMs },
        });
      } else if (circuit.state === 'open' && !halfOpen.has(circuit.endpoint)) {
        // The move to half-open could not be written: try again shortly.
        releases.push({ ...releaseNow(item), retryAt: { delayMs: HALF_OPEN_RECHECK_MS } });
      } else if ((this.#trials.get(circuit.endpoint) ?? 0) < settings.halfOpenRequests) {
        this.#trials.set(circuit.endpoint, (this.#trials.get(circuit.endpoint) ?? 0) + 1);
        admitted.push([item, circuit.endpoint]);
      } else {
        releases.push({ ...releaseNow(item), retryAt: { delayMs: HALF_OPEN_RECHECK_MS } });
      }
    }
    return admitted;
  }

  async #release(releases: readonly ClaimRelease[]): Promise<void> {
    if (releases.length === 0) return;
    try {
      await this.#repository.releaseDeliveryClaims(releases);
    } catch (error) {
      // Not fatal: the claims simply expire with their lease.
      this.#reportError('releaseDeliveryClaims', error);
      return;
    }
    for (const { retryAt } of releases) {
      if (retryAt === null) continue;
      // A circuit's reopening time comes from the repository's clock; the local clock only
      // estimates the wait, and polling covers any difference.
      this.#wakeIn(
        retryAt instanceof Date
          ? Math.max(1, retryAt.getTime() - this.#clock.now())
          : retryAt.delayMs,
      );
    }
  }

  /**
   * A delivery whose last permitted attempt was interrupted (its process died mid-attempt) has
   * no attempt left: it is dead-lettered without sending, and can be redriven.
   */
  #finishExhausted(item: ClaimedDelivery): void {
    const done = this.#writer
      .submit(
        {
          deliveryId: item.id,
          claimToken: item.claimToken,
          attempt: null,
          outcome: { status: 'dead_letter' },
          refundAttempt: true,
        },
        null,
      )
      .then((recorded) => {
        if (!recorded.result.applied) return;
        const delivery = { ...item, attemptCount: item.attemptCount - 1 };
        const event = attemptEvent(
          delivery,
          {
            status: 'dead_letter',
            outcome: 'dead_letter',
            attemptNumber: delivery.attemptCount,
            statusCode: 0,
            durationMs: 0,
            error: 'attempt budget used up by interrupted attempts',
            nextRetryAt: null,
          },
          new Date(),
        );
        this.#publish('delivery.dead_letter', event);
        this.#publish('delivery.failed', event);
      })
      .catch((error: unknown) => this.#reportError('completeDeliveryAttempts', error));
    void done;
  }

  // ── Attempts ─────────────────────────────────────────────────────────────────────────────

  #startAttempt(held: Held): void {
    const abort = new AbortHandle();
    this.#queued -= 1;
    this.#loadOf(held.origin).sending += 1;
    const done = this.#runAttempt(held, abort).finally(() => {
      this.#active.delete(held.item.id);
      this.#schedulePump();
    });
    this.#active.set(held.item.id, { abort, done });
  }

  /**
   * The part of an attempt that holds a worker slot: the request. Its bookkeeping goes on
   * without the slot (the completion writer batches it with others), while the delivery still
   * counts as held — so the slot serves the next request instead of waiting for a database
   * round trip, and unrecorded attempts stay bounded by the claim capacity.
   */
  async #runAttempt(held: Held, abort: AbortHandle): Promise<void> {
    let report: AttemptReport | null = null;
    try {
      report = await this.#send(held, abort);
    } finally {
      this.#doneSending(held.origin, report?.sent === true ? report.attempt.durationMs : null);
    }
    if (!report) {
      if (held.trialEndpoint !== null) this.#endTrial(held.trialEndpoint);
      return;
    }
    const recording: Promise<void> = this.#record(held.item, report).finally(() => {
      this.#recording.delete(recording);
      // A half-open trial counts until its result is written: that is what moves the circuit.
      if (held.trialEndpoint !== null) this.#endTrial(held.trialEndpoint);
      this.#schedulePump();
    });
    this.#recording.add(recording);
  }

  /** The origin's request is over (whatever came of it): its place goes to the next one. */
  #doneSending(origin: string, durationMs: number | null): void {
    const load = this.#origins.get(origin);
    if (!load) return;
    const wasFull = load.sending >= this.#originLimit;
    load.sending -= 1;
    load.lastDoneAt = performance.now();
    if (durationMs !== null) {
      load.averageMs = load.averageMs === 0 ? durationMs : load.averageMs * 0.8 + durationMs * 0.2;
    }
    this.#dropIfIdle(origin, load);
    if (wasFull) this.#schedulePump();
  }

  /**
   * Renews the claim if it has been held long, then performs the attempt. `null` when there is
   * nothing to record.
   */
  async #send(held: Held, abort: AbortHandle): Promise<AttemptReport | null> {
    const { item } = held;
    const context = this.#context!;
    if (performance.now() - held.claimedAt > this.#renewAfterMs) {
      try {
        await this.#repository.renewDeliveryClaim(item.id, item.claimToken, this.#leaseMs);
      } catch (error) {
        if (isHookdError(error, 'HOOKD_ERR_DELIVERY_CLAIM_LOST')) {
          this.#logger.debug(
            { deliveryId: item.id },
            'claim lost before sending; another worker owns the delivery',
          );
          return null;
        }
        this.#reportError('renewDeliveryClaim', error);
        // The claim is most likely still ours: hand it back, attempt refunded, so a brief
        // database hiccup delays the delivery by a second instead of a whole lease. If the
        // database is still away the release fails too, and the lease's expiry covers it.
        await this.#release([
          { ...releaseNow(item), retryAt: { delayMs: RENEW_FAILURE_RETRY_MS } },
        ]);
        return null;
      }
    }
    try {
      return await performAttempt(item, context, abort, () => {
        this.#publish('delivery.started', startedEvent(item, new Date()));
      });
    } catch (error) {
      // performAttempt turns every expected failure into a report; reaching this is a bug. The
      // claim keeps its attempt and waits a lease before coming back, so a delivery that keeps
      // hitting the bug is retried slowly and finally dead-lettered instead of spinning.
      this.#reportError('performAttempt', error);
      await this.#release([
        { ...releaseNow(item), retryAt: { delayMs: this.#leaseMs }, refundAttempt: false },
      ]);
      return null;
    }
  }

  /** Records what the attempt did (after its worker slot was freed); retried until written. */
  async #record(item: ClaimedDelivery, report: AttemptReport): Promise<void> {
    const endpoint = item.url ?? item.subscription?.url ?? '';
    const circuit = this.#circuitEventFor(item, report, endpoint);
    const outcome =
      report.decision.outcome === 'retry'
        ? ({
            status: 'retry',
            delayMs: report.decision.delayMs,
            ensureNextAttempt: report.aborted === true,
          } as const)
        : ({ status: report.decision.outcome } as const);
    let recorded: RecordedCompletion;
    try {
      recorded = await this.#writer.submit(
        { deliveryId: item.id, claimToken: item.claimToken, attempt: report.attempt, outcome },
        circuit,
      );
    } catch (error) {
      this.#logger.error(
        { deliveryId: item.id, attemptNumber: item.attemptCount, error },
        'attempt could not be recorded; the delivery becomes due again when its lease expires',
      );
      return;
    }
    this.#publishOutcome(item, report, recorded);
  }

  #circuitEventFor(
    item: ClaimedDelivery,
    report: AttemptReport,
    endpoint: string,
  ): CircuitEventInput | null {
    if (!this.#circuitSettings || report.circuitEvent === null || endpoint === '') return null;
    if (report.circuitEvent === 'success') {
      // Healthy endpoints cost no circuit write: a success only matters to a record that has
      // failures to forget or a state to leave.
      const circuit = item.circuit;
      if (!circuit || (circuit.state === 'closed' && circuit.failureCount === 0)) return null;
    }
    return { endpoint, event: report.circuitEvent };
  }

  #publishOutcome(
    item: ClaimedDelivery,
    report: AttemptReport,
    recorded: RecordedCompletion,
  ): void {
    const { attempt, decision } = report;
    const now = new Date();
    const status =
      decision.outcome === 'success'
        ? 'success'
        : decision.outcome === 'dead_letter'
          ? 'dead_letter'
          : 'pending';
    const event = attemptEvent(
      item,
      {
        status,
        outcome: report.decision.outcome,
        attemptNumber: report.attempt.attemptNumber,
        statusCode: report.attempt.statusCode,
        durationMs: report.attempt.durationMs,
        error: report.attempt.error,
        nextRetryAt: recorded.result.nextRetryAt,
      },
      now,
    );
    if (!recorded.result.applied) {
      // Someone else took the delivery over (its lease had expired): the attempt is recorded but
      // the delivery's state is theirs to report.
      this.#logger.warn(
        { deliveryId: item.id, attemptNumber: attempt.attemptNumber },
        'attempt recorded after its claim was lost',
      );
      this.#publish('metrics.delivery_attempt', event);
      return;
    }
    const transition = recorded.transition;
    // Deliveries of an endpoint whose circuit just opened would each cost a doomed attempt (a
    // timeout, for a hanging endpoint) while holding a slot: park them now, as a claim would.
    if (transition?.to === 'open') this.#parkEndpoint(transition.endpoint);
    switch (decision.outcome) {
      case 'success':
        if (transition) publishCircuitTransition(this.#publish, transition);
        this.#publish('delivery.success', event);
        this.#publish('metrics.delivery_attempt', event);
        break;
      case 'retry':
        this.#wakeIn(decision.delayMs);
        this.#publish('metrics.retry_triggered', event);
        this.#publish('delivery.failed', event);
        this.#publish('metrics.delivery_attempt', event);
        if (transition) publishCircuitTransition(this.#publish, transition);
        break;
      case 'dead_letter':
        this.#publish('delivery.dead_letter', event);
        this.#publish('delivery.failed', event);
        this.#publish('metrics.delivery_attempt', event);
        if (transition) publishCircuitTransition(this.#publish, transition);
        break;
    }
  }

  #endTrial(endpoint: string): void {
    const count = (this.#trials.get(endpoint) ?? 1) - 1;
    if (count <= 0) this.#trials.delete(endpoint);
    else this.#trials.set(endpoint, count);
  }

  // ── Shutdown ─────────────────────────────────────────────────────────────────────────────

  async #shutdown(timeoutMs: number): Promise<void> {
    this.#running = false;
    this.#generation += 1;
    this.#setTimer(0);
    this.#knownDue.length = 0;
    const deadline = performance.now() + timeoutMs;
    const abortAt = deadline - Math.min(MAX_RECORDING_RESERVE_MS, timeoutMs / 2);

    // Claimed but not started: hand back at once, due now, attempt refunded. In parallel with
    // waiting for the attempts in flight: a database slow to answer the release must not eat
    // the time those attempts were given to finish.
    const queued = this.#unqueue(() => true);
    const released = this.#release(queued.map((held) => releaseNow(held.item)));
    if (this.#claiming) await untilDeadline(this.#claiming, deadline);

    const running = () => [...this.#active.values()].map((entry) => entry.done);
    await untilDeadline(Promise.allSettled(running()), abortAt);
    if (this.#active.size > 0) {
      this.#logger.warn(
        { inFlight: this.#active.size },
        'stop timeout reached: aborting in-flight attempts',
      );
      for (const entry of this.#active.values()) entry.abort.abort();
      await untilDeadline(Promise.allSettled(running()), deadline);
    }
    await untilDeadline(Promise.all([released, this.#writer.drain()]), deadline);
    // Outcomes written: let their events go out before stop() resolves.
    await untilDeadline(Promise.allSettled([...this.#recording]), deadline);
    const unrecorded = this.#writer.backlog + this.#active.size;
    if (unrecorded > 0) {
      this.#logger.error(
        { unrecorded },
        'stop timeout reached before every attempt was recorded; those deliveries become due again when their lease expires',
      );
      this.#writer.abandon(
        new HookdError(
          'HOOKD_ERR_DATABASE',
          'manager stopped before the attempt could be recorded',
        ),
      );
      this.#writer = this.#newWriter();
    }
    this.#context = null;
  }

  #newWriter(): CompletionWriter {
    return new CompletionWriter({
      repository: this.#repository,
      circuitSettings: this.#circuitSettings,
      onWriteError: (operation, error) => this.#reportError(operation, error),
    });
  }

  #reportError(operation: string, error: unknown): void {
    const wrapped = error instanceof Error ? error : new Error(String(error));
    this.#logger.error({ operation, error: wrapped }, `worker: ${operation} failed`);
    this.#publish('worker.error', { timestamp: new Date(), operation, error: wrapped });
  }
}

function releaseNow(item: ClaimedDelivery): ClaimRelease {
  return { deliveryId: item.id, claimToken: item.claimToken, retryAt: null, refundAttempt: true };
}

function insertSorted(values: number[], value: number): void {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (values[middle]! < value) low = middle + 1;
    else high = middle;
  }
  values.splice(low, 0, value);
}

/** Waits for `promise`, but no longer than until `deadline` (a `performance.now()` value). */
async function untilDeadline(promise: Promise<unknown>, deadline: number): Promise<void> {
  const remaining = deadline - performance.now();
  if (remaining <= 0) return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      promise.then(
        () => undefined,
        () => undefined,
      ),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, remaining))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
