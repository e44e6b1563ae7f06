import fc from 'fast-check';

/**
 * Building blocks of the fuzz suite: arbitraries that produce *specifications* of hostile
 * inputs, and `materialize`, which turns a specification into the real value right before the
 * call. Specifications are plain, printable data, so fast-check can shrink and report a failing
 * input even when the real value is a throwing getter or a revoked Proxy that would break
 * printing.
 */

/** A value built fresh for every call (getters, proxies, cycles …), printed by its label. */
export class Hostile {
  constructor(
    readonly label: string,
    readonly build: () => unknown,
    /** Whether merely reading the value (a property, its prototype) throws the caller's error. */
    readonly throwsOnAccess = false,
  ) {}

  [fc.toStringMethod](): string {
    return `hostile(${this.label})`;
  }
}

/** A reference to the n-th fixture of the current world (a subscription id, a tenant …). */
export class Ref {
  constructor(
    readonly kind: 'subscriptionId' | 'deliveryId' | 'tenantId',
    readonly index: number,
  ) {}

  [fc.toStringMethod](): string {
    return `ref(${this.kind}#${this.index})`;
  }
}

/** How an object is presented to the API. */
export type Wrap =
  | 'plain'
  | 'null-prototype'
  | 'frozen'
  | 'transparent-proxy'
  | 'throwing-getter'
  | 'flipping-getter'
  | 'throwing-proxy'
  | 'revoked-proxy';

/** An object with exactly these own keys (`__proto__` included, as JSON.parse makes it). */
export class ObjSpec {
  constructor(
    readonly entries: ReadonlyArray<readonly [string, unknown]>,
    readonly wrap: Wrap = 'plain',
  ) {}

  [fc.toStringMethod](): string {
    const body = this.entries.map(
      ([key, value]) => `${JSON.stringify(key)}: ${fc.stringify(value)}`,
    );
    return `${this.wrap === 'plain' ? '' : `<${this.wrap}>`}{ ${body.join(', ')} }`;
  }
}

/** An array of specifications. */
export class ArrSpec {
  constructor(readonly items: readonly unknown[]) {}

  [fc.toStringMethod](): string {
    return `[${this.items.map((item) => fc.stringify(item)).join(', ')}]`;
  }
}

/** Marks a key left out of a request. */
export const OMIT = Symbol('omit');

/** Resolves {@link Ref}s against the fixtures of the world a call runs in. */
export type RefResolver = (ref: Ref) => unknown;

/** Turns a specification into the value the API receives. */
export function materialize(spec: unknown, resolve: RefResolver): unknown {
  if (spec instanceof Hostile) return spec.build();
  if (spec instanceof Ref) return resolve(spec);
  if (spec instanceof ArrSpec) return spec.items.map((item) => materialize(item, resolve));
  if (spec instanceof ObjSpec) return buildObject(spec, resolve);
  return spec;
}

