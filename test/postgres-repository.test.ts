import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { defaultConfig, defaultRetryPolicy } from '../src/config.js';
import { HookdError } from '../src/errors.js';
import { generateAttemptId } from '../src/ids.js';
import { PostgresRepository } from '../src/repository/postgres-repository.js';
import type { PgQueryConfig } from '../src/repository/pg-types.js';
import { makeDelivery, makeSubscription } from './contract/repository-contract.js';
import { testDatabaseUrl } from './helpers/database-url.js';
import {
  createTestSchema,
  randomPrefix,
  testPool,
  truncateSchema,
  type TestSchema,
} from './helpers/postgres-schema.js';
import { waitFor } from './helpers/wait.js';

let schema: TestSchema;
let pool: pg.Pool;
const opened: PostgresRepository[] = [];

/** A pool-shaped wrapper that records every statement sent through it. */
function countingPool(target: pg.Pool) {
  const texts: string[] = [];
  const wrapper = {
    totalCount: 0,
    query: (config: PgQueryConfig) => {
      texts.push(config.text);
      return target.query(config as pg.QueryConfig);
    },
    connect: () => target.connect(),
  };
  return { wrapper, texts };
}

function repository(connection: string | object = pool, options = {}): PostgresRepository {
  const created = new PostgresRepository(connection, { tablePrefix: schema.prefix, ...options });
  opened.push(created);
  return created;
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<HookdError> {
  const error = await promise.then(
    () => {
      throw new Error(`expected ${code}`);
    },
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(HookdError);
  expect((error as HookdError).code).toBe(code);
  return error as HookdError;
}

beforeAll(async () => {
  schema = await createTestSchema();
  pool = testPool();
});
afterAll(async () => {
  await pool?.end();
  await schema?.drop();
});
beforeEach(async () => {
  await truncateSchema(pool, schema.config);
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((created) => created.close()));
});

describe('PostgresRepository: statement timeouts', () => {
  it('refuses a negative or fractional queryTimeoutMs', () => {
    for (const queryTimeoutMs of [-1, 1.5, Number.NaN]) {
      expect(
        () => new PostgresRepository(pool, { tablePrefix: schema.prefix, queryTimeoutMs }),
      ).toThrow(
        expect.objectContaining({ code: 'HOOKD_ERR_INVALID_CONFIG', field: 'queryTimeoutMs' }),
      );
    }
  });

  it('fails a statement that gets no answer in time, then carries on; cleanup statements wait', async () => {
    const timed = repository(testDatabaseUrl(), { queryTimeoutMs: 300 });
    await timed.createSubscription(makeSubscription({ tenantId: 'locked' }));
    // Another session holds the deliveries table: every statement that touches it must wait.
    const blocker = await pool.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`LOCK TABLE ${schema.config.tables.deliveries} IN ACCESS EXCLUSIVE MODE`);
      const started = Date.now();
      const error = await expectCode(timed.getDelivery('dlv_whatever'), 'HOOKD_ERR_DATABASE');
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(error.message).toContain('queryTimeoutMs');
      // A cleanup count is not limited: it waits for the lock instead of failing.
      const count = timed.countDeliveriesByFilter({ tenantId: 'locked' });
      setTimeout(() => void blocker.query('COMMIT'), 600);
      await expect(count).resolves.toBe(0);
    } finally {
      blocker.release();
    }
    // The timed-out connection was discarded; the repository works on.
    await expectCode(timed.getDelivery('dlv_whatever'), 'HOOKD_ERR_DELIVERY_NOT_FOUND');
  });
});

