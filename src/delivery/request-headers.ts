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
  /** Where the secret's keys are kept between requests (derived afresh without one). */
  readonly signingKeys?: SigningKeyCache | undefined;
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
    // A copy of its own: a small Buffer.from() is a slice of a shared 8 KiB pool, which a
    // cached key would keep alive.
    return new Uint8Array(standardWebhookKey(secret));
  } catch {
    return null;
  }
}

/** The HMAC keys of one secret: its UTF-8 bytes (go-hookd) and its Standard Webhooks key. */
export interface SigningKeys {
  readonly goHookd: Uint8Array;
  readonly standard: Uint8Array | null;
}

function deriveSigningKeys(secret: string): SigningKeys {
  return { goHookd: new Uint8Array(Buffer.from(secret, 'utf8')), standard: standardKeyOf(secret) };
}

/**
 * Keys by secret text, one cache per manager. Every attempt signs, and deriving the keys (a
 * base64 check and decode, a UTF-8 encode) allocated per request what is the same for every
 * delivery of a subscription. Keyed by the resolved secret itself, so a rotated secret gets its
 * keys at once; bounded (and simply emptied when full), so arbitrary secrets cannot grow it. It
 * holds nothing its manager does not hold anyway, and goes with it.
 */
export class SigningKeyCache {
  readonly #keys = new Map<string, SigningKeys>();
  readonly #maxEntries: number;

  constructor(maxEntries = 256) {
    this.#maxEntries = Math.max(1, maxEntries);
  }

  keysOf(secret: string): SigningKeys {
    let keys = this.#keys.get(secret);
    if (keys === undefined) {
      keys = deriveSigningKeys(secret);
      if (this.#keys.size >= this.#maxEntries) this.#keys.clear();
      this.#keys.set(secret, keys);
    }
    return keys;
  }
}

/** Builds the signed request headers of one attempt. */
export function buildDeliveryHeaders(input: DeliveryHeaderInput): Record<string, string> {
  const keys = input.signingKeys?.keysOf(input.secret) ?? deriveSigningKeys(input.secret);
  const timestamp = String(input.timestampSeconds);
  const standardSignature =
    keys.standard === null
      ? null
      : `${STANDARD_SIGNATURE_VERSION},${signStandard(keys.standard, input.deliveryId, timestamp, input.body)}`;
  const goHookdSignature = signGoHookd(keys.goHookd, timestamp, input.body);
  if (hasOwnNames(input.customHeaders)) {
    return withCustomHeaders(input, timestamp, standardSignature, goHookdSignature);
  }
  // Without custom headers (the usual case) no name can collide: the headers are written
  // straight into one object, in the same order as below.
  const headers: Record<string, string> = {};
  headers['Content-Type'] = 'application/json';
  headers['User-Agent'] = USER_AGENT;
  headers[STANDARD_ID_HEADER] = input.deliveryId;
  headers[STANDARD_TIMESTAMP_HEADER] = timestamp;
  if (standardSignature !== null) headers[STANDARD_SIGNATURE_HEADER] = standardSignature;
  headers[TIMESTAMP_HEADER] = timestamp;
  headers[SIGNATURE_HEADER] = goHookdSignature;
  headers[DELIVERY_ID_HEADER] = input.deliveryId;
  // Present but empty for inline deliveries, as go-hookd sends it.
  headers[SUBSCRIPTION_ID_HEADER] = input.subscriptionId ?? '';
  headers[EVENT_TYPE_HEADER] = input.eventType;
  headers[ATTEMPT_HEADER] = String(input.attemptNumber);
  if (input.idempotencyKey !== null && input.idempotencyKey !== '') {
    headers[IDEMPOTENCY_KEY_HEADER] = input.idempotencyKey;
  }
  if (input.traceparent !== undefined) headers['traceparent'] = input.traceparent;
  return headers;
}

function hasOwnNames(object: Readonly<Record<string, string>>): boolean {
  for (const name in object) if (Object.hasOwn(object, name)) return true;
  return false;
}

/**
 * The general case: custom headers may replace `Content-Type` and `User-Agent` in any case, so
 * names are tracked case-insensitively (the last writer's spelling wins, at the first writer's
 * position).
 */
function withCustomHeaders(
  input: DeliveryHeaderInput,
  timestamp: string,
  standardSignature: string | null,
  goHookdSignature: string,
): Record<string, string> {
  const headers = new Map<string, [name: string, value: string]>();
  const set = (name: string, value: string) => headers.set(name.toLowerCase(), [name, value]);

  set('Content-Type', 'application/json');
  set('User-Agent', USER_AGENT);
  for (const [name, value] of Object.entries(input.customHeaders)) {
    if (!isReservedHeaderName(name)) set(name, value);
  }

  set(STANDARD_ID_HEADER, input.deliveryId);
  set(STANDARD_TIMESTAMP_HEADER, timestamp);
  if (standardSignature !== null) set(STANDARD_SIGNATURE_HEADER, standardSignature);
  set(TIMESTAMP_HEADER, timestamp);
  set(SIGNATURE_HEADER, goHookdSignature);
  set(DELIVERY_ID_HEADER, input.deliveryId);
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
