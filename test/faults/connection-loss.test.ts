import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  HookdError,
  Manager,
  PostgresRepository,
  type Config,
  type Logger,
  type Repository,
} from '../../src/index.js';
import { nextEvent, waitFor } from '../helpers/wait.js';
import { FaultDatabase } from './support/database.js';
import { assertLedger, buildLedger, printLedger } from './support/ledger.js';
import { ManagerProcess, killAllManagerProcesses } from './support/manager-process.js';
import { Producer, spread } from './support/producer.js';
import { ReceiverFleet, healthy } from './support/receivers.js';
import { size, testTimeout } from './support/sizes.js';

/**
 * Scenario 2 — database connection loss. Every backend of the worker process (its pool and its
 * LISTEN connection, found by `application_name`) is terminated with `pg_terminate_backend`
 * again and again while deliveries flow. The manager must log, reconnect and finish; its LISTEN
 * connection must come back, so that a delivery queued by another process after the last
 * termination is picked up at once although the poll interval is 10 s.
 *
 * Allowed duplicates: none. A terminated statement either did not commit (it is retried: the
 * completion writer retries, a failed claim is simply not taken) or committed without its
 * answer (a claim then waits out its lease unsent; a completion retried later finds its work
 * done). No request is ever sent twice for it.
 */

const DELIVERIES = size(300, 2_000);
const ROUNDS = size(6, 30);
const LEASE_MS = 16_000;
const POLL_MS = 10_000;
const CONFIG: Partial<Config> = {
  workerCount: 8,
  deliveryTimeoutMs: 1_000,
  claimLeaseMs: LEASE_MS,
  // Long and fixed: only a working LISTEN connection can make a new delivery start quickly.
  queuePollInterval: POLL_MS,
  queueIdleMaxInterval: POLL_MS,
  queueDepthIntervalMs: 0,
  defaultInitialBackoffMs: 100,
  defaultMaxBackoffMs: 1_000,
};

let db: FaultDatabase;
let fleet: ReceiverFleet;
let producer: Producer;

beforeAll(async () => {
  db = await FaultDatabase.create('fconn');
  fleet = new ReceiverFleet();
  producer = new Producer(db.url, db.prefix);
});

afterAll(async () => {
  await killAllManagerProcesses();
  await producer?.close();
  await fleet?.close();
  await db?.drop();
});

