import { describe, expect, it } from 'vitest';

import {
  InProcessEventBus,
  Manager,
  MockRepository,
  TOPICS,
  fanOut,
  type DeliveryAttemptEvent,
  type DeliveryQueuedEvent,
  type Topic,
} from '../src/index.js';
import { fastConfig, startManager } from './helpers/manager.js';
import { useHarness } from './helpers/harness.js';
import { nextEvent, recordEvents, waitFor } from './helpers/wait.js';

const SECRET = 'events-secret';
const ALL_TOPICS = Object.values(TOPICS) as Topic[];
const { receiver } = useHarness();

describe('events', () => {
  it('publishes queued → started → success with the attempt fields', async () => {
    const target = await receiver();
    const { manager } = await startManager();
    const events = recordEvents(manager, ALL_TOPICS);
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const success = nextEvent(manager, 'delivery.success');
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'a.b',
      payload: { secret: 'payload' },
      idempotencyKey: 'k',
    });
    await success;
    await waitFor(() => events.some((e) => e.topic === 'metrics.delivery_attempt'));
    expect(events.map((e) => e.topic)).toEqual([
      'audit.subscription_created',
      'delivery.queued',
      'delivery.started',
      'delivery.success',
      'metrics.delivery_attempt',
    ]);
    const queuedEvent = events[1]!.event as DeliveryQueuedEvent;
    expect(queuedEvent).toMatchObject({
      deliveryId: queued.id,
      subscriptionId: subscription.id,
      tenantId: 't',
      eventType: 'a.b',
      status: 'pending',
      idempotencyKey: 'k',
      attemptCount: 0,
      maxAttempts: 3,
      source: 'api',
    });
    const successEvent = events[3]!.event as DeliveryAttemptEvent;
    expect(successEvent).toMatchObject({
      status: 'success',
      outcome: 'success',
      attemptNumber: 1,
      statusCode: 200,
      error: null,
      nextRetryAt: null,
    });
    expect(successEvent.durationMs).toBeGreaterThanOrEqual(0);
    expect(successEvent.createdAt).toEqual(queued.createdAt);
    // Neither the payload nor the secret ever travels in an event.
    const serialised = JSON.stringify(events);
    expect(serialised).not.toContain('payload');
    expect(serialised).not.toContain(SECRET);
  });

  it('publishes retry_triggered and failed (pending) for a retry, then dead_letter and failed (dead_letter)', async () => {
    const target = await receiver((_request, response) => void response.writeHead(502).end());
    const { manager } = await startManager({ defaultMaxRetries: 2 });
    const events = recordEvents(manager, [
      'delivery.failed',
      'delivery.dead_letter',
      'metrics.retry_triggered',
      'metrics.delivery_attempt',
    ]);
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const deadLetter = nextEvent(manager, 'delivery.dead_letter');
    await manager.queueDelivery({ subscriptionId: subscription.id, eventType: 'a.b', payload: {} });
    await deadLetter;
    await waitFor(() => events.length === 6);
    const sequence = events.map((e) => {
      const event = e.event as DeliveryAttemptEvent;
      return [e.topic, event.status, event.attemptNumber, event.statusCode];
    });
    expect(sequence).toEqual([
      ['metrics.retry_triggered', 'pending', 1, 502],
      ['delivery.failed', 'pending', 1, 502],
      ['metrics.delivery_attempt', 'pending', 1, 502],
      ['delivery.dead_letter', 'dead_letter', 2, 502],
      ['delivery.failed', 'dead_letter', 2, 502],
      ['metrics.delivery_attempt', 'dead_letter', 2, 502],
    ]);
    const retry = events[0]!.event as DeliveryAttemptEvent;
    expect(retry.outcome).toBe('retry');
    expect(retry.nextRetryAt).toBeInstanceOf(Date);
  });

  it('keeps delivering when a subscriber throws, rejects or never settles', async () => {
    const target = await receiver();
    const warnings: string[] = [];
    const repository = new MockRepository();
    const manager = new Manager(fastConfig(), repository, {
      allowPrivateDestinations: true,
      logger: {
        debug: () => undefined,
        info: () => undefined,
        warn: (_fields: object | string, message?: string) => void warnings.push(message ?? ''),
        error: () => undefined,
      },
    });
    manager.on('delivery.started', () => {
      throw new Error('subscriber bug');
    });
    manager.on('delivery.success', () => Promise.reject(new Error('async subscriber bug')));
    manager.on('delivery.queued', () => new Promise<void>(() => undefined));
    await manager.start();
    try {
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
      await waitFor(() => warnings.filter((w) => w === 'event subscriber failed').length === 2);
    } finally {
      await manager.stop();
    }
  });

  it('publishes to a custom bus, also through fanOut, and isolates a bus that throws', async () => {
    const target = await receiver();
    const first = new InProcessEventBus();
    const second = new InProcessEventBus();
    const broken = {
      publish: () => {
        throw new Error('broken bus');
      },
      subscribe: () => () => undefined,
    };
    const seenFirst: string[] = [];
    const seenSecond: string[] = [];
    first.subscribe('delivery.success', (event) => void seenFirst.push(event.deliveryId));
    second.subscribe('delivery.success', (event) => void seenSecond.push(event.deliveryId));
    const { manager, repository } = await startManager({}, new MockRepository(), {
      eventBus: fanOut(first, broken, second),
    });
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
    await waitFor(() => seenSecond.length === 1);
    expect(seenFirst).toEqual([queued.id]);
    expect(seenSecond).toEqual([queued.id]);
  });

  it('publishes metrics.queue_depth periodically from the repository', async () => {
    const { manager } = await startManager({ queueDepthIntervalMs: 50 });
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: 'https://example.com/never',
      secret: SECRET,
      eventTypes: ['*'],
    });
    await manager.stop();
    await manager.queueDelivery({ subscriptionId: subscription.id, eventType: 'a.b', payload: {} });
    await manager.start();
    manager.notify();
    const depth = await nextEvent(manager, 'metrics.queue_depth', (event) => event.pending === 1);
    expect(depth.deadLetter).toBe(0);
    expect(depth.oldestPendingAt).toBeInstanceOf(Date);
  });
});