function buildObject(spec: ObjSpec, resolve: RefResolver): unknown {
  const target: Record<string, unknown> =
    spec.wrap === 'null-prototype' ? (Object.create(null) as Record<string, unknown>) : {};
  for (const [key, value] of spec.entries) {
    Object.defineProperty(target, key, {
      value: materialize(value, resolve),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  const firstKey = spec.entries[0]?.[0];
  switch (spec.wrap) {
    case 'plain':
    case 'null-prototype':
      return target;
    case 'frozen':
      return Object.freeze(target);
    case 'transparent-proxy':
      return new Proxy(target, {});
    case 'throwing-getter':
      if (firstKey !== undefined) {
        Object.defineProperty(target, firstKey, {
          enumerable: true,
          configurable: true,
          get() {
            throw new Error(`getter ${firstKey} exploded`);
          },
        });
      }
      return target;
    case 'flipping-getter':
      if (firstKey !== undefined) {
        // Valid on the first read, something else afterwards: catches code that reads twice.
        const valid = target[firstKey];
        let reads = 0;
        Object.defineProperty(target, firstKey, {
          enumerable: true,
          configurable: true,
          get() {
            reads += 1;
            return reads === 1 ? valid : { flipped: reads };
          },
        });
      }
      return target;
    case 'throwing-proxy':
      return throwingProxy();
    case 'revoked-proxy':
      return revokedProxy();
  }
}

export function throwingProxy(): object {
  const fail = (trap: string) => () => {
    throw new Error(`${trap} trap exploded`);
  };
  return new Proxy(
    {},
    {
      get: fail('get'),
      has: fail('has'),
      ownKeys: fail('ownKeys'),
      getOwnPropertyDescriptor: fail('getOwnPropertyDescriptor'),
      getPrototypeOf: fail('getPrototypeOf'),
      set: fail('set'),
      defineProperty: fail('defineProperty'),
    },
  );
}

export function revokedProxy(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

// Large values are built once and shared: nothing under test may modify its input.
let deepObject: unknown;
let deepArray: unknown;
let hugeString: string | undefined;

function deep(): unknown {
  if (deepObject === undefined) {
    let value: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 20_000; i++) value = { d: value };
    deepObject = value;
  }
  return deepObject;
}

function deepArr(): unknown {
  if (deepArray === undefined) {
    let value: unknown[] = [];
    for (let i = 0; i < 20_000; i++) value = [value];
    deepArray = value;
  }
  return deepArray;
}

/** Just over 1 MiB: one byte more than any payload may have. */
export function huge(): string {
  hugeString ??= 'x'.repeat(1_048_577);
  return hugeString;
}

/** A payload of exactly 1 MiB as JSON: the largest accepted. */
export const LARGEST_PAYLOAD = new Hostile('payload of exactly 1 MiB', () => ({
  blob: 'x'.repeat(1_048_576 - '{"blob":""}'.length),
}));
/** A string one byte over 1 MiB. */
export const HUGE_STRING = new Hostile('1 MiB + 1 string', huge);

const HOSTILE_VALUES: readonly Hostile[] = [
  new Hostile('cycle', () => {
    const value: Record<string, unknown> = { a: 1 };
    value['self'] = value;
    return value;
  }),
  new Hostile('cycle in array', () => {
    const value: unknown[] = [1];
    value.push({ back: value });
    return value;
  }),
  new Hostile('20,000-deep object', deep),
  new Hostile('20,000-deep array', deepArr),
  new Hostile(
    'throwing getter',
    () =>
      Object.defineProperty({}, 'x', {
        enumerable: true,
        get() {
          throw new Error('getter exploded');
        },
      }),
    true,
  ),
  new Hostile('throwing toJSON', () => ({
    toJSON() {
      throw new Error('toJSON exploded');
    },
  })),
  new Hostile('toJSON returning undefined', () => ({ toJSON: () => undefined })),
  new Hostile('toJSON returning a cycle', () => {
    const value: Record<string, unknown> = {};
    value['self'] = value;
    return { toJSON: () => value };
  }),
  new Hostile(
    'throwing toString and valueOf',
    () => ({
      toString() {
        throw new Error('toString exploded');
      },
      valueOf() {
        throw new Error('valueOf exploded');
      },
      [Symbol.toPrimitive]() {
        throw new Error('toPrimitive exploded');
      },
    }),
    true,
  ),
  new Hostile('throwing proxy', throwingProxy, true),
  new Hostile('revoked proxy', revokedProxy, true),
  new Hostile('everything-is-a-function proxy', () => new Proxy({}, { get: () => () => 'x' })),
  new Hostile('thenable', () => ({ then: (resolve: (value: unknown) => void) => resolve(1) })),
  new Hostile('throwing thenable', () => ({
    then() {
      throw new Error('then exploded');
    },
  })),
  new Hostile('prototype pollution via JSON', () =>
    JSON.parse(
      '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"tier":"gold"}',
    ),
  ),
  new Hostile('null prototype', () =>
    Object.assign(Object.create(null) as object, { tier: 'gold' }),
  ),
  new Hostile('1 MiB + 1 string', huge),
  new Hostile('1 MiB + 1 object', () => ({ blob: huge() })),
  new Hostile('sparse array', () => {
    const holes: unknown[] = new Array(3);
    holes[2] = 1;
    return holes;
  }),
  new Hostile('symbol', () => Symbol('hostile')),
  new Hostile('bigint', () => 2n ** 80n),
  new Hostile('function', () => () => 'called'),
  new Hostile('class', () => class Hostile {}),
  new Hostile('invalid Date', () => new Date(Number.NaN)),
  new Hostile('Date', () => new Date(0)),
  new Hostile('Map', () => new Map([['tier', 'gold']])),
  new Hostile('Set', () => new Set(['a'])),
  new Hostile('WeakMap', () => new WeakMap()),
  new Hostile('Buffer', () => Buffer.from('hello')),
  new Hostile('Uint8Array', () => new Uint8Array([0xff, 0x00])),
  new Hostile('ArrayBuffer', () => new ArrayBuffer(8)),
  new Hostile('Error', () => new Error('an error as a value')),
  new Hostile('RegExp', () => /x/g),
  new Hostile('boxed string', () => new String('boxed')),
  new Hostile('boxed number', () => new Number(7)),
  new Hostile('Promise', () => Promise.resolve('value')),
  new Hostile('NaN', () => Number.NaN),
  new Hostile('Infinity', () => Number.POSITIVE_INFINITY),
  new Hostile('-Infinity', () => Number.NEGATIVE_INFINITY),
  new Hostile('-0', () => -0),
  new Hostile('MAX_VALUE', () => Number.MAX_VALUE),
  new Hostile('2^53 + 2', () => 2 ** 53 + 2),
  new Hostile('globalThis', () => globalThis),
  new Hostile('Object.prototype', () => Object.prototype),
];

/** Strings that break naive code: boundaries, control characters, unicode, injection. */
export const EDGE_STRINGS: readonly string[] = [
  '',
  ' ',
  'a',
  'ab',
  'abc',
  'a.b',
  'order.created',
  'order.item.added',
  '*',
  '.*',
  'a.*',
  'order.*',
  '**',
  '\r\n',
  'a\r\nX-Injected: 1',
  'line\nbreak',
  '\t',
  '\u0000',
  'nul\u0000inside',
  '\u007f',
  '\uD800',
  '\uDFFF\uD800',
  '\u202Eevil',
  '\uFEFF',
  '🎉',
  'é',
  'ᄀᄀᄀ각ᆨᆨ',
  '<script>alert(1)</script>',
  "'; DROP TABLE x; --",
  '../../etc/passwd',
  '%00',
  '${7*7}',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'then',
  'whsec_',
  'whsec_abc',
  'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  'x'.repeat(7),
  'x'.repeat(8),
  'x'.repeat(254),
  'x'.repeat(255),
  'x'.repeat(256),
  'é'.repeat(128),
  'x'.repeat(512),
  'x'.repeat(513),
  'x'.repeat(2048),
  'x'.repeat(2049),
  '0',
  '-1',
  'NaN',
  'null',
  'undefined',
  'true',
];

const EDGE_NUMBERS: readonly number[] = [
  0,
  -0,
  1,
  -1,
  0.5,
  1.5,
  2,
  999,
  1000,
  1001,
  100_000,
  100_001,
  2 ** 31,
  2 ** 53 - 1,
  2 ** 53,
  8.64e15,
  8.64e15 + 1,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Number.EPSILON,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
];

export const hostileValue: fc.Arbitrary<unknown> = fc.constantFrom(...HOSTILE_VALUES);
const benignHostileValue: fc.Arbitrary<unknown> = fc.constantFrom(
  ...HOSTILE_VALUES.filter((value) => !value.throwsOnAccess),
);
export const edgeString: fc.Arbitrary<string> = fc.constantFrom(...EDGE_STRINGS);
export const edgeNumber: fc.Arbitrary<number> = fc.constantFrom(...EDGE_NUMBERS);

/** Any string: random, random UTF-16 (lone surrogates included), boundary and hostile ones. */
export const anyString: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.string(), weight: 3 },
  { arbitrary: fc.string({ unit: 'binary' }), weight: 2 },
  {
    arbitrary: fc.string({ unit: fc.constantFrom('\u0000', '\r', '\n', '\uD800', 'a', '.', '*') }),
    weight: 1,
  },
  { arbitrary: edgeString, weight: 4 },
);

/** Any number, integers and edge values favoured. */
export const anyNumber: fc.Arbitrary<number> = fc.oneof(
  { arbitrary: fc.integer({ min: -10, max: 200_000 }), weight: 3 },
  { arbitrary: fc.double(), weight: 2 },
  { arbitrary: edgeNumber, weight: 3 },
);

const ANYTHING = fc.anything({
  maxDepth: 3,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  stringUnit: 'binary',
});

/** Anything at all: fast-check's `anything` with every option, plus the hostile values. */
export const junk: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: hostileValue, weight: 4 },
  { arbitrary: ANYTHING, weight: 3 },
  { arbitrary: anyString, weight: 2 },
  { arbitrary: anyNumber, weight: 1 },
  { arbitrary: fc.constantFrom(null, undefined, true, false), weight: 1 },
);