describe('PostgresRepository: construction', () => {
  it('requires a valid table prefix and a connection', () => {
    const bad = (options: unknown) => () =>
      new PostgresRepository(testDatabaseUrl(), options as { tablePrefix: string });
    expect(bad({})).toThrow(/tablePrefix is required/);
    expect(bad({})).toThrow(expect.objectContaining({ code: 'HOOKD_ERR_INVALID_PREFIX' }));
    expect(bad(undefined)).toThrow(expect.objectContaining({ code: 'HOOKD_ERR_INVALID_PREFIX' }));
    expect(bad({ tablePrefix: 'Bad-Prefix' })).toThrow(
      expect.objectContaining({ code: 'HOOKD_ERR_INVALID_PREFIX' }),
    );
    expect(() => new PostgresRepository(42 as unknown as string, { tablePrefix: 'ok' })).toThrow(
      expect.objectContaining({ code: 'HOOKD_ERR_INVALID_CONFIG' }),
    );
  });

  it('tells the user to call ensureSchema() when the tables are missing', async () => {
    const missing = new PostgresRepository(pool, { tablePrefix: randomPrefix('nosuch') });
    opened.push(missing);
    const error = await expectCode(missing.getDelivery('dlv_x'), 'HOOKD_ERR_SCHEMA_MISSING');
    expect(error.message).toMatch(/ensureSchema\(\)/);
    await expectCode(missing.ping(), 'HOOKD_ERR_SCHEMA_MISSING');
    await repository().ping();
  });

  it("never closes the application's pool, and refuses calls once closed", async () => {
    const repo = new PostgresRepository(pool, { tablePrefix: schema.prefix });
    await repo.close();
    await repo.close();
    expect((await pool.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 });
    await expectCode(repo.getSubscription('sub_x'), 'HOOKD_ERR_DATABASE');
    await expectCode(repo.createDelivery(makeDelivery(null)), 'HOOKD_ERR_DATABASE');
  });

  it('closes the pool it created from a connection string', async () => {
    const applicationName = randomPrefix('close');
    const repo = new PostgresRepository(testDatabaseUrl(), {
      tablePrefix: schema.prefix,
      pool: { applicationName },
    });
    await repo.ping();
    const count = async () => {
      const result = await pool.query<{ n: string }>(
        'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1',
        [applicationName],
      );
      return Number(result.rows[0]!.n);
    };
    expect(await count()).toBeGreaterThan(0);
    await repo.close();
    await waitFor(async () => (await count()) === 0);
  });

  it('reads values with its own parsers, whatever the application configured in pg', async () => {
    // Every column comes back as the string "X" through this pool's own parsers.
    const oddPool = new pg.Pool({
      connectionString: testDatabaseUrl(),
      max: 2,
      types: { getTypeParser: () => () => 'X' },
    });
    try {
      expect((await oddPool.query('SELECT 1 AS n')).rows[0]).toEqual({ n: 'X' });
      const repo = repository(oddPool);
      const sub = makeSubscription({ metadata: { big: 2 ** 40, nested: { a: [1] } } });
      await repo.createSubscription(sub);
      expect(await repo.getSubscription(sub.id)).toEqual(sub);
      const created = await repo.createDelivery(makeDelivery(sub));
      expect((await repo.getDelivery(created.id)).createdAt).toBeInstanceOf(Date);
      expect((await repo.getQueueDepth()).pending).toBe(1);
    } finally {
      await Promise.all(opened.splice(0).map((created) => created.close()));
      await oddPool.end();
    }
  });

  it('works on a single client the application hands over (no pool)', async () => {
    const client = new pg.Client({ connectionString: testDatabaseUrl() });
    await client.connect();
    try {
      const repo = repository(client);
      const sub = makeSubscription();
      await repo.createSubscription(sub);
      const created = await repo.createDelivery(makeDelivery(sub));
      const [claimed] = await repo.claimPendingDeliveries(5, 60_000);
      expect(claimed!.id).toBe(created.id);
      const settings = { threshold: 5, timeoutMs: 60_000, halfOpenRequests: 1 };
      await Promise.all(
        Array.from({ length: 5 }, () =>
          repo.recordCircuitEvents([{ endpoint: sub.url, event: 'failure' }], settings),
        ),
      );
      expect((await repo.getCircuitBreakerState(sub.url)).state).toBe('open');
      await expectCode(repo.beginTx(), 'HOOKD_ERR_UNSUPPORTED');
      await expectCode(
        repo.listenForWork(
          () => undefined,
          () => undefined,
        ),
        'HOOKD_ERR_UNSUPPORTED',
      );
      await repo.close();
      expect((await client.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 });
    } finally {
      await client.end();
    }
  });
});

