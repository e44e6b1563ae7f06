import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { Manager, MockRepository } from '../src/index.js';
import { redactedUrl } from '../src/telemetry/tracing.js';
import { unreachableUrl } from './helpers/receiver.js';
import { useHarness } from './helpers/harness.js';
import { fastConfig, startManager } from './helpers/manager.js';
import { waitFor } from './helpers/wait.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('node-hookd-test');
const { receiver } = useHarness();

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
});
afterAll(() => {
  context.disable();
});
afterEach(() => {
  exporter.reset();
});

describe('OpenTelemetry tracing', () => {
  it('traces each attempt as a CLIENT span linked to the span that queued it, and sends its traceparent', async () => {
    let calls = 0;
    const target = await receiver(
      (_request, response) => void response.writeHead(++calls === 1 ? 500 : 200).end(),
    );
    const { manager, repository } = await startManager({}, new MockRepository(), { tracer });
    const subscription = await manager.createSubscription({
      tenantId: 'acme',
      url: target.url('/hook?token=abc123&x=1'),
      secret: 'tracing-secret',
      eventTypes: ['*'],
    });
    let checkoutSpanId = '';
    let checkoutTraceId = '';
    const queued = await tracer.startActiveSpan('checkout', async (span) => {
      checkoutSpanId = span.spanContext().spanId;
      checkoutTraceId = span.spanContext().traceId;
      try {
        return await manager.queueDelivery({
          subscriptionId: subscription.id,
          eventType: 'order.created',
          payload: { id: 1 },
        });
      } finally {
        span.end();
      }
    });
    await waitFor(async () => (await repository.getDelivery(queued.id)).status === 'success');
    await waitFor(() => exporter.getFinishedSpans().filter((s) => s.name === 'POST').length === 2);

    const attempts = exporter.getFinishedSpans().filter((s) => s.name === 'POST');
    const [first, second] = attempts;
    expect(first!.kind).toBe(2); // SpanKind.CLIENT
    expect(first!.attributes).toMatchObject({
      'http.request.method': 'POST',
      'server.address': '127.0.0.1',
      'server.port': target.port,
      'url.full': `http://127.0.0.1:${target.port}/hook?token=REDACTED&x=REDACTED`,
      'http.response.status_code': 500,
      'error.type': '500',
      'hookd.delivery.id': queued.id,
      'hookd.subscription.id': subscription.id,
      'hookd.tenant.id': 'acme',
      'hookd.event_type': 'order.created',
      'hookd.attempt': 1,
      'hookd.outcome': 'retry',
    });
    expect(first!.status.code).toBe(2); // SpanStatusCode.ERROR
    expect(second!.attributes).toMatchObject({
      'http.response.status_code': 200,
      'http.request.resend_count': 1,
      'hookd.outcome': 'success',
    });
    expect(second!.attributes['error.type']).toBeUndefined();
    expect(second!.status.code).toBe(0);

    for (const span of attempts) {
      // Linked to the producer's span, not a child of it: the delivery runs later, elsewhere.
      expect(span.links.map((link) => link.context.spanId)).toEqual([checkoutSpanId]);
      expect(span.parentSpanContext).toBeUndefined();
    }
    expect(target.requests.map((r) => r.headers['traceparent'])).toEqual(
      attempts.map((span) => `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`),
    );
    expect(attempts[0]!.spanContext().traceId).not.toBe(checkoutTraceId);
    expect(trace.getActiveSpan()).toBeUndefined();
  });

  it('records transport failures as errors and sends no traceparent without a tracer', async () => {
    const target = await receiver();
    const { manager, repository } = await startManager(
      { defaultMaxRetries: 1 },
      new MockRepository(),
      { tracer },
    );
    const url = await unreachableUrl('/gone');
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url,
      secret: 'tracing-secret',
      eventTypes: ['*'],
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'a.b',
      payload: {},
    });
    await waitFor(async () => (await repository.getDelivery(queued.id)).status === 'dead_letter');
    await waitFor(() => exporter.getFinishedSpans().length === 1);
    const [span] = exporter.getFinishedSpans();
    expect(span!.attributes['error.type']).toBe('connection');
    expect(span!.attributes['http.response.status_code']).toBeUndefined();
    expect(span!.links).toEqual([]);

    const untraced = await startManager();
    const plain = await untraced.manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: 'tracing-secret',
      eventTypes: ['*'],
    });
    await untraced.manager.queueDelivery({
      subscriptionId: plain.id,
      eventType: 'a.b',
      payload: {},
    });
    const [request] = await target.waitForRequests(1);
    expect(request!.headers['traceparent']).toBeUndefined();
  });

  it('refuses something that is not a tracer, and redacts URLs for url.full', () => {
    expect(() => new Manager(fastConfig(), new MockRepository(), { tracer: {} as never })).toThrow(
      expect.objectContaining({ code: 'HOOKD_ERR_INVALID_CONFIG', field: 'tracer' }),
    );
    expect(redactedUrl(new URL('https://user:pw@example.com:8443/p?sig=1&sig=2#f'))).toBe(
      'https://example.com:8443/p?sig=REDACTED#f',
    );
  });
});
