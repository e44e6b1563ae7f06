import pg from 'pg';

import { createTestSchema, randomPrefix, type TestSchema } from '../../helpers/postgres-schema.js';
import { waitFor } from '../../helpers/wait.js';

/**
 * The observer's view of one scenario's tables: a schema of its own (so scenario files run in
 * parallel), a small pool that no fault touches, and the queries the ledger is built from.
 */

/** A delivery row as the ledger needs it. */
export interface DeliveryRow {
  readonly id: string;
  readonly status: string;
  readonly attemptCount: number;
  readonly maxAttempts: number;
  readonly subscriptionId: string | null;
}

/** An attempt row as the ledger needs it. */
export interface AttemptRow {
  readonly deliveryId: string;
  readonly attemptNumber: number;
  readonly statusCode: number;
  readonly error: string | null;
}

/** The tables of one fault scenario. */
export class FaultDatabase {
  readonly schema: TestSchema;
  readonly pool: pg.Pool;

  private constructor(schema: TestSchema) {
    this.schema = schema;
    this.pool = new pg.Pool({
      connectionString: schema.url,
      max: 3,
      application_name: `${schema.prefix}_observer`,
    });
    this.pool.on('error', () => undefined);
  }

  /** Creates the tables of a fresh prefix starting with `label`. */
  static async create(label: string): Promise<FaultDatabase> {
    return new FaultDatabase(await createTestSchema(randomPrefix(label, 16)));
  }

  get url(): string {
    return this.schema.url;
  }

  get prefix(): string {
    return this.schema.prefix;
  }

  get #tables() {
    return this.schema.config.tables;
  }

  /** Every delivery of the prefix. */
  async deliveries(): Promise<Map<string, DeliveryRow>> {
    const { rows } = await this.pool.query<{
      id: string;
      status: string;
      attempt_count: number;
      max_attempts: number;
      subscription_id: string | null;
    }>(
      `SELECT id, status, attempt_count, max_attempts, subscription_id FROM ${this.#tables.deliveries}`,
    );
    return new Map(
      rows.map((row) => [
        row.id,
        {
          id: row.id,
          status: row.status,
          attemptCount: row.attempt_count,
          maxAttempts: row.max_attempts,
          subscriptionId: row.subscription_id,
        },
      ]),
    );
  }

  /** Every attempt row of the prefix. */
  async attempts(): Promise<AttemptRow[]> {
    const { rows } = await this.pool.query<{
      delivery_id: string;
      attempt_number: number;
      status_code: number;
      error: string | null;
    }>(
      `SELECT delivery_id, attempt_number, status_code, error FROM ${this.#tables.deliveryAttempts}`,
    );
    return rows.map((row) => ({
      deliveryId: row.delivery_id,
      attemptNumber: row.attempt_number,
      statusCode: row.status_code,
      error: row.error,
    }));
  }

  /** Deliveries still pending. */
  async pendingCount(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${this.#tables.deliveries} WHERE status = 'pending'`,
    );
    return rows[0]!.n;
  }

  /** Waits until no delivery is pending; on timeout, says what is still pending. */
  async waitUntilSettled(timeoutMs: number): Promise<void> {
    try {
      await waitFor(async () => (await this.pendingCount()) === 0, {
        timeoutMs,
        intervalMs: 100,
        message: `${this.prefix}: every delivery final`,
      });
    } catch (error) {
      const { rows } = await this.pool.query(
        `SELECT id, attempt_count, max_attempts, claim_token IS NOT NULL AS claimed,
                round(extract(epoch FROM next_retry_at - now()) * 1000) AS due_in_ms
         FROM ${this.#tables.deliveries} WHERE status = 'pending' ORDER BY next_retry_at LIMIT 10`,
      );
      throw new Error(`${(error as Error).message}; still pending: ${JSON.stringify(rows)}`, {
        cause: error,
      });
    }
  }

  /**
   * Claims held right now: pending rows with a claim token whose lease has not expired (on the
   * database clock), and the longest remaining lease among them.
   */
  async heldClaims(): Promise<{ count: number; longestLeaseMs: number }> {
    const { rows } = await this.pool.query<{ n: number; longest: number | null }>(
      `SELECT count(*)::int AS n,
              (extract(epoch FROM max(next_retry_at) - now()) * 1000)::float8 AS longest
       FROM ${this.#tables.deliveries}
       WHERE status = 'pending' AND claim_token IS NOT NULL AND next_retry_at > now()`,
    );
    return { count: rows[0]!.n, longestLeaseMs: rows[0]!.longest ?? 0 };
  }

  /**
   * Claims still held whose lease ends within `[fromMs, toMs]` (epoch milliseconds, database
   * clock; the database runs on this machine): with a fixed lease, the claims a process took
   * (or renewed) while it ran from `fromMs − lease` to `toMs − lease`.
   */
  async claimsLeasedUntil(fromMs: number, toMs: number): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${this.#tables.deliveries}
       WHERE status = 'pending' AND claim_token IS NOT NULL
         AND next_retry_at BETWEEN to_timestamp($1::float8 / 1000) AND to_timestamp($2::float8 / 1000)`,
      [fromMs, toMs],
    );
    return rows[0]!.n;
  }

  /** Pending deliveries that are not due yet (held by a claim or waiting for a retry). */
  async notDueCount(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${this.#tables.deliveries}
       WHERE status = 'pending' AND next_retry_at > now()`,
    );
    return rows[0]!.n;
  }

  /**
   * Pending deliveries whose attempt count differs from their attempt rows: attempts counted
   * at a claim that were never made and never given back.
   */
  async unrecordedAttemptCounts(): Promise<number> {
    const { deliveries: D, deliveryAttempts: A } = this.#tables;
    const { rows } = await this.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${D} d
       WHERE d.status = 'pending'
         AND d.attempt_count <> (SELECT count(*) FROM ${A} a WHERE a.delivery_id = d.id)`,
    );
    return rows[0]!.n;
  }

  /** Server processes of connections named `applicationName`, with what they run. */
  async backends(applicationName: string): Promise<Array<{ pid: number; query: string }>> {
    const { rows } = await this.pool.query<{ pid: number; query: string }>(
      `SELECT pid, query FROM pg_stat_activity WHERE application_name = $1`,
      [applicationName],
    );
    return rows;
  }

  /** The backend holding this prefix's LISTEN for connections named `applicationName`. */
  async listener(applicationName: string): Promise<number | null> {
    const channel = this.schema.config.workChannel;
    const backends = await this.backends(applicationName);
    return backends.find((backend) => backend.query === `LISTEN "${channel}"`)?.pid ?? null;
  }

  /** Terminates every backend named `applicationName`; returns their pids. */
  async terminate(applicationName: string): Promise<number[]> {
    // The targets are chosen first (MATERIALIZED): in a plain WHERE clause the planner may call
    // pg_terminate_backend before the filters, on backends that are not ours.
    const { rows } = await this.pool.query<{ pid: number }>(
      `WITH targets AS MATERIALIZED (
         SELECT pid FROM pg_stat_activity
         WHERE application_name = $1 AND pid <> pg_backend_pid()
       )
       SELECT pid FROM targets WHERE pg_terminate_backend(pid)`,
      [applicationName],
    );
    return rows.map((row) => row.pid);
  }

  /** Closes the pool and drops the tables. */
  async drop(): Promise<void> {
    await this.pool.end();
    await this.schema.drop();
  }
}
