import { performance } from 'node:perf_hooks';

import { request, type Dispatcher } from 'undici';

import { findEgressError, findEgressRefusalCause } from './guarded-connector.js';
import { captureHeaders, readCappedBody } from './response-capture.js';

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

/** Sends one webhook through the guarded dispatcher. */
export async function sendWebhook(
  dispatcher: Dispatcher,
  webhook: WebhookRequest,
): Promise<WebhookResponse> {
  // One controller and one plain timer per request. (AbortSignal.timeout + AbortSignal.any cost
  // several times more per request — weak references, a registry, a timer of their own — and
  // showed up as ~5 % of the sender's CPU at a few thousand requests per second.)
  const controller = new AbortController();
  const deadline = { passed: false };
  const timer = setTimeout(() => {
    deadline.passed = true;
    controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
  }, webhook.timeoutMs);
  // Like AbortSignal.timeout's timer, this one never keeps the process alive on its own.
  timer.unref();
  const external = webhook.signal;
  const onExternalAbort = () => controller.abort(external?.reason);
  if (external?.aborted) onExternalAbort();
  else external?.addEventListener('abort', onExternalAbort, { once: true });
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    let response: Dispatcher.ResponseData;
    try {
      response = await request(webhook.url, {
        dispatcher,
        method: 'POST',
        headers: webhook.headers,
        body: webhook.body,
        signal: controller.signal,
        headersTimeout: webhook.timeoutMs,
        bodyTimeout: webhook.timeoutMs,
      });
    } catch (error) {
      const failure = classifyFailure(error, deadline.passed, external);
      return {
        statusCode: 0,
        headers: {},
        body: null,
        durationMs: elapsed(),
        error: describeFailure(failure, error, webhook.timeoutMs),
        failure: failure.kind,
        retryAfter: null,
      };
    }
    // The status line and headers are the receiver's answer; the body is informational, so a
    // body that fails or times out half-way does not change what the attempt means.
    const captured = await readCappedBody(response.body, webhook.bodyLimit);
    const retryAfter = response.headers['retry-after'];
    return {
      statusCode: response.statusCode,
      headers: captureHeaders(response.headers),
      body: captured.text,
      durationMs: elapsed(),
      error: null,
      failure: null,
      retryAfter: (Array.isArray(retryAfter) ? retryAfter[0] : retryAfter) ?? null,
    };
  } finally {
    clearTimeout(timer);
    external?.removeEventListener('abort', onExternalAbort);
  }
}

interface ClassifiedFailure {
  readonly kind: TransportFailure;
  readonly code: string | undefined;
}

function classifyFailure(
  error: unknown,
  timedOut: boolean,
  external: AbortSignal | undefined,
): ClassifiedFailure {
  const code = errorCode(error);
  // The guard reports both refusals (policy) and failures to reach an allowed address with one
  // error code; only a refusal is an egress decision, the rest is an ordinary connection failure.
  if (findEgressRefusalCause(error) !== undefined) return { kind: 'egress_refused', code };
  if (timedOut || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return { kind: 'timeout', code };
  }
  if (external?.aborted) return { kind: 'aborted', code };
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
