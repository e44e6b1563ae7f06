import { describe, expect, it } from 'vitest';

import {
  Manager,
  MockRepository,
  TEST_PING_MESSAGE,
  isHookdError,
  type AuditEvent,
  type Logger,
  type SecretRequest,
  type SecretResolverLike,
} from '../src/index.js';
import { verifyWebhook } from '../verify/index.js';
import { status, unreachableUrl } from './helpers/receiver.js';
import { fastConfig, startManager } from './helpers/manager.js';
import { useHarness } from './helpers/harness.js';
import { recordEvents, waitFor } from './helpers/wait.js';

const SECRET = 'admin-secret-123';
const { receiver } = useHarness();

function idleManager(repository = new MockRepository()): Manager {
  return new Manager(fastConfig(), repository, { allowPrivateDestinations: true });
}

/** An unstarted manager using `secretResolver`, recording the warnings it logs once built. */
function resolverManager(
  secretResolver: SecretResolverLike,
  deliveryTimeoutMs = 2_000,
): { manager: Manager; warnings: Array<Record<string, unknown>> } {
  const warnings: Array<Record<string, unknown>> = [];
  const ignore = () => undefined;
  const logger: Logger = {
    debug: ignore,
    info: ignore,
    error: ignore,
    warn: (fields: object | string, message?: string) =>
      void warnings.push({ ...(typeof fields === 'string' ? {} : fields), message }),
  };
  const manager = new Manager(fastConfig({ deliveryTimeoutMs }), new MockRepository(), {
    allowPrivateDestinations: true,
    logger,
    secretResolver,
  });
  // Drop the constructor's allowPrivateDestinations warning: only what testSubscription logs counts.
  warnings.length = 0;
  return { manager, warnings };
}

