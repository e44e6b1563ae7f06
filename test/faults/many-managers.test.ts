import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Config } from '../../src/index.js';
import { FaultDatabase } from './support/database.js';
import { assertLedger, buildLedger, printLedger } from './support/ledger.js';
import { ManagerProcess, killAllManagerProcesses } from './support/manager-process.js';
import { Producer, spread } from './support/producer.js';
import { ReceiverFleet, healthy } from './support/receivers.js';
import { size, testTimeout } from './support/sizes.js';

/**
 * Scenario 6 — many managers. Four processes × 16 workers (each slot holding up to four claims)
 * compete for one queue; half the deliveries are waiting when they start, the rest arrive while
 * they run. No fault is injected, so every delivery must be sent exactly once.
 *
 * Allowed duplicates: none.
 */

const DELIVERIES = size(1_000, 4_000);
const PROCESSES = 4;
const CONFIG: Partial<Config> = {
  workerCount: 16,
  maxBatchSize: 4,
  deliveryTimeoutMs: 5_000,
  queuePollInterval: 100,
  queueIdleMaxInterval: 1_000,
  queueDepthIntervalMs: 0,
};

let db: FaultDatabase;
let fleet: ReceiverFleet;
let producer: Producer;

beforeAll(async () => {
  db = await FaultDatabase.create('fmany');
  fleet = new ReceiverFleet();
  producer = new Producer(db.url, db.prefix);
});

afterAll(async () => {
  await killAllManagerProcesses();
  await producer?.close();
  await fleet?.close();
  await db?.drop();
});

describe('fault-free baseline: four manager processes on one database', () => {
  it(
    'sends every delivery exactly once',
    async () => {
      const subscriptions = await Promise.all(
        Array.from({ length: 8 }, async (_, i) =>
          producer.subscribe(await fleet.endpoint(`endpoint-${i}`, healthy(1, 10))),
        ),
      );
      const targets = spread(subscriptions, DELIVERIES);
      const waiting = await producer.queue(targets.slice(0, DELIVERIES / 2), 'waiting');
      const workers = await Promise.all(
        Array.from({ length: PROCESSES }, (_, i) =>
          ManagerProcess.spawn({
            label: `manager-${i + 1}`,
            databaseUrl: db.url,
            tablePrefix: db.prefix,
            poolMax: 4,
            config: CONFIG,
          }),
        ),
      );
      const arriving = await producer.trickle(targets.slice(DELIVERIES / 2), 2_000, {
        batch: 25,
        tag: 'arriving',
      });
      const queued = [...waiting, ...arriving];
      await db.waitUntilSettled(testTimeout(60_000, 300_000));
      const reports = await Promise.all(workers.map((worker) => worker.stop(5_000)));
      await Promise.all(workers.map((worker) => worker.exit()));

      const ledger = buildLedger({
        scenario: 'many managers (4 processes × 16 workers)',
        queued,
        deliveries: await db.deliveries(),
        attempts: await db.attempts(),
        exchanges: fleet.exchanges,
      });
      const delivered = reports.map((report) => report.counts['delivery.success'] ?? 0);
      printLedger(ledger, { 'delivered per process': delivered.join(', ') });
      assertLedger(ledger);
      expect(ledger.succeeded).toBe(queued.length);
      // Exactly once: one request and one attempt row per delivery, no more.
      expect(ledger.requests).toBe(queued.length);
      expect(ledger.attemptRows).toBe(queued.length);
      expect(new Set(fleet.exchanges.map((e) => e.deliveryId)).size).toBe(queued.length);
      expect(delivered.reduce((total, n) => total + n, 0)).toBe(queued.length);
      // Every process took part.
      for (const count of delivered) expect(count).toBeGreaterThan(0);
    },
    testTimeout(60_000),
  );
});
