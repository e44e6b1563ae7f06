import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Config, Subscription } from '../../src/index.js';
import { FaultDatabase, type AttemptRow } from './support/database.js';
import { assertLedger, buildLedger, printLedger } from './support/ledger.js';
import { ManagerProcess, killAllManagerProcesses } from './support/manager-process.js';
import type { ChildSpec } from './support/protocol.js';
import { Producer, spread } from './support/producer.js';
import { ReceiverFleet, healthy, type Exchange } from './support/receivers.js';
import { size, testTimeout } from './support/sizes.js';

/**
 * Scenario 1 — process crash. One worker process at a time runs a Manager; it is killed with
 * SIGKILL at chosen moments (before its first claim, while requests are in flight at a slow
 * endpoint, right after a receiver answered and before the status write, and at random), and a
 * new process takes over. The killed process's claims come back when their lease (16 s, the
 * minimum for a 1 s delivery timeout) runs out.
 *
 * Allowed duplicates: a request received while its process was alive, whose attempt row that
 * process never wrote (it died in flight or between the answer and the write), may be sent
 * again — at most one extra request per such request.
 */

type Moment = 'before-claim' | 'mid-request' | 'after-response' | 'random';

const DELIVERIES = size(300, 2_400);
const MOMENTS: readonly Moment[] = size(
  ['before-claim', 'mid-request', 'after-response', 'random'],
  Array.from(
    { length: 3 },
    () => ['before-claim', 'mid-request', 'after-response', 'random'] as const,
  ).flat(),
);
const LEASE_MS = 16_000;
const CONFIG: Partial<Config> = {
  workerCount: 8,
  deliveryTimeoutMs: 1_000,
  claimLeaseMs: LEASE_MS,
  queuePollInterval: 200,
  queueIdleMaxInterval: 1_000,
  queueDepthIntervalMs: 0,
  retryJitter: 0,
};

interface Kill {
  readonly moment: Moment;
  readonly child: ManagerProcess;
  readonly killedAt: number;
  /** Claims the dead process held when it died (found by their lease end). */
  readonly heldClaims: number;
}

let db: FaultDatabase;
let fleet: ReceiverFleet;
let producer: Producer;

beforeAll(async () => {
  db = await FaultDatabase.create('fcrash');
  fleet = new ReceiverFleet();
  producer = new Producer(db.url, db.prefix);
});

afterAll(async () => {
  await killAllManagerProcesses();
  await producer?.close();
  await fleet?.close();
  await db?.drop();
});

