import { createRequire } from 'node:module';

import { HookdError } from '../errors.js';

/**
 * Optional OpenTelemetry tracing through `@opentelemetry/api` only (never an SDK). The types
 * below are the small structural subset node-hookd uses, so the package's own types do not
 * require `@opentelemetry/api` to be installed; the API itself is loaded only when a tracer is
 * configured.
 *
 * Per attempt: one CLIENT span named `POST` with the HTTP client semantic-convention attributes,
 * a link to the span that was active when the delivery was queued (deliveries run later,
 * possibly in another process, so a parent/child relation would be misleading), and the
 * attempt's W3C `traceparent` sent with the webhook so the receiver's trace connects.
 */

/** The parts of an OpenTelemetry `SpanContext` node-hookd reads. */
export interface SpanContextLike {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;
}

/** The parts of an OpenTelemetry `Span` node-hookd calls. */
export interface SpanLike {
  spanContext(): SpanContextLike;
  setAttribute(key: string, value: string | number | boolean): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  end(): void;
}

/** An OpenTelemetry `Tracer` (from `trace.getTracer('my-app')`). */
export interface TracerLike {
  startSpan(
    name: string,
    options?: {
      kind?: number;
      root?: boolean;
      attributes?: Record<string, string | number | boolean>;
      links?: Array<{ context: SpanContextLike }>;
    },
  ): SpanLike;
}

// Stable numeric values of the OTel API enums (`SpanKind.CLIENT`, `SpanStatusCode.ERROR`).
const SPAN_KIND_CLIENT = 2;
const SPAN_STATUS_ERROR = 2;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

interface ActiveSpanApi {
  trace: { getSpanContext(context: unknown): SpanContextLike | undefined };
  context: { active(): unknown };
}

/** What the rest of node-hookd needs from tracing. */
export interface Tracing {
  /** The W3C `traceparent` of the span active right now (stored with a queued delivery). */
  currentTraceparent(): string | null;
  /** Starts the span of one attempt. */
  startAttempt(attempt: AttemptSpanInput): AttemptSpan;
}

/** What an attempt span is about. */
export interface AttemptSpanInput {
  readonly url: string;
  readonly deliveryId: string;
  readonly subscriptionId: string | null;
  readonly tenantId: string;
  readonly eventType: string;
  readonly attemptNumber: number;
  /** The `traceparent` stored when the delivery was queued. */
  readonly queuedTraceparent: string | null;
}

/** A running attempt span. */
export interface AttemptSpan {
  /** To send as the request's `traceparent` header. */
  readonly traceparent: string;
  /** Ends the span with the attempt's result. */
  end(result: { statusCode: number; failure: string | null; outcome: string }): void;
}

/**
 * Builds the tracing hooks around a tracer, loading `@opentelemetry/api` to read the active
 * span at queue time.
 *
 * @throws HookdError `HOOKD_ERR_INVALID_CONFIG` when `@opentelemetry/api` cannot be loaded.
 */
export function createTracing(tracer: TracerLike): Tracing {
  const api = loadApi();
  return {
    currentTraceparent() {
      const context = api.trace.getSpanContext(api.context.active());
      return context && isValid(context) ? formatTraceparent(context) : null;
    },
    startAttempt(input) {
      const link = parseTraceparent(input.queuedTraceparent);
      const url = new URL(input.url);
      const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
      const attributes: Record<string, string | number | boolean> = {
        'http.request.method': 'POST',
        'server.address': url.hostname,
        'server.port': port,
        'url.full': redactedUrl(url),
        'hookd.delivery.id': input.deliveryId,
        'hookd.tenant.id': input.tenantId,
        'hookd.event_type': input.eventType,
        'hookd.attempt': input.attemptNumber,
      };
      if (input.subscriptionId !== null) attributes['hookd.subscription.id'] = input.subscriptionId;
      if (input.attemptNumber > 1)
        attributes['http.request.resend_count'] = input.attemptNumber - 1;
      const span = tracer.startSpan('POST', {
        kind: SPAN_KIND_CLIENT,
        // Attempts run on the worker, whose async context is whatever woke it (often the
        // producer's request): a root span plus a link says what really happened.
        root: true,
        attributes,
        ...(link ? { links: [{ context: link }] } : {}),
      });
      return {
        traceparent: formatTraceparent(span.spanContext()),
        end(result) {
          if (result.statusCode > 0)
            span.setAttribute('http.response.status_code', result.statusCode);
          span.setAttribute('hookd.outcome', result.outcome);
          const errorType =
            result.failure ?? (result.statusCode >= 400 ? String(result.statusCode) : null);
          if (errorType !== null) {
            span.setAttribute('error.type', errorType);
            span.setStatus({ code: SPAN_STATUS_ERROR });
          }
          span.end();
        },
      };
    },
  };
}

function loadApi(): ActiveSpanApi {
  try {
    return createRequire(import.meta.url)('@opentelemetry/api') as ActiveSpanApi;
  } catch (error) {
    throw new HookdError(
      'HOOKD_ERR_INVALID_CONFIG',
      'the tracer option needs the @opentelemetry/api package installed',
      {
        field: 'tracer',
        cause: error,
      },
    );
  }
}

function isValid(context: SpanContextLike): boolean {
  return (
    /^[0-9a-f]{32}$/.test(context.traceId) &&
    !/^0+$/.test(context.traceId) &&
    /^[0-9a-f]{16}$/.test(context.spanId)
  );
}

/** `00-<trace id>-<span id>-<flags>` (W3C Trace Context, version 00). */
export function formatTraceparent(context: SpanContextLike): string {
  return `00-${context.traceId}-${context.spanId}-${(context.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/** Parses a stored `traceparent`; null when absent or malformed. */
export function parseTraceparent(value: string | null): SpanContextLike | null {
  const match = value === null ? null : TRACEPARENT.exec(value);
  if (!match) return null;
  return { traceId: match[1]!, spanId: match[2]!, traceFlags: Number.parseInt(match[3]!, 16) };
}

/**
 * The URL for `url.full`: never credentials, and no query values — webhook URLs often carry
 * tokens there (the semantic conventions ask for redaction of such values).
 */
export function redactedUrl(url: URL): string {
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  for (const key of [...new Set(copy.searchParams.keys())]) copy.searchParams.set(key, 'REDACTED');
  return copy.href;
}