/**
 * Junk that does not throw when merely read: for positions read by code this suite may not
 * change, where throwing objects are known gaps (tested separately).
 */
export const benignJunk: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: benignHostileValue, weight: 4 },
  { arbitrary: ANYTHING, weight: 3 },
  { arbitrary: anyString, weight: 2 },
  { arbitrary: anyNumber, weight: 1 },
  { arbitrary: fc.constantFrom(null, undefined, true, false), weight: 1 },
);

const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'then', 'toJSON'];

/** An extra key nobody asked for. */
export const extraEntry: fc.Arbitrary<readonly [string, unknown]> = fc.tuple(
  fc.oneof(fc.constantFrom(...HOSTILE_KEYS), fc.string({ maxLength: 12 })),
  junk,
);

/** Presentations of an object that only forward to it, never throwing on their own. */
export const benignWrap: fc.Arbitrary<Wrap> = fc.oneof(
  { arbitrary: fc.constant<Wrap>('plain'), weight: 30 },
  { arbitrary: fc.constant<Wrap>('null-prototype'), weight: 2 },
  { arbitrary: fc.constant<Wrap>('frozen'), weight: 2 },
  { arbitrary: fc.constant<Wrap>('transparent-proxy'), weight: 2 },
);

export const anyWrap: fc.Arbitrary<Wrap> = fc.oneof(
  { arbitrary: fc.constant<Wrap>('plain'), weight: 30 },
  { arbitrary: fc.constant<Wrap>('null-prototype'), weight: 2 },
  { arbitrary: fc.constant<Wrap>('frozen'), weight: 2 },
  { arbitrary: fc.constant<Wrap>('transparent-proxy'), weight: 2 },
  { arbitrary: fc.constant<Wrap>('throwing-getter'), weight: 1 },
  { arbitrary: fc.constant<Wrap>('flipping-getter'), weight: 1 },
  { arbitrary: fc.constant<Wrap>('throwing-proxy'), weight: 1 },
  { arbitrary: fc.constant<Wrap>('revoked-proxy'), weight: 1 },
);

