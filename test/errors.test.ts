import { describe, expect, it } from 'vitest';

import {
  HookdError,
  categoryOf,
  invalidArgument,
  isConflictError,
  isHookdError,
  isIdempotencyError,
  isValidationError,
  shouldRetry,
} from '../src/errors.js';

describe('HookdError', () => {
  it('carries code, category, field and cause', () => {
    const cause = new Error('boom');
    const error = new HookdError('HOOKD_ERR_INVALID_CONFIG', 'workerCount must be >= 1', {
      field: 'workerCount',
      cause,
    });
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('HOOKD_ERR_INVALID_CONFIG');
    expect(error.category).toBe('validation');
    expect(error.field).toBe('workerCount');
    expect(error.cause).toBe(cause);
    expect(error.name).toBe('HookdError');
  });

  it('is recognised across copies of the package through its registry-wide brand', () => {
    const foreign = Object.assign(new Error('x'), { code: 'HOOKD_ERR_INTERNAL' });
    Object.defineProperty(foreign, Symbol.for('node-hookd.error'), { value: true });
    expect(foreign instanceof HookdError).toBe(true);
    expect(new Error('plain') instanceof HookdError).toBe(false);
  });

  it('serialises to a plain object without the stack', () => {
    const json = JSON.parse(JSON.stringify(invalidArgument('url', 'url is required')));
    expect(json).toEqual({
      name: 'HookdError',
      code: 'HOOKD_ERR_INVALID_ARGUMENT',
      category: 'validation',
      message: 'url is required',
      field: 'url',
    });
  });

  it('answers the category predicates and shouldRetry like go-hookd', () => {
    const duplicate = new HookdError('HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY', 'duplicate');
    expect(isConflictError(duplicate)).toBe(true);
    expect(isIdempotencyError(duplicate)).toBe(true);
    expect(isValidationError(duplicate)).toBe(false);
    expect(isHookdError(duplicate, 'HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY')).toBe(true);
    expect(isHookdError(duplicate, 'HOOKD_ERR_INTERNAL')).toBe(false);
    expect(shouldRetry(new HookdError('HOOKD_ERR_DATABASE', 'down'))).toBe(true);
    expect(shouldRetry(new HookdError('HOOKD_ERR_SCHEMA_LOCK_TIMEOUT', 'slow'))).toBe(true);
    expect(shouldRetry(new HookdError('HOOKD_ERR_TEST_RATE_LIMITED', 'wait'))).toBe(true);
    expect(shouldRetry(duplicate)).toBe(false);
    expect(shouldRetry(new Error('plain'))).toBe(false);
    expect(categoryOf('HOOKD_ERR_SUBSCRIPTION_NOT_FOUND')).toBe('not_found');
  });
});
