import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { HookdError, type HookdErrorCode } from '../../src/errors.js';
import { generateAttemptId, generateDeliveryId, generateSubscriptionId } from '../../src/ids.js';
import type { DeliveryAttempt, Subscription } from '../../src/models.js';
import { subscriptionRecord } from '../../src/records.js';
import type {
  AttemptCompletion,
  ClaimedDelivery,
  NewDelivery,
  Repository,
} from '../../src/repository/repository.js';
import type { CircuitSettings } from '../../src/retry/circuit-breaker.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The storage contract every `Repository` must keep, run against each implementation
 * (`memory.test.ts`, `postgres.test.ts`). Each test gets an empty store from the factory.
 */

/** A caller's open transaction, for `withClient`. */
export interface CallerTransaction {
  readonly client: unknown;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/** How the suite obtains repositories of one implementation. */
export interface RepositoryContractFactory {
  /** Once before the suite (create the schema, pools …). */
  setup?(): Promise<void>;
  /** A repository over an empty store, for one test. */
  create(): Promise<Repository>;
  /**
   * Another repository over the same store — another process, with its own connections — for
   * concurrency across instances. Closed by the suite.
   */
  createPeer(repository: Repository): Promise<Repository>;
  /** Opens a transaction on the implementation's kind of caller client. */
  openCallerTransaction(repository: Repository): Promise<CallerTransaction>;
  /** After each test (close what `create` opened). */
  destroy(repository: Repository): Promise<void>;
  /** Once after the suite. */
  teardown?(): Promise<void>;
}

const SETTINGS: CircuitSettings = { threshold: 3, timeoutMs: 60_000, halfOpenRequests: 2 };
const LEASE = 60_000;

let sequence = 0;

/** A subscription record as the manager would build it. */
export function makeSubscription(overrides: Partial<Subscription> = {}): Subscription {
  sequence += 1;
  const now = new Date();
  return subscriptionRecord({
    id: generateSubscriptionId(),
    tenantId: 'tenant-a',
    url: `https://hooks.example.com/${sequence}`,
    status: 'active',
    eventTypes: ['order.*'],
    filters: {},
    retryPolicy: { maxAttempts: 3, initialBackoffMs: 1000, maxBackoffMs: 60_000, backoffFactor: 2 },
    headers: {},
    metadata: {},
    createdAt: now,
    updatedAt: now,
    ...overrides,
    secret: overrides.secret ?? 'whsec_0123456789',
  });
}

/** A new delivery for `subscription` (or an inline one when `subscription` is null). */
export function makeDelivery(
  subscription: Subscription | null,
  overrides: Partial<NewDelivery> = {},
): NewDelivery {
  return {
    id: generateDeliveryId(),
    subscriptionId: subscription?.id ?? null,
    tenantId: subscription?.tenantId ?? 'tenant-a',
    eventType: 'order.created',
    body: '{"orderId":1}',
    maxAttempts: 3,
    attemptBudget: 3,
    url: subscription ? null : 'https://inline.example.com/hook',
    secret: subscription ? null : 'inline-secret',
    idempotencyKey: null,
    ...overrides,
  };
}

function makeAttempt(deliveryId: string, attemptNumber: number, statusCode = 500): DeliveryAttempt {
  return {
    id: generateAttemptId(),
    deliveryId,
    attemptNumber,
    statusCode,
    responseBody: 'nope',
    responseHeaders: { 'content-type': 'text/plain' },
    error: null,
    durationMs: 12,
    attemptedAt: new Date(),
  };
}

async function expectCode(promise: Promise<unknown>, code: HookdErrorCode): Promise<HookdError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(HookdError);
  expect((caught as HookdError).code).toBe(code);
  return caught as HookdError;
}

