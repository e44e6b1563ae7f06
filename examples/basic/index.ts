/**
 * node-hookd in one file: a local receiver that verifies every signature, a Manager on the
 * in-memory MockRepository, and a handful of deliveries — one delivered at once, one that
 * succeeds on a retry, one dead-lettered, one inline, and a duplicate refused by its
 * idempotency key. Run with `npm run demo`; it prints what happened and exits.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { Manager, MockRepository, generateSecret, isHookdError, type Delivery } from 'node-hookd';
import { WebhookVerificationError, verifyWebhook } from 'node-hookd/verify';

const SECRET = generateSecret();
const INLINE_SECRET = generateSecret();

// ── A receiver, as your customer would write it ──────────────────────────────────────────────
let flakyCalls = 0;
const receiver = http.createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const body = Buffer.concat(chunks); // verify the raw bytes, before any JSON parsing
    const secret = request.url === '/inline' ? INLINE_SECRET : SECRET;
    try {
      const webhook = verifyWebhook({ secret, headers: request.headers, body });
      const event = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      const answer = answerFor(request.url ?? '/');
      log(
        'receiver',
        `${request.url} got ${webhook.eventType} ${webhook.id} (attempt ${webhook.attempt}, ` +
          `signature ok) ${JSON.stringify(event)} → ${answer}`,
      );
      response.writeHead(answer).end();
    } catch (error) {
      const reason = error instanceof WebhookVerificationError ? error.code : String(error);
      log('receiver', `${request.url} REJECTED: ${reason}`);
      response.writeHead(401).end();
    }
  });
});

function answerFor(path: string): number {
  if (path === '/broken') return 500;
  if (path === '/flaky') return ++flakyCalls === 1 ? 503 : 200;
  return 200;
}

const started = Date.now();
function log(who: string, message: string): void {
  const elapsed = ((Date.now() - started) / 1000).toFixed(2).padStart(5);
  console.log(`${elapsed}s  ${who.padEnd(8)} ${message}`);
}

async function main(): Promise<void> {
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  // ── The sender ─────────────────────────────────────────────────────────────────────────────
  const repository = new MockRepository();
  const manager = new Manager(
    {
      workerCount: 4,
      defaultMaxRetries: 3,
      defaultInitialBackoffMs: 200,
      defaultMaxBackoffMs: 1_000,
    },
    repository,
    // The demo's receiver runs on loopback, which the egress guard refuses by default.
    { allowPrivateDestinations: true },
  );
  manager.on('delivery.success', (e) =>
    log(
      'manager',
      `✔ delivered ${e.deliveryId} on attempt ${e.attemptNumber} (${e.statusCode}, ${e.durationMs} ms)`,
    ),
  );
  manager.on('metrics.retry_triggered', (e) =>
    log(
      'manager',
      `↻ attempt ${e.attemptNumber} of ${e.deliveryId} got ${e.statusCode}; retrying at ${e.nextRetryAt?.toISOString()}`,
    ),
  );
  manager.on('delivery.dead_letter', (e) =>
    log(
      'manager',
      `✘ dead-lettered ${e.deliveryId} after ${e.attemptNumber} attempts (${e.statusCode})`,
    ),
  );
  await manager.start();

  const orders = await manager.createSubscription({
    tenantId: 'acme',
    url: `${base}/orders`,
    secret: SECRET,
    eventTypes: ['order.*'],
  });
  const flaky = await manager.createSubscription({
    tenantId: 'acme',
    url: `${base}/flaky`,
    secret: SECRET,
    eventTypes: ['order.*'],
  });
  const broken = await manager.createSubscription({
    tenantId: 'acme',
    url: `${base}/broken`,
    secret: SECRET,
    eventTypes: ['*'],
  });

  const queued: Delivery[] = [];
  const queue = async (delivery: Promise<Delivery>) => queued.push(await delivery);
  await queue(
    manager.queueDelivery({
      subscriptionId: orders.id,
      eventType: 'order.created',
      payload: { orderId: 1001, total: 42.5 },
      idempotencyKey: 'order-1001',
    }),
  );
  await queue(
    manager.queueDelivery({
      subscriptionId: orders.id,
      eventType: 'order.shipped',
      payload: { orderId: 1001, carrier: 'DHL' },
    }),
  );
  await queue(
    manager.queueDelivery({
      subscriptionId: flaky.id,
      eventType: 'order.created',
      payload: { orderId: 1002 },
    }),
  );
  await queue(
    manager.queueDelivery({
      subscriptionId: broken.id,
      eventType: 'invoice.paid',
      payload: { invoiceId: 'inv_7' },
    }),
  );
  await queue(
    manager.queueInlineDelivery({
      url: `${base}/inline`,
      secret: INLINE_SECRET,
      tenantId: 'acme',
      eventType: 'user.invited',
      payload: { email: 'ada@example.com' },
    }),
  );
  log('app', `queued ${queued.length} deliveries`);

  try {
    await manager.queueDelivery({
      subscriptionId: orders.id,
      eventType: 'order.created',
      payload: { orderId: 1001 },
      idempotencyKey: 'order-1001',
    });
  } catch (error) {
    if (!isHookdError(error, 'HOOKD_ERR_DUPLICATE_IDEMPOTENCY_KEY')) throw error;
    log(
      'app',
      `duplicate refused: ${error.message} (original ${String(error.details?.['deliveryId'])})`,
    );
  }

  // Wait until every delivery reached a final state.
  const finals = await waitUntilFinal(manager, queued);

  console.log('\nSummary');
  for (const delivery of finals) {
    const attempts = await manager.getDeliveryAttempts(delivery.id);
    const codes = attempts.map((attempt) => attempt.statusCode).join(', ');
    const target = delivery.url ?? (await manager.getSubscription(delivery.subscriptionId!)).url;
    console.log(
      `  ${delivery.id}  ${delivery.eventType.padEnd(14)} ${delivery.status.padEnd(12)} attempts [${codes}]  ${new URL(target).pathname}`,
    );
  }
  const deadLetters = await manager.listDeadLetters({ tenantId: 'acme' });
  console.log(
    `\nDead-letter queue of tenant acme: ${deadLetters.length} (redrive with manager.retryDeadLetter(id))`,
  );

  await manager.stop();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
}

async function waitUntilFinal(manager: Manager, queued: readonly Delivery[]): Promise<Delivery[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const current = await Promise.all(queued.map((delivery) => manager.getDelivery(delivery.id)));
    if (current.every((delivery) => delivery.status !== 'pending')) return current;
    if (Date.now() > deadline) throw new Error('deliveries did not finish in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
  receiver.close();
});
