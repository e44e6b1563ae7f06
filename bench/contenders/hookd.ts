/**
 * node-hookd as the benchmark drives it: PostgresRepository + Manager, full correctness
 * (signatures, attempt rows, idempotency machinery, circuit breaker all on). Queueing goes through
 * `queueDelivery` / `queueDeliveries` of a manager that is not started (an application process);
 * delivering through a started manager in another process.
 */
import {
  Manager,
  PostgresRepository,
  SchemaManager,
  newSchemaConfig,
  type Config,
} from '../../src/index.js';
import { BENCH_SECRET } from '../lib/common.js';
import { query } from '../lib/db.js';
import type { Contender, Info, Producer, WorkerSettings, Workers } from './types.js';

const TENANT = 'bench';
const EVENT_TYPE = 'invoice.paid';

function repositoryFor(url: string, info: Info, poolMax: number): PostgresRepository {
  return new PostgresRepository(url, { tablePrefix: info.namespace, pool: { max: poolMax } });
}

function managerConfig(settings: WorkerSettings): Partial<Config> {
  return {
    workerCount: Number(settings['workerCount'] ?? 10),
    maxBatchSize: Number(settings['maxBatchSize'] ?? 1),
    deliveryTimeoutMs: Number(settings['deliveryTimeoutMs'] ?? 30_000),
    ...(process.env['BENCH_POLL_MS']
      ? { queuePollInterval: Number(process.env['BENCH_POLL_MS']) }
      : {}),
    queueDepthIntervalMs: 0,
  };
}

/** Successful deliveries per subscription (index of `info.targets`). */
export async function succeededPerEndpoint(info: Info): Promise<number[]> {
  const table = newSchemaConfig(info.namespace).tables.deliveries;
  const rows = await query<{ subscription_id: string; n: string }>(
    `SELECT subscription_id, count(*) AS n FROM ${table} WHERE status = 'success' GROUP BY 1`,
  );
  return info.targets.map((id) => Number(rows.find((row) => row.subscription_id === id)?.n ?? 0));
}

export function hookdContender(databaseUrl: string): Contender {
  return {
    name: 'node-hookd',

    async setup(runId, urls) {
      const namespace = `hb${runId}`;
      const schema = new SchemaManager(databaseUrl, newSchemaConfig(namespace));
      await schema.ensureSchema();
      await schema.close();
      const info: Info = { contender: 'node-hookd', namespace, urls, targets: [] };
      const repository = repositoryFor(databaseUrl, info, 2);
      const manager = new Manager({}, repository, { allowPrivateDestinations: true });
      const targets: string[] = [];
      for (const url of urls) {
        const subscription = await manager.createSubscription({
          tenantId: TENANT,
          url,
          secret: BENCH_SECRET,
          eventTypes: [EVENT_TYPE],
        });
        targets.push(subscription.id);
      }
      await repository.close();
      return { ...info, targets };
    },

    async producer(info) {
      const repository = repositoryFor(databaseUrl, info, 10);
      const manager = new Manager({ queueDepthIntervalMs: 0 }, repository, {
        allowPrivateDestinations: true,
      });
      const producer: Producer = {
        maxBatch: 100,
        async one(payload, endpoint) {
          await manager.queueDelivery({
            subscriptionId: info.targets[endpoint]!,
            eventType: EVENT_TYPE,
            payload,
          });
        },
        async batch(payloads, endpoint) {
          const response = await manager.queueDeliveries({
            deliveries: payloads.map((payload) => ({
              subscriptionId: info.targets[endpoint]!,
              eventType: EVENT_TYPE,
              payload,
            })),
          });
          if (response.totalFailed > 0) {
            const failed = response.results.find((result) => !result.success);
            throw new Error(`batch enqueue failed: ${JSON.stringify(failed)}`);
          }
        },
        async close() {
          await repository.close();
        },
      };
      return producer;
    },

    async start(info, settings) {
      const repository = repositoryFor(databaseUrl, info, Number(settings['poolMax'] ?? 10));
      const manager = new Manager(managerConfig(settings), repository, {
        allowPrivateDestinations: true,
        agentOptions: { connections: Number(settings['connections'] ?? 32) },
      });
      manager.on('worker.error', (event) => {
        console.error('worker.error', event.operation, event.error.message);
      });
      await manager.start();
      const workers: Workers = {
        async stop() {
          await manager.stop({ timeoutMs: Number(settings['stopTimeoutMs'] ?? 5_000) });
          await repository.close();
        },
      };
      return workers;
    },

    async pending(info) {
      const table = newSchemaConfig(info.namespace).tables.deliveries;
      const rows = await query<{ n: string }>(
        `SELECT count(*) AS n FROM ${table} WHERE status = 'pending'`,
      );
      return Number(rows[0]?.n ?? 0);
    },

    async succeeded(info) {
      const table = newSchemaConfig(info.namespace).tables.deliveries;
      const rows = await query<{ n: string }>(
        `SELECT count(*) AS n FROM ${table} WHERE status = 'success'`,
      );
      return Number(rows[0]?.n ?? 0);
    },

    async analyze(info) {
      const { deliveries, deliveryPayloads } = newSchemaConfig(info.namespace).tables;
      await query(`ANALYZE ${deliveries}, ${deliveryPayloads}`);
    },

    async teardown(info) {
      const schema = new SchemaManager(databaseUrl, newSchemaConfig(info.namespace));
      await schema.dropSchema();
      await schema.close();
    },

    describe(settings) {
      return {
        library: 'node-hookd (this checkout)',
        config: managerConfig(settings),
        agentOptions: { connections: Number(settings['connections'] ?? 32) },
        repositoryPoolMax: Number(settings['poolMax'] ?? 10),
        correctness:
          'signatures (Standard Webhooks + go-hookd), attempt rows, idempotency machinery, circuit breaker: all on',
      };
    },
  };
}
