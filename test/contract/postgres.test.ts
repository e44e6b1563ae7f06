import type pg from 'pg';

import { PostgresRepository } from '../../src/repository/postgres-repository.js';
import type { Repository } from '../../src/repository/repository.js';
import {
  createTestSchema,
  testPool,
  truncateSchema,
  type TestSchema,
} from '../helpers/postgres-schema.js';
import { describeRepositoryContract } from './repository-contract.js';

let schema: TestSchema;
let pool: pg.Pool;

describeRepositoryContract('PostgresRepository', {
  setup: async () => {
    schema = await createTestSchema();
    pool = testPool();
  },
  // The application's pool, shared by the tests: the repository must never close it.
  create: async () => {
    await truncateSchema(pool, schema.config);
    return new PostgresRepository(pool, { tablePrefix: schema.prefix });
  },
  // Another "process": its own pool from a connection string, no coalescing of inserts, so
  // concurrent calls meet in the database rather than in one process.
  createPeer: async () =>
    new PostgresRepository(schema.url, {
      tablePrefix: schema.prefix,
      insertBatching: false,
      pool: { max: 6 },
    }),
  openCallerTransaction: async () => {
    const client = await pool.connect();
    await client.query('BEGIN');
    return {
      client,
      commit: async () => {
        await client.query('COMMIT');
        client.release();
      },
      rollback: async () => {
        await client.query('ROLLBACK');
        client.release();
      },
    };
  },
  destroy: (repository: Repository) => repository.close(),
  teardown: async () => {
    await pool?.end();
    await schema?.drop();
  },
});
