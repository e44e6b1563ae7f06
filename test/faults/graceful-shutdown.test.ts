import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Config } from '../../src/index.js';
import { FaultDatabase } from './support/database.js';
import { ABORTED_BY_SENDER, assertLedger, buildLedger, printLedger } from './support/ledger.js';
import { ManagerProcess, killAllManagerProcesses } from './support/manager-process.js';
import type { ChildSpec } from './support/protocol.js';
import { Producer, spread } from './support/producer.js';
import { ReceiverFleet, healthy } from './support/receivers.js';
import { size, testTimeout } from './support/sizes.js';

/**
 * Scenario 5 — graceful shutdown under load. A manager with 200 workers, each allowed to hold a
 * second claim, is stopped while ~200 requests are in flight at slow receivers (2.5 s each) and
 * ~200 more deliveries are claimed but not started: once with a timeout the attempts fit in,
 * then — after a restart — with one they do not (they are aborted when the part of the timeout
 * reserved for recording begins: min(2 s, timeout / 2) before its end). After each
 * stop: every attempt that started has its attempt row, no claim is left held, nothing pending is
 * pushed into the future, and no attempt was counted that was not made. A new process finishes.
 *
 * Allowed duplicates: an attempt the stopping manager aborted itself may have been processed by
 * the receiver; it is retried, so each aborted attempt that reached a receiver may cause one
 * extra request.
 */

const DELIVERIES = size(600, 2_400);
const WORKERS = 200;
const HOLD_MS = 2_500;
/** stop() timeouts: one the attempts fit in, one that aborts them (at 1.5 s, 1.5 s to record). */
const STOP_TIMEOUTS = [10_000, 3_000] as const;
const CONFIG: Partial<Config> = {
  workerCount: WORKERS,
  maxBatchSize: 2,
  deliveryTimeoutMs: 5_000,
  // Long enough for two claims per slot (floor(40 s / (5 s + 10 s)) = 2).
  claimLeaseMs: 40_000,
  queuePollInterval: 100,
  queueIdleMaxInterval: 1_000,
  queueDepthIntervalMs: 0,
};

let db: FaultDatabase;
let fleet: ReceiverFleet;
let producer: Producer;

beforeAll(async () => {
  db = await FaultDatabase.create('fstop');
  fleet = new ReceiverFleet();
  producer = new Producer(db.url, db.prefix);
});

afterAll(async () => {
  await killAllManagerProcesses();
  await producer?.close();
  await fleet?.close();
  await db?.drop();
});

describe('fault: stop() under load', () => {
  it(
    'records every started attempt, strands no claim, and a restart finishes the work',
    async () => {
      const subscriptions = await Promise.all(
        ['a', 'b', 'c', 'd'].map(async (name) =>
          producer.subscribe(await fleet.endpoint(name, healthy(HOLD_MS))),
        ),
      );
      const queued = await producer.queue(spread(subscriptions, DELIVERIES));
      const spec = (label: string): ChildSpec => ({
        label,
        databaseUrl: db.url,
        tablePrefix: db.prefix,
        poolMax: 6,
        config: CONFIG,
        // Enough connections per receiver for every worker to be on the wire at once.
        agentOptions: { connections: 64 },
      });
      const worker = await ManagerProcess.spawn(spec('worker'));

      const stops: Array<Record<string, number>> = [];
      for (const timeoutMs of STOP_TIMEOUTS) {
        if (stops.length > 0) await worker.start();
        const seen = fleet.exchanges.length;
        await fleet.until(
          () => fleet.inFlight().filter((e) => fleet.exchanges.indexOf(e) >= seen).length >= 150,
          20_000,
          '150 requests in flight',
        );
        const inFlight = fleet.inFlight().length;
        const heldBefore = (await db.heldClaims()).count;
        const stopped = await worker.stop(timeoutMs);
        // Right after stop() resolved:
        const attempts = await db.attempts();
        const recorded = new Set(attempts.map((a) => `${a.deliveryId}#${a.attemptNumber}`));
        stops.push({
          timeoutMs,
          elapsedMs: stopped.elapsedMs,
          inFlight,
          heldBefore,
          started: stopped.counts['delivery.started'] ?? 0,
          attemptRows: attempts.length,
          aborted: attempts.filter((a) => a.error?.startsWith(ABORTED_BY_SENDER)).length,
          requestsWithoutRow: fleet.exchanges.filter(
            (e) => !recorded.has(`${e.deliveryId}#${e.attempt}`),
          ).length,
          heldClaims: (await db.heldClaims()).count,
          pendingNotDue: await db.notDueCount(),
          countedNotMade: await db.unrecordedAttemptCounts(),
          pending: await db.pendingCount(),
          // stop() gave up recording at its deadline (the pool logs how many it left).
          abandoned: worker
            .ofType('log')
            .filter((log) => log.message.includes('before every attempt was recorded')).length,
        });
      }

      // A new process finishes the rest.
      const successor = await ManagerProcess.spawn(spec('successor'));
      await db.waitUntilSettled(testTimeout(60_000, 300_000));
      await successor.stop(10_000);
      await successor.exit();
      await worker.exit();

      const ledger = buildLedger({
        scenario: 'graceful shutdown under load',
        queued,
        deliveries: await db.deliveries(),
        attempts: await db.attempts(),
        exchanges: fleet.exchanges,
        inFlightAtFault: (_exchange, attempt) =>
          attempt?.error?.startsWith(ABORTED_BY_SENDER) ?? false,
      });
      printLedger(ledger, {
        workers: WORKERS,
        ...Object.fromEntries(stops.map((stop, index) => [`stop ${index + 1}`, stop])),
      });
      assertLedger(ledger);
      expect(ledger.succeeded).toBe(queued.length);

      const [graceful, deadline] = stops as [Record<string, number>, Record<string, number>];
      for (const stop of stops) {
        // Every attempt that started (delivery.started) has its row; every request too.
        expect(stop['attemptRows']).toBe(stop['started']);
        expect(stop['requestsWithoutRow']).toBe(0);
        // Nothing claimed is stranded: claims not started were given back, due now, with their
        // attempt refunded.
        expect(stop['heldClaims']).toBe(0);
        expect(stop['pendingNotDue']).toBe(0);
        expect(stop['countedNotMade']).toBe(0);
        expect(stop['pending']).toBeGreaterThan(0);
        // There were claims not started when stop() was called: 200 slots, 2 claims each.
        expect(stop['heldBefore']).toBeGreaterThan(WORKERS);
        expect(stop['elapsedMs']).toBeLessThan(stop['timeoutMs']! + 1_000);
      }
      // The first stop waited for its attempts; the second aborted them at its deadline.
      expect(graceful['aborted']).toBe(0);
      expect(deadline['aborted']).toBeGreaterThan(100);
    },
    testTimeout(90_000),
  );
});
