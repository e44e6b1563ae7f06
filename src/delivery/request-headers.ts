import {
  ATTEMPT_HEADER,
  DELIVERY_ID_HEADER,
  EVENT_TYPE_HEADER,
  IDEMPOTENCY_KEY_HEADER,
  SIGNATURE_HEADER,
  STANDARD_ID_HEADER,
  STANDARD_SIGNATURE_HEADER,
  STANDARD_TIMESTAMP_HEADER,
  SUBSCRIPTION_ID_HEADER,
  TIMESTAMP_HEADER,
} from '../../verify/headers.js';
import {
  STANDARD_SIGNATURE_VERSION,
  signGoHookd,
  signStandard,
  standardWebhookKey,
} from '../../verify/signature.js';
import { USER_AGENT } from '../constants.js';

/**
 * The headers of one webhook request, signed with both schemes (go-hookd §3.9 and Standard
 * Webhooks). Subscription headers come after the defaults (so they may replace `Content-Type`
 * and `User-Agent`) and before node-hookd's own headers, which they can never replace: names
 * node-hookd owns are dropped from custom headers here as well as refused on write.
 */

/** Header names (lower case) and prefixes a subscription's custom headers may not use. */
const RESERVED_HEADER_NAMES: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-connection',
  'proxy-authorization',
  'traceparent',
  'tracestate',
]);
const RESERVED_HEADER_PREFIXES = ['x-webhook-', 'webhook-'] as const;

/** Whether a custom header name is one node-hookd (or HTTP itself) controls. */
export function isReservedHeaderName(name: string): boolean {
  const lower = name.toLowerCase();
  return (
    RESERVED_HEADER_NAMES.has(lower) ||
    RESERVED_HEADER_PREFIXES.some((prefix) => lower.startsWith(prefix))
  );
}

/** What goes into a webhook request's headers. */
export interface DeliveryHeaderInput {
  readonly deliveryId: string;
  readonly subscriptionId: string | null;
  readonly eventType: string;
  readonly attemptNumber: number;
  readonly idempotencyKey: string | null;
  readonly customHeaders: Readonly<Record<string, string>>;
  /** The resolved signing secret ('' is allowed for inline deliveries without one). */
  readonly secret: string;
  readonly body: string;
  /** Unix seconds of this attempt; both signatures cover it. */
  readonly timestampSeconds: number;
  /** W3C trace context of the attempt, when tracing is on. */
  readonly traceparent?: string | undefined;
}

const EMPTY_KEY = new Uint8Array(0);

/**
 * The Standard Webhooks key of a secret, or null when it has none: a `whsec_` secret whose rest is
 * not canonical base64 is refused by every Standard Webhooks library (and by `node-hookd/verify`),
 * so such a request carries the go-hookd signature only instead of failing the attempt.
 */
function standardKeyOf(secret: string): Uint8Array | null {
  if (secret === '') return EMPTY_KEY;
  try {
    return standardWebhookKey(secret);
  } catch {
    return null;
  }
}

/** Builds the signed request headers of one attempt. */
export function buildDeliveryHeaders(input: DeliveryHeaderInput): Record<string, string> {
  const headers = new Map<string, [name: string, value: string]>();
  const set = (name: string, value: string) => headers.set(name.toLowerCase(), [name, value]);

  set('Content-Type', 'application/json');
  set('User-Agent', USER_AGENT);
  for (const [name, value] of Object.entries(input.customHeaders)) {
    if (!isReservedHeaderName(name)) set(name, value);
  }

  const timestamp = String(input.timestampSeconds);
  const standardKey = standardKeyOf(input.secret);
  set(STANDARD_ID_HEADER, input.deliveryId);
  set(STANDARD_TIMESTAMP_HEADER, timestamp);
  if (standardKey !== null) {
    set(
      STANDARD_SIGNATURE_HEADER,
      `${STANDARD_SIGNATURE_VERSION},${signStandard(standardKey, input.deliveryId, timestamp, input.body)}`,
    );
  }
  set(TIMESTAMP_HEADER, timestamp);
  set(SIGNATURE_HEADER, signGoHookd(input.secret, timestamp, input.body));
  set(DELIVERY_ID_HEADER, input.deliveryId);
  // Present but empty for inline deliveries, as go-hookd sends it.
  set(SUBSCRIPTION_ID_HEADER, input.subscriptionId ?? '');
  set(EVENT_TYPE_HEADER, input.eventType);
  set(ATTEMPT_HEADER, String(input.attemptNumber));
  if (input.idempotencyKey !== null && input.idempotencyKey !== '') {
    set(IDEMPOTENCY_KEY_HEADER, input.idempotencyKey);
  }
  if (input.traceparent !== undefined) set('traceparent', input.traceparent);

  const result: Record<string, string> = {};
  for (const [name, value] of headers.values()) result[name] = value;
  return result;
}
