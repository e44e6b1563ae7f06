import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { HookdError } from '../src/errors.js';
import { Manager } from '../src/manager.js';
import type { Config } from '../src/config.js';
import type { Subscription } from '../src/models.js';
import { PostgresRepository } from '../src/repository/postgres-repository.js';
import { makeDelivery, makeSubscription } from './contract/repository-contract.js';
import { fastConfig } from './helpers/manager.js';
import {
  createTestSchema,
  randomPrefix,
  testPool,
  truncateSchema,
  type TestSchema,
} from './helpers/postgres-schema.js';
import { startReceiver, status, type Receiver } from './helpers/receiver.js';
import { waitFor } from './helpers/wait.js';

/**
 * End to end on PostgreSQL: several managers (each with its own repository and pool, as
 * separate processes would have), a real loopback receiver, and a second OS process.
 */

const root = fileURLToPath(new URL('../', import.meta.url));
let schema: TestSchema;
let pool: pg.Pool;
let receiver: Receiver;
const cleanups: Array<() => Promise<unknown>> = [];

function repository(options: { applicationName?: string } = {}): PostgresRepository {
  const repo = new PostgresRepository(schema.url, {
    tablePrefix: schema.prefix,
    pool: { max: 6, ...options },
  });
  cleanups.push(() => repo.close());
  return repo;
}

async function startManager(
  config: Partial<Config> = {},
  repo: PostgresRepository = repository(),
): Promise<{ manager: Manager; repo: PostgresRepository }> {
  const manager = new Manager(fastConfig(config), repo, { allowPrivateDestinations: true });
  await manager.start();
  // Registered after the repository's close, so it runs first (cleanups run in reverse).
  cleanups.push(() => manager.stop({ timeoutMs: 2_000 }));
  return { manager, repo };
}

function subscribe(manager: Manager, path = '/hook', overrides = {}): Promise<Subscription> {
  return manager.createSubscription({
    tenantId: 'tenant-a',
    url: receiver.url(path),
    secret: 'whsec_aW50ZWdyYXRpb24tc2VjcmV0LWtleS0wMTIzNDU2Nzg5',
    eventTypes: ['order.*'],
    ...overrides,
  });
}

const idOf = (request: { headers: Record<string, unknown> }) =>
  String(request.headers['webhook-id']);

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => {
      throw new Error(`expected ${code}`);
    },
    (caught: unknown) => caught,
  );
  expect((error as HookdError).code).toBe(code);
}

beforeAll(async () => {
  schema = await createTestSchema();
  pool = testPool(6);
});
afterAll(async () => {
  await pool?.end();
  await schema?.drop();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await receiver?.close();
  await truncateSchema(pool, schema.config);
});

