/**
 * The example receivers in examples/receivers/, driven by a real Manager over loopback HTTP: each
 * one must accept what node-hookd sends, refuse what it did not sign, and process a redelivered
 * webhook only once.
 */
import { once } from 'node:events';
import http from 'node:http';

import { getRequestListener } from '@hono/node-server';
import express from 'express';
import { Hono } from 'hono';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';

import {
  InMemoryDeduplicator,
  running,
  type ReceiverOptions,
  type RunningReceiver,
} from '../examples/receivers/common.js';
import { expressWebhookRouter, start as startExpress } from '../examples/receivers/express.js';
import { start as startFastify } from '../examples/receivers/fastify.js';
import { createHonoReceiver, start as startHono } from '../examples/receivers/hono.js';
import { start as startNodeHttp } from '../examples/receivers/node-http.js';
import { MAX_PAYLOAD_SIZE, generateSecret, type Delivery, type Manager } from '../src/index.js';
import {
  createSignatureHeaders,
  verifyRequest,
  verifyWebhook,
  type VerifiedWebhook,
} from '../verify/index.js';
import { startManager, stopAll } from './helpers/manager.js';
import { startReceiver } from './helpers/receiver.js';
import { nextEvent, waitFor } from './helpers/wait.js';

type Start = (options: ReceiverOptions, port?: number, host?: string) => Promise<RunningReceiver>;

const FRAMEWORKS: ReadonlyArray<{ name: string; start: Start }> = [
  { name: 'express', start: startExpress },
  { name: 'fastify', start: startFastify },
  { name: 'hono', start: startHono },
  { name: 'node-http', start: startNodeHttp },
];

/** A started receiver plus everything its callbacks saw. */
interface Harness extends RunningReceiver {
  /** Every onEvent call, in order (including calls whose handling then failed). */
  readonly events: Array<{ event: unknown; webhook: VerifiedWebhook }>;
  readonly duplicates: VerifiedWebhook[];
  readonly errors: unknown[];
}

const open: RunningReceiver[] = [];

afterEach(async () => {
  // Managers first: their keep-alive connections would otherwise hold the servers open.
  await stopAll();
  await Promise.all(open.splice(0).map((receiver) => receiver.close()));
});

/**
 * Starts `start` on 127.0.0.1 with recording callbacks; `handle` runs inside onEvent after the
 * call is recorded (to block or fail).
 */
async function startHarness(
  start: Start,
  secrets: readonly string[],
  handle: (event: unknown, webhook: VerifiedWebhook) => void | Promise<void> = () => undefined,
): Promise<Harness> {
  const events: Harness['events'] = [];
  const duplicates: VerifiedWebhook[] = [];
  const errors: unknown[] = [];
  const receiver = await start(
    {
      secrets,
      onEvent: async (event, webhook) => {
        events.push({ event, webhook });
        await handle(event, webhook);
      },
      onDuplicate: (webhook) => void duplicates.push(webhook),
      onError: (error) => void errors.push(error),
    },
    0,
    '127.0.0.1',
  );
  open.push(receiver);
  return { ...receiver, events, duplicates, errors };
}

async function post(
  url: string,
  body: string | Buffer,
  headers: Record<string, string>,
): Promise<{ status: number; text: string }> {
  const response = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: response.statusCode, text: await response.body.text() };
}

/** The delivery once it has left `pending` (success, failed or dead_letter). */
function settled(manager: Manager, id: string): Promise<Delivery> {
  return waitFor(
    async () => {
      const delivery = await manager.getDelivery(id);
      return delivery.status === 'pending' ? null : delivery;
    },
    { message: `delivery ${id} to settle` },
  );
}

async function subscribe(manager: Manager, url: string, secret: string, maxAttempts?: number) {
  return manager.createSubscription({
    tenantId: 'acme',
    url,
    secret,
    eventTypes: ['order.*', 'invoice.*'],
    ...(maxAttempts === undefined ? {} : { retryPolicy: { maxAttempts } }),
  });
}

