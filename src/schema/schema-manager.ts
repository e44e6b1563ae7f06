import pg from 'pg';

import { HookdError } from '../errors.js';
import { isLockTimeout, mapPgError } from '../repository/pg-errors.js';
import {
  PG_TYPES,
  isPgPool,
  type PgPool,
  type PgPoolClient,
  type PgQueryResult,
} from '../repository/pg-types.js';
import {
  MIGRATIONS,
  migrationChecksum,
  renderMigration,
  type MigrationSource,
} from './migrations.js';
import type { SchemaConfig } from './schema-config.js';

/**
 * Creates and upgrades the tables of one prefix from the SQL files in `migrations/`:
 * forward-only, each file in its own transaction together with its ledger row
 * (`{prefix}_hookd_schema_migrations`), under a per-prefix advisory lock so that any number of
 * processes can call {@link SchemaManager.ensureSchema} at boot and the schema is built exactly
 * once. It never drops anything because versions differ (go-hookd's `EnsureSchema` recreated
 * every table — losing all rows — on any version mismatch): a database newer than this build is
 * refused, a released migration whose text changed is refused, and rows are always kept.
 *
 * Objects are created unqualified, i.e. in the first schema of the connection's `search_path`,
 * and looked up with `to_regclass` through the same path.
 */

/** `pg_advisory_lock` class id of schema locks: "hkds", as go-hookd. */
export const SCHEMA_LOCK_CLASS_ID = 0x686b6473;
/** Namespace hashed with the prefix into the lock's object id. */
const SCHEMA_LOCK_NAMESPACE = 'node-hookd:schema:';
/** Oldest PostgreSQL this SQL is written for. */
export const MIN_POSTGRES_VERSION_NUM = 130000;
const DEFAULT_LOCK_TIMEOUT_MS = 60_000;

/**
 * The advisory lock key of a prefix: `[classId, objectId]` with objectId the FNV-1a-32 hash of
 * `node-hookd:schema:<prefix>` as a signed 32-bit integer. Exported so operators (and tests) can
 * see or hold the lock: `SELECT pg_advisory_lock(classId, objectId)`.
 */
