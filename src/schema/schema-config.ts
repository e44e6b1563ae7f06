import { createHash } from 'node:crypto';

import { HookdError } from '../errors.js';

/**
 * Naming of every database object node-hookd creates. All objects live in the caller's
 * `search_path` and carry the table prefix, so several independent installations (services,
 * test files) can share one database: `{prefix}_hookd_{table}` for tables,
 * `idx_/pk_/chk_/fk_/trg_{prefix}_hookd_{table}_{what}` for the rest (go-hookd §1.16).
 *
 * PostgreSQL silently truncates identifiers to 63 bytes, which made long go-hookd prefixes
 * collide (go-hookd#9); every name here goes through {@link shortenIdentifier} instead.
 */

/** Longest table prefix, in bytes. */
export const MAX_PREFIX_LENGTH = 32;
/** PostgreSQL's identifier limit (NAMEDATALEN − 1). */
export const POSTGRES_MAX_IDENTIFIER_LENGTH = 63;
/** The infix between the prefix and the object name. */
export const HOOKD_TABLE_INFIX = 'hookd';

// Prefixes that are SQL words are refused: they read as statements in logs and tooling.
const RESERVED_PREFIXES: ReadonlySet<string> = new Set([
  'select',
  'insert',
  'update',
  'delete',
  'drop',
  'create',
  'alter',
  'table',
  'schema',
  'index',
  'trigger',
  'function',
  'view',
  'database',
  'grant',
  'revoke',
  'commit',
  'rollback',
  'transaction',
]);

const PREFIX_PATTERN = /^[a-z][a-z0-9_]*$/;
const HASH_HEX_LENGTH = 8;

/**
 * Returns `name` unchanged when it fits PostgreSQL's 63-byte identifier limit; otherwise its first
 * 54 bytes, `_`, and the first 8 hex digits of the SHA-256 of the whole name (exactly 63 bytes).
 * Two long names that share their first 54 bytes still get different identifiers.
 */
export function shortenIdentifier(name: string): string {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length <= POSTGRES_MAX_IDENTIFIER_LENGTH) return name;
  const keep = POSTGRES_MAX_IDENTIFIER_LENGTH - HASH_HEX_LENGTH - 1;
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, HASH_HEX_LENGTH);
  // Names are built from validated ASCII prefixes and fixed suffixes, so a byte cut is a char cut.
  return `${bytes.subarray(0, keep).toString('utf8')}_${hash}`;
}

/**
 * Checks a table prefix: required, at most 32 bytes, a lowercase letter followed by lowercase
 * letters, digits and underscores, and not one of 19 SQL words.
 * @throws HookdError `HOOKD_ERR_INVALID_PREFIX`.
 */
export function validatePrefix(prefix: unknown): asserts prefix is string {
  if (prefix === undefined || prefix === null || prefix === '') {
    throw invalidPrefix(
      'tablePrefix is required - specify one, e.g. { tablePrefix: "myservice" }, and use the same prefix for SchemaManager and PostgresRepository',
    );
  }
  if (typeof prefix !== 'string') throw invalidPrefix('tablePrefix must be a string');
  const length = Buffer.byteLength(prefix, 'utf8');
  if (length > MAX_PREFIX_LENGTH) {
    throw invalidPrefix(
      `tablePrefix is ${length} bytes long; the limit is ${MAX_PREFIX_LENGTH} bytes`,
    );
  }
  if (!PREFIX_PATTERN.test(prefix)) {
    throw invalidPrefix(
      `tablePrefix ${JSON.stringify(prefix)} must start with a lowercase letter and contain only lowercase letters, digits and underscores`,
    );
  }
  if (RESERVED_PREFIXES.has(prefix)) {
    throw invalidPrefix(`tablePrefix ${JSON.stringify(prefix)} is a reserved SQL word`);
  }
}

/** The tables of one installation, by role. */
export interface SchemaTables {
  readonly subscriptions: string;
  readonly deliveries: string;
  readonly deliveryPayloads: string;
  readonly deliveryAttempts: string;
  readonly idempotencyStore: string;
  readonly circuitBreakerState: string;
  /** The migration ledger `SchemaManager` keeps. */
  readonly schemaMigrations: string;
}

