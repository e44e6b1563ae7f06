/**
 * `node-hookd/verify`: checks, on the receiving side, that a webhook really comes from a
 * node-hookd sender holding the shared secret, and that it is fresh.
 *
 * Every node-hookd delivery carries two independent signatures: the go-hookd one
 * (`X-Webhook-Signature`) and a Standard Webhooks one (`webhook-signature`), so a receiver can use
 * this module, the `standardwebhooks` / `svix` packages, or code written for go-hookd.
 *
 * This module has no dependencies beyond `node:crypto` and `node:buffer`, so a receiver can use it
 * without pulling in the sender's database and HTTP stack.
 */
import type { Buffer } from 'node:buffer';

import { WebhookVerificationError } from './errors.js';
import {
  STANDARD_SIGNATURE_VERSION,
  signGoHookd,
  signStandard,
  standardWebhookKey,
  timingSafeEqualText,
} from './signature.js';

export { WebhookVerificationError, isWebhookVerificationError } from './errors.js';
export type { WebhookVerificationErrorCode } from './errors.js';
export {
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
} from './headers.js';

/** Default `maxAgeMs`: five minutes, the tolerance the Standard Webhooks specification uses. */
export const DEFAULT_MAX_AGE_MS = 300_000;

/** How far ahead of the receiver's clock a timestamp may be (clock skew) unless `allowFuture`. */
export const FUTURE_TOLERANCE_MS = 60_000;

/** A signature scheme node-hookd sends. */
export type WebhookScheme = 'standard' | 'go-hookd';

/**
 * Which signature to check. `'standard'` (the default) requires the Standard Webhooks signature,
 * which every node-hookd request carries and which covers the delivery id. `'go-hookd'` checks
 * only `X-Webhook-Signature` (for go-hookd senders); `'auto'` takes Standard Webhooks when
 * `webhook-signature` is present, else go-hookd. The go-hookd signature does not cover the
 * delivery id: a replay within the age window can carry an id of the replayer's choosing, so a
 * receiver that deduplicates on the id should pin `'standard'` (see `VerifiedWebhook.idSigned`).
 */
export type VerifyScheme = 'auto' | WebhookScheme;

/**
 * Request headers in any of the usual shapes: a web `Headers` object (fetch, Hono, Next.js, Bun,
 * Deno), Node's `IncomingHttpHeaders` (`req.headers` in Express, Fastify, `node:http`), or a plain
 * record. Names are matched case-insensitively.
 */
export type HeadersLike =
  Headers | Readonly<Record<string, string | readonly string[] | undefined>>;

/**
 * The raw request body, byte for byte as it arrived. Not a parsed object: re-serialising parsed
 * JSON changes the bytes (spacing, key order, number formats) and the signature no longer matches.
 * Prefer bytes over a string when the body might not be valid UTF-8.
 */
export type BodyLike = string | Buffer | Uint8Array | ArrayBuffer;

/** Options of {@link verifyWebhook}. */
export interface VerifyWebhookOptions {
  /** The subscription's signing secret (see {@link standardWebhookKey} for how it becomes a key). */
  secret?: string | Uint8Array;
  /**
   * Several secrets, during a rotation: the webhook is accepted when any of them (and `secret`,
   * if also given) produced any of the signatures. Empty entries are refused.
   */
  secrets?: ReadonlyArray<string | Uint8Array>;
  /** The request headers. */
  headers: HeadersLike;
  /** The raw request body. */
  body: BodyLike;
  /**
   * Oldest acceptable timestamp, in milliseconds before now. Default {@link DEFAULT_MAX_AGE_MS};
   * `0` disables the check (and with it replay protection).
   */
  maxAgeMs?: number;
  /** Accept timestamps more than {@link FUTURE_TOLERANCE_MS} in the future. Default `false`. */
  allowFuture?: boolean;
  /** Which signature to check. Default `'standard'`. */
  scheme?: VerifyScheme;
  /** The current time in epoch milliseconds; for tests. Default `Date.now`. */
  now?: () => number;
}