describe('fault: the database terminates every connection of the manager', () => {
  it(
    'reconnects, finishes every delivery exactly once, and wakes up through LISTEN again',
    async () => {
      const subscriptions = await Promise.all(
        ['a', 'b', 'c', 'd'].map(async (name) =>
          producer.subscribe(await fleet.endpoint(name, healthy(5, 40))),
        ),
      );
      const applicationName = `${db.prefix}_worker`;
      const worker = await ManagerProcess.spawn({
        label: 'worker',
        databaseUrl: db.url,
        tablePrefix: db.prefix,
        applicationName,
        poolMax: 5,
        config: CONFIG,
        forward: ['worker.error'],
      });
      await waitFor(() => db.listener(applicationName), { message: 'the worker listens' });

      const producing = producer.trickle(spread(subscriptions, DELIVERIES), ROUNDS * 700);
      const rounds: Array<{ terminated: number; listener: boolean }> = [];
      for (let round = 0; round < ROUNDS; round += 1) {
        // Let some work happen between terminations.
        const seen = fleet.exchanges.length;
        await fleet.until(() => fleet.exchanges.length >= seen + 5, 20_000, 'new requests');
        // The previous round may have left nothing to terminate yet: the pool reconnects when it
        // next needs a connection, LISTEN after its backoff.
        await waitFor(async () => (await db.backends(applicationName)).length > 0, {
          timeoutMs: 15_000,
          message: 'the worker has a connection again',
        });
        const listener = await db.listener(applicationName);
        const terminated = await db.terminate(applicationName);
        rounds.push({
          terminated: terminated.length,
          listener: listener !== null && terminated.includes(listener),
        });
      }
      const queued = await producing;
      // Deliveries whose claim committed but whose answer was lost wait out their lease.
      await db.waitUntilSettled(LEASE_MS + POLL_MS + testTimeout(20_000, 120_000));

      // The last termination, then the wake-up check: LISTEN must come back by itself.
      const before = await waitFor(() => db.listener(applicationName), {
        timeoutMs: 15_000,
        message: 'the worker listens',
      });
      await db.terminate(applicationName);
      const after = await waitFor(
        async () => {
          const pid = await db.listener(applicationName);
          return pid !== null && pid !== before ? pid : null;
        },
        { timeoutMs: 15_000, message: 'a new LISTEN connection' },
      );
      const latencies: number[] = [];
      for (let probe = 0; probe < 3; probe += 1) {
        const queuedAt = Date.now();
        const [id] = await producer.queue([subscriptions[probe]!], 'probe');
        queued.push(id!);
        await fleet.until(() => fleet.of(id!).length > 0, POLL_MS * 2, `probe ${probe} arrives`);
        latencies.push(fleet.of(id!)[0]!.receivedAt - queuedAt);
      }
      await db.waitUntilSettled(10_000);
      const stopped = await worker.stop(5_000);
      await worker.exit();

      const ledger = buildLedger({
        scenario: 'database connection loss (pg_terminate_backend)',
        queued,
        deliveries: await db.deliveries(),
        attempts: await db.attempts(),
        exchanges: fleet.exchanges,
      });
      const errors = worker.ofType('event').filter((e) => e.topic === 'worker.error');
      const operations = [...new Set(errors.map((e) => e.operation))].sort();
      const logged = worker.ofType('log').filter((l) => l.level === 'error');
      const reportedOnly = errors.filter((e) => e.operation === 'listenForWork').length;
      printLedger(ledger, {
        'termination rounds': rounds.length + 1,
        'backends terminated': rounds.reduce((total, round) => total + round.terminated, 0),
        'LISTEN terminated (rounds)': rounds.filter((round) => round.listener).length + 1,
        'worker.error events': errors.length,
        'failed operations': operations.join(', '),
        'errors logged': logged.length,
        'LISTEN pid before/after': `${before} → ${after}`,
        'wake-up latency (ms)': latencies.join(', '),
        'delivery.success events': stopped.counts['delivery.success'] ?? 0,
      });
      assertLedger(ledger);
      expect(ledger.succeeded).toBe(queued.length);
      expect(ledger.duplicates).toBe(0);

      // The faults really hit the manager, and it said so.
      expect(rounds.every((round) => round.terminated > 0)).toBe(true);
      expect(rounds.some((round) => round.listener)).toBe(true);
      expect(operations).toContain('listenForWork');
      // Every failed background operation was logged as well as published: LISTEN losses as
      // warnings (wake-ups are only a latency hint), everything else as errors.
      expect(logged.length).toBeGreaterThanOrEqual(errors.length - reportedOnly);
      const listenerWarnings = worker
        .ofType('log')
        .filter(
          (log) => log.level === 'warn' && log.message.includes('wake-up listener lost'),
        ).length;
      expect(listenerWarnings).toBeGreaterThanOrEqual(reportedOnly);
      // One delivery.success per delivery, none lost with the answer to its completion write
      // (a retried completion is recognised as the write it repeats).
      const successEvents = stopped.counts['delivery.success'] ?? 0;
      const lostClaims = worker
        .ofType('log')
        .filter((log) => log.message.includes('attempt recorded after its claim was lost')).length;
      expect(lostClaims).toBe(0);
      expect(successEvents).toBe(queued.length);
      // Woken through LISTEN, not by a poll (10 s apart).
      for (const latency of latencies) expect(latency).toBeLessThan(1_000);
    },
    testTimeout(90_000),
  );
});

/**
 * Smallest reproductions of what scenario 2 found, in-process and on tables of their own.
 */
