import type { AttemptRow, DeliveryRow } from './database.js';
import type { Exchange } from './receivers.js';

/**
 * The ledger of a fault scenario: what the application queued, what the receivers saw, and what
 * the database says happened, reconciled delivery by delivery.
 *
 * Definitions (per delivery `d`):
 * - **predicted final state**: given by the scenario — `success`, `dead_letter`, or `rules`: the
 *   retry rules applied to the answers `d`'s requests actually got (a 2xx → success; a 4xx other
 *   than 408/429 → dead letter; attempts used up with retryable answers or none → dead letter).
 *   An optional exact request count pins the rules further (e.g. "always 500, 3 attempts").
 * - **missing**: queued but not stored, still pending, or predicted `success` without any
 *   request that the receiver answered with a 2xx.
 * - **wrong state**: final, but not in the predicted state (or not with the predicted number of
 *   requests).
 * - **duplicates**: requests the rules did not call for. Requests are taken in attempt order; a
 *   request is called for when it is the first, or when the one before it is recorded (attempt
 *   row) as a retryable failure the sender saw: a 3xx/408/429/5xx answer, or no answer (timeout,
 *   refused connection). Any other request is a re-send — after a success, after a request its
 *   sender never recorded (it died), after an attempt the sender aborted itself (shutdown) — and
 *   the receiver sees it as a duplicate.
 * - **allowed duplicates**: the requests of `d` that were in flight at a fault, as the scenario
 *   defines it (e.g. received while the process that sent them was killed, and never recorded).
 *   Each such request may cause one extra request, so `duplicates(d) ≤ allowed(d)` must hold for
 *   every delivery, not only in total.
 * - **unrecorded**: requests with no attempt row of the same delivery and attempt number. Every
 *   attempt that left a live process must be recorded, so unrecorded requests not explained by a
 *   fault are reported as `unexplainedUnrecorded`.
 * - **unknown**: requests for delivery ids the database does not know.
 *
 * A scenario fails when missing, wrong state, excess duplicates, unexplained unrecorded requests
 * or unknown requests are above zero.
 */

/** What the rules predict for one delivery. */
export type Expectation =
  | { readonly final: 'success' | 'dead_letter'; readonly requests?: number }
  | { readonly final: 'rules' };

/** Everything a ledger is built from. */
export interface LedgerInput {
  readonly scenario: string;
  /** Ids the application was told were queued. */
  readonly queued: readonly string[];
  /** Every delivery row of the scenario's prefix (rows the application does not know included). */
  readonly deliveries: ReadonlyMap<string, DeliveryRow>;
  readonly attempts: readonly AttemptRow[];
  readonly exchanges: readonly Exchange[];
  /** The prediction for a delivery. @default success */
  readonly expect?: (delivery: DeliveryRow) => Expectation;
  /** Whether a request was in flight at a fault (see the module comment). @default never */
  readonly inFlightAtFault?: (exchange: Exchange, attempt: AttemptRow | undefined) => boolean;
}

/** The reconciled counts; `problems` names the first offending deliveries. */
export interface Ledger {
  readonly scenario: string;
  readonly queued: number;
  readonly stored: number;
  readonly succeeded: number;
  readonly deadLettered: number;
  readonly missing: number;
  readonly wrongState: number;
  readonly requests: number;
  readonly attemptRows: number;
  readonly duplicates: number;
  /** Requests in flight at a fault: the duplicates the faults explain. */
  readonly allowedDuplicates: number;
  readonly excessDuplicates: number;
  readonly unrecorded: number;
  readonly unexplainedUnrecorded: number;
  readonly unknownRequests: number;
  readonly problems: readonly string[];
}

const isSuccess = (exchange: Exchange) =>
  exchange.respondedAt !== null && exchange.status >= 200 && exchange.status <= 299;
const isPermanent = (exchange: Exchange) =>
  exchange.respondedAt !== null &&
  exchange.status >= 400 &&
  exchange.status <= 499 &&
  exchange.status !== 408 &&
  exchange.status !== 429;

/** The error text of an attempt cut short by its own sender (`stop()` reaching its timeout). */
export const ABORTED_BY_SENDER = 'request aborted';

/** Whether an attempt row records a failure the retry rules answer with another attempt. */
function isRetryableFailure(attempt: AttemptRow): boolean {
  const code = attempt.statusCode;
  if (code === 0) return !(attempt.error ?? '').startsWith(ABORTED_BY_SENDER);
  if (code >= 200 && code <= 299) return false;
  return !(code >= 400 && code <= 499 && code !== 408 && code !== 429);
}

