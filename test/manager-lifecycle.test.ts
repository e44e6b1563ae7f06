import { describe, expect, it } from 'vitest';

import { HookdError, Manager, MockRepository, type Repository } from '../src/index.js';
import { fastConfig, startManager } from './helpers/manager.js';
import { useHarness, waitForFinal } from './helpers/harness.js';
import { nextEvent, waitFor } from './helpers/wait.js';

const SECRET = 'lifecycle-secret';
const { receiver } = useHarness();

describe('constructing a manager', () => {
  it('refuses invalid configuration naming the field', () => {
    const repository = new MockRepository();
    expect(() => new Manager({ workerCount: 0 }, repository)).toThrow(
      expect.objectContaining({ code: 'HOOKD_ERR_INVALID_CONFIG', field: 'workerCount' }),
    );
    expect(() => new Manager({ deliveryTimeoutMs: 999 }, repository)).toThrow(
      expect.objectContaining({ field: 'deliveryTimeoutMs' }),
    );
    expect(() => new Manager({ workerCnt: 3 } as never, repository)).toThrow(
      expect.objectContaining({ field: 'workerCnt' }),
    );
  });

  it('refuses a missing repository and malformed options', () => {
    const repository = new MockRepository();
    expect(() => new Manager({}, undefined as unknown as Repository)).toThrow(
      expect.objectContaining({ field: 'repository' }),
    );
    expect(() => new Manager({}, repository, { logger: null } as never)).toThrow(
      expect.objectContaining({ field: 'logger' }),
    );
    expect(() => new Manager({}, repository, { eventBus: {} } as never)).toThrow(
      expect.objectContaining({ field: 'eventBus' }),
    );
    expect(() => new Manager({}, repository, { secretResolver: 'x' } as never)).toThrow(
      expect.objectContaining({ field: 'secretResolver' }),
    );
    expect(() => new Manager({}, repository, { unknownOption: true } as never)).toThrow(
      expect.objectContaining({ field: 'unknownOption' }),
    );
    expect(() => new Manager({}, repository, { dispatcher: {} })).toThrow(
      expect.objectContaining({ code: 'HOOKD_ERR_UNGUARDABLE_DISPATCHER' }),
    );
  });

  it('exposes the resolved configuration, frozen', () => {
    const manager = new Manager({ workerCount: 3 }, new MockRepository());
    expect(manager.config.workerCount).toBe(3);
    expect(manager.config.deliveryTimeoutMs).toBe(30_000);
    expect(Object.isFrozen(manager.config)).toBe(true);
  });
});

