import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Config, RetryPolicy, Subscription } from '../../src/index.js';
import { FaultDatabase } from './support/database.js';
import { assertLedger, buildLedger, printLedger, type Expectation } from './support/ledger.js';
import { ManagerProcess, killAllManagerProcesses } from './support/manager-process.js';
import { Producer, spread } from './support/producer.js';
import {
  ReceiverFleet,
  failing,
  failingFor,
  healthy,
  rateLimitedOnce,
  type Behaviour,
  type Exchange,
} from './support/receivers.js';
import { size, testTimeout } from './support/sizes.js';

/**
 * Scenario 4 — slow and failing receivers. Twenty endpoints, each its own server: 10 % answer
 * 5xx (one always, one for the first seconds and then recovers), one takes longer than the
 * delivery timeout, one answers 429 with `Retry-After` once per delivery. The recovering one
 * answers 503 for 4 s from its first request. The healthy endpoints
 * must keep their throughput (measured against a run without the bad endpoints), circuits must
 * open and recover, and every delivery must end as the retry rules predict.
 *
 * Allowed duplicates: none. Retries the rules call for (after a 5xx, a 429 or a timeout) are not
 * duplicates; anything else would be.
 */

const HEALTHY_ENDPOINTS = 16;
const HEALTHY_PER_PHASE = size(800, 2_000);
const BAD_SCALE = size(1, 2);
const RETRY_AFTER_S = 2;
const RATE_LIMITED = 8;
const CIRCUIT_TIMEOUT_MS = 1_000;
const CONFIG: Partial<Config> = {
  workerCount: 16,
  deliveryTimeoutMs: 1_000,
  claimLeaseMs: 16_000,
  queuePollInterval: 100,
  queueIdleMaxInterval: 1_000,
  queueDepthIntervalMs: 0,
  retryJitter: 0,
  circuitBreakerThreshold: 5,
  circuitBreakerTimeoutMs: CIRCUIT_TIMEOUT_MS,
  circuitBreakerHalfOpenRequests: 3,
};
const POLICY: Partial<RetryPolicy> = {
  maxAttempts: 3,
  initialBackoffMs: 200,
  maxBackoffMs: 5_000,
  backoffFactor: 2,
};

type Kind = 'healthy' | 'failing' | 'recovering' | 'slow' | 'rate-limited';

let db: FaultDatabase;
let fleet: ReceiverFleet;
let producer: Producer;

beforeAll(async () => {
  db = await FaultDatabase.create('frecv');
  fleet = new ReceiverFleet();
  producer = new Producer(db.url, db.prefix);
});

afterAll(async () => {
  await killAllManagerProcesses();
  await producer?.close();
  await fleet?.close();
  await db?.drop();
});