describe('subscriptions', () => {
  it('round-trips create, get, update, list and delete, publishing audit events', async () => {
    const manager = idleManager();
    const audits = recordEvents(manager, [
      'audit.subscription_created',
      'audit.subscription_updated',
      'audit.subscription_deleted',
    ]);
    const created = await manager.createSubscription({
      tenantId: 'acme',
      url: 'HTTP://Example.COM/Hooks?x=1',
      secret: SECRET,
      eventTypes: ['order.*'],
      filters: { region: 'eu' },
      retryPolicy: { maxAttempts: 4 },
      headers: { 'X-Tenant': 'acme' },
      metadata: { owner: 'team-a' },
    });
    expect(created).toMatchObject({
      tenantId: 'acme',
      url: 'http://example.com/Hooks?x=1',
      status: 'active',
      eventTypes: ['order.*'],
      retryPolicy: { maxAttempts: 4, initialBackoffMs: 20, maxBackoffMs: 200, backoffFactor: 2 },
    });
    expect(created.id).toMatch(/^sub_[A-Za-z0-9_-]{21}$/);
    expect(created.secret).toBe(SECRET);
    expect(JSON.stringify(created)).not.toContain(SECRET);
    expect(await manager.getSubscription(created.id)).toEqual(created);

    const unchanged = await manager.updateSubscription(created.id, { eventTypes: ['order.*'] });
    expect(unchanged).toEqual(created);
    const updated = await manager.updateSubscription(created.id, {
      eventTypes: ['order.*', 'invoice.paid'],
      retryPolicy: { maxBackoffMs: 500 },
    });
    expect(updated.eventTypes).toEqual(['order.*', 'invoice.paid']);
    expect(updated.retryPolicy).toEqual({
      maxAttempts: 4,
      initialBackoffMs: 20,
      maxBackoffMs: 500,
      backoffFactor: 2,
    });
    expect(updated.updatedAt.getTime()).toBeGreaterThanOrEqual(created.updatedAt.getTime());

    expect(await manager.listSubscriptions({ tenantId: 'acme' })).toHaveLength(1);
    expect(await manager.listSubscriptions({ tenantId: 'other' })).toHaveLength(0);
    expect(
      await manager.listSubscriptions({ allTenants: true, eventTypes: ['invoice.paid'] }),
    ).toHaveLength(1);
    await expect(manager.listSubscriptions({})).rejects.toMatchObject({
      code: 'HOOKD_ERR_TENANT_SCOPE_REQUIRED',
      field: 'tenantId',
    });

    await manager.deleteSubscription(created.id);
    await expect(manager.getSubscription(created.id)).rejects.toMatchObject({
      code: 'HOOKD_ERR_SUBSCRIPTION_NOT_FOUND',
      category: 'not_found',
    });
    const types = audits.map((a) => a.topic);
    expect(types).toEqual([
      'audit.subscription_created',
      'audit.subscription_updated',
      'audit.subscription_deleted',
    ]);
    const update = audits[1]!.event as AuditEvent;
    expect(update).toMatchObject({
      resourceId: created.id,
      tenantId: 'acme',
      changes: ['eventTypes', 'retryPolicy'],
    });
    expect(JSON.stringify(audits)).not.toContain(SECRET);
  });

  it('refuses a second subscription of a tenant for the same (normalised) URL', async () => {
    const manager = idleManager();
    await manager.createSubscription({
      tenantId: 't',
      url: 'https://example.com/a',
      secret: SECRET,
      eventTypes: ['*'],
    });
    await expect(
      manager.createSubscription({
        tenantId: 't',
        url: 'HTTPS://EXAMPLE.com/a',
        secret: SECRET,
        eventTypes: ['*'],
      }),
    ).rejects.toMatchObject({ code: 'HOOKD_ERR_DUPLICATE_SUBSCRIPTION', category: 'conflict' });
    await expect(
      manager.createSubscription({
        tenantId: 'u',
        url: 'https://example.com/a',
        secret: SECRET,
        eventTypes: ['*'],
      }),
    ).resolves.toBeTruthy();
  });

  it('validates updates like creates (go-hookd did not) and changes nothing on a bad update', async () => {
    const manager = idleManager();
    const created = await manager.createSubscription({
      tenantId: 't',
      url: 'https://example.com/a',
      secret: SECRET,
      eventTypes: ['*'],
    });
    await expect(manager.updateSubscription(created.id, { eventTypes: [] })).rejects.toMatchObject({
      field: 'eventTypes',
    });
    await expect(
      manager.updateSubscription(created.id, { eventTypes: ['ok.type', ' x'] }),
    ).rejects.toMatchObject({ field: 'eventTypes.1' });
    await expect(
      manager.updateSubscription(created.id, { status: 'archived' as never }),
    ).rejects.toMatchObject({ field: 'status' });
    await expect(
      manager.updateSubscription(created.id, { headers: { 'Bad Header': 'x' } }),
    ).rejects.toMatchObject({
      field: 'headers.Bad Header',
    });
    await expect(
      manager.updateSubscription(created.id, { url: 'http://10.0.0.1/x' }),
    ).resolves.toBeTruthy();
    const strict = new Manager(fastConfig(), new MockRepository());
    await expect(
      strict.createSubscription({
        tenantId: 't',
        url: 'http://10.0.0.1/x',
        secret: SECRET,
        eventTypes: ['*'],
      }),
    ).rejects.toMatchObject({ code: 'HOOKD_ERR_INVALID_ARGUMENT', field: 'url' });
    await expect(
      manager.updateSubscription('sub_missing', { status: 'paused' }),
    ).rejects.toMatchObject({
      code: 'HOOKD_ERR_SUBSCRIPTION_NOT_FOUND',
    });
  });

  it('pause, resume and disable change the status and are audited even when repeated', async () => {
    const manager = idleManager();
    const audits = recordEvents(manager, ['audit.subscription_updated']);
    const created = await manager.createSubscription({
      tenantId: 't',
      url: 'https://example.com/a',
      secret: SECRET,
      eventTypes: ['*'],
    });
    expect((await manager.pauseSubscription(created.id)).status).toBe('paused');
    expect((await manager.pauseSubscription(created.id)).status).toBe('paused');
    expect((await manager.disableSubscription(created.id)).status).toBe('disabled');
    expect((await manager.resumeSubscription(created.id)).status).toBe('active');
    expect(audits.map((a) => (a.event as AuditEvent).status)).toEqual([
      'paused',
      'paused',
      'disabled',
      'active',
    ]);
  });

  it('deleting a subscription deletes its deliveries and attempts', async () => {
    const target = await receiver();
    const { manager, repository } = await startManager();
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'a.b',
      payload: {},
    });
    await waitFor(async () => (await repository.getDelivery(queued.id)).status === 'success');
    await manager.deleteSubscription(subscription.id);
    await expect(manager.getDelivery(queued.id)).rejects.toMatchObject({
      code: 'HOOKD_ERR_DELIVERY_NOT_FOUND',
    });
    expect((await repository.getMaintenanceStats()).totalDeliveryAttempts).toBe(0);
  });
});

