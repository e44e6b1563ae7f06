import { HookdError, type HookdErrorCode } from '../errors.js';
import type { SchemaConfig } from '../schema/schema-config.js';

/**
 * Turns errors of `pg` into `HookdError`s, from the SQLSTATE, in one table (graphile-worker's
 * habit): uniqueness and foreign-key violations become the contract's conflict and not-found
 * codes (told apart by the table the server names, which stays right for every prefix length),
 * a missing table means the schema was never created, everything else is a database failure.
 */

/** The fields of a `pg` `DatabaseError` node-hookd reads. */
interface PgErrorFields {
  readonly code?: unknown;
  readonly table?: unknown;
  readonly constraint?: unknown;
  readonly detail?: unknown;
}

/** SQLSTATE classes and codes (PostgreSQL Appendix A). */
const SQLSTATE = {
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  checkViolation: '23514',
  notNullViolation: '23502',
  undefinedTable: '42P01',
  undefinedColumn: '42703',
  lockNotAvailable: '55P03',
} as const;

/** The SQLSTATE of a `pg` error, if it has one. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as PgErrorFields | null | undefined)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * Maps any error thrown while talking to PostgreSQL. `HookdError`s pass through unchanged.
 */
export function mapPgError(error: unknown, schema: SchemaConfig): HookdError {
  if (error instanceof HookdError) return error;
  const fields = (error ?? {}) as PgErrorFields;
  const state = sqlState(error);
  const table = typeof fields.table === 'string' ? fields.table : undefined;
  const constraint = typeof fields.constraint === 'string' ? fields.constraint : undefined;
  const message = error instanceof Error ? error.message : String(error);
  const wrap = (code: HookdErrorCode, text: string, field?: string) =>
    new HookdError(code, text, { cause: error, ...(field === undefined ? {} : { field }) });
  const { tables } = schema;

  switch (state) {
    case SQLSTATE.uniqueViolation:
      if (table === tables.subscriptions) {
        const byUrl = constraint === schema.uniqueIndexName('subscriptions', 'tenant_url');
        return wrap(
          'HOOKD_ERR_DUPLICATE_SUBSCRIPTION',
          byUrl
            ? 'the tenant already has a subscription for this URL'
            : 'a subscription with this id already exists',
          byUrl ? 'url' : 'id',
        );
      }
      if (table === tables.deliveryAttempts) {
        return wrap(
          'HOOKD_ERR_DUPLICATE_ATTEMPT',
          'an attempt with this number already exists for the delivery',
        );
      }
      if (table === tables.idempotencyStore) {
        return wrap(
          'HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY',
          'duplicate delivery detected: the idempotency key is in use',
          'idempotencyKey',
        );
      }
      return wrap('HOOKD_ERR_INTERNAL', `unexpected duplicate key: ${message}`);
    case SQLSTATE.foreignKeyViolation:
      if (table === tables.deliveries) {
        return wrap('HOOKD_ERR_SUBSCRIPTION_NOT_FOUND', 'subscription not found', 'subscriptionId');
      }
      if (table === tables.deliveryAttempts || table === tables.deliveryPayloads) {
        return wrap('HOOKD_ERR_DELIVERY_NOT_FOUND', 'delivery not found', 'deliveryId');
      }
      return wrap('HOOKD_ERR_DATABASE', `foreign key violation: ${message}`);
    case SQLSTATE.undefinedTable:
    case SQLSTATE.undefinedColumn:
      return wrap(
        'HOOKD_ERR_SCHEMA_MISSING',
        `the node-hookd tables for prefix "${schema.prefix}" are missing or out of date (${message}); ` +
          `create or upgrade them with new SchemaManager(pool, newSchemaConfig("${schema.prefix}")).ensureSchema() before using the repository`,
      );
    case undefined:
      if (message === 'Query read timeout') {
        return wrap(
          'HOOKD_ERR_DATABASE',
          'database did not answer within the query timeout (queryTimeoutMs)',
        );
      }
      return wrap('HOOKD_ERR_DATABASE', `database unavailable: ${message}`);
    default:
      // Class 22 (data exception) and 23 (integrity) mean the value was refused, not the server.
      if (state.startsWith('22') || state === SQLSTATE.checkViolation) {
        return wrap('HOOKD_ERR_INVALID_ARGUMENT', `value refused by the database: ${message}`);
      }
      return wrap('HOOKD_ERR_DATABASE', `database error ${state}: ${message}`);
  }
}

/** Whether the error means "lock_timeout expired while waiting for a lock". */
export function isLockTimeout(error: unknown): boolean {
  return sqlState(error) === SQLSTATE.lockNotAvailable;
}

/**
 * Whether a failed statement leaves the connection unusable (network errors, server shutdown):
 * such connections are destroyed instead of returned to the pool.
 */
export function isConnectionError(error: unknown): boolean {
  const state = sqlState(error);
  if (state === undefined) return true;
  return state.startsWith('08') || state.startsWith('57P') || state === 'XX000';
}
