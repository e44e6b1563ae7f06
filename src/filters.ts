import { HookdError, invalidArgument } from './errors.js';
import type { CleanupFilter, DeliveryStatus } from './models.js';

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

/**
 * go-hookd's `CleanupFilter.Validate`: a filter is required, tenant-scoped (or `allTenants`),
 * must hold at least one real constraint (`allTenants` alone would mean "delete everything"),
 * and `createdBefore` must be after `createdAfter`.
 */
export function validateCleanupFilter(
  filter: CleanupFilter | null | undefined,
): asserts filter is CleanupFilter {
  if (filter === null || filter === undefined || typeof filter !== 'object') {
    throw invalidArgument('filter', 'cleanup filter is required');
  }
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
