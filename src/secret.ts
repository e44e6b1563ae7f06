import { randomBytes } from 'node:crypto';

/**
 * Signing secrets are resolved once per attempt (go-hookd §1.11), so the stored `secret` may be
 * the key itself (the default) or a reference into a vault that a custom resolver looks up.
 */

/** What a resolver is asked for. */
export interface SecretRequest {
  /** The stored `secret` value: the key itself, or a reference. */
  readonly ref: string;
  readonly tenantId: string;
  /** `null` for inline deliveries. */
  readonly subscriptionId: string | null;
  /** The delivery id (`test_ping` for `testSubscription`). */
  readonly deliveryId: string;
  /** A lookup hint only; never an authorisation input. */
  readonly idempotencyKey: string | null;
}

/** Turns a stored secret reference into the signing key. */
export interface SecretResolver {
  resolve(request: SecretRequest): string | Promise<string>;
}

/** A resolver object, or just its `resolve` function. */
export type SecretResolverLike = SecretResolver | SecretResolver['resolve'];

/** The default resolver: the stored value is the key (an empty one is allowed for inline deliveries). */
export const storedSecretResolver: SecretResolver = Object.freeze({
  resolve: (request: SecretRequest) => request.ref,
});

/** Normalises a resolver given as a function or an object. */
export function toSecretResolver(resolver: SecretResolverLike): SecretResolver {
  return typeof resolver === 'function' ? { resolve: resolver } : resolver;
}

/**
 * A new random signing secret in the Standard Webhooks format: `whsec_` + base64 of 32 random
 * bytes. Receivers using the `standardwebhooks` or `svix` packages accept it as it is.
 */
export function generateSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}
