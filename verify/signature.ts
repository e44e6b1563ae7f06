/**
 * Signing primitives shared by the receiver-side verifier and node-hookd's sender. They sit on
 * the hot path of every delivery, so they stream the parts of the signed message into the HMAC
 * instead of building one concatenated copy of the body.
 */
import { Buffer } from 'node:buffer';
import { createHmac, timingSafeEqual } from 'node:crypto';

import { WebhookVerificationError } from './errors.js';

/** Marks a Standard Webhooks secret whose remainder is the base64-encoded key. */
export const STANDARD_SECRET_PREFIX = 'whsec_';

/** The Standard Webhooks signature version node-hookd produces and accepts (HMAC-SHA256). */
export const STANDARD_SIGNATURE_VERSION = 'v1';

// Canonical padded base64 only. Node's decoder would quietly accept URL-safe characters, missing
// padding and trailing junk, producing a key that other Standard Webhooks libraries (Go's
// StdEncoding, Python's b64decode, `standardwebhooks`) reject or derive differently; refusing it
// here makes a mangled secret fail on both sides instead of silently on one.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Computes the go-hookd signature: lowercase hex HMAC-SHA256 over `<timestamp>.<body>`.
 *
 * @param secret - The shared secret; a string is used as its UTF-8 bytes (a `whsec_` prefix is
 *   part of the key here, unlike in {@link standardWebhookKey}), a `Uint8Array` as the key bytes.
 * @param timestamp - Exactly the `X-Webhook-Timestamp` header value (Unix seconds).
 * @param body - The raw body; a string is signed as its UTF-8 bytes.
 * @returns 64 lowercase hex characters, the `X-Webhook-Signature` value.
 * @example
 * ```ts
 * signGoHookd('my-secret', '1700000000', '{"ok":true}'); // => 'a1b2…' (64 hex characters)
 * ```
 */
export function signGoHookd(
  secret: string | Uint8Array,
  timestamp: string,
  body: string | Uint8Array,
): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/**
 * Derives the HMAC key for the Standard Webhooks scheme from a configured secret.
 *
 * - `whsec_<base64>`: the base64-decoded remainder, as the `standardwebhooks` and `svix` packages
 *   do by default.
 * - Any other string: its UTF-8 bytes. A receiver using the `standardwebhooks` package with such a
 *   secret must construct it with `{ format: 'raw' }`; for a non-ASCII secret, pass it the UTF-8
 *   bytes (`new TextEncoder().encode(secret)`) because its raw mode keeps only the low byte of
 *   each UTF-16 code unit.
 * - A `Uint8Array`: used as the key bytes, unchanged and not copied.
 *
 * @param secret - The configured secret.
 * @returns The key bytes.
 * @throws {@link WebhookVerificationError} `missing_secret` for an empty secret;
 *   `invalid_secret` when the text after `whsec_` is empty or not canonical padded base64.
 * @example
 * ```ts
 * const key = standardWebhookKey(subscription.secret); // e.g. 'whsec_' + base64 key bytes
 * const header = `v1,${signStandard(key, deliveryId, timestamp, body)}`;
 * ```
 */
export function standardWebhookKey(secret: string | Uint8Array): Uint8Array {
  if (typeof secret !== 'string') {
    if (secret.length === 0) throw emptySecret();
    return secret;
  }
  if (secret.length === 0) throw emptySecret();
  if (!secret.startsWith(STANDARD_SECRET_PREFIX)) return Buffer.from(secret, 'utf8');
  const encoded = secret.slice(STANDARD_SECRET_PREFIX.length);
  if (encoded.length === 0 || !BASE64.test(encoded)) {
    throw new WebhookVerificationError(
      'invalid_secret',
      `A secret starting with "${STANDARD_SECRET_PREFIX}" must continue with a non-empty, ` +
        'padded standard base64 key (characters A-Z a-z 0-9 + / and trailing =), and this one ' +
        'does not. Copy the secret exactly as it was issued, or configure a secret without the ' +
        `"${STANDARD_SECRET_PREFIX}" prefix to use its UTF-8 bytes as the key.`,
    );
  }
  return Buffer.from(encoded, 'base64');
}

/**
 * Computes a Standard Webhooks `v1` signature: base64 HMAC-SHA256 over `<id>.<timestamp>.<body>`.
 *
 * @param key - The key bytes, from {@link standardWebhookKey}.
 * @param id - Exactly the `webhook-id` header value.
 * @param timestamp - Exactly the `webhook-timestamp` header value (Unix seconds).
 * @param body - The raw body; a string is signed as its UTF-8 bytes.
 * @returns The base64 signature, without the `v1,` prefix.
 */
export function signStandard(
  key: Uint8Array,
  id: string,
  timestamp: string,
  body: string | Uint8Array,
): string {
  return createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
}

/**
 * Compares two strings in time that does not depend on where they differ, so an attacker timing
 * responses cannot recover a valid signature byte by byte. Strings of different lengths are
 * unequal; only the length (public for any signature format) can show in the timing.
 *
 * The comparison is exact: `'ABCD'` and `'abcd'` are different, as in go-hookd.
 *
 * @param a - One string, compared as UTF-8 bytes.
 * @param b - The other string.
 * @returns Whether the two strings are identical.
 */
export function timingSafeEqualText(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  if (left.length !== right.length) return false;
  return timingSafeEqual(left, right);
}

function emptySecret(): WebhookVerificationError {
  return new WebhookVerificationError(
    'missing_secret',
    'The webhook secret is empty. Configure the signing secret of the subscription (check that ' +
      'the environment variable holding it is set).',
  );
}
