import { HookdError, invalidArgument } from './errors.js';
import { DELIVERY_STATUSES, type CleanupFilter, type DeliveryStatus } from './models.js';

/**
 * Scope rules shared by the manager and every repository (go-hookd §3.16): listing and cleanup
 * fail closed — a filter must name a tenant or explicitly opt into all of them.
 */

/** Throws unless the filter names a tenant or sets `allTenants`. */
export function assertTenantScope(filter: {
  readonly tenantId?: string | undefined;
  readonly allTenants?: boolean | undefined;
}): void {
  if ((filter.tenantId === undefined || filter.tenantId === '') && filter.allTenants !== true) {
    throw new HookdError(
      'HOOKD_ERR_TENANT_SCOPE_REQUIRED',
      'tenantId is required unless allTenants is set',
      { field: 'tenantId' },
    );
  }
}

/** The statuses a cleanup filter selects (empty = any). */
export function cleanupStatuses(filter: CleanupFilter): readonly DeliveryStatus[] {
  if (filter.status === undefined) return [];
  return typeof filter.status === 'string' ? [filter.status] : filter.status;
}

const CLEANUP_FILTER_KEYS: ReadonlySet<string> = new Set([
  'tenantId',
  'allTenants',
  'subscriptionId',
  'status',
  'eventType',
  'createdBefore',
  'createdAfter',
]);

/**
 * go-hookd's `CleanupFilter.Validate`: a filter is required, tenant-scoped (or `allTenants`),
 * must hold at least one real constraint (`allTenants` alone would mean "delete everything"),
 * and `createdBefore` must be after `createdAfter`. Unlike go-hookd, every field is also
 * type-checked and unknown keys are refused: a misspelt constraint would otherwise be ignored and
 * widen a deletion. Returns the validated copy, which callers use instead of their input.
 */
export function validateCleanupFilter(filter: CleanupFilter | null | undefined): CleanupFilter {
  if (filter === null || filter === undefined || typeof filter !== 'object') {
    throw invalidArgument('filter', 'cleanup filter is required');
  }
  let snapshot: CleanupFilter;
  try {
    // Validate and use one copy, read once: a getter could otherwise show the check one value
    // and the delete statement another.
    const copy: Record<string, unknown> = { ...filter };
    if (Array.isArray(copy['status'])) copy['status'] = [...(copy['status'] as unknown[])];
    snapshot = copy;
    checkCleanupFilter(snapshot);
  } catch (error) {
    if (error instanceof HookdError) throw error;
    // A getter or Proxy trap of the caller's object threw while it was being read.
    throw new HookdError('HOOKD_ERR_INVALID_ARGUMENT', 'cleanup filter could not be read', {
      field: 'filter',
      cause: error,
    });
  }
  return snapshot;
}

function checkCleanupFilter(filter: CleanupFilter): void {
  for (const key of Object.keys(filter)) {
    if (!CLEANUP_FILTER_KEYS.has(key)) {
      const field = key === '' ? '""' : key;
      throw invalidArgument(field, `${field} is not a cleanup filter field`);
    }
  }
  const optional = (field: keyof CleanupFilter, ok: (value: unknown) => boolean, what: string) => {
    const value: unknown = filter[field];
    if (value !== undefined && !ok(value)) throw invalidArgument(field, `${field} must be ${what}`);
  };
  const isString = (value: unknown) => typeof value === 'string';
  const isStatus = (value: unknown) => DELIVERY_STATUSES.includes(value as DeliveryStatus);
  const isDate = (value: unknown) => value instanceof Date && !Number.isNaN(value.getTime());
  optional('tenantId', isString, 'a string');
  optional('allTenants', (value) => typeof value === 'boolean', 'a boolean');
  optional('subscriptionId', isString, 'a string');
  optional('eventType', isString, 'a string');
  optional(
    'status',
    (value) => isStatus(value) || (Array.isArray(value) && value.every(isStatus)),
    `one of ${DELIVERY_STATUSES.join(', ')}, or a list of them`,
  );
  optional('createdBefore', isDate, 'a valid Date');
  optional('createdAfter', isDate, 'a valid Date');

  assertTenantScope(filter);
  const hasConstraint =
    filter.createdBefore !== undefined ||
    filter.createdAfter !== undefined ||
    cleanupStatuses(filter).length > 0 ||
    (filter.tenantId !== undefined && filter.tenantId !== '') ||
    filter.subscriptionId !== undefined ||
    filter.eventType !== undefined;
  if (!hasConstraint) {
    throw invalidArgument(
      'filter',
      'cleanup filter needs at least one constraint (createdBefore, createdAfter, status, tenantId, subscriptionId or eventType)',
    );
  }
  if (
    filter.createdBefore !== undefined &&
    filter.createdAfter !== undefined &&
    filter.createdBefore.getTime() <= filter.createdAfter.getTime()
  ) {
    throw invalidArgument('createdBefore', 'createdBefore must be after createdAfter');
  }
}
