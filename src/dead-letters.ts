import { queuedEvent } from './event-payloads.js';
import { isHookdError } from './errors.js';
import type { Delivery, PurgeDeadLetterResult, RetryDeadLetterResult } from './models.js';
import type { ServiceContext } from './service-context.js';
import { itemError } from './deliveries.js';
import { requireId, validateDeadLetterFilter, validatePurgeFilter } from './validation.js';

/** Page size of `listDeadLetters` when the filter names none. */
const DEFAULT_DEAD_LETTER_PAGE = 100;
/** Rows read per round while redriving many dead letters. */
const REDRIVE_PAGE = 1000;

/**
 * Dead-letter queue operations (go-hookd §1.8, §3.17). Dead letters are deliveries with status
 * `dead_letter`; every operation is tenant-scoped, and every filter is applied by the
 * repository's query (go-hookd filtered dates after a 1000-row page).
 */
export class DeadLetterService {
  readonly #context: ServiceContext;

  constructor(context: ServiceContext) {
    this.#context = context;
  }

  async list(filter: unknown): Promise<Delivery[]> {
    const valid = validateDeadLetterFilter(filter);
    return this.#context.repository.listDeliveries({
      tenantId: valid.tenantId,
      status: 'dead_letter',
      ...(valid.subscriptionId === undefined ? {} : { subscriptionId: valid.subscriptionId }),
      ...(valid.eventType === undefined ? {} : { eventType: valid.eventType }),
      ...(valid.createdAfter === undefined ? {} : { createdAfter: valid.createdAfter }),
      ...(valid.createdBefore === undefined ? {} : { createdBefore: valid.createdBefore }),
      limit: valid.limit && valid.limit > 0 ? valid.limit : DEFAULT_DEAD_LETTER_PAGE,
      offset: valid.offset ?? 0,
    });
  }

  /**
   * Redrives one dead letter atomically: it becomes pending and due now with a fresh attempt
   * budget; attempt numbers keep counting. Of two concurrent redrives exactly one succeeds.
   */
  async retryOne(id: string): Promise<Delivery> {
    const delivery = await this.#context.repository.requeueDeadLetter(requireId(id, 'deliveryId'));
    this.#context.publish('delivery.queued', queuedEvent(delivery, 'dead_letter', new Date()));
    this.#context.wake();
    return delivery;
  }

  /**
   * Redrives every dead letter matching the filter (at most `filter.limit` when given). The
   * caller's filter object is not modified.
   */
  async retryMany(filter: unknown): Promise<RetryDeadLetterResult> {
    const valid = validateDeadLetterFilter(filter);
    const cap = valid.limit && valid.limit > 0 ? valid.limit : Number.POSITIVE_INFINITY;
    const attempted = new Set<string>();
    const errors: Array<RetryDeadLetterResult['errors'][number]> = [];
    let retried = 0;
    for (;;) {
      // Redriven rows leave the result set, so each round reads the first page afresh; rows that
      // failed stay and are skipped by id.
      const page = await this.list({ ...valid, limit: REDRIVE_PAGE, offset: 0 });
      const fresh = page.filter((delivery) => !attempted.has(delivery.id));
      if (fresh.length === 0) break;
      for (const delivery of fresh) {
        if (attempted.size >= cap) break;
        attempted.add(delivery.id);
        try {
          await this.retryOne(delivery.id);
          retried += 1;
        } catch (error) {
          // Redriven or deleted by someone else meanwhile: not an error of this call.
          if (
            isHookdError(error, 'HOOKD_ERR_DELIVERY_NOT_DEAD_LETTER') ||
            isHookdError(error, 'HOOKD_ERR_DELIVERY_NOT_FOUND')
          ) {
            continue;
          }
          errors.push({ deliveryId: delivery.id, ...itemError(error) });
        }
      }
      if (attempted.size >= cap || page.length < REDRIVE_PAGE) break;
    }
    return { totalFound: attempted.size, totalRetried: retried, errors };
  }

  /** Deletes dead letters (and their attempts) of a tenant, optionally only older ones. */
  async purge(filter: unknown): Promise<PurgeDeadLetterResult> {
    const valid = validatePurgeFilter(filter);
    const createdBefore =
      valid.olderThanMs === undefined ? undefined : new Date(Date.now() - valid.olderThanMs);
    const deleted = await this.#context.repository.deleteDeliveriesByFilter({
      tenantId: valid.tenantId,
      status: 'dead_letter',
      ...(valid.subscriptionId === undefined ? {} : { subscriptionId: valid.subscriptionId }),
      ...(createdBefore === undefined ? {} : { createdBefore }),
    });
    if (deleted.deliveries > 0) {
      this.#context.publish('maintenance.cleanup', {
        timestamp: new Date(),
        type: 'dead_letters',
        deletedCount: deleted.deliveries,
        attemptsDeleted: deleted.attempts,
        tenantId: valid.tenantId,
        statuses: ['dead_letter'],
        createdBefore: createdBefore ?? null,
      });
    }
    return { totalPurged: deleted.deliveries };
  }

  /** Number of a tenant's dead letters (counted by the query; go-hookd capped it at 10,000). */
  async count(tenantId: string): Promise<number> {
    const valid = validateDeadLetterFilter({ tenantId });
    return this.#context.repository.countDeliveriesByFilter({
      tenantId: valid.tenantId,
      status: 'dead_letter',
    });
  }
}
