import { Buffer } from 'node:buffer';
import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { inspect } from 'node:util';

import { describe, expect, it, vi } from 'vitest';

import {
  DELIVERY_ID_HEADER,
  SIGNATURE_HEADER,
  STANDARD_SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  Webhook,
  WebhookVerificationError,
  createSignatureHeaders,
  isWebhookVerificationError,
  quick,
  signature,
  verifyRequest,
  verifyWebhook,
  type HeadersLike,
  type VerifyWebhookOptions,
  type WebhookVerificationErrorCode,
} from '../verify/index.js';
import {
  signGoHookd,
  signStandard,
  standardWebhookKey,
  timingSafeEqualText,
} from '../verify/signature.js';

const SECRET = 'test-secret-Qx7-never-in-messages';
const OTHER_SECRET = 'another-secret-Zp4-also-hidden';
const KEY_BYTES = Buffer.from('000102030405060708090a0b0c0d0e0f1011121314151617', 'hex');
const WHSEC = `whsec_${KEY_BYTES.toString('base64')}`;
const ID = 'dlv_01HZXJ4TQ';
const TS = 1_700_000_000;
const NOW_MS = TS * 1000;
const now = (): number => NOW_MS;
const BODY = '{"type":"order.paid","data":{"amount":4200,"currency":"EUR"}}';

/** Headers for BODY signed at TS with SECRET (both schemes unless told otherwise). */
function headersFor(
  overrides: Partial<Parameters<typeof createSignatureHeaders>[0]> = {},
): Record<string, string> {
  return createSignatureHeaders({
    secret: SECRET,
    id: ID,
    timestamp: TS,
    body: BODY,
    ...overrides,
  });
}

/** Runs `fn`, which must throw a WebhookVerificationError, and returns it. */
function failure(fn: () => unknown): WebhookVerificationError {
  try {
    fn();
  } catch (error) {
    if (error instanceof WebhookVerificationError) return error;
    throw error;
  }
  throw new Error('expected a WebhookVerificationError, but nothing was thrown');
}

function codeOf(fn: () => unknown): WebhookVerificationErrorCode {
  return failure(fn).code;
}

/** Verifies with scheme detection (`'auto'`), so one helper exercises both schemes. */
function verify(
  headers: HeadersLike,
  options: Partial<VerifyWebhookOptions> = {},
): ReturnType<typeof verifyWebhook> {
  return verifyWebhook({ secret: SECRET, headers, body: BODY, now, scheme: 'auto', ...options });
}

/** Drops the headers of one scheme, to address the other. */
function only(scheme: 'standard' | 'go-hookd', headers: Record<string, string>) {
  const copy = { ...headers };
  if (scheme === 'standard') {
    delete copy['x-webhook-signature'];
    delete copy['x-webhook-timestamp'];
  } else {
    delete copy['webhook-signature'];
    delete copy['webhook-timestamp'];
    delete copy['webhook-id'];
  }
  return copy;
}

describe('signing primitives', () => {
  it('signGoHookd is the lowercase hex HMAC-SHA256 of "<timestamp>.<body>"', () => {
    const oracle = createHmac('sha256', Buffer.from(SECRET, 'utf8'))
      .update(Buffer.from(`${TS}.${BODY}`, 'utf8'))
      .digest('hex');
    const signed = signGoHookd(SECRET, String(TS), BODY);
    expect(signed).toBe(oracle);
    expect(signed).toMatch(/^[0-9a-f]{64}$/);
    expect(signGoHookd(SECRET, String(TS), Buffer.from(BODY))).toBe(oracle);
    expect(signGoHookd(Buffer.from(SECRET), String(TS), BODY)).toBe(oracle);
    expect(signGoHookd(SECRET, String(TS + 1), BODY)).not.toBe(oracle);
  });

  it('signStandard is the base64 HMAC-SHA256 of "<id>.<timestamp>.<body>"', () => {
    const oracle = createHmac('sha256', KEY_BYTES)
      .update(Buffer.from(`${ID}.${TS}.${BODY}`, 'utf8'))
      .digest('base64');
    expect(signStandard(KEY_BYTES, ID, String(TS), BODY)).toBe(oracle);
    expect(signStandard(KEY_BYTES, ID, String(TS), new TextEncoder().encode(BODY))).toBe(oracle);
    expect(signStandard(KEY_BYTES, `${ID}x`, String(TS), BODY)).not.toBe(oracle);
  });

  it('derives the Standard Webhooks key from whsec_ base64, raw UTF-8 text or bytes', () => {
    expect(Buffer.from(standardWebhookKey(WHSEC)).equals(KEY_BYTES)).toBe(true);
    expect([...standardWebhookKey('sécret')]).toEqual([0x73, 0xc3, 0xa9, 0x63, 0x72, 0x65, 0x74]);
    const bytes = new Uint8Array([1, 2, 3]);
    expect(standardWebhookKey(bytes)).toBe(bytes);
    expect(standardWebhookKey('whsec_AAEC')).toEqual(Buffer.from([0, 1, 2]));
  });

  it('refuses a whsec_ secret whose remainder is not canonical base64', () => {
    for (const bad of [
      'whsec_',
      'whsec_AAE',
      'whsec_AA-_',
      'whsec_AAEC!',
      'whsec_AA EC',
      'whsec_AAEC=',
    ]) {
      const error = failure(() => standardWebhookKey(bad));
      expect(error.code, bad).toBe('invalid_secret');
      expect(error.message).not.toContain(bad.slice('whsec_'.length) || '\u0000');
    }
    expect(codeOf(() => standardWebhookKey(''))).toBe('missing_secret');
    expect(codeOf(() => standardWebhookKey(new Uint8Array(0)))).toBe('missing_secret');
  });

  it('timingSafeEqualText compares exactly, including case and length', () => {
    expect(timingSafeEqualText('abc123', 'abc123')).toBe(true);
    expect(timingSafeEqualText('abc123', 'abc124')).toBe(false);
    expect(timingSafeEqualText('abc123', 'ABC123')).toBe(false);
    expect(timingSafeEqualText('abc123', 'abc1234')).toBe(false);
    expect(timingSafeEqualText('', '')).toBe(true);
    expect(timingSafeEqualText('é', 'é')).toBe(true);
    // Same UTF-16 length, different UTF-8 length: must not throw inside crypto.timingSafeEqual.
    expect(timingSafeEqualText('é', 'e')).toBe(false);
  });
});

