import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { HookdError } from '../src/errors.js';
import { generateAttemptId } from '../src/ids.js';
import { PostgresRepository } from '../src/repository/postgres-repository.js';
import { MIGRATIONS } from '../src/schema/migrations.js';
import { newSchemaConfig, type SchemaConfig } from '../src/schema/schema-config.js';
import { SchemaManager, schemaLockKey } from '../src/schema/schema-manager.js';
import { makeDelivery, makeSubscription } from './contract/repository-contract.js';
import { testDatabaseUrl } from './helpers/database-url.js';
import { randomPrefix, testPool } from './helpers/postgres-schema.js';
import { waitFor } from './helpers/wait.js';

const url = testDatabaseUrl();
let pool: pg.Pool;
/** Prefixes created by a test, dropped after it. */
const created = new Set<string>();
const closers: Array<() => Promise<unknown>> = [];

function manager(
  config: SchemaConfig,
  options: ConstructorParameters<typeof SchemaManager>[2] = {},
  connection: string | object = url,
): SchemaManager {
  created.add(config.prefix);
  const schemaManager = new SchemaManager(connection, config, options);
  closers.push(() => schemaManager.close());
  return schemaManager;
}

function repository(prefix: string, connection: string | object = pool): PostgresRepository {
  const repo = new PostgresRepository(connection, { tablePrefix: prefix });
  closers.push(() => repo.close());
  return repo;
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

/** Relations (tables, indexes) or constraints whose name contains the prefix. */
async function objectsOf(prefix: string, kind: 'relations' | 'constraints'): Promise<string[]> {
  const result = await pool.query<{ name: string }>(
    kind === 'relations'
      ? `SELECT relname::text AS name FROM pg_class WHERE strpos(relname::text, $1) > 0`
      : `SELECT conname::text AS name FROM pg_constraint WHERE strpos(conname::text, $1) > 0`,
    [prefix],
  );
  return result.rows.map((row) => row.name);
}

beforeAll(() => {
  pool = testPool(10);
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
  for (const prefix of created) {
    const dropper = new SchemaManager(url, newSchemaConfig(prefix));
    await dropper.dropSchema();
    await dropper.close();
  }
  created.clear();
});
afterAll(async () => {
  await pool?.end();
});

describe('SchemaManager', () => {
  it('reports a missing schema, creates it, and finds nothing to do the second time', async () => {
    const config = newSchemaConfig(randomPrefix('sm'));
    const schema = manager(config);
    expect(await schema.getSchemaInfo()).toEqual({
      prefix: config.prefix,
      exists: false,
      version: 0,
      latestVersion: MIGRATIONS.length,
      pendingMigrations: MIGRATIONS.map((migration) => migration.name),
      needsUpgrade: true,
      tableNames: [],
    });
    expect(await schema.ensureSchema()).toEqual({
      applied: MIGRATIONS.map((migration) => migration.name),
      version: MIGRATIONS.length,
    });
    expect(await schema.ensureSchema()).toEqual({ applied: [], version: MIGRATIONS.length });
    const info = await schema.getSchemaInfo();
    expect(info).toMatchObject({ exists: true, version: MIGRATIONS.length, needsUpgrade: false });
    expect([...info.tableNames].sort()).toEqual([...config.allTableNames()].sort());
    await repository(config.prefix).ping();
  });

  it('is created exactly once by concurrent callers on separate pools', async () => {
    const config = newSchemaConfig(randomPrefix('race'));
    const managers = Array.from({ length: 5 }, () => manager(config));
    const results = await Promise.all(managers.map((schema) => schema.ensureSchema()));
    const applied = results.flatMap((result) => result.applied);
    expect(applied.sort()).toEqual(MIGRATIONS.map((migration) => migration.name).sort());
    expect(results.filter((result) => result.applied.length > 0)).toHaveLength(1);
    const ledger = await pool.query(
      `SELECT version FROM ${config.tables.schemaMigrations} ORDER BY version`,
    );
    expect(ledger.rows.map((row: { version: number }) => row.version)).toEqual(
      MIGRATIONS.map((migration) => migration.version),
    );
  });

  it('upgrades an older schema in place and keeps its rows', async () => {
    const config = newSchemaConfig(randomPrefix('up'));
    const old = manager(config, { migrations: MIGRATIONS.slice(0, 1) });
    expect(await old.ensureSchema()).toEqual({ applied: ['0001_baseline'], version: 1 });
    const t = config.tables;
    // Rows as a version-1 build would have written them (payload still a jsonb column).
    await pool.query(
      `INSERT INTO ${t.subscriptions} (id, tenant_id, url, secret, event_types, metadata)
       VALUES ('sub_old', 'tenant-a', 'https://old.example.com/hook', 'whsec_0123456789',
               '{order.*}', '{"plan":"pro"}')`,
    );
    await pool.query(
      `INSERT INTO ${t.deliveries} (id, subscription_id, tenant_id, event_type, payload,
                                    max_attempts, idempotency_key)
       VALUES ('dlv_old', 'sub_old', 'tenant-a', 'order.created', '{"orderId": 7}', 4, 'key-1')`,
    );
    await pool.query(
      `INSERT INTO ${t.deliveryAttempts} (id, delivery_id, attempt_number, status_code)
       VALUES ('att_old', 'dlv_old', 1, 503)`,
    );
    await pool.query(
      `INSERT INTO ${t.idempotencyStore} (idempotency_key, scope, expires_at)
       VALUES ('key-1', 'sub_old', now() + interval '1 hour')`,
    );
    await pool.query(
      `INSERT INTO ${t.circuitBreakerState} (endpoint, state, failure_count)
       VALUES ('https://old.example.com/hook', 'closed', 2)`,
    );
    const info = await manager(config).getSchemaInfo();
    expect(info).toMatchObject({
      version: 1,
      needsUpgrade: true,
      pendingMigrations: MIGRATIONS.slice(1).map((migration) => migration.name),
    });

    expect(await manager(config).ensureSchema()).toEqual({
      applied: MIGRATIONS.slice(1).map((migration) => migration.name),
      version: MIGRATIONS.length,
    });
    const repo = repository(config.prefix);
    await repo.ping();
    expect((await repo.getSubscription('sub_old')).metadata).toEqual({ plan: 'pro' });
    const kept = await repo.getDelivery('dlv_old');
    expect(kept).toMatchObject({
      payload: { orderId: 7 },
      maxAttempts: 4,
      attemptBudget: 4,
      status: 'pending',
      idempotencyKey: 'key-1',
    });
    expect((await repo.getDeliveryAttempts('dlv_old')).map((a) => a.statusCode)).toEqual([503]);
    expect(await repo.checkIdempotency('key-1', 'sub_old')).toBe(true);
    expect((await repo.getCircuitBreakerState('https://old.example.com/hook')).failureCount).toBe(
      2,
    );
    const [claimed] = await repo.claimPendingDeliveries(5, 60_000);
    expect(claimed).toMatchObject({ id: 'dlv_old', attemptCount: 1, body: '{"orderId": 7}' });
  });

  it('refuses a database newer than the code and changes nothing', async () => {
    const config = newSchemaConfig(randomPrefix('new'));
    await manager(config).ensureSchema();
    const older = manager(config, { migrations: MIGRATIONS.slice(0, 1) });
    const error = await expectCode(older.ensureSchema(), 'HOOKD_ERR_SCHEMA_VERSION');
    expect(error.message).toContain(
      `at migration ${MIGRATIONS.length} but this build of node-hookd knows only 1`,
    );
    expect(error.message).toMatch(/upgrade node-hookd/);
    expect((await manager(config).getSchemaInfo()).version).toBe(MIGRATIONS.length);
  });

  it('refuses a released migration whose text changed', async () => {
    const config = newSchemaConfig(randomPrefix('sum'));
    await manager(config).ensureSchema();
    const edited = MIGRATIONS.map((migration, index) =>
      index === 0 ? { ...migration, sql: `${migration.sql}\n-- edited\n` } : migration,
    );
    const error = await expectCode(
      manager(config, { migrations: edited }).ensureSchema(),
      'HOOKD_ERR_SCHEMA_VERSION',
    );
    expect(error.message).toMatch(/released migration was edited/);
  });

  it('refuses tables it did not create, and leaves them alone', async () => {
    const config = newSchemaConfig(randomPrefix('foreign'));
    await pool.query(`CREATE TABLE ${config.tables.subscriptions} (id text PRIMARY KEY)`);
    await pool.query(`INSERT INTO ${config.tables.subscriptions} VALUES ('keep-me')`);
    const error = await expectCode(manager(config).ensureSchema(), 'HOOKD_ERR_SCHEMA_VERSION');
    expect(error.message).toMatch(/no node-hookd migration ledger/);
    const rows = await pool.query(`SELECT id FROM ${config.tables.subscriptions}`);
    expect(rows.rows).toEqual([{ id: 'keep-me' }]);
  });

  it('gives up waiting for the schema lock after lockTimeoutMs', async () => {
    const config = newSchemaConfig(randomPrefix('lock'));
    const holder = await pool.connect();
    const [classId, objectId] = schemaLockKey(config.prefix);
    try {
      await holder.query('SELECT pg_advisory_lock($1, $2)', [classId, objectId]);
      const started = Date.now();
      const error = await expectCode(
        manager(config, { lockTimeoutMs: 200 }).ensureSchema(),
        'HOOKD_ERR_SCHEMA_LOCK_TIMEOUT',
      );
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(error.category).toBe('timeout');
      await expectCode(
        manager(config, { lockTimeoutMs: 200 }).dropSchema(),
        'HOOKD_ERR_SCHEMA_LOCK_TIMEOUT',
      );
      expect((await manager(config).getSchemaInfo()).exists).toBe(false);
    } finally {
      await holder.query('SELECT pg_advisory_unlock($1, $2)', [classId, objectId]);
      holder.release();
    }
    expect((await manager(config, { lockTimeoutMs: 200 }).ensureSchema()).version).toBe(
      MIGRATIONS.length,
    );
    // The lock was released: another session can take it at once.
    const probe = await pool.connect();
    try {
      const taken = await probe.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock($1, $2) AS locked',
        [classId, objectId],
      );
      expect(taken.rows[0]!.locked).toBe(true);
      await probe.query('SELECT pg_advisory_unlock($1, $2)', [classId, objectId]);
    } finally {
      probe.release();
    }
  });

  it('validates its options', () => {
    const config = newSchemaConfig('valid_prefix');
    expect(() => new SchemaManager(url, config, { lockTimeoutMs: 0 })).toThrow(
      expect.objectContaining({ code: 'HOOKD_ERR_INVALID_CONFIG', field: 'lockTimeoutMs' }),
    );
    expect(() => new SchemaManager('', config)).toThrow(
      expect.objectContaining({ code: 'HOOKD_ERR_INVALID_CONFIG' }),
    );
    expect(() => new SchemaManager(url, undefined as unknown as SchemaConfig)).toThrow(
      expect.objectContaining({ code: 'HOOKD_ERR_INVALID_CONFIG' }),
    );
  });

  it('keeps two prefixes in one database apart', async () => {
    const a = newSchemaConfig(randomPrefix('pa'));
    const b = newSchemaConfig(randomPrefix('pb'));
    await Promise.all([manager(a).ensureSchema(), manager(b).ensureSchema()]);
    const repoA = repository(a.prefix);
    const repoB = repository(b.prefix);
    const sub = makeSubscription();
    await repoA.createSubscription(sub);
    await repoA.createDelivery(makeDelivery(sub));
    expect(await repoB.claimPendingDeliveries(10, 60_000)).toEqual([]);
    await repoB.createSubscription(sub);
    expect((await repoA.claimPendingDeliveries(10, 60_000)).map((d) => d.subscriptionId)).toEqual([
      sub.id,
    ]);
    await manager(a).dropSchema();
    expect((await manager(a).getSchemaInfo()).exists).toBe(false);
    expect((await repoB.getSubscription(sub.id)).id).toBe(sub.id);
    expect((await manager(b).getSchemaInfo()).version).toBe(MIGRATIONS.length);
  });

  it('follows search_path instead of assuming the public schema', async () => {
    const namespace = randomPrefix('ns');
    await pool.query(`CREATE SCHEMA ${namespace}`);
    const scoped = new pg.Pool({
      connectionString: url,
      max: 3,
      options: `-c search_path=${namespace}`,
    });
    try {
      const config = newSchemaConfig(randomPrefix('sp'));
      await manager(config, {}, scoped).ensureSchema();
      const tables = await pool.query<{ schemaname: string }>(
        'SELECT DISTINCT schemaname FROM pg_tables WHERE tablename = ANY($1::text[])',
        [[...config.allTableNames()]],
      );
      expect(tables.rows).toEqual([{ schemaname: namespace }]);
      // Seen through the default search_path, this prefix has no schema.
      expect((await manager(config).getSchemaInfo()).exists).toBe(false);
      const repo = repository(config.prefix, scoped);
      await repo.ping();
      const sub = makeSubscription();
      await repo.createSubscription(sub);
      expect((await repo.getSubscription(sub.id)).id).toBe(sub.id);
      await manager(config, {}, scoped).dropSchema();
      created.delete(config.prefix);
    } finally {
      await Promise.all(closers.splice(0).map((close) => close()));
      await scoped.end();
      await pool.query(`DROP SCHEMA ${namespace} CASCADE`);
    }
  });

  it.each([25, 26, 31, 32])(
    'runs the whole lifecycle with a %i-character prefix',
    async (length) => {
      const stem = randomPrefix('long', 40).slice(0, length - 1);
      // Two prefixes of this length sharing all but the last character: their shortened names
      // must not collide.
      const configs = [newSchemaConfig(`${stem}a`), newSchemaConfig(`${stem}b`)];
      for (const config of configs) {
        expect(config.prefix).toHaveLength(length);
        await manager(config).ensureSchema();
      }
      const config = configs[0]!;
      const relations = await objectsOf(config.prefix, 'relations');
      const constraints = await objectsOf(config.prefix, 'constraints');
      expect(relations.length).toBeGreaterThan(15);
      expect(constraints.length).toBeGreaterThan(15);
      // Every name fits (none was cut by the server) and is the name the code computes.
      for (const name of [...relations, ...constraints]) {
        expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
      }
      expect(new Set(relations).size).toBe(relations.length);
      expect(relations).toEqual(
        expect.arrayContaining([
          ...config.allTableNames(),
          config.indexName('deliveries', 'claim'),
          config.uniqueIndexName('subscriptions', 'tenant_url'),
          config.uniqueIndexName('delivery_attempts', 'delivery_number'),
        ]),
      );
      expect(constraints).toEqual(
        expect.arrayContaining([
          config.primaryKeyName('deliveries'),
          config.foreignKeyName('delivery_payloads', 'delivery'),
          config.checkConstraintName('circuit_breaker_state', 'success_count'),
        ]),
      );

      const repo = repository(config.prefix, url);
      let woken = 0;
      const stop = await repo.listenForWork(
        () => (woken += 1),
        () => undefined,
      );
      const sub = makeSubscription();
      await repo.createSubscription(sub);
      await expectCode(
        repo.createSubscription(makeSubscription({ url: sub.url })),
        'HOOKD_ERR_DUPLICATE_SUBSCRIPTION',
      );
      const claim = { key: 'k', scope: sub.id, ttlMs: 60_000 };
      const queued = await repo.createDelivery(makeDelivery(sub, { idempotencyKey: 'k' }), {
        idempotency: claim,
      });
      await expectCode(
        repo.createDelivery(makeDelivery(sub, { idempotencyKey: 'k' }), { idempotency: claim }),
        'HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY',
      );
      await waitFor(() => woken > 0, { message: 'wake-up on the shortened channel' });
      const [claimed] = await repo.claimPendingDeliveries(5, 60_000);
      const attempt = {
        id: generateAttemptId(),
        deliveryId: queued.id,
        attemptNumber: 1,
        statusCode: 200,
        responseBody: 'ok',
        responseHeaders: {},
        error: null,
        durationMs: 4,
        attemptedAt: new Date(),
      };
      const [result] = await repo.completeDeliveryAttempts([
        {
          deliveryId: queued.id,
          claimToken: claimed!.claimToken,
          attempt,
          outcome: { status: 'success' },
        },
      ]);
      expect(result!.applied).toBe(true);
      await expectCode(
        repo.createDeliveryAttempt({ ...attempt, id: generateAttemptId() }),
        'HOOKD_ERR_DUPLICATE_ATTEMPT',
      );
      await repo.recordCircuitEvents([{ endpoint: sub.url, event: 'failure' }], {
        threshold: 5,
        timeoutMs: 1_000,
        halfOpenRequests: 1,
      });
      expect((await repo.listDeliveries({ tenantId: sub.tenantId }))[0]!.status).toBe('success');
      expect(await repo.deleteDeliveriesByFilter({ tenantId: sub.tenantId })).toEqual({
        deliveries: 1,
        attempts: 1,
      });
      await stop();

      for (const each of configs) await manager(each).dropSchema();
      expect(await objectsOf(config.prefix, 'relations')).toEqual([]);
    },
  );
});