describe('testSubscription', () => {
  it('sends a signed test.ping with its own test_ id and reports the answer', async () => {
    const target = await receiver((_request, response) => void response.writeHead(200).end('pong'));
    const manager = idleManager();
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url('/ping'),
      secret: SECRET,
      eventTypes: ['*'],
      headers: { 'X-Custom': 'yes' },
    });
    const result = await manager.testSubscription(subscription.id);
    expect(result).toMatchObject({
      success: true,
      statusCode: 200,
      responseBody: 'pong',
      error: null,
    });
    expect(result.responseTimeMs).toBeGreaterThanOrEqual(0);
    const [request] = target.requests;
    expect(result.pingId).toMatch(/^test_[A-Za-z0-9_-]{21}$/);
    expect(request!.headers['x-webhook-delivery-id']).toBe(result.pingId);
    expect(request!.headers['webhook-id']).toBe(result.pingId);
    expect(request!.headers['x-webhook-attempt']).toBe('1');
    expect(request!.headers['x-webhook-event-type']).toBe('test.ping');
    expect(request!.headers['x-webhook-idempotency-key']).toBeUndefined();
    expect(request!.headers['x-custom']).toBe('yes');
    expect(
      verifyWebhook({ secret: SECRET, headers: request!.headers, body: request!.body }).id,
    ).toBe(result.pingId);
    const body = JSON.parse(request!.body.toString()) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(['message', 'timestamp', 'type']);
    expect(body).toMatchObject({ message: TEST_PING_MESSAGE, type: 'test.ping' });
    // Nothing stored, nothing published.
    expect((await manager.getMaintenanceStats()).totalDeliveries).toBe(0);
  });

  it('reports a failing endpoint and a closed port as results, not errors', async () => {
    const failing = await receiver(status(500));
    const manager = idleManager();
    const a = await manager.createSubscription({
      tenantId: 't',
      url: failing.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    expect(await manager.testSubscription(a.id)).toMatchObject({
      success: false,
      statusCode: 500,
      error: 'endpoint returned status 500',
    });
    const url = await unreachableUrl('/gone');
    const b = await manager.createSubscription({
      tenantId: 't',
      url,
      secret: SECRET,
      eventTypes: ['*'],
    });
    expect(await manager.testSubscription(b.id)).toMatchObject({
      success: false,
      statusCode: 0,
      error: 'connection refused',
    });
  });

  it('is rate limited per subscription; unknown ids take no slot', async () => {
    const target = await receiver();
    const manager = idleManager();
    await expect(manager.testSubscription('sub_unknown')).rejects.toMatchObject({
      code: 'HOOKD_ERR_SUBSCRIPTION_NOT_FOUND',
    });
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    await manager.testSubscription(subscription.id);
    const error = await manager.testSubscription(subscription.id).catch((e: unknown) => e);
    expect(isHookdError(error, 'HOOKD_ERR_TEST_RATE_LIMITED')).toBe(true);
    expect((error as { category: string }).category).toBe('rate_limit');
    expect((error as { details: { retryAfterMs: number } }).details.retryAfterMs).toBeGreaterThan(
      9_000,
    );
    expect(target.requests).toHaveLength(1);
  });

  it('asks the secret resolver with the ping id and signs with the key it returns', async () => {
    const target = await receiver();
    const seen: SecretRequest[] = [];
    const { manager } = resolverManager((request) => {
      seen.push(request);
      return `resolved-${request.ref}`;
    });
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: 'vault/ref/ping',
      eventTypes: ['*'],
    });
    const result = await manager.testSubscription(subscription.id);
    expect(result.success).toBe(true);
    expect(seen).toEqual([
      {
        ref: 'vault/ref/ping',
        tenantId: 't',
        subscriptionId: subscription.id,
        deliveryId: result.pingId,
        idempotencyKey: null,
      },
    ]);
    const [request] = target.requests;
    expect(
      verifyWebhook({
        secret: 'resolved-vault/ref/ping',
        headers: request!.headers,
        body: request!.body,
      }).id,
    ).toBe(result.pingId);
  });

  it('gives up on a resolver that never answers after the delivery timeout, sending nothing', async () => {
    const target = await receiver();
    const { manager, warnings } = resolverManager(
      () => new Promise<string>(() => undefined),
      1_000,
    );
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: 'vault/ref/slow',
      eventTypes: ['*'],
    });
    const started = Date.now();
    // Before the shared resolution path this never settled, and the test ran into its timeout.
    const result = await manager.testSubscription(subscription.id);
    // Timers may fire a millisecond early by the wall clock.
    expect(Date.now() - started).toBeGreaterThanOrEqual(990);
    expect(result).toEqual({
      success: false,
      pingId: expect.stringMatching(/^test_/),
      statusCode: 0,
      responseTimeMs: 0,
      responseBody: null,
      error: 'webhook signing secret unavailable',
    });
    expect(target.requests).toHaveLength(0);
    expect(warnings).toEqual([
      expect.objectContaining({
        reason: 'resolver_error',
        deliveryId: result.pingId,
        subscriptionId: subscription.id,
      }),
    ]);
  });

  it.each<[string, SecretResolverLike, string]>([
    [
      'throws',
      () => Promise.reject(new Error('vault path secret/acme unavailable')),
      'resolver_error',
    ],
    ['returns empty', () => '', 'empty'],
  ])(
    'reports the opaque error when the resolver %s, and logs why without its message',
    async (_name, resolve, reason) => {
      const target = await receiver();
      const { manager, warnings } = resolverManager(resolve);
      const subscription = await manager.createSubscription({
        tenantId: 't',
        url: target.url(),
        secret: 'vault/ref/broken',
        eventTypes: ['*'],
      });
      const result = await manager.testSubscription(subscription.id);
      expect(result).toMatchObject({
        success: false,
        statusCode: 0,
        error: 'webhook signing secret unavailable',
      });
      expect(target.requests).toHaveLength(0);
      // Until the ping shared the attempts' path, this failure left no trace in the log.
      expect(warnings).toEqual([
        expect.objectContaining({ reason, tenantId: 't', deliveryId: result.pingId }),
      ]);
      expect(JSON.stringify(warnings)).not.toMatch(/secret\/acme|vault\/ref/);
    },
  );

  it('is guarded by the egress policy: the default manager cannot reach loopback by name', async () => {
    const target = await receiver();
    const refusals: string[] = [];
    const manager = new Manager(fastConfig(), new MockRepository(), {
      onEgressRefused: (refusal) => void refusals.push(refusal.cause),
    });
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: `http://localhost:${target.port}/`,
      secret: SECRET,
      eventTypes: ['*'],
    });
    expect(await manager.testSubscription(subscription.id)).toMatchObject({
      success: false,
      error: 'webhook destination unreachable',
    });
    expect(refusals).toEqual(['internal_address']);
    expect(target.requests).toHaveLength(0);
  });
});

