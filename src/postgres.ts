/**
 * The PostgreSQL storage of node-hookd: `SchemaManager` creates and upgrades the tables of a
 * table prefix, `PostgresRepository` stores and claims deliveries in them.
 */

export {
  PostgresRepository,
  type PostgresPoolOptions,
  type PostgresRepositoryOptions,
} from './repository/postgres-repository.js';
export type { InsertBatcherOptions } from './repository/insert-batcher.js';
export {
  SchemaManager,
  schemaLockKey,
  SCHEMA_LOCK_CLASS_ID,
  MIN_POSTGRES_VERSION_NUM,
  type EnsureSchemaResult,
  type SchemaInfo,
  type SchemaManagerOptions,
} from './schema/schema-manager.js';
export {
  MAX_PREFIX_LENGTH,
  POSTGRES_MAX_IDENTIFIER_LENGTH,
  newSchemaConfig,
  shortenIdentifier,
  validatePrefix,
  type SchemaConfig,
  type SchemaTables,
} from './schema/schema-config.js';
export { MIGRATIONS, renderMigration, type MigrationSource } from './schema/migrations.js';
