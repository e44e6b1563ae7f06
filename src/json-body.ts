import { invalidArgument } from './errors.js';
import type { JsonObject } from './models.js';

/**
 * Serialises a payload once, at queue time. The resulting string is stored and sent unchanged
 * on every attempt, so the bytes that were signed never drift between attempts, and what
 * `getDelivery()` returns is exactly what receivers get. Values JSON cannot carry faithfully are
 * refused instead of silently changed: `NaN`/`Infinity` (JSON would write `null`), `bigint`
 * (JSON.stringify throws), functions and symbols (JSON would drop them), Maps and Sets (JSON
 * would write `{}`), and cycles. Objects
 * with a `toJSON` method (like `Date`) are serialised through it, as JSON.stringify does.
 */
export function serializeJsonObject(
  value: unknown,
  field: string,
  maxBytes: number,
): { body: string; object: JsonObject } {
  if (value === null || typeof value !== 'object' || isArray(value)) {
    throw invalidArgument(field, `${field} must be a JSON object`);
  }
  let body: string | undefined;
  try {
    body = JSON.stringify(value, (key: string, nested: unknown) => {
      switch (typeof nested) {
        case 'number':
          if (!Number.isFinite(nested))
            throw new TypeError(
              `${describeKey(key)} is ${String(nested)}, which JSON cannot represent`,
            );
          return nested;
        case 'bigint':
          throw new TypeError(`${describeKey(key)} is a bigint; send it as a string`);
        case 'function':
        case 'symbol':
          throw new TypeError(
            `${describeKey(key)} is a ${typeof nested}, which JSON cannot represent`,
          );
        case 'object':
          // JSON.stringify writes Maps and Sets as {}: their entries would vanish unnoticed.
          if (nested instanceof Map || nested instanceof Set) {
            throw new TypeError(
              `${describeKey(key)} is a ${nested instanceof Map ? 'Map' : 'Set'}; convert it to an object or array`,
            );
          }
          return nested;
        default:
          return nested;
      }
    });
  } catch (error) {
    const reason = error instanceof TypeError ? error.message : 'it cannot be serialised';
    throw invalidArgument(
      field,
      `${field} is not valid JSON: ${reason.replace(/^Converting circular structure.*/s, 'it contains a cycle')}`,
    );
  }
  // A Date, a boxed primitive or a `toJSON` method can turn an object into a string, an array or
  // nothing at all: what is sent must still be a JSON object.
  if (body === undefined || !body.startsWith('{')) {
    throw invalidArgument(field, `${field} must be a JSON object`);
  }
  const size = Buffer.byteLength(body, 'utf8');
  if (size > maxBytes) {
    throw invalidArgument(
      field,
      `${field} must be at most ${maxBytes} bytes as JSON (got ${size})`,
    );
  }
  return { body, object: JSON.parse(body) as JsonObject };
}

// Array.isArray throws for a revoked Proxy; such a value then fails in JSON.stringify instead.
function isArray(value: unknown): boolean {
  try {
    return Array.isArray(value);
  } catch {
    return false;
  }
}

function describeKey(key: string): string {
  return key === '' ? 'the value' : `key ${JSON.stringify(key)}`;
}
