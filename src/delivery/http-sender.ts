import { isAscii } from 'node:buffer';
import { performance } from 'node:perf_hooks';

import { request, util, type Dispatcher } from 'undici';

import {
  MAX_STORED_RESPONSE_HEADERS,
  MAX_STORED_RESPONSE_HEADER_VALUE_LENGTH,
} from '../constants.js';
import { findEgressError, findEgressRefusalCause } from './guarded-connector.js';
import { captureHeaders, decodeCapped } from './response-capture.js';

/**
 * One webhook POST: timeout on the whole exchange (body included), redirects never followed,
 * response captured within fixed limits. Never throws: a failure is a result, because a failed
 * delivery is data, not an exception.
 */

/** A request to send. */
export interface WebhookRequest {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly timeoutMs: number;
  /** Bytes of response body to keep. */
  readonly bodyLimit: number;
  /** Aborts the request early (the manager stopping). */
  readonly signal?: AbortSignal | undefined;
  /** Like `signal`, without an EventTarget per request: the worker pool's per-attempt handle. */
  readonly abort?: AbortHandle | undefined;
}

/** Why no usable response arrived. */
export type TransportFailure = 'timeout' | 'aborted' | 'egress_refused' | 'connection' | 'protocol';

/** What came back. */
export interface WebhookResponse {
  /** HTTP status (any three-digit code the receiver sent), or 0 without a response. */
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | null;
  readonly durationMs: number;
  /** Subscriber-safe description of a transport failure; `null` when a response arrived. */
  readonly error: string | null;
  readonly failure: TransportFailure | null;
  /** The raw `Retry-After` header, if any. */
  readonly retryAfter: string | null;
}

/**
 * Lets its owner cut a request short — what an AbortController does for `signal`, for the one
 * request at a time that uses it, without an EventTarget and its listener bookkeeping.
 */
export class AbortHandle {
  #aborted = false;
  #listener: (() => void) | null = null;

  get aborted(): boolean {
    return this.#aborted;
  }

  /** Aborts the request under way (and any later one given this handle, at once). */
  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    const listener = this.#listener;
    this.#listener = null;
    listener?.();
  }

  /** @internal The request using the handle registers here (`null` when it finished). */
  listen(listener: (() => void) | null): void {
    this.#listener = listener;
  }
}

/**
 * Sends one webhook through the guarded dispatcher. `targets` remembers parsed URLs across calls
 * (the worker pool passes its own); without it the URL is parsed for this call only.
 */
export function sendWebhook(
  dispatcher: Dispatcher,
  webhook: WebhookRequest,
  targets?: RequestTargets,
): Promise<WebhookResponse> {
  const target = targets ? targets.resolve(webhook.url) : (parseTarget(webhook.url) ?? undefined);
  if (!target) return sendThroughUndiciParsing(dispatcher, webhook);
  return new Promise((resolve) => new Exchange(webhook, resolve).dispatch(dispatcher, target));
}

const TIMEOUT_REASON = 'The operation was aborted due to timeout';

/**
 * One request/response exchange, driven by undici's dispatcher handler interface directly.
 * `undici.request()` would wrap the same exchange in an AsyncResource, an abort-signal
 * listener and a Readable body stream read through an async iterator — machinery that cost more
 * CPU per webhook than the exchange itself. The behaviour is the same: one deadline for the
 * whole exchange, body included; the body kept up to `bodyLimit` (one byte more tells it is
 * longer, then the connection is dropped rather than drained); a body that fails half-way keeps
 * the answer and what arrived of it.
 */
class Exchange {
  readonly #webhook: WebhookRequest;
  readonly #resolve: (response: WebhookResponse) => void;
  readonly #started = performance.now();
  #timer: NodeJS.Timeout | undefined;
  /** undici's abort of this request, once it is connected. */
  #abortRequest: ((reason: Error) => void) | null = null;
  /** An abort that came before undici connected the request. */
  #pendingAbort: Error | null = null;
  #timedOut = false;
  #settled = false;
  #statusCode = 0;
  #headers: Record<string, string | string[]> | null = null;
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(webhook: WebhookRequest, resolve: (response: WebhookResponse) => void) {
    this.#webhook = webhook;
    this.#resolve = resolve;
  }

