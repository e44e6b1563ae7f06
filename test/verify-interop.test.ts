/**
 * The Standard Webhooks signature node-hookd sends must verify with the reference libraries
 * receivers actually use, and what those libraries sign must verify with node-hookd/verify.
 *
 * `standardwebhooks` checks timestamps against the real clock (±5 minutes), so everything here is
 * signed "now".
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';

import {
  Webhook as StandardWebhook,
  WebhookVerificationError as StandardVerificationError,
} from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import { describe, expect, it } from 'vitest';

import {
  createSignatureHeaders,
  verifyWebhook,
  type WebhookVerificationErrorCode,
} from '../verify/index.js';

const PAYLOAD = { type: 'invoice.paid', data: { id: 'inv_1', amount: 1999, note: 'Grüße 🚀' } };
const BODY = JSON.stringify(PAYLOAD);
const ID = 'msg_2Yv9CqzK8';

function whsecSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

function standardHeaders(secret: string | Uint8Array, body: string = BODY) {
  return createSignatureHeaders({ secret, id: ID, body, schemes: ['standard'] });
}

function ourCode(fn: () => unknown): WebhookVerificationErrorCode | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    return (error as { code?: WebhookVerificationErrorCode }).code;
  }
}

describe('node-hookd signatures verify with the reference libraries', () => {
  it('standardwebhooks accepts createSignatureHeaders output for a whsec_ secret', () => {
    const secret = whsecSecret();
    const headers = standardHeaders(secret);
    expect(new StandardWebhook(secret).verify(BODY, headers)).toEqual(PAYLOAD);
    expect(new StandardWebhook(secret).verify(Buffer.from(BODY), headers)).toEqual(PAYLOAD);
    // And it is really checking: a changed body or another secret is refused.
    expect(() => new StandardWebhook(secret).verify(`${BODY} `, headers)).toThrow(
      StandardVerificationError,
    );
    expect(() => new StandardWebhook(whsecSecret()).verify(BODY, headers)).toThrow(
      'No matching signature found',
    );
  });

  it('svix accepts createSignatureHeaders output for a whsec_ secret', () => {
    const secret = whsecSecret();
    const headers = standardHeaders(secret);
    expect(new SvixWebhook(secret).verify(BODY, headers)).toEqual(PAYLOAD);
    expect(() => new SvixWebhook(whsecSecret()).verify(BODY, headers)).toThrow(
      'No matching signature found',
    );
  });

  it('standardwebhooks accepts a plain (non-whsec_) secret in its raw format', () => {
    const secret = 'plain-shared-secret!';
    const headers = standardHeaders(secret);
    expect(new StandardWebhook(secret, { format: 'raw' }).verify(BODY, headers)).toEqual(PAYLOAD);
    // Without { format: 'raw' } it tries to base64-decode the secret and fails.
    expect(() => new StandardWebhook(secret).verify(BODY, headers)).toThrow();
  });

  it('a non-ASCII plain secret needs its UTF-8 bytes in standardwebhooks raw format', () => {
    const secret = 'clé-secrète';
    const headers = standardHeaders(secret);
    // Its raw mode keeps one byte per UTF-16 code unit, which differs from UTF-8 here.
    expect(() => new StandardWebhook(secret, { format: 'raw' }).verify(BODY, headers)).toThrow(
      'No matching signature found',
    );
    const utf8 = new TextEncoder().encode(secret);
    expect(new StandardWebhook(utf8, { format: 'raw' }).verify(BODY, headers)).toEqual(PAYLOAD);
  });
});

describe('reference-library signatures verify with node-hookd/verify', () => {
  it('accepts what standardwebhooks Webhook.sign produces', () => {
    const secret = whsecSecret();
    const date = new Date();
    const headers = {
      'webhook-id': ID,
      'webhook-timestamp': String(Math.floor(date.getTime() / 1000)),
      'webhook-signature': new StandardWebhook(secret).sign(ID, date, BODY),
    };
    expect(headers['webhook-signature']).toMatch(/^v1,/);
    const result = verifyWebhook({ secret, headers, body: Buffer.from(BODY) });
    expect(result.scheme).toBe('standard');
    expect(result.id).toBe(ID);
    expect(result.timestamp.getTime()).toBe(Math.floor(date.getTime() / 1000) * 1000);
    expect(ourCode(() => verifyWebhook({ secret, headers, body: `${BODY} ` }))).toBe(
      'invalid_signature',
    );
    expect(ourCode(() => verifyWebhook({ secret: whsecSecret(), headers, body: BODY }))).toBe(
      'invalid_signature',
    );
  });

  it('accepts a standardwebhooks raw-format signature with the same plain secret', () => {
    const secret = 'plain-shared-secret!';
    const date = new Date();
    const headers = new Headers({
      'webhook-id': ID,
      'webhook-timestamp': String(Math.floor(date.getTime() / 1000)),
      'webhook-signature': new StandardWebhook(secret, { format: 'raw' }).sign(ID, date, BODY),
    });
    expect(verifyWebhook({ secret, headers, body: BODY }).id).toBe(ID);
  });

  it('accepts what svix Webhook.sign produces, among rotated signatures', () => {
    const oldSecret = whsecSecret();
    const newSecret = whsecSecret();
    const date = new Date();
    const signatures = [oldSecret, newSecret]
      .map((secret) => new SvixWebhook(secret).sign(ID, date, BODY))
      .join(' ');
    const headers = {
      'webhook-id': ID,
      'webhook-timestamp': String(Math.floor(date.getTime() / 1000)),
      'webhook-signature': signatures,
    };
    expect(verifyWebhook({ secret: newSecret, headers, body: BODY }).scheme).toBe('standard');
    expect(verifyWebhook({ secret: oldSecret, headers, body: BODY }).scheme).toBe('standard');
  });
});
