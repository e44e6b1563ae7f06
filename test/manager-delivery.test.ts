import { describe, expect, it } from 'vitest';

import { MockRepository, USER_AGENT, isHookdError, type Delivery } from '../src/index.js';
import { quick, verifyWebhook } from '../verify/index.js';
import { ok, status, unreachableUrl } from './helpers/receiver.js';
import { startManager } from './helpers/manager.js';
import { useHarness, waitForFinal } from './helpers/harness.js';
import { waitFor } from './helpers/wait.js';
import { subscriptionRecord } from '../src/records.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const { receiver } = useHarness();

describe('delivering a webhook', () => {
  it('POSTs the exact body with every go-hookd and Standard Webhooks header, and records the attempt', async () => {
    const target = await receiver();
    const { manager, repository } = await startManager();
    const subscription = await manager.createSubscription({
      tenantId: 'acme',
      url: target.url('/hooks'),
      secret: SECRET,
      eventTypes: ['order.*'],
    });
    const payload = { id: 42, name: 'widget', nested: { b: 1, a: [1, 2] }, note: '<&> ü' };
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'order.created',
      payload,
    });

    const [request] = await target.waitForRequests(1);
    const done = await waitForFinal(repository, queued.id);
    expect(done.status).toBe('success');
    expect(done.completedAt).toBeInstanceOf(Date);
    expect(done.attemptCount).toBe(1);

    expect(request!.method).toBe('POST');
    expect(request!.path).toBe('/hooks');
    expect(request!.body.toString('utf8')).toBe(JSON.stringify(payload));
    const headers = request!.headers;
    expect(headers['content-type']).toBe('application/json');
    expect(headers['user-agent']).toBe(USER_AGENT);
    expect(headers['x-webhook-delivery-id']).toBe(queued.id);
    expect(headers['x-webhook-subscription-id']).toBe(subscription.id);
    expect(headers['x-webhook-event-type']).toBe('order.created');
    expect(headers['x-webhook-attempt']).toBe('1');
    expect(headers['x-webhook-idempotency-key']).toBeUndefined();
    expect(headers['webhook-id']).toBe(queued.id);
    expect(headers['webhook-timestamp']).toBe(headers['x-webhook-timestamp']);
    expect(Math.abs(Number(headers['x-webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(30);
    expect(
      quick(
        SECRET,
        String(headers['x-webhook-timestamp']),
        request!.body,
        String(headers['x-webhook-signature']),
      ),
    ).toBe(true);
    for (const scheme of ['standard', 'go-hookd'] as const) {
      expect(verifyWebhook({ secret: SECRET, headers, body: request!.body, scheme }).scheme).toBe(
        scheme,
      );
    }

    const [attempt] = await manager.getDeliveryAttempts(queued.id);
    expect(attempt).toMatchObject({
      deliveryId: queued.id,
      attemptNumber: 1,
      statusCode: 200,
      responseBody: 'ok',
      error: null,
    });
    expect(attempt!.responseHeaders['content-type']).toBe('text/plain');
    expect(attempt!.durationMs).toBeGreaterThanOrEqual(0);
    expect(attempt!.id).toMatch(/^att_[A-Za-z0-9_-]{21}$/);
    expect((await manager.getDelivery(queued.id)).payload).toEqual(payload);
  });

  it("signs and records on the database's clock when this host's clock is minutes off", async () => {
    const target = await receiver();
    const skewMs = 5 * 60_000;
    // The repository's clock is the database's: here 5 minutes ahead of this process's.
    const repository = new MockRepository({ now: () => Date.now() + skewMs });
    const warnings: Array<{ fields: object; message: string }> = [];
    const quiet = () => undefined;
    const { manager } = await startManager({}, repository, {
      logger: {
        debug: quiet,
        info: quiet,
        warn: (fields: object | string, message?: string) => {
          if (typeof fields === 'object') warnings.push({ fields, message: message ?? '' });
        },
        error: quiet,
      },
    });
    const subscription = await manager.createSubscription({
      tenantId: 'acme',
      url: target.url('/hooks'),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'clock.skewed',
      payload: {},
    });
    const [request] = await target.waitForRequests(1);
    const databaseSeconds = (Date.now() + skewMs) / 1000;
    expect(Math.abs(Number(request!.headers['webhook-timestamp']) - databaseSeconds)).toBeLessThan(
      2,
    );
    await waitForFinal(repository, queued.id);
    const [attempt] = await manager.getDeliveryAttempts(queued.id);
    expect(Math.abs(attempt!.attemptedAt.getTime() - (Date.now() + skewMs))).toBeLessThan(2_000);
    // A test ping, sent outside the worker pool, follows the same clock.
    expect((await manager.testSubscription(subscription.id)).success).toBe(true);
    const ping = target.requests.at(-1)!;
    expect(Math.abs(Number(ping.headers['webhook-timestamp']) - databaseSeconds)).toBeLessThan(2);
    expect(warnings).toContainEqual({
      fields: { clockOffsetMs: expect.closeTo(skewMs, -3) as number },
      message: expect.stringContaining('300 s behind') as string,
    });
  });

  it.each([400, 404, 410, 422])('dead-letters a %i answer after one attempt', async (code) => {
    const target = await receiver(status(code));
    const { manager, repository } = await startManager({ defaultMaxRetries: 5 });
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'x.y',
      payload: {},
    });
    const done = await waitForFinal(repository, queued.id);
    expect(done.status).toBe('dead_letter');
    expect(done.attemptCount).toBe(1);
    expect(target.requests).toHaveLength(1);
    const attempts = await manager.getDeliveryAttempts(queued.id);
    expect(attempts.map((a) => a.statusCode)).toEqual([code]);
    expect(attempts[0]!.error).toBeNull();
  });

  it('retries a 500 and succeeds on the next attempt, with increasing attempt numbers', async () => {
    let calls = 0;
    const target = await receiver((_request, response) => {
      calls += 1;
      response.writeHead(calls === 1 ? 500 : 200).end();
    });
    const { manager, repository } = await startManager();
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'x.y',
      payload: { n: 1 },
    });
    const done = await waitForFinal(repository, queued.id);
    expect(done.status).toBe('success');
    expect(done.attemptCount).toBe(2);
    expect(target.requests.map((r) => r.headers['x-webhook-attempt'])).toEqual(['1', '2']);
    expect(
      (await manager.getDeliveryAttempts(queued.id)).map((a) => [a.attemptNumber, a.statusCode]),
    ).toEqual([
      [1, 500],
      [2, 200],
    ]);
    // The delivery id stays the same across attempts, so receivers can deduplicate on it.
    expect(new Set(target.requests.map((r) => r.headers['webhook-id']))).toEqual(
      new Set([queued.id]),
    );
  });

  it('retries each delivery when its own backoff ends, not at the next poll', async () => {
    const target = await receiver((request, response) => {
      response.writeHead(request.headers['x-webhook-attempt'] === '1' ? 500 : 200).end();
    });
    // Polling alone would find the retries only after 10 s.
    const { manager, repository } = await startManager({
      queuePollInterval: 10_000,
      queueIdleMaxInterval: 10_000,
    });
    const queued: Delivery[] = [];
    for (const [path, initialBackoffMs] of [
      ['/short', 100],
      ['/long', 400],
    ] as const) {
      const subscription = await manager.createSubscription({
        tenantId: 't',
        url: target.url(path),
        secret: SECRET,
        eventTypes: ['*'],
        retryPolicy: { initialBackoffMs, maxBackoffMs: 1_000 },
      });
      queued.push(
        await manager.queueDelivery({
          subscriptionId: subscription.id,
          eventType: 'x.y',
          payload: {},
        }),
      );
    }
    for (const delivery of queued)
      expect((await waitForFinal(repository, delivery.id)).status).toBe('success');
    for (const [path, backoff] of [
      ['/short', 100],
      ['/long', 400],
    ] as const) {
      const [first, second] = target.requestsTo(path);
      const gap = second!.receivedAt - first!.receivedAt;
      expect(gap).toBeGreaterThanOrEqual(backoff - 10);
      expect(gap).toBeLessThan(backoff + 500);
    }
  });

  it('honours Retry-After on 429, never beyond the policy maximum', async () => {
    const target = await receiver((request, response) => {
      const attempt = request.headers['x-webhook-attempt'];
      if (attempt === '1') response.writeHead(429, { 'retry-after': '1' }).end();
      else response.writeHead(200).end();
    });
    const { manager, repository } = await startManager({
      defaultInitialBackoffMs: 10,
      defaultMaxBackoffMs: 5_000,
    });
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'x.y',
      payload: {},
    });
    await waitForFinal(repository, queued.id);
    const [first, second] = target.requests;
    expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(950);

    const capped = await receiver((request, response) => {
      if (request.headers['x-webhook-attempt'] === '1')
        response.writeHead(503, { 'retry-after': '3600' }).end();
      else response.writeHead(200).end();
    });
    const fast = await manager.createSubscription({
      tenantId: 't',
      url: capped.url(),
      secret: SECRET,
      eventTypes: ['*'],
      retryPolicy: { initialBackoffMs: 10, maxBackoffMs: 300 },
    });
    const second429 = await manager.queueDelivery({
      subscriptionId: fast.id,
      eventType: 'x.y',
      payload: {},
    });
    expect((await waitForFinal(repository, second429.id)).status).toBe('success');
    const gap = capped.requests[1]!.receivedAt - capped.requests[0]!.receivedAt;
    expect(gap).toBeGreaterThanOrEqual(250);
    expect(gap).toBeLessThan(3_000);
  });

  it('times out a receiver that never answers and dead-letters after the last attempt', async () => {
    const target = await receiver(() => new Promise<void>(() => undefined));
    const { manager, repository } = await startManager({
      deliveryTimeoutMs: 1_000,
      defaultMaxRetries: 2,
    });
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'x.y',
      payload: {},
    });
    const done = await waitForFinal(repository, queued.id);
    expect(done.status).toBe('dead_letter');
    const attempts = await manager.getDeliveryAttempts(queued.id);
    expect(attempts.map((a) => [a.statusCode, a.error])).toEqual([
      [0, 'request timed out after 1000 ms'],
      [0, 'request timed out after 1000 ms'],
    ]);
    expect(attempts[0]!.durationMs).toBeGreaterThanOrEqual(990);
  });

  it('never follows a redirect: the 3xx is the answer, and it is retried', async () => {
    const elsewhere = await receiver();
    const target = await receiver(status(302, { location: elsewhere.url('/stolen') }));
    const { manager, repository } = await startManager({ defaultMaxRetries: 2 });
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'x.y',
      payload: {},
    });
    const done = await waitForFinal(repository, queued.id);
    expect(done.status).toBe('dead_letter');
    expect(target.requests).toHaveLength(2);
    expect(elsewhere.requests).toHaveLength(0);
    expect((await manager.getDeliveryAttempts(queued.id))[0]!.responseHeaders['location']).toBe(
      elsewhere.url('/stolen'),
    );
  });

  it('retries when the receiver is down, recording an error without internal addresses', async () => {
    const url = await unreachableUrl('/down');
    const { manager, repository } = await startManager({ defaultMaxRetries: 3 });
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url,
      secret: SECRET,
      eventTypes: ['*'],
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'x.y',
      payload: {},
    });
    const done = await waitForFinal(repository, queued.id);
    expect(done.status).toBe('dead_letter');
    const attempts = await manager.getDeliveryAttempts(queued.id);
    expect(attempts).toHaveLength(3);
    for (const attempt of attempts) {
      expect(attempt.statusCode).toBe(0);
      expect(attempt.error).toMatch(/connection refused/);
      expect(attempt.error).not.toMatch(/127\.0\.0\.1|:\d{2,5}/);
    }
  });

  it('delivers a large payload byte for byte and refuses a missing one', async () => {
    const target = await receiver();
    const { manager, repository } = await startManager();
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const payload = { blob: 'ü'.repeat(400_000), list: Array.from({ length: 1000 }, (_, i) => i) };
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'x.y',
      payload,
    });
    await waitForFinal(repository, queued.id);
    expect(target.requests[0]!.body.equals(Buffer.from(JSON.stringify(payload)))).toBe(true);

    const missing = manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'x.y',
    } as never);
    await expect(missing).rejects.toMatchObject({
      code: 'HOOKD_ERR_INVALID_ARGUMENT',
      field: 'payload',
    });
    const tooBig = manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'x.y',
      payload: { s: 'x'.repeat(1_048_577) },
    });
    await expect(tooBig).rejects.toMatchObject({ field: 'payload' });
    expect((await repository.getMaintenanceStats()).totalDeliveries).toBe(1);
  });

  it('sends custom headers but never lets them replace node-hookd headers', async () => {
    const target = await receiver();
    const repository = new MockRepository();
    const { manager } = await startManager({}, repository);
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
      headers: {
        Authorization: 'Bearer abc',
        'X-Custom': 'yes',
        'Content-Type': 'application/vnd.acme+json',
      },
    });
    await expect(
      manager.updateSubscription(subscription.id, {
        headers: { 'X-Webhook-Idempotency-Key': 'forged' },
      }),
    ).rejects.toMatchObject({
      code: 'HOOKD_ERR_INVALID_ARGUMENT',
      field: 'headers.X-Webhook-Idempotency-Key',
    });
    // A row written around the validation (an older version, a hand edit) is still defused at send time.
    const tampered = await repository.getSubscription(subscription.id);
    await repository.updateSubscription(
      subscriptionRecord({
        ...tampered,
        secret: tampered.secret,
        headers: {
          ...tampered.headers,
          'x-webhook-idempotency-key': 'forged',
          'Webhook-Signature': 'v1,forged',
        },
      }),
    );
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'x.y',
      payload: {},
    });
    const [request] = await target.waitForRequests(1);
    await waitForFinal(repository, queued.id);
    expect(request!.headers['authorization']).toBe('Bearer abc');
    expect(request!.headers['x-custom']).toBe('yes');
    expect(request!.headers['content-type']).toBe('application/vnd.acme+json');
    expect(request!.headers['x-webhook-idempotency-key']).toBeUndefined();
    expect(
      verifyWebhook({ secret: SECRET, headers: request!.headers, body: request!.body }).id,
    ).toBe(queued.id);
  });

  it('checks event types and metadata filters at queue time and stores nothing on a mismatch', async () => {
    const target = await receiver();
    const { manager, repository } = await startManager();
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['order.*', 'invoice.paid'],
      filters: { region: 'eu', priority: '1' },
    });
    const matching = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'order.item.added',
      payload: {},
      metadata: { region: 'eu', priority: 1, extra: true },
    });
    await waitForFinal(repository, matching.id);
    await expect(
      manager.queueDelivery({
        subscriptionId: subscription.id,
        eventType: 'orders.x',
        payload: {},
        metadata: { region: 'eu', priority: 1 },
      }),
    ).rejects.toMatchObject({ code: 'HOOKD_ERR_EVENT_TYPE_MISMATCH', field: 'eventType' });
    await expect(
      manager.queueDelivery({
        subscriptionId: subscription.id,
        eventType: 'invoice.paid',
        payload: {},
        metadata: { region: 'us', priority: 1 },
      }),
    ).rejects.toMatchObject({
      code: 'HOOKD_ERR_METADATA_FILTER_MISMATCH',
      message: expect.stringMatching(/filter criteria/),
    });
    await expect(
      manager.queueDelivery({
        subscriptionId: subscription.id,
        eventType: 'invoice.paid',
        payload: {},
        metadata: { region: 'eu' },
      }),
    ).rejects.toMatchObject({ code: 'HOOKD_ERR_METADATA_FILTER_MISMATCH' });
    expect((await repository.getMaintenanceStats()).totalDeliveries).toBe(1);
    expect(target.requests).toHaveLength(1);
  });

  it('delivers many deliveries to several tenants sharing one endpoint', async () => {
    const target = await receiver();
    const { manager } = await startManager({ workerCount: 8 });
    const subscriptions = await Promise.all(
      ['a', 'b', 'c'].map((tenantId) =>
        manager.createSubscription({
          tenantId,
          url: target.url(),
          secret: SECRET,
          eventTypes: ['*'],
        }),
      ),
    );
    const queued = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        manager.queueDelivery({
          subscriptionId: subscriptions[i % 3]!.id,
          eventType: 'x.y',
          payload: { i },
        }),
      ),
    );
    await target.waitForRequests(60);
    const ids = target.requests.map((r) => r.headers['x-webhook-delivery-id']);
    expect(new Set(ids).size).toBe(60);
    expect(new Set(ids)).toEqual(new Set(queued.map((d) => d.id)));
  });

  it('holds deliveries of a paused subscription and sends them as soon as it resumes', async () => {
    const target = await receiver();
    const { manager, repository } = await startManager();
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    // Queued while active but not yet claimed: stop the pool from claiming by pausing first.
    await manager.stop();
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'x.y',
      payload: {},
    });
    await manager.pauseSubscription(subscription.id);
    await expect(
      manager.queueDelivery({ subscriptionId: subscription.id, eventType: 'x.y', payload: {} }),
    ).rejects.toMatchObject({
      code: 'HOOKD_ERR_SUBSCRIPTION_NOT_ACTIVE',
    });
    await manager.start();
    // The worker claims it, sees the pause, and parks it without an attempt.
    await waitFor(async () => (await repository.getDelivery(queued.id)).nextRetryAt !== null);
    const parked = await repository.getDelivery(queued.id);
    expect(parked).toMatchObject({ status: 'pending', attemptCount: 0 });
    expect(target.requests).toHaveLength(0);
    const resumedAt = Date.now();
    await manager.resumeSubscription(subscription.id);
    await target.waitForRequests(1);
    expect(Date.now() - resumedAt).toBeLessThan(2_000);
    expect((await waitForFinal(repository, queued.id)).status).toBe('success');
  });

  it('queues before start and delivers once started', async () => {
    const target = await receiver(ok);
    const { manager, repository } = await startManager();
    await manager.stop();
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'x.y',
      payload: {},
    });
    const inline = await manager.queueInlineDelivery({
      url: target.url('/inline'),
      tenantId: 't',
      eventType: 'x.y',
      payload: {},
    });
    expect((await repository.getDelivery(queued.id)).status).toBe('pending');
    await manager.start();
    await waitForFinal(repository, queued.id);
    expect((await waitForFinal(repository, inline.id)).status).toBe('success');
  });

  it('reports a duplicate idempotency key as a conflict naming the original delivery', async () => {
    const target = await receiver();
    const { manager, repository } = await startManager();
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const first = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'x.y',
      payload: {},
      idempotencyKey: 'order-42',
    });
    const second = await manager
      .queueDelivery({
        subscriptionId: subscription.id,
        eventType: 'x.y',
        payload: {},
        idempotencyKey: 'order-42',
      })
      .catch((error: unknown) => error);
    expect(isHookdError(second, 'HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY')).toBe(true);
    expect((second as { details: { deliveryId: string } }).details.deliveryId).toBe(first.id);
    await waitForFinal(repository, first.id);
    expect(target.requests).toHaveLength(1);
    expect(target.requests[0]!.headers['x-webhook-idempotency-key']).toBe('order-42');
  });

  it('sends the idempotency key on every attempt', async () => {
    const target = await receiver((request, response) => {
      response.writeHead(request.headers['x-webhook-attempt'] === '3' ? 200 : 503).end();
    });
    const { manager, repository } = await startManager();
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'x.y',
      payload: {},
      idempotencyKey: 'k 1',
    });
    await waitForFinal(repository, queued.id);
    expect(target.requests.map((r) => r.headers['x-webhook-idempotency-key'])).toEqual([
      'k 1',
      'k 1',
      'k 1',
    ]);
  });

  it('lets 16 concurrent callers with one key create exactly one delivery and one request', async () => {
    const target = await receiver();
    const { manager, repository } = await startManager();
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 16 }, () =>
        manager.queueDelivery({
          subscriptionId: subscription.id,
          eventType: 'x.y',
          payload: {},
          idempotencyKey: 'same',
        }),
      ),
    );
    const accepted = outcomes.filter((o) => o.status === 'fulfilled');
    expect(accepted).toHaveLength(1);
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected')
        expect(isHookdError(outcome.reason, 'HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY')).toBe(true);
    }
    await waitForFinal(repository, (accepted[0] as PromiseFulfilledResult<Delivery>).value.id);
    // Another, later delivery arriving proves the worker ran after the duplicates were refused.
    const later = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'x.y',
      payload: { later: true },
    });
    await waitForFinal(repository, later.id);
    expect(
      target.requests.filter((r) => r.headers['x-webhook-idempotency-key'] === 'same'),
    ).toHaveLength(1);
    expect((await repository.getMaintenanceStats()).totalDeliveries).toBe(2);
  });

  it('keeps idempotency scopes per subscription and lets an expired key be reused', async () => {
    let now = Date.now();
    const repository = new MockRepository({ now: () => now });
    const target = await receiver();
    const { manager } = await startManager({ idempotencyTtlHours: 1 }, repository);
    const a = await manager.createSubscription({
      tenantId: 't',
      url: target.url('/a'),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const b = await manager.createSubscription({
      tenantId: 't',
      url: target.url('/b'),
      secret: SECRET,
      eventTypes: ['*'],
    });
    await manager.queueDelivery({
      subscriptionId: a.id,
      eventType: 'x.y',
      payload: {},
      idempotencyKey: 'k',
    });
    await manager.queueDelivery({
      subscriptionId: b.id,
      eventType: 'x.y',
      payload: {},
      idempotencyKey: 'k',
    });
    await expect(
      manager.queueDelivery({
        subscriptionId: a.id,
        eventType: 'x.y',
        payload: {},
        idempotencyKey: 'k',
      }),
    ).rejects.toMatchObject({
      code: 'HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY',
    });
    now += 3_600_001;
    await expect(
      manager.queueDelivery({
        subscriptionId: a.id,
        eventType: 'x.y',
        payload: {},
        idempotencyKey: 'k',
      }),
    ).resolves.toMatchObject({
      idempotencyKey: 'k',
    });
  });

  it('stores nothing and strands no key when the delivery cannot be stored', async () => {
    const repository = new MockRepository();
    const target = await receiver();
    const { manager } = await startManager({}, repository);
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    repository.failNext('createDelivery');
    await expect(
      manager.queueDelivery({
        subscriptionId: subscription.id,
        eventType: 'x.y',
        payload: {},
        idempotencyKey: 'retry-me',
      }),
    ).rejects.toMatchObject({ code: 'HOOKD_ERR_DATABASE' });
    const retried = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'x.y',
      payload: {},
      idempotencyKey: 'retry-me',
    });
    expect(retried.idempotencyKey).toBe('retry-me');
  });
});