describe('batch APIs', () => {
  it('refuses a missing, empty or oversized batch as a whole', async () => {
    const manager = idleManager();
    await expect(manager.queueDeliveries(undefined as never)).rejects.toMatchObject({
      code: 'HOOKD_ERR_INVALID_ARGUMENT',
    });
    await expect(manager.queueDeliveries({ deliveries: [] })).rejects.toMatchObject({
      field: 'deliveries',
    });
    await expect(
      manager.queueDeliveries({ deliveries: new Array(101).fill({}) }),
    ).rejects.toMatchObject({
      message: 'batch size exceeds maximum (100)',
    });
    await expect(manager.createSubscriptions({ subscriptions: [] })).rejects.toMatchObject({
      field: 'subscriptions',
    });
  });

  it('reports each bad item at its index (a null item included) and stores the good ones', async () => {
    const target = await receiver();
    const { manager, repository } = await startManager();
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['a.*'],
    });
    const response = await manager.queueDeliveries({
      deliveries: [
        { subscriptionId: subscription.id, eventType: 'a.one', payload: { n: 0 } },
        null as never,
        { subscriptionId: subscription.id, eventType: 'b.wrong', payload: {} },
        { subscriptionId: 'sub_missing', eventType: 'a.one', payload: {} },
        {
          subscriptionId: subscription.id,
          eventType: 'a.two',
          payload: { n: 4 },
          idempotencyKey: 'dup',
        },
        {
          subscriptionId: subscription.id,
          eventType: 'a.two',
          payload: { n: 5 },
          idempotencyKey: 'dup',
        },
      ],
    });
    expect(response).toMatchObject({ totalRequested: 6, totalSucceeded: 2, totalFailed: 4 });
    expect(response.results.map((r) => (r.success ? 'ok' : r.error.code))).toEqual([
      'ok',
      'HOOKD_ERR_INVALID_ARGUMENT',
      'HOOKD_ERR_EVENT_TYPE_MISMATCH',
      'HOOKD_ERR_SUBSCRIPTION_NOT_FOUND',
      'ok',
      'HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY',
    ]);
    expect(response.results.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5]);
    // Per-item errors are plain data: they survive JSON.
    expect(JSON.parse(JSON.stringify(response.results[2]))).toMatchObject({
      error: { code: 'HOOKD_ERR_EVENT_TYPE_MISMATCH' },
    });
    await target.waitForRequests(2);
    expect((await repository.getMaintenanceStats()).totalDeliveries).toBe(2);
  });

  it('creates subscriptions in a batch with per-item results', async () => {
    const manager = idleManager();
    const response = await manager.createSubscriptions({
      subscriptions: [
        { tenantId: 't', url: 'https://example.com/1', secret: SECRET, eventTypes: ['*'] },
        { tenantId: 't', url: 'ftp://example.com/2', secret: SECRET, eventTypes: ['*'] },
        { tenantId: 't', url: 'https://example.com/3', secret: 'short', eventTypes: ['*'] },
      ],
    });
    expect(response.results.map((r) => (r.success ? 'ok' : r.error.field))).toEqual([
      'ok',
      'url',
      'secret',
    ]);
    expect(response.totalSucceeded).toBe(1);
  });
});