describe.each(FRAMEWORKS)('the $name example receiver', ({ start }) => {
  it('accepts a webhook a real Manager delivers, during a secret rotation', async () => {
    const secret = generateSecret();
    // The receiver already knows the next secret; the subscription still signs with the old one.
    const receiver = await startHarness(start, [generateSecret(), secret]);
    const { manager } = await startManager();
    const subscription = await subscribe(manager, receiver.url, secret);
    const payload = {
      order: { id: 'ord_1', lines: [{ sku: 'A-1', qty: 2, price: 19.99 }], tags: [] },
      customer: { name: 'Zoë Ångström', city: '東京' },
      note: 'ships 🚚 <today> & "soon"',
    };

    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'order.created',
      payload,
    });

    expect((await settled(manager, queued.id)).status).toBe('success');
    expect(receiver.events).toHaveLength(1);
    expect(receiver.events[0]!.event).toEqual(payload);
    expect(receiver.events[0]!.webhook).toMatchObject({
      id: queued.id,
      scheme: 'standard',
      eventType: 'order.created',
      attempt: 1,
    });
    expect(receiver.duplicates).toEqual([]);
    const [attempt] = await manager.getDeliveryAttempts(queued.id);
    expect(attempt).toMatchObject({ statusCode: 200, responseBody: 'accepted', error: null });
  });

  it("accepts node-hookd's largest payload (1 MiB of JSON, multi-byte characters across chunks)", async () => {
    const secret = generateSecret();
    const receiver = await startHarness(start, [secret]);
    const { manager } = await startManager();
    const subscription = await subscribe(manager, receiver.url, secret);
    // {"blob":"x é é …"}: exactly MAX_PAYLOAD_SIZE bytes; two-byte characters at odd offsets, so
    // socket reads split some of them.
    const blob = `x${'é'.repeat((MAX_PAYLOAD_SIZE - 12) / 2)}`;
    const payload = { blob };
    expect(Buffer.byteLength(JSON.stringify(payload))).toBe(MAX_PAYLOAD_SIZE);

    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'order.exported',
      payload,
    });

    expect((await settled(manager, queued.id)).status).toBe('success');
    expect(receiver.events).toHaveLength(1);
    expect((receiver.events[0]!.event as { blob: string }).blob === blob).toBe(true);
  });

  it('refuses a body changed by one byte under the original signature, without processing it', async () => {
    const secret = generateSecret();
    const receiver = await startHarness(start, [secret]);
    const body = JSON.stringify({ type: 'invoice.paid', invoice: 'inv_7', amount: 100 });
    // Both signatures, exactly as node-hookd sends them.
    const headers = createSignatureHeaders({ secret, id: 'msg_tampered', body });
    const tampered = body.replace('"amount":100', '"amount":900');
    expect(Buffer.compare(Buffer.from(tampered), Buffer.from(body))).not.toBe(0);
    expect(Buffer.byteLength(tampered)).toBe(Buffer.byteLength(body));

    expect(await post(receiver.url, tampered, headers)).toEqual({
      status: 401,
      text: 'invalid_signature',
    });
    expect(receiver.events).toEqual([]);

    // The same headers with the original bytes pass: it was the changed byte that was refused.
    expect(await post(receiver.url, body, headers)).toEqual({ status: 200, text: 'accepted' });
    expect(receiver.events.map((e) => e.event)).toEqual([JSON.parse(body)]);
  });

  it('refuses a request signed with another secret, and one carrying only the go-hookd signature', async () => {
    const secret = generateSecret();
    const receiver = await startHarness(start, [secret]);
    const body = JSON.stringify({ type: 'invoice.paid', invoice: 'inv_8' });

    const foreign = createSignatureHeaders({ secret: generateSecret(), id: 'msg_foreign', body });
    expect(await post(receiver.url, body, foreign)).toEqual({
      status: 401,
      text: 'invalid_signature',
    });
    // A genuine go-hookd signature whose delivery id is not signed: a replay could pick any id
    // and get past deduplication, so the receivers insist on the Standard Webhooks signature.
    const goOnly = createSignatureHeaders({ secret, id: 'msg_go', body, schemes: ['go-hookd'] });
    expect(
      await post(receiver.url, body, { ...goOnly, 'x-webhook-delivery-id': 'msg_fresh' }),
    ).toEqual({
      status: 401,
      text: 'missing_signature',
    });
    expect(receiver.events).toEqual([]);
  });

  it('acknowledges repeated and concurrent copies of one webhook but processes it once', async () => {
    const secret = generateSecret();
    const receiver = await startHarness(start, [secret]);
    const body = JSON.stringify({ type: 'invoice.paid', invoice: 'inv_9' });
    const headers = createSignatureHeaders({ secret, id: 'msg_twice', body });

    expect(await post(receiver.url, body, headers)).toEqual({ status: 200, text: 'accepted' });
    expect(await post(receiver.url, body, headers)).toEqual({ status: 200, text: 'duplicate' });
    expect(receiver.events).toHaveLength(1);
    expect(receiver.duplicates.map((w) => w.id)).toEqual(['msg_twice']);

    const other = createSignatureHeaders({ secret, id: 'msg_thrice', body });
    const answers = await Promise.all([1, 2, 3].map(() => post(receiver.url, body, other)));
    expect(answers.map((a) => `${a.status} ${a.text}`).sort()).toEqual([
      '200 accepted',
      '200 duplicate',
      '200 duplicate',
    ]);
    expect(receiver.events.map((e) => e.webhook.id)).toEqual(['msg_twice', 'msg_thrice']);
  });

  it('acknowledges the redrive of a webhook whose first answer was lost, without processing it again', async () => {
    const secret = generateSecret();
    let senderGaveUp: Promise<unknown> = Promise.resolve();
    // The first copy is processed, but its answer is held until the sender has timed out and
    // dead-lettered the delivery: from the sender's side it failed.
    const receiver = await startHarness(start, [secret], async () => {
      await senderGaveUp;
    });
    const { manager } = await startManager({ deliveryTimeoutMs: 1_000 });
    const subscription = await subscribe(manager, receiver.url, secret, 1);
    senderGaveUp = nextEvent(manager, 'delivery.dead_letter');

    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'order.paid',
      payload: { order: 'ord_2', total: 42 },
    });
    expect(await senderGaveUp).toMatchObject({ deliveryId: queued.id, statusCode: 0 });
    expect(receiver.events).toHaveLength(1);

    await manager.retryDeadLetter(queued.id);

    const done = await settled(manager, queued.id);
    expect(done.status).toBe('success');
    expect(receiver.events).toHaveLength(1);
    expect(receiver.duplicates.map((w) => [w.id, w.attempt])).toEqual([[queued.id, 2]]);
    const attempts = await manager.getDeliveryAttempts(queued.id);
    expect(attempts.map((a) => [a.attemptNumber, a.statusCode, a.responseBody])).toEqual([
      [1, 0, null],
      [2, 200, 'duplicate'],
    ]);
  });

  it('answers 500 when processing fails, and processes the retry of the same webhook-id', async () => {
    const secret = generateSecret();
    let failures = 1;
    const receiver = await startHarness(start, [secret], () => {
      if (failures-- > 0) throw new Error('database unavailable');
    });
    const { manager } = await startManager();
    const subscription = await subscribe(manager, receiver.url, secret, 3);

    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'order.shipped',
      payload: { order: 'ord_3' },
    });

    expect((await settled(manager, queued.id)).status).toBe('success');
    expect(receiver.events.map((e) => [e.webhook.id, e.webhook.attempt])).toEqual([
      [queued.id, 1],
      [queued.id, 2],
    ]);
    expect(receiver.duplicates).toEqual([]);
    expect(receiver.errors).toEqual([new Error('database unavailable')]);
    const attempts = await manager.getDeliveryAttempts(queued.id);
    expect(attempts.map((a) => [a.statusCode, a.responseBody])).toEqual([
      [500, 'internal_error'],
      [200, 'accepted'],
    ]);
  });

  it('refuses to start without a usable secret', async () => {
    const onEvent = () => undefined;
    await expect(start({ secrets: [], onEvent })).rejects.toMatchObject({
      code: 'missing_secret',
    });
    await expect(start({ secrets: ['whsec_not base64!'], onEvent })).rejects.toMatchObject({
      code: 'invalid_secret',
    });
  });
});

