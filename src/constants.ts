/**
 * Limits and fixed values ported from go-hookd (spec §2.9). Values that are part of the wire
 * protocol (header names) live in `verify/headers.ts` so the receiver side shares them.
 */

/** Longest subscription or inline URL accepted. */
export const MAX_URL_LENGTH = 2048;
/** Longest event type or event-type pattern. */
export const MAX_EVENT_TYPE_LENGTH = 255;
/** Shortest plain (non-wildcard) event type a subscription may list. */
export const MIN_EVENT_TYPE_LENGTH = 3;
/** Longest tenant id. */
export const MAX_TENANT_ID_LENGTH = 255;
/** Longest signing secret (bytes). */
export const MAX_SECRET_LENGTH = 512;
/** Shortest subscription signing secret (bytes). */
export const MIN_SECRET_LENGTH = 8;
/** Largest subscription metadata object, as encoded JSON bytes. */
export const MAX_METADATA_SIZE = 65_536;
/** Largest delivery payload, as encoded JSON bytes. */
export const MAX_PAYLOAD_SIZE = 1_048_576;
/** Most event-type patterns per subscription. */
export const MAX_EVENT_TYPES_PER_SUBSCRIPTION = 100;
/** Most custom headers per subscription. */
export const MAX_HEADERS_PER_SUBSCRIPTION = 50;
/** Longest custom header name (go-hookd declared it; node-hookd enforces it). */
export const MAX_HEADER_KEY_LENGTH = 255;
/** Longest custom header value (go-hookd declared it; node-hookd enforces it). */
export const MAX_HEADER_VALUE_LENGTH = 2048;
/** Most items in one batch API call (`queueDeliveries`, `createSubscriptions`). */
export const MAX_BATCH_ITEMS = 100;
/** Longest idempotency key. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
/** Most subscription filters (metadata equality constraints). */
export const MAX_FILTERS_PER_SUBSCRIPTION = 50;

/** Bytes of a receiver's response body kept on the attempt row (longer bodies end in `...`). */
export const MAX_RESPONSE_BODY_LENGTH = 10_240;
/** Response headers kept on the attempt row. */
export const MAX_STORED_RESPONSE_HEADERS = 32;
/** Bytes of each stored response header value (longer values end in `...`). */
export const MAX_STORED_RESPONSE_HEADER_VALUE_LENGTH = 512;
/** Bytes of response body `testSubscription` returns. */
export const MAX_TEST_RESPONSE_BODY_LENGTH = 1024;

/** Identifier prefixes: `sub_…`, `dlv_…`, `att_…` followed by a 21-character nanoid. */
export const ID_PREFIX = { subscription: 'sub', delivery: 'dlv', attempt: 'att' } as const;
/** Length of the random part of every id. */
export const ID_RANDOM_LENGTH = 21;

/** Event type of the connectivity test `testSubscription` sends. */
export const TEST_PING_EVENT_TYPE = 'test.ping';
/**
 * Prefix of the delivery id of test pings (`test_` + 21-character nanoid). Each ping has its own
 * id: Standard Webhooks ids are unique per message, and receivers deduplicate on them.
 */
export const TEST_PING_ID_PREFIX = 'test';
/** Message of the test ping body. */
export const TEST_PING_MESSAGE = 'This is a test webhook from node-hookd to verify your endpoint.';
/** Per-subscription cooldown between two `testSubscription` calls on one manager. */
export const TEST_SUBSCRIPTION_COOLDOWN_MS = 10_000;

/** Scope prefix of inline-delivery idempotency keys (`inline:<sha256 of tenant NUL url>`). */
export const INLINE_IDEMPOTENCY_SCOPE_PREFIX = 'inline:';

/**
 * Time reserved after an attempt for its bookkeeping writes. The claim lease must cover the
 * delivery timeout plus this plus {@link MIN_CLAIM_LEASE_MARGIN_MS}.
 */
export const DELIVERY_BOOKKEEPING_TIMEOUT_MS = 10_000;
/** Smallest slack a configured claim lease must leave beyond timeout + bookkeeping. */
export const MIN_CLAIM_LEASE_MARGIN_MS = 5_000;
/** Slack of the derived claim lease (`deliveryTimeoutMs + 60 s`). */
export const DEFAULT_CLAIM_LEASE_MARGIN_MS = 60_000;
/** Spread of the idle poll timer (±20 %), so many idle workers do not poll in lock-step. */
export const QUEUE_IDLE_JITTER_FRACTION = 0.2;

/** Version sent in `User-Agent: node-hookd/<version>`. Kept in step with package.json by a test. */
export const VERSION = '0.1.0';
/** The `User-Agent` of every webhook request. */
export const USER_AGENT = `node-hookd/${VERSION}`;