describe('dead letters', () => {
  it('redrives with a fresh budget, attempt numbers never repeating (2 → 4 → 6)', async () => {
    const target = await receiver(status(500));
    const { manager, repository } = await startManager({ defaultMaxRetries: 2 });
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'a.b',
      payload: {},
    });
    const deadLetter = async () =>
      waitFor(async () =>
        (await repository.getDelivery(queued.id)).status === 'dead_letter'
          ? repository.getDelivery(queued.id)
          : null,
      );
    expect(await deadLetter()).toMatchObject({ attemptCount: 2, maxAttempts: 2 });
    const redriven = await manager.retryDeadLetter(queued.id);
    expect(redriven).toMatchObject({
      status: 'pending',
      maxAttempts: 4,
      attemptCount: 2,
      completedAt: null,
    });
    expect(await deadLetter()).toMatchObject({ attemptCount: 4, maxAttempts: 4 });
    await manager.retryDeadLetter(queued.id);
    expect(await deadLetter()).toMatchObject({ attemptCount: 6, maxAttempts: 6 });
    expect((await manager.getDeliveryAttempts(queued.id)).map((a) => a.attemptNumber)).toEqual([
      1, 2, 3, 4, 5, 6,
    ]);
  });

  it('lets exactly one of two concurrent redrives win', async () => {
    const repository = new MockRepository();
    const manager = idleManager(repository);
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: 'https://example.com/a',
      secret: SECRET,
      eventTypes: ['*'],
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'a.b',
      payload: {},
    });
    await repository.moveToDeadLetter(queued.id, 'test');
    const outcomes = await Promise.allSettled([
      manager.retryDeadLetter(queued.id),
      manager.retryDeadLetter(queued.id),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const loser = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(loser.reason).toMatchObject({
      code: 'HOOKD_ERR_DELIVERY_NOT_DEAD_LETTER',
      category: 'validation',
    });
  });

  it('lists, counts, redrives in bulk and purges per tenant, with filters applied before paging', async () => {
    // The store's clock runs 200 minutes behind real time, one delivery per minute; purge ages are
    // measured on the real clock.
    const start = Date.now() - 200 * 60_000;
    let now = start;
    const repository = new MockRepository({ now: () => now });
    const manager = idleManager(repository);
    const a = await manager.createSubscription({
      tenantId: 't',
      url: 'https://example.com/a',
      secret: SECRET,
      eventTypes: ['*'],
    });
    const b = await manager.createSubscription({
      tenantId: 'other',
      url: 'https://example.com/a',
      secret: SECRET,
      eventTypes: ['*'],
    });
    const ids: string[] = [];
    for (let i = 0; i < 150; i += 1) {
      now += 60_000; // one per minute
      const delivery = await manager.queueDelivery({
        subscriptionId: a.id,
        eventType: i % 2 ? 'odd.x' : 'even.x',
        payload: { i },
      });
      await repository.moveToDeadLetter(delivery.id, 'test');
      ids.push(delivery.id);
    }
    const foreign = await manager.queueDelivery({
      subscriptionId: b.id,
      eventType: 'odd.x',
      payload: {},
    });
    await repository.moveToDeadLetter(foreign.id, 'test');

    await expect(manager.listDeadLetters({} as never)).rejects.toMatchObject({
      code: 'HOOKD_ERR_TENANT_SCOPE_REQUIRED',
    });
    expect(await manager.listDeadLetters({ tenantId: 't' })).toHaveLength(100);
    expect(await manager.getDeadLetterCount('t')).toBe(150);
    // The oldest ten: beyond the first page of newest rows, found because the query filters.
    const oldest = await manager.listDeadLetters({
      tenantId: 't',
      createdBefore: new Date(start + 11 * 60_000),
    });
    expect(oldest.map((d) => d.id).sort()).toEqual(ids.slice(0, 10).sort());
    expect(
      await manager.listDeadLetters({ tenantId: 't', eventType: 'odd.x', limit: 500 }),
    ).toHaveLength(75);

    const filter = { tenantId: 't', eventType: 'odd.x' };
    const result = await manager.retryDeadLetters(filter);
    expect(result).toEqual({ totalFound: 75, totalRetried: 75, errors: [] });
    expect(filter).toEqual({ tenantId: 't', eventType: 'odd.x' });
    expect(await manager.getDeadLetterCount('t')).toBe(75);
    expect(await manager.getDeadLetterCount('other')).toBe(1);

    // Cut-off: start + 100 min. The even-numbered dead letters were created at minutes 1, 3 … 99
    // before it (50) and 101 … 149 after it (25).
    const purged = await manager.purgeDeadLetters({ tenantId: 't', olderThanMs: 100 * 60_000 });
    expect(purged.totalPurged).toBe(50);
    expect(await manager.getDeadLetterCount('t')).toBe(25);
    const rest = await manager.purgeDeadLetters({ tenantId: 't', subscriptionId: a.id });
    expect(rest.totalPurged).toBe(25);
    expect(await manager.getDeadLetterCount('other')).toBe(1);
  });

  it('retryDelivery refuses successes, gives a dead letter one more attempt, and refuses one in flight', async () => {
    let hang = false;
    const target = await receiver(async (_request, response) => {
      if (hang) await new Promise((resolve) => setTimeout(resolve, 400));
      response.writeHead(200).end();
    });
    const { manager, repository } = await startManager({ defaultMaxRetries: 1 });
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const done = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'a.b',
      payload: {},
    });
    await waitFor(async () => (await repository.getDelivery(done.id)).status === 'success');
    await expect(manager.retryDelivery(done.id)).rejects.toMatchObject({
      code: 'HOOKD_ERR_CANNOT_RETRY_SUCCESSFUL',
    });

    hang = true;
    const slow = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'a.b',
      payload: {},
    });
    await target.waitForRequests(2);
    await expect(manager.retryDelivery(slow.id)).rejects.toMatchObject({
      code: 'HOOKD_ERR_DELIVERY_IN_PROGRESS',
      category: 'conflict',
    });
    await waitFor(async () => (await repository.getDelivery(slow.id)).status === 'success');

    hang = false;
    await repository.moveToDeadLetter(slow.id, 'test');
    const again = await manager.retryDelivery(slow.id);
    expect(again).toMatchObject({ status: 'pending', maxAttempts: 2, attemptCount: 1 });
    await waitFor(async () => (await repository.getDelivery(slow.id)).status === 'success');
    expect((await manager.getDeliveryAttempts(slow.id)).map((a) => a.attemptNumber)).toEqual([
      1, 2,
    ]);
  });
});

