/**
 * Names of the HTTP headers node-hookd puts on every delivery.
 *
 * The `X-Webhook-*` spellings are the ones go-hookd produces on the wire: Go canonicalises header
 * names, so its `X-Webhook-Delivery-ID` leaves the process as `X-Webhook-Delivery-Id`. Keeping the
 * same bytes lets a receiver written against go-hookd accept node-hookd unchanged. HTTP header
 * names are case-insensitive, and the verifier looks them up that way.
 *
 * The `webhook-*` names are fixed by the Standard Webhooks specification, which writes them in
 * lower case.
 */

/** go-hookd scheme: lowercase hex HMAC-SHA256 of `<timestamp>.<body>`. */
export const SIGNATURE_HEADER = 'X-Webhook-Signature';

/** go-hookd scheme: Unix seconds, as a decimal string, covered by {@link SIGNATURE_HEADER}. */
export const TIMESTAMP_HEADER = 'X-Webhook-Timestamp';

/** The delivery id. Informational: the go-hookd signature does not cover it. */
export const DELIVERY_ID_HEADER = 'X-Webhook-Delivery-Id';

/** The event type. Informational: neither signature covers it. */
export const EVENT_TYPE_HEADER = 'X-Webhook-Event-Type';

/** The attempt number, starting at 1. Informational: neither signature covers it. */
export const ATTEMPT_HEADER = 'X-Webhook-Attempt';

/** The subscription the delivery belongs to. Informational: neither signature covers it. */
export const SUBSCRIPTION_ID_HEADER = 'X-Webhook-Subscription-Id';

/** The idempotency key the event was queued with. Informational: neither signature covers it. */
export const IDEMPOTENCY_KEY_HEADER = 'X-Webhook-Idempotency-Key';

/** Standard Webhooks: the message (delivery) id, covered by the signature. */
export const STANDARD_ID_HEADER = 'webhook-id';

/** Standard Webhooks: Unix seconds, as a decimal string, covered by the signature. */
export const STANDARD_TIMESTAMP_HEADER = 'webhook-timestamp';

/**
 * Standard Webhooks: space-separated `<version>,<base64 signature>` entries, e.g. `v1,K5oZ…=`.
 * Several `v1` entries appear while a secret is being rotated.
 */
export const STANDARD_SIGNATURE_HEADER = 'webhook-signature';