/** What {@link verifyWebhook} learned about a webhook it accepted. */
export interface VerifiedWebhook {
  /** The scheme whose signature matched. */
  scheme: WebhookScheme;
  /**
   * The delivery id: `webhook-id` in the standard scheme, `X-Webhook-Delivery-Id` in the go-hookd
   * scheme. Use it to drop duplicate deliveries — when {@link VerifiedWebhook.idSigned} is true.
   */
  id: string | undefined;
  /**
   * Whether the signature covers {@link VerifiedWebhook.id}: true in the standard scheme. In the
   * go-hookd scheme the id is an unsigned header that a replayer could change.
   */
  idSigned: boolean;
  /** The signed timestamp. */
  timestamp: Date;
  /** How old the webhook is, in milliseconds; slightly negative when the sender's clock is ahead. */
  ageMs: number;
  /** `X-Webhook-Event-Type`. Not covered by either signature: trust the signed body instead. */
  eventType: string | undefined;
  /** `X-Webhook-Attempt` (1 for the first attempt). Not covered by either signature. */
  attempt: number | undefined;
}

/** Options of {@link verifyRequest}. */
export type VerifyRequestOptions = Omit<VerifyWebhookOptions, 'headers' | 'body'>;

/** Options of the {@link Webhook} class. */
export type WebhookOptions = Omit<VerifyWebhookOptions, 'secret' | 'secrets' | 'headers' | 'body'>;

/**
 * Verifies a webhook sent by node-hookd and returns what it learned.
 *
 * Checks, in order: a secret was given, the body is raw bytes or text, a signature header is
 * present, (standard scheme) `webhook-id` is present, the timestamp is present, numeric, not more
 * than a minute in the future and not older than `maxAgeMs`, and finally that one of the secrets
 * produced one of the signatures, compared in constant time.
 *
 * @param options - Secret(s), the request headers and raw body, and the freshness policy.
 * @returns The verified scheme, delivery id, timestamp, age and informational headers.
 * @throws {@link WebhookVerificationError} with the failing check as `code`; answer `401` to the
 *   sender. Throws `RangeError` / `TypeError` for a malformed `maxAgeMs`, `now` or `headers`.
 * @example
 * ```ts
 * import express from 'express';
 * import { verifyWebhook, isWebhookVerificationError } from 'node-hookd/verify';
 *
 * app.post('/webhooks', express.raw({ type: 'application/json' }), (req, res) => {
 *   try {
 *     const webhook = verifyWebhook({
 *       secret: process.env.WEBHOOK_SECRET,
 *       headers: req.headers,
 *       body: req.body, // a Buffer, thanks to express.raw()
 *     });
 *     const event = JSON.parse(req.body.toString('utf8'));
 *     // … handle event, deduplicating on webhook.id
 *     res.sendStatus(204);
 *   } catch (error) {
 *     if (isWebhookVerificationError(error)) return res.status(401).send(error.code);
 *     throw error;
 *   }
 * });
 * ```
 */
export function verifyWebhook(options: VerifyWebhookOptions): VerifiedWebhook {
  return documentedErrors(() => {
    const secrets = collectSecrets(options.secret, options.secrets);
    return verifyWith(secrets, undefined, settingsOf(options), options.headers, options.body);
  });
}

/**
 * Keeps the promise of the public functions: they fail with a {@link WebhookVerificationError}
 * for a webhook that does not verify, and a `TypeError` or `RangeError` for inputs that are not
 * what the types say. Anything else an input throws while being read (a hostile proxy, a
 * throwing getter) becomes such a `TypeError`, with the original error as its cause.
 */
function documentedErrors<T>(run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (
      error instanceof WebhookVerificationError ||
      error instanceof TypeError ||
      error instanceof RangeError
    ) {
      throw error;
    }
    throw new TypeError('The arguments could not be read.', { cause: error });
  }
}

/**
 * Verifies a web `Request` (Hono, Next.js route handlers, Bun, Deno, Cloudflare Workers): reads the
 * body once as bytes, verifies it, and returns it as text so it can be parsed afterwards.
 *
 * @param request - The incoming request; its body must not have been read yet.
 * @param options - As for {@link verifyWebhook}, without `headers` and `body`.
 * @returns The {@link VerifiedWebhook} fields plus `body`, the UTF-8 text of the body (decoded like
 *   `request.text()`).
 * @throws {@link WebhookVerificationError} as {@link verifyWebhook}; `invalid_body` when the body
 *   was already consumed.
 * @example
 * ```ts
 * app.post('/webhooks', async (c) => {
 *   const { body, id } = await verifyRequest(c.req.raw, { secret: env.WEBHOOK_SECRET });
 *   const event = JSON.parse(body);
 *   return c.body(null, 204);
 * });
 * ```
 */