describe('maintenance', () => {
  it('reports stats, counts on a dry run, and deletes (with attempts) on a real run, per tenant', async () => {
    const target = await receiver();
    const { manager, repository } = await startManager();
    const cleanups = recordEvents(manager, ['maintenance.cleanup']);
    const a = await manager.createSubscription({
      tenantId: 'a',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const b = await manager.createSubscription({
      tenantId: 'b',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const queued = await Promise.all([
      manager.queueDelivery({ subscriptionId: a.id, eventType: 'a.b', payload: {} }),
      manager.queueDelivery({ subscriptionId: a.id, eventType: 'a.b', payload: {} }),
      manager.queueDelivery({ subscriptionId: b.id, eventType: 'a.b', payload: {} }),
    ]);
    for (const d of queued)
      await waitFor(async () => (await repository.getDelivery(d.id)).status === 'success');

    const stats = await manager.getMaintenanceStats();
    expect(stats).toMatchObject({
      totalDeliveries: 3,
      totalDeliveryAttempts: 3,
      deliveriesByStatus: { success: 3, pending: 0 },
    });
    await expect(manager.cleanupDeliveries({})).rejects.toMatchObject({
      code: 'HOOKD_ERR_TENANT_SCOPE_REQUIRED',
    });
    await expect(manager.cleanupDeliveries({ allTenants: true })).rejects.toMatchObject({
      field: 'filter',
    });

    const dry = await manager.cleanupDeliveries(
      { tenantId: 'a', status: 'success' },
      { dryRun: true },
    );
    expect(dry).toMatchObject({ deliveriesDeleted: 2, attemptsDeleted: 0, dryRun: true });
    expect((await manager.getMaintenanceStats()).totalDeliveries).toBe(3);
    expect(cleanups).toHaveLength(0);

    const real = await manager.cleanupDeliveries({ tenantId: 'a', status: 'success' });
    expect(real).toMatchObject({ deliveriesDeleted: 2, attemptsDeleted: 2, dryRun: false });
    expect(await manager.listDeliveries({ tenantId: 'b' })).toHaveLength(1);
    expect(cleanups).toHaveLength(1);
    expect(cleanups[0]!.event).toMatchObject({
      type: 'deliveries',
      deletedCount: 2,
      attemptsDeleted: 2,
      tenantId: 'a',
    });

    expect((await manager.cleanupSuccessfulDeliveries(0)).deliveriesDeleted).toBe(1);
    await expect(manager.cleanupFailedDeliveries(-1)).rejects.toMatchObject({
      field: 'olderThanMs',
    });
  });

  it('cleans only expired idempotency keys', async () => {
    let now = Date.now();
    const repository = new MockRepository({ now: () => now });
    const manager = idleManager(repository);
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: 'https://example.com/a',
      secret: SECRET,
      eventTypes: ['*'],
    });
    await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'a.b',
      payload: {},
      idempotencyKey: 'old',
    });
    now += 25 * 3_600_000;
    await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'a.b',
      payload: {},
      idempotencyKey: 'new',
    });
    expect(await manager.cleanupIdempotencyKeys({ dryRun: true })).toMatchObject({
      keysDeleted: 1,
      dryRun: true,
    });
    expect((await manager.cleanupIdempotencyKeys()).keysDeleted).toBe(1);
    expect((await manager.getMaintenanceStats()).idempotencyKeys).toBe(1);
    expect(await repository.checkIdempotency('new', subscription.id)).toBe(true);
  });
});