export function schemaLockKey(prefix: string): readonly [number, number] {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(SCHEMA_LOCK_NAMESPACE + prefix, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return [SCHEMA_LOCK_CLASS_ID, hash | 0];
}

/** Options of {@link SchemaManager}. */
export interface SchemaManagerOptions {
  /**
   * How long `ensureSchema()`/`dropSchema()` wait for the schema lock (another process
   * migrating the same prefix) and for table locks during DDL, in ms. At least 1.
   * @default 60000
   */
  readonly lockTimeoutMs?: number;
  /**
   * @internal The migrations this build knows (default: all shipped ones). Tests pass a prefix
   * of the list to play an older build.
   */
  readonly migrations?: readonly MigrationSource[];
}

/** What {@link SchemaManager.getSchemaInfo} reports. */
export interface SchemaInfo {
  readonly prefix: string;
  /** Whether node-hookd's tables exist for the prefix (its migration ledger, at least). */
  readonly exists: boolean;
  /** The highest migration applied; 0 when none. */
  readonly version: number;
  /** The highest migration this build knows. */
  readonly latestVersion: number;
  /** Names of the migrations `ensureSchema()` would apply, in order. */
  readonly pendingMigrations: readonly string[];
  /** True when migrations are pending. */
  readonly needsUpgrade: boolean;
  /** The node-hookd tables of the prefix that exist. */
  readonly tableNames: readonly string[];
}

/** What {@link SchemaManager.ensureSchema} did. */
export interface EnsureSchemaResult {
  /** Migrations applied by this call (empty when another process did it, or none were due). */
  readonly applied: readonly string[];
  /** The schema version afterwards. */
  readonly version: number;
}

interface LedgerRow {
  readonly version: number;
  readonly name: string;
  readonly checksum: string;
}

/** Per-connection facts of one call. */
interface Session {
  /** The connection must be destroyed, not returned (e.g. the lock may still be held). */
  broken: boolean;
}

interface SchemaState {
  /** `null` when there is no ledger. */
  readonly ledger: readonly LedgerRow[] | null;
  /** Whether the subscriptions table exists (with or without a ledger). */
  readonly tablesExist: boolean;
}

/**
 * Creates, upgrades, inspects and drops the node-hookd tables of one prefix.
 *
 * @example
 * ```ts
 * const schema = new SchemaManager(process.env.DATABASE_URL!, newSchemaConfig('billing'));
 * await schema.ensureSchema();
 * await schema.close();
 * ```
 */
export class SchemaManager {
  readonly #schema: SchemaConfig;
  readonly #pool: PgPool;
  readonly #ownsPool: boolean;
  readonly #lockTimeoutMs: number;
  readonly #migrations: readonly MigrationSource[];

  /**
   * @param connection - A connection string (a tiny pool of its own is created: one connection,
   *   closed when idle) or the application's `pg.Pool` (used as is, never closed).
   * @param schemaConfig - From `newSchemaConfig(prefix)`.
   * @param options - See {@link SchemaManagerOptions}.
   * @throws HookdError `HOOKD_ERR_INVALID_CONFIG`.
   */
  constructor(
    connection: string | object,
    schemaConfig: SchemaConfig,
    options: SchemaManagerOptions = {},
  ) {
    if (typeof schemaConfig?.prefix !== 'string' || typeof schemaConfig.tables !== 'object') {
      throw new HookdError(
        'HOOKD_ERR_INVALID_CONFIG',
        'schemaConfig is required: pass newSchemaConfig("yourprefix")',
        { field: 'schemaConfig' },
      );
    }
    const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    if (!Number.isInteger(lockTimeoutMs) || lockTimeoutMs < 1) {
      throw new HookdError(
        'HOOKD_ERR_INVALID_CONFIG',
        'lockTimeoutMs must be an integer of at least 1',
        { field: 'lockTimeoutMs' },
      );
    }
    if (typeof connection === 'string' && connection.trim() !== '') {
      const pool = new pg.Pool({
        connectionString: connection,
        max: 1,
        idleTimeoutMillis: 1_000,
        allowExitOnIdle: true,
        application_name: 'node-hookd schema',
      });
      pool.on('error', () => undefined);
      this.#pool = pool;
      this.#ownsPool = true;
    } else if (isPgPool(connection)) {
      this.#pool = connection;
      this.#ownsPool = false;
    } else {
      throw new HookdError(
        'HOOKD_ERR_INVALID_CONFIG',
        'connection must be a PostgreSQL connection string or a pg.Pool',
        { field: 'connection' },
      );
    }
    this.#schema = schemaConfig;
    this.#lockTimeoutMs = lockTimeoutMs;
    this.#migrations = options.migrations ?? MIGRATIONS;
  }

  /** The prefix and object names this manager works on. */
  get schemaConfig(): SchemaConfig {
    return this.#schema;
  }

  /** The highest migration version this build knows. */
  get latestVersion(): number {
    return this.#migrations.length;
  }

  /**
   * Applies every pending migration, each in its own transaction, under the prefix's advisory
   * lock; safe to call from any number of processes at once (one of them migrates, the others
   * wait and find nothing left to do). Rows are never dropped.
   *
   * @throws HookdError `HOOKD_ERR_SCHEMA_VERSION` (database newer than this build, an edited
   *   migration, or foreign tables under the prefix), `HOOKD_ERR_SCHEMA_LOCK_TIMEOUT`,
   *   `HOOKD_ERR_DATABASE`.
   */
  async ensureSchema(): Promise<EnsureSchemaResult> {
    return this.#withClient(async (client, session) => {
      await this.#checkServerVersion(client);
      // Fast path without the lock: the usual boot finds nothing to do.
      const seen = this.#verified(await this.#readState(client));
      if (seen.pending.length === 0) return { applied: [], version: seen.version };
      return this.#locked(client, session, async () => {
        const current = this.#verified(await this.#readState(client));
        const applied: string[] = [];
        for (const migration of current.pending) {
          await this.#apply(client, migration);
          applied.push(migration.name);
        }
        return { applied, version: this.#migrations.length };
      });
    });
  }

  /** Reports the schema's version and what `ensureSchema()` would do. Takes no lock. */
  async getSchemaInfo(): Promise<SchemaInfo> {
    return this.#withClient(async (client) => {
      const state = await this.#readState(client);
      const version = state.ledger?.at(-1)?.version ?? 0;
      const tables = await this.#query(
        client,
        'SELECT name FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n) WHERE to_regclass(name) IS NOT NULL ORDER BY n',
        [[...this.#schema.allTableNames()]],
      );
      const pending = this.#migrations.filter((migration) => migration.version > version);
      return {
        prefix: this.#schema.prefix,
        exists: state.ledger !== null,
        version,
        latestVersion: this.#migrations.length,
        pendingMigrations: pending.map((migration) => migration.name),
        needsUpgrade: pending.length > 0,
        tableNames: tables.rows.map((row) => String(row['name'])),
      };
    });
  }

  /**
   * Drops every node-hookd table of the prefix — all its data — and the ledger, in one
   * transaction under the schema lock. Other prefixes are untouched.
   */
  async dropSchema(): Promise<void> {
    await this.#withClient((client, session) =>
      this.#locked(client, session, async () => {
        const tables = this.#schema.allTableNames().join(', ');
        await this.#query(client, 'BEGIN');
        try {
          // One statement drops the tables' references to each other. No CASCADE: an object
          // of the application that depends on them (a view, a foreign key) makes the drop
          // fail instead of silently disappearing with them.
          await this.#query(client, `DROP TABLE IF EXISTS ${tables}`);
          await this.#query(client, 'COMMIT');
        } catch (error) {
          await this.#query(client, 'ROLLBACK').catch(() => undefined);
          throw error;
        }
      }),
    );
  }

  /** Closes the pool this manager created (a pool passed in is left alone). Idempotent. */
  async close(): Promise<void> {
    if (this.#ownsPool) await this.#pool.end?.().catch(() => undefined);
  }

  // ── Internals ────────────────────────────────────────────────────────────────────────────

  async #withClient<T>(work: (client: PgPoolClient, session: Session) => Promise<T>): Promise<T> {
    let client: PgPoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw mapPgError(error, this.#schema);
    }
    const session: Session = { broken: false };
    try {
      return await work(client, session);
    } finally {
      client.release(session.broken);
    }
  }

  /**
   * Runs `work` holding the prefix's session advisory lock, waiting at most the lock timeout.
   * The lock is released afterwards; if that cannot be confirmed, the connection is destroyed
   * (closing it releases the lock) instead of going back to a pool with the lock held.
   */
  async #locked<T>(client: PgPoolClient, session: Session, work: () => Promise<T>): Promise<T> {
    const [classId, objectId] = schemaLockKey(this.#schema.prefix);
    await this.#query(client, `SELECT set_config('lock_timeout', $1, false)`, [
      `${this.#lockTimeoutMs}ms`,
    ]);
    try {
      await this.#query(client, 'SELECT pg_advisory_lock($1::int4, $2::int4)', [classId, objectId]);
    } catch (error) {
      await this.#query(client, 'RESET lock_timeout').catch(() => {
        session.broken = true;
      });
      throw this.#lockError(error, 'the schema lock');
    }
    try {
      return await work();
    } finally {
      try {
        await this.#query(client, 'SELECT pg_advisory_unlock($1::int4, $2::int4)', [
          classId,
          objectId,
        ]);
        await this.#query(client, 'RESET lock_timeout');
      } catch {
        session.broken = true;
      }
    }
  }

  async #apply(client: PgPoolClient, migration: MigrationSource): Promise<void> {
    const ledger = this.#schema.tables.schemaMigrations;
    await this.#query(client, 'BEGIN');
    try {
      await this.#query(
        client,
        `CREATE TABLE IF NOT EXISTS ${ledger} (
           version    integer     NOT NULL PRIMARY KEY,
           name       text        NOT NULL,
           checksum   text        NOT NULL,
           applied_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
      // No parameters: sent with the simple protocol, which runs a whole multi-statement file.
      await this.#query(client, renderMigration(migration, this.#schema));
      await this.#query(
        client,
        `INSERT INTO ${ledger} (version, name, checksum) VALUES ($1, $2, $3)`,
        [migration.version, migration.name, migrationChecksum(migration)],
      );
      await this.#query(client, 'COMMIT');
    } catch (error) {
      await this.#query(client, 'ROLLBACK').catch(() => undefined);
      const cause = (error as { cause?: unknown }).cause ?? error;
      if (isLockTimeout(cause)) {
        throw this.#lockError(error, `a table lock for migration ${migration.name}`);
      }
      throw new HookdError(
        'HOOKD_ERR_DATABASE',
        `migration ${migration.name} for prefix "${this.#schema.prefix}" failed and was rolled back: ${
          cause instanceof Error ? cause.message : String(cause)
        }`,
        { cause },
      );
    }
  }

  async #readState(client: PgPoolClient): Promise<SchemaState> {
    const { tables } = this.#schema;
    const result = await this.#query(
      client,
      'SELECT to_regclass($1) IS NOT NULL AS ledger, to_regclass($2) IS NOT NULL AS tables',
      [tables.schemaMigrations, tables.subscriptions],
    );
    const row = result.rows[0] ?? {};
    const tablesExist = row['tables'] === true;
    if (row['ledger'] !== true) return { ledger: null, tablesExist };
    const ledger = await this.#query(
      client,
      `SELECT version, name, checksum FROM ${tables.schemaMigrations} ORDER BY version`,
    );
    return {
      tablesExist,
      ledger: ledger.rows.map((entry) => ({
        version: Number(entry['version']),
        name: String(entry['name']),
        checksum: String(entry['checksum']),
      })),
    };
  }

  /** Checks the applied migrations against this build's; returns what is pending. */
  #verified(state: SchemaState): { version: number; pending: readonly MigrationSource[] } {
    const prefix = this.#schema.prefix;
    if (state.ledger === null) {
      if (state.tablesExist) {
        throw new HookdError(
          'HOOKD_ERR_SCHEMA_VERSION',
          `tables of prefix "${prefix}" exist but have no node-hookd migration ledger (${this.#schema.tables.schemaMigrations}): ` +
            `they were not created by node-hookd's SchemaManager (a go-hookd schema?). Nothing was changed; ` +
            `use another tablePrefix, or move the data to a node-hookd schema yourself`,
        );
      }
      return { version: 0, pending: this.#migrations };
    }
    const latest = this.#migrations.length;
    state.ledger.forEach((entry, index) => {
      if (entry.version !== index + 1) {
        throw new HookdError(
          'HOOKD_ERR_SCHEMA_VERSION',
          `the migration ledger of prefix "${prefix}" is not contiguous (found version ${entry.version} at position ${index + 1}); repair it before continuing`,
        );
      }
      if (entry.version > latest) {
        throw new HookdError(
          'HOOKD_ERR_SCHEMA_VERSION',
          `the schema for prefix "${prefix}" is at migration ${state.ledger!.length} but this build of node-hookd knows only ${latest}: ` +
            `upgrade node-hookd in this process (nothing was changed; node-hookd never downgrades or drops a newer schema)`,
        );
      }
      const known = this.#migrations[index]!;
      const checksum = migrationChecksum(known);
      if (entry.name !== known.name || entry.checksum !== checksum) {
        throw new HookdError(
          'HOOKD_ERR_SCHEMA_VERSION',
          `migration ${entry.version} of prefix "${prefix}" was applied as ${entry.name} (checksum ${entry.checksum.slice(0, 12)}…) ` +
            `but this build ships ${known.name} (checksum ${checksum.slice(0, 12)}…): a released migration was edited. ` +
            `Restore the original file; released migrations are never changed, new ones are added`,
        );
      }
    });
    const version = state.ledger.length;
    return { version, pending: this.#migrations.slice(version) };
  }

  async #checkServerVersion(client: PgPoolClient): Promise<void> {
    const result = await this.#query(client, 'SHOW server_version_num');
    const version = Number(result.rows[0]?.['server_version_num']);
    if (Number.isFinite(version) && version < MIN_POSTGRES_VERSION_NUM) {
      throw new HookdError(
        'HOOKD_ERR_UNSUPPORTED',
        `node-hookd needs PostgreSQL 13 or newer; this server reports version ${version}`,
      );
    }
  }

  #lockError(error: unknown, what: string): HookdError {
    if (isLockTimeout((error as { cause?: unknown }).cause ?? error)) {
      return new HookdError(
        'HOOKD_ERR_SCHEMA_LOCK_TIMEOUT',
        `timed out after ${this.#lockTimeoutMs} ms waiting for ${what} of prefix "${this.#schema.prefix}": ` +
          `another process is migrating or holding it; retry, or raise lockTimeoutMs`,
        { cause: error },
      );
    }
    return mapPgError(error, this.#schema);
  }

  async #query(
    client: PgPoolClient,
    text: string,
    values?: readonly unknown[],
  ): Promise<PgQueryResult> {
    try {
      return await client.query(
        values === undefined ? { text, types: PG_TYPES } : { text, values, types: PG_TYPES },
      );
    } catch (error) {
      // The driver error stays reachable as `cause`: callers look at its SQLSTATE.
      throw mapPgError(error, this.#schema);
    }
  }
}
