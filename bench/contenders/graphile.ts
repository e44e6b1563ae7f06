/**
 * graphile-worker 0.16.6 as a webhook sender: one job per webhook, the task signs and POSTs the
 * job payload with undici. Fresh schema per run (`schema` option).
 *
 * Throughput settings: 0.16 has none of 0.17's batching (`localQueue`, `completeJobBatchDelay`,
 * `failJobBatchDelay` arrived in 0.17); its knobs are `concurrency`, `maxPoolSize` and prepared
 * statements (on by default). Job "batching" in 0.16 means array payloads merged under one job
 * key, which makes one job carry many webhooks (no per-webhook retry), so it is not used.
 */
import { Logger, makeWorkerUtils, run, type Runner, type WorkerUtils } from 'graphile-worker';
import pg from 'pg';

import { makePoster } from '../lib/post.js';
import { query } from '../lib/db.js';
import type { Contender, Info, Producer, Workers } from './types.js';

const silent = new Logger(() => () => undefined);
const TASK = 'webhook';

interface JobPayload {
  endpoint: number;
  event: Record<string, unknown>;
}

export function graphileContender(databaseUrl: string): Contender {
  const utilsFor = (info: Info, maxPoolSize = 10): Promise<WorkerUtils> =>
    makeWorkerUtils({
      connectionString: databaseUrl,
      schema: info.namespace,
      logger: silent,
      maxPoolSize,
    });
  return {
    name: 'graphile-worker',

    async setup(runId, urls) {
      const info: Info = {
        contender: 'graphile-worker',
        namespace: `gw${runId}`,
        urls,
        targets: [],
      };
      const utils = await utilsFor(info, 2);
      await utils.migrate();
      await utils.release();
      return info;
    },

    async producer(info) {
      const utils = await utilsFor(info, 10);
      const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
      const producer: Producer = {
        maxBatch: 1000,
        async one(payload, endpoint) {
          await utils.addJob(TASK, { endpoint, event: payload } satisfies JobPayload);
        },
        async batch(payloads, endpoint) {
          const specs = payloads.map((payload) => ({
            identifier: TASK,
            payload: { endpoint, event: payload } satisfies JobPayload,
          }));
          await pool.query(
            `SELECT count(*) FROM ${info.namespace}.add_jobs(
               array(SELECT json_populate_recordset(null::${info.namespace}.job_spec, $1::json)))`,
            [JSON.stringify(specs)],
          );
        },
        async close() {
          await utils.release();
          await pool.end();
        },
      };
      return producer;
    },

    async start(info, settings) {
      const concurrency = Number(settings['concurrency'] ?? 10);
      const poster = makePoster(info.urls, concurrency);
      const runner: Runner = await run({
        connectionString: databaseUrl,
        schema: info.namespace,
        concurrency,
        maxPoolSize: Math.max(10, concurrency + 2),
        noHandleSignals: true,
        logger: silent,
        taskList: {
          [TASK]: async (raw, helpers) => {
            const payload = raw as JobPayload;
            const code = await poster.post(
              payload.endpoint,
              `gw_${helpers.job.id}`,
              JSON.stringify(payload.event),
              helpers.job.attempts,
            );
            if (code < 200 || code >= 300) throw new Error(`webhook answered ${code}`);
          },
        },
      });
      const workers: Workers = {
        async stop() {
          await runner.stop();
          await poster.close();
        },
      };
      return workers;
    },

    async pending(info) {
      const rows = await query<{ n: string }>(
        `SELECT count(*) AS n FROM ${info.namespace}._private_jobs`,
      );
      return Number(rows[0]?.n ?? 0);
    },

    async succeeded() {
      return null;
    },

    async analyze(info) {
      await query(`ANALYZE ${info.namespace}._private_jobs`);
    },

    async teardown(info) {
      await query(`DROP SCHEMA IF EXISTS ${info.namespace} CASCADE`);
    },

    describe(settings) {
      const concurrency = Number(settings['concurrency'] ?? 10);
      return {
        library: 'graphile-worker@0.16.6',
        concurrency,
        maxPoolSize: Math.max(10, concurrency + 2),
        preparedStatements: true,
        pollInterval: '2000 ms (default; new jobs wake workers via LISTEN/NOTIFY)',
        batching: 'none available in 0.16 (localQueue / completeJobBatchDelay need 0.17)',
        http: `undici Pool per origin, connections = concurrency (${concurrency})`,
        note: 'completed jobs are deleted; no attempt rows are written',
      };
    },
  };
}
