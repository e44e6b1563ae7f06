/**
 * Structural types for the parts of node-postgres (`pg`) node-hookd uses. The application may
 * hand over a pool or client from its own copy of `pg` (another version, another module
 * instance), so nothing here depends on `pg`'s classes — only on its documented call shapes.
 *
 * Result values are parsed by node-hookd's own type parsers, passed with every query (`types`),
 * so an application that changed `pg`'s global parsers (timestamps as strings, int8 as BigInt …)
 * does not change what node-hookd reads.
 */

/** A `pg` query config object. */
export interface PgQueryConfig {
  readonly text: string;
  readonly values?: readonly unknown[];
  readonly types?: PgTypeParsers;
  /** Client-side read timeout, in ms. */
  readonly query_timeout?: number;
}

/** The subset of a `pg` result node-hookd reads. */
export interface PgQueryResult {
  readonly rows: readonly Record<string, unknown>[];
  readonly rowCount: number | null;
}

/** Per-query type parsers, the `types` option of `pg` queries. */
export interface PgTypeParsers {
  getTypeParser(oid: number, format?: string): (value: string) => unknown;
}

/** Anything that runs a query: a `pg.Pool`, a `pg.Client`, a `PoolClient`. */
export interface PgQueryable {
  query(config: PgQueryConfig): Promise<PgQueryResult>;
}

/** A notification delivered to a client that ran `LISTEN`. */
export interface PgNotification {
  readonly channel: string;
  readonly payload?: string | undefined;
}

/** A connection checked out of a pool (`pg.PoolClient`). */
export interface PgPoolClient extends PgQueryable {
  /** Returns the connection; a truthy argument destroys it instead. */
  release(destroy?: Error | boolean): void;
  on(event: 'notification', listener: (message: PgNotification) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  removeListener?(event: 'error', listener: (error: Error) => void): unknown;
  removeAllListeners?(event?: string): unknown;
}

/** A connection pool (`pg.Pool`). */
export interface PgPool extends PgQueryable {
  connect(): Promise<PgPoolClient>;
  end?(): Promise<void>;
}

/**
 * Whether `value` is a pool rather than a single client. `pg.Client` also has `connect()` (it
 * opens the client itself), so the pool's counters are what tells them apart.
 */
export function isPgPool(value: unknown): value is PgPool {
  if (!isPgQueryable(value)) return false;
  const candidate = value as unknown as Record<string, unknown>;
  return (
    typeof candidate['connect'] === 'function' &&
    ('totalCount' in candidate || 'idleCount' in candidate || 'waitingCount' in candidate)
  );
}

/** Whether `value` can run queries. */
export function isPgQueryable(value: unknown): value is PgQueryable {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { query?: unknown }).query === 'function'
  );
}

// ── Type parsers ──────────────────────────────────────────────────────────────────────────

const OID = {
  bool: 16,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  json: 114,
  float4: 700,
  float8: 701,
  textArray: 1009,
  varcharArray: 1015,
  varchar: 1043,
  timestamp: 1114,
  timestamptz: 1184,
  numeric: 1700,
  jsonb: 3802,
} as const;

const identity = (value: string): string => value;

const PARSERS = new Map<number, (value: string) => unknown>([
  [OID.bool, (value) => value === 't' || value === 'true'],
  // Counts come back as int8; they never approach 2^53.
  [OID.int8, Number],
  [OID.int2, Number],
  [OID.int4, Number],
  [OID.float4, Number],
  [OID.float8, Number],
  [OID.numeric, Number],
  [OID.json, (value) => JSON.parse(value) as unknown],
  [OID.jsonb, (value) => JSON.parse(value) as unknown],
  [OID.textArray, parseTextArray],
  [OID.varcharArray, parseTextArray],
  [OID.timestamptz, parseTimestamp],
  [OID.timestamp, parseTimestamp],
]);

/** node-hookd's result parsers; unknown types stay strings. */
export const PG_TYPES: PgTypeParsers = {
  getTypeParser: (oid: number) => PARSERS.get(oid) ?? identity,
};

// ISO DateStyle, the server default: 2024-05-01 12:34:56.789012+02 (offset may carry :MM[:SS]).
const TIMESTAMP =
  /^(\d{4,})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?|Z)?$/;

/**
 * Parses a PostgreSQL timestamp to a `Date` (millisecond precision: the microseconds are cut,
 * never rounded up, so a parsed time is never later than the stored one). A timestamp without
 * zone is read as UTC.
 */
