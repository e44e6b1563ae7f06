import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Config, Subscription } from '../../src/index.js';
import { FaultDatabase } from './support/database.js';
import { assertLedger, buildLedger, printLedger } from './support/ledger.js';
import { ManagerProcess, killAllManagerProcesses } from './support/manager-process.js';
import { Producer, spread } from './support/producer.js';
import { ReceiverFleet, failingFirst, healthy } from './support/receivers.js';
import { size, testTimeout } from './support/sizes.js';

/**
 * Scenario 7 — clock skew. Three manager processes share one queue: one with a correct clock,
 * one whose clock is 5 minutes ahead, one 5 minutes behind (a preload shifts `Date`). Leases,
 * due times and retry times are computed on the database clock, so none of them may double-send
 * (claim what another still holds), starve the others (hold claims for minutes), or retry early
 * or late; a tenth of the deliveries fail once, so retries are scheduled by all three. Their
 * webhooks carry the database's time in `webhook-timestamp`, so receivers that refuse stale
 * signatures accept them all.
 *
 * Allowed duplicates: none.
 */

const DELIVERIES = size(600, 2_400);
const SKEW_MS = 5 * 60_000;
const LEASE_MS = 16_000;
const BACKOFF_MS = 1_000;
const CONFIG: Partial<Config> = {
  workerCount: 8,
  deliveryTimeoutMs: 1_000,
  claimLeaseMs: LEASE_MS,
  queuePollInterval: 100,
  queueIdleMaxInterval: 1_000,
  queueDepthIntervalMs: 0,
  retryJitter: 0,
  // The retrying endpoint's first answers are 503s in a row: its circuit opens, and parks
  // deliveries for this long (on the database clock, too).
  circuitBreakerTimeoutMs: 1_000,
};
const CLOCKS = { correct: 0, ahead: SKEW_MS, behind: -SKEW_MS } as const;
const preload = fileURLToPath(new URL('./support/clock-skew.ts', import.meta.url));

let db: FaultDatabase;
let fleet: ReceiverFleet;
let producer: Producer;

beforeAll(async () => {
  db = await FaultDatabase.create('fskew');
  fleet = new ReceiverFleet();
  producer = new Producer(db.url, db.prefix);
});

afterAll(async () => {
  await killAllManagerProcesses();
  await producer?.close();
  await fleet?.close();
  await db?.drop();
});

describe('fault: managers whose clocks are minutes off', () => {
  it(
    'neither double-sends nor starves the others, and retries on time',
    async () => {
      const healthyEndpoints: Subscription[] = [];
      for (let i = 0; i < 9; i += 1) {
        healthyEndpoints.push(
          await producer.subscribe(await fleet.endpoint(`e${i}`, healthy(1, 20))),
        );
      }
      const retrying = await producer.subscribe(await fleet.endpoint('retry', failingFirst(503)), {
        maxAttempts: 3,
        initialBackoffMs: BACKOFF_MS,
        maxBackoffMs: 5_000,
      });
      const spawnedAt = Date.now();
      const workers = await Promise.all(
        Object.entries(CLOCKS).map(([label, skew]) =>
          ManagerProcess.spawn(
            {
              label,
              databaseUrl: db.url,
              tablePrefix: db.prefix,
              poolMax: 4,
              config: CONFIG,
            },
            { preload: [preload], env: { HOOKD_FAULTS_CLOCK_SKEW_MS: String(skew) } },
          ),
        ),
      );

      // While the load runs, no claim may reach further than one lease into the future (a lease
      // taken on a skewed clock would reach 5 minutes further, or be over at once).
      let longestLeaseMs = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          longestLeaseMs = Math.max(longestLeaseMs, (await db.heldClaims()).longestLeaseMs);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
      const queued = await producer.trickle(
        spread([...healthyEndpoints, retrying], DELIVERIES),
        size(4_000, 12_000),
        { batch: 20 },
      );
      try {
        await db.waitUntilSettled(testTimeout(30_000, 300_000));
      } finally {
        sampling = false;
        await sampler;
      }
      const reports = await Promise.all(workers.map((worker) => worker.stop(5_000)));
      await Promise.all(workers.map((worker) => worker.exit()));

      const ledger = buildLedger({
        scenario: 'clock skew (±5 minutes)',
        queued,
        deliveries: await db.deliveries(),
        attempts: await db.attempts(),
        exchanges: fleet.exchanges,
      });
      const delivered = Object.fromEntries(
        Object.keys(CLOCKS).map((label, index) => [
          label,
          reports[index]!.counts['delivery.success'] ?? 0,
        ]),
      );
      // What the receivers saw in webhook-timestamp, against their own clock.
      const offsets = { ahead: 0, correct: 0, behind: 0 };
      for (const exchange of fleet.exchanges) {
        const offset = exchange.signedAt - exchange.receivedAt;
        if (offset > SKEW_MS / 2) offsets.ahead += 1;
        else if (offset < -SKEW_MS / 2) offsets.behind += 1;
        else offsets.correct += 1;
      }
      const retryGaps = fleet.exchanges
        .filter((e) => e.endpoint === 'retry' && e.attempt === 1)
        .map((first) => {
          const second = fleet.of(first.deliveryId)[1];
          return second ? second.receivedAt - first.receivedAt : Number.NaN;
        });
      printLedger(ledger, {
        'delivered per clock': delivered,
        'requests by sender clock (webhook-timestamp)': offsets,
        'longest lease seen (ms)': Math.round(longestLeaseMs),
        'retry gaps (ms, min/max)': `${Math.min(...retryGaps)}/${Math.max(...retryGaps)}`,
      });
      assertLedger(ledger);
      expect(ledger.succeeded).toBe(queued.length);
      expect(ledger.duplicates).toBe(0);
      // Exactly once for the healthy endpoints, twice (503, then 200) for the retrying one.
      expect(ledger.requests).toBe(queued.length + retryGaps.length);

      // Nobody starved: each process delivered at least a tenth.
      for (const count of Object.values(delivered)) {
        expect(count).toBeGreaterThan(queued.length / 10);
      }
      // The skewed processes really ran on skewed clocks (their `started` report says so)...
      const reportedClock = (index: number) => workers[index]!.ofType('started')[0]!.at - spawnedAt;
      expect(reportedClock(1)).toBeGreaterThan(SKEW_MS / 2);
      expect(reportedClock(2)).toBeLessThan(-SKEW_MS / 2);
      // ...yet signed every webhook with the database's time, which a receiver accepts.
      expect(offsets).toEqual({ ahead: 0, correct: ledger.requests, behind: 0 });
      // (Whole seconds, so up to a second early, plus the request's way to the receiver.)
      const worstMs = Math.max(
        ...fleet.exchanges.map((exchange) => Math.abs(exchange.signedAt - exchange.receivedAt)),
      );
      expect(worstMs).toBeLessThan(3_000);
      // Leases on the database clock: never longer than one lease.
      expect(longestLeaseMs).toBeGreaterThan(0);
      expect(longestLeaseMs).toBeLessThanOrEqual(LEASE_MS + 1_000);
      // Retries neither early (a clock behind) nor minutes late (a clock ahead); the endpoint's
      // circuit may park a retry for a few 1 s cycles on top of its backoff.
      expect(retryGaps.length).toBeGreaterThan(0);
      expect(Math.min(...retryGaps)).toBeGreaterThanOrEqual(BACKOFF_MS - 20);
      expect(Math.max(...retryGaps)).toBeLessThan(SKEW_MS / 10);
    },
    testTimeout(60_000),
  );
});
