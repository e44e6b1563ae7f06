import { describe, expect, it } from 'vitest';

import type { AttemptRow, DeliveryRow } from './support/database.js';
import {
  ABORTED_BY_SENDER,
  assertLedger,
  buildLedger,
  type LedgerInput,
} from './support/ledger.js';
import type { Exchange } from './support/receivers.js';

/** The ledger the fault scenarios rely on, checked on hand-made histories. */

const row = (id: string, status: string, attemptCount = 1, maxAttempts = 3): DeliveryRow => ({
  id,
  status,
  attemptCount,
  maxAttempts,
  subscriptionId: null,
});
const request = (deliveryId: string, attempt: number, status: number | null): Exchange => ({
  deliveryId,
  attempt,
  endpoint: 'e',
  receivedAt: attempt * 1_000,
  signedAt: attempt * 1_000,
  status: status ?? 200,
  respondedAt: status === null ? null : attempt * 1_000 + 5,
  abortedAt: status === null ? attempt * 1_000 + 5 : null,
});
const attempt = (
  deliveryId: string,
  attemptNumber: number,
  statusCode: number,
  error: string | null = null,
): AttemptRow => ({ deliveryId, attemptNumber, statusCode, error });

function ledger(input: Partial<LedgerInput> & Pick<LedgerInput, 'deliveries'>) {
  return buildLedger({
    scenario: 'unit',
    queued: [...input.deliveries.keys()],
    attempts: [],
    exchanges: [],
    ...input,
  });
}

describe('fault ledger', () => {
  it('holds for deliveries sent once, and for retries the rules called for', () => {
    const result = ledger({
      deliveries: new Map([
        ['a', row('a', 'success')],
        ['b', row('b', 'success', 2)],
        ['c', row('c', 'dead_letter', 3)],
      ]),
      attempts: [
        attempt('a', 1, 200),
        attempt('b', 1, 503),
        attempt('b', 2, 200),
        attempt('c', 1, 500),
        attempt('c', 2, 0, 'request timed out after 1000 ms'),
        attempt('c', 3, 500),
      ],
      exchanges: [
        request('a', 1, 200),
        request('b', 1, 503),
        request('b', 2, 200),
        request('c', 1, 500),
        request('c', 2, null),
        request('c', 3, 500),
      ],
      expect: (delivery) =>
        delivery.id === 'c' ? { final: 'dead_letter', requests: 3 } : { final: 'success' },
    });
    expect(result).toMatchObject({ missing: 0, wrongState: 0, duplicates: 0, succeeded: 2 });
    expect(() => assertLedger(result)).not.toThrow();
  });

  it('counts a delivery never sent, or still pending, as missing', () => {
    const result = ledger({
      queued: ['a', 'b', 'gone'],
      deliveries: new Map([
        ['a', row('a', 'success')],
        ['b', row('b', 'pending')],
      ]),
      attempts: [attempt('a', 1, 200)],
    });
    expect(result.missing).toBe(3);
    expect(() => assertLedger(result)).toThrow(/missing 3/);
  });

  it('counts a final state the rules do not predict as wrong', () => {
    const result = ledger({
      deliveries: new Map([['a', row('a', 'dead_letter', 1)]]),
      attempts: [attempt('a', 1, 500)],
      exchanges: [request('a', 1, 500)],
      expect: () => ({ final: 'rules' }),
    });
    // One retryable failure of three allowed attempts: the rules say "retry", not "dead letter".
    expect(result.wrongState).toBe(1);
    const permanent = ledger({
      deliveries: new Map([['a', row('a', 'success', 1)]]),
      attempts: [attempt('a', 1, 410)],
      exchanges: [request('a', 1, 410), request('a', 2, 200)],
      expect: () => ({ final: 'dead_letter' }),
    });
    expect(permanent.wrongState).toBe(1);
    expect(() => assertLedger(permanent)).toThrow(/wrong final state 1/);
  });

  it('allows a re-send only for a request that was in flight at a fault', () => {
    const deliveries = new Map([['a', row('a', 'success', 2)]]);
    const exchanges = [request('a', 1, null), request('a', 2, 200)];
    const attempts = [attempt('a', 2, 200)];
    const unexplained = ledger({ deliveries, attempts, exchanges });
    expect(unexplained).toMatchObject({ duplicates: 1, excessDuplicates: 1, unrecorded: 1 });
    expect(unexplained.unexplainedUnrecorded).toBe(1);
    expect(() => assertLedger(unexplained)).toThrow(/excess duplicates 1/);

    const explained = ledger({
      deliveries,
      attempts,
      exchanges,
      inFlightAtFault: (exchange, row) => row === undefined && exchange.attempt === 1,
    });
    expect(explained).toMatchObject({ duplicates: 1, allowedDuplicates: 1, excessDuplicates: 0 });
    expect(() => assertLedger(explained)).not.toThrow();
  });

  it('treats a re-send after a success or after our own abort as a duplicate', () => {
    const afterSuccess = ledger({
      deliveries: new Map([['a', row('a', 'success', 2)]]),
      attempts: [attempt('a', 1, 200), attempt('a', 2, 200)],
      exchanges: [request('a', 1, 200), request('a', 2, 200)],
    });
    expect(afterSuccess.excessDuplicates).toBe(1);
    const afterAbort = ledger({
      deliveries: new Map([['a', row('a', 'success', 2)]]),
      attempts: [attempt('a', 1, 0, `${ABORTED_BY_SENDER}: shutting down`), attempt('a', 2, 200)],
      exchanges: [request('a', 1, null), request('a', 2, 200)],
    });
    expect(afterAbort.excessDuplicates).toBe(1);
  });

  it('reports requests for deliveries the database does not know', () => {
    const result = ledger({
      deliveries: new Map([['a', row('a', 'success')]]),
      attempts: [attempt('a', 1, 200)],
      exchanges: [request('a', 1, 200), request('phantom', 1, 200)],
    });
    expect(result.unknownRequests).toBe(1);
    expect(() => assertLedger(result)).toThrow(/unknown requests 1/);
  });
});