describe('PostgresRepository: one round trip per batch', () => {
  it('claims, completes, releases and creates batches with one statement each', async () => {
    const { wrapper, texts } = countingPool(pool);
    const repo = repository(wrapper);
    const sub = makeSubscription();
    await repo.createSubscription(sub);
    texts.length = 0;

    const results = await repo.createDeliveries(
      Array.from({ length: 100 }, (_, i) => ({
        delivery: makeDelivery(sub, { idempotencyKey: `k${i}` }),
        idempotency: { key: `k${i}`, scope: sub.id, ttlMs: 60_000 },
      })),
    );
    expect(results.every((result) => result.ok)).toBe(true);
    expect(texts).toHaveLength(1);

    const claimed = await repo.claimPendingDeliveries(100, 60_000);
    expect(claimed).toHaveLength(100);
    expect(texts).toHaveLength(2);

    const completed = await repo.completeDeliveryAttempts(
      claimed.slice(0, 60).map((item) => ({
        deliveryId: item.id,
        claimToken: item.claimToken,
        attempt: {
          id: generateAttemptId(),
          deliveryId: item.id,
          attemptNumber: 1,
          statusCode: 200,
          responseBody: 'ok',
          responseHeaders: {},
          error: null,
          durationMs: 3,
          attemptedAt: new Date(),
        },
        outcome: { status: 'success' as const },
      })),
    );
    expect(completed.every((result) => result.applied)).toBe(true);
    expect(texts).toHaveLength(3);

    const released = await repo.releaseDeliveryClaims(
      claimed.slice(60).map((item) => ({
        deliveryId: item.id,
        claimToken: item.claimToken,
        retryAt: null,
        refundAttempt: true,
      })),
    );
    expect(released).toBe(40);
    expect(texts).toHaveLength(4);
  });

  it('coalesces concurrent createDelivery calls, each caller getting its own outcome', async () => {
    const { wrapper, texts } = countingPool(pool);
    const repo = repository(wrapper);
    const sub = makeSubscription();
    await repo.createSubscription(sub);
    await repo.createDelivery(makeDelivery(sub, { idempotencyKey: 'held' }), {
      idempotency: { key: 'held', scope: sub.id, ttlMs: 60_000 },
    });
    texts.length = 0;
    const ghost = makeSubscription();
    const outcomes = await Promise.allSettled(
      Array.from({ length: 60 }, (_, i) => {
        if (i === 10) return repo.createDelivery(makeDelivery(ghost));
        const key = i === 20 ? 'held' : null;
        return repo.createDelivery(makeDelivery(sub, { body: `{"i":${i}}`, idempotencyKey: key }), {
          idempotency: key ? { key, scope: sub.id, ttlMs: 60_000 } : undefined,
        });
      }),
    );
    expect(texts.length).toBeLessThanOrEqual(2);
    const codes = outcomes.map((outcome) =>
      outcome.status === 'fulfilled' ? 'ok' : (outcome.reason as HookdError).code,
    );
    expect(codes.filter((code) => code === 'ok')).toHaveLength(58);
    expect(codes[10]).toBe('HOOKD_ERR_SUBSCRIPTION_NOT_FOUND');
    expect(codes[20]).toBe('HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY');
    outcomes.forEach((outcome, i) => {
      if (outcome.status === 'fulfilled') expect(outcome.value.payload).toEqual({ i });
    });
    expect((await repo.getQueueDepth()).pending).toBe(59);
  });

  it('lets concurrent batches that share keys in opposite orders wait instead of deadlocking', async () => {
    const sub = makeSubscription();
    await repository().createSubscription(sub);
    const peers = [
      repository(testDatabaseUrl(), { insertBatching: false }),
      repository(testDatabaseUrl(), { insertBatching: false }),
    ];
    for (let round = 0; round < 5; round += 1) {
      const keys = Array.from({ length: 400 }, (_, i) => `r${round}-k${i}`);
      const batch = (order: readonly string[]) =>
        order.map((key) => ({
          delivery: makeDelivery(sub, { idempotencyKey: key }),
          idempotency: { key, scope: sub.id, ttlMs: 60_000 },
        }));
      const [forward, backward] = await Promise.all([
        peers[0]!.createDeliveries(batch(keys)),
        peers[1]!.createDeliveries(batch([...keys].reverse())),
      ]);
      // Every key went to exactly one of the two batches.
      const won = [...forward, ...backward].filter((result) => result.ok);
      expect(won).toHaveLength(keys.length);
    }
  });

  it('sends one statement per call when coalescing is off', async () => {
    const { wrapper, texts } = countingPool(pool);
    const repo = repository(wrapper, { insertBatching: false });
    const sub = makeSubscription();
    await repo.createSubscription(sub);
    texts.length = 0;
    await Promise.all(Array.from({ length: 5 }, () => repo.createDelivery(makeDelivery(sub))));
    expect(texts).toHaveLength(5);
  });
});

