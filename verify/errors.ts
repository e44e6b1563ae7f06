/** Why a webhook was refused. `switch (error.code)` narrows on these literals. */
export type WebhookVerificationErrorCode =
  | 'missing_secret'
  | 'invalid_secret'
  | 'missing_signature'
  | 'missing_timestamp'
  | 'missing_id'
  | 'invalid_timestamp'
  | 'timestamp_too_old'
  | 'timestamp_in_future'
  | 'invalid_signature'
  | 'invalid_body'
  | 'unknown_scheme';

// A registry-wide symbol rather than a module-local one: an application can end up with two
// copies of node-hookd (a library pins one version, the app another), and a receiver's
// `instanceof` check must not start failing because the error came from the other copy.
const BRAND = Symbol.for('node-hookd.verify-error');

/**
 * Thrown when a webhook cannot be verified, or when the verifier was given something it cannot
 * verify with (no secret, a parsed body).
 *
 * Named like the `standardwebhooks` package's error so receivers migrating from it recognise it;
 * it is a different class, so check `code` (or {@link isWebhookVerificationError}) rather than
 * the name. Messages say what to fix and never contain the secret or the expected signature.
 */
export class WebhookVerificationError extends Error {
  override readonly name = 'WebhookVerificationError';
  /** Machine-readable reason; stable across versions. */
  readonly code: WebhookVerificationErrorCode;

  /**
   * @param code - The machine-readable reason.
   * @param message - A human-readable explanation; must not contain secret material.
   */
  constructor(code: WebhookVerificationErrorCode, message: string) {
    super(message);
    this.code = code;
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && BRAND in value;
  }
}

/**
 * Whether `error` is a {@link WebhookVerificationError} (from any copy of node-hookd), optionally
 * with the given code.
 *
 * @param error - Any caught value.
 * @param code - When given, also require this code.
 * @example
 * ```ts
 * try {
 *   verifyWebhook({ secret, headers: req.headers, body: req.body });
 * } catch (error) {
 *   if (isWebhookVerificationError(error)) return res.status(401).send(error.code);
 *   throw error;
 * }
 * ```
 */
export function isWebhookVerificationError(
  error: unknown,
  code?: WebhookVerificationErrorCode,
): error is WebhookVerificationError {
  return error instanceof WebhookVerificationError && (code === undefined || error.code === code);
}
