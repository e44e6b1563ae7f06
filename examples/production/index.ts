/**
 * node-hookd in production: PostgreSQL storage, migrations at boot, webhooks queued inside the
 * application's own transactions, and a graceful shutdown on SIGTERM.
 *
 *   DATABASE_URL=postgres://user:pass@host/db HOOKD_PREFIX=myservice \
 *     npx tsx examples/production/index.ts
 *
 * Importing this module starts nothing; `main()` runs only when the file is executed.
 */
import { pathToFileURL } from 'node:url';

import pg from 'pg';

import {
  Manager,
  PostgresRepository,
  SchemaManager,
  consoleLogger,
  newSchemaConfig,
  type Delivery,
  type Logger,
  type QueueDeliveryRequest,
} from 'node-hookd';

/** What the application keeps while webhooks are being sent. */
export interface WebhookService {
  readonly manager: Manager;
  /** The application's own pool: node-hookd shares it and never closes it. */
  readonly pool: pg.Pool;
  /** Stops delivering (in-flight attempts get `shutdownTimeoutMs`), then closes the pool. */
  close(): Promise<void>;
}

/** Boots node-hookd on PostgreSQL. */
export async function startWebhookService(options: {
  databaseUrl: string;
  /** One prefix per service sharing the database: its tables are `{prefix}_hookd_…`. */
  tablePrefix: string;
  /** @default true */
  startWorkers?: boolean;
  /** A pino logger, or any with debug/info/warn/error. @default consoleLogger() */
  logger?: Logger;
}): Promise<WebhookService> {
  const logger = options.logger ?? consoleLogger();
  const pool = new pg.Pool({
    connectionString: options.databaseUrl,
    max: 20,
    // pg waits forever for a connection by default: give up, and notice dead sockets.
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
  });
  // An idle connection that drops must not crash the process; the pool replaces it.
  pool.on('error', (error) => logger.warn({ error }, 'idle database connection lost'));

  // 1. Create or upgrade the tables. Safe from every instance at once: one migrates under an
  //    advisory lock, the others wait and find nothing to do. Nothing is ever dropped.
  const schema = new SchemaManager(pool, newSchemaConfig(options.tablePrefix));
  await schema.ensureSchema();

  // 2. The repository, on the same pool and prefix.
  const repository = new PostgresRepository(pool, { tablePrefix: options.tablePrefix });
  await repository.ping();

  // 3. The manager. Every process may queue; those that start it also deliver.
  const manager = new Manager({ workerCount: 20, maxBatchSize: 5 }, repository, { logger });
  manager.on('delivery.dead_letter', (event) =>
    logger.warn({ deliveryId: event.deliveryId }, 'webhook dead-lettered'),
  );
  if (options.startWorkers !== false) await manager.start();

  return {
    manager,
    pool,
    async close() {
      await manager.stop();
      await repository.close();
      await pool.end();
    },
  };
}

/**
 * Runs `work` in one database transaction. Webhooks queued inside it with `{ client }` exist —
 * and are sent — only if the transaction commits: no webhook for an order that was rolled back,
 * no lost webhook for one that was committed.
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** An application write and its webhook, atomically. */
export function queueWithinTransaction(
  service: WebhookService,
  request: QueueDeliveryRequest,
  applicationWrite: (client: pg.PoolClient) => Promise<void> = async () => undefined,
): Promise<Delivery> {
  return inTransaction(service.pool, async (client) => {
    await applicationWrite(client); // e.g. INSERT INTO orders …
    return service.manager.queueDelivery(request, { client });
  });
}

async function main(): Promise<void> {
  const databaseUrl = process.env['DATABASE_URL'];
  if (!databaseUrl) throw new Error('DATABASE_URL is required');
  const logger = consoleLogger();
  const service = await startWebhookService({
    databaseUrl,
    tablePrefix: process.env['HOOKD_PREFIX'] ?? 'myservice',
    logger,
  });
  logger.info({}, 'webhook service started');

  // Graceful shutdown belongs to the application, never to the library.
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    service.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