  dispatch(dispatcher: Dispatcher, target: RequestTarget) {
    const webhook = this.#webhook;
    if (webhook.abort?.aborted || webhook.signal?.aborted) {
      this.#fail(abortError());
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timedOut = true;
      this.#abort(new DOMException(TIMEOUT_REASON, 'TimeoutError'));
    }, webhook.timeoutMs);
    // Like AbortSignal.timeout's timer, this one never keeps the process alive on its own.
    this.#timer.unref();
    webhook.abort?.listen(this.#onExternalAbort);
    webhook.signal?.addEventListener('abort', this.#onExternalAbort, { once: true });
    dispatcher.dispatch(
      {
        origin: target.origin,
        path: target.path,
        method: 'POST',
        headers: webhook.headers,
        body: webhook.body,
        headersTimeout: webhook.timeoutMs,
        bodyTimeout: webhook.timeoutMs,
      },
      this,
    );
  }

  readonly #onExternalAbort = () => this.#abort(abortError());

  #abort(reason: Error): void {
    if (this.#settled) return;
    if (this.#abortRequest) this.#abortRequest(reason);
    else this.#pendingAbort ??= reason;
  }

  // ── undici's DispatchHandler (legacy form: called directly, without an adapter) ──

  onConnect(abort: (reason?: Error) => void): void {
    if (this.#pendingAbort) abort(this.#pendingAbort);
    else this.#abortRequest = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    // 1xx answers are informational; the real one follows.
    if (statusCode < 200) return true;
    this.#statusCode = statusCode;
    this.#headers = util.parseHeaders(rawHeaders);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#settled) return false;
    this.#chunks.push(chunk);
    this.#size += chunk.byteLength;
    if (this.#size > this.#webhook.bodyLimit) {
      // Enough to tell the body is longer than what is kept: answer now, drop the rest.
      this.#answer();
      this.#abortRequest?.(new Error('response body longer than kept'));
      return false;
    }
    return true;
  }

  onComplete(): void {
    this.#answer();
  }

  onError(error: Error): void {
    // The status line and headers are the receiver's answer; the body is informational, so a
    // body that fails or times out half-way does not change what the attempt means.
    if (this.#headers) this.#answer();
    else this.#fail(error);
  }

  onUpgrade(): void {
    this.#fail(new Error('unexpected protocol upgrade'));
  }

  // ── Outcomes ──

  #finish(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    clearTimeout(this.#timer);
    this.#webhook.abort?.listen(null);
    this.#webhook.signal?.removeEventListener('abort', this.#onExternalAbort);
    return true;
  }

  #answer(): void {
    if (!this.#finish()) return;
    const headers = this.#headers ?? {};
    const chunks = this.#chunks;
    const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#size);
    const retryAfter = headers['retry-after'];
    this.#resolve({
      statusCode: this.#statusCode,
      headers: captureResponseHeaders(headers),
      body: decodeBody(bytes, this.#webhook.bodyLimit),
      durationMs: Math.round(performance.now() - this.#started),
      error: null,
      failure: null,
      retryAfter: (Array.isArray(retryAfter) ? retryAfter[0] : retryAfter) ?? null,
    });
  }

  #fail(error: unknown): void {
    if (!this.#finish()) return;
    const external =
      this.#webhook.abort?.aborted === true || this.#webhook.signal?.aborted === true;
    this.#resolve(failed(error, this.#timedOut, external, this.#webhook, this.#started));
  }
}

function abortError(): Error {
  return new DOMException('This operation was aborted', 'AbortError');
}

function failed(
  error: unknown,
  timedOut: boolean,
  aborted: boolean,
  webhook: WebhookRequest,
  started: number,
): WebhookResponse {
  const failure = classifyFailure(error, timedOut, aborted);
  return {
    statusCode: 0,
    headers: {},
    body: null,
    durationMs: Math.round(performance.now() - started),
    error: describeFailure(failure, error, webhook.timeoutMs),
    failure: failure.kind,
    retryAfter: null,
  };
}

/**
 * A URL undici's own parsing should judge (unparseable, or not http/https): it fails the same
 * way, with the same error, as it always did.
 */
async function sendThroughUndiciParsing(
  dispatcher: Dispatcher,
  webhook: WebhookRequest,
): Promise<WebhookResponse> {
  const started = performance.now();
  try {
    const response = await request(webhook.url, {
      dispatcher,
      method: 'POST',
      headers: webhook.headers,
      body: webhook.body,
      headersTimeout: webhook.timeoutMs,
      bodyTimeout: webhook.timeoutMs,
    });
    // Not reached for the URLs sent here; kept total for safety.
    await response.body.dump();
    return failed(new Error('unexpected URL'), false, false, webhook, started);
  } catch (error) {
    return failed(error, false, false, webhook, started);
  }
}

// ── Hot-path helpers (each delivery runs them once; each equals the general code it skips) ──

/** Where undici sends a request: the URL's origin and its path with the query. */
export interface RequestTarget {
  readonly origin: string;
  readonly path: string;
}

/**
 * The origin and path undici's top-level `request(url)` would derive, remembered per URL so a
 * busy endpoint's URL is not parsed again for every delivery. One instance per manager (no
 * module-level cache); bounded, so arbitrary URLs cannot grow it without limit.
 */
export class RequestTargets {
  static readonly #MAX_ENTRIES = 1_000;
  readonly #known = new Map<string, RequestTarget | null>();

  /** The target of an http(s) URL; `undefined` when undici's own parsing should judge it. */
  resolve(url: string): RequestTarget | undefined {
    let target = this.#known.get(url);
    if (target === undefined) {
      target = parseTarget(url);
      if (this.#known.size >= RequestTargets.#MAX_ENTRIES) this.#known.clear();
      this.#known.set(url, target);
    }
    return target ?? undefined;
  }

  /** The origin of a URL (`scheme://host:port`), or the URL itself if it is not http(s). */
  origin(url: string): string {
    return this.resolve(url)?.origin ?? url;
  }
}

function parseTarget(url: string): RequestTarget | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return null;
  return {
    origin: parsed.origin,
    path: parsed.search ? `${parsed.pathname}${parsed.search}` : parsed.pathname,
  };
}

/** `decodeCapped(bytes, limit).text`; plain ASCII without NUL within the limit is its own text. */
function decodeBody(bytes: Buffer, limit: number): string {
  if (bytes.byteLength <= limit && isAscii(bytes) && !bytes.includes(0)) {
    return bytes.toString('latin1');
  }
  return decodeCapped(bytes, limit).text;
}

/** ASCII without NUL: text whose capture is the text itself. */
function isPlainText(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0 || code > 0x7f) return false;
  }
  return true;
}

/**
 * `captureHeaders(headers)`: at most 32 headers, names sorted, values decoded and capped. When
 * every name and value is plain ASCII without NUL, every value a single string within the cap
 * (a receiver's usual answer), that is the headers as they are, sorted; anything else goes
 * through `captureHeaders` itself.
 */
function captureResponseHeaders(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string> {
  const names = Object.keys(headers);
  if (names.length > MAX_STORED_RESPONSE_HEADERS) return captureHeaders(headers);
  sortNames(names);
  const captured: Record<string, string> = {};
  for (const name of names) {
    const value = headers[name];
    if (
      typeof value !== 'string' ||
      value.length > MAX_STORED_RESPONSE_HEADER_VALUE_LENGTH ||
      !isPlainText(value) ||
      !isPlainText(name)
    ) {
      return captureHeaders(headers);
    }
    captured[name] = value;
  }
  return captured;
}

/**
 * `names.sort()` for the few names of a response: Array.prototype.sort allocates its merge state
 * (over a kilobyte) on every call, which an insertion sort of at most 32 names does not need.
 * Same order (UTF-16 code units).
 */
function sortNames(names: string[]): void {
  for (let i = 1; i < names.length; i++) {
    const name = names[i]!;
    let j = i - 1;
    while (j >= 0 && names[j]! > name) {
      names[j + 1] = names[j]!;
      j--;
    }
    names[j + 1] = name;
  }
}

interface ClassifiedFailure {
  readonly kind: TransportFailure;
  readonly code: string | undefined;
}

function classifyFailure(error: unknown, timedOut: boolean, aborted: boolean): ClassifiedFailure {
  const code = errorCode(error);
  // The guard reports both refusals (policy) and failures to reach an allowed address with one
  // error code; only a refusal is an egress decision, the rest is an ordinary connection failure.
  if (findEgressRefusalCause(error) !== undefined) return { kind: 'egress_refused', code };
  if (timedOut || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return { kind: 'timeout', code };
  }
  if (aborted) return { kind: 'aborted', code };
  // llhttp parse errors arrive as HTTPParserError, sometimes without an `HPE_` code.
  if (
    code?.startsWith('HPE_') ||
    code === 'UND_ERR_HEADERS_OVERFLOW' ||
    code === 'UND_ERR_INFO' ||
    errorName(error) === 'HTTPParserError'
  ) {
    return { kind: 'protocol', code };
  }
  return { kind: 'connection', code };
}

// Raw socket errors name internal addresses ("connect ECONNREFUSED 10.0.0.7:443"); attempt rows
// are readable by subscribers, so only fixed texts are stored.
function describeFailure(failure: ClassifiedFailure, error: unknown, timeoutMs: number): string {
  switch (failure.kind) {
    case 'egress_refused':
      return findEgressError(error)!.message;
    case 'timeout':
      return `request timed out after ${timeoutMs} ms`;
    case 'aborted':
      return 'request aborted: the sender is shutting down';
    case 'protocol':
      return failure.code === 'UND_ERR_HEADERS_OVERFLOW'
        ? 'response headers too large'
        : 'invalid HTTP response';
    case 'connection': {
      // The guard reports why an allowed address could not be reached; use the same plain texts
      // as for any other connection failure, so "unreachable" stays reserved for refusals.
      const guardedFailure = findEgressError(error)?.details?.['failure'];
      if (typeof guardedFailure === 'string')
        return GUARDED_FAILURE_TEXT[guardedFailure] ?? 'connection failed';
      switch (failure.code) {
        case 'ECONNREFUSED':
          return 'connection refused';
        case 'ECONNRESET':
        case 'UND_ERR_SOCKET':
        case 'EPIPE':
          return 'connection closed by the receiver';
        case 'UND_ERR_CONNECT_TIMEOUT':
        case 'ETIMEDOUT':
          return 'connect timed out';
        case 'ENOTFOUND':
        case 'EAI_AGAIN':
          return 'DNS lookup failed';
        case undefined:
          return 'request failed';
        default:
          return `request failed (${failure.code})`;
      }
    }
  }
}

const GUARDED_FAILURE_TEXT: Readonly<Record<string, string>> = {
  connection_refused: 'connection refused',
  timed_out: 'connect timed out',
  connection_reset: 'connection closed by the receiver',
  unreachable: 'network unreachable',
  tls_failed: 'TLS handshake failed',
  connection_failed: 'connection failed',
};

function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
