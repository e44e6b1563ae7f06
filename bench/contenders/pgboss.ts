/**
 * pg-boss 10.4.2 as a webhook sender: one job per webhook; `workers` × `work()` registrations
 * fetch up to `batchSize` jobs each and POST them concurrently. pg-boss 10 polls (no
 * LISTEN/NOTIFY), at most every 0.5 s per registration, so batchSize × workers sets its rate.
 * Fresh schema per run (`schema` option).
 */
import PgBoss from 'pg-boss';

import { makePoster } from '../lib/post.js';
import { query } from '../lib/db.js';
import type { Contender, Info, Producer, WorkerSettings, Workers } from './types.js';

const QUEUE = 'webhooks';

interface JobPayload {
  endpoint: number;
  event: Record<string, unknown>;
}

async function bossFor(
  databaseUrl: string,
  info: Info,
  max: number,
  supervise: boolean,
): Promise<PgBoss> {
  // Producers only send; the delivering process keeps pg-boss's default supervision.
  const boss = new PgBoss({
    connectionString: databaseUrl,
    schema: info.namespace,
    max,
    supervise,
    schedule: false,
  });
  boss.on('error', (error) => console.error('pg-boss error', error.message));
  await boss.start();
  return boss;
}

export function pgbossContender(databaseUrl: string): Contender {
  const settingsOf = (settings: WorkerSettings) => ({
    workers: Number(settings['workers'] ?? 10),
    batchSize: Number(settings['batchSize'] ?? 100),
    pollingIntervalSeconds: Number(settings['poll'] ?? 0.5),
  });
  return {
    name: 'pg-boss',

    async setup(runId, urls) {
      const info: Info = { contender: 'pg-boss', namespace: `pb${runId}`, urls, targets: [] };
      const boss = new PgBoss({ connectionString: databaseUrl, schema: info.namespace, max: 2 });
      boss.on('error', (error) => console.error('pg-boss error', error.message));
      await boss.start();
      await boss.createQueue(QUEUE);
      await boss.stop({ graceful: false, wait: true });
      return info;
    },

    async producer(info) {
      const boss = await bossFor(databaseUrl, info, 10, false);
      const producer: Producer = {
        maxBatch: 1000,
        async one(payload, endpoint) {
          await boss.send(QUEUE, { endpoint, event: payload } satisfies JobPayload);
        },
        async batch(payloads, endpoint) {
          await boss.insert(
            payloads.map((payload) => ({
              name: QUEUE,
              data: { endpoint, event: payload } satisfies JobPayload,
            })),
          );
        },
        async close() {
          await boss.stop({ graceful: false, wait: true });
        },
      };
      return producer;
    },

    async start(info, settings) {
      const { workers, batchSize, pollingIntervalSeconds } = settingsOf(settings);
      const boss = await bossFor(databaseUrl, info, Math.max(10, workers + 2), true);
      const poster = makePoster(info.urls, Math.min(64, workers * batchSize));
      const one = async (job: PgBoss.Job<JobPayload>) => {
        const code = await poster.post(
          job.data.endpoint,
          `pb_${job.id}`,
          JSON.stringify(job.data.event),
        );
        if (code < 200 || code >= 300) throw new Error(`webhook answered ${code}`);
      };
      for (let i = 0; i < workers; i++) {
        await boss.work<JobPayload>(QUEUE, { batchSize, pollingIntervalSeconds }, async (jobs) => {
          await Promise.all(jobs.map(one));
        });
      }
      const handle: Workers = {
        async stop() {
          await boss.offWork(QUEUE);
          await boss.stop({ graceful: false, wait: true });
          await poster.close();
        },
      };
      return handle;
    },

    async pending(info) {
      const rows = await query<{ n: string }>(
        `SELECT count(*) AS n FROM ${info.namespace}.job
         WHERE name = $1 AND state IN ('created', 'retry', 'active')`,
        [QUEUE],
      );
      return Number(rows[0]?.n ?? 0);
    },

    async succeeded(info) {
      const rows = await query<{ n: string }>(
        `SELECT count(*) AS n FROM ${info.namespace}.job WHERE name = $1 AND state = 'completed'`,
        [QUEUE],
      );
      return Number(rows[0]?.n ?? 0);
    },

    async analyze(info) {
      await query(`ANALYZE ${info.namespace}.job`);
    },

    async teardown(info) {
      await query(`DROP SCHEMA IF EXISTS ${info.namespace} CASCADE`);
    },

    describe(settings) {
      const { workers, batchSize, pollingIntervalSeconds } = settingsOf(settings);
      return {
        library: 'pg-boss@10.4.2',
        workers,
        batchSize,
        pollingIntervalSeconds,
        note:
          'workers × work() registrations, each fetching batchSize jobs per poll and POSTing them ' +
          'concurrently; 0.5 s is the smallest polling interval pg-boss 10 accepts; no attempt rows',
        http: `undici Pool per origin, connections = min(64, workers × batchSize)`,
      };
    },
  };
}