describe('framework traps the examples avoid', () => {
  async function serve(
    handler: (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>,
  ): Promise<RunningReceiver> {
    const server = http.createServer((req, res) => {
      Promise.resolve(handler(req, res)).catch((error: unknown) => res.destroy(error as Error));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const receiver = running(server, '127.0.0.1', '/webhooks');
    open.push(receiver);
    return receiver;
  }

  it('Express: a global express.json() mounted before the webhook router leaves no raw body', async () => {
    const secret = generateSecret();
    const events: unknown[] = [];
    const failures: string[] = [];
    const app = express();
    app.use(express.json()); // the mistake
    app.use(
      expressWebhookRouter({ secrets: [secret], onEvent: (event) => void events.push(event) }),
    );
    app.use(((error: Error, _req, res, _next) => {
      failures.push(error.message);
      res.status(500).end();
    }) as express.ErrorRequestHandler);
    const receiver = await serve(app);
    const body = JSON.stringify({ type: 'invoice.paid' });

    const answer = await post(
      receiver.url,
      body,
      createSignatureHeaders({ secret, id: 'm', body }),
    );

    expect(answer.status).toBe(500);
    expect(events).toEqual([]);
    expect(failures).toEqual([expect.stringContaining('before app.use(express.json())')]);
    // What verifyWebhook itself says when handed the parsed object.
    expect(() => verifyWebhook({ secret, headers: {}, body: JSON.parse(body) as never })).toThrow(
      expect.objectContaining({ code: 'invalid_body' }),
    );
  });

  it('Fastify: the Buffer parser stays inside the webhook plugin; other routes get parsed JSON', async () => {
    const secret = generateSecret();
    const receiver = await startHarness(startFastify, [secret]);
    const echo = receiver.url.replace('/webhooks', '/api/echo');

    const answer = await request(echo, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: '{"a": [1, 2]}',
    });

    expect(answer.statusCode).toBe(200);
    expect(await answer.body.json()).toEqual({ parsed: { a: [1, 2] } });
    // And the webhook route takes a charset parameter in its content type.
    const body = '{"type": "invoice.paid"}';
    const headers = {
      ...createSignatureHeaders({ secret, id: 'msg_cs', body }),
      'content-type': 'application/json; charset=utf-8',
    };
    expect(await post(receiver.url, body, headers)).toEqual({ status: 200, text: 'accepted' });
  });

  it('Hono: c.req.arrayBuffer() still has the bytes after a middleware read c.req.json(); c.req.raw does not', async () => {
    const secret = generateSecret();
    const events: unknown[] = [];
    const peeked: unknown[] = [];
    const app = new Hono();
    app.use('/webhooks', async (c, next) => {
      peeked.push(await c.req.json()); // e.g. a validator or logging middleware
      await next();
    });
    app.route('/', createHonoReceiver({ secrets: [secret], onEvent: (e) => void events.push(e) }));
    const rawReader = new Hono();
    rawReader.use('/webhooks', async (c, next) => {
      await c.req.json();
      await next();
    });
    rawReader.post('/webhooks', async (c) => {
      try {
        await verifyRequest(c.req.raw, { secret });
        return c.text('accepted');
      } catch (error) {
        return c.text((error as { code: string }).code, 401);
      }
    });
    const body = '{ "type": "invoice.paid", "n": 1.50 }';
    const headers = createSignatureHeaders({ secret, id: 'msg_hono', body });

    const viaCache = await serve(getRequestListener(app.fetch));
    expect(await post(viaCache.url, body, headers)).toEqual({ status: 200, text: 'accepted' });
    expect(events).toEqual([{ type: 'invoice.paid', n: 1.5 }]);
    expect(peeked).toEqual(events);

    const viaRaw = await serve(getRequestListener(rawReader.fetch));
    expect(await post(viaRaw.url, body, headers)).toEqual({ status: 401, text: 'invalid_body' });
  });
});

describe('the in-memory deduplicator', () => {
  it('runs a concurrent copy never, and a copy after a failure once more', async () => {
    const deduplicator = new InMemoryDeduplicator();
    let release!: () => void;
    const runs: string[] = [];
    const first = deduplicator.once('id', async () => {
      runs.push('first');
      await new Promise<void>((resolve) => (release = resolve));
    });
    const second = deduplicator.once('id', () => void runs.push('second'));
    release();
    expect(await Promise.all([first, second])).toEqual(['processed', 'duplicate']);
    expect(runs).toEqual(['first']);

    const failing = deduplicator.once('other', () => {
      throw new Error('boom');
    });
    const waiting = deduplicator.once('other', () => void runs.push('never'));
    await expect(failing).rejects.toThrow('boom');
    await expect(waiting).rejects.toThrow('boom');
    expect(await deduplicator.once('other', () => void runs.push('retry'))).toBe('processed');
    expect(runs).toEqual(['first', 'retry']);
  });

  it('forgets the oldest ids beyond its capacity', async () => {
    const deduplicator = new InMemoryDeduplicator(2);
    for (const id of ['a', 'b', 'c']) await deduplicator.once(id, () => undefined);
    expect(await deduplicator.once('c', () => undefined)).toBe('duplicate');
    expect(await deduplicator.once('b', () => undefined)).toBe('duplicate');
    expect(await deduplicator.once('a', () => undefined)).toBe('processed');
  });
});

// Defects in node-hookd found while writing the receivers. Each test asserts today's behaviour
// precisely, so it fails (and must be inverted) once the defect is fixed.
describe('defects found while writing these receivers (fixed)', () => {
  it('gives every test ping its own webhook-id, so a deduplicating receiver processes each', async () => {
    const secret = generateSecret();
    const receiver = await startHarness(startNodeHttp, [secret]);
    const { manager } = await startManager();
    const answers: string[] = [];
    const ids: string[] = [];
    for (const tenantId of ['tenant-a', 'tenant-b']) {
      const subscription = await manager.createSubscription({
        tenantId,
        url: receiver.url,
        secret,
        eventTypes: ['*'],
      });
      const result = await manager.testSubscription(subscription.id);
      expect(result).toMatchObject({ success: true, statusCode: 200 });
      answers.push(result.responseBody ?? '');
      ids.push(result.pingId);
    }
    expect(answers).toEqual(['accepted', 'accepted']);
    expect(new Set(ids).size).toBe(2);
    expect(receiver.events.map((e) => e.webhook.id)).toEqual(ids);
    expect(receiver.duplicates).toEqual([]);
  });

  it('refuses, by default, a replay stripped of webhook-signature that carries an id of its own choosing', async () => {
    const secret = generateSecret();
    const capture = await startReceiver();
    open.push({ port: capture.port, url: capture.url(), close: () => capture.close() });
    const { manager } = await startManager();
    const subscription = await subscribe(manager, capture.url('/webhooks'), secret);
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'invoice.paid',
      payload: { invoice: 'inv_1', amount: 100 },
    });
    const [original] = await capture.waitForRequests(1);
    const { body, headers } = original!;

    expect(verifyWebhook({ secret, headers, body })).toMatchObject({
      id: queued.id,
      idSigned: true,
    });
    // A replay within the five-minute window: same body and go-hookd signature, the
    // webhook-* headers dropped, X-Webhook-Delivery-Id (not covered by that signature) changed.
    const replayed = Object.fromEntries(
      Object.entries(headers).filter(([name]) => !name.startsWith('webhook-')),
    );
    replayed['x-webhook-delivery-id'] = 'dlv_replayed';
    expect(() => verifyWebhook({ secret, headers: replayed, body })).toThrow(
      expect.objectContaining({ code: 'missing_signature' }),
    );
    // Accepting go-hookd senders is an explicit choice, and then the id is flagged unsigned.
    expect(verifyWebhook({ secret, headers: replayed, body, scheme: 'auto' })).toMatchObject({
      scheme: 'go-hookd',
      id: 'dlv_replayed',
      idSigned: false,
    });
  });

  it('refuses a whsec_ secret that is not base64 when the subscription is written', async () => {
    const malformed = 'whsec_this-is-not-base64!';
    const target = await startReceiver();
    open.push({ port: target.port, url: target.url(), close: () => target.close() });
    const { manager } = await startManager();
    await expect(subscribe(manager, target.url('/webhooks'), malformed)).rejects.toMatchObject({
      code: 'HOOKD_ERR_INVALID_ARGUMENT',
      field: 'secret',
    });
    await expect(
      manager.queueInlineDelivery({
        url: target.url('/inline'),
        secret: malformed,
        tenantId: 't',
        eventType: 'invoice.paid',
        payload: {},
      }),
    ).rejects.toMatchObject({ field: 'secret' });
    // Nor can a receiver be configured with it.
    await expect(
      startNodeHttp({ secrets: [malformed], onEvent: () => undefined }),
    ).rejects.toMatchObject({ code: 'invalid_secret' });
    expect(target.requests).toHaveLength(0);
  });
});