/**
 * What one request field may hold: `valid` generates only values the API accepts (so that calls
 * get past validation and exercise storage, matching and idempotency), `any` mixes those with
 * near-misses and junk. `required` fields are never left out of a valid request.
 */
export class Field {
  constructor(
    readonly valid: fc.Arbitrary<unknown>,
    readonly any: fc.Arbitrary<unknown>,
    readonly required = false,
  ) {}

  /** The same field, never omitted from a valid request. */
  asRequired(): Field {
    return new Field(this.valid, this.any, true);
  }

  /** Either kind of value: valid ones half of the time. */
  both(): fc.Arbitrary<unknown> {
    return fc.oneof(this.valid, this.any);
  }
}

/** A field: usually `valid`, sometimes `near` (boundaries, wrong types), rarely `other`. */
export function field(
  valid: fc.Arbitrary<unknown>,
  near: fc.Arbitrary<unknown> = anyString,
  other: fc.Arbitrary<unknown> = junk,
): Field {
  return new Field(
    valid,
    fc.oneof(
      { arbitrary: valid, weight: 8 },
      { arbitrary: near, weight: 2 },
      { arbitrary: other, weight: 1 },
    ),
  );
}

/** Options of {@link requestOf}. */
export interface RequestOptions {
  /** Weight of leaving a field out (against 10 for keeping it) in the `any` variant. */
  readonly omitWeight?: number;
  /** Presentations of the object in the `any` variant. */
  readonly wraps?: fc.Arbitrary<Wrap>;
  /** What replaces the whole request one time in twenty in the `any` variant. */
  readonly instead?: fc.Arbitrary<unknown>;
}

