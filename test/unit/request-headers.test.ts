import { createHmac } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { USER_AGENT } from '../../src/constants.js';
import {
  SigningKeyCache,
  buildDeliveryHeaders,
  isReservedHeaderName,
  type DeliveryHeaderInput,
} from '../../src/delivery/request-headers.js';
import { generateSecret } from '../../src/secret.js';
import { quick, signature, verifyWebhook } from '../../verify/index.js';

const TIMESTAMP = 1_900_000_000;
const BODY = '{"order":42,"note":"héllo"}';

const input = (patch: Partial<DeliveryHeaderInput> = {}): DeliveryHeaderInput => ({
  deliveryId: 'dlv_V1StGXR8_Z5jdHi6B-myT',
  subscriptionId: 'sub_abc',
  eventType: 'order.created',
  attemptNumber: 3,
  idempotencyKey: null,
  customHeaders: {},
  secret: 'subscription-secret',
  body: BODY,
  timestampSeconds: TIMESTAMP,
  ...patch,
});

const goSignature = (key: string | Buffer, body = BODY) =>
  createHmac('sha256', key).update(`${TIMESTAMP}.${body}`).digest('hex');
const standardSignature = (key: Buffer, id: string, body = BODY) =>
  createHmac('sha256', key).update(`${id}.${TIMESTAMP}.${body}`).digest('base64');

const verifyAt = (
  headers: Record<string, string>,
  secret: string,
  scheme: 'auto' | 'go-hookd' | 'standard',
) =>
  verifyWebhook({
    secret,
    headers,
    body: BODY,
    now: () => TIMESTAMP * 1000,
    scheme,
  });

