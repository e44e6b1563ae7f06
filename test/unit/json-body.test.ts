import { describe, expect, it } from 'vitest';

import { HookdError } from '../../src/errors.js';
import { serializeJsonObject } from '../../src/json-body.js';

const LIMIT = 1024;

function refused(value: unknown, field = 'payload', limit = LIMIT): HookdError {
  try {
    serializeJsonObject(value, field, limit);
  } catch (error) {
    expect(error).toBeInstanceOf(HookdError);
    const hookd = error as HookdError;
    expect(hookd.code).toBe('HOOKD_ERR_INVALID_ARGUMENT');
    expect(hookd.field).toBe(field);
    return hookd;
  }
  throw new Error('expected serializeJsonObject to refuse the value');
}

describe('serializeJsonObject', () => {
  it('refuses Maps and Sets, which JSON would silently write as {}', () => {
    for (const value of [{ lookup: new Map([['a', 1]]) }, { tags: new Set(['x']) }]) {
      expect(() => serializeJsonObject(value, 'payload', 1024)).toThrow(
        expect.objectContaining({
          code: 'HOOKD_ERR_INVALID_ARGUMENT',
          field: 'payload',
          message: expect.stringMatching(/Map|Set/),
        }),
      );
    }
  });

  it('produces exactly the bytes of JSON.stringify, keys in insertion order', () => {
    const value = {
      zeta: 1,
      alpha: 'two',
      nested: { b: [1, 2.5, -0, 1e21], a: null, t: true },
      text: 'é "quoted" <tag> & \u2028 \n',
    };
    const { body, object } = serializeJsonObject(value, 'payload', LIMIT);
    expect(body).toBe(JSON.stringify(value));
    expect(body.startsWith('{"zeta":1,"alpha":"two","nested":{"b":[1,2.5,0,1e+21]')).toBe(true);
    // No Go-style HTML escaping: the bytes are JavaScript's.
    expect(body).toContain('<tag> & ');
    expect(object).toEqual(JSON.parse(body));
  });

  it('serialises Dates and other toJSON objects through toJSON', () => {
    const when = new Date(Date.UTC(2030, 4, 6, 7, 8, 9, 10));
    const custom = { toJSON: () => ({ kind: 'custom' }) };
    const { body } = serializeJsonObject({ when, custom }, 'payload', LIMIT);
    expect(body).toBe('{"when":"2030-05-06T07:08:09.010Z","custom":{"kind":"custom"}}');
  });

  it('drops undefined values as JSON does and keeps prototype-looking keys as data', () => {
    const parsed: unknown = JSON.parse('{"__proto__":{"x":1},"a":1}');
    const { body, object } = serializeJsonObject(
      { ...(parsed as object), gone: undefined },
      'metadata',
      LIMIT,
    );
    expect(body).toBe('{"__proto__":{"x":1},"a":1}');
    expect(Object.hasOwn(object, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(object)).toBe(Object.prototype);
  });

  it('accepts a body of exactly the limit and refuses one byte more, counting UTF-8 bytes', () => {
    const exact = { s: 'x'.repeat(LIMIT - '{"s":""}'.length) };
    expect(Buffer.byteLength(serializeJsonObject(exact, 'payload', LIMIT).body)).toBe(LIMIT);
    const over = { s: 'x'.repeat(LIMIT - '{"s":""}'.length + 1) };
    expect(refused(over).message).toContain(`${LIMIT + 1}`);
    // 'é' is one UTF-16 unit but two UTF-8 bytes.
    refused({ s: 'é'.repeat(LIMIT / 2) });
  });

  it.each<[string, unknown, RegExp]>([
    ['null', null, /must be a JSON object/],
    ['undefined', undefined, /must be a JSON object/],
    ['a string', 'text', /must be a JSON object/],
    ['a number', 3, /must be a JSON object/],
    ['a boolean', true, /must be a JSON object/],
    ['an array', [1], /must be a JSON object/],
    ['a Date', new Date(0), /must be a JSON object/],
    ['a boxed string', new String('s'), /must be a JSON object/],
    ['a boxed number', new Number(1), /must be a JSON object/],
    ['an object whose toJSON returns undefined', { toJSON: () => undefined }, /JSON object/],
    ['an object whose toJSON returns an array', { toJSON: () => [1, 2] }, /JSON object/],
    ['an object whose toJSON returns a string', { toJSON: () => 'x' }, /JSON object/],
    ['NaN', { n: Number.NaN }, /key "n" is NaN/],
    ['Infinity', { a: { b: [Number.POSITIVE_INFINITY] } }, /Infinity/],
    ['a bigint', { big: 2n ** 70n }, /key "big" is a bigint/],
    ['a function', { f() {} }, /key "f" is a function/],
    ['a symbol', { s: Symbol('x') }, /key "s" is a symbol/],
    [
      'a throwing toJSON',
      {
        toJSON: () => {
          throw new Error('nope');
        },
      },
      /cannot be serialised/,
    ],
  ])('refuses %s', (_name, value, message) => {
    expect(refused(value).message).toMatch(message);
  });

  it('refuses cycles with a readable message', () => {
    const a: Record<string, unknown> = {};
    const b: Record<string, unknown> = { a };
    a['b'] = b;
    expect(refused({ root: a }).message).toBe('payload is not valid JSON: it contains a cycle');
  });

  it('refuses hostile objects (throwing getters, revoked proxies, extreme nesting)', () => {
    const getter = Object.defineProperty({}, 'x', {
      enumerable: true,
      get() {
        throw new TypeError('getter exploded');
      },
    });
    expect(refused(getter).message).toContain('getter exploded');
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    refused(proxy);
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 100_000; i++) deep = { d: deep };
    refused(deep, 'payload', Number.MAX_SAFE_INTEGER);
  });

  it('names the field it was given', () => {
    expect(refused([], 'metadata').message).toBe('metadata must be a JSON object');
  });
});
