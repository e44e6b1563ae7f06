import { describe, expect, it } from 'vitest';

import {
  WILDCARD_ALL,
  formatFilterValue,
  isWildcardPattern,
  matchEventType,
  matchesAnyEventType,
  matchesMetadata,
} from '../../src/matching.js';

describe('matchEventType (spec 3.11)', () => {
  const table: Array<[pattern: string, eventType: string, expected: boolean]> = [
    ['*', 'order.created', true],
    ['*', 'anything at all', true],
    ['*', '', true],
    ['order.*', 'order.created', true],
    ['order.*', 'order.item.added', true],
    ['order.*', 'order', false],
    ['order.*', 'orders.x', false],
    ['order.*', 'order.', true], // go-hookd: HasPrefix(eventType, "order.")
    ['order.*', 'xorder.created', false],
    ['order.*', 'Order.created', false],
    ['order.item.*', 'order.item.added', true],
    ['order.item.*', 'order.created', false],
    ['order.created', 'order.created', true],
    ['order.created', 'order.created.v2', false],
    ['order.created', 'Order.Created', false],
    ['order.created', 'order.create', false],
    // No mid-string or double wildcards, no regex.
    ['order.*.added', 'order.item.added', false],
    ['order.*.added', 'order.*.added', true],
    ['**', 'order.created', false],
    ['order.c*', 'order.created', false],
    ['order.+', 'order.x', false],
  ];

  it.each(table)('%j matches %j: %s', (pattern, eventType, expected) => {
    expect(matchEventType(pattern, eventType)).toBe(expected);
  });

  it('matchesAnyEventType is true when any pattern matches', () => {
    expect(matchesAnyEventType(['user.*', 'order.created'], 'order.created')).toBe(true);
    expect(matchesAnyEventType(['user.*', 'order.created'], 'user.deleted')).toBe(true);
    expect(matchesAnyEventType(['user.*', 'order.created'], 'order.paid')).toBe(false);
    expect(matchesAnyEventType([], 'order.paid')).toBe(false);
  });

  it('isWildcardPattern recognises * and suffix wildcards only', () => {
    expect(WILDCARD_ALL).toBe('*');
    expect(isWildcardPattern('*')).toBe(true);
    expect(isWildcardPattern('order.*')).toBe(true);
    expect(isWildcardPattern('order.created')).toBe(false);
    expect(isWildcardPattern('order*')).toBe(false);
  });
});

describe('formatFilterValue', () => {
  const table: Array<[string, unknown, string]> = [
    ['a string as is', 'gold', 'gold'],
    ['an empty string', '', ''],
    ['an integer', 42, '42'],
    ['a float', 1.5, '1.5'],
    ['a negative number', -3, '-3'],
    ['a large number', 1e21, '1e+21'],
    ['true', true, 'true'],
    ['false', false, 'false'],
    ['a bigint', 12345678901234567890n, '12345678901234567890'],
    ['null', null, 'null'],
    ['undefined', undefined, 'null'],
    ['an array', [1, 'a', null], '[1,"a",null]'],
    [
      'an object with sorted keys',
      { b: 1, a: { d: true, c: 'x' } },
      '{"a":{"c":"x","d":true},"b":1}',
    ],
    ['a nested bigint', { n: 5n }, '{"n":"5"}'],
  ];

  it.each(table)('renders %s', (_name, value, expected) => {
    expect(formatFilterValue(value)).toBe(expected);
  });
});

describe('matchesMetadata', () => {
  it('accepts everything when there are no filters', () => {
    expect(matchesMetadata(undefined, { a: 1 })).toBe(true);
    expect(matchesMetadata(null, null)).toBe(true);
    expect(matchesMetadata({}, undefined)).toBe(true);
    expect(matchesMetadata({}, { anything: 'x' })).toBe(true);
  });

  it('requires every filter key to be present with an equal rendering', () => {
    const filters = { tier: 'gold', region: 'eu' };
    expect(matchesMetadata(filters, { tier: 'gold', region: 'eu', extra: 1 })).toBe(true);
    expect(matchesMetadata(filters, { tier: 'gold' })).toBe(false);
    expect(matchesMetadata(filters, { tier: 'gold', region: 'us' })).toBe(false);
    expect(matchesMetadata(filters, null)).toBe(false);
    expect(matchesMetadata(filters, undefined)).toBe(false);
    expect(matchesMetadata({ tier: 'Gold' }, { tier: 'gold' })).toBe(false);
  });

  it('compares non-string values by their formatted string', () => {
    expect(matchesMetadata({ count: '42' }, { count: 42 })).toBe(true);
    expect(matchesMetadata({ count: '42' }, { count: 42.5 })).toBe(false);
    expect(matchesMetadata({ ratio: '1.5' }, { ratio: 1.5 })).toBe(true);
    expect(matchesMetadata({ vip: 'true' }, { vip: true })).toBe(true);
    expect(matchesMetadata({ vip: 'true' }, { vip: 'TRUE' })).toBe(false);
    expect(matchesMetadata({ gone: 'null' }, { gone: null })).toBe(true);
    expect(matchesMetadata({ gone: 'null' }, {})).toBe(false);
    expect(matchesMetadata({ tags: '["a","b"]' }, { tags: ['a', 'b'] })).toBe(true);
    expect(matchesMetadata({ obj: '{"a":1,"b":2}' }, { obj: { b: 2, a: 1 } })).toBe(true);
  });

  it('looks at own keys only, never the prototype chain', () => {
    expect(matchesMetadata({ toString: 'x' }, {})).toBe(false);
    const inherited = Object.create({ tier: 'gold' }) as Record<string, unknown>;
    expect(matchesMetadata({ tier: 'gold' }, inherited)).toBe(false);
    const parsed = JSON.parse('{"__proto__": {"tier": "gold"}}') as Record<string, unknown>;
    expect(matchesMetadata({ tier: 'gold' }, parsed)).toBe(false);
  });

  it('treats a value that cannot be rendered as a mismatch instead of throwing', () => {
    const cycle: Record<string, unknown> = {};
    cycle['self'] = cycle;
    const getter = Object.defineProperty({}, 'x', {
      enumerable: true,
      get() {
        throw new Error('getter exploded');
      },
    });
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 100_000; i++) deep = { d: deep };
    for (const value of [
      cycle,
      getter,
      deep,
      {
        toJSON: () => {
          throw new Error('no');
        },
      },
    ]) {
      expect(matchesMetadata({ key: 'anything' }, { key: value })).toBe(false);
    }
    const metadata = Object.defineProperty({}, 'key', {
      enumerable: true,
      get() {
        throw new Error('metadata getter exploded');
      },
    }) as Record<string, unknown>;
    expect(matchesMetadata({ key: 'x' }, metadata)).toBe(false);
  });
});
