import { afterEach, describe, expect, it, vi } from 'vitest';

import type { Logger } from '../../src/logger.js';
import { resolveSigningSecret, type SecretResolution } from '../../src/resolve-secret.js';
import {
  storedSecretResolver,
  toSecretResolver,
  type SecretRequest,
  type SecretResolverLike,
} from '../../src/secret.js';

const request: SecretRequest = {
  ref: 'vault/acme/key',
  tenantId: 'acme',
  subscriptionId: 'sub_1',
  deliveryId: 'dlv_1',
  idempotencyKey: 'order-1',
};

/** A resolution context whose logger records every warning. */
function setup(
  resolver: SecretResolverLike,
  options: { emptySecretAllowed?: boolean; deliveryTimeoutMs?: number } = {},
): { context: SecretResolution; warnings: Array<Record<string, unknown>> } {
  const warnings: Array<Record<string, unknown>> = [];
  const ignore = () => undefined;
  const logger: Logger = {
    debug: ignore,
    info: ignore,
    error: ignore,
    warn: (fields: object | string, message?: string) =>
      void warnings.push({ ...(typeof fields === 'string' ? {} : fields), message }),
  };
  return {
    context: {
      secretResolver: toSecretResolver(resolver),
      emptySecretAllowed: options.emptySecretAllowed ?? false,
      deliveryTimeoutMs: options.deliveryTimeoutMs ?? 1_000,
      logger,
    },
    warnings,
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('resolveSigningSecret', () => {
  it('passes the request to the resolver unchanged and returns its key, sync or async', async () => {
    const seen: SecretRequest[] = [];
    const sync = setup((r) => {
      seen.push(r);
      return `key-for-${r.ref}`;
    });
    expect(await resolveSigningSecret(request, 'acme', sync.context)).toBe(
      'key-for-vault/acme/key',
    );
    expect(seen).toEqual([request]);
    const async = setup(async () => 'async-key');
    expect(await resolveSigningSecret(request, null, async.context)).toBe('async-key');
    expect([...sync.warnings, ...async.warnings]).toEqual([]);
  });

  it('refuses a ref owned by another tenant without asking the resolver', async () => {
    const resolve = vi.fn(() => 'key');
    const { context, warnings } = setup(resolve);
    expect(await resolveSigningSecret(request, 'intruder', context)).toBeNull();
    expect(resolve).not.toHaveBeenCalled();
    expect(warnings).toEqual([
      expect.objectContaining({ reason: 'tenant_mismatch', deliveryId: 'dlv_1', tenantId: 'acme' }),
    ]);
  });

  it('allows an empty key only from the stored-secret default', async () => {
    const stored = setup(storedSecretResolver, { emptySecretAllowed: true });
    expect(await resolveSigningSecret({ ...request, ref: '' }, null, stored.context)).toBe('');
    const custom = setup(() => '');
    expect(await resolveSigningSecret(request, null, custom.context)).toBeNull();
    expect(custom.warnings).toEqual([expect.objectContaining({ reason: 'empty' })]);
    const notAString = setup(() => Promise.resolve(42 as unknown as string));
    expect(await resolveSigningSecret(request, null, notAString.context)).toBeNull();
    expect(notAString.warnings).toEqual([expect.objectContaining({ reason: 'empty' })]);
  });

  it.each([
    ['rejects', () => Promise.reject(new TypeError('vault path secret/acme/key: denied'))],
    [
      'throws synchronously',
      () => {
        throw new TypeError('vault path secret/acme/key: denied');
      },
    ],
  ])('fails closed when the resolver %s, logging the kind, never the message', async (_, fn) => {
    const { context, warnings } = setup(fn);
    expect(await resolveSigningSecret(request, 'acme', context)).toBeNull();
    expect(warnings).toEqual([
      {
        deliveryId: 'dlv_1',
        tenantId: 'acme',
        subscriptionId: 'sub_1',
        reason: 'resolver_error',
        errorType: 'TypeError',
        message: 'signing secret unavailable: resolver failed',
      },
    ]);
    expect(JSON.stringify(warnings)).not.toContain('secret/acme');
  });

  it('gives up on a resolver that never answers once the delivery timeout has passed', async () => {
    vi.useFakeTimers();
    const { context, warnings } = setup(() => new Promise<string>(() => undefined), {
      deliveryTimeoutMs: 5_000,
    });
    let settled = false;
    const result = resolveSigningSecret(request, null, context).finally(() => {
      settled = true;
    });
    await vi.advanceTimersByTimeAsync(4_999);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await result).toBeNull();
    expect(warnings).toEqual([expect.objectContaining({ reason: 'resolver_error' })]);
  });

  it('leaves no timer behind when an asynchronous resolver answers in time', async () => {
    vi.useFakeTimers();
    const { context } = setup(async () => 'key');
    expect(await resolveSigningSecret(request, null, context)).toBe('key');
    expect(vi.getTimerCount()).toBe(0);
  });
});
