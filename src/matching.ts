/**
 * Event-type patterns and metadata filters (go-hookd §3.11). Pure functions.
 */

/** The pattern matching every event type. */
export const WILDCARD_ALL = '*';
const SUFFIX_WILDCARD = '.*';

/** True for `*` and `<prefix>.*` patterns. */
export function isWildcardPattern(pattern: string): boolean {
  return pattern === WILDCARD_ALL || pattern.endsWith(SUFFIX_WILDCARD);
}

/**
 * Whether `eventType` matches `pattern`: `*` matches everything; `order.*` matches any type
 * starting with `order.` (so `order.created` and `order.item.added` — and `order.` itself, as in
 * go-hookd — but not `order` or `orders.x`); anything else is exact, case-sensitive equality.
 */
export function matchEventType(pattern: string, eventType: string): boolean {
  if (pattern === WILDCARD_ALL) return true;
  if (pattern.endsWith(SUFFIX_WILDCARD)) {
    const prefix = pattern.slice(0, -1); // keep the dot: "order."
    return eventType.startsWith(prefix);
  }
  return pattern === eventType;
}

/** Whether any of `patterns` matches `eventType`. */
export function matchesAnyEventType(patterns: readonly string[], eventType: string): boolean {
  return patterns.some((pattern) => matchEventType(pattern, eventType));
}

/**
 * Whether event `metadata` satisfies subscription `filters`: every filter key must be present
 * and its value, rendered by {@link formatFilterValue}, must equal the filter string exactly.
 * Empty filters accept everything; extra metadata keys are ignored.
 */
export function matchesMetadata(
  filters: Readonly<Record<string, string>> | null | undefined,
  metadata: Readonly<Record<string, unknown>> | null | undefined,
): boolean {
  if (!filters) return true;
  for (const [key, expected] of Object.entries(filters)) {
    if (!metadata || !Object.hasOwn(metadata, key)) return false;
    let actual: string;
    try {
      actual = formatFilterValue(metadata[key]);
    } catch {
      // A value that cannot be rendered (a cycle, a throwing getter or toJSON, extreme nesting)
      // equals no filter string.
      return false;
    }
    if (actual !== expected) return false;
  }
  return true;
}

/**
 * How a metadata value is compared with a filter string. go-hookd used Go's `%v`; node-hookd
 * defines the JavaScript equivalent: strings as they are; numbers, booleans and bigints by
 * `String()` (`42`, `1.5`, `true`); `null` and `undefined` as `null`; arrays and objects as
 * JSON with sorted keys (`{"a":1}`).
 */
export function formatFilterValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'undefined':
      return 'null';
    case 'object':
      return value === null ? 'null' : canonicalJson(value);
    default:
      return String(value);
  }
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, nested: unknown) => {
    if (nested && typeof nested === 'object' && !Array.isArray(nested)) {
      const sorted: Record<string, unknown> = {};
      for (const key of Object.keys(nested).sort()) {
        sorted[key] = (nested as Record<string, unknown>)[key];
      }
      return sorted;
    }
    return typeof nested === 'bigint' ? nested.toString() : nested;
  });
}