describe('buildDeliveryHeaders', () => {
  it('produces the exact header set of a subscription delivery', () => {
    const id = 'dlv_V1StGXR8_Z5jdHi6B-myT';
    expect(buildDeliveryHeaders(input())).toEqual({
      'Content-Type': 'application/json',
      'User-Agent': USER_AGENT,
      'webhook-id': id,
      'webhook-timestamp': String(TIMESTAMP),
      'webhook-signature': `v1,${standardSignature(Buffer.from('subscription-secret'), id)}`,
      'X-Webhook-Timestamp': String(TIMESTAMP),
      'X-Webhook-Signature': goSignature('subscription-secret'),
      'X-Webhook-Delivery-Id': id,
      'X-Webhook-Subscription-Id': 'sub_abc',
      'X-Webhook-Event-Type': 'order.created',
      'X-Webhook-Attempt': '3',
    });
    expect(USER_AGENT).toBe('node-hookd/0.1.0');
  });

  it('sends an empty subscription id header for inline deliveries', () => {
    const headers = buildDeliveryHeaders(input({ subscriptionId: null }));
    expect(headers['X-Webhook-Subscription-Id']).toBe('');
    expect(Object.keys(headers)).toContain('X-Webhook-Subscription-Id');
  });

  it('sends the idempotency key only when there is one', () => {
    expect(buildDeliveryHeaders(input())).not.toHaveProperty('X-Webhook-Idempotency-Key');
    expect(buildDeliveryHeaders(input({ idempotencyKey: '' }))).not.toHaveProperty(
      'X-Webhook-Idempotency-Key',
    );
    expect(
      buildDeliveryHeaders(input({ idempotencyKey: 'order-42 created' }))[
        'X-Webhook-Idempotency-Key'
      ],
    ).toBe('order-42 created');
  });

  it('adds traceparent only when tracing provides one', () => {
    expect(buildDeliveryHeaders(input())).not.toHaveProperty('traceparent');
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect(buildDeliveryHeaders(input({ traceparent })).traceparent).toBe(traceparent);
  });

  it('lets custom headers replace Content-Type and User-Agent, whatever their case', () => {
    const headers = buildDeliveryHeaders(
      input({
        customHeaders: {
          'content-type': 'application/cloudevents+json',
          'USER-AGENT': 'acme/1',
          Authorization: 'Bearer t',
        },
      }),
    );
    expect(headers['content-type']).toBe('application/cloudevents+json');
    expect(headers['USER-AGENT']).toBe('acme/1');
    expect(headers['Authorization']).toBe('Bearer t');
    expect(headers).not.toHaveProperty('Content-Type');
    expect(headers).not.toHaveProperty('User-Agent');
  });

  it('never lets custom headers replace or add node-hookd headers, even unvalidated ones', () => {
    const forged = {
      'X-Webhook-Signature': 'forged',
      'x-webhook-timestamp': '1',
      'X-WEBHOOK-DELIVERY-ID': 'dlv_forged',
      'X-Webhook-Subscription-Id': 'sub_forged',
      'X-Webhook-Event-Type': 'forged',
      'X-Webhook-Attempt': '99',
      'X-Webhook-Idempotency-Key': 'forged',
      'X-Webhook-Anything': 'forged',
      'webhook-id': 'forged',
      'Webhook-Timestamp': '1',
      'WEBHOOK-SIGNATURE': 'v1,forged',
      traceparent: 'forged',
      TraceState: 'forged',
      Host: 'internal.example',
      'Content-Length': '1',
      'Transfer-Encoding': 'chunked',
      Connection: 'close',
    };
    const headers = buildDeliveryHeaders(input({ customHeaders: forged }));
    const values = Object.values(headers);
    expect(values.some((value) => value.includes('forged'))).toBe(false);
    const lowerNames = Object.keys(headers).map((name) => name.toLowerCase());
    for (const name of [
      'host',
      'content-length',
      'transfer-encoding',
      'connection',
      'traceparent',
      'tracestate',
    ]) {
      expect(lowerNames).not.toContain(name);
    }
    expect(headers).not.toHaveProperty('X-Webhook-Idempotency-Key');
    expect(headers['X-Webhook-Attempt']).toBe('3');
    // No duplicate names in different cases.
    expect(new Set(lowerNames).size).toBe(lowerNames.length);
    // With a real key, a forged custom header is replaced by the real one.
    const keyed = buildDeliveryHeaders(input({ customHeaders: forged, idempotencyKey: 'real' }));
    expect(keyed['X-Webhook-Idempotency-Key']).toBe('real');
    expect(Object.values(keyed).some((value) => value.includes('forged'))).toBe(false);
  });

  it('signs so that verifyWebhook accepts both schemes', () => {
    const headers = buildDeliveryHeaders(input({ idempotencyKey: 'k' }));
    expect(verifyAt(headers, 'subscription-secret', 'standard')).toMatchObject({
      scheme: 'standard',
      id: 'dlv_V1StGXR8_Z5jdHi6B-myT',
      eventType: 'order.created',
      attempt: 3,
    });
    expect(verifyAt(headers, 'subscription-secret', 'go-hookd').scheme).toBe('go-hookd');
    expect(
      signature({
        secret: 'subscription-secret',
        signature: headers['X-Webhook-Signature']!,
        timestamp: headers['X-Webhook-Timestamp']!,
        payload: BODY,
        now: () => TIMESTAMP * 1000,
      }).valid,
    ).toBe(true);
    expect(verifyAt(headers, 'subscription-secret', 'auto').scheme).toBe('standard');
    expect(() => verifyAt(headers, 'other-secret', 'standard')).toThrow(/does not match/);
    expect(() => verifyAt(headers, 'other-secret', 'go-hookd')).toThrow(/does not match/);
    expect(() =>
      verifyWebhook({
        secret: 'subscription-secret',
        headers,
        body: `${BODY} `,
        now: () => TIMESTAMP * 1000,
      }),
    ).toThrow(/does not match/);
  });

  it('signs whsec_ secrets with the decoded key (standard) and the full text (go-hookd)', () => {
    const secret = generateSecret();
    const headers = buildDeliveryHeaders(input({ secret }));
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    expect(key).toHaveLength(32);
    expect(headers['webhook-signature']).toBe(
      `v1,${standardSignature(key, 'dlv_V1StGXR8_Z5jdHi6B-myT')}`,
    );
    expect(headers['X-Webhook-Signature']).toBe(goSignature(secret));
    expect(verifyAt(headers, secret, 'standard').scheme).toBe('standard');
    expect(verifyAt(headers, secret, 'go-hookd').scheme).toBe('go-hookd');
  });

  it('signs with an empty key when the secret is empty (inline deliveries without one)', () => {
    const headers = buildDeliveryHeaders(input({ secret: '', subscriptionId: null }));
    expect(quick('', String(TIMESTAMP), BODY, headers['X-Webhook-Signature']!)).toBe(true);
    expect(headers['X-Webhook-Signature']).toBe(goSignature(''));
    expect(headers['webhook-signature']).toBe(
      `v1,${standardSignature(Buffer.alloc(0), 'dlv_V1StGXR8_Z5jdHi6B-myT')}`,
    );
  });

  it('does not throw for a whsec_ secret that is not base64: go-hookd signature only', () => {
    const secret = 'whsec_abc';
    const headers = buildDeliveryHeaders(input({ secret }));
    expect(headers).not.toHaveProperty('webhook-signature');
    expect(headers['webhook-id']).toBe('dlv_V1StGXR8_Z5jdHi6B-myT');
    expect(headers['X-Webhook-Signature']).toBe(goSignature(secret));
    // A receiver in auto mode falls back to the go-hookd scheme and accepts it.
    expect(verifyAt(headers, secret, 'auto').scheme).toBe('go-hookd');
  });

  it('signs the exact body bytes, including multi-byte characters', () => {
    const body = '{"emoji":"🎉","nul":"\\u0000"}';
    const headers = buildDeliveryHeaders(input({ body }));
    expect(headers['X-Webhook-Signature']).toBe(goSignature('subscription-secret', body));
  });
});

