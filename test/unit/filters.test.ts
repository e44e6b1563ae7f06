import { describe, expect, it } from 'vitest';

import { HookdError, type HookdErrorCode } from '../../src/errors.js';
import { assertTenantScope, cleanupStatuses, validateCleanupFilter } from '../../src/filters.js';
import type { CleanupFilter } from '../../src/models.js';

function expectInvalid(
  filter: unknown,
  field: string,
  code: HookdErrorCode = 'HOOKD_ERR_INVALID_ARGUMENT',
): HookdError {
  let caught: unknown;
  try {
    validateCleanupFilter(filter as CleanupFilter);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(HookdError);
  const error = caught as HookdError;
  expect({ code: error.code, field: error.field }).toEqual({ code, field });
  return error;
}

describe('assertTenantScope', () => {
  it('fails closed unless a tenant is named or allTenants is exactly true', () => {
    for (const filter of [{}, { tenantId: '' }, { allTenants: false }, { tenantId: undefined }]) {
      expect(() => assertTenantScope(filter)).toThrow(HookdError);
    }
    expect(() => assertTenantScope({ allTenants: 'true' as unknown as boolean })).toThrow(
      /tenantId is required unless allTenants is set/,
    );
    expect(() => assertTenantScope({ tenantId: 't' })).not.toThrow();
    expect(() => assertTenantScope({ allTenants: true })).not.toThrow();
    expect(() => assertTenantScope({ tenantId: 't', allTenants: false })).not.toThrow();
  });
});

describe('cleanupStatuses', () => {
  it('normalises one status or several to a list', () => {
    expect(cleanupStatuses({ allTenants: true })).toEqual([]);
    expect(cleanupStatuses({ allTenants: true, status: 'success' })).toEqual(['success']);
    expect(cleanupStatuses({ allTenants: true, status: ['success', 'failed'] })).toEqual([
      'success',
      'failed',
    ]);
  });
});

describe('validateCleanupFilter', () => {
  const before = new Date('2030-01-02T00:00:00Z');
  const after = new Date('2030-01-01T00:00:00Z');

  it('accepts tenant-scoped and fleet-wide filters with a real constraint', () => {
    const valid: CleanupFilter[] = [
      { tenantId: 't' },
      { tenantId: 't', status: 'success' },
      { allTenants: true, createdBefore: before },
      { allTenants: true, status: ['success', 'failed'] },
      { allTenants: true, subscriptionId: 'sub_1' },
      { allTenants: true, eventType: 'order.created' },
      { allTenants: true, createdAfter: after, createdBefore: before },
    ];
    for (const filter of valid) expect(() => validateCleanupFilter(filter)).not.toThrow();
  });

  it('requires a filter, a tenant scope and a constraint', () => {
    expectInvalid(null, 'filter');
    expectInvalid(undefined, 'filter');
    expectInvalid('tenant', 'filter');
    expectInvalid({}, 'tenantId', 'HOOKD_ERR_TENANT_SCOPE_REQUIRED');
    expectInvalid({ status: 'success' }, 'tenantId', 'HOOKD_ERR_TENANT_SCOPE_REQUIRED');
    expectInvalid({ allTenants: true }, 'filter');
    expectInvalid({ allTenants: true, status: [] }, 'filter');
  });

  it('requires createdBefore to be after createdAfter', () => {
    expectInvalid(
      { allTenants: true, createdBefore: after, createdAfter: before },
      'createdBefore',
    );
    expectInvalid({ allTenants: true, createdBefore: after, createdAfter: after }, 'createdBefore');
  });

  const badTypes: Array<[string, Record<string, unknown>, string]> = [
    ['createdBefore a string', { tenantId: 't', createdBefore: '2030-01-01' }, 'createdBefore'],
    ['createdBefore a number', { tenantId: 't', createdBefore: 0 }, 'createdBefore'],
    [
      'createdAfter an invalid Date',
      { tenantId: 't', createdAfter: new Date(Number.NaN) },
      'createdAfter',
    ],
    [
      'both dates strings',
      { tenantId: 't', createdBefore: 'b', createdAfter: 'a' },
      'createdBefore',
    ],
    ['tenantId a number', { tenantId: 5 }, 'tenantId'],
    ['allTenants a string', { allTenants: 'yes', tenantId: 't' }, 'allTenants'],
    ['status unknown', { tenantId: 't', status: 'processing' }, 'status'],
    ['status a number', { tenantId: 't', status: 5 }, 'status'],
    ['status list with an unknown entry', { tenantId: 't', status: ['success', 'gone'] }, 'status'],
    ['status an array-like object', { tenantId: 't', status: { length: 0 } }, 'status'],
    ['subscriptionId null', { allTenants: true, subscriptionId: null }, 'subscriptionId'],
    ['subscriptionId a number', { tenantId: 't', subscriptionId: 1 }, 'subscriptionId'],
    ['eventType an array', { tenantId: 't', eventType: ['a'] }, 'eventType'],
    // A misspelt key would otherwise be ignored and widen the sweep to every delivery.
    ['a misspelt status key', { tenantId: 't', statuses: ['success'] }, 'statuses'],
    ['a misspelt date key', { allTenants: true, status: 'success', olderThan: 5 }, 'olderThan'],
    ['an empty key, named ""', { tenantId: 't', '': 1 }, '""'],
  ];

  it.each(badTypes)('refuses %s', (_name, filter, field) => {
    expectInvalid(filter, field);
  });

  it('turns a throwing getter into a validation error', () => {
    const filter = Object.defineProperty({ tenantId: 't' }, 'status', {
      enumerable: true,
      get() {
        throw new Error('getter exploded');
      },
    });
    expectInvalid(filter, 'filter');
  });
});
