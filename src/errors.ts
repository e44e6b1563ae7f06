/**
 * Every error node-hookd throws is a {@link HookdError}: a stable machine-readable `code`, a
 * `category` (the go-hookd / cuserr categories, so an HTTP-facing application can map category →
 * status code generically), the offending `field` where there is one, and the original `cause`.
 *
 * A failed *delivery* is never an exception: it is recorded as an attempt row and published as an
 * event. Exceptions are for calls the application makes.
 */

/** Broad classes of failure, mirroring go-hookd's error categories. */
export type ErrorCategory =
  'validation' | 'not_found' | 'conflict' | 'external' | 'internal' | 'timeout' | 'rate_limit';

/**
 * Stable error codes. Each code belongs to exactly one category; the table is the single source
 * of that mapping.
 */
const CODE_CATEGORIES = {
  /** A configuration value is missing or out of range (`field` names it). */
  HOOKD_ERR_INVALID_CONFIG: 'validation',
  /** A request argument is missing or out of range (`field` names it). */
  HOOKD_ERR_INVALID_ARGUMENT: 'validation',
  /** A list/cleanup call named no tenant and did not opt into `allTenants`. */
  HOOKD_ERR_TENANT_SCOPE_REQUIRED: 'validation',
  /** `queueDelivery` was called before `start()`. */
  HOOKD_ERR_NOT_STARTED: 'validation',
  /** The target subscription is paused or disabled. */
  HOOKD_ERR_SUBSCRIPTION_NOT_ACTIVE: 'validation',
  /** The event type matches none of the subscription's patterns. */
  HOOKD_ERR_EVENT_TYPE_MISMATCH: 'validation',
  /** The event metadata does not satisfy the subscription's filters. */
  HOOKD_ERR_METADATA_FILTER_MISMATCH: 'validation',
  /** A dead-letter redrive targeted a delivery that is not (or no longer) dead-lettered. */
  HOOKD_ERR_DELIVERY_NOT_DEAD_LETTER: 'validation',
  /** `retryDelivery` targeted a delivery that already succeeded. */
  HOOKD_ERR_CANNOT_RETRY_SUCCESSFUL: 'validation',
  /** A transactional `client` was given to a repository that cannot use it. */
  HOOKD_ERR_UNSUPPORTED: 'validation',
  /** The table prefix is missing or not allowed. */
  HOOKD_ERR_INVALID_PREFIX: 'validation',
  /** A custom HTTP dispatcher would bypass the egress guard. */
  HOOKD_ERR_UNGUARDABLE_DISPATCHER: 'validation',
  /** No subscription has this id. */
  HOOKD_ERR_SUBSCRIPTION_NOT_FOUND: 'not_found',
  /** No delivery has this id. */
  HOOKD_ERR_DELIVERY_NOT_FOUND: 'not_found',
  /** A worker's claim on a delivery was taken over or completed by someone else. */
  HOOKD_ERR_DELIVERY_CLAIM_LOST: 'not_found',
  /** The tenant already has a subscription for this URL. */
  HOOKD_ERR_DUPLICATE_SUBSCRIPTION: 'conflict',
  /** A live idempotency key already produced a delivery in this scope. */
  HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY: 'conflict',
  /** An attempt with this number already exists for the delivery. */
  HOOKD_ERR_DUPLICATE_ATTEMPT: 'conflict',
  /** The delivery is being attempted right now; try again when the attempt has finished. */
  HOOKD_ERR_DELIVERY_IN_PROGRESS: 'conflict',
  /** The schema in the database is newer than this version of node-hookd knows. */
  HOOKD_ERR_SCHEMA_VERSION: 'conflict',
  /** The schema for this prefix has not been created (call `SchemaManager.ensureSchema()`). */
  HOOKD_ERR_SCHEMA_MISSING: 'not_found',
  /** The storage backend failed (database unreachable, query error). */
  HOOKD_ERR_DATABASE: 'external',
  /** The egress guard refused the destination, or it could not be resolved. */
  HOOKD_ERR_EGRESS_DESTINATION_UNREACHABLE: 'external',
  /** The secret resolver failed or returned nothing; nothing was sent. */
  HOOKD_ERR_SIGNING_SECRET_UNAVAILABLE: 'external',
  /** `testSubscription` was called again within its cooldown. */
  HOOKD_ERR_TEST_RATE_LIMITED: 'rate_limit',
  /** Waiting for the schema advisory lock took longer than the configured timeout. */
  HOOKD_ERR_SCHEMA_LOCK_TIMEOUT: 'timeout',
  /** An invariant of node-hookd itself was broken: a bug. */
  HOOKD_ERR_INTERNAL: 'internal',
} as const satisfies Record<string, ErrorCategory>;