describe('egress guard at delivery time', () => {
  it('refuses a hostname that resolves to loopback, records the opaque error, and reports the cause', async () => {
    const target = await receiver();
    const causes: string[] = [];
    const repository = new MockRepository();
    const manager = new Manager(fastConfig({ defaultMaxRetries: 1 }), repository, {
      onEgressRefused: (refusal) => void causes.push(`${refusal.cause}:${refusal.hostname}`),
    });
    await manager.start();
    try {
      await expect(
        manager.createSubscription({
          tenantId: 't',
          url: target.url(),
          secret: SECRET,
          eventTypes: ['*'],
        }),
      ).rejects.toMatchObject({ code: 'HOOKD_ERR_INVALID_ARGUMENT', field: 'url' });
      const subscription = await manager.createSubscription({
        tenantId: 't',
        url: `http://localhost:${target.port}/`,
        secret: SECRET,
        eventTypes: ['*'],
      });
      const queued = await manager.queueDelivery({
        subscriptionId: subscription.id,
        eventType: 'a.b',
        payload: {},
      });
      await waitFor(async () => (await repository.getDelivery(queued.id)).status === 'dead_letter');
      expect((await manager.getDeliveryAttempts(queued.id))[0]).toMatchObject({
        statusCode: 0,
        error: 'webhook destination unreachable',
      });
      expect(causes).toEqual(['internal_address:localhost']);
      expect(target.requests).toHaveLength(0);
    } finally {
      await manager.stop();
    }
  });

  it('dials only the address its one lookup judged (a test resolver stands in for DNS)', async () => {
    const target = await receiver();
    let lookups = 0;
    const { manager, repository } = await startManager({}, new MockRepository(), {
      lookup: async () => {
        lookups += 1;
        return [{ address: '127.0.0.1', family: 4 }];
      },
    });
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: `http://hooks.customer.example:${target.port}/in`,
      secret: SECRET,
      eventTypes: ['*'],
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'a.b',
      payload: {},
    });
    await waitFor(async () => (await repository.getDelivery(queued.id)).status === 'success');
    expect(lookups).toBe(1);
    expect(target.requests[0]!.headers.host).toBe(`hooks.customer.example:${target.port}`);
  });
});