/** Builds the ledger. */
export function buildLedger(input: LedgerInput): Ledger {
  const expect = input.expect ?? ((): Expectation => ({ final: 'success' }));
  const atFault = input.inFlightAtFault ?? (() => false);
  const attemptsByKey = new Map<string, AttemptRow>();
  for (const attempt of input.attempts) {
    attemptsByKey.set(`${attempt.deliveryId}#${attempt.attemptNumber}`, attempt);
  }
  const exchangesById = new Map<string, Exchange[]>();
  for (const exchange of input.exchanges) {
    const list = exchangesById.get(exchange.deliveryId) ?? [];
    list.push(exchange);
    exchangesById.set(exchange.deliveryId, list);
  }

  const problems: string[] = [];
  const problem = (text: string) => {
    if (problems.length < 20) problems.push(text);
  };
  let missing = 0;
  let wrongState = 0;
  let duplicates = 0;
  let excessDuplicates = 0;
  let inFlight = 0;
  let unrecorded = 0;
  let unexplainedUnrecorded = 0;
  let unknownRequests = 0;

  const stored = new Set(input.deliveries.keys());
  for (const id of input.queued) {
    if (!stored.has(id)) {
      missing += 1;
      problem(`${id}: queued but not in the database`);
    }
  }

  for (const delivery of input.deliveries.values()) {
    const requests = (exchangesById.get(delivery.id) ?? []).sort((a, b) => a.attempt - b.attempt);
    let allowed = 0;
    for (const exchange of requests) {
      const attempt = attemptsByKey.get(`${delivery.id}#${exchange.attempt}`);
      const faulted = atFault(exchange, attempt);
      if (faulted) allowed += 1;
      if (attempt === undefined) {
        unrecorded += 1;
        if (!faulted) {
          unexplainedUnrecorded += 1;
          problem(`${delivery.id}: attempt ${exchange.attempt} was sent but never recorded`);
        }
      }
    }
    inFlight += allowed;

    const firstSuccess = requests.findIndex(isSuccess);
    const extra = requests.filter((request, index) => {
      if (index === 0) return false;
      const before = requests[index - 1]!;
      if (before.attempt === request.attempt) return true;
      const recorded = attemptsByKey.get(`${delivery.id}#${before.attempt}`);
      return recorded === undefined || !isRetryableFailure(recorded);
    }).length;
    duplicates += extra;
    if (extra > allowed) {
      excessDuplicates += extra - allowed;
      problem(
        `${delivery.id}: ${requests.length} requests (attempts ${requests.map((r) => r.attempt).join(',')}), ` +
          `${extra} duplicate(s), ${allowed} explained by faults`,
      );
    }

    if (delivery.status === 'pending') {
      missing += 1;
      problem(`${delivery.id}: still pending after ${delivery.attemptCount} attempt(s)`);
      continue;
    }
    const expectation = expect(delivery);
    let predicted: string;
    if (expectation.final === 'rules') {
      predicted =
        firstSuccess >= 0
          ? 'success'
          : requests.some(isPermanent) || delivery.attemptCount >= delivery.maxAttempts
            ? 'dead_letter'
            : 'pending';
    } else {
      predicted = expectation.final;
    }
    if (predicted === 'success' && firstSuccess < 0) {
      missing += 1;
      problem(`${delivery.id}: ${delivery.status} but the receiver never answered it with a 2xx`);
      continue;
    }
    const exact = expectation.final === 'rules' ? undefined : expectation.requests;
    if (delivery.status !== predicted || (exact !== undefined && requests.length !== exact)) {
      wrongState += 1;
      problem(
        `${delivery.id}: ${delivery.status} after ${requests.length} request(s) ` +
          `(answers ${requests.map((r) => (r.respondedAt === null ? 'none' : r.status)).join(',')}), ` +
          `predicted ${predicted}${exact === undefined ? '' : ` after ${exact}`}`,
      );
    }
  }

  for (const [id, requests] of exchangesById) {
    if (!stored.has(id)) {
      unknownRequests += requests.length;
      problem(`${id}: ${requests.length} request(s) for a delivery the database does not know`);
    }
  }

  const rows = [...input.deliveries.values()];
  return {
    scenario: input.scenario,
    queued: input.queued.length,
    stored: rows.length,
    succeeded: rows.filter((row) => row.status === 'success').length,
    deadLettered: rows.filter((row) => row.status === 'dead_letter').length,
    missing,
    wrongState,
    requests: input.exchanges.length,
    attemptRows: input.attempts.length,
    duplicates,
    allowedDuplicates: inFlight,
    excessDuplicates,
    unrecorded,
    unexplainedUnrecorded,
    unknownRequests,
    problems,
  };
}

/** Prints the ledger (it appears in the test output). */
export function printLedger(ledger: Ledger, details: Readonly<Record<string, unknown>> = {}): void {
  const line = (label: string, value: unknown) => `  ${label.padEnd(28)} ${String(value)}`;
  const lines = [
    `── ledger: ${ledger.scenario} ──`,
    line('queued', ledger.queued),
    line('stored', ledger.stored),
    line('succeeded', ledger.succeeded),
    line('dead-lettered', ledger.deadLettered),
    line('missing', ledger.missing),
    line('wrong final state', ledger.wrongState),
    line('requests received', ledger.requests),
    line('attempt rows', ledger.attemptRows),
    line('duplicates', ledger.duplicates),
    line('allowed (in flight at fault)', ledger.allowedDuplicates),
    line('excess duplicates', ledger.excessDuplicates),
    line('unrecorded requests', ledger.unrecorded),
    line('  of which unexplained', ledger.unexplainedUnrecorded),
    line('unknown requests', ledger.unknownRequests),
    ...Object.entries(details).map(([key, value]) =>
      line(key, typeof value === 'string' ? value : JSON.stringify(value)),
    ),
    ...ledger.problems.map((text) => `  ! ${text}`),
  ];
  console.log(lines.join('\n'));
}

/** Throws (listing the problems) unless the ledger holds. */
export function assertLedger(ledger: Ledger): void {
  const failures = (
    [
      ['missing', ledger.missing],
      ['wrong final state', ledger.wrongState],
      ['excess duplicates', ledger.excessDuplicates],
      ['unexplained unrecorded requests', ledger.unexplainedUnrecorded],
      ['unknown requests', ledger.unknownRequests],
    ] as const
  ).filter(([, count]) => count > 0);
  if (ledger.queued === 0 || ledger.stored === 0) {
    throw new Error(`${ledger.scenario}: the ledger is empty — nothing was tested`);
  }
  if (failures.length > 0) {
    throw new Error(
      `${ledger.scenario}: the ledger does not hold: ` +
        failures.map(([label, count]) => `${label} ${count}`).join(', ') +
        `\n${ledger.problems.map((text) => `  ${text}`).join('\n')}`,
    );
  }
}
