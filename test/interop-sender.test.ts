/**
 * Interoperability at the HTTP level, in both directions:
 *
 * - what a running Manager actually puts on the wire (captured by a plain loopback server)
 *   verifies with the `standardwebhooks` and `svix` packages, as a receiver would use them;
 * - what those packages sign, posted over HTTP, is accepted by every example receiver.
 *
 * Both packages check timestamps against the real clock (±5 minutes), so everything here is sent
 * and verified "now". test/verify-interop.test.ts covers the same signatures without HTTP.
 */
import type { IncomingHttpHeaders } from 'node:http';

import {
  Webhook as StandardWebhook,
  WebhookVerificationError as StandardVerificationError,
} from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';

import type { ReceiverOptions, RunningReceiver } from '../examples/receivers/common.js';
import { start as startExpress } from '../examples/receivers/express.js';
import { start as startFastify } from '../examples/receivers/fastify.js';
import { start as startHono } from '../examples/receivers/hono.js';
import { start as startNodeHttp } from '../examples/receivers/node-http.js';
import { generateSecret, type Manager } from '../src/index.js';
import type { VerifiedWebhook } from '../verify/index.js';
import { startManager, stopAll } from './helpers/manager.js';
import { startReceiver, type Receiver } from './helpers/receiver.js';
import { waitFor } from './helpers/wait.js';

/** Nested objects and arrays, non-ASCII text, escapes a serialiser could write differently. */
const PAYLOAD = {
  type: 'order.created',
  order: {
    id: 'ord_42',
    lines: [
      { sku: 'TASSE-01', qty: 2, price: 12.5, attrs: { colour: 'bleu ciel', size: null } },
      { sku: 'KAFFEE-02', qty: 1, price: 8, attrs: {} },
    ],
    flags: [true, false],
  },
  customer: { name: 'Zoë Ångström-Øster', city: '東京', greeting: 'Grüße 👋🏽' },
  note: 'line\nbreak "quoted" \\ back\u2028separator <b>&amp;</b>',
};

const PLAIN_SECRET = 'a-plain-shared-secret-of-32-chars';

const opened: Array<{ close(): Promise<void> }> = [];

afterEach(async () => {
  await stopAll();
  await Promise.all(opened.splice(0).map((server) => server.close()));
});

async function capture(): Promise<Receiver> {
  const receiver = await startReceiver();
  opened.push(receiver);
  return receiver;
}

/** The headers as the plain string record the reference packages expect. */
function plainHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const record: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === 'string') record[name] = value;
  }
  return record;
}

function settled(manager: Manager, id: string) {
  return waitFor(async () => {
    const delivery = await manager.getDelivery(id);
    return delivery.status === 'pending' ? null : delivery;
  });
}

/** Queues PAYLOAD through a real Manager to a capturing server; returns the request it got. */
async function sendThroughManager(secret: string) {
  const target = await capture();
  const { manager } = await startManager();
  const subscription = await manager.createSubscription({
    tenantId: 'acme',
    url: target.url('/hooks'),
    secret,
    eventTypes: ['order.*'],
  });
  const queued = await manager.queueDelivery({
    subscriptionId: subscription.id,
    eventType: 'order.created',
    payload: PAYLOAD,
  });
  const [received] = await target.waitForRequests(1);
  expect((await settled(manager, queued.id)).status).toBe('success');
  return { queued, body: received!.body, headers: plainHeaders(received!.headers) };
}

