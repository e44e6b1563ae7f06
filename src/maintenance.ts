import { performance } from 'node:perf_hooks';

import { cleanupStatuses, validateCleanupFilter } from './filters.js';
import type {
  CleanupFilter,
  CleanupResult,
  DeliveryStatus,
  IdempotencyCleanupResult,
  MaintenanceStats,
} from './models.js';
import type { ServiceContext } from './service-context.js';
import { HookdError, invalidArgument } from './errors.js';
import { requireAge } from './validation.js';

/** Options of the cleanup calls. */
export interface CleanupOptions {
  /** Count what would be deleted, delete nothing. @default false */
  readonly dryRun?: boolean;
}

/**
 * Retention (go-hookd §1.9, §3.18). Nothing is deleted automatically: the application schedules
 * these calls. Every sweep is one filtered statement, and reports attempts deleted too.
 */
export class MaintenanceService {
  readonly #context: ServiceContext;

  constructor(context: ServiceContext) {
    this.#context = context;
  }

  async stats(): Promise<MaintenanceStats> {
    return this.#context.repository.getMaintenanceStats();
  }

  async cleanupDeliveries(
    input: CleanupFilter,
    options?: CleanupOptions | null,
  ): Promise<CleanupResult> {
    const filter = validateCleanupFilter(input);
    const dryRun = dryRunOf(options);
    const started = performance.now();
    const { repository } = this.#context;
    if (dryRun) {
      const count = await repository.countDeliveriesByFilter(filter);
      return {
        deliveriesDeleted: count,
        attemptsDeleted: 0,
        durationMs: elapsed(started),
        dryRun: true,
      };
    }
    const deleted = await repository.deleteDeliveriesByFilter(filter);
    if (deleted.deliveries > 0) {
      this.#context.publish('maintenance.cleanup', {
        timestamp: new Date(),
        type: 'deliveries',
        deletedCount: deleted.deliveries,
        attemptsDeleted: deleted.attempts,
        tenantId: filter.tenantId ?? null,
        statuses: cleanupStatuses(filter),
        createdBefore: filter.createdBefore ?? null,
      });
    }
    return {
      deliveriesDeleted: deleted.deliveries,
      attemptsDeleted: deleted.attempts,
      durationMs: elapsed(started),
      dryRun: false,
    };
  }

  /** Fleet-wide sweep of deliveries in `statuses` created more than `olderThanMs` ago. */
  async cleanupByStatus(
    statuses: readonly DeliveryStatus[],
    olderThanMs: number,
    options?: CleanupOptions | null,
  ): Promise<CleanupResult> {
    const age = requireAge(olderThanMs, 'olderThanMs');
    return this.cleanupDeliveries(
      { allTenants: true, status: statuses, createdBefore: new Date(Date.now() - age) },
      options,
    );
  }

  async cleanupIdempotencyKeys(options?: CleanupOptions | null): Promise<IdempotencyCleanupResult> {
    const dryRun = dryRunOf(options);
    const started = performance.now();
    const { repository } = this.#context;
    if (dryRun) {
      const count = await repository.countExpiredIdempotencyKeys();
      return { keysDeleted: count, durationMs: elapsed(started), dryRun: true };
    }
    const deleted = await repository.cleanupExpiredIdempotencyKeys();
    if (deleted > 0) {
      this.#context.publish('maintenance.cleanup', {
        timestamp: new Date(),
        type: 'idempotency_keys',
        deletedCount: deleted,
        attemptsDeleted: 0,
        tenantId: null,
        statuses: [],
        createdBefore: null,
      });
    }
    return { keysDeleted: deleted, durationMs: elapsed(started), dryRun: false };
  }
}

function dryRunOf(options: CleanupOptions | null | undefined): boolean {
  if (options === undefined || options === null) return false;
  if (typeof options !== 'object') throw invalidArgument('options', 'options must be an object');
  let dryRun: unknown;
  try {
    dryRun = options.dryRun;
  } catch (error) {
    throw new HookdError('HOOKD_ERR_INVALID_ARGUMENT', 'options.dryRun could not be read', {
      field: 'options.dryRun',
      cause: error,
    });
  }
  if (dryRun !== undefined && typeof dryRun !== 'boolean') {
    throw invalidArgument('options.dryRun', 'dryRun must be a boolean');
  }
  return dryRun === true;
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}
