import { randomBytes } from 'node:crypto';

import pg from 'pg';

import { newSchemaConfig, type SchemaConfig } from '../../src/schema/schema-config.js';
import { SchemaManager } from '../../src/schema/schema-manager.js';
import { testDatabaseUrl } from './database-url.js';

/**
 * A table prefix of its own for one test file: files run in parallel against one database, and
 * prefixes are exactly what keeps independent installations apart.
 */
export function randomPrefix(label = 't', length = 10): string {
  const random = randomBytes(16).toString('hex');
  return `${label}_${random}`.slice(0, Math.max(length, label.length + 7));
}

/** A schema created by the real `SchemaManager`, and how to remove it. */
export interface TestSchema {
  readonly prefix: string;
  readonly config: SchemaConfig;
  readonly url: string;
  /** Drops the tables (call it from `afterAll`). */
  drop(): Promise<void>;
}

/** Creates the node-hookd tables for a fresh random prefix. */
export async function createTestSchema(prefix = randomPrefix()): Promise<TestSchema> {
  const url = testDatabaseUrl();
  const config = newSchemaConfig(prefix);
  const manager = new SchemaManager(url, config);
  try {
    await manager.ensureSchema();
  } finally {
    await manager.close();
  }
  return {
    prefix,
    config,
    url,
    drop: async () => {
      const dropper = new SchemaManager(url, config);
      try {
        await dropper.dropSchema();
      } finally {
        await dropper.close();
      }
    },
  };
}

/** Empties every table of the schema (faster than recreating it between tests). */
export async function truncateSchema(pool: pg.Pool, config: SchemaConfig): Promise<void> {
  const tables = config
    .allTableNames()
    .filter((name) => name !== config.tables.schemaMigrations)
    .join(', ');
  await pool.query(`TRUNCATE ${tables}`);
}

/** A pool on the test database. */
export function testPool(max = 20): pg.Pool {
  const pool = new pg.Pool({ connectionString: testDatabaseUrl(), max });
  pool.on('error', () => undefined);
  return pool;
}