describe('webhooks a Manager sends verify with the reference packages', () => {
  it('standardwebhooks and svix accept a delivery signed with a whsec_ secret', async () => {
    const secret = generateSecret();
    const { queued, body, headers } = await sendThroughManager(secret);
    expect(headers['webhook-id']).toBe(queued.id);
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);

    const text = body.toString('utf8');
    expect(new StandardWebhook(secret).verify(text, headers)).toEqual(PAYLOAD);
    expect(new StandardWebhook(secret).verify(body, headers)).toEqual(PAYLOAD);
    expect(new SvixWebhook(secret).verify(text, headers)).toEqual(PAYLOAD);
    expect(new SvixWebhook(secret).verify(body, headers)).toEqual(PAYLOAD);

    // They are really checking: another secret, or one changed byte, is refused.
    expect(() => new StandardWebhook(generateSecret()).verify(text, headers)).toThrow(
      StandardVerificationError,
    );
    expect(() => new SvixWebhook(generateSecret()).verify(text, headers)).toThrow(
      'No matching signature found',
    );
    expect(() =>
      new StandardWebhook(secret).verify(text.replace('ord_42', 'ord_43'), headers),
    ).toThrow('No matching signature found');
  });

  it("standardwebhooks and svix accept a delivery signed with a plain secret, given { format: 'raw' }", async () => {
    const { body, headers } = await sendThroughManager(PLAIN_SECRET);
    const text = body.toString('utf8');

    expect(new StandardWebhook(PLAIN_SECRET, { format: 'raw' }).verify(text, headers)).toEqual(
      PAYLOAD,
    );
    expect(new SvixWebhook(PLAIN_SECRET, { format: 'raw' }).verify(text, headers)).toEqual(PAYLOAD);
    // Without it they read the secret as base64, which this one is not ('-' characters).
    expect(() => new StandardWebhook(PLAIN_SECRET).verify(text, headers)).toThrow(
      'Base64Coder: incorrect characters for decoding',
    );
  });

  it('every attempt is signed afresh with the same webhook-id, and each verifies', async () => {
    const secret = generateSecret();
    const target = await capture();
    target.respond((recorded, response) => {
      response.writeHead(recorded.headers['x-webhook-attempt'] === '1' ? 503 : 200).end();
    });
    const { manager } = await startManager();
    const subscription = await manager.createSubscription({
      tenantId: 'acme',
      url: target.url('/hooks'),
      secret,
      eventTypes: ['order.*'],
    });
    const queued = await manager.queueDelivery({
      subscriptionId: subscription.id,
      eventType: 'order.created',
      payload: PAYLOAD,
    });

    const requests = await target.waitForRequests(2);
    expect((await settled(manager, queued.id)).status).toBe('success');
    for (const received of requests) {
      const headers = plainHeaders(received.headers);
      expect(headers['webhook-id']).toBe(queued.id);
      expect(new StandardWebhook(secret).verify(received.body, headers)).toEqual(PAYLOAD);
      expect(new SvixWebhook(secret).verify(received.body, headers)).toEqual(PAYLOAD);
    }
    // The body bytes never change between attempts; the signature covers each attempt's time.
    expect(requests[1]!.body.equals(requests[0]!.body)).toBe(true);
  });

  it('inline deliveries and test pings verify too', async () => {
    const secret = generateSecret();
    const target = await capture();
    const { manager } = await startManager();
    const inline = await manager.queueInlineDelivery({
      url: target.url('/inline'),
      secret,
      tenantId: 'acme',
      eventType: 'order.created',
      payload: PAYLOAD,
    });
    const [inlineRequest] = await target.waitForRequests(1, { path: '/inline' });
    expect((await settled(manager, inline.id)).status).toBe('success');
    expect(
      new StandardWebhook(secret).verify(inlineRequest!.body, plainHeaders(inlineRequest!.headers)),
    ).toEqual(PAYLOAD);

    const subscription = await manager.createSubscription({
      tenantId: 'acme',
      url: target.url('/ping'),
      secret,
      eventTypes: ['*'],
    });
    expect((await manager.testSubscription(subscription.id)).success).toBe(true);
    const [ping] = target.requestsTo('/ping');
    expect(new SvixWebhook(secret).verify(ping!.body, plainHeaders(ping!.headers))).toMatchObject({
      type: 'test.ping',
    });
  });
});