/**
 * A request object. `valid`: every required field and some optional ones, with valid values, as a
 * plain object. `any`: each field usually kept (valid, near-miss or junk), sometimes left out,
 * sometimes with extra (often prototype-looking) keys, in one of the wraps; one time in twenty
 * the whole request is junk instead.
 */
export function requestOf(
  fields: Readonly<Record<string, Field>>,
  options: RequestOptions = {},
): Field {
  const { omitWeight = 1, wraps = anyWrap, instead = junk } = options;
  const validEntries = Object.entries(fields).map(([key, spec]) => {
    const entry = spec.valid.map((value) => [key, value] as const);
    return spec.required ? entry : fc.option(entry, { nil: OMIT });
  });
  const valid = fc
    .tuple(...validEntries)
    .map(
      (chosen) =>
        new ObjSpec(chosen.filter((entry): entry is readonly [string, unknown] => entry !== OMIT)),
    );
  const anyEntries = Object.entries(fields).map(([key, spec]) =>
    fc.oneof(
      { arbitrary: spec.any.map((value) => [key, value] as const), weight: 10 },
      { arbitrary: fc.constant(OMIT), weight: omitWeight },
    ),
  );
  const object = fc
    .tuple(
      fc.tuple(...anyEntries),
      fc.array(extraEntry, { maxLength: 2 }),
      fc.integer({ min: 0, max: 9 }).map((dice) => dice === 0),
      wraps,
    )
    .map(([chosen, extra, withExtra, wrap]) => {
      const kept = chosen.filter((entry): entry is readonly [string, unknown] => entry !== OMIT);
      return new ObjSpec(withExtra ? [...kept, ...extra] : kept, wrap);
    });
  return new Field(
    valid,
    fc.oneof({ arbitrary: object, weight: 19 }, { arbitrary: instead, weight: 1 }),
  );
}

/** A record: valid keys to valid values, or any keys (hostile ones included) to any values. */
export function recordOf(
  validKey: fc.Arbitrary<string>,
  anyKey: fc.Arbitrary<string>,
  value: Field,
  maxKeys = 6,
  wraps: fc.Arbitrary<Wrap> = anyWrap,
): Field {
  const build = (
    key: fc.Arbitrary<string>,
    item: fc.Arbitrary<unknown>,
    wrap: fc.Arbitrary<Wrap>,
  ) =>
    fc
      .tuple(fc.array(fc.tuple(key, item), { maxLength: maxKeys }), wrap)
      .map(([entries, chosen]) => new ObjSpec([...new Map(entries)], chosen));
  return new Field(
    build(validKey, value.valid, fc.constant<Wrap>('plain')),
    build(anyKey, value.any, wraps),
  );
}

/** An array: `minLength`..`maxLength` valid items, or 0..`maxLength` items of any kind. */
export function arrayOf(item: Field, maxLength: number, minLength = 0): Field {
  return new Field(
    fc.array(item.valid, { minLength, maxLength }).map((items) => new ArrSpec(items)),
    fc.array(item.any, { maxLength }).map((items) => new ArrSpec(items)),
  );
}