/** Registers the whole contract for one implementation. */
export function describeRepositoryContract(name: string, factory: RepositoryContractFactory): void {
  describe(`Repository contract: ${name}`, () => {
    let repo: Repository;
    const peers: Repository[] = [];

    beforeAll(async () => {
      await factory.setup?.();
    });
    afterAll(async () => {
      await factory.teardown?.();
    });
    beforeEach(async () => {
      repo = await factory.create();
    });
    afterEach(async () => {
      await Promise.all(peers.splice(0).map((peer) => peer.close()));
      await factory.destroy(repo);
    });

    const peer = async () => {
      const created = await factory.createPeer(repo);
      if (created !== repo) peers.push(created);
      return created;
    };
    const subscription = async (overrides: Partial<Subscription> = {}) => {
      const created = makeSubscription(overrides);
      await repo.createSubscription(created);
      return created;
    };
    const delivery = async (sub: Subscription | null, overrides: Partial<NewDelivery> = {}) =>
      repo.createDelivery(makeDelivery(sub, overrides));
    const claimOne = async (id: string, leaseMs = LEASE): Promise<ClaimedDelivery> => {
      const claimed = await repo.claimPendingDeliveries(100, leaseMs);
      const item = claimed.find((entry) => entry.id === id);
      expect(item, `delivery ${id} claimed`).toBeDefined();
      return item!;
    };
    const complete = (item: ClaimedDelivery, outcome: AttemptCompletion['outcome'], code = 500) =>
      repo.completeDeliveryAttempts([
        {
          deliveryId: item.id,
          claimToken: item.claimToken,
          attempt: makeAttempt(item.id, item.attemptCount, code),
          outcome,
        },
      ]);

    // ── Subscriptions ──────────────────────────────────────────────────────────────────────

    describe('subscriptions', () => {
      it('stores a subscription and returns it unchanged, secret included', async () => {
        const created = makeSubscription({
          eventTypes: ['order.*', 'invoice.paid'],
          filters: { region: 'eu' },
          headers: { 'X-Team': 'billing' },
          metadata: { plan: 'pro', limits: { rps: 5 }, tags: ['a', 'b'], n: 1.5 },
          retryPolicy: {
            maxAttempts: 7,
            initialBackoffMs: 250,
            maxBackoffMs: 90_000,
            backoffFactor: 1.5,
          },
        });
        await repo.createSubscription(created);
        const read = await repo.getSubscription(created.id);
        expect(read).toEqual(created);
        expect(read.secret).toBe(created.secret);
        expect(read.createdAt.getTime()).toBe(created.createdAt.getTime());
        expect(JSON.stringify(read)).not.toContain(created.secret);
        const byUrl = await repo.getSubscriptionByTenantAndUrl(created.tenantId, created.url);
        expect(byUrl.id).toBe(created.id);
      });

      it('refuses a duplicate id and a second subscription of a tenant for the same URL', async () => {
        const first = await subscription();
        await expectCode(
          repo.createSubscription(
            makeSubscription({ id: first.id, url: 'https://other.example/x' }),
          ),
          'HOOKD_ERR_DUPLICATE_SUBSCRIPTION',
        );
        const error = await expectCode(
          repo.createSubscription(makeSubscription({ url: first.url })),
          'HOOKD_ERR_DUPLICATE_SUBSCRIPTION',
        );
        expect(error.field).toBe('url');
        expect(error.details?.['subscriptionId']).toBe(first.id);
        // Another tenant may use the same URL.
        await repo.createSubscription(makeSubscription({ url: first.url, tenantId: 'tenant-b' }));
      });

      it('reports missing subscriptions as not found', async () => {
        await expectCode(repo.getSubscription('sub_missing'), 'HOOKD_ERR_SUBSCRIPTION_NOT_FOUND');
        await expectCode(
          repo.getSubscriptionByTenantAndUrl('tenant-a', 'https://nowhere.example'),
          'HOOKD_ERR_SUBSCRIPTION_NOT_FOUND',
        );
        await expectCode(
          repo.updateSubscription(makeSubscription()),
          'HOOKD_ERR_SUBSCRIPTION_NOT_FOUND',
        );
        await expectCode(
          repo.deleteSubscription('sub_missing'),
          'HOOKD_ERR_SUBSCRIPTION_NOT_FOUND',
        );
      });

      it('overwrites the mutable fields on update and refuses a URL collision', async () => {
        const first = await subscription();
        const second = await subscription();
        const changed = subscriptionRecord({
          ...first,
          secret: 'whsec_rotated_secret',
          url: 'https://moved.example.com/hook',
          status: 'paused',
          eventTypes: ['invoice.*'],
          filters: { tier: 'gold' },
          headers: { 'X-A': '1' },
          metadata: { updated: true },
          updatedAt: new Date(first.updatedAt.getTime() + 5_000),
        });
        await repo.updateSubscription(changed);
        const read = await repo.getSubscription(first.id);
        expect(read).toEqual(changed);
        expect(read.secret).toBe('whsec_rotated_secret');
        const collision = await expectCode(
          repo.updateSubscription(subscriptionRecord({ ...second, url: changed.url })),
          'HOOKD_ERR_DUPLICATE_SUBSCRIPTION',
        );
        expect(collision.details?.['subscriptionId']).toBe(first.id);
        expect((await repo.getSubscription(second.id)).url).toBe(second.url);
      });

      it('deletes a subscription with its deliveries, their attempts and its idempotency keys', async () => {
        const sub = await subscription();
        const kept = await subscription();
        const doomed = await repo.createDelivery(makeDelivery(sub, { idempotencyKey: 'k' }), {
          idempotency: { key: 'k', scope: sub.id, ttlMs: 3_600_000 },
        });
        const survivor = await delivery(kept);
        await repo.createDeliveryAttempt(makeAttempt(doomed.id, 1));
        await repo.deleteSubscription(sub.id);
        await expectCode(repo.getSubscription(sub.id), 'HOOKD_ERR_SUBSCRIPTION_NOT_FOUND');
        await expectCode(repo.getDelivery(doomed.id), 'HOOKD_ERR_DELIVERY_NOT_FOUND');
        expect(await repo.getDeliveryAttempts(doomed.id)).toEqual([]);
        expect(await repo.checkIdempotency('k', sub.id)).toBe(false);
        expect((await repo.getDelivery(survivor.id)).id).toBe(survivor.id);
      });

      it('lists newest first with every filter, and refuses an unscoped list', async () => {
        const base = Date.now() - 60_000;
        const at = (offset: number) => new Date(base + offset);
        const a = await subscription({ createdAt: at(1_000), eventTypes: ['order.*'] });
        const b = await subscription({ createdAt: at(2_000), eventTypes: ['invoice.paid'] });
        const c = await subscription({
          createdAt: at(3_000),
          eventTypes: ['order.*', 'invoice.paid'],
          status: 'paused',
        });
        const other = await subscription({ createdAt: at(4_000), tenantId: 'tenant-b' });
        await expectCode(repo.listSubscriptions({}), 'HOOKD_ERR_TENANT_SCOPE_REQUIRED');
        await expectCode(
          repo.listSubscriptions({ tenantId: '' }),
          'HOOKD_ERR_TENANT_SCOPE_REQUIRED',
        );
        const ids = async (filter: Parameters<Repository['listSubscriptions']>[0]) =>
          (await repo.listSubscriptions(filter)).map((s) => s.id);
        expect(await ids({ tenantId: 'tenant-a' })).toEqual([c.id, b.id, a.id]);
        expect(await ids({ allTenants: true })).toEqual([other.id, c.id, b.id, a.id]);
        expect(await ids({ tenantId: 'tenant-a', status: 'active' })).toEqual([b.id, a.id]);
        expect(await ids({ tenantId: 'tenant-a', eventTypes: ['invoice.paid'] })).toEqual([
          c.id,
          b.id,
        ]);
        expect(await ids({ tenantId: 'tenant-a', limit: 2 })).toEqual([c.id, b.id]);
        expect(await ids({ tenantId: 'tenant-a', limit: 2, offset: 2 })).toEqual([a.id]);
        expect(await ids({ tenantId: 'tenant-a', offset: 1 })).toEqual([b.id, a.id]);
      });
    });

    // ── Deliveries ─────────────────────────────────────────────────────────────────────────

    describe('deliveries', () => {
      it('stores a pending delivery due now and returns its payload', async () => {
        const sub = await subscription();
        const body = '{"z":1,"a":{"nested":[1,2,3]},"text":"caf\\u00e9 ☕"}';
        const created = await delivery(sub, { body, idempotencyKey: null });
        expect(created).toMatchObject({
          subscriptionId: sub.id,
          tenantId: sub.tenantId,
          status: 'pending',
          attemptCount: 0,
          maxAttempts: 3,
          attemptBudget: 3,
          nextRetryAt: null,
          completedAt: null,
          url: null,
        });
        expect(created.payload).toEqual(JSON.parse(body));
        const read = await repo.getDelivery(created.id);
        expect(read).toEqual(created);
        expect(Math.abs(read.createdAt.getTime() - Date.now())).toBeLessThan(30_000);
      });

      it('keeps the body byte for byte: key order and big integers survive', async () => {
        const sub = await subscription();
        const body = '{"zeta":1,"alpha":12345678901234567890123,"list":[3,1,2],"x":1.10}';
        const created = await delivery(sub, { body });
        const [claimed] = await repo.claimPendingDeliveries(1, LEASE);
        expect(claimed!.id).toBe(created.id);
        expect(claimed!.body).toBe(body);
        expect(Object.keys((await repo.getDelivery(created.id)).payload)).toEqual([
          'zeta',
          'alpha',
          'list',
          'x',
        ]);
      });

      it('stores inline deliveries with their URL and secret', async () => {
        const created = await delivery(null, { traceContext: null });
        expect(created.subscriptionId).toBeNull();
        expect(created.url).toBe('https://inline.example.com/hook');
        const claimed = await claimOne(created.id);
        expect(claimed.inlineSecret).toBe('inline-secret');
        expect(claimed.subscription).toBeNull();
      });

      it('refuses a delivery for a missing subscription', async () => {
        const ghost = makeSubscription();
        await expectCode(delivery(ghost), 'HOOKD_ERR_SUBSCRIPTION_NOT_FOUND');
        expect((await repo.getQueueDepth()).pending).toBe(0);
      });

      it('reports missing deliveries as not found', async () => {
        await expectCode(repo.getDelivery('dlv_missing'), 'HOOKD_ERR_DELIVERY_NOT_FOUND');
        await expectCode(repo.deleteDelivery('dlv_missing'), 'HOOKD_ERR_DELIVERY_NOT_FOUND');
        await expectCode(repo.moveToDeadLetter('dlv_missing', 'x'), 'HOOKD_ERR_DELIVERY_NOT_FOUND');
        const sub = await subscription();
        const existing = await delivery(sub);
        await expectCode(
          repo.updateDelivery({ ...existing, id: 'dlv_missing' }),
          'HOOKD_ERR_DELIVERY_NOT_FOUND',
        );
        await expectCode(repo.requeueDeadLetter('dlv_missing'), 'HOOKD_ERR_DELIVERY_NOT_FOUND');
        await expectCode(repo.retryDelivery('dlv_missing'), 'HOOKD_ERR_DELIVERY_NOT_FOUND');
      });

      it('overwrites the state columns on update', async () => {
        const sub = await subscription();
        const created = await delivery(sub);
        const completedAt = new Date(Date.now() - 1_000);
        await repo.updateDelivery({
          ...created,
          status: 'failed',
          attemptCount: 2,
          maxAttempts: 5,
          attemptBudget: 4,
          nextRetryAt: null,
          completedAt,
        });
        expect(await repo.getDelivery(created.id)).toMatchObject({
          status: 'failed',
          attemptCount: 2,
          maxAttempts: 5,
          attemptBudget: 4,
          completedAt,
        });
      });

      it('deletes a delivery with its attempts, and dead-letters one', async () => {
        const sub = await subscription();
        const first = await delivery(sub);
        const second = await delivery(sub);
        await repo.createDeliveryAttempt(makeAttempt(first.id, 1));
        await repo.deleteDelivery(first.id);
        await expectCode(repo.getDelivery(first.id), 'HOOKD_ERR_DELIVERY_NOT_FOUND');
        expect(await repo.getDeliveryAttempts(first.id)).toEqual([]);
        await repo.moveToDeadLetter(second.id, 'gave up');
        const dead = await repo.getDelivery(second.id);
        expect(dead.status).toBe('dead_letter');
        expect(dead.completedAt).toBeInstanceOf(Date);
        expect(await repo.claimPendingDeliveries(10, LEASE)).toEqual([]);
      });

      it('lists newest first with every filter applied, dates included', async () => {
        await expectCode(repo.listDeliveries({}), 'HOOKD_ERR_TENANT_SCOPE_REQUIRED');
        const sub = await subscription();
        const otherSub = await subscription();
        const first = await delivery(sub, { eventType: 'order.created' });
        await waitFor(async () => Date.now() > first.createdAt.getTime() + 2);
        const second = await delivery(otherSub, { eventType: 'order.updated' });
        await waitFor(async () => Date.now() > second.createdAt.getTime() + 2);
        const third = await delivery(sub, { eventType: 'order.updated' });
        await repo.moveToDeadLetter(third.id, 'x');
        const foreign = await delivery(await subscription({ tenantId: 'tenant-b' }));
        const ids = async (filter: Parameters<Repository['listDeliveries']>[0]) =>
          (await repo.listDeliveries(filter)).map((d) => d.id);
        expect(await ids({ tenantId: 'tenant-a' })).toEqual([third.id, second.id, first.id]);
        expect(await ids({ allTenants: true })).toContain(foreign.id);
        expect(await ids({ tenantId: 'tenant-a', subscriptionId: sub.id })).toEqual([
          third.id,
          first.id,
        ]);
        expect(await ids({ tenantId: 'tenant-a', status: 'dead_letter' })).toEqual([third.id]);
        expect(await ids({ tenantId: 'tenant-a', eventType: 'order.updated' })).toEqual([
          third.id,
          second.id,
        ]);
        expect(await ids({ tenantId: 'tenant-a', createdAfter: first.createdAt })).toEqual([
          third.id,
          second.id,
        ]);
        expect(await ids({ tenantId: 'tenant-a', createdBefore: second.createdAt })).toEqual([
          first.id,
        ]);
        expect(
          await ids({
            tenantId: 'tenant-a',
            createdAfter: first.createdAt,
            createdBefore: third.createdAt,
          }),
        ).toEqual([second.id]);
        expect(await ids({ tenantId: 'tenant-a', limit: 1, offset: 1 })).toEqual([second.id]);
        const [listed] = await repo.listDeliveries({ tenantId: 'tenant-a', limit: 1 });
        expect(listed!.payload).toEqual({ orderId: 1 });
      });
    });

    // ── Claims ─────────────────────────────────────────────────────────────────────────────

    describe('claims', () => {
      it('validates limit and lease', async () => {
        await expectCode(repo.claimPendingDeliveries(0, LEASE), 'HOOKD_ERR_INVALID_ARGUMENT');
        await expectCode(repo.claimPendingDeliveries(1.5, LEASE), 'HOOKD_ERR_INVALID_ARGUMENT');
        await expectCode(repo.claimPendingDeliveries(1, 0), 'HOOKD_ERR_INVALID_ARGUMENT');
        await expectCode(repo.claimPendingDeliveries(1, -5), 'HOOKD_ERR_INVALID_ARGUMENT');
      });

      it('claims oldest due first, counts the attempt and attaches what a worker needs', async () => {
        const sub = await subscription();
        const created = [];
        for (let i = 0; i < 3; i += 1) {
          const item = await delivery(sub, { body: `{"n":${i}}`, traceContext: `trace-${i}` });
          created.push(item);
          await waitFor(async () => Date.now() > item.createdAt.getTime() + 1);
        }
        const before = Date.now();
        const first = await repo.claimPendingDeliveries(2, LEASE);
        expect(first.map((item) => item.id)).toEqual([created[0]!.id, created[1]!.id]);
        const [head] = first;
        expect(head!.attemptCount).toBe(1);
        expect(head!.claimToken).toEqual(expect.any(String));
        expect(head!.claimToken.length).toBeGreaterThan(0);
        expect(head!.body).toBe('{"n":0}');
        expect(head!.traceContext).toBe('trace-0');
        expect(head!.subscription).toEqual(sub);
        expect(head!.circuit).toBeNull();
        expect(head!.nextRetryAt!.getTime()).toBeGreaterThan(before + LEASE - 30_000);
        const rest = await repo.claimPendingDeliveries(10, LEASE);
        expect(rest.map((item) => item.id)).toEqual([created[2]!.id]);
        expect(await repo.claimPendingDeliveries(10, LEASE)).toEqual([]);
        expect((await repo.getDelivery(head!.id)).attemptCount).toBe(1);
      });

      it('never hands one delivery to two of 16 concurrent claimers (240 rows)', async () => {
        const sub = await subscription();
        const items = Array.from({ length: 240 }, (_, i) => ({
          delivery: makeDelivery(sub, { body: `{"i":${i}}` }),
        }));
        for (let i = 0; i < items.length; i += 80) {
          const results = await repo.createDeliveries(items.slice(i, i + 80));
          expect(results.every((result) => result.ok)).toBe(true);
        }
        const others = [await peer(), await peer()];
        const claimers = [repo, ...others];
        const seen: string[] = [];
        await Promise.all(
          Array.from({ length: 16 }, async (_, index) => {
            const source = claimers[index % claimers.length]!;
            for (;;) {
              const batch = await source.claimPendingDeliveries(7, LEASE);
              if (batch.length === 0) return;
              seen.push(...batch.map((item) => item.id));
            }
          }),
        );
        expect(seen).toHaveLength(240);
        expect(new Set(seen).size).toBe(240);
      });

      it('renews a held claim and refuses a stale token', async () => {
        const sub = await subscription();
        const created = await delivery(sub);
        const claimed = await claimOne(created.id, 30_000);
        await repo.renewDeliveryClaim(created.id, claimed.claimToken, 120_000);
        const renewed = await repo.getDelivery(created.id);
        expect(renewed.nextRetryAt!.getTime()).toBeGreaterThan(claimed.nextRetryAt!.getTime());
        await expectCode(
          repo.renewDeliveryClaim(created.id, 'stale-token', LEASE),
          'HOOKD_ERR_DELIVERY_CLAIM_LOST',
        );
        await expectCode(
          repo.renewDeliveryClaim(created.id, claimed.claimToken, 0),
          'HOOKD_ERR_INVALID_ARGUMENT',
        );
      });

      it('releases a claim: due now at its place, later, or at a time; refunds on request', async () => {
        const sub = await subscription();
        const now = await delivery(sub);
        const later = await delivery(sub);
        const at = await delivery(sub);
        const claimed = await repo.claimPendingDeliveries(3, LEASE);
        const token = (id: string) => claimed.find((item) => item.id === id)!.claimToken;
        const retryAt = new Date(Date.now() + 3_600_000);
        await repo.releaseDeliveryClaim({
          deliveryId: now.id,
          claimToken: token(now.id),
          retryAt: null,
          refundAttempt: true,
        });
        const released = await repo.releaseDeliveryClaims([
          {
            deliveryId: later.id,
            claimToken: token(later.id),
            retryAt: { delayMs: 3_600_000 },
            refundAttempt: false,
          },
          { deliveryId: at.id, claimToken: token(at.id), retryAt, refundAttempt: true },
          { deliveryId: at.id, claimToken: 'stale', retryAt: null, refundAttempt: true },
        ]);
        expect(released).toBe(2);
        expect(await repo.getDelivery(now.id)).toMatchObject({
          attemptCount: 0,
          nextRetryAt: null,
        });
        expect((await repo.getDelivery(later.id)).attemptCount).toBe(1);
        expect((await repo.getDelivery(at.id)).nextRetryAt!.getTime()).toBe(retryAt.getTime());
        const again = await repo.claimPendingDeliveries(10, LEASE);
        expect(again.map((item) => item.id)).toEqual([now.id]);
        await expectCode(
          repo.releaseDeliveryClaim({
            deliveryId: later.id,
            claimToken: token(later.id),
            retryAt: null,
            refundAttempt: false,
          }),
          'HOOKD_ERR_DELIVERY_CLAIM_LOST',
        );
      });

      it('lets an expired lease be reclaimed and fences the stale holder out', async () => {
        const sub = await subscription();
        const created = await delivery(sub);
        const stale = await claimOne(created.id, 150);
        const fresh = await waitFor(
          async () =>
            (await repo.claimPendingDeliveries(10, LEASE)).find((i) => i.id === created.id),
          { timeoutMs: 10_000, intervalMs: 25 },
        );
        expect(fresh.claimToken).not.toBe(stale.claimToken);
        expect(fresh.attemptCount).toBe(2);
        await expectCode(
          repo.renewDeliveryClaim(created.id, stale.claimToken, LEASE),
          'HOOKD_ERR_DELIVERY_CLAIM_LOST',
        );
        await expectCode(
          repo.releaseDeliveryClaim({
            deliveryId: created.id,
            claimToken: stale.claimToken,
            retryAt: null,
            refundAttempt: true,
          }),
          'HOOKD_ERR_DELIVERY_CLAIM_LOST',
        );
        const [result] = await complete(stale, { status: 'success' });
        expect(result).toEqual({ applied: false, nextRetryAt: null });
        // The stale attempt is still on record; the delivery belongs to the fresh claim.
        expect((await repo.getDeliveryAttempts(created.id)).map((a) => a.attemptNumber)).toEqual([
          1,
        ]);
        expect((await repo.getDelivery(created.id)).status).toBe('pending');
        const [won] = await complete(fresh, { status: 'success' }, 200);
        expect(won!.applied).toBe(true);
        expect((await repo.getDelivery(created.id)).status).toBe('success');
      });

      it('records completions in input order with their outcomes', async () => {
        const sub = await subscription();
        const [a, b, c, d] = [
          await delivery(sub),
          await delivery(sub),
          await delivery(sub),
          await delivery(sub),
        ];
        const claimed = await repo.claimPendingDeliveries(10, LEASE);
        const held = (id: string) => claimed.find((item) => item.id === id)!;
        const before = Date.now();
        const results = await repo.completeDeliveryAttempts([
          {
            deliveryId: a.id,
            claimToken: held(a.id).claimToken,
            attempt: makeAttempt(a.id, 1, 200),
            outcome: { status: 'success' },
          },
          {
            deliveryId: b.id,
            claimToken: held(b.id).claimToken,
            attempt: makeAttempt(b.id, 1, 503),
            outcome: { status: 'retry', delayMs: 120_000 },
          },
          {
            deliveryId: c.id,
            claimToken: 'stale',
            attempt: makeAttempt(c.id, 1, 999),
            outcome: { status: 'success' },
          },
          {
            deliveryId: d.id,
            claimToken: held(d.id).claimToken,
            attempt: null,
            outcome: { status: 'dead_letter' },
            refundAttempt: true,
          },
        ]);
        expect(results.map((result) => result.applied)).toEqual([true, true, false, true]);
        expect(results[0]!.nextRetryAt).toBeNull();
        const retryAt = results[1]!.nextRetryAt!.getTime();
        expect(retryAt).toBeGreaterThan(before + 120_000 - 30_000);
        expect(retryAt).toBeLessThan(Date.now() + 120_000 + 30_000);
        expect(await repo.getDelivery(a.id)).toMatchObject({ status: 'success' });
        expect((await repo.getDelivery(a.id)).completedAt).toBeInstanceOf(Date);
        expect(await repo.getDelivery(b.id)).toMatchObject({
          status: 'pending',
          attemptCount: 1,
          completedAt: null,
        });
        expect((await repo.getDelivery(b.id)).nextRetryAt!.getTime()).toBe(retryAt);
        expect(await repo.getDelivery(c.id)).toMatchObject({ status: 'pending' });
        expect(await repo.getDelivery(d.id)).toMatchObject({
          status: 'dead_letter',
          attemptCount: 0,
        });
        // The attempt of a lost claim is kept; exotic status codes are stored as sent.
        expect((await repo.getDeliveryAttempts(c.id))[0]!.statusCode).toBe(999);
        expect(await repo.getDeliveryAttempts(d.id)).toEqual([]);
        // A retry is not due before its time.
        expect(await repo.claimPendingDeliveries(10, LEASE)).toEqual([]);
        expect(await repo.completeDeliveryAttempts([])).toEqual([]);
      });

      it('keeps a next attempt for a retry that asks for one, even after the last attempt', async () => {
        const sub = await subscription();
        const last = await delivery(sub, { maxAttempts: 1, attemptBudget: 1 });
        const early = await delivery(sub, { maxAttempts: 3, attemptBudget: 3 });
        const claimed = await repo.claimPendingDeliveries(10, LEASE);
        const held = (id: string) => claimed.find((item) => item.id === id)!;
        const results = await repo.completeDeliveryAttempts(
          [last, early].map((created) => ({
            deliveryId: created.id,
            claimToken: held(created.id).claimToken,
            attempt: makeAttempt(created.id, 1, 0),
            outcome: { status: 'retry', delayMs: 0, ensureNextAttempt: true },
          })),
        );
        expect(results.map((result) => result.applied)).toEqual([true, true]);
        expect(await repo.getDelivery(last.id)).toMatchObject({
          status: 'pending',
          attemptCount: 1,
          maxAttempts: 2,
        });
        // Attempts were left: nothing to raise.
        expect((await repo.getDelivery(early.id)).maxAttempts).toBe(3);
        const again = await claimOne(last.id);
        expect(again).toMatchObject({ attemptCount: 2, maxAttempts: 2 });
      });

      it('reports a completion written again after its answer was lost as applied, once', async () => {
        const sub = await subscription();
        const [succeeded, retried] = [await delivery(sub), await delivery(sub)];
        const claimed = await repo.claimPendingDeliveries(10, LEASE);
        const held = (id: string) => claimed.find((item) => item.id === id)!;
        const completions: AttemptCompletion[] = [
          {
            deliveryId: succeeded.id,
            claimToken: held(succeeded.id).claimToken,
            attempt: makeAttempt(succeeded.id, 1, 200),
            outcome: { status: 'success' },
          },
          {
            deliveryId: retried.id,
            claimToken: held(retried.id).claimToken,
            attempt: makeAttempt(retried.id, 1, 503),
            outcome: { status: 'retry', delayMs: 120_000 },
          },
        ];
        const first = await repo.completeDeliveryAttempts(completions);
        const before = await Promise.all([
          repo.getDelivery(succeeded.id),
          repo.getDelivery(retried.id),
        ]);
        // The same write again, as the completion writer sends it when the first answer was lost.
        const again = await repo.completeDeliveryAttempts(completions);
        expect(again).toEqual(first);
        expect(again.map((result) => result.applied)).toEqual([true, true]);
        expect(again[1]!.nextRetryAt).toEqual(before[1].nextRetryAt);
        expect(
          await Promise.all([repo.getDelivery(succeeded.id), repo.getDelivery(retried.id)]),
        ).toEqual(before);
        for (const { id } of [succeeded, retried]) {
          expect(await repo.getDeliveryAttempts(id)).toHaveLength(1);
        }
        // Another claim's token is still refused.
        const [stale] = await repo.completeDeliveryAttempts([
          { ...completions[0]!, claimToken: 'another-claim' },
        ]);
        expect(stale).toEqual({ applied: false, nextRetryAt: null });
      });

      it('redrives a dead letter with a fresh budget each time; attempt numbers never repeat', async () => {
        const sub = await subscription();
        const created = await delivery(sub, { maxAttempts: 3, attemptBudget: 3 });
        const numbers: number[] = [];
        const maxima: number[] = [];
        for (let round = 0; round < 4; round += 1) {
          for (;;) {
            const item = await claimOne(created.id);
            numbers.push(item.attemptCount);
            const last = item.attemptCount >= item.maxAttempts;
            await complete(
              item,
              last ? { status: 'dead_letter' } : { status: 'retry', delayMs: 0 },
            );
            if (last) break;
          }
          expect((await repo.getDelivery(created.id)).status).toBe('dead_letter');
          if (round < 3) maxima.push((await repo.requeueDeadLetter(created.id)).maxAttempts);
        }
        expect(maxima).toEqual([6, 9, 12]);
        expect(numbers).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        const attempts = await repo.getDeliveryAttempts(created.id);
        expect(attempts.map((a) => a.attemptNumber)).toEqual(numbers);
      });

      it('lets exactly one of two concurrent redrives win', async () => {
        const sub = await subscription();
        const created = await delivery(sub);
        await repo.moveToDeadLetter(created.id, 'x');
        const other = await peer();
        const outcomes = await Promise.allSettled([
          repo.requeueDeadLetter(created.id),
          other.requeueDeadLetter(created.id),
        ]);
        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
        const loser = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
        expect((loser.reason as HookdError).code).toBe('HOOKD_ERR_DELIVERY_NOT_DEAD_LETTER');
        const requeued = await repo.getDelivery(created.id);
        expect(requeued).toMatchObject({ status: 'pending', maxAttempts: 3, completedAt: null });
        await expectCode(repo.requeueDeadLetter(created.id), 'HOOKD_ERR_DELIVERY_NOT_DEAD_LETTER');
        await expect(repo.requeueDeadLetter(created.id)).rejects.toMatchObject({
          field: 'deliveryId',
        });
      });

      it('retries deliveries by the rules of retryDelivery', async () => {
        const sub = await subscription();
        const done = await delivery(sub);
        await complete(await claimOne(done.id), { status: 'success' }, 200);
        await expectCode(repo.retryDelivery(done.id), 'HOOKD_ERR_CANNOT_RETRY_SUCCESSFUL');
        await expect(repo.retryDelivery(done.id)).rejects.toMatchObject({ field: 'deliveryId' });

        const busy = await delivery(sub);
        await claimOne(busy.id);
        await expectCode(repo.retryDelivery(busy.id), 'HOOKD_ERR_DELIVERY_IN_PROGRESS');

        const dead = await delivery(sub, { maxAttempts: 1, attemptBudget: 1 });
        await complete(await claimOne(dead.id), { status: 'dead_letter' });
        const retried = await repo.retryDelivery(dead.id);
        expect(retried).toMatchObject({ status: 'pending', maxAttempts: 2, completedAt: null });
        expect((await claimOne(dead.id)).attemptCount).toBe(2);

        const waiting = await delivery(sub);
        await complete(await claimOne(waiting.id), { status: 'retry', delayMs: 3_600_000 });
        expect((await repo.retryDelivery(waiting.id)).nextRetryAt).toBeNull();
        expect((await claimOne(waiting.id)).attemptCount).toBe(2);
      });

      it('wakes the parked deliveries of a subscription, not the claimed ones', async () => {
        const sub = await subscription();
        const other = await subscription();
        const parked = await delivery(sub);
        const inFlight = await delivery(sub);
        const elsewhere = await delivery(other);
        const claimed = await repo.claimPendingDeliveries(10, LEASE);
        const token = (id: string) => claimed.find((item) => item.id === id)!.claimToken;
        await repo.releaseDeliveryClaims(
          [parked, elsewhere].map((item) => ({
            deliveryId: item.id,
            claimToken: token(item.id),
            retryAt: { delayMs: 3_600_000 },
            refundAttempt: true,
          })),
        );
        expect(await repo.wakeSubscriptionDeliveries(sub.id)).toBe(1);
        const due = await repo.claimPendingDeliveries(10, LEASE);
        expect(due.map((item) => item.id)).toEqual([parked.id]);
        expect(inFlight.id).not.toBe(parked.id);
        expect(await repo.wakeSubscriptionDeliveries(sub.id)).toBe(0);
      });
    });

    // ── Attempts ───────────────────────────────────────────────────────────────────────────

    describe('attempts', () => {
      it('stores attempts in order and refuses a repeated number or a missing delivery', async () => {
        const sub = await subscription();
        const created = await delivery(sub);
        expect(await repo.getDeliveryAttempts(created.id)).toEqual([]);
        const second = makeAttempt(created.id, 2, 200);
        const first = { ...makeAttempt(created.id, 1, 0), error: 'connection refused' };
        await repo.createDeliveryAttempt(second);
        await repo.createDeliveryAttempt(first);
        expect(await repo.getDeliveryAttempts(created.id)).toEqual([first, second]);
        await expectCode(
          repo.createDeliveryAttempt(makeAttempt(created.id, 2)),
          'HOOKD_ERR_DUPLICATE_ATTEMPT',
        );
        await expectCode(
          repo.createDeliveryAttempt(makeAttempt('dlv_missing', 1)),
          'HOOKD_ERR_DELIVERY_NOT_FOUND',
        );
      });
    });

    // ── Idempotency ────────────────────────────────────────────────────────────────────────

    describe('idempotency', () => {
      const keyed = (sub: Subscription | null, key: string, ttlMs = 3_600_000) => {
        const item = makeDelivery(sub, { idempotencyKey: key });
        return repo.createDelivery(item, {
          idempotency: { key, scope: sub?.id ?? 'inline:abc', ttlMs },
        });
      };

      it('refuses a live key in the same scope, naming the delivery that holds it', async () => {
        const sub = await subscription();
        const other = await subscription();
        const first = await keyed(sub, 'order-1');
        expect(first.idempotencyKey).toBe('order-1');
        const error = await expectCode(
          keyed(sub, 'order-1'),
          'HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY',
        );
        expect(error.details?.['deliveryId']).toBe(first.id);
        expect(error.category).toBe('conflict');
        expect((await repo.getQueueDepth()).pending).toBe(1);
        // Another scope is another key space.
        await keyed(other, 'order-1');
        await keyed(null, 'order-1');
        expect((await repo.getQueueDepth()).pending).toBe(3);
      });

      it('stores the delivery key as given, claiming only what the options ask for', async () => {
        const sub = await subscription();
        const unclaimed = await delivery(sub, { idempotencyKey: 'row-only' });
        expect(unclaimed.idempotencyKey).toBe('row-only');
        expect((await repo.getDelivery(unclaimed.id)).idempotencyKey).toBe('row-only');
        expect(await repo.checkIdempotency('row-only', sub.id)).toBe(false);
        await keyed(sub, 'row-only');
        expect(await repo.checkIdempotency('row-only', sub.id)).toBe(true);
      });

      it('takes over an expired key', async () => {
        const sub = await subscription();
        await keyed(sub, 'short', 1);
        await waitFor(async () => !(await repo.checkIdempotency('short', sub.id)), {
          intervalMs: 5,
        });
        const second = await keyed(sub, 'short');
        await expectCode(keyed(sub, 'short'), 'HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY').then((error) =>
          expect(error.details?.['deliveryId']).toBe(second.id),
        );
        expect((await repo.getQueueDepth()).pending).toBe(2);
      });

      it('stores exactly one delivery for 16 concurrent queuers of one key', async () => {
        const sub = await subscription();
        const others = [await peer(), await peer(), await peer()];
        const sources = [repo, ...others];
        const outcomes = await Promise.allSettled(
          Array.from({ length: 16 }, (_, index) =>
            sources[index % sources.length]!.createDelivery(
              makeDelivery(sub, { idempotencyKey: 'same' }),
              { idempotency: { key: 'same', scope: sub.id, ttlMs: 3_600_000 } },
            ),
          ),
        );
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        expect(won).toHaveLength(1);
        const winnerId = (won[0] as PromiseFulfilledResult<{ id: string }>).value.id;
        for (const outcome of outcomes) {
          if (outcome.status === 'rejected') {
            expect((outcome.reason as HookdError).code).toBe('HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY');
            expect((outcome.reason as HookdError).details?.['deliveryId']).toBe(winnerId);
          }
        }
        expect(await repo.listDeliveries({ tenantId: sub.tenantId })).toHaveLength(1);
      });

      it('settles createDeliveries item by item, in input order', async () => {
        const sub = await subscription();
        const held = await keyed(sub, 'taken');
        const ghost = makeSubscription();
        const claim = (key: string) => ({ key, scope: sub.id, ttlMs: 3_600_000 });
        const results = await repo.createDeliveries([
          { delivery: makeDelivery(sub) },
          { delivery: makeDelivery(sub, { idempotencyKey: 'new' }), idempotency: claim('new') },
          { delivery: makeDelivery(ghost) },
          { delivery: makeDelivery(sub, { idempotencyKey: 'new' }), idempotency: claim('new') },
          { delivery: makeDelivery(sub, { idempotencyKey: 'taken' }), idempotency: claim('taken') },
          { delivery: makeDelivery(null) },
        ]);
        expect(results.map((result) => result.ok)).toEqual([true, true, false, false, false, true]);
        const errorOf = (index: number) => {
          const result = results[index]!;
          return result.ok ? undefined : (result.error as HookdError);
        };
        expect(errorOf(2)!.code).toBe('HOOKD_ERR_SUBSCRIPTION_NOT_FOUND');
        expect(errorOf(3)!.code).toBe('HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY');
        const winner = results[1]!;
        expect(errorOf(3)!.details?.['deliveryId']).toBe(winner.ok ? winner.delivery.id : null);
        expect(errorOf(4)!.details?.['deliveryId']).toBe(held.id);
        expect((await repo.getQueueDepth()).pending).toBe(4);
        expect(await repo.createDeliveries([])).toEqual([]);
      });

      it('stores, checks, counts and cleans up keys', async () => {
        await repo.storeIdempotencyKey('live', 'scope-1', new Date(Date.now() + 3_600_000));
        await repo.storeIdempotencyKey('old', 'scope-1', new Date(Date.now() - 60_000));
        expect(await repo.checkIdempotency('live', 'scope-1')).toBe(true);
        expect(await repo.checkIdempotency('old', 'scope-1')).toBe(false);
        expect(await repo.checkIdempotency('live', 'scope-2')).toBe(false);
        await expectCode(
          repo.storeIdempotencyKey('live', 'scope-1', new Date(Date.now() + 60_000)),
          'HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY',
        );
        expect(await repo.countExpiredIdempotencyKeys()).toBe(1);
        expect(await repo.cleanupExpiredIdempotencyKeys()).toBe(1);
        expect(await repo.countExpiredIdempotencyKeys()).toBe(0);
        // The expired key was taken over by storing it again.
        await repo.storeIdempotencyKey('old', 'scope-1', new Date(Date.now() + 60_000));
        expect(await repo.checkIdempotency('old', 'scope-1')).toBe(true);
      });
    });

    // ── Circuit breaker ────────────────────────────────────────────────────────────────────

    describe('circuit breaker', () => {
      const endpoint = 'https://hooks.example.com/circuit';

      it('reads a missing record as closed and upserts records as given', async () => {
        expect(await repo.getCircuitBreakerState(endpoint)).toEqual({
          endpoint,
          state: 'closed',
          failureCount: 0,
          successCount: 0,
          lastFailureAt: null,
          openedAt: null,
          nextRetryAt: null,
        });
        const open = {
          endpoint,
          state: 'open' as const,
          failureCount: 5,
          successCount: 0,
          lastFailureAt: new Date(Date.now() - 1_000),
          openedAt: new Date(Date.now() - 1_000),
          nextRetryAt: new Date(Date.now() + 59_000),
        };
        await repo.updateCircuitBreakerState(open);
        expect(await repo.getCircuitBreakerState(endpoint)).toEqual(open);
        await repo.updateCircuitBreakerState({ ...open, state: 'closed', failureCount: 0 });
        expect((await repo.getCircuitBreakerState(endpoint)).state).toBe('closed');
      });

      it('opens at the threshold, parks claims, half-opens on a trial and closes again', async () => {
        const failure = { endpoint, event: 'failure' as const };
        expect(await repo.recordCircuitEvents([failure, failure], SETTINGS)).toEqual([null, null]);
        const [opened] = await repo.recordCircuitEvents([failure], SETTINGS);
        expect(opened).toMatchObject({ endpoint, from: 'closed', to: 'open', failureCount: 3 });
        const state = await repo.getCircuitBreakerState(endpoint);
        expect(state.state).toBe('open');
        expect(state.nextRetryAt!.getTime()).toBeGreaterThan(Date.now() + 30_000);

        const sub = await subscription({ url: endpoint });
        const parked = await delivery(sub);
        const claimed = await claimOne(parked.id);
        expect(claimed.circuit).toMatchObject({ endpoint, state: 'open', parking: true });
        // A trial while parking changes nothing.
        expect(await repo.recordCircuitEvents([{ endpoint, event: 'trial' }], SETTINGS)).toEqual([
          null,
        ]);

        // Once the timeout has passed, the circuit no longer parks, and a trial half-opens it.
        await repo.updateCircuitBreakerState({
          ...state,
          nextRetryAt: new Date(Date.now() - 60_000),
        });
        await repo.releaseDeliveryClaim({
          deliveryId: parked.id,
          claimToken: claimed.claimToken,
          retryAt: null,
          refundAttempt: true,
        });
        expect((await claimOne(parked.id)).circuit).toMatchObject({
          state: 'open',
          parking: false,
        });
        const [halfOpen] = await repo.recordCircuitEvents([{ endpoint, event: 'trial' }], SETTINGS);
        expect(halfOpen).toMatchObject({ from: 'open', to: 'half_open' });
        const success = { endpoint, event: 'success' as const };
        const [first, closed] = await repo.recordCircuitEvents([success, success], SETTINGS);
        expect(first).toBeNull();
        expect(closed).toMatchObject({ from: 'half_open', to: 'closed' });
        expect(await repo.getCircuitBreakerState(endpoint)).toMatchObject({
          state: 'closed',
          failureCount: 0,
        });
      });

      it('loses no increment under concurrent events from several instances', async () => {
        const settings = { ...SETTINGS, threshold: 1_000 };
        const others = [await peer(), await peer()];
        const sources = [repo, ...others];
        await Promise.all(
          Array.from({ length: 24 }, (_, index) =>
            sources[index % sources.length]!.recordCircuitEvents(
              [
                { endpoint, event: 'failure' },
                { endpoint: `${endpoint}/other`, event: 'failure' },
              ],
              settings,
            ),
          ),
        );
        expect((await repo.getCircuitBreakerState(endpoint)).failureCount).toBe(24);
        expect((await repo.getCircuitBreakerState(`${endpoint}/other`)).failureCount).toBe(24);
      });
    });

    // ── Maintenance ────────────────────────────────────────────────────────────────────────

    describe('maintenance', () => {
      it('validates cleanup filters for count and delete alike', async () => {
        for (const call of [
          (f: never) => repo.countDeliveriesByFilter(f),
          (f: never) => repo.deleteDeliveriesByFilter(f),
        ]) {
          await expectCode(call(undefined as never), 'HOOKD_ERR_INVALID_ARGUMENT');
          await expectCode(call({} as never), 'HOOKD_ERR_TENANT_SCOPE_REQUIRED');
          await expectCode(call({ allTenants: true } as never), 'HOOKD_ERR_INVALID_ARGUMENT');
          await expectCode(
            call({
              tenantId: 'tenant-a',
              createdBefore: new Date(1_000),
              createdAfter: new Date(2_000),
            } as never),
            'HOOKD_ERR_INVALID_ARGUMENT',
          );
        }
      });

      it('deletes exactly what it counts, attempts included, within the tenant', async () => {
        const sub = await subscription();
        const foreignSub = await subscription({ tenantId: 'tenant-b' });
        const done = await delivery(sub);
        await complete(await claimOne(done.id), { status: 'success' }, 200);
        const dead = await delivery(sub);
        await repo.moveToDeadLetter(dead.id, 'x');
        await repo.createDeliveryAttempt(makeAttempt(dead.id, 1));
        await repo.createDeliveryAttempt(makeAttempt(dead.id, 2));
        const pending = await delivery(sub);
        const foreign = await delivery(foreignSub);
        await repo.moveToDeadLetter(foreign.id, 'x');

        const filter = { tenantId: 'tenant-a', status: ['success', 'dead_letter'] as const };
        const cutoff = { ...filter, createdBefore: new Date(Date.now() + 60_000) };
        expect(await repo.countDeliveriesByFilter(cutoff)).toBe(2);
        expect(
          await repo.countDeliveriesByFilter({ ...filter, createdBefore: done.createdAt }),
        ).toBe(0);
        expect(await repo.deleteDeliveriesByFilter(cutoff)).toEqual({
          deliveries: 2,
          attempts: 3,
        });
        expect(await repo.countDeliveriesByFilter(cutoff)).toBe(0);
        expect((await repo.getDelivery(pending.id)).status).toBe('pending');
        expect((await repo.getDelivery(foreign.id)).status).toBe('dead_letter');
        expect(
          await repo.deleteDeliveriesByFilter({ allTenants: true, status: 'dead_letter' }),
        ).toEqual({ deliveries: 1, attempts: 0 });
      });

      it('reports stats and queue depth', async () => {
        const empty = await repo.getMaintenanceStats();
        expect(empty).toMatchObject({
          totalDeliveries: 0,
          deliveriesByStatus: { pending: 0, success: 0, failed: 0, dead_letter: 0 },
          oldestDeliveryAt: null,
          newestDeliveryAt: null,
          totalDeliveryAttempts: 0,
          idempotencyKeys: 0,
          expiredIdempotencyKeys: 0,
        });
        expect(await repo.getQueueDepth()).toEqual({
          pending: 0,
          deadLetter: 0,
          oldestPendingAt: null,
        });
        const sub = await subscription();
        const first = await delivery(sub);
        const dead = await delivery(sub);
        await repo.moveToDeadLetter(dead.id, 'x');
        await repo.createDeliveryAttempt(makeAttempt(dead.id, 1));
        await repo.storeIdempotencyKey('gone', 's', new Date(Date.now() - 1_000));
        const stats = await repo.getMaintenanceStats();
        expect(stats).toMatchObject({
          totalDeliveries: 2,
          deliveriesByStatus: { pending: 1, success: 0, failed: 0, dead_letter: 1 },
          totalDeliveryAttempts: 1,
          idempotencyKeys: 1,
          expiredIdempotencyKeys: 1,
        });
        expect(stats.oldestDeliveryAt!.getTime()).toBe(first.createdAt.getTime());
        expect(stats.asOf).toBeInstanceOf(Date);
        expect(await repo.getQueueDepth()).toEqual({
          pending: 1,
          deadLetter: 1,
          oldestPendingAt: first.createdAt,
        });
      });
    });

    // ── Transactions and wake-ups ──────────────────────────────────────────────────────────

    describe('transactions and wake-ups', () => {
      it('keeps a transaction invisible until commit and undoes it on rollback', async () => {
        const tx = await repo.beginTx();
        const sub = makeSubscription();
        await tx.createSubscription(sub);
        const created = await tx.createDelivery(makeDelivery(sub));
        expect((await tx.getSubscription(sub.id)).id).toBe(sub.id);
        await expectCode(repo.getSubscription(sub.id), 'HOOKD_ERR_SUBSCRIPTION_NOT_FOUND');
        await expectCode(repo.getDelivery(created.id), 'HOOKD_ERR_DELIVERY_NOT_FOUND');
        await expectCode(tx.beginTx(), 'HOOKD_ERR_UNSUPPORTED');
        await tx.commit();
        await tx.rollback();
        expect((await repo.getDelivery(created.id)).id).toBe(created.id);
        await expect(tx.getSubscription(sub.id)).rejects.toThrow();

        const undone = await repo.beginTx();
        const ghost = makeSubscription();
        await undone.createSubscription(ghost);
        await undone.createDelivery(makeDelivery(ghost));
        await undone.rollback();
        await expectCode(repo.getSubscription(ghost.id), 'HOOKD_ERR_SUBSCRIPTION_NOT_FOUND');
        expect((await repo.getQueueDepth()).pending).toBe(1);
      });

      it('runs every kind of call inside a transaction', async () => {
        const sub = await subscription();
        const tx = await repo.beginTx();
        const created = await tx.createDelivery(makeDelivery(sub));
        const [claimed] = await tx.claimPendingDeliveries(5, LEASE);
        expect(claimed!.id).toBe(created.id);
        await tx.completeDeliveryAttempts([
          {
            deliveryId: created.id,
            claimToken: claimed!.claimToken,
            attempt: makeAttempt(created.id, 1, 200),
            outcome: { status: 'success' },
          },
        ]);
        await tx.recordCircuitEvents([{ endpoint: sub.url, event: 'failure' }], SETTINGS);
        expect(await tx.countDeliveriesByFilter({ tenantId: sub.tenantId })).toBe(1);
        expect((await tx.getMaintenanceStats()).totalDeliveryAttempts).toBe(1);
        await tx.commit();
        expect((await repo.getDelivery(created.id)).status).toBe('success');
        expect((await repo.getCircuitBreakerState(sub.url)).failureCount).toBe(1);
      });

      it("writes through a caller's transaction only if the caller commits", async () => {
        const sub = await subscription();
        const committed = await factory.openCallerTransaction(repo);
        const kept = await repo.withClient!(committed.client).createDelivery(makeDelivery(sub));
        await expectCode(repo.getDelivery(kept.id), 'HOOKD_ERR_DELIVERY_NOT_FOUND');
        await committed.commit();
        expect((await repo.getDelivery(kept.id)).status).toBe('pending');

        const abandoned = await factory.openCallerTransaction(repo);
        const view = repo.withClient!(abandoned.client);
        const lost = await view.createDelivery(makeDelivery(sub, { idempotencyKey: 'tx-key' }), {
          idempotency: { key: 'tx-key', scope: sub.id, ttlMs: 3_600_000 },
        });
        await abandoned.rollback();
        await expectCode(repo.getDelivery(lost.id), 'HOOKD_ERR_DELIVERY_NOT_FOUND');
        // The key went with the rolled-back delivery.
        expect(await repo.checkIdempotency('tx-key', sub.id)).toBe(false);
      });

      it('wakes listeners when work is queued, and stops when asked', async () => {
        const sub = await subscription();
        let first = 0;
        let second = 0;
        const errors: Error[] = [];
        const stopFirst = await repo.listenForWork!(
          () => (first += 1),
          (error) => errors.push(error),
        );
        const stopSecond = await repo.listenForWork!(
          () => (second += 1),
          (error) => errors.push(error),
        );
        await delivery(sub);
        await waitFor(() => first > 0 && second > 0, { message: 'both listeners woken' });
        await stopFirst();
        const seenByFirst = first;
        await delivery(sub);
        await waitFor(() => second > 1, { message: 'second listener woken again' });
        expect(first).toBe(seenByFirst);
        await stopSecond();

        // A redrive and a release make work due again and wake listeners too.
        let woken = 0;
        const stop = await repo.listenForWork!(
          () => (woken += 1),
          (error) => errors.push(error),
        );
        const dead = await delivery(sub);
        await waitFor(() => woken > 0);
        await repo.moveToDeadLetter(dead.id, 'x');
        const before = woken;
        await repo.requeueDeadLetter(dead.id);
        await waitFor(() => woken > before, { message: 'woken by a redrive' });
        await stop();
        expect(errors).toEqual([]);
      });
    });
  });
}