describe('fault: a worker process is killed with SIGKILL', () => {
  it(
    'loses nothing and duplicates only attempts in flight at a kill',
    async () => {
      // At most one attempt per kill can be interrupted per delivery: 25 attempts cannot be used
      // up by interruptions, so the rules predict success for every delivery.
      const policy = { maxAttempts: 25, initialBackoffMs: 100, maxBackoffMs: 1_000 };
      const fast: Subscription[] = [];
      for (const name of ['fast-a', 'fast-b', 'fast-c']) {
        fast.push(await producer.subscribe(await fleet.endpoint(name, healthy(2, 30)), policy));
      }
      const slowUrl = await fleet.endpoint('slow', healthy(200, 500));
      const slow = await producer.subscribe(slowUrl, policy);
      const isSlow = (exchange: Exchange) => exchange.endpoint === 'slow';

      const spec = (label: string, holdStart = false): ChildSpec => ({
        label,
        databaseUrl: db.url,
        tablePrefix: db.prefix,
        poolMax: 4,
        config: CONFIG,
        holdStart,
      });
      const fromChild = (child: ManagerProcess) => (exchange: Exchange) =>
        exchange.receivedAt >= child.spawnedAt;

      // The load keeps arriving while processes die (a quarter to the slow endpoint).
      const targets = spread([...fast, ...fast, ...fast, slow], DELIVERIES);
      const producing = producer.trickle(targets, MOMENTS.length * 2_000);

      const kills: Kill[] = [];
      for (const [index, moment] of MOMENTS.entries()) {
        const label = `worker-${index + 1}`;
        let child: ManagerProcess;
        if (moment === 'before-claim') {
          // Connected, never started: dies before it could claim anything.
          child = await ManagerProcess.spawn(spec(label, true));
          await child.kill();
        } else if (moment === 'mid-request') {
          child = await ManagerProcess.spawn(spec(label));
          const mine = fromChild(child);
          await fleet.until(
            () => fleet.inFlight().filter((e) => mine(e) && isSlow(e)).length >= 2,
            20_000,
            `${label}: two requests in flight at the slow endpoint`,
          );
          await child.kill();
        } else if (moment === 'after-response') {
          child = await ManagerProcess.spawn(spec(label));
          const mine = fromChild(child);
          await fleet.until(
            () => fleet.exchanges.filter(mine).length >= 5,
            20_000,
            `${label}: five requests`,
          );
          // Killed synchronously inside the receiver's "answer written" callback: the process
          // has the response (or is about to read it) but has not recorded it yet.
          const target = child;
          const stop = fleet.onChange((exchange, what) => {
            if (what === 'response' && mine(exchange) && !isSlow(exchange)) void target.kill();
          });
          await child.exited;
          stop();
        } else {
          child = await ManagerProcess.spawn(spec(label));
          await new Promise((resolve) => setTimeout(resolve, 200 + Math.random() * 1_300));
          await child.kill();
        }
        await child.exited;
        kills.push({
          moment,
          child,
          killedAt: child.killedAt!,
          heldClaims: await db.claimsLeasedUntil(
            child.spawnedAt + LEASE_MS,
            child.killedAt! + LEASE_MS + 50,
          ),
        });
      }

      // A last process takes over: it finishes the backlog and, once their leases have run
      // out, the deliveries the dead processes had claimed.
      const survivor = await ManagerProcess.spawn(spec('survivor'));
      const queued = await producing;
      await db.waitUntilSettled(LEASE_MS + testTimeout(30_000, 300_000));
      await survivor.stop(5_000);
      await survivor.exit();

      const attempts = await db.attempts();
      const recorded = new Set(attempts.map((a) => `${a.deliveryId}#${a.attemptNumber}`));
      const unrecorded = (exchange: Exchange) =>
        !recorded.has(`${exchange.deliveryId}#${exchange.attempt}`);
      // The requests a killed process sent: everything received between its spawn and the spawn
      // of the next process (started only after the kill was confirmed).
      const windows = kills.map((kill, index) => ({
        kill,
        from: kill.child.spawnedAt,
        to: kills[index + 1]?.child.spawnedAt ?? survivor.spawnedAt,
      }));
      const sentByKilled = (exchange: Exchange) =>
        windows.find((w) => exchange.receivedAt >= w.from && exchange.receivedAt < w.to);

      const ledger = buildLedger({
        scenario: 'process crash (SIGKILL)',
        queued,
        deliveries: await db.deliveries(),
        attempts,
        exchanges: fleet.exchanges,
        inFlightAtFault: (exchange, attempt: AttemptRow | undefined) =>
          attempt === undefined && sentByKilled(exchange) !== undefined,
      });
      const table = windows.map(({ kill, from, to }) => {
        const sent = fleet.exchanges.filter((e) => e.receivedAt >= from && e.receivedAt < to);
        return {
          moment: kill.moment,
          requests: sent.length,
          inFlight: sent.filter(
            (e) => e.receivedAt <= kill.killedAt && (e.respondedAt ?? Infinity) > kill.killedAt,
          ).length,
          answeredUnrecorded: sent.filter(
            (e) => e.respondedAt !== null && e.respondedAt <= kill.killedAt && unrecorded(e),
          ).length,
          heldClaims: kill.heldClaims,
        };
      });
      printLedger(ledger, {
        kills: kills.length,
        'lease (ms)': LEASE_MS,
        ...Object.fromEntries(table.map((row, index) => [`kill ${index + 1}`, row])),
      });
      assertLedger(ledger);
      expect(ledger.succeeded).toBe(queued.length);

      // Every kind of moment really happened.
      for (const row of table.filter((r) => r.moment === 'before-claim')) {
        expect(row).toMatchObject({ requests: 0, heldClaims: 0 });
      }
      const sum = (moment: Moment, key: 'inFlight' | 'answeredUnrecorded') =>
        table.filter((row) => row.moment === moment).reduce((total, row) => total + row[key], 0);
      expect(sum('mid-request', 'inFlight')).toBeGreaterThan(0);
      expect(sum('after-response', 'answeredUnrecorded')).toBeGreaterThan(0);
      // Claims of dead processes existed, and were delivered by the survivor after their lease.
      expect(kills.reduce((total, kill) => total + kill.heldClaims, 0)).toBeGreaterThan(0);
    },
    testTimeout(90_000),
  );
});
