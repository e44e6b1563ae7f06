import { describe, expect, it } from 'vitest';

import { MockRepository, type CircuitBreakerEvent } from '../src/index.js';
import type { Receiver } from './helpers/receiver.js';
import { startManager } from './helpers/manager.js';
import { useHarness } from './helpers/harness.js';
import { nextEvent, waitFor } from './helpers/wait.js';

const SECRET = 'circuit-secret';
const { receiver } = useHarness();

/** A receiver whose health the test switches. */
async function switchable(): Promise<{ target: Receiver; setHealthy(healthy: boolean): void }> {
  let healthy = false;
  const target = await receiver((_request, response) => {
    response.writeHead(healthy ? 200 : 503).end();
  });
  return { target, setHealthy: (value) => (healthy = value) };
}

describe('circuit breaker', () => {
  it('opens after the threshold, parks deliveries without attempts, half-opens after the timeout, and closes after trial successes', async () => {
    const { target, setHealthy } = await switchable();
    const repository = new MockRepository();
    const { manager } = await startManager(
      {
        circuitBreakerThreshold: 3,
        circuitBreakerTimeoutMs: 1_000,
        circuitBreakerHalfOpenRequests: 2,
        defaultMaxRetries: 1,
        workerCount: 1,
      },
      repository,
    );
    const transitions: CircuitBreakerEvent[] = [];
    for (const topic of ['circuit.opened', 'circuit.half_open', 'circuit.closed'] as const) {
      manager.on(topic, (event) => void transitions.push(event));
    }
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const queue = (i: number) =>
      manager.queueDelivery({ subscriptionId: subscription.id, eventType: 'a.b', payload: { i } });

    const opened = nextEvent(manager, 'circuit.opened');
    for (let i = 0; i < 3; i += 1) await queue(i);
    const openEvent = await opened;
    expect(openEvent).toMatchObject({
      endpoint: subscription.url,
      state: 'open',
      previousState: 'closed',
      failureCount: 3,
    });
    expect(target.requests).toHaveLength(3);

    // While open, new deliveries are parked: no request, no attempt counted.
    const parked = await queue(3);
    await waitFor(async () => (await repository.getDelivery(parked.id)).nextRetryAt !== null);
    const state = await repository.getCircuitBreakerState(subscription.url);
    expect(state).toMatchObject({ state: 'open', failureCount: 3 });
    const held = await repository.getDelivery(parked.id);
    expect(held).toMatchObject({ status: 'pending', attemptCount: 0 });
    expect(held.nextRetryAt!.getTime()).toBe(state.nextRetryAt!.getTime());
    expect(target.requests).toHaveLength(3);

    // After the timeout the next claim moves the circuit to half-open and sends a trial.
    setHealthy(true);
    const halfOpen = await nextEvent(manager, 'circuit.half_open', () => true, 5_000);
    expect(halfOpen).toMatchObject({ state: 'half_open', previousState: 'open', failureCount: 3 });
    await waitFor(async () => (await repository.getDelivery(parked.id)).status === 'success');
    expect((await repository.getCircuitBreakerState(subscription.url)).state).toBe('half_open');
    const closed = nextEvent(manager, 'circuit.closed');
    await queue(4);
    expect(await closed).toMatchObject({
      state: 'closed',
      previousState: 'half_open',
      failureCount: 0,
    });
    expect(await repository.getCircuitBreakerState(subscription.url)).toMatchObject({
      state: 'closed',
      failureCount: 0,
      successCount: 0,
    });
    expect(transitions.map((t) => t.state)).toEqual(['open', 'half_open', 'closed']);
  });

  it('reopens at once when a half-open trial fails', async () => {
    const { target } = await switchable();
    const repository = new MockRepository();
    const { manager } = await startManager(
      {
        circuitBreakerThreshold: 1,
        circuitBreakerTimeoutMs: 1_000,
        defaultMaxRetries: 1,
        workerCount: 1,
      },
      repository,
    );
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const firstOpen = nextEvent(manager, 'circuit.opened');
    await manager.queueDelivery({ subscriptionId: subscription.id, eventType: 'a.b', payload: {} });
    await firstOpen;
    const trial = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'a.b',
      payload: {},
    });
    const reopened = nextEvent(
      manager,
      'circuit.opened',
      (event) => event.previousState === 'half_open',
      5_000,
    );
    await nextEvent(manager, 'circuit.half_open', () => true, 5_000);
    expect(await reopened).toMatchObject({ state: 'open', failureCount: 2 });
    expect((await manager.getDeliveryAttempts(trial.id)).map((a) => a.statusCode)).toEqual([503]);
  });

  it('lets only circuitBreakerHalfOpenRequests trials through at a time', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    let healthy = false;
    let release: () => void = () => undefined;
    const target = await receiver(async (_request, response) => {
      if (!healthy) return void response.writeHead(503).end();
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise<void>((resolve) => (release = resolve));
      inFlight -= 1;
      response.writeHead(200).end();
    });
    const repository = new MockRepository();
    const { manager } = await startManager(
      {
        circuitBreakerThreshold: 1,
        circuitBreakerTimeoutMs: 1_000,
        circuitBreakerHalfOpenRequests: 1,
        defaultMaxRetries: 1,
        workerCount: 8,
      },
      repository,
    );
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const opened = nextEvent(manager, 'circuit.opened');
    await manager.queueDelivery({ subscriptionId: subscription.id, eventType: 'a.b', payload: {} });
    await opened;
    healthy = true;
    await manager.queueDeliveries({
      deliveries: Array.from({ length: 5 }, (_, i) => ({
        subscriptionId: subscription.id,
        eventType: 'a.b',
        payload: { i },
      })),
    });
    await nextEvent(manager, 'circuit.half_open', () => true, 5_000);
    await waitFor(() => inFlight === 1);
    // The other four were claimed in the same batch and handed back, unattempted, while the one
    // trial is in flight.
    await waitFor(async () => {
      const waiting = (await manager.listDeliveries({ tenantId: 't', status: 'pending' })).filter(
        (d) =>
          d.attemptCount === 0 && d.nextRetryAt !== null && d.nextRetryAt.getTime() > Date.now(),
      );
      return waiting.length === 4;
    });
    expect(maxInFlight).toBe(1);
    release();
    await waitFor(async () => (await repository.getQueueDepth()).pending === 0, {
      timeoutMs: 8_000,
    });
    expect(target.requests.filter((r) => r.headers['x-webhook-attempt'] === '1')).toHaveLength(6);
  });

  it('keys the breaker of inline deliveries by their URL, shared with a subscription of that URL', async () => {
    const { target } = await switchable();
    const repository = new MockRepository();
    const { manager } = await startManager(
      {
        circuitBreakerThreshold: 2,
        circuitBreakerTimeoutMs: 60_000,
        defaultMaxRetries: 1,
        workerCount: 1,
      },
      repository,
    );
    const url = target.url('/shared');
    const opened = nextEvent(manager, 'circuit.opened');
    for (const i of [1, 2]) {
      await manager.queueInlineDelivery({ url, tenantId: 't', eventType: 'a.b', payload: { i } });
    }
    expect(await opened).toMatchObject({ endpoint: url, failureCount: 2 });
    // A subscription with the same URL is parked by the same (open) breaker.
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url,
      secret: SECRET,
      eventTypes: ['*'],
    });
    const parked = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'a.b',
      payload: {},
    });
    await waitFor(async () => (await repository.getDelivery(parked.id)).nextRetryAt !== null);
    expect(await repository.getDelivery(parked.id)).toMatchObject({
      status: 'pending',
      attemptCount: 0,
    });
    expect(target.requests).toHaveLength(2);
  });

  it('never reads or writes circuit state when disabled', async () => {
    const { target } = await switchable();
    const repository = new MockRepository();
    let circuitCalls = 0;
    for (const method of [
      'recordCircuitEvents',
      'getCircuitBreakerState',
      'updateCircuitBreakerState',
    ] as const) {
      const original = repository[method].bind(repository) as (...args: never[]) => unknown;
      (repository as unknown as Record<string, unknown>)[method] = (...args: never[]) => {
        circuitCalls += 1;
        return original(...args);
      };
    }
    const { manager } = await startManager(
      { circuitBreakerThreshold: 1, defaultMaxRetries: 1 },
      repository,
      { disableCircuitBreaker: true },
    );
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const queued = await Promise.all(
      [1, 2, 3].map((i) =>
        manager.queueDelivery({
          subscriptionId: subscription.id,
          eventType: 'a.b',
          payload: { i },
        }),
      ),
    );
    for (const delivery of queued)
      await waitFor(
        async () => (await repository.getDelivery(delivery.id)).status === 'dead_letter',
      );
    expect(target.requests).toHaveLength(3);
    expect(circuitCalls).toBe(0);
  });

  it('writes nothing to the circuit table while an endpoint stays healthy', async () => {
    const { target, setHealthy } = await switchable();
    setHealthy(true);
    const repository = new MockRepository();
    let writes = 0;
    const record = repository.recordCircuitEvents.bind(repository);
    repository.recordCircuitEvents = (events, settings) => {
      writes += 1;
      return record(events, settings);
    };
    const { manager } = await startManager({}, repository);
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    await manager.queueDeliveries({
      deliveries: Array.from({ length: 20 }, (_, i) => ({
        subscriptionId: subscription.id,
        eventType: 'a.b',
        payload: { i },
      })),
    });
    await target.waitForRequests(20);
    await waitFor(async () => (await repository.getQueueDepth()).pending === 0);
    expect(writes).toBe(0);
  });

  it('does not count client errors (4xx) against the endpoint', async () => {
    const target = await receiver((_request, response) => void response.writeHead(422).end());
    const repository = new MockRepository();
    const { manager } = await startManager({ circuitBreakerThreshold: 2 }, repository);
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const queued = await Promise.all(
      [1, 2, 3].map((i) =>
        manager.queueDelivery({
          subscriptionId: subscription.id,
          eventType: 'a.b',
          payload: { i },
        }),
      ),
    );
    for (const delivery of queued)
      await waitFor(
        async () => (await repository.getDelivery(delivery.id)).status === 'dead_letter',
      );
    expect(await repository.getCircuitBreakerState(subscription.url)).toMatchObject({
      state: 'closed',
      failureCount: 0,
    });
  });
});