describe('fault: slow and failing receivers', () => {
  it(
    'keeps healthy endpoints flowing, opens and recovers circuits, dead-letters by the rules',
    async () => {
      const kindOf = new Map<string, Kind>();
      const add = async (kind: Kind, name: string, behaviour: Behaviour, policy?: object) => {
        const subscription = await producer.subscribe(
          await fleet.endpoint(name, behaviour),
          policy,
        );
        kindOf.set(subscription.id, kind);
        return subscription;
      };
      const healthyEndpoints: Subscription[] = [];
      for (let i = 0; i < HEALTHY_ENDPOINTS; i += 1) {
        healthyEndpoints.push(await add('healthy', `healthy-${i}`, healthy(30, 50)));
      }
      const failingEndpoint = await add('failing', 'failing', failing(500), POLICY);
      const recovering = await add('recovering', 'recovering', failingFor(4_000, 503), {
        ...POLICY,
        maxAttempts: 5,
      });
      // Three times the delivery timeout: every attempt times out.
      const slow = await add('slow', 'slow', healthy(3_000), { ...POLICY, maxAttempts: 2 });
      const limited = await add('rate-limited', 'rate-limited', rateLimitedOnce(RETRY_AFTER_S), {
        ...POLICY,
        maxBackoffMs: 10_000,
      });
      const endpointKind = (exchange: Exchange) =>
        exchange.endpoint.startsWith('healthy') ? 'healthy' : exchange.endpoint;

      const worker = await ManagerProcess.spawn({
        label: 'worker',
        databaseUrl: db.url,
        tablePrefix: db.prefix,
        poolMax: 6,
        config: CONFIG,
        forward: ['circuit.opened', 'circuit.half_open', 'circuit.closed'],
      });

      /** Queues a phase and measures healthy deliveries per second until the last arrived. */
      const phase = async (targets: Subscription[]) => {
        const began = Date.now();
        const ids = await producer.queue(targets);
        const healthyIds = new Set(
          ids.filter((_, index) => kindOf.get(targets[index]!.id) === 'healthy'),
        );
        await fleet.until(
          () => [...healthyIds].every((id) => fleet.of(id).length > 0),
          60_000,
          'every healthy delivery arrived',
        );
        const last = Math.max(...[...healthyIds].map((id) => fleet.of(id)[0]!.receivedAt));
        return { ids, rate: (healthyIds.size * 1_000) / Math.max(1, last - began) };
      };

      // Warm-up, then the baseline: healthy endpoints only.
      const warmUp = await phase(spread(healthyEndpoints, 100));
      const baseline = await phase(spread(healthyEndpoints, HEALTHY_PER_PHASE));
      await db.waitUntilSettled(10_000);

      // The same healthy load, mixed with the bad endpoints' deliveries.
      const bad = [
        ...Array.from({ length: 5 * BAD_SCALE }, () => failingEndpoint),
        ...Array.from({ length: 10 * BAD_SCALE }, () => recovering),
        ...Array.from({ length: 8 * BAD_SCALE }, () => slow),
        ...Array.from({ length: RATE_LIMITED * BAD_SCALE }, () => limited),
      ];
      const mixed = await phase(
        spread(
          [...spread(healthyEndpoints, HEALTHY_PER_PHASE), ...bad],
          HEALTHY_PER_PHASE + bad.length,
        ),
      );
      await db.waitUntilSettled(testTimeout(60_000, 300_000));
      await worker.stop(5_000);
      await worker.exit();

      const expectations: Record<Kind, Expectation> = {
        healthy: { final: 'success', requests: 1 },
        failing: { final: 'dead_letter', requests: POLICY.maxAttempts! },
        slow: { final: 'dead_letter', requests: 2 },
        'rate-limited': { final: 'success', requests: 2 },
        recovering: { final: 'rules' },
      };
      const ledger = buildLedger({
        scenario: 'slow and failing receivers',
        queued: [...warmUp.ids, ...baseline.ids, ...mixed.ids],
        deliveries: await db.deliveries(),
        attempts: await db.attempts(),
        exchanges: fleet.exchanges,
        expect: (delivery) => expectations[kindOf.get(delivery.subscriptionId ?? '') ?? 'healthy'],
      });
      const circuits = (topic: string) =>
        [
          ...new Set(
            worker
              .ofType('event')
              .filter((event) => event.topic === topic)
              .map((event) => new URL(event.endpoint!).pathname.slice(1)),
          ),
        ].sort();
      const limitedGaps = mixed.ids
        .map((id) => fleet.of(id))
        .filter((requests) => requests[0]?.endpoint === 'rate-limited' && requests.length === 2)
        .map(([first, second]) => second!.receivedAt - first!.receivedAt);
      const byKind = (kind: string) => fleet.exchanges.filter((e) => endpointKind(e) === kind);
      // How many requests the slow endpoint held at once: before its circuit first opened, and
      // among the requests sent after that.
      const slowOpenedAt = Math.min(
        ...worker
          .ofType('event')
          .filter((e) => e.topic === 'circuit.opened' && e.endpoint === slow.url)
          .map((e) => e.at),
      );
      const peak = (requests: readonly Exchange[]) =>
        Math.max(
          0,
          ...requests.map(
            (e) =>
              requests.filter(
                (other) =>
                  other.receivedAt <= e.receivedAt &&
                  (other.respondedAt ?? other.abortedAt ?? Infinity) > e.receivedAt,
              ).length,
          ),
        );
      const slowPeakBefore = peak(byKind('slow').filter((e) => e.receivedAt < slowOpenedAt));
      const slowPeakAfter = peak(byKind('slow').filter((e) => e.receivedAt > slowOpenedAt));
      printLedger(ledger, {
        'healthy/s without bad endpoints': Math.round(baseline.rate),
        'healthy/s with bad endpoints': Math.round(mixed.rate),
        'requests to failing/recovering/slow/429': ['failing', 'recovering', 'slow', 'rate-limited']
          .map((kind) => byKind(kind).length)
          .join('/'),
        'circuit.opened': circuits('circuit.opened').join(' '),
        'circuit.half_open': circuits('circuit.half_open').join(' '),
        'circuit.closed': circuits('circuit.closed').join(' '),
        '429 → retry gap (ms, min)': Math.min(...limitedGaps),
        'slow endpoint: slots held at once': `${slowPeakBefore} before its circuit opened, ${slowPeakAfter} after`,
      });
      assertLedger(ledger);
      expect(ledger.duplicates).toBe(0);

      // No head-of-line blocking: healthy deliveries keep their pace next to the slow endpoint,
      // which, once its circuit has opened, holds no more slots than its half-open trials.
      expect(mixed.rate).toBeGreaterThan(baseline.rate * 0.5);
      expect(slowPeakAfter).toBeGreaterThan(0);
      expect(slowPeakAfter).toBeLessThanOrEqual(CONFIG.circuitBreakerHalfOpenRequests!);
      // Circuits opened for every failing endpoint and the recovering one closed again.
      expect(circuits('circuit.opened')).toEqual(
        expect.arrayContaining(['failing', 'recovering', 'slow', 'rate-limited']),
      );
      expect(circuits('circuit.half_open')).toEqual(expect.arrayContaining(['recovering']));
      expect(circuits('circuit.closed')).toEqual(expect.arrayContaining(['recovering']));
      // Retry-After was honoured: never retried sooner than asked.
      expect(limitedGaps).toHaveLength(RATE_LIMITED * BAD_SCALE);
      expect(Math.min(...limitedGaps)).toBeGreaterThanOrEqual(RETRY_AFTER_S * 1_000 - 20);
      // Only the healthy endpoints and the recovering one delivered.
      expect(
        fleet.exchanges.filter((e) => e.endpoint === 'slow' && e.respondedAt !== null),
      ).toEqual([]);
    },
    testTimeout(90_000),
  );
});