describe('isReservedHeaderName', () => {
  it.each([
    'X-Webhook-Signature',
    'x-webhook-signature',
    'X-Webhook-Idempotency-Key',
    'X-WEBHOOK-ANYTHING',
    'webhook-id',
    'Webhook-Signature',
    'webhook-anything',
    'Host',
    'content-length',
    'Transfer-Encoding',
    'Connection',
    'Keep-Alive',
    'Upgrade',
    'TE',
    'Trailer',
    'Expect',
    'Proxy-Connection',
    'Proxy-Authorization',
    'traceparent',
    'Tracestate',
  ])('reserves %s', (name) => {
    expect(isReservedHeaderName(name)).toBe(true);
  });

  it.each(['Content-Type', 'User-Agent', 'Authorization', 'X-Webhooks', 'X-Custom', 'webhookid'])(
    'allows %s',
    (name) => {
      expect(isReservedHeaderName(name)).toBe(false);
    },
  );
});

describe('SigningKeyCache', () => {
  it('derives the keys of a secret once, and signs as without a cache', () => {
    const cache = new SigningKeyCache();
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    expect(cache.keysOf(secret)).toBe(cache.keysOf(secret));
    expect(buildDeliveryHeaders(input({ secret, signingKeys: cache }))).toEqual(
      buildDeliveryHeaders(input({ secret })),
    );
    // A rotated secret is another key.
    const rotated = cache.keysOf('whsec_cm90YXRlZC1zZWNyZXQtcm90YXRlZA==');
    expect(rotated).not.toBe(cache.keysOf(secret));
    expect(Buffer.from(rotated.standard!).toString()).toBe('rotated-secret-rotated');
  });

  it('stays bounded: a full cache starts over', () => {
    const cache = new SigningKeyCache(2);
    const first = cache.keysOf('one');
    cache.keysOf('two');
    expect(cache.keysOf('one')).toBe(first);
    cache.keysOf('three'); // full: emptied, then holds "three"
    expect(cache.keysOf('one')).not.toBe(first);
  });
});
