import { afterEach, describe, expect, it } from 'vitest';

import {
  queueWithinTransaction,
  startWebhookService,
  type WebhookService,
} from '../examples/production/index.js';
import { silentLogger } from '../src/logger.js';
import { newSchemaConfig } from '../src/schema/schema-config.js';
import { SchemaManager } from '../src/schema/schema-manager.js';
import { testDatabaseUrl } from './helpers/database-url.js';
import { randomPrefix } from './helpers/postgres-schema.js';

const prefix = randomPrefix('example');
let service: WebhookService | undefined;

afterEach(async () => {
  await service?.close();
  service = undefined;
  const schema = new SchemaManager(testDatabaseUrl(), newSchemaConfig(prefix));
  await schema.dropSchema();
  await schema.close();
});

describe('examples/production', () => {
  it('boots on PostgreSQL and queues a webhook only when the transaction commits', async () => {
    service = await startWebhookService({
      databaseUrl: testDatabaseUrl(),
      tablePrefix: prefix,
      startWorkers: false,
      logger: silentLogger,
    });
    const { manager } = service;
    const subscription = await manager.createSubscription({
      tenantId: 'acme',
      url: 'https://hooks.example.com/orders',
      secret: 'whsec_ZXhhbXBsZS1zZWNyZXQta2V5LTAxMjM0NTY3ODlhYg==',
      eventTypes: ['order.*'],
    });
    const request = {
      subscriptionId: subscription.id,
      eventType: 'order.created',
      payload: { orderId: 1 },
    };
    const queued = await queueWithinTransaction(service, request);
    expect((await manager.getDelivery(queued.id)).status).toBe('pending');

    let lost: string | undefined;
    await expect(
      queueWithinTransaction(service, request, async (client) => {
        lost = (await manager.queueDelivery(request, { client })).id;
        throw new Error('the order could not be saved');
      }),
    ).rejects.toThrow('the order could not be saved');
    expect(lost).toEqual(expect.any(String));
    await expect(manager.getDelivery(lost!)).rejects.toMatchObject({
      code: 'HOOKD_ERR_DELIVERY_NOT_FOUND',
    });
  });
});