/** Table suffixes (`{prefix}_hookd_{suffix}`). */
export const TABLE_SUFFIXES = {
  subscriptions: 'subscriptions',
  deliveries: 'deliveries',
  deliveryPayloads: 'delivery_payloads',
  deliveryAttempts: 'delivery_attempts',
  idempotencyStore: 'idempotency_store',
  circuitBreakerState: 'circuit_breaker_state',
  schemaMigrations: 'schema_migrations',
} as const satisfies Record<keyof SchemaTables, string>;

/**
 * The validated prefix of one node-hookd installation and the names of its database objects.
 * Create it with {@link newSchemaConfig}; pass the same prefix to `SchemaManager` and
 * `PostgresRepository`.
 */
export interface SchemaConfig {
  readonly prefix: string;
  readonly tables: SchemaTables;
  /** The `LISTEN`/`NOTIFY` channel on which new work is announced. */
  readonly workChannel: string;
  /** Every table, in the order they can be dropped (dependents first). */
  allTableNames(): readonly string[];
  /** `idx_{prefix}_hookd_{table}_{columns}`, shortened. */
  indexName(table: string, columns: string): string;
  /** `idx_{prefix}_hookd_{table}_{columns}_unique`, shortened. */
  uniqueIndexName(table: string, columns: string): string;
  /** `pk_{prefix}_hookd_{table}`, shortened. */
  primaryKeyName(table: string): string;
  /** `chk_{prefix}_hookd_{table}_{name}`, shortened. */
  checkConstraintName(table: string, name: string): string;
  /** `fk_{prefix}_hookd_{table}_{name}`, shortened. */
  foreignKeyName(table: string, name: string): string;
  /** `trg_{prefix}_hookd_{table}_{event}`, shortened. */
  triggerName(table: string, event: string): string;
  /** `{kind}_{prefix}_hookd_{rest}`, shortened: the rule all the names above follow. */
  derivedName(kind: string, rest: string): string;
}

/**
 * Validates `prefix` and derives every object name from it (go-hookd `NewSchemaConfig`).
 * @throws HookdError `HOOKD_ERR_INVALID_PREFIX`.
 * @example
 * ```ts
 * const schema = newSchemaConfig('billing');
 * schema.tables.deliveries; // 'billing_hookd_deliveries'
 * ```
 */
export function newSchemaConfig(prefix: string): SchemaConfig {
  validatePrefix(prefix);
  const table = (suffix: string) => shortenIdentifier(`${prefix}_${HOOKD_TABLE_INFIX}_${suffix}`);
  const derivedName = (kind: string, rest: string) =>
    shortenIdentifier(`${kind}_${prefix}_${HOOKD_TABLE_INFIX}_${rest}`);
  const tables: SchemaTables = Object.freeze({
    subscriptions: table(TABLE_SUFFIXES.subscriptions),
    deliveries: table(TABLE_SUFFIXES.deliveries),
    deliveryPayloads: table(TABLE_SUFFIXES.deliveryPayloads),
    deliveryAttempts: table(TABLE_SUFFIXES.deliveryAttempts),
    idempotencyStore: table(TABLE_SUFFIXES.idempotencyStore),
    circuitBreakerState: table(TABLE_SUFFIXES.circuitBreakerState),
    schemaMigrations: table(TABLE_SUFFIXES.schemaMigrations),
  });
  const dropOrder = Object.freeze([
    tables.deliveryAttempts,
    tables.deliveryPayloads,
    tables.idempotencyStore,
    tables.deliveries,
    tables.circuitBreakerState,
    tables.subscriptions,
    tables.schemaMigrations,
  ]);
  return Object.freeze({
    prefix,
    tables,
    workChannel: table('work'),
    allTableNames: () => dropOrder,
    indexName: (t: string, columns: string) => derivedName('idx', `${t}_${columns}`),
    uniqueIndexName: (t: string, columns: string) => derivedName('idx', `${t}_${columns}_unique`),
    primaryKeyName: (t: string) => derivedName('pk', t),
    checkConstraintName: (t: string, name: string) => derivedName('chk', `${t}_${name}`),
    foreignKeyName: (t: string, name: string) => derivedName('fk', `${t}_${name}`),
    triggerName: (t: string, event: string) => derivedName('trg', `${t}_${event}`),
    derivedName,
  });
}

function invalidPrefix(message: string): HookdError {
  return new HookdError('HOOKD_ERR_INVALID_PREFIX', message, { field: 'tablePrefix' });
}