describe('verifyWebhook: round trips', () => {
  it('verifies the standard scheme and reports what it verified', () => {
    const headers = {
      ...headersFor(),
      'x-webhook-event-type': 'order.paid',
      'x-webhook-attempt': '3',
    };
    const result = verifyWebhook({
      secret: SECRET,
      headers,
      body: BODY,
      now: () => NOW_MS + 42_000,
    });
    expect(result).toEqual({
      scheme: 'standard',
      id: ID,
      idSigned: true,
      timestamp: new Date(NOW_MS),
      ageMs: 42_000,
      eventType: 'order.paid',
      attempt: 3,
    });
  });

  it('requires the Standard Webhooks signature by default, and says when an id is unsigned', () => {
    const goOnly = headersFor({ schemes: ['go-hookd'] });
    const error = failure(() =>
      verifyWebhook({ secret: SECRET, headers: goOnly, body: BODY, now }),
    );
    expect(error.code).toBe('missing_signature');
    expect(error.message).toContain('webhook-signature');
    // A replay stripped of the standard headers cannot choose its id unnoticed.
    const replayed = { ...goOnly, 'x-webhook-delivery-id': 'dlv_replayed' };
    const detected = verify(replayed);
    expect(detected).toMatchObject({ scheme: 'go-hookd', id: 'dlv_replayed', idSigned: false });
    // With both present, the go-hookd scheme reports its own (unsigned) header, not webhook-id.
    const both = { ...headersFor(), 'x-webhook-delivery-id': 'dlv_other' };
    expect(verify(both, { scheme: 'go-hookd' })).toMatchObject({
      id: 'dlv_other',
      idSigned: false,
    });
  });

  it('verifies the go-hookd scheme, taking the id from X-Webhook-Delivery-Id', () => {
    const headers = headersFor({ schemes: ['go-hookd'] });
    expect(Object.keys(headers).sort()).toEqual([
      'x-webhook-delivery-id',
      'x-webhook-signature',
      'x-webhook-timestamp',
    ]);
    const result = verify(headers);
    expect(result.scheme).toBe('go-hookd');
    expect(result.id).toBe(ID);
    expect(result.timestamp.getTime()).toBe(NOW_MS);
    expect(result.eventType).toBeUndefined();
    expect(result.attempt).toBeUndefined();
  });

  it('verifies whsec_ and Uint8Array secrets', () => {
    expect(verify(headersFor({ secret: WHSEC }), { secret: WHSEC }).scheme).toBe('standard');
    expect(verify(only('go-hookd', headersFor({ secret: WHSEC })), { secret: WHSEC }).scheme).toBe(
      'go-hookd',
    );
    expect(verify(headersFor({ secret: KEY_BYTES }), { secret: KEY_BYTES }).scheme).toBe(
      'standard',
    );
    // Standard scheme: whsec_<base64(K)> and the bytes K are the same key.
    expect(verify(only('standard', headersFor({ secret: WHSEC })), { secret: KEY_BYTES }).id).toBe(
      ID,
    );
  });

  it('an explicit scheme looks only at that scheme’s headers', () => {
    const headers = { ...headersFor(), 'webhook-signature': 'v1,AAAA' };
    expect(codeOf(() => verify(headers))).toBe('invalid_signature');
    expect(verify(headers, { scheme: 'go-hookd' }).scheme).toBe('go-hookd');
    expect(codeOf(() => verify(only('go-hookd', headersFor()), { scheme: 'standard' }))).toBe(
      'missing_signature',
    );
    expect(codeOf(() => verify(only('standard', headersFor()), { scheme: 'go-hookd' }))).toBe(
      'missing_signature',
    );
  });

  it('createSignatureHeaders uses the current time by default and both schemes', () => {
    const before = Math.floor(Date.now() / 1000);
    const headers = createSignatureHeaders({ secret: SECRET, id: ID, body: BODY });
    const after = Math.floor(Date.now() / 1000);
    expect(Object.keys(headers)).toEqual([
      'webhook-id',
      'webhook-timestamp',
      'webhook-signature',
      'x-webhook-signature',
      'x-webhook-timestamp',
      'x-webhook-delivery-id',
    ]);
    const stamp = Number(headers['webhook-timestamp']);
    expect(stamp).toBeGreaterThanOrEqual(before);
    expect(stamp).toBeLessThanOrEqual(after);
    expect(headers['x-webhook-timestamp']).toBe(headers['webhook-timestamp']);
    expect(headers[STANDARD_SIGNATURE_HEADER]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(headers[SIGNATURE_HEADER.toLowerCase()]).toMatch(/^[0-9a-f]{64}$/);
    expect(headers[DELIVERY_ID_HEADER.toLowerCase()]).toBe(ID);
    // With the real clock, both schemes verify.
    const result = verifyWebhook({ secret: SECRET, headers, body: BODY });
    expect(result.scheme).toBe('standard');
    expect(verifyWebhook({ secret: SECRET, headers, body: BODY, scheme: 'go-hookd' }).id).toBe(ID);
  });

  it('createSignatureHeaders refuses unusable input', () => {
    const base = { secret: SECRET, id: ID, body: BODY };
    expect(codeOf(() => createSignatureHeaders({ ...base, secret: '' }))).toBe('missing_secret');
    expect(codeOf(() => createSignatureHeaders({ ...base, secret: 'whsec_%%' }))).toBe(
      'invalid_secret',
    );
    expect(codeOf(() => createSignatureHeaders({ ...base, id: '' }))).toBe('missing_id');
    expect(codeOf(() => createSignatureHeaders({ ...base, timestamp: Date.now() }))).toBe(
      'invalid_timestamp',
    );
    expect(codeOf(() => createSignatureHeaders({ ...base, timestamp: 1.5 }))).toBe(
      'invalid_timestamp',
    );
    expect(codeOf(() => createSignatureHeaders({ ...base, schemes: [] }))).toBe('unknown_scheme');
    expect(
      codeOf(() => createSignatureHeaders({ ...base, schemes: ['v2' as unknown as 'standard'] })),
    ).toBe('unknown_scheme');
    expect(
      codeOf(() => createSignatureHeaders({ ...base, body: { a: 1 } as unknown as string })),
    ).toBe('invalid_body');
  });
});

describe('verifyWebhook: refusals', () => {
  it('a tampered body fails both schemes', () => {
    const tampered = BODY.replace('4200', '4201');
    for (const scheme of ['standard', 'go-hookd'] as const) {
      const error = failure(() => verify(headersFor(), { scheme, body: tampered }));
      expect(error.code).toBe('invalid_signature');
      expect(error.message).toContain(
        scheme === 'standard' ? 'webhook-signature' : 'X-Webhook-Signature',
      );
    }
  });

  it('a tampered timestamp fails both schemes, even inside the window', () => {
    const standard = { ...headersFor(), 'webhook-timestamp': String(TS - 1) };
    expect(codeOf(() => verify(standard))).toBe('invalid_signature');
    const go = { ...only('go-hookd', headersFor()), 'x-webhook-timestamp': String(TS - 1) };
    expect(codeOf(() => verify(go))).toBe('invalid_signature');
  });

  it('a wrong secret fails both schemes', () => {
    expect(codeOf(() => verify(headersFor(), { secret: OTHER_SECRET }))).toBe('invalid_signature');
    expect(codeOf(() => verify(only('go-hookd', headersFor()), { secret: OTHER_SECRET }))).toBe(
      'invalid_signature',
    );
  });

  it('the standard scheme covers the id: tampered → invalid_signature, missing → missing_id', () => {
    expect(codeOf(() => verify({ ...headersFor(), 'webhook-id': 'dlv_other' }))).toBe(
      'invalid_signature',
    );
    const { ['webhook-id']: _dropped, ...withoutId } = headersFor();
    expect(codeOf(() => verify(withoutId))).toBe('missing_id');
    expect(codeOf(() => verify({ ...headersFor(), 'webhook-id': '' }))).toBe('missing_id');
  });

  it('missing headers', () => {
    expect(codeOf(() => verify({}))).toBe('missing_signature');
    expect(codeOf(() => verify({ 'content-type': 'application/json' }))).toBe('missing_signature');
    expect(
      codeOf(() => verify({ ...only('standard', headersFor()), 'webhook-signature': '' })),
    ).toBe('missing_signature');
    const { ['webhook-timestamp']: _a, ...noStandardTimestamp } = only('standard', headersFor());
    expect(codeOf(() => verify(noStandardTimestamp))).toBe('missing_timestamp');
    const { ['x-webhook-timestamp']: _b, ...noGoTimestamp } = only('go-hookd', headersFor());
    expect(codeOf(() => verify(noGoTimestamp))).toBe('missing_timestamp');
  });

  it('a timestamp that is not decimal Unix seconds is invalid', () => {
    for (const value of ['', '   ', 'abc', '17e8', '-5', '+1700000000', '1700000000.5', '0x10']) {
      const error = failure(() => verify({ ...headersFor(), 'webhook-timestamp': value }));
      expect(error.code, JSON.stringify(value)).toBe('invalid_timestamp');
    }
    expect(
      codeOf(() => verify({ ...only('go-hookd', headersFor()), 'x-webhook-timestamp': 'soon' })),
    ).toBe('invalid_timestamp');
    // Too large for a JavaScript Date.
    expect(codeOf(() => verify({ ...headersFor(), 'webhook-timestamp': '9'.repeat(20) }))).toBe(
      'invalid_timestamp',
    );
  });

  it('refuses timestamps more than 60 s in the future unless allowFuture', () => {
    const ahead = headersFor({ timestamp: TS + 61 });
    const error = failure(() => verify(ahead));
    expect(error.code).toBe('timestamp_in_future');
    expect(error.message).toContain('61 s in the future');
    expect(verify(ahead, { allowFuture: true }).ageMs).toBe(-61_000);
    expect(verify(headersFor({ timestamp: TS + 60 })).ageMs).toBe(-60_000);
    const farAhead = only('go-hookd', headersFor({ timestamp: TS + 86_400 }));
    expect(codeOf(() => verify(farAhead))).toBe('timestamp_in_future');
    expect(verify(farAhead, { allowFuture: true }).scheme).toBe('go-hookd');
  });

  it('refuses timestamps older than maxAgeMs (default 5 minutes) and says by how much', () => {
    const old = headersFor({ timestamp: TS - 301 });
    const error = failure(() => verify(old));
    expect(error.code).toBe('timestamp_too_old');
    expect(error.message).toContain('301 s old');
    expect(error.message).toContain('300 s limit');
    expect(verify(headersFor({ timestamp: TS - 300 })).ageMs).toBe(300_000);
    expect(codeOf(() => verify(headersFor({ timestamp: TS - 11 }), { maxAgeMs: 10_000 }))).toBe(
      'timestamp_too_old',
    );
    expect(codeOf(() => verify(only('go-hookd', headersFor({ timestamp: TS - 301 }))))).toBe(
      'timestamp_too_old',
    );
  });

  it('maxAgeMs: 0 disables the age check (but not the signature check)', () => {
    const weekOld = headersFor({ timestamp: TS - 7 * 86_400 });
    expect(verify(weekOld, { maxAgeMs: 0 }).ageMs).toBe(7 * 86_400_000);
    expect(codeOf(() => verify(weekOld, { maxAgeMs: 0, body: `${BODY} ` }))).toBe(
      'invalid_signature',
    );
  });

  it('refuses a malformed maxAgeMs or now() as programming errors, not verification failures', () => {
    expect(() => verify(headersFor(), { maxAgeMs: -1 })).toThrow(RangeError);
    expect(() => verify(headersFor(), { maxAgeMs: Number.NaN })).toThrow(RangeError);
    expect(() => verify(headersFor(), { now: () => Number.NaN })).toThrow(TypeError);
    expect(() => verify(undefined as unknown as HeadersLike)).toThrow(TypeError);
  });

  it('refuses missing and empty secrets', () => {
    const headers = headersFor();
    expect(codeOf(() => verifyWebhook({ headers, body: BODY, now }))).toBe('missing_secret');
    expect(codeOf(() => verify(headers, { secret: '' }))).toBe('missing_secret');
    expect(codeOf(() => verify(headers, { secret: new Uint8Array(0) }))).toBe('missing_secret');
    expect(codeOf(() => verify(headers, { secret: undefined, secrets: [] }))).toBe(
      'missing_secret',
    );
    const error = failure(() => verify(headers, { secret: undefined, secrets: [SECRET, ''] }));
    expect(error.code).toBe('missing_secret');
    expect(error.message).toContain('#2 of 2');
    expect(
      codeOf(() => verify(headers, { secret: undefined as unknown as string, secrets: undefined })),
    ).toBe('missing_secret');
  });

  it('refuses a malformed whsec_ secret with invalid_secret', () => {
    expect(codeOf(() => verify(headersFor(), { secret: 'whsec_not base64!' }))).toBe(
      'invalid_secret',
    );
  });

  it('refuses an unknown scheme', () => {
    expect(codeOf(() => verify(headersFor(), { scheme: 'hmac' as unknown as 'auto' }))).toBe(
      'unknown_scheme',
    );
  });

  it('refuses a parsed body and says how to get the raw one', () => {
    const parsed: unknown = JSON.parse(BODY);
    const error = failure(() => verify(headersFor(), { body: parsed as string }));
    expect(error.code).toBe('invalid_body');
    expect(error.message).toContain('raw request body');
    expect(error.message).toContain("express.raw({ type: 'application/json' })");
    expect(error.message).toContain('an object');
    for (const body of [null, undefined, 42, [1, 2]]) {
      expect(codeOf(() => verify(headersFor(), { body: body as unknown as string }))).toBe(
        'invalid_body',
      );
    }
  });

  it('ignores signature versions other than v1', () => {
    const real = headersFor()['webhook-signature']!.slice('v1,'.length);
    const error = failure(() => verify({ ...headersFor(), 'webhook-signature': `v1a,${real}` }));
    expect(error.code).toBe('invalid_signature');
    expect(error.message).toContain('no "v1,<base64>" entry');
    expect(codeOf(() => verify({ ...headersFor(), 'webhook-signature': `v2,${real}` }))).toBe(
      'invalid_signature',
    );
    expect(codeOf(() => verify({ ...headersFor(), 'webhook-signature': real }))).toBe(
      'invalid_signature',
    );
  });
});

describe('verifyWebhook: secret rotation', () => {
  it('accepts a webhook signed with any of several secrets', () => {
    const byNew = headersFor({ secret: OTHER_SECRET });
    const secrets = ['retired-secret', SECRET, OTHER_SECRET];
    expect(verify(byNew, { secret: undefined, secrets }).scheme).toBe('standard');
    expect(verify(only('go-hookd', byNew), { secret: undefined, secrets }).scheme).toBe('go-hookd');
    // `secret` and `secrets` combine.
    expect(verify(byNew, { secret: SECRET, secrets: [OTHER_SECRET] }).id).toBe(ID);
    expect(codeOf(() => verify(byNew, { secret: undefined, secrets: ['x', SECRET] }))).toBe(
      'invalid_signature',
    );
  });

  it('accepts any matching v1 entry among several, skipping unknown versions', () => {
    const real = headersFor()['webhook-signature']!;
    const bogus = `v1,${Buffer.alloc(32, 7).toString('base64')}`;
    const header = `${bogus} v1a,${Buffer.alloc(64, 1).toString('base64')} ${real}`;
    expect(verify({ ...headersFor(), 'webhook-signature': header }).scheme).toBe('standard');
    expect(codeOf(() => verify({ ...headersFor(), 'webhook-signature': `${bogus} v1a,abc` }))).toBe(
      'invalid_signature',
    );
  });

  it('matches when both the header entries and the secrets rotate', () => {
    const oldSig = headersFor({ secret: 'old-secret' })['webhook-signature']!;
    const newSig = headersFor({ secret: OTHER_SECRET })['webhook-signature']!;
    const headers = { ...headersFor(), 'webhook-signature': `${oldSig} ${newSig}` };
    expect(verify(headers, { secret: OTHER_SECRET }).scheme).toBe('standard');
    expect(verify(headers, { secret: 'old-secret' }).scheme).toBe('standard');
    expect(codeOf(() => verify(headers, { secret: SECRET }))).toBe('invalid_signature');
  });
});

describe('verifyWebhook: header shapes', () => {
  it('accepts a web Headers object', () => {
    const headers = new Headers(headersFor());
    headers.set('X-Webhook-Event-Type', 'invoice.created');
    const result = verify(headers);
    expect(result.scheme).toBe('standard');
    expect(result.eventType).toBe('invoice.created');
  });

  it('accepts repeated webhook-signature headers joined with ", " (Headers, node:http)', () => {
    const real = headersFor()['webhook-signature']!;
    const bogus = `v1,${Buffer.alloc(32).toString('base64')}`;
    // The matching entry comes first, so it arrives with a trailing comma.
    const headers = new Headers(headersFor());
    headers.append('webhook-signature', bogus);
    expect(headers.get('webhook-signature')).toBe(`${real}, ${bogus}`);
    expect(verify(headers).scheme).toBe('standard');
    // node:http joins repeated unknown headers the same way in req.headers.
    expect(verify({ ...headersFor(), 'webhook-signature': `${real}, ${bogus}` }).scheme).toBe(
      'standard',
    );
  });

  it('accepts IncomingHttpHeaders with array values', () => {
    const signed = headersFor();
    const headers: IncomingHttpHeaders = {
      ...signed,
      'webhook-id': [ID, 'dlv_ignored'],
      'webhook-signature': [
        `v1,${Buffer.alloc(32).toString('base64')}`,
        signed['webhook-signature']!,
      ],
      'x-webhook-attempt': ['2', '5'],
      'set-cookie': ['a=b'],
    };
    const result = verify(headers);
    expect(result.id).toBe(ID);
    expect(result.attempt).toBe(2);
  });

  it('looks names up case-insensitively in plain records', () => {
    const signed = headersFor({ schemes: ['standard'] });
    const headers = {
      'Webhook-Id': signed['webhook-id'],
      // HTTP drops surrounding whitespace from values; hand-built records may keep it.
      'WEBHOOK-TIMESTAMP': ` ${signed['webhook-timestamp']} `,
      'Webhook-Signature': signed['webhook-signature'],
      'X-Webhook-Attempt': '4',
      'X-Webhook-Event-Type': 'user.deleted',
    };
    expect(verify(headers)).toMatchObject({
      scheme: 'standard',
      id: ID,
      attempt: 4,
      eventType: 'user.deleted',
    });
    const go = headersFor({ schemes: ['go-hookd'] });
    expect(
      verify({
        [SIGNATURE_HEADER]: go['x-webhook-signature'],
        [TIMESTAMP_HEADER]: go['x-webhook-timestamp'],
        [DELIVERY_ID_HEADER]: ID,
      }).id,
    ).toBe(ID);
  });

  it('ignores an attempt header that is not a number', () => {
    expect(verify({ ...headersFor(), 'x-webhook-attempt': 'two' }).attempt).toBeUndefined();
  });
});

describe('verifyWebhook: body shapes', () => {
  const bytes = Buffer.from(BODY, 'utf8');

  it('accepts string, Buffer, Uint8Array, ArrayBuffer and offset views of the same bytes', () => {
    const arrayBuffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const padded = Buffer.concat([Buffer.from('xxxx'), bytes, Buffer.from('yy')]);
    const view = new Uint8Array(padded.buffer, padded.byteOffset + 4, bytes.length);
    const bodies = [
      BODY,
      bytes,
      new Uint8Array(bytes),
      arrayBuffer,
      view,
      new DataView(arrayBuffer) as unknown as Uint8Array,
    ];
    for (const body of bodies) {
      for (const scheme of ['standard', 'go-hookd'] as const) {
        expect(verify(headersFor(), { body, scheme }).scheme).toBe(scheme);
      }
    }
    // The surrounding bytes of the view are not signed.
    expect(codeOf(() => verify(headersFor(), { body: padded }))).toBe('invalid_signature');
  });

  it('is byte-exact for non-ASCII bodies', () => {
    const text = '{"name":"Grüße aus Köln","emoji":"🚀","dash":"—"}';
    const headers = headersFor({ body: text });
    expect(verify(headers, { body: text }).scheme).toBe('standard');
    expect(verify(headers, { body: Buffer.from(text, 'utf8') }).scheme).toBe('standard');
    // Same characters, different bytes: decomposed umlauts, or a Latin-1 encoding.
    expect(codeOf(() => verify(headers, { body: text.normalize('NFD') }))).toBe(
      'invalid_signature',
    );
    expect(
      codeOf(() => verify(headers, { body: Buffer.from(text.replace('🚀', ''), 'latin1') })),
    ).toBe('invalid_signature');
  });
});

describe('verifyRequest', () => {
  function request(headers: Record<string, string>, body: string | Uint8Array = BODY): Request {
    return new Request('http://localhost/webhooks', { method: 'POST', headers, body });
  }

  it('verifies a web Request and returns its body text', async () => {
    const text = '{"greeting":"héllo 👋"}';
    const result = await verifyRequest(request(headersFor({ body: text }), text), {
      secret: SECRET,
      now,
    });
    expect(result.body).toBe(text);
    expect(result.scheme).toBe('standard');
    expect(result.id).toBe(ID);
    expect(JSON.parse(result.body)).toEqual({ greeting: 'héllo 👋' });
  });

  it('rejects a tampered body or a secret mismatch', async () => {
    await expect(
      verifyRequest(request(headersFor(), `${BODY}\n`), { secret: SECRET, now }),
    ).rejects.toMatchObject({ code: 'invalid_signature' });
    await expect(
      verifyRequest(request(headersFor()), { secret: OTHER_SECRET, now, scheme: 'go-hookd' }),
    ).rejects.toMatchObject({ code: 'invalid_signature', name: 'WebhookVerificationError' });
  });

  it('refuses a request whose body was already read', async () => {
    const consumed = request(headersFor());
    await consumed.text();
    await expect(verifyRequest(consumed, { secret: SECRET, now })).rejects.toMatchObject({
      code: 'invalid_body',
    });
  });

  it('refuses a missing secret without consuming the body', async () => {
    const req = request(headersFor());
    await expect(verifyRequest(req, { secret: '' })).rejects.toMatchObject({
      code: 'missing_secret',
    });
    expect(req.bodyUsed).toBe(false);
  });
});

describe('Webhook class', () => {
  it('verifies with one secret or several', () => {
    const single = new Webhook(SECRET, { now });
    expect(single.verify(BODY, headersFor())).toMatchObject({ scheme: 'standard', id: ID });
    const rotating = new Webhook([OTHER_SECRET, WHSEC], { now, scheme: 'standard' });
    expect(rotating.verify(Buffer.from(BODY), headersFor({ secret: WHSEC })).id).toBe(ID);
    expect(codeOf(() => rotating.verify(BODY, headersFor()))).toBe('invalid_signature');
  });

  it('applies its options', () => {
    const strict = new Webhook(SECRET, { now, maxAgeMs: 1_000 });
    expect(codeOf(() => strict.verify(BODY, headersFor({ timestamp: TS - 2 })))).toBe(
      'timestamp_too_old',
    );
    const lenient = new Webhook(SECRET, { now, maxAgeMs: 0, allowFuture: true });
    expect(lenient.verify(BODY, headersFor({ timestamp: TS + 3_600 })).ageMs).toBe(-3_600_000);
  });

  it('checks its configuration at construction', () => {
    expect(codeOf(() => new Webhook(''))).toBe('missing_secret');
    expect(codeOf(() => new Webhook([]))).toBe('missing_secret');
    expect(codeOf(() => new Webhook([SECRET, '']))).toBe('missing_secret');
    expect(codeOf(() => new Webhook('whsec_***'))).toBe('invalid_secret');
    expect(codeOf(() => new Webhook(SECRET, { scheme: 'x' as unknown as 'auto' }))).toBe(
      'unknown_scheme',
    );
    expect(() => new Webhook(SECRET, { maxAgeMs: -5 })).toThrow(RangeError);
  });

  it('keeps the secrets out of inspection and serialisation', () => {
    const webhook = new Webhook([SECRET, OTHER_SECRET]);
    expect(inspect(webhook, { depth: 5, showHidden: true })).not.toContain(SECRET);
    expect(JSON.stringify(webhook)).toBe('{}');
  });
});

describe('signature (port of go-hookd verify.Signature)', () => {
  const valid = {
    secret: SECRET,
    signature: signGoHookd(SECRET, String(TS), BODY),
    timestamp: String(TS),
    payload: BODY,
    now,
  };

  it('returns valid, the timestamp and the age', () => {
    const result = signature({ ...valid, now: () => NOW_MS + 1_500 });
    expect(result).toEqual({ valid: true, timestamp: new Date(NOW_MS), ageMs: 1_500 });
    expect(signature({ ...valid, payload: Buffer.from(BODY) }).valid).toBe(true);
  });

  it('checks in go-hookd order', () => {
    const wrong = '0'.repeat(64);
    const empty = { secret: '', signature: '', timestamp: '', payload: BODY, now };
    expect(codeOf(() => signature(empty))).toBe('missing_secret');
    expect(codeOf(() => signature({ ...empty, secret: SECRET }))).toBe('missing_signature');
    expect(codeOf(() => signature({ ...empty, secret: SECRET, signature: wrong }))).toBe(
      'missing_timestamp',
    );
    const withTimestamp =
      (timestamp: string, extra: object = {}) =>
      () =>
        signature({ ...valid, signature: wrong, timestamp, ...extra });
    expect(codeOf(withTimestamp('12:00'))).toBe('invalid_timestamp');
    expect(codeOf(withTimestamp('1700000000.0'))).toBe('invalid_timestamp');
    // Future before age, and both before the signature.
    expect(codeOf(withTimestamp(String(TS + 61), { maxAgeMs: 1 }))).toBe('timestamp_in_future');
    expect(codeOf(withTimestamp(String(TS - 10), { maxAgeMs: 5_000 }))).toBe('timestamp_too_old');
    expect(codeOf(withTimestamp(String(TS)))).toBe('invalid_signature');
    // The payload type is checked only when the signature is computed.
    expect(
      codeOf(() => signature({ ...valid, payload: {} as unknown as string, timestamp: 'x' })),
    ).toBe('invalid_timestamp');
    expect(codeOf(() => signature({ ...valid, payload: {} as unknown as string }))).toBe(
      'invalid_body',
    );
  });

  it('has no age limit by default, like Go (MaxAge zero)', () => {
    const yearOld = String(TS - 365 * 86_400);
    const result = signature({
      ...valid,
      timestamp: yearOld,
      signature: signGoHookd(SECRET, yearOld, BODY),
    });
    expect(result.ageMs).toBe(365 * 86_400_000);
    expect(
      codeOf(() =>
        signature({
          ...valid,
          timestamp: yearOld,
          signature: signGoHookd(SECRET, yearOld, BODY),
          maxAgeMs: 300_000,
        }),
      ),
    ).toBe('timestamp_too_old');
  });

  it('allows the future only within a minute, unless allowFuture', () => {
    const at = (offset: number) => String(TS + offset);
    const params = (offset: number) => ({
      ...valid,
      timestamp: at(offset),
      signature: signGoHookd(SECRET, at(offset), BODY),
    });
    expect(signature(params(60)).ageMs).toBe(-60_000);
    expect(codeOf(() => signature(params(61)))).toBe('timestamp_in_future');
    expect(signature({ ...params(3_600), allowFuture: true }).ageMs).toBe(-3_600_000);
  });

  it('compares lowercase hex exactly: uppercase fails, as in Go', () => {
    expect(codeOf(() => signature({ ...valid, signature: valid.signature.toUpperCase() }))).toBe(
      'invalid_signature',
    );
    expect(codeOf(() => signature({ ...valid, payload: `${BODY} ` }))).toBe('invalid_signature');
  });

  it('parses the timestamp like strconv.ParseInt, sign included', () => {
    const plus = `+${TS}`;
    const result = signature({
      ...valid,
      timestamp: plus,
      signature: signGoHookd(SECRET, plus, BODY),
    });
    expect(result.timestamp.getTime()).toBe(NOW_MS);
  });
});

describe('quick (port of go-hookd verify.Quick)', () => {
  it('checks only the HMAC', () => {
    const sig = signGoHookd(SECRET, String(TS), BODY);
    expect(quick(SECRET, String(TS), BODY, sig)).toBe(true);
    expect(quick(SECRET, String(TS), Buffer.from(BODY), sig)).toBe(true);
    expect(quick(SECRET, String(TS), `${BODY}x`, sig)).toBe(false);
    expect(quick(OTHER_SECRET, String(TS), BODY, sig)).toBe(false);
    expect(quick(SECRET, String(TS), BODY, sig.toUpperCase())).toBe(false);
    expect(quick(SECRET, String(TS), BODY, '')).toBe(false);
  });

  it('does no timestamp checks and allows an empty secret', () => {
    expect(quick(SECRET, '0', BODY, signGoHookd(SECRET, '0', BODY))).toBe(true);
    expect(quick(SECRET, 'not-a-time', BODY, signGoHookd(SECRET, 'not-a-time', BODY))).toBe(true);
    expect(quick('', String(TS), BODY, signGoHookd('', String(TS), BODY))).toBe(true);
    expect(quick('', String(TS), BODY, signGoHookd('x', String(TS), BODY))).toBe(false);
  });
});

describe('WebhookVerificationError', () => {
  it('never puts the secret or the expected signature in a message', () => {
    const whsecSecret = `whsec_${Buffer.alloc(24, 9).toString('base64')}`;
    const tampered = `${BODY} `;
    const expectedStandard = signStandard(standardWebhookKey(SECRET), ID, String(TS), tampered);
    const expectedGo = signGoHookd(SECRET, String(TS), tampered);
    const errors = [
      failure(() => verify(headersFor(), { body: tampered })),
      failure(() => verify(headersFor(), { body: tampered, scheme: 'go-hookd' })),
      failure(() =>
        verify(headersFor(), { secret: undefined, secrets: [OTHER_SECRET, whsecSecret] }),
      ),
      failure(() => verify(headersFor({ timestamp: TS - 3_600 }))),
      failure(() => verify(headersFor({ timestamp: TS + 3_600 }))),
      failure(() => verify({ ...headersFor(), 'webhook-timestamp': 'x' })),
      failure(() => verify(headersFor(), { secret: `whsec_${SECRET}` })),
      failure(() => verify(headersFor(), { secrets: [SECRET, ''] })),
      failure(() =>
        signature({
          secret: SECRET,
          signature: 'a',
          timestamp: String(TS),
          payload: tampered,
          now,
        }),
      ),
    ];
    expect(new Set(errors.map((error) => error.code))).toEqual(
      new Set([
        'invalid_signature',
        'timestamp_too_old',
        'timestamp_in_future',
        'invalid_timestamp',
        'invalid_secret',
        'missing_secret',
      ]),
    );
    for (const error of errors) {
      for (const secret of [SECRET, OTHER_SECRET, whsecSecret, whsecSecret.slice(6)]) {
        expect(error.message).not.toContain(secret);
      }
      expect(error.message).not.toContain(expectedStandard);
      expect(error.message).not.toContain(expectedGo);
      expect(error.message.length).toBeGreaterThan(30);
    }
  });

  it('has the familiar name, a code, and is an Error', () => {
    const error = failure(() => verify({}));
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('WebhookVerificationError');
    expect(error.code).toBe('missing_signature');
    expect(String(error)).toMatch(/^WebhookVerificationError: /);
    expect(isWebhookVerificationError(error)).toBe(true);
    expect(isWebhookVerificationError(error, 'missing_signature')).toBe(true);
    expect(isWebhookVerificationError(error, 'invalid_signature')).toBe(false);
    expect(isWebhookVerificationError(new Error('plain'))).toBe(false);
    expect(isWebhookVerificationError({ code: 'invalid_signature' })).toBe(false);
    expect(isWebhookVerificationError(null)).toBe(false);
  });

  it('instanceof works across two copies of the module', async () => {
    vi.resetModules();
    const copy = await import('../verify/errors.js');
    expect(copy.WebhookVerificationError).not.toBe(WebhookVerificationError);
    const foreign = new copy.WebhookVerificationError('invalid_signature', 'from the other copy');
    expect(foreign instanceof WebhookVerificationError).toBe(true);
    expect(isWebhookVerificationError(foreign, 'invalid_signature')).toBe(true);
    const local = new WebhookVerificationError('missing_id', 'from this copy');
    expect(local instanceof copy.WebhookVerificationError).toBe(true);
    expect(copy.isWebhookVerificationError(local, 'missing_id')).toBe(true);
    expect(new Error('plain') instanceof copy.WebhookVerificationError).toBe(false);
  });
});
