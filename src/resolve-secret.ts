import type { Logger } from './logger.js';
import type { SecretRequest, SecretResolver } from './secret.js';

/**
 * Turning a stored secret reference into a signing key, the one way both delivery attempts and
 * `testSubscription` pings do it (go-hookd §1.11), so a ping cannot hang on a slow vault or sign
 * with a key a real attempt would have refused.
 */

/** The opaque text reported when no signing key could be obtained (go-hookd §1.11). */
export const SECRET_UNAVAILABLE_MESSAGE = 'webhook signing secret unavailable';

/** What resolving a key needs from the manager. */
export interface SecretResolution {
  readonly secretResolver: SecretResolver;
  /** Whether the resolver is the stored-secret default (which may return '' for inline deliveries). */
  readonly emptySecretAllowed: boolean;
  /** How long an asynchronous resolver may take: the delivery timeout. */
  readonly deliveryTimeoutMs: number;
  readonly logger: Logger;
}

/**
 * Resolves the signing key for one attempt or ping (never cached, so rotated vault secrets take
 * effect at once). Fails closed: an owner tenant that differs from `request.tenantId`, a resolver
 * error, an empty key from a custom resolver, or a resolver slower than the delivery timeout all
 * yield `null`, and the caller sends nothing and reports {@link SECRET_UNAVAILABLE_MESSAGE}. The
 * warning logged names the request's ids and the kind of failure, never the resolver's message
 * (it may name a vault path) nor the key.
 *
 * @param request What the resolver is asked for, passed to it unchanged.
 * @param ownerTenantId The tenant of the subscription `request.ref` was read from, or `null` when
 *   the ref is the delivery's own (inline deliveries).
 */
export async function resolveSigningSecret(
  request: SecretRequest,
  ownerTenantId: string | null,
  context: SecretResolution,
): Promise<string | null> {
  const fields = {
    deliveryId: request.deliveryId,
    tenantId: request.tenantId,
    subscriptionId: request.subscriptionId,
  };
  if (ownerTenantId !== null && ownerTenantId !== request.tenantId) {
    context.logger.warn(
      { ...fields, reason: 'tenant_mismatch' },
      'signing secret refused: delivery and subscription tenants differ',
    );
    return null;
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    let resolved: unknown = context.secretResolver.resolve(request);
    // Only a resolver that answers later can be too slow; a synchronous answer (the default
    // resolver's) needs no timer and no race, which cost more than the rest of this function.
    if (isThenable(resolved)) {
      resolved = await Promise.race([
        resolved,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error('secret resolver timed out')),
            context.deliveryTimeoutMs,
          );
        }),
      ]);
    }
    if (typeof resolved !== 'string' || (resolved === '' && !context.emptySecretAllowed)) {
      context.logger.warn(
        { ...fields, reason: 'empty' },
        'signing secret unavailable: resolver returned no secret',
      );
      return null;
    }
    return resolved;
  } catch (error) {
    context.logger.warn(
      {
        ...fields,
        reason: 'resolver_error',
        errorType: error instanceof Error ? error.constructor.name : typeof error,
      },
      'signing secret unavailable: resolver failed',
    );
    return null;
  } finally {
    clearTimeout(timer);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