describe('lifecycle', () => {
  it('starts idempotently, stops idempotently, and can start again', async () => {
    const target = await receiver();
    const repository = new MockRepository();
    const manager = new Manager(fastConfig(), repository, { allowPrivateDestinations: true });
    await manager.stop(); // before start: nothing to do
    expect(manager.isStarted()).toBe(false);
    await Promise.all([manager.start(), manager.start()]);
    expect(manager.isStarted()).toBe(true);
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    await manager.queueDelivery({ subscriptionId: subscription.id, eventType: 'a.b', payload: {} });
    await target.waitForRequests(1);
    await Promise.all([manager.stop(), manager.stop()]);
    expect(manager.isStarted()).toBe(false);
    await manager.start();
    await manager.queueDelivery({ subscriptionId: subscription.id, eventType: 'a.b', payload: {} });
    await target.waitForRequests(2);
    await manager.stop();
  });

  it('leaves a repository it was given open, and closes it only when asked', async () => {
    const repository = new MockRepository();
    const manager = new Manager(fastConfig(), repository);
    await manager.start();
    await manager.stop();
    await expect(repository.ping()).resolves.toBeUndefined();
    await manager.start();
    await manager.stop({ closeRepository: true });
    await expect(repository.ping()).rejects.toMatchObject({ code: 'HOOKD_ERR_DATABASE' });
  });

  it('supports await using (Symbol.asyncDispose)', async () => {
    const repository = new MockRepository();
    let manager: Manager;
    {
      await using scoped = new Manager(fastConfig(), repository);
      manager = scoped;
      await scoped.start();
      expect(scoped.isStarted()).toBe(true);
    }
    expect(manager.isStarted()).toBe(false);
  });

  it('waits for an in-flight attempt on stop and records it', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const target = await receiver(async (_request, response) => {
      await gate;
      response.writeHead(200).end('late but fine');
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
      eventType: 'a.b',
      payload: {},
    });
    await target.waitForRequests(1);
    const stopping = manager.stop({ timeoutMs: 5_000 });
    setTimeout(release, 100);
    await stopping;
    const delivery = await repository.getDelivery(queued.id);
    expect(delivery.status).toBe('success');
    const [attempt] = await manager.getDeliveryAttempts(queued.id);
    expect(attempt).toMatchObject({ statusCode: 200, responseBody: 'late but fine' });
  });

  it('honours the stop timeout: aborts a hung attempt, records it, and leaves the delivery due for a retry', async () => {
    const target = await receiver(() => new Promise<void>(() => undefined));
    const { manager, repository } = await startManager({
      deliveryTimeoutMs: 30_000,
      defaultMaxRetries: 5,
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
    await target.waitForRequests(1);
    const started = Date.now();
    await manager.stop({ timeoutMs: 600 });
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(1_500);
    const delivery = await repository.getDelivery(queued.id);
    expect(delivery).toMatchObject({ status: 'pending', attemptCount: 1 });
    const [attempt] = await manager.getDeliveryAttempts(queued.id);
    expect(attempt).toMatchObject({
      statusCode: 0,
      error: 'request aborted: the sender is shutting down',
    });
    // Due again right away (not after a whole lease): a restarted manager continues.
    expect(delivery.nextRetryAt!.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it('gives a delivery whose last attempt stop() aborted one more attempt instead of dead-lettering it unsent', async () => {
    let requests = 0;
    // The first request hangs until stop() aborts it; later ones are answered.
    const target = await receiver(async (_request, response) => {
      requests += 1;
      if (requests === 1) return new Promise<void>(() => undefined);
      response.writeHead(200).end('ok');
    });
    const { manager, repository } = await startManager({ deliveryTimeoutMs: 30_000 });
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
      retryPolicy: { maxAttempts: 1 },
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'a.b',
      payload: {},
    });
    await target.waitForRequests(1);
    await manager.stop({ timeoutMs: 600 });
    expect(await repository.getDelivery(queued.id)).toMatchObject({
      status: 'pending',
      attemptCount: 1,
      maxAttempts: 2,
    });
    await manager.start();
    const done = await waitForFinal(repository, queued.id);
    expect(done).toMatchObject({ status: 'success', attemptCount: 2 });
    expect((await manager.getDeliveryAttempts(queued.id)).map((a) => a.statusCode)).toEqual([
      0, 200,
    ]);
  });

  /**
   * A manager with one slot and room for ten claimed, `count` deliveries queued while it was
   * stopped, restarted, its first request hanging at the receiver: the rest wait claimed in the
   * local queue.
   */
  async function oneHangingOthersClaimed(
    count: number,
    repository: MockRepository = new MockRepository(),
  ): Promise<Manager> {
    const target = await receiver(() => new Promise<void>(() => undefined));
    const { manager } = await startManager(
      { workerCount: 1, maxBatchSize: 10, claimLeaseMs: 600_000, deliveryTimeoutMs: 30_000 },
      repository,
    );
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    await manager.stop();
    const batch = await manager.queueDeliveries({
      deliveries: Array.from({ length: count }, (_, i) => ({
        subscriptionId: subscription.id,
        eventType: 'a.b',
        payload: { i },
      })),
    });
    expect(batch.totalSucceeded).toBe(count);
    await manager.start();
    await target.waitForRequests(1);
    return manager;
  }

  it('gives claimed deliveries that have not started back at once on stop, attempts refunded', async () => {
    const manager = await oneHangingOthersClaimed(10);
    await manager.stop({ timeoutMs: 300 });
    const deliveries = await manager.listDeliveries({ tenantId: 't' });
    const untouched = deliveries.filter((d) => d.attemptCount === 0);
    expect(untouched).toHaveLength(9);
    for (const delivery of untouched) expect(delivery.nextRetryAt).toBeNull();
  });

  it('records an aborted attempt on stop even while the database hangs on releasing unstarted claims', async () => {
    let answerRelease: () => void = () => undefined;
    const releaseAnswered = new Promise<void>((resolve) => (answerRelease = resolve));
    // The release of claimed-but-unstarted deliveries gets no answer until the test ends.
    class SlowToRelease extends MockRepository {
      override async releaseDeliveryClaims(
        ...args: Parameters<MockRepository['releaseDeliveryClaims']>
      ): Promise<number> {
        await releaseAnswered;
        return super.releaseDeliveryClaims(...args);
      }
    }
    const manager = await oneHangingOthersClaimed(3, new SlowToRelease());
    await manager.stop({ timeoutMs: 1_000 });
    answerRelease();
    const attempts = (
      await Promise.all(
        (await manager.listDeliveries({ tenantId: 't' })).map((delivery) =>
          manager.getDeliveryAttempts(delivery.id),
        ),
      )
    ).flat();
    expect(attempts).toEqual([
      expect.objectContaining({
        statusCode: 0,
        error: 'request aborted: the sender is shutting down',
      }),
    ]);
  });

  it('wakes an idle pool immediately when work is queued, not at the next poll', async () => {
    const target = await receiver();
    const { manager } = await startManager({
      queuePollInterval: 20_000,
      queueIdleMaxInterval: 20_000,
    });
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    for (let round = 0; round < 3; round += 1) {
      const queuedAt = Date.now();
      await manager.queueDelivery({
        subscriptionId: subscription.id,
        eventType: 'a.b',
        payload: { round },
      });
      const [request] = (await target.waitForRequests(round + 1)).slice(round);
      expect(request!.receivedAt - queuedAt).toBeLessThan(500);
    }
  });

  it('notify() never blocks and is safe before start and after stop', async () => {
    const manager = new Manager(fastConfig(), new MockRepository());
    for (let i = 0; i < 10_000; i += 1) manager.notify();
    await manager.start();
    for (let i = 0; i < 10_000; i += 1) manager.notify();
    await manager.stop();
    for (let i = 0; i < 10_000; i += 1) manager.notify();
    expect(manager.isStarted()).toBe(false);
  });

  it('backs off polling while idle and returns to the base interval once work appears', async () => {
    const repository = new MockRepository();
    const claims: number[] = [];
    const claim = repository.claimPendingDeliveries.bind(repository);
    repository.claimPendingDeliveries = (limit, lease) => {
      claims.push(Date.now());
      return claim(limit, lease);
    };
    const target = await receiver();
    const { manager } = await startManager(
      { queuePollInterval: 20, queueIdleMaxInterval: 640, queueIdleBackoffFactor: 2 },
      repository,
    );
    await waitFor(() => claims.length >= 6, { timeoutMs: 5_000 });
    const gaps = claims.slice(1, 6).map((at, i) => at - claims[i]!);
    // 20, 40, 80, 160, 320 ms ±20 %: the idle interval keeps growing.
    expect(gaps[4]!).toBeGreaterThan(gaps[0]! * 4);
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    await manager.queueDelivery({ subscriptionId: subscription.id, eventType: 'a.b', payload: {} });
    await target.waitForRequests(1);
    const afterWork = claims.length;
    await waitFor(() => claims.length >= afterWork + 2, { timeoutMs: 5_000 });
    const reset = claims[afterWork + 1]! - claims[afterWork]!;
    expect(reset).toBeLessThan(200);
  });
});

describe('claims and bookkeeping', () => {
  it('never sends when the claim was lost before the attempt', async () => {
    const target = await receiver();
    let stolen = 0;
    class StealingRepository extends MockRepository {
      override async renewDeliveryClaim(
        deliveryId: string,
        claimToken: string,
        leaseMs: number,
      ): Promise<void> {
        // Another worker takes the delivery over between our claim and our send.
        this.unlockDelivery(deliveryId);
        stolen += (await super.claimPendingDeliveries(1, 60_000)).length;
        return super.renewDeliveryClaim(deliveryId, claimToken, leaseMs);
      }
    }
    const repository = new StealingRepository();
    // The smallest allowed lease leaves no safe window, so every attempt renews first.
    const { manager } = await startManager(
      { deliveryTimeoutMs: 1_000, claimLeaseMs: 16_000 },
      repository,
    );
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
    await waitFor(() => stolen === 1);
    // The thief holds the claim now; our manager must have dropped the delivery unsent.
    await waitFor(async () => (await repository.getDelivery(queued.id)).attemptCount === 2);
    await manager.stop();
    expect(target.requests).toHaveLength(0);
    expect(await manager.getDeliveryAttempts(queued.id)).toHaveLength(0);
  });

  it('keeps retrying the bookkeeping write until it lands, reporting each failure', async () => {
    const target = await receiver();
    const repository = new MockRepository();
    const { manager } = await startManager({}, repository);
    const errors: string[] = [];
    manager.on('worker.error', (event) => void errors.push(event.operation));
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    repository.failNext(
      'completeDeliveryAttempts',
      new HookdError('HOOKD_ERR_DATABASE', 'connection lost'),
      3,
    );
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'a.b',
      payload: {},
    });
    await waitFor(async () => (await repository.getDelivery(queued.id)).status === 'success');
    expect(errors.filter((operation) => operation === 'completeDeliveryAttempts')).toHaveLength(3);
    expect(target.requests).toHaveLength(1);
    expect(await manager.getDeliveryAttempts(queued.id)).toHaveLength(1);
  });

  it('survives claim failures and resumes delivering', async () => {
    const target = await receiver();
    const repository = new MockRepository();
    const { manager } = await startManager({}, repository);
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    repository.failNext('claimPendingDeliveries', new HookdError('HOOKD_ERR_DATABASE', 'down'), 2);
    const failure = nextEvent(
      manager,
      'worker.error',
      (event) => event.operation === 'claimPendingDeliveries',
    );
    await manager.queueDelivery({ subscriptionId: subscription.id, eventType: 'a.b', payload: {} });
    expect((await failure).error.message).toBe('down');
    await target.waitForRequests(1);
  });

  it('dead-letters, unsent, a delivery whose last attempt was interrupted by a crash', async () => {
    const target = await receiver();
    const repository = new MockRepository();
    const { manager } = await startManager({ defaultMaxRetries: 1 }, repository);
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    await manager.stop();
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'a.b',
      payload: {},
    });
    // A process claimed it for its only attempt and died: the claim is never completed.
    await repository.claimPendingDeliveries(1, 60_000);
    repository.unlockDelivery(queued.id); // the lease ran out
    const deadLettered = nextEvent(manager, 'delivery.dead_letter');
    await manager.start();
    const event = await deadLettered;
    expect(event.error).toBe('attempt budget used up by interrupted attempts');
    expect(await repository.getDelivery(queued.id)).toMatchObject({
      status: 'dead_letter',
      attemptCount: 1,
    });
    expect(target.requests).toHaveLength(0);
  });
});