export function parseTimestamp(value: string): Date {
  const fast = parseIsoTimestamp(value);
  if (fast !== null) return fast;
  const match = TIMESTAMP.exec(value);
  if (!match) {
    if (value === 'infinity') return new Date(8.64e15);
    if (value === '-infinity') return new Date(-8.64e15);
    return new Date(value);
  }
  const [, year, month, day, hour, minute, second, fraction, sign, offH, offM, offS] = match;
  const millis = fraction ? Number(fraction.padEnd(3, '0').slice(0, 3)) : 0;
  const utc = Date.UTC(
    Number(year),
    Number(month) - 1,
    Number(day),
    Number(hour),
    Number(minute),
    Number(second),
    millis,
  );
  const offsetSeconds =
    sign === undefined
      ? 0
      : (sign === '-' ? -1 : 1) *
        (Number(offH) * 3600 + Number(offM ?? 0) * 60 + Number(offS ?? 0));
  return new Date(utc - offsetSeconds * 1000);
}

/**
 * The common case of {@link parseTimestamp} without the regular expression: what the server
 * sends (`2024-05-01 12:34:56.789012+02`, four-digit year), read character by character. Every
 * claimed row carries timestamps, and a match of the expression allocated an array and eleven
 * strings per value. Anything else (`null`) goes through the expression, which gives the same
 * `Date` for everything this accepts.
 */
function parseIsoTimestamp(value: string): Date | null {
  const length = value.length;
  if (
    length < 19 ||
    value.charCodeAt(4) !== DASH ||
    value.charCodeAt(7) !== DASH ||
    (value.charCodeAt(10) !== SPACE && value.charCodeAt(10) !== LETTER_T) ||
    value.charCodeAt(13) !== COLON ||
    value.charCodeAt(16) !== COLON
  ) {
    return null;
  }
  const year = twoDigits(value, 0) * 100 + twoDigits(value, 2);
  const month = twoDigits(value, 5);
  const day = twoDigits(value, 8);
  const hour = twoDigits(value, 11);
  const minute = twoDigits(value, 14);
  const second = twoDigits(value, 17);
  if ((year | month | day | hour | minute | second) < 0) return null;
  let index = 19;
  let millis = 0;
  if (index < length && value.charCodeAt(index) === DOT) {
    index += 1;
    let count = 0;
    while (index < length && isDigit(value.charCodeAt(index))) {
      if (count < 3) millis = millis * 10 + (value.charCodeAt(index) - ZERO);
      count += 1;
      index += 1;
    }
    if (count === 0 || count > 6) return null;
    for (let pad = count; pad < 3; pad++) millis *= 10;
  }
  let offsetSeconds = 0;
  if (index < length) {
    const code = value.charCodeAt(index);
    if (code === LETTER_Z) {
      index += 1;
    } else if (code === PLUS || code === DASH) {
      const hours = twoDigits(value, index + 1);
      if (hours < 0) return null;
      index += 3;
      let minutes = 0;
      let seconds = 0;
      // Up to two more `:?dd` groups, as the expression reads them.
      for (let group = 0; group < 2 && index < length; group++) {
        const start = value.charCodeAt(index) === COLON ? index + 1 : index;
        const part = twoDigits(value, start);
        if (part < 0) return null;
        if (group === 0) minutes = part;
        else seconds = part;
        index = start + 2;
      }
      offsetSeconds = (code === DASH ? -1 : 1) * (hours * 3600 + minutes * 60 + seconds);
    } else {
      return null;
    }
  }
  if (index !== length) return null;
  return new Date(
    Date.UTC(year, month - 1, day, hour, minute, second, millis) - offsetSeconds * 1000,
  );
}

const ZERO = 48;
const DASH = 45;
const PLUS = 43;
const DOT = 46;
const COLON = 58;
const SPACE = 32;
const LETTER_T = 84;
const LETTER_Z = 90;

function isDigit(code: number): boolean {
  return code >= ZERO && code <= ZERO + 9;
}

/** The two-digit number at `index`, or -1. */
function twoDigits(value: string, index: number): number {
  if (index + 2 > value.length) return -1;
  const tens = value.charCodeAt(index) - ZERO;
  const ones = value.charCodeAt(index + 1) - ZERO;
  if (tens < 0 || tens > 9 || ones < 0 || ones > 9) return -1;
  return tens * 10 + ones;
}

/** Parses a one-dimensional text array literal: `{a,"b c","d\"e",NULL}`. */
export function parseTextArray(value: string): Array<string | null> {
  if (value === '{}') return [];
  const items: Array<string | null> = [];
  let index = value.startsWith('{') ? 1 : 0;
  const end = value.endsWith('}') ? value.length - 1 : value.length;
  while (index < end) {
    let item = '';
    if (value[index] === '"') {
      index += 1;
      while (index < end && value[index] !== '"') {
        if (value[index] === '\\') index += 1;
        item += value[index] ?? '';
        index += 1;
      }
      index += 1; // closing quote
      items.push(item);
    } else {
      while (index < end && value[index] !== ',') {
        item += value[index];
        index += 1;
      }
      items.push(item === 'NULL' ? null : item);
    }
    index += 1; // comma
  }
  return items;
}