type Start = (options: ReceiverOptions, port?: number, host?: string) => Promise<RunningReceiver>;

const FRAMEWORKS: ReadonlyArray<{ name: string; start: Start }> = [
  { name: 'express', start: startExpress },
  { name: 'fastify', start: startFastify },
  { name: 'hono', start: startHono },
  { name: 'node-http', start: startNodeHttp },
];

describe.each(FRAMEWORKS)(
  'the $name example receiver accepts what the reference packages sign',
  ({ start }) => {
    async function receiver(secrets: readonly string[]) {
      const events: Array<{ event: unknown; webhook: VerifiedWebhook }> = [];
      const running = await start({
        secrets,
        onEvent: (event, webhook) => void events.push({ event, webhook }),
      });
      opened.push(running);
      return { url: running.url, events };
    }

    async function post(url: string, body: string, headers: Record<string, string>) {
      const response = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
      return `${response.statusCode} ${await response.body.text()}`;
    }

    function signedBy(
      signer: { sign(id: string, timestamp: Date, payload: string): string },
      id: string,
      body: string,
    ): Record<string, string> {
      const now = new Date();
      return {
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
        'webhook-signature': signer.sign(id, now, body),
      };
    }

    // Hand-written JSON: spacing, a trailing zero, a 20-digit integer, \u escapes. Parsing and
    // re-serialising it gives other bytes, so only a receiver that verifies the raw body accepts.
    const BODY =
      '{\n  "type" : "invoice.paid",\n  "data": {"amount": 10.50, "ref": 12345678901234567890,' +
      ' "payer": "Gr\\u00fc\\u00dfe \u6771\u4eac", "items": [ {"n": 1}, {"n": 2} ] }\n}';

    it('standardwebhooks sign() with a whsec_ secret', async () => {
      expect(JSON.stringify(JSON.parse(BODY))).not.toBe(BODY);
      const secret = generateSecret();
      const { url, events } = await receiver([secret]);

      const answer = await post(url, BODY, signedBy(new StandardWebhook(secret), 'msg_sw_1', BODY));

      expect(answer).toBe('200 accepted');
      expect(events).toHaveLength(1);
      expect(events[0]!.event).toEqual(JSON.parse(BODY));
      expect(events[0]!.webhook).toMatchObject({ id: 'msg_sw_1', scheme: 'standard' });
    });

    it("standardwebhooks sign() with a plain secret in { format: 'raw' }", async () => {
      const { url, events } = await receiver([PLAIN_SECRET]);
      const signer = new StandardWebhook(PLAIN_SECRET, { format: 'raw' });

      expect(await post(url, BODY, signedBy(signer, 'msg_sw_raw', BODY))).toBe('200 accepted');
      expect(events.map((e) => e.webhook.id)).toEqual(['msg_sw_raw']);
    });

    it('svix sign() during a rotation: one of two signatures matches one of two secrets', async () => {
      const [oldSecret, newSecret, otherSecret] = [
        generateSecret(),
        generateSecret(),
        generateSecret(),
      ];
      // The receiver already has the new secret and still the old one; the sender signs with the
      // old one and with a secret the receiver does not know, space-separated in one header.
      const { url, events } = await receiver([newSecret, oldSecret]);
      const now = new Date();
      const headers = {
        'webhook-id': 'msg_svix',
        'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
        'webhook-signature': [otherSecret, oldSecret]
          .map((secret) => new SvixWebhook(secret).sign('msg_svix', now, BODY))
          .join(' '),
      };

      expect(await post(url, BODY, headers)).toBe('200 accepted');
      expect(events.map((e) => e.webhook.id)).toEqual(['msg_svix']);

      const unknownOnly = signedBy(new SvixWebhook(otherSecret), 'msg_svix_2', BODY);
      expect(await post(url, BODY, unknownOnly)).toBe('401 invalid_signature');
      expect(events).toHaveLength(1);
    });
  },
);