describe('PostgreSQL end to end', () => {
  it('delivers 600 deliveries queued through 4 managers × 4 workers exactly once', async () => {
    receiver = await startReceiver();
    const managers = await Promise.all(
      Array.from({ length: 4 }, () => startManager({ workerCount: 4, maxBatchSize: 4 })),
    );
    const subscription = await subscribe(managers[0]!.manager);
    await Promise.all(
      managers.map(async ({ manager }, m) => {
        // A third as one batch call, the rest as concurrent single calls (coalesced inserts).
        const batch = await manager.queueDeliveries({
          deliveries: Array.from({ length: 50 }, (_, i) => ({
            subscriptionId: subscription.id,
            eventType: 'order.created',
            payload: { m, i, via: 'batch' },
          })),
        });
        expect(batch.totalSucceeded).toBe(50);
        await Promise.all(
          Array.from({ length: 100 }, (_, i) =>
            manager.queueDelivery({
              subscriptionId: subscription.id,
              eventType: 'order.created',
              payload: { m, i, via: 'single' },
            }),
          ),
        );
      }),
    );
    await receiver.waitForRequests(600, { timeoutMs: 60_000 });
    const repo = managers[0]!.repo;
    await waitFor(
      async () =>
        (await repo.countDeliveriesByFilter({ tenantId: 'tenant-a', status: 'success' })) === 600,
      { timeoutMs: 30_000, message: 'all 600 recorded as delivered' },
    );
    const ids = receiver.requests.map(idOf);
    expect(ids).toHaveLength(600);
    expect(new Set(ids).size).toBe(600);
    const attempts = await pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${schema.config.tables.deliveryAttempts}`,
    );
    expect(Number(attempts.rows[0]!.n)).toBe(600);
  });

  it('redrives a dead letter with a fresh budget each time: 3 → 6 → 9 → 12 attempts', async () => {
    receiver = await startReceiver(status(500));
    // The endpoint fails on purpose; its circuit opening would only slow the test down.
    const { manager } = await startManager({ circuitBreakerThreshold: 1_000 });
    const subscription = await subscribe(manager, '/fail', {
      retryPolicy: { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 20, backoffFactor: 2 },
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'order.created',
      payload: { n: 1 },
    });
    const deadAfter = (attempts: number) =>
      waitFor(
        async () => {
          const current = await manager.getDelivery(queued.id);
          return current.status === 'dead_letter' && current.attemptCount === attempts;
        },
        { timeoutMs: 15_000, message: `dead-lettered after ${attempts} attempts` },
      );
    await deadAfter(3);
    const maxima: number[] = [];
    for (const attempts of [6, 9, 12]) {
      maxima.push((await manager.retryDeadLetter(queued.id)).maxAttempts);
      await deadAfter(attempts);
    }
    expect(maxima).toEqual([6, 9, 12]);
    const numbers = (await manager.getDeliveryAttempts(queued.id)).map((a) => a.attemptNumber);
    expect(numbers).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(receiver.requests.map((request) => request.headers['x-webhook-attempt'])).toEqual(
      numbers.map(String),
    );
  });

  it("queues inside the caller's transaction: rollback sends nothing, commit delivers", async () => {
    receiver = await startReceiver();
    const { manager } = await startManager();
    const subscription = await subscribe(manager);
    const request = (n: string) => ({
      subscriptionId: subscription.id,
      eventType: 'order.created',
      payload: { n },
    });
    const client = await pool.connect();
    let rolledBack: string;
    let committed: string;
    try {
      await client.query('BEGIN');
      rolledBack = (await manager.queueDelivery(request('rollback'), { client })).id;
      await client.query('ROLLBACK');

      await client.query('BEGIN');
      committed = (await manager.queueDelivery(request('commit'), { client })).id;
      await expectCode(manager.getDelivery(committed), 'HOOKD_ERR_DELIVERY_NOT_FOUND');
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await receiver.waitForRequests(1);
    // Something queued afterwards arrives too, so the claim path has run past the rollback.
    const later = await manager.queueDelivery(request('later'));
    await receiver.waitForRequests(2);
    expect(receiver.requests.map(idOf)).toEqual([committed, later.id]);
    await expectCode(manager.getDelivery(rolledBack), 'HOOKD_ERR_DELIVERY_NOT_FOUND');
    await waitFor(async () => (await manager.getDelivery(committed)).status === 'success');
  });

  it('wakes an idle manager in another process within a fraction of the poll interval', async () => {
    receiver = await startReceiver();
    const { manager } = await startManager({
      queuePollInterval: 5_000,
      queueIdleMaxInterval: 5_000,
    });
    const subscription = await subscribe(manager);
    const child = spawnChild(subscription.id);
    const lines = createInterface({ input: child.stdout });
    const nextLine = async () => {
      const [line] = (await once(lines, 'line')) as [string];
      return line;
    };
    try {
      expect(await nextLine()).toBe('ready');
      // A first delivery proves the manager's start-up claim is behind it: from here on it is
      // idle, and its next poll is at least 4 s (5 s − 20 % jitter) away.
      await manager.queueDelivery({
        subscriptionId: subscription.id,
        eventType: 'order.created',
        payload: { warmUp: true },
      });
      await receiver.waitForRequests(1);
      const idleSince = Date.now();
      child.stdin.write('go\n');
      const { id, queuedAt } = JSON.parse(await nextLine()) as { id: string; queuedAt: number };
      const [, received] = await receiver.waitForRequests(2, { timeoutMs: 10_000 });
      expect(idOf(received!)).toBe(id);
      expect(received!.receivedAt - queuedAt).toBeLessThan(1_000);
      expect(received!.receivedAt - idleSince).toBeLessThan(3_500);
    } finally {
      child.kill();
    }
  });

  it('re-establishes the LISTEN connection after the server terminates it', async () => {
    receiver = await startReceiver();
    const applicationName = randomPrefix('listen');
    const { manager } = await startManager(
      { queuePollInterval: 5_000, queueIdleMaxInterval: 5_000 },
      repository({ applicationName }),
    );
    const listenErrors: Error[] = [];
    manager.on('worker.error', (event) => {
      if (event.operation === 'listenForWork') listenErrors.push(event.error);
    });
    const subscription = await subscribe(manager);
    const listeners = async () => {
      const result = await pool.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query = $2`,
        [applicationName, `LISTEN "${schema.config.workChannel}"`],
      );
      return result.rows.map((row) => row.pid);
    };
    const [first] = await waitFor(async () => {
      const pids = await listeners();
      return pids.length === 1 ? pids : null;
    });
    // Idle first (see the previous test), then cut the LISTEN connection.
    await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'order.created',
      payload: { warmUp: true },
    });
    await receiver.waitForRequests(1);
    await pool.query('SELECT pg_terminate_backend($1)', [first]);
    await waitFor(() => listenErrors.length > 0, { message: 'the loss is reported' });
    await waitFor(
      async () => {
        const pids = await listeners();
        return pids.length === 1 && pids[0] !== first;
      },
      { message: 'a new LISTEN connection' },
    );
    // Queued by another process: only the re-established LISTEN can wake the idle manager.
    const producer = repository();
    const queuedAt = Date.now();
    const queued = await producer.createDelivery(makeDelivery(subscription));
    const [, received] = await receiver.waitForRequests(2, { timeoutMs: 10_000 });
    expect(idOf(received!)).toBe(queued.id);
    expect(received!.receivedAt - queuedAt).toBeLessThan(1_000);

    await manager.stop({ timeoutMs: 2_000 });
    await waitFor(async () => (await listeners()).length === 0, {
      message: 'stop releases the LISTEN connection',
    });
  });

  it('keeps an unstarted producer and a started consumer apart by prefix', async () => {
    receiver = await startReceiver();
    const other = await createTestSchema(randomPrefix('other'));
    try {
      const foreign = new PostgresRepository(other.url, { tablePrefix: other.prefix });
      cleanups.push(() => foreign.close());
      const sub = makeSubscription({ url: receiver.url('/foreign') });
      await foreign.createSubscription(sub);
      await foreign.createDelivery(makeDelivery(sub));
      const { manager } = await startManager();
      const mine = await subscribe(manager);
      await manager.queueDelivery({
        subscriptionId: mine.id,
        eventType: 'order.created',
        payload: {},
      });
      await receiver.waitForRequests(1);
      expect(receiver.requestsTo('/foreign')).toEqual([]);
      expect((await foreign.getQueueDepth()).pending).toBe(1);
    } finally {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
      await other.drop();
    }
  });
});

function spawnChild(subscriptionId: string): ChildProcessByStdio<Writable, Readable, null> {
  return spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'test/fixtures/queue-delivery-child.ts',
      schema.url,
      schema.prefix,
      subscriptionId,
    ],
    { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] },
  );
}
