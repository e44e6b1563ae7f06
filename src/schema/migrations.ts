import { createHash } from 'node:crypto';

import { HookdError } from '../errors.js';
import { MIGRATIONS, type MigrationSource } from './migrations.generated.js';
import { shortenIdentifier, type SchemaConfig } from './schema-config.js';

export { MIGRATIONS, type MigrationSource };

/** The placeholder the migration files use for the table prefix. */
export const PREFIX_PLACEHOLDER = '{{prefix}}';

// Every identifier that contains the placeholder, e.g. idx_{{prefix}}_hookd_deliveries_claim.
// `{{` cannot start any SQL token, so the placeholder never collides with real SQL.
const PREFIXED_IDENTIFIER = /[A-Za-z0-9_]*\{\{prefix\}\}[A-Za-z0-9_]*/g;

/**
 * The SQL of one migration for one prefix: the placeholder replaced by the prefix, and each
 * identifier that contained it shortened to PostgreSQL's 63-byte limit exactly as
 * {@link SchemaConfig} names it (so the code and the database agree for every prefix length).
 */
export function renderMigration(migration: MigrationSource, schema: SchemaConfig): string {
  const rendered = migration.sql.replace(PREFIXED_IDENTIFIER, (identifier) =>
    shortenIdentifier(identifier.replace(PREFIX_PLACEHOLDER, schema.prefix)),
  );
  if (rendered.includes('{{')) {
    throw new HookdError(
      'HOOKD_ERR_INTERNAL',
      `migration ${migration.name} has a placeholder that is not part of an identifier`,
    );
  }
  return rendered;
}

/**
 * The checksum recorded in the ledger: SHA-256 (hex) of the file as shipped, before rendering,
 * so it is the same for every prefix and changes only if a released file was edited.
 */
export function migrationChecksum(migration: MigrationSource): string {
  return createHash('sha256').update(migration.sql, 'utf8').digest('hex');
}
