import type { Subscription } from './models.js';

/**
 * Builds a frozen {@link Subscription} whose `secret` is readable but not enumerable, the
 * JavaScript counterpart of go-hookd's `json:"-"`: it never leaks into `JSON.stringify`,
 * `console.log`, structured logs or events by accident.
 */
export function subscriptionRecord(
  fields: Omit<Subscription, 'secret'> & { readonly secret: string },
): Subscription {
  const { secret, ...visible } = fields;
  const record = {
    ...visible,
    eventTypes: Object.freeze([...visible.eventTypes]),
    filters: Object.freeze({ ...visible.filters }),
    headers: Object.freeze({ ...visible.headers }),
    metadata: Object.freeze({ ...visible.metadata }),
    retryPolicy: Object.freeze({ ...visible.retryPolicy }),
  };
  Object.defineProperty(record, 'secret', { value: secret, enumerable: false });
  return Object.freeze(record) as Subscription;
}
