/**
 * The database the tests use: `HOOKD_TEST_DATABASE_URL`, else libpq's standard PG* variables,
 * else the local server of the development machine.
 */
export function testDatabaseUrl(): string {
  const explicit = process.env['HOOKD_TEST_DATABASE_URL'];
  if (explicit) return explicit;
  const host = process.env['PGHOST'] ?? '127.0.0.1';
  const port = process.env['PGPORT'] ?? '5432';
  const user = process.env['PGUSER'] ?? 'postgres';
  const password = process.env['PGPASSWORD'];
  const database = process.env['PGDATABASE'] ?? 'test';
  const auth = password ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}` : user;
  return `postgres://${auth}@${host}:${port}/${database}`;
}