describe('secrets', () => {
  it('resolves the secret per attempt through a custom resolver', async () => {
    const target = await receiver();
    const seen: string[] = [];
    const { manager } = await startManager({}, new MockRepository(), {
      secretResolver: (request) => {
        seen.push(`${request.tenantId}:${request.ref}:${request.deliveryId}`);
        return `resolved-${request.ref}`;
      },
    });
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: 'vault/ref/1',
      eventTypes: ['*'],
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'a.b',
      payload: {},
    });
    const [request] = await target.waitForRequests(1);
    const { verifyWebhook } = await import('../verify/index.js');
    expect(
      verifyWebhook({
        secret: 'resolved-vault/ref/1',
        headers: request!.headers,
        body: request!.body,
      }).id,
    ).toBe(queued.id);
    expect(seen).toEqual([`t:vault/ref/1:${queued.id}`]);
  });

  it.each([
    ['throws', () => Promise.reject(new Error('vault path secret/acme unavailable'))],
    ['returns empty', () => ''],
    ['hangs past the timeout', () => new Promise<string>(() => undefined)],
  ])('sends nothing when the resolver %s, recording an opaque error', async (_name, resolve) => {
    const target = await receiver();
    const { manager, repository } = await startManager(
      { defaultMaxRetries: 1, deliveryTimeoutMs: 1_000 },
      new MockRepository(),
      {
        secretResolver: resolve,
      },
    );
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: 'vault/ref',
      eventTypes: ['*'],
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'a.b',
      payload: {},
    });
    await waitFor(async () => (await repository.getDelivery(queued.id)).status === 'dead_letter');
    expect(target.requests).toHaveLength(0);
    const [attempt] = await manager.getDeliveryAttempts(queued.id);
    expect(attempt).toMatchObject({ statusCode: 0, error: 'webhook signing secret unavailable' });
  });

  it('refuses to sign when the delivery and its subscription belong to different tenants', async () => {
    const target = await receiver();
    const repository = new MockRepository();
    const { manager } = await startManager({ defaultMaxRetries: 1 }, repository);
    const subscription = await manager.createSubscription({
      tenantId: 'owner',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    const forged = await repository.createDelivery({
      id: 'dlv_forged_tenant_000000',
      subscriptionId: subscription.id,
      tenantId: 'intruder',
      eventType: 'a.b',
      body: '{}',
      maxAttempts: 1,
      attemptBudget: 1,
      url: null,
      secret: null,
      idempotencyKey: null,
    });
    manager.notify();
    await waitFor(async () => (await repository.getDelivery(forged.id)).status === 'dead_letter');
    expect(target.requests).toHaveLength(0);
    expect((await manager.getDeliveryAttempts(forged.id))[0]!.error).toBe(
      'webhook signing secret unavailable',
    );
  });
});
