import pg from 'pg';

import { databaseUrl } from './common.js';

let shared: pg.Pool | null = null;

/**
 * Runs one statement on a small pool shared by the whole process, so the benchmark's own
 * progress polling costs PostgreSQL a query, not a connection.
 */
export async function query<T extends pg.QueryResultRow>(
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  shared ??= new pg.Pool({ connectionString: databaseUrl(), max: 2 });
  return (await shared.query<T>(text, values)).rows;
}
