/**
 * The engine changes made for throughput (issue 6) keep behaviour: coalesced subscription reads,
 * the dispatcher-level sender with its fast paths, the per-origin request cap, slots freed while
 * outcomes are recorded, queued deliveries parked when their circuit opens, claim batches that
 * carry each subscription and circuit once, and completions sent as JSON.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import type pg from 'pg';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { MockRepository, type DeliveryAttempt } from '../src/index.js';
import { createDeliveryAgent } from '../src/delivery/delivery-agent.js';
import { AbortHandle, sendWebhook } from '../src/delivery/http-sender.js';
import { captureHeaders, decodeCapped } from '../src/delivery/response-capture.js';
import { generateAttemptId } from '../src/ids.js';
import type { PgQueryConfig } from '../src/repository/pg-types.js';
import { LookupBatcher } from '../src/repository/postgres-lookup-batcher.js';
import { PostgresRepository } from '../src/repository/postgres-repository.js';
import type { AttemptCompletion } from '../src/repository/repository.js';
import { makeDelivery, makeSubscription } from './contract/repository-contract.js';
import { useHarness } from './helpers/harness.js';
import { startManager } from './helpers/manager.js';
import {
  createTestSchema,
  testPool,
  truncateSchema,
  type TestSchema,
} from './helpers/postgres-schema.js';
import { waitFor } from './helpers/wait.js';

const SECRET = 'engine-secret-123';
const { receiver } = useHarness();
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('LookupBatcher', () => {
  it('reads the keys of one turn in one statement, each distinct key once', async () => {
    const reads: Array<readonly string[]> = [];
    const batcher = new LookupBatcher<string>(async (keys) => {
      reads.push(keys);
      return new Map(keys.filter((key) => key !== 'missing').map((key) => [key, `v:${key}`]));
    });
    const results = await Promise.all(
      ['a', 'b', 'a', 'missing', 'c'].map((key) => batcher.get(key)),
    );
    expect(results).toEqual(['v:a', 'v:b', 'v:a', undefined, 'v:c']);
    expect(reads).toEqual([['a', 'b', 'missing', 'c']]);
  });

  it('holds later keys while maxInFlight reads run, then sends them together', async () => {
    const gates: Array<() => void> = [];
    const reads: Array<readonly string[]> = [];
    const batcher = new LookupBatcher<string>(
      async (keys) => {
        reads.push(keys);
        await new Promise<void>((resolve) => gates.push(resolve));
        return new Map(keys.map((key) => [key, key]));
      },
      { maxInFlight: 1 },
    );
    const first = batcher.get('a');
    await turn();
    const later = ['b', 'c', 'd'].map((key) => batcher.get(key));
    await turn();
    expect(reads).toEqual([['a']]);
    gates.shift()!();
    await first;
    await turn();
    await turn();
    expect(reads).toEqual([['a'], ['b', 'c', 'd']]);
    gates.shift()!();
    expect(await Promise.all(later)).toEqual(['b', 'c', 'd']);
    await batcher.drain();
  });

  it('rejects every caller of a failed read, and caps a statement at maxBatchSize keys', async () => {
    const reads: Array<readonly string[]> = [];
    const batcher = new LookupBatcher<string>(
      async (keys) => {
        reads.push(keys);
        throw new Error('database down');
      },
      { maxBatchSize: 2, maxInFlight: 5 },
    );
    const outcomes = await Promise.allSettled(['a', 'b', 'c'].map((key) => batcher.get(key)));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(reads).toEqual([['a', 'b'], ['c']]);
  });
});

describe('sendWebhook (dispatcher handler, fast paths)', () => {
  const agent = createDeliveryAgent({ allowPrivateDestinations: true });
  afterAll(() => agent.close());

  const send = (url: string, options: { timeoutMs?: number; abort?: AbortHandle } = {}) =>
    sendWebhook(agent.dispatcher, {
      url,
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
      timeoutMs: options.timeoutMs ?? 2_000,
      bodyLimit: 64,
      abort: options.abort,
    });

  it('captures headers and bodies exactly as captureHeaders and decodeCapped do', async () => {
    const long = 'v'.repeat(600);
    const bodies = [
      'ok',
      'é ✓ unicode',
      'x'.repeat(200),
      'é'.repeat(40),
      `nul${String.fromCharCode(0)}inside`,
    ];
    const headerSets: Array<Array<[string, string | string[]]>> = [
      [['x-plain', 'value']],
      [['x-long', long]],
      [['x-latin', 'caf\u00e9']],
      [['set-cookie', ['a=1', 'b=2']]],
      Array.from({ length: 40 }, (_, i): [string, string] => [
        `x-h${String(i).padStart(2, '0')}`,
        'y',
      ]),
    ];
    let current = { body: '', headers: [] as Array<[string, string | string[]]> };
    const target = await receiver((_request, response) => {
      for (const [name, value] of current.headers) response.setHeader(name, value);
      response.writeHead(200);
      response.end(Buffer.from(current.body, 'utf8'));
    });
    for (const body of bodies) {
      for (const headers of headerSets) {
        current = { body, headers };
        const ours = await send(target.url());
        const reference = await request(target.url(), {
          dispatcher: agent.dispatcher,
          method: 'POST',
          body: '{}',
        });
        const bytes = Buffer.from(await reference.body.arrayBuffer());
        expect(ours.statusCode).toBe(200);
        expect(ours.headers).toEqual(captureHeaders(reference.headers));
        expect(ours.body).toBe(decodeCapped(bytes, 64).text);
      }
    }
  });

  it('ignores 1xx answers and keeps the final one', async () => {
    const target = await receiver((_request, response) => {
      response.writeProcessing();
      response.writeHead(202, { 'x-final': 'yes' }).end('done');
    });
    const response = await send(target.url());
    expect(response.statusCode).toBe(202);
    expect(response.headers['x-final']).toBe('yes');
    expect(response.body).toBe('done');
  });

  it('reports an abort through its handle as aborted, before or during the request', async () => {
    const target = await receiver(() => new Promise<void>(() => undefined));
    const before = new AbortHandle();
    before.abort();
    expect((await send(target.url(), { abort: before })).failure).toBe('aborted');
    const during = new AbortHandle();
    const pending = send(target.url(), { abort: during });
    await target.waitForRequests(1);
    during.abort();
    const response = await pending;
    expect(response.failure).toBe('aborted');
    expect(response.error).toBe('request aborted: the sender is shutting down');
  });

  it('times out the whole exchange, and keeps the answer when only the body is late', async () => {
    const silent = await receiver(() => new Promise<void>(() => undefined));
    const timedOut = await send(silent.url(), { timeoutMs: 200 });
    expect(timedOut.failure).toBe('timeout');
    const trickle = await receiver((_request, response) => {
      response.writeHead(200);
      response.write('partial');
    });
    const late = await send(trickle.url(), { timeoutMs: 200 });
    expect(late.statusCode).toBe(200);
    expect(late.failure).toBeNull();
    expect(late.body).toBe('partial');
  });
});

describe('WorkerPool', () => {
  it('runs no more requests against one origin than the agent has connections for it', async () => {
    let concurrent = 0;
    let peak = 0;
    const slow = await receiver(async (_request, response) => {
      concurrent += 1;
      peak = Math.max(peak, concurrent);
      await sleep(150);
      concurrent -= 1;
      response.writeHead(200).end('ok');
    });
    const fast = await receiver();
    const { manager } = await startManager(
      { workerCount: 8, maxBatchSize: 4, claimLeaseMs: 600_000, deliveryTimeoutMs: 5_000 },
      new MockRepository(),
      { agentOptions: { connections: 2 } },
    );
    const [a, b] = await Promise.all(
      [slow, fast].map((target) =>
        manager.createSubscription({
          tenantId: 't',
          url: target.url('/hook'),
          secret: SECRET,
          eventTypes: ['*'],
        }),
      ),
    );
    const queue = (subscriptionId: string, count: number) =>
      manager.queueDeliveries({
        deliveries: Array.from({ length: count }, (_, i) => ({
          subscriptionId,
          eventType: 'a.b',
          payload: { i },
        })),
      });
    await queue(a!.id, 8);
    await queue(b!.id, 8);
    // The fast origin is served while the slow one works through its two connections.
    await fast.waitForRequests(8, { timeoutMs: 2_000 });
    expect(slow.requests.length).toBeLessThanOrEqual(4);
    await slow.waitForRequests(8, { timeoutMs: 5_000 });
    expect(peak).toBe(2);
  });

  it('keeps half the slots from an origin that hangs while other origins have work waiting', async () => {
    // The agent would carry 32 requests to one origin, far more than the 4 slots: without a
    // share, round-robin gives the hanging origin one more slot each round until it has them
    // all, and the healthy origin waits out the delivery timeout.
    const hanging = await receiver(() => new Promise<void>(() => undefined));
    const healthy = await receiver();
    const repository = new MockRepository();
    const { manager } = await startManager(
      { workerCount: 4, maxBatchSize: 8, claimLeaseMs: 600_000, deliveryTimeoutMs: 10_000 },
      repository,
    );
    const [stuck, fine] = await Promise.all(
      [hanging, healthy].map((target) =>
        manager.createSubscription({
          tenantId: 't',
          url: target.url('/hook'),
          secret: SECRET,
          eventTypes: ['*'],
        }),
      ),
    );
    await manager.queueDeliveries({
      deliveries: [stuck!, fine!].flatMap((subscription) =>
        Array.from({ length: 12 }, (_, i) => ({
          subscriptionId: subscription.id,
          eventType: 'a.b',
          payload: { i },
        })),
      ),
    });
    // Every healthy delivery is sent while the hanging origin's requests are still open.
    await healthy.waitForRequests(12, { timeoutMs: 5_000 });
    expect(hanging.requests).toHaveLength(2);
    await manager.stop({ timeoutMs: 500 });
  });

  it('gives back deliveries that waited too long for a slow origin, due again in turn', async () => {
    // Slow: each request takes a second, so the origin finishes nothing for long stretches.
    const slow = await receiver(async (_request, response) => {
      await sleep(1_000);
      response.writeHead(200).end('ok');
    });
    const repository = new MockRepository();
    const { manager } = await startManager(
      { workerCount: 4, maxBatchSize: 4, claimLeaseMs: 600_000, deliveryTimeoutMs: 5_000 },
      repository,
      { agentOptions: { connections: 1 } },
    );
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: slow.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    await manager.queueDeliveries({
      deliveries: Array.from({ length: 4 }, (_, i) => ({
        subscriptionId: subscription.id,
        eventType: 'a.b',
        payload: { i },
      })),
    });
    // One request at a time to that origin: the others wait, then go back, refunded, spread
    // one round apart instead of all due at once.
    const released = await waitFor(async () => {
      const deliveries = await repository.listDeliveries({ tenantId: 't' });
      const back = deliveries.filter(
        (delivery) => delivery.attemptCount === 0 && delivery.nextRetryAt !== null,
      );
      return back.length >= 2 ? back : null;
    });
    const due = released.map((delivery) => delivery.nextRetryAt!.getTime()).sort((a, b) => a - b);
    expect(due.at(-1)! - due[0]!).toBeGreaterThanOrEqual(900);
    await waitFor(
      async () => {
        const deliveries = await repository.listDeliveries({ tenantId: 't' });
        return deliveries.every((delivery) => delivery.status === 'success') ? deliveries : null;
      },
      { timeoutMs: 15_000 },
    );
    expect(slow.requests).toHaveLength(4);
  });

  it('frees a worker slot when the request is over, while the outcome is being recorded', async () => {
    let writesOpen: () => void = () => undefined;
    const writes = new Promise<void>((resolve) => (writesOpen = resolve));
    class SlowBookkeeping extends MockRepository {
      override async completeDeliveryAttempts(completions: readonly AttemptCompletion[]) {
        await writes;
        return super.completeDeliveryAttempts(completions);
      }
    }
    const target = await receiver();
    const repository = new SlowBookkeeping();
    const { manager } = await startManager(
      { workerCount: 1, maxBatchSize: 5, claimLeaseMs: 600_000, deliveryTimeoutMs: 5_000 },
      repository,
    );
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
    });
    await manager.queueDeliveries({
      deliveries: Array.from({ length: 3 }, (_, i) => ({
        subscriptionId: subscription.id,
        eventType: 'a.b',
        payload: { i },
      })),
    });
    // One slot: all three requests go out although no outcome could be written yet.
    await target.waitForRequests(3, { timeoutMs: 3_000 });
    const pending = await repository.listDeliveries({ tenantId: 't' });
    expect(pending.every((delivery) => delivery.status === 'pending')).toBe(true);
    writesOpen();
    await waitFor(async () => {
      const deliveries = await repository.listDeliveries({ tenantId: 't' });
      return deliveries.every((delivery) => delivery.status === 'success') ? deliveries : null;
    });
  });

  it('parks the deliveries it holds for an endpoint whose circuit it just opened', async () => {
    const target = await receiver((_request, response) => {
      response.writeHead(500).end('down');
    });
    const repository = new MockRepository();
    const { manager } = await startManager(
      {
        workerCount: 1,
        maxBatchSize: 10,
        claimLeaseMs: 600_000,
        deliveryTimeoutMs: 5_000,
        circuitBreakerThreshold: 2,
        circuitBreakerTimeoutMs: 60_000,
      },
      repository,
    );
    const subscription = await manager.createSubscription({
      tenantId: 't',
      url: target.url(),
      secret: SECRET,
      eventTypes: ['*'],
      retryPolicy: {
        maxAttempts: 5,
        initialBackoffMs: 60_000,
        maxBackoffMs: 60_000,
        backoffFactor: 1,
      },
    });
    await manager.queueDeliveries({
      deliveries: Array.from({ length: 10 }, (_, i) => ({
        subscriptionId: subscription.id,
        eventType: 'a.b',
        payload: { i },
      })),
    });
    await waitFor(async () => {
      const deliveries = await repository.listDeliveries({ tenantId: 't' });
      const untouched = deliveries.filter((delivery) => delivery.attemptCount === 0);
      return untouched.length >= 7 && untouched.every((delivery) => delivery.nextRetryAt)
        ? untouched
        : null;
    });
    await sleep(200);
    // Two failures opened the circuit; at most the request already under way went out after.
    expect(target.requests.length).toBeLessThanOrEqual(3);
    const parked = (await repository.listDeliveries({ tenantId: 't' })).filter(
      (delivery) => delivery.attemptCount === 0,
    );
    for (const delivery of parked) {
      expect(delivery.nextRetryAt!.getTime()).toBeGreaterThan(Date.now() + 30_000);
    }
  });
});

describe('PostgresRepository throughput paths', () => {
  let schema: TestSchema;
  let pool: pg.Pool;
  const opened: PostgresRepository[] = [];
  const repository = (connection: object = pool) => {
    const created = new PostgresRepository(connection, { tablePrefix: schema.prefix });
    opened.push(created);
    return created;
  };

  beforeAll(async () => {
    schema = await createTestSchema();
    pool = testPool();
  });
  afterAll(async () => {
    await pool?.end();
    await schema?.drop();
  });
  beforeEach(async () => {
    await truncateSchema(pool, schema.config);
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((created) => created.close()));
  });

  it('shares one read among concurrent getSubscription calls', async () => {
    const texts: string[] = [];
    const counting = {
      totalCount: 0,
      query: (config: PgQueryConfig) => {
        texts.push(config.text);
        return pool.query(config as pg.QueryConfig);
      },
      connect: () => pool.connect(),
    };
    const repo = repository(counting);
    const subscriptions = [makeSubscription(), makeSubscription()];
    for (const subscription of subscriptions) await repo.createSubscription(subscription);
    texts.length = 0;
    const ids = [subscriptions[0]!.id, subscriptions[1]!.id, subscriptions[0]!.id, 'sub_missing'];
    const results = await Promise.allSettled(ids.map((id) => repo.getSubscription(id)));
    expect(texts).toHaveLength(1);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value.id : 'rejected'))).toEqual([
      subscriptions[0]!.id,
      subscriptions[1]!.id,
      subscriptions[0]!.id,
      'rejected',
    ]);
    const rejected = results[3] as PromiseRejectedResult;
    expect((rejected.reason as { code: string }).code).toBe('HOOKD_ERR_SUBSCRIPTION_NOT_FOUND');
    expect((results[0] as PromiseFulfilledResult<{ secret: string }>).value.secret).toBe(
      subscriptions[0]!.secret,
    );
  });

  it('gives every claimed row its own subscription and circuit, each built once per batch', async () => {
    const repo = repository();
    const parkedUrl = 'https://hooks.example.com/parked';
    const a = makeSubscription({ url: parkedUrl, headers: { 'x-a': '1' } });
    const b = makeSubscription({ metadata: { team: 'b' } });
    await repo.createSubscription(a);
    await repo.createSubscription(b);
    await pool.query(
      `INSERT INTO ${schema.config.tables.circuitBreakerState}
         (endpoint, state, failure_count, opened_at, next_retry_at)
       VALUES ($1, 'open', 5, now(), now() + interval '1 hour')`,
      [parkedUrl],
    );
    const items = [a, b, a, b, a, null, b].map((subscription) => ({
      delivery: makeDelivery(subscription),
    }));
    await repo.createDeliveries(items);
    const claimed = await repo.claimPendingDeliveries(20, 60_000);
    expect(claimed).toHaveLength(items.length);
    for (const item of claimed) {
      if (item.subscriptionId === null) {
        expect(item.subscription).toBeNull();
        expect(item.circuit).toBeNull();
        continue;
      }
      expect(item.subscription!.id).toBe(item.subscriptionId);
      if (item.subscriptionId === a.id) {
        expect(item.subscription!.headers).toEqual({ 'x-a': '1' });
        expect(item.circuit).toMatchObject({ endpoint: parkedUrl, state: 'open', parking: true });
      } else {
        expect(item.subscription!.metadata).toEqual({ team: 'b' });
        expect(item.circuit).toBeNull();
      }
    }
    const ofA = claimed.filter((item) => item.subscriptionId === a.id);
    expect(new Set(ofA.map((item) => item.subscription)).size).toBe(1);
    expect(new Set(ofA.map((item) => item.circuit)).size).toBe(1);
  });

  it('stores bodies sent as one JSON array byte for byte, however they are escaped', async () => {
    const repo = repository();
    const subscription = makeSubscription();
    await repo.createSubscription(subscription);
    const bodies = [
      '{"quote":"a \\"b\\" c","backslash":"\\\\","tab":"\\t"}',
      '{"nul":"\\u0000","lone":"\\ud800","emoji":"😀","accent":"é"}',
      '{ "spaced" : [ 1 , 2 ] ,"big":12345678901234567890}',
      JSON.stringify({ text: 'line\nbreak "quoted" \\ slash', ünïcode: '✓' }),
    ];
    const created = await repo.createDeliveries(
      bodies.map((body) => ({ delivery: makeDelivery(subscription, { body }) })),
    );
    expect(created.every((result) => result.ok)).toBe(true);
    const claimed = await repo.claimPendingDeliveries(10, 60_000);
    const byId = new Map(claimed.map((item) => [item.id, item.body]));
    created.forEach((result, index) => {
      expect(byId.get(result.ok ? result.delivery.id : '')).toBe(bodies[index]);
    });
  });

  it('records attempts whose captured text needs escaping exactly as given', async () => {
    const repo = repository();
    const subscription = makeSubscription();
    await repo.createSubscription(subscription);
    const [created] = await repo.createDeliveries([{ delivery: makeDelivery(subscription) }]);
    const [claim] = await repo.claimPendingDeliveries(1, 60_000);
    const attempt: DeliveryAttempt = {
      id: generateAttemptId(),
      deliveryId: claim!.id,
      attemptNumber: 1,
      statusCode: 503,
      responseBody: 'quote " backslash \\ tab \t newline \n unicode é ✓ \uFFFD {"json": [1]}',
      responseHeaders: { 'x-odd': 'a "b" \\c', 'content-type': 'text/plain; charset=utf-8' },
      error: null,
      durationMs: 12.6,
      attemptedAt: new Date('2026-01-02T03:04:05.678Z'),
    };
    const [result] = await repo.completeDeliveryAttempts([
      {
        deliveryId: claim!.id,
        claimToken: claim!.claimToken,
        attempt,
        outcome: { status: 'retry', delayMs: 1_500 },
      },
    ]);
    expect(result!.applied).toBe(true);
    expect(result!.nextRetryAt!.getTime()).toBeGreaterThan(Date.now() + 500);
    const [stored] = await repo.getDeliveryAttempts(created!.ok ? created!.delivery.id : '');
    expect(stored).toEqual({ ...attempt, durationMs: 13 });
  });
});
