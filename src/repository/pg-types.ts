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