describe('inline deliveries', () => {
  it('signs with the inline secret, sends an empty subscription id, and retries with the default policy', async () => {
    const target = await receiver((request, response) => {
      response.writeHead(request.headers['x-webhook-attempt'] === '1' ? 500 : 200).end();
    });
    const { manager, repository } = await startManager({
      defaultInitialBackoffMs: 30,
      defaultMaxBackoffMs: 60,
    });
    const queued = await manager.queueInlineDelivery({
      url: target.url('/inline'),
      secret: 'inline-secret',
      tenantId: 'acme',
      eventType: 'user.created',
      payload: { user: 1 },
      maxRetries: 2,
    });
    expect(queued).toMatchObject({
      subscriptionId: null,
      url: target.url('/inline'),
      maxAttempts: 2,
    });
    const done = await waitForFinal(repository, queued.id);
    expect(done.status).toBe('success');
    const [first, second] = target.requests;
    expect(first!.headers['x-webhook-subscription-id']).toBe('');
    expect(
      verifyWebhook({ secret: 'inline-secret', headers: second!.headers, body: second!.body }).id,
    ).toBe(queued.id);
    expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(25);
  });

  it('signs with an empty key when no secret is given', async () => {
    const target = await receiver();
    const { manager, repository } = await startManager();
    const queued = await manager.queueInlineDelivery({
      url: target.url(),
      tenantId: 't',
      eventType: 'x.y',
      payload: { a: 1 },
    });
    await waitForFinal(repository, queued.id);
    const [request] = target.requests;
    expect(
      quick(
        '',
        String(request!.headers['x-webhook-timestamp']),
        request!.body,
        String(request!.headers['x-webhook-signature']),
      ),
    ).toBe(true);
  });

  it('scopes idempotency by tenant and endpoint, ignoring scheme and host case', async () => {
    const target = await receiver();
    const { manager } = await startManager();
    const base = { tenantId: 't', eventType: 'x.y', payload: {}, idempotencyKey: 'k' };
    await manager.queueInlineDelivery({ ...base, url: target.url('/x') });
    await expect(
      manager.queueInlineDelivery({
        ...base,
        url: target.url('/x').replace('http://127.0.0.1', 'HTTP://127.0.0.1'),
      }),
    ).rejects.toMatchObject({ code: 'HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY' });
    await expect(
      manager.queueInlineDelivery({ ...base, tenantId: 'other', url: target.url('/x') }),
    ).resolves.toBeTruthy();
    await expect(
      manager.queueInlineDelivery({ ...base, url: target.url('/y') }),
    ).resolves.toBeTruthy();
  });

  it('uses the configured attempt count when maxRetries is 0 or absent', async () => {
    const target = await receiver(status(500));
    const { manager, repository } = await startManager({ defaultMaxRetries: 2 });
    const queued = await manager.queueInlineDelivery({
      url: target.url(),
      tenantId: 't',
      eventType: 'x.y',
      payload: {},
      maxRetries: 0,
    });
    expect(queued.maxAttempts).toBe(2);
    expect((await waitForFinal(repository, queued.id)).attemptCount).toBe(2);
  });
});
