import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import type pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';

import { ClientRunner, PoolRunner } from '../src/repository/pg-runner.js';
import type { PgQueryConfig } from '../src/repository/pg-types.js';
import { testPool } from './helpers/postgres-schema.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const pools: pg.Pool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.end()));
});

function runner(max = 1, timeoutMs = 10_000): { runner: PoolRunner; pool: pg.Pool } {
  const pool = testPool(max);
  pools.push(pool);
  const created = new PoolRunner(
    pool,
    (error) => (error instanceof Error ? error : new Error(String(error))),
    () => undefined,
    timeoutMs,
  );
  return { runner: created, pool };
}

/** A weak reference to a value of the first statement's result, nothing else kept. */
async function firstResultRef(run: PoolRunner): Promise<WeakRef<object>> {
  const rows = await run.rows(`SELECT '{"big":true}'::jsonb AS doc`);
  return new WeakRef(rows[0]!['doc'] as object);
}

async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 5 && ref.deref() !== undefined; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  return ref.deref() === undefined;
}

describe('PoolRunner on a pg.Pool', () => {
  it('keeps nothing of the statement that opened a connection once its caller is done', async () => {
    // pool.query would keep this result for as long as the connection lives: pg's client holds
    // the callback of the connect() that opened it, which leads back to the first statement.
    const { runner: run } = runner();
    const ref = await firstResultRef(run);
    await run.rows('SELECT 1');
    expect(await collected(ref)).toBe(true);
  });

  it('returns a connection after a statement and discards it after a failed one', async () => {
    const { runner: run, pool } = runner(2);
    await run.rows('SELECT 1');
    expect(pool.totalCount).toBe(1);
    expect(pool.idleCount).toBe(1);
    await expect(run.rows('SELECT * FROM no_such_table_anywhere')).rejects.toThrow();
    expect(pool.totalCount).toBe(0);
    const [row] = await run.rows('SELECT 2 AS n');
    expect(row?.['n']).toBe(2);
    expect(pool.idleCount).toBe(1);
  });

  it('fails a statement the database does not answer in time and discards its connection', async () => {
    const { runner: run, pool } = runner(1, 200);
    const started = Date.now();
    await expect(run.rows('SELECT pg_sleep(3)')).rejects.toThrow('Query read timeout');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(pool.totalCount).toBe(0);
    const [row] = await run.rows('SELECT 4 AS n');
    expect(row?.['n']).toBe(4);
  });

  it('fails the statement, not the process, when the connection breaks under it', async () => {
    const { runner: run, pool } = runner(1);
    const [me] = await run.rows('SELECT pg_backend_pid() AS pid');
    const killer = testPool(1);
    pools.push(killer);
    const statement = run.rows('SELECT pg_sleep(5)');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await killer.query('SELECT pg_terminate_backend($1)', [me?.['pid']]);
    await expect(statement).rejects.toThrow();
    expect(pool.totalCount).toBe(0);
    const [row] = await run.rows('SELECT 3 AS n');
    expect(row?.['n']).toBe(3);
  });
});

describe('statement rows', () => {
  it("are handed over in an array of their own, pg's emptied", async () => {
    const results: Array<{ rows: Record<string, unknown>[] }> = [];
    const client = {
      query: (config: PgQueryConfig) => {
        const result = { rows: [{ n: 1 }, { n: 2 }], rowCount: 2, fields: [{ name: 'n' }] };
        results.push(result);
        // A multi-statement text resolves to one result per statement.
        return Promise.resolve(
          config.text.includes(';') ? [{ rows: [], rowCount: null, fields: [] }, result] : result,
        );
      },
    };
    const run = new ClientRunner(
      client as never,
      (error) => (error instanceof Error ? error : new Error(String(error))),
      () => undefined,
      0,
    );
    expect(await run.rows('SELECT n')).toEqual([{ n: 1 }, { n: 2 }]);
    expect(await run.script('SET x = 1; SELECT n')).toEqual([{ n: 1 }, { n: 2 }]);
    expect(results.map((result) => result.rows.length)).toEqual([0, 0]);
  });
});