describe('connection loss, pinned down', () => {
  let pinned: FaultDatabase;
  let receivers: ReceiverFleet;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    pinned = await FaultDatabase.create('fconnpin');
    receivers = new ReceiverFleet();
  });

  // Each test's manager stops with it: one left running would claim the next test's deliveries.
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  afterAll(async () => {
    await receivers?.close();
    await pinned?.drop();
  });

  function repository(applicationName?: string): PostgresRepository {
    const created = new PostgresRepository(pinned.url, {
      tablePrefix: pinned.prefix,
      pool: { max: 3, ...(applicationName === undefined ? {} : { applicationName }) },
    });
    cleanups.push(() => created.close());
    return created;
  }

  async function started(repo: Repository, logger?: Logger): Promise<Manager> {
    const manager = new Manager(
      { ...CONFIG, queuePollInterval: 100, queueIdleMaxInterval: 1_000 },
      repo,
      { allowPrivateDestinations: true, ...(logger === undefined ? {} : { logger }) },
    );
    await manager.start();
    cleanups.push(() => manager.stop({ timeoutMs: 1_000 }));
    return manager;
  }

  // Regression (found by scenario 2): with a lease of at most deliveryTimeoutMs + 15 s every
  // attempt renews its claim right before sending. When that statement failed for a transient
  // reason (here one injected HOOKD_ERR_DATABASE, in scenario 2 a terminated connection), the
  // worker returned without sending or releasing: the delivery waited out the lease and its
  // attempt was never refunded — with maxAttempts 1 it was dead-lettered unsent. Now the claim
  // is released with its attempt refunded and the delivery is due again a second later.
  it('sends a delivery promptly after a transient failure of its claim renewal', async () => {
    const repo = repository();
    let failures = 1;
    const flaky = new Proxy(repo, {
      get(target, property) {
        if (property === 'renewDeliveryClaim') {
          return async (...args: Parameters<Repository['renewDeliveryClaim']>) => {
            if (failures > 0) {
              failures -= 1;
              throw new HookdError('HOOKD_ERR_DATABASE', 'database unavailable (injected)');
            }
            return target.renewDeliveryClaim(...args);
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
      },
    });
    const manager = await started(flaky);
    const renewalFailed = nextEvent(
      manager,
      'worker.error',
      (event) => event.operation === 'renewDeliveryClaim',
    );
    const subscription = await manager.createSubscription({
      tenantId: 'faults',
      url: await receivers.endpoint('renewal', healthy()),
      secret: 'whsec_ZmF1bHRzLWZhdWx0cy1mYXVsdHM=',
      eventTypes: ['fault.*'],
      retryPolicy: { maxAttempts: 1 },
    });
    const delivery = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'fault.test',
      payload: { renewal: 'fails once' },
    });
    await renewalFailed;
    // Nothing was sent, and only one renewal failed: the next try should send it.
    await receivers.until(
      () => receivers.of(delivery.id).length > 0,
      5_000,
      'the delivery is sent after its renewal failed once',
    );
    await waitFor(async () => (await manager.getDelivery(delivery.id)).status === 'success');
  }, 20_000);

  // Regression (found by scenario 3): when the connection dropped after the completion statement
  // committed but before its answer arrived, the CompletionWriter's retry found the claim token
  // cleared by its own first write and was told `applied: false`; the worker then treated the
  // attempt as one whose claim another worker had taken, warned "attempt recorded after its
  // claim was lost" and published no delivery.success although the delivery succeeded. The
  // repository now remembers the token of the completion it applied and recognises the retry.
  it('publishes delivery.success when the answer to its completion write was lost', async () => {
    const repo = repository();
    let losses = 1;
    const lossy = new Proxy(repo, {
      get(target, property) {
        if (property === 'completeDeliveryAttempts') {
          return async (...args: Parameters<Repository['completeDeliveryAttempts']>) => {
            const results = await target.completeDeliveryAttempts(...args);
            if (losses > 0) {
              losses -= 1;
              // Committed; the answer never arrived.
              throw new HookdError('HOOKD_ERR_DATABASE', 'Connection terminated (injected)');
            }
            return results;
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
      },
    });
    const manager = await started(lossy);
    const subscription = await manager.createSubscription({
      tenantId: 'faults',
      url: await receivers.endpoint('lost-answer', healthy()),
      secret: 'whsec_ZmF1bHRzLWZhdWx0cy1mYXVsdHM=',
      eventTypes: ['fault.*'],
    });
    const outcomes: string[] = [];
    manager.on('delivery.success', (event) => void outcomes.push(event.deliveryId));
    const attempted = nextEvent(manager, 'metrics.delivery_attempt');
    const delivery = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'fault.test',
      payload: { answer: 'lost once' },
    });
    await attempted;
    expect((await manager.getDelivery(delivery.id)).status).toBe('success');
    expect(receivers.of(delivery.id)).toHaveLength(1);
    expect(outcomes).toEqual([delivery.id]);
  }, 20_000);

  // Fixed defect: the loss of the LISTEN connection was only published as `worker.error`, so an
  // application watching its logs never learned that cross-process wake-ups were down.
  it('logs the loss of its LISTEN connection', async () => {
    const applicationName = `${pinned.prefix}_listen`;
    const logged: string[] = [];
    const capture = (fieldsOrMessage: object | string, message?: string): void => {
      logged.push(typeof fieldsOrMessage === 'string' ? fieldsOrMessage : (message ?? ''));
    };
    const quiet = () => undefined;
    const manager = await started(repository(applicationName), {
      debug: quiet,
      info: quiet,
      warn: capture,
      error: capture,
    });
    const pid = await waitFor(() => pinned.listener(applicationName), {
      message: 'the manager listens',
    });
    const lost = nextEvent(manager, 'worker.error', (e) => e.operation === 'listenForWork');
    await pinned.pool.query('SELECT pg_terminate_backend($1)', [pid]);
    await lost;
    await waitFor(async () => (await pinned.listener(applicationName)) !== null, {
      message: 'LISTEN re-established',
    });
    expect(logged.filter((line) => /listen|wake-up/i.test(line))).not.toEqual([]);
  }, 20_000);
});
