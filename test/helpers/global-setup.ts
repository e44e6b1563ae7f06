import pg from 'pg';

import { testDatabaseUrl } from './database-url.js';

/**
 * Runs once before the suite: the PostgreSQL-backed tests need a reachable server, and a
 * missing one must fail the run with an actionable message rather than skip silently.
 */
export default async function globalSetup(): Promise<void> {
  const url = testDatabaseUrl();
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new Error(
      `The test suite needs PostgreSQL at ${url.replace(/:[^:@/]*@/, ':***@')} ` +
        `(set HOOKD_TEST_DATABASE_URL or the PG* variables). ` +
        `Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`,
      { cause: error },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}