export async function verifyRequest(
  request: Request,
  options: VerifyRequestOptions,
): Promise<VerifiedWebhook & { body: string }> {
  // Configuration errors first, so a misconfigured receiver does not consume the body for nothing.
  const secrets = collectSecrets(options.secret, options.secrets);
  const settings = settingsOf(options);
  if (request.bodyUsed) {
    throw new WebhookVerificationError(
      'invalid_body',
      'The request body has already been read, so its raw bytes are gone. Call verifyRequest ' +
        'before anything else reads the body (or pass request.clone()).',
    );
  }
  const bytes = new Uint8Array(await request.arrayBuffer());
  const verified = verifyWith(secrets, undefined, settings, request.headers, bytes);
  return { ...verified, body: new TextDecoder().decode(bytes) };
}

/**
 * A reusable verifier bound to a secret (or to several, during a rotation), shaped like the
 * `standardwebhooks` package's `Webhook`. The secrets and options are checked once, here, so a
 * misconfiguration fails at startup rather than on the first webhook.
 *
 * Unlike `standardwebhooks`, `verify` returns the {@link VerifiedWebhook} facts rather than the
 * parsed body, and accepts both node-hookd signature schemes.
 *
 * @example
 * ```ts
 * const webhook = new Webhook([process.env.WEBHOOK_SECRET_NEW!, process.env.WEBHOOK_SECRET_OLD!]);
 * const { id, eventType } = webhook.verify(req.body, req.headers);
 * ```
 */
export class Webhook {
  // Private fields, so the secrets stay out of console.log / util.inspect output and error
  // reporters that serialise objects.
  readonly #secrets: ReadonlyArray<string | Uint8Array>;
  readonly #settings: Settings;
  readonly #standardKeys: readonly Uint8Array[] | undefined;

  /**
   * @param secret - One secret, or several accepted side by side during a rotation.
   * @param options - Freshness policy and scheme, as for {@link verifyWebhook}.
   * @throws {@link WebhookVerificationError} `missing_secret` for no or empty secrets,
   *   `invalid_secret` for a malformed `whsec_` secret, `unknown_scheme` for a bad `scheme`.
   */
  constructor(
    secret: string | Uint8Array | ReadonlyArray<string | Uint8Array>,
    options: WebhookOptions = {},
  ) {
    this.#secrets =
      typeof secret === 'string' || secret instanceof Uint8Array
        ? collectSecrets(secret, undefined)
        : collectSecrets(undefined, secret);
    this.#settings = settingsOf(options);
    // Derived once, here, so a malformed whsec_ secret fails at startup; a go-hookd-only
    // verifier never uses these keys, so it does not need valid ones.
    this.#standardKeys =
      this.#settings.scheme === 'go-hookd' ? undefined : this.#secrets.map(standardWebhookKey);
  }