/** Every stable error code. `switch (err.code)` narrows on these literals. */
export type HookdErrorCode = keyof typeof CODE_CATEGORIES;

/** Category of a code. */
export function categoryOf(code: HookdErrorCode): ErrorCategory {
  return CODE_CATEGORIES[code];
}

/** Options accepted by the {@link HookdError} constructor. */
export interface HookdErrorOptions {
  /** The offending config or request field, dotted for nested values (`retryPolicy.maxAttempts`). */
  field?: string;
  /** The underlying error. */
  cause?: unknown;
  /** Extra machine-readable facts (`{ deliveryId }`, `{ retryAfterMs }` …). Never secrets. */
  details?: Readonly<Record<string, unknown>>;
}

// A registry-wide symbol, so `instanceof` keeps working when an application ends up with two
// copies of node-hookd (e.g. a library and the app each depending on a different version).
const BRAND = Symbol.for('node-hookd.error');

/** The one error class node-hookd throws. */
export class HookdError extends Error {
  override readonly name = 'HookdError';
  readonly code: HookdErrorCode;
  readonly category: ErrorCategory;
  readonly field: string | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: HookdErrorCode, message: string, options: HookdErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.category = CODE_CATEGORIES[code];
    this.field = options.field;
    this.details = options.details;
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && BRAND in value;
  }

  /** A plain object for logs and JSON APIs (no stack, no cause chain). */
  toJSON(): {
    name: string;
    code: HookdErrorCode;
    category: ErrorCategory;
    message: string;
    field?: string;
    details?: Readonly<Record<string, unknown>>;
  } {
    return {
      name: this.name,
      code: this.code,
      category: this.category,
      message: this.message,
      ...(this.field === undefined ? {} : { field: this.field }),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

/** True when `error` is a {@link HookdError}, optionally with the given code. */
export function isHookdError(error: unknown, code?: HookdErrorCode): error is HookdError {
  return error instanceof HookdError && (code === undefined || error.code === code);
}

function hasCategory(error: unknown, category: ErrorCategory): error is HookdError {
  return error instanceof HookdError && error.category === category;
}

/** True for bad input or configuration. */
export const isValidationError = (error: unknown): error is HookdError =>
  hasCategory(error, 'validation');
/** True when the addressed record does not exist. */
export const isNotFoundError = (error: unknown): error is HookdError =>
  hasCategory(error, 'not_found');
/** True for duplicates (subscription, idempotency key, attempt). */
export const isConflictError = (error: unknown): error is HookdError =>
  hasCategory(error, 'conflict');
/** True when a dependency (database, DNS, secret store) failed. */
export const isExternalError = (error: unknown): error is HookdError =>
  hasCategory(error, 'external');
/** True for bugs in node-hookd. */
export const isInternalError = (error: unknown): error is HookdError =>
  hasCategory(error, 'internal');
/** True when a wait exceeded its limit. */
export const isTimeoutError = (error: unknown): error is HookdError =>
  hasCategory(error, 'timeout');
/** True when the call was refused because it came too soon. */
export const isRateLimitError = (error: unknown): error is HookdError =>
  hasCategory(error, 'rate_limit');
/** True for a duplicate idempotency key (the go-hookd `IsIdempotencyError`). */
export const isIdempotencyError = (error: unknown): error is HookdError =>
  isHookdError(error, 'HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY');

/**
 * Whether retrying the same call later could succeed (go-hookd `ShouldRetry`): true for
 * external, timeout and rate-limit errors; false for everything else, including non-HookdErrors.
 */
export function shouldRetry(error: unknown): boolean {
  return (
    error instanceof HookdError &&
    (error.category === 'external' ||
      error.category === 'timeout' ||
      error.category === 'rate_limit')
  );
}

/** A validation error for a request field. */
export function invalidArgument(field: string, message: string): HookdError {
  return new HookdError('HOOKD_ERR_INVALID_ARGUMENT', message, { field });
}

/** The message of any thrown value, for logs and attempt rows. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