describe('PostgresRepository: storage details', () => {
  it('has a retry_policy column default equal to what the code writes', async () => {
    const repo = repository();
    const sub = makeSubscription();
    await repo.createSubscription(sub);
    const { subscriptions } = schema.config.tables;
    // A row written without a policy takes the column default; the code must read it as the
    // default policy of defaultConfig().
    await pool.query(
      `INSERT INTO ${subscriptions} (id, tenant_id, url, secret, event_types)
       VALUES ('sub_raw', 't', 'https://raw.example.com', 'whsec_0123456789', '{a.b}')`,
    );
    const raw = await repo.getSubscription('sub_raw');
    expect(raw.retryPolicy).toEqual(defaultRetryPolicy(defaultConfig()));
    const keys = await pool.query<{ id: string; keys: string[] }>(
      `SELECT id, array(SELECT jsonb_object_keys(retry_policy) ORDER BY 1) AS keys
       FROM ${subscriptions} ORDER BY id`,
    );
    expect(keys.rows[0]!.keys).toEqual(keys.rows[1]!.keys);
    expect(keys.rows[0]!.keys).toHaveLength(4);
  });

  it("announces work only when the caller's transaction commits", async () => {
    const repo = repository(testDatabaseUrl());
    const sub = makeSubscription();
    await repo.createSubscription(sub);
    const listener = new pg.Client({ connectionString: testDatabaseUrl() });
    await listener.connect();
    const received: string[] = [];
    listener.on('notification', (message) => received.push(message.channel));
    await listener.query(`LISTEN "${schema.config.workChannel}"`);
    await listener.query('LISTEN probe');
    const caller = await pool.connect();
    try {
      await caller.query('BEGIN');
      await repo.withClient(caller).createDelivery(makeDelivery(sub));
      // Notifications arrive in commit order: once the probe is in, an early wake-up would be too.
      await pool.query(`NOTIFY probe`);
      await waitFor(() => received.includes('probe'));
      expect(received).not.toContain(schema.config.workChannel);
      await caller.query('COMMIT');
      await waitFor(() => received.includes(schema.config.workChannel));
    } finally {
      caller.release();
      await listener.end();
    }
  });

  it('accepts any object with a query method as the caller client', async () => {
    const repo = repository();
    const sub = makeSubscription();
    await repo.createSubscription(sub);
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const duck = { query: (config: PgQueryConfig) => client.query(config as pg.QueryConfig) };
      const created = await repo.withClient(duck).createDelivery(makeDelivery(sub));
      await client.query('COMMIT');
      expect((await repo.getDelivery(created.id)).id).toBe(created.id);
      expect(() => repo.withClient({})).toThrow(
        expect.objectContaining({ code: 'HOOKD_ERR_UNSUPPORTED' }),
      );
      await expectCode(repo.withClient(duck).beginTx(), 'HOOKD_ERR_UNSUPPORTED');
    } finally {
      client.release();
    }
  });

  it('keeps a duplicate inside a caller transaction from aborting it', async () => {
    const repo = repository();
    const sub = makeSubscription();
    await repo.createSubscription(sub);
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const view = repo.withClient(client);
      await expectCode(
        view.createSubscription(makeSubscription({ url: sub.url })),
        'HOOKD_ERR_DUPLICATE_SUBSCRIPTION',
      );
      const claim = { key: 'k', scope: sub.id, ttlMs: 60_000 };
      await view.createDelivery(makeDelivery(sub, { idempotencyKey: 'k' }), { idempotency: claim });
      await expectCode(
        view.createDelivery(makeDelivery(sub, { idempotencyKey: 'k' }), { idempotency: claim }),
        'HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY',
      );
      await client.query('COMMIT');
      expect((await repo.getQueueDepth()).pending).toBe(1);
    } finally {
      client.release();
    }
  });
});