  /**
   * Verifies one webhook.
   *
   * @param body - The raw request body.
   * @param headers - The request headers.
   * @returns What was verified.
   * @throws {@link WebhookVerificationError} as {@link verifyWebhook}.
   */
  verify(body: BodyLike, headers: HeadersLike): VerifiedWebhook {
    return documentedErrors(() =>
      verifyWith(this.#secrets, this.#standardKeys, this.#settings, headers, body),
    );
  }
}

/** Parameters of {@link signature}, the port of go-hookd's `verify.SignatureParams`. */
export interface SignatureParams {
  /** The shared secret. */
  secret: string;
  /** The `X-Webhook-Signature` header value. */
  signature: string;
  /** The `X-Webhook-Timestamp` header value. */
  timestamp: string;
  /** The raw request body. */
  payload: string | Uint8Array;
  /** Oldest acceptable timestamp in milliseconds; `0` (the default, as in go-hookd) = no limit. */
  maxAgeMs?: number;
  /** Accept timestamps more than a minute in the future. Default `false`. */
  allowFuture?: boolean;
  /** The current time in epoch milliseconds; for tests. Default `Date.now`. */
  now?: () => number;
}

/** Result of {@link signature}. There is no `valid: false`: failures throw. */
export interface SignatureResult {
  valid: true;
  /** The signed timestamp. */
  timestamp: Date;
  /** How old the request is, in milliseconds. */
  ageMs: number;
}

/**
 * Verifies a go-hookd signature: a port of go-hookd's `verify.Signature`, with the same checks in
 * the same order and the same defaults (no age limit unless `maxAgeMs` is set). Prefer
 * {@link verifyWebhook}, which reads the headers itself and applies a five-minute window.
 *
 * The signature must be lowercase hex, exactly as sent; as in Go, uppercase hex does not match.
 *
 * @param params - The secret, the two header values, the raw body and the freshness policy.
 * @returns `{ valid: true, timestamp, ageMs }`.
 * @throws {@link WebhookVerificationError}: `missing_secret`, `missing_signature`,
 *   `missing_timestamp`, `invalid_timestamp` (not a base-10 integer), `timestamp_in_future`,
 *   `timestamp_too_old`, `invalid_body` (payload is not a string or bytes), `invalid_signature`.
 * @example
 * ```ts
 * signature({
 *   secret: process.env.WEBHOOK_SECRET!,
 *   signature: req.headers['x-webhook-signature'] as string,
 *   timestamp: req.headers['x-webhook-timestamp'] as string,
 *   payload: req.body, // a Buffer, from express.raw()
 *   maxAgeMs: 5 * 60_000,
 * });
 * ```
 */
export function signature(params: SignatureParams): SignatureResult {
  return documentedErrors(() => signatureUnguarded(params));
}

function signatureUnguarded(params: SignatureParams): SignatureResult {
  if (typeof params.secret !== 'string' || params.secret === '') throw noSecret();
  if (typeof params.signature !== 'string' || params.signature === '') {
    throw new WebhookVerificationError(
      'missing_signature',
      'The signature is empty. Pass the X-Webhook-Signature header value.',
    );
  }
  if (typeof params.timestamp !== 'string' || params.timestamp === '') {
    throw new WebhookVerificationError(
      'missing_timestamp',
      'The timestamp is empty. Pass the X-Webhook-Timestamp header value.',
    );
  }
  // Go's strconv.ParseInt(s, 10, 64) accepts an optional sign.
  const timestampMs = parseUnixSeconds(params.timestamp, /^[+-]?\d+$/, 'X-Webhook-Timestamp');
  const ageMs = checkFreshness(
    timestampMs,
    currentTime(params.now),
    params.maxAgeMs ?? 0,
    params.allowFuture ?? false,
  );
  const payload = rawBody(params.payload);
  if (
    !timingSafeEqualText(signGoHookd(params.secret, params.timestamp, payload), params.signature)
  ) {
    throw mismatch('X-Webhook-Signature', 1);
  }
  return { valid: true, timestamp: new Date(timestampMs), ageMs };
}

/**
 * Checks only the go-hookd HMAC, with no timestamp checks (so no replay protection): a port of
 * go-hookd's `verify.Quick`. An empty secret is allowed, as in Go.
 *
 * @param secret - The shared secret.
 * @param timestamp - The `X-Webhook-Timestamp` header value.
 * @param payload - The raw request body.
 * @param signature - The `X-Webhook-Signature` header value (lowercase hex).
 * @returns Whether the signature matches.
 * @throws {@link WebhookVerificationError} `invalid_body` when `payload` is not a string or bytes.
 * @example
 * ```ts
 * if (!quick(secret, timestampHeader, rawBody, signatureHeader)) return res.sendStatus(401);
 * ```
 */
export function quick(
  secret: string,
  timestamp: string,
  payload: string | Uint8Array,
  signature: string,
): boolean {
  return documentedErrors(() =>
    timingSafeEqualText(signGoHookd(secret, timestamp, rawBody(payload)), signature),
  );
}

/** Parameters of {@link createSignatureHeaders}. */
export interface SignatureHeadersParams {
  /** The secret the receiver under test is configured with. */
  secret: string | Uint8Array;
  /** The delivery id (`webhook-id`, `X-Webhook-Delivery-Id`). */
  id: string;
  /** Unix seconds (not milliseconds). Default: now. */
  timestamp?: number;
  /** The exact body the request will carry. */
  body: BodyLike;
  /** Which signatures to produce. Default: both, as node-hookd sends. */
  schemes?: ReadonlyArray<WebhookScheme>;
}

/**
 * Produces the signature headers a node-hookd sender would put on a request with this body, for
 * testing a receiver without running a sender. Names are lower case, as Node's `req.headers` and
 * `Headers` present them.
 *
 * @param params - Secret, delivery id, timestamp, body and schemes.
 * @returns `webhook-id`, `webhook-timestamp`, `webhook-signature` (standard scheme),
 *   `x-webhook-signature`, `x-webhook-timestamp` (go-hookd scheme) and `x-webhook-delivery-id`.
 * @throws {@link WebhookVerificationError} `missing_secret`, `invalid_secret`, `missing_id`,
 *   `invalid_timestamp` (not whole, non-negative seconds), `invalid_body`, `unknown_scheme`.
 * @example
 * ```ts
 * const body = JSON.stringify({ type: 'order.paid' });
 * const signed = createSignatureHeaders({ secret: 'test-secret', id: 'dlv_1', body });
 * const response = await fetch('http://localhost:3000/webhooks', {
 *   method: 'POST',
 *   headers: { 'content-type': 'application/json', ...signed },
 *   body,
 * });
 * ```
 */
export function createSignatureHeaders(params: SignatureHeadersParams): Record<string, string> {
  return documentedErrors(() => signatureHeadersUnguarded(params));
}

function signatureHeadersUnguarded(params: SignatureHeadersParams): Record<string, string> {
  collectSecrets(params.secret, undefined);
  if (typeof params.id !== 'string' || params.id === '') {
    throw new WebhookVerificationError('missing_id', 'Pass the delivery id as `id`.');
  }
  const unixSeconds = params.timestamp ?? Math.floor(Date.now() / 1000);
  // Past year 9999 the value is almost certainly Date.now() milliseconds passed by mistake.
  if (!Number.isSafeInteger(unixSeconds) || unixSeconds < 0 || unixSeconds > MAX_UNIX_SECONDS) {
    throw new WebhookVerificationError(
      'invalid_timestamp',
      '`timestamp` must be whole Unix seconds, not milliseconds (e.g. ' +
        'Math.floor(Date.now() / 1000)).',
    );
  }
  const schemes = params.schemes ?? ['standard', 'go-hookd'];
  if (schemes.length === 0) {
    throw new WebhookVerificationError(
      'unknown_scheme',
      "`schemes` is empty; name at least one of 'standard' and 'go-hookd'.",
    );
  }
  for (const scheme of schemes) {
    if (scheme !== 'standard' && scheme !== 'go-hookd') throw unknownScheme(scheme);
  }
  const body = rawBody(params.body);
  const timestamp = String(unixSeconds);
  const headers: Record<string, string> = {};
  if (schemes.includes('standard')) {
    const key = standardWebhookKey(params.secret);
    headers[STANDARD_ID] = params.id;
    headers[STANDARD_TIMESTAMP] = timestamp;
    headers[STANDARD_SIGNATURE] =
      `${STANDARD_SIGNATURE_VERSION},${signStandard(key, params.id, timestamp, body)}`;
  }
  if (schemes.includes('go-hookd')) {
    headers[GO_SIGNATURE] = signGoHookd(params.secret, timestamp, body);
    headers[GO_TIMESTAMP] = timestamp;
  }
  headers[DELIVERY_ID] = params.id;
  return headers;
}

// ---------------------------------------------------------------------------------------------
// Internals.

// Lower-case spellings for lookups; the exported constants keep the wire spelling.
const STANDARD_ID = 'webhook-id';
const STANDARD_TIMESTAMP = 'webhook-timestamp';
const STANDARD_SIGNATURE = 'webhook-signature';
const GO_SIGNATURE = 'x-webhook-signature';
const GO_TIMESTAMP = 'x-webhook-timestamp';
const DELIVERY_ID = 'x-webhook-delivery-id';
const EVENT_TYPE = 'x-webhook-event-type';
const ATTEMPT = 'x-webhook-attempt';

// JavaScript dates end at ±8.64e15 ms; a timestamp beyond that cannot be represented.
const MAX_TIMESTAMP_MS = 8.64e15;

// 9999-12-31T23:59:59Z.
const MAX_UNIX_SECONDS = 253_402_300_799;

interface Settings {
  scheme: VerifyScheme;
  maxAgeMs: number;
  allowFuture: boolean;
  now: (() => number) | undefined;
}

function settingsOf(options: WebhookOptions): Settings {
  const scheme = options.scheme ?? 'standard';
  if (scheme !== 'auto' && scheme !== 'standard' && scheme !== 'go-hookd') {
    throw unknownScheme(scheme);
  }
  const maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  checkMaxAge(maxAgeMs);
  return { scheme, maxAgeMs, allowFuture: options.allowFuture ?? false, now: options.now };
}

function verifyWith(
  secrets: ReadonlyArray<string | Uint8Array>,
  standardKeys: readonly Uint8Array[] | undefined,
  settings: Settings,
  headers: HeadersLike,
  body: BodyLike,
): VerifiedWebhook {
  const payload = rawBody(body);
  const header = headerReader(headers);

  const standardSignature = nonEmpty(header(STANDARD_SIGNATURE, true));
  const goSignature = nonEmpty(header(GO_SIGNATURE, false));
  let scheme: WebhookScheme;
  let signatureValue: string;
  if (settings.scheme === 'auto') {
    if (standardSignature !== undefined) {
      scheme = 'standard';
      signatureValue = standardSignature;
    } else if (goSignature !== undefined) {
      scheme = 'go-hookd';
      signatureValue = goSignature;
    } else {
      throw new WebhookVerificationError(
        'missing_signature',
        'The request has neither a webhook-signature nor an X-Webhook-Signature header. Check ' +
          'that a proxy is not stripping headers and that the request comes from a node-hookd ' +
          'sender.',
      );
    }
  } else {
    scheme = settings.scheme;
    const present = scheme === 'standard' ? standardSignature : goSignature;
    if (present === undefined) {
      throw new WebhookVerificationError(
        'missing_signature',
        `The request has no ${scheme === 'standard' ? 'webhook-signature' : 'X-Webhook-Signature'} ` +
          `header, which scheme '${scheme}' requires.`,
      );
    }
    signatureValue = present;
  }

  const id = nonEmpty(header(STANDARD_ID, false));
  const standardId = id ?? '';
  if (scheme === 'standard' && id === undefined) {
    throw new WebhookVerificationError(
      'missing_id',
      'The request has a webhook-signature but no webhook-id header; the Standard Webhooks ' +
        'signature covers the id, so it cannot be checked without it.',
    );
  }

  const timestampName = scheme === 'standard' ? STANDARD_TIMESTAMP : GO_TIMESTAMP;
  const timestamp = header(timestampName, false);
  if (timestamp === undefined) {
    throw new WebhookVerificationError(
      'missing_timestamp',
      `The request has no ${scheme === 'standard' ? 'webhook-timestamp' : 'X-Webhook-Timestamp'} ` +
        'header; the signature covers it, so it cannot be checked without it.',
    );
  }
  const timestampMs = parseUnixSeconds(timestamp, /^\d+$/, timestampName);
  const ageMs = checkFreshness(
    timestampMs,
    currentTime(settings.now),
    settings.maxAgeMs,
    settings.allowFuture,
  );

  let matched = false;
  if (scheme === 'standard') {
    const candidates = standardSignatures(signatureValue);
    if (candidates.length === 0) {
      throw new WebhookVerificationError(
        'invalid_signature',
        `The webhook-signature header has no "${STANDARD_SIGNATURE_VERSION},<base64>" entry; ` +
          `only ${STANDARD_SIGNATURE_VERSION} (HMAC-SHA256) signatures are supported.`,
      );
    }
    const keys = standardKeys ?? secrets.map(standardWebhookKey);
    for (const key of keys) {
      const expected = signStandard(key, standardId, timestamp, payload);
      if (candidates.some((candidate) => timingSafeEqualText(expected, candidate))) {
        matched = true;
        break;
      }
    }
  } else {
    for (const secret of secrets) {
      if (timingSafeEqualText(signGoHookd(secret, timestamp, payload), signatureValue)) {
        matched = true;
        break;
      }
    }
  }
  if (!matched) {
    throw mismatch(
      scheme === 'standard' ? 'webhook-signature' : 'X-Webhook-Signature',
      secrets.length,
    );
  }

  return {
    scheme,
    id: scheme === 'standard' ? id : nonEmpty(header(DELIVERY_ID, false)),
    idSigned: scheme === 'standard',
    timestamp: new Date(timestampMs),
    ageMs,
    eventType: nonEmpty(header(EVENT_TYPE, false)),
    attempt: parseAttempt(header(ATTEMPT, false)),
  };
}

function collectSecrets(
  secret: string | Uint8Array | undefined,
  secrets: ReadonlyArray<string | Uint8Array> | undefined,
): Array<string | Uint8Array> {
  const all: Array<string | Uint8Array> = [];
  if (secret !== undefined) all.push(secret);
  if (secrets !== undefined) {
    // Checked through an `unknown` alias so the narrowing does not turn `secrets` into `any[]`.
    const list: unknown = secrets;
    if (!Array.isArray(list)) {
      throw new WebhookVerificationError(
        'missing_secret',
        '`secrets` must be an array of secrets.',
      );
    }
    all.push(...secrets);
  }
  if (all.length === 0) throw noSecret();
  all.forEach((value: unknown, index) => {
    const usable = (typeof value === 'string' || value instanceof Uint8Array) && value.length > 0;
    if (!usable) {
      throw new WebhookVerificationError(
        'missing_secret',
        `Secret #${index + 1} of ${all.length} is ${describe(value)}; every secret must be a ` +
          'non-empty string or Uint8Array. Check that the environment variable holding it is set.',
      );
    }
  });
  return all;
}

function rawBody(body: unknown): string | Uint8Array {
  if (typeof body === 'string' || body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  // Other typed arrays and DataViews are bytes too; view them rather than refuse them.
  if (ArrayBuffer.isView(body))
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  throw new WebhookVerificationError(
    'invalid_body',
    `The body must be the raw request body (string, Buffer, Uint8Array or ArrayBuffer), but it ` +
      `is ${describe(body)}. Was it already parsed? A parsed and re-serialised JSON body no ` +
      'longer has the signed bytes. ' +
      "In Express, mount express.raw({ type: 'application/json' }) on the webhook route and pass " +
      'req.body (a Buffer); with a web Request, use verifyRequest(request, options).',
  );
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return value === '' ? 'an empty string' : 'a string';
  if (value instanceof Uint8Array) return value.length === 0 ? 'an empty Uint8Array' : 'bytes';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

type HeaderLookup = (name: string, joinValues: boolean) => string | undefined;

function headerReader(headers: HeadersLike): HeaderLookup {
  if (typeof headers !== 'object' || headers === null) {
    throw new TypeError(
      `headers must be a Headers object or a record of header values, not ${describe(headers)}.`,
    );
  }
  // A headers object that throws while being read (a hostile proxy, a broken getter) is a
  // misuse of the options, reported as such rather than as the caller's own error.
  const unreadable = (name: string, error: unknown) =>
    new TypeError(`headers could not be read (looking up ${name}).`, { cause: error });
  let read: HeaderLookup;
  try {
    read = rawHeaderReader(headers);
  } catch (error) {
    throw unreadable('get', error);
  }
  return (name, joinValues) => {
    try {
      return read(name, joinValues);
    } catch (error) {
      throw unreadable(name, error);
    }
  };
}

function rawHeaderReader(headers: object): HeaderLookup {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    // Web Headers (any implementation) look names up case-insensitively and already join
    // repeated headers, with ", " (handled by the signature parser).
    const web = headers as Headers;
    return (name) => web.get(name)?.trim() ?? undefined;
  }
  const record = headers as Readonly<Record<string, unknown>>;
  let lowerCased: Map<string, unknown> | undefined;
  return (name, joinValues) => {
    let value = Object.hasOwn(record, name) ? record[name] : undefined;
    if (value === undefined) {
      // Node lower-cases names itself; hand-built records may not.
      lowerCased ??= lowerCaseKeys(record);
      value = lowerCased.get(name);
    }
    if (typeof value === 'string') return value.trim();
    if (typeof value === 'number') return String(value);
    if (Array.isArray(value)) {
      const strings = value.filter((item): item is string => typeof item === 'string');
      if (strings.length === 0) return undefined;
      return joinValues ? strings.join(' ').trim() : strings[0]!.trim();
    }
    return undefined;
  };
}

function lowerCaseKeys(record: Readonly<Record<string, unknown>>): Map<string, unknown> {
  const map = new Map<string, unknown>();
  for (const [key, value] of Object.entries(record)) {
    const lower = key.toLowerCase();
    if (!map.has(lower) && value !== undefined) map.set(lower, value);
  }
  return map;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** The `v1` signatures of a `webhook-signature` header; other versions are skipped. */
function standardSignatures(header: string): string[] {
  const found: string[] = [];
  for (const token of header.split(/\s+/)) {
    // A receiver that joined repeated headers with ", " leaves a trailing comma on each entry.
    const entry = token.endsWith(',') ? token.slice(0, -1) : token;
    const comma = entry.indexOf(',');
    if (comma <= 0 || entry.slice(0, comma) !== STANDARD_SIGNATURE_VERSION) continue;
    const value = entry.slice(comma + 1);
    if (value !== '') found.push(value);
  }
  return found;
}

function parseUnixSeconds(value: string, pattern: RegExp, headerName: string): number {
  const timestampMs = pattern.test(value) ? Number(value) * 1000 : Number.NaN;
  if (!Number.isSafeInteger(timestampMs) || Math.abs(timestampMs) > MAX_TIMESTAMP_MS) {
    const shown = value.length > 32 ? `${value.slice(0, 32)}…` : value;
    throw new WebhookVerificationError(
      'invalid_timestamp',
      `The ${headerName} value ${JSON.stringify(shown)} is not a Unix timestamp in whole seconds.`,
    );
  }
  return timestampMs;
}

function currentTime(now: (() => number) | undefined): number {
  const value = now === undefined ? Date.now() : now();
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new TypeError('`now` must return the current time as finite epoch milliseconds.');
  }
  return value;
}

function checkMaxAge(maxAgeMs: unknown): void {
  if (typeof maxAgeMs !== 'number' || Number.isNaN(maxAgeMs) || maxAgeMs < 0) {
    throw new RangeError(
      '`maxAgeMs` must be a number of milliseconds >= 0 (0 disables the age check).',
    );
  }
}

/** Applies the future and age limits; returns the age in milliseconds. */
function checkFreshness(
  timestampMs: number,
  nowMs: number,
  maxAgeMs: number,
  allowFuture: boolean,
): number {
  const ageMs = nowMs - timestampMs;
  if (!allowFuture && ageMs < -FUTURE_TOLERANCE_MS) {
    throw new WebhookVerificationError(
      'timestamp_in_future',
      `The webhook timestamp is ${seconds(-ageMs)} s in the future, more than the ` +
        `${FUTURE_TOLERANCE_MS / 1000} s allowed for clock skew. Synchronise the clocks of sender ` +
        'and receiver (NTP), or pass allowFuture: true.',
    );
  }
  checkMaxAge(maxAgeMs);
  if (maxAgeMs > 0 && ageMs > maxAgeMs) {
    throw new WebhookVerificationError(
      'timestamp_too_old',
      `The webhook timestamp is ${seconds(ageMs)} s old, over the ${maxAgeMs / 1000} s limit ` +
        '(maxAgeMs). Old requests are refused to stop replays; if the clocks of sender and ' +
        'receiver disagree, synchronise them (NTP) or raise maxAgeMs.',
    );
  }
  return ageMs;
}

function seconds(ms: number): number {
  return Math.round(ms / 1000);
}

function parseAttempt(value: string | undefined): number | undefined {
  return value !== undefined && /^\d{1,9}$/.test(value) ? Number(value) : undefined;
}

function mismatch(headerName: string, secretCount: number): WebhookVerificationError {
  const tried = secretCount === 1 ? 'the configured secret' : `any of the ${secretCount} secrets`;
  return new WebhookVerificationError(
    'invalid_signature',
    `The ${headerName} signature does not match this body and timestamp for ${tried}. Usual ` +
      'causes: the body was parsed and re-serialised instead of passed raw, the receiver has a ' +
      'different secret than the subscription, or a proxy rewrote the body.',
  );
}

function noSecret(): WebhookVerificationError {
  return new WebhookVerificationError(
    'missing_secret',
    'No webhook secret was given. Pass the subscription signing secret as `secret` (or several ' +
      'as `secrets` while rotating); check that the environment variable holding it is set.',
  );
}

function unknownScheme(scheme: unknown): WebhookVerificationError {
  return new WebhookVerificationError(
    'unknown_scheme',
    `Unknown signature scheme ${JSON.stringify(String(scheme)).slice(0, 40)}; use 'auto', ` +
      "'standard' or 'go-hookd'.",
  );
}
