import { randomBytes } from 'node:crypto';

import { cleanupStatuses } from '../filters.js';
import type { CleanupFilter, DeliveryFilter, SubscriptionFilter } from '../models.js';
import type { SchemaConfig } from '../schema/schema-config.js';

/**
 * Every runtime SQL statement of `PostgresRepository`, written once for one table prefix and
 * shared by the pool, transaction and caller-client views (go-hookd's transaction type drifted to
 * stale table names because it had its own copy).
 *
 * Rules every statement follows:
 * - Values are always `$n` parameters; identifiers come only from the validated prefix.
 * - Times that decide when something is due use the database clock (`now()`), never the
 *   application's: managers whose clocks disagree still agree on leases and retries.
 * - Statements are unnamed, so PostgreSQL plans each execution with the table as it is now: a
 *   prepared claim planned while the table was empty kept a sequential-scan plan and ran ~5×
 *   slower as the table grew (perf.md §1); a prepared completion did the same (a hash join over
 *   a sequential scan of every delivery, frozen for as long as no ANALYZE ran — and this
 *   benchmark's server runs without autovacuum), measured in issue 6 before it was taken out.
 * - Work that becomes due announces itself with at most one `pg_notify` per statement, inside
 *   the statement, so PostgreSQL delivers it only if the surrounding transaction commits.
 */

/**
 * A text as a dollar-quoted SQL literal, for statements that travel without parameters: the tag
 * is random and checked not to occur in the text, so nothing in it can end the literal.
 */
export function dollarQuoted(text: string): string {
  for (;;) {
    const tag = `$h${randomBytes(6).toString('hex')}$`;
    if (!text.includes(tag)) return `${tag}${text}${tag}`;
  }
}

/** Builds a parameter list while a statement is assembled. */
export class SqlParams {
  readonly values: unknown[] = [];

  /** Adds a value; returns its placeholder. */
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

const DELIVERY_FIELDS = [
  'id',
  'subscription_id',
  'tenant_id',
  'event_type',
  'status',
  'attempt_count',
  'max_attempts',
  'attempt_budget',
  'next_retry_at',
  'completed_at',
  'created_at',
  'url',
  'idempotency_key',
] as const;

const SUBSCRIPTION_FIELDS = [
  'id',
  'tenant_id',
  'url',
  'secret',
  'status',
  'event_types',
  'filters',
  'retry_policy',
  'headers',
  'metadata',
  'created_at',
  'updated_at',
] as const;

const CIRCUIT_FIELDS = [
  'endpoint',
  'state',
  'failure_count',
  'success_count',
  'last_failure',
  'opened_at',
  'next_retry_at',
] as const;

const ATTEMPT_FIELDS = [
  'id',
  'delivery_id',
  'attempt_number',
  'status_code',
  'response_body',
  'response_headers',
  'error',
  'duration_ms',
  'attempted_at',
] as const;

const columns = (fields: readonly string[], alias: string, as = '') =>
  fields.map((field) => `${alias}.${field}${as === '' ? '' : ` AS ${as}${field}`}`).join(', ');

/**
 * The columns of `fields` of `alias`, each on one row per partition of window `window` and NULL
 * on the rest of that partition's rows.
 */
const firstOfEach = (window: string, fields: readonly string[], alias: string, as: string) =>
  fields
    .map(
      (field) =>
        `CASE WHEN row_number() OVER ${window} = 1 THEN ${alias}.${field} END AS ${as}${field}`,
    )
    .join(', ');

/** A millisecond count as an interval. */
const ms = (value: string) => `(${value}::float8 * interval '1 millisecond')`;

/** The SQL of one prefix. */
export class PostgresQueries {
  readonly schema: SchemaConfig;

  // Subscriptions
  readonly insertSubscription: string;
  readonly subscriptionConflicts: string;
  readonly selectSubscription: string;
  readonly selectSubscriptions: string;
  readonly selectSubscriptionByTenantAndUrl: string;
  readonly updateSubscription: string;
  readonly deleteSubscription: string;

  // Deliveries
  readonly createDeliveries: string;
  readonly selectDelivery: string;
  readonly updateDelivery: string;
  readonly deleteDelivery: string;
  readonly moveToDeadLetter: string;

  // Claims
  readonly claim: string;
  readonly claimScript: (limit: number, leaseMs: number, token: string) => string;
  readonly renewClaim: string;
  readonly releaseClaims: string;
  readonly completeAttempts: string;
  readonly completeScript: (input: string, attempts: string) => string;
  readonly requeueDeadLetter: string;
  readonly retryDelivery: string;
  readonly wakeSubscriptionDeliveries: string;

  // Attempts
  readonly insertAttempt: string;
  readonly selectAttempts: string;

  // Idempotency
  readonly checkIdempotency: string;
  readonly storeIdempotencyKey: string;
  readonly selectIdempotencyKey: string;
  readonly countExpiredIdempotencyKeys: string;
  readonly deleteExpiredIdempotencyKeys: string;

  // Circuit breaker
  readonly selectCircuit: string;
  readonly upsertCircuit: string;
  readonly insertMissingCircuits: string;
  readonly lockCircuits: string;
  readonly updateCircuits: string;

  // Maintenance
  readonly maintenanceStats: string;
  readonly queueDepth: string;
  readonly schemaVersion: string;

  constructor(schema: SchemaConfig) {
    this.schema = schema;
    const {
      subscriptions: S,
      deliveries: D,
      deliveryPayloads: P,
      deliveryAttempts: A,
      idempotencyStore: I,
      circuitBreakerState: C,
      schemaMigrations: M,
    } = schema.tables;
    // The channel name is a validated identifier (lowercase letters, digits, underscores).
    const notify = `pg_notify('${schema.workChannel}', '')`;
    const deliveryColumns = columns(DELIVERY_FIELDS, 'd');

    // ── Subscriptions ────────────────────────────────────────────────────────────────────
    this.insertSubscription = `
      INSERT INTO ${S} (id, tenant_id, url, secret, status, event_types, filters, retry_policy,
                        headers, metadata, created_at, updated_at)
      VALUES ($1, $2, $3, $4, $5, $6::text[], $7::jsonb, $8::jsonb, $9::jsonb, $10::jsonb, $11, $12)
      ON CONFLICT DO NOTHING
      RETURNING id`;
    // Which subscriptions a refused insert or update collided with. Conflicts are detected
    // without raising an error, so a caller's transaction stays usable after a duplicate.
    this.subscriptionConflicts = `
      SELECT (SELECT id FROM ${S} WHERE id = $1) AS same_id,
             (SELECT id FROM ${S} WHERE tenant_id = $2 AND url = $3 AND id <> $1) AS same_url`;
    this.selectSubscription = `SELECT ${columns(SUBSCRIPTION_FIELDS, 's')} FROM ${S} s WHERE s.id = $1`;
    // Several at once: concurrent getSubscription calls share one read (LookupBatcher).
    this.selectSubscriptions = `
      SELECT ${columns(SUBSCRIPTION_FIELDS, 's')} FROM ${S} s WHERE s.id = ANY($1::text[])`;
    this.selectSubscriptionByTenantAndUrl = `
      SELECT ${columns(SUBSCRIPTION_FIELDS, 's')} FROM ${S} s WHERE s.tenant_id = $1 AND s.url = $2`;
    this.updateSubscription = `
      WITH conflict AS (
        SELECT id FROM ${S} WHERE tenant_id = $2 AND url = $3 AND id <> $1 LIMIT 1
      ),
      updated AS (
        UPDATE ${S}
        SET tenant_id = $2, url = $3, secret = $4, status = $5, event_types = $6::text[],
            filters = $7::jsonb, retry_policy = $8::jsonb, headers = $9::jsonb,
            metadata = $10::jsonb, created_at = $11, updated_at = $12
        WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM conflict)
        RETURNING id
      )
      SELECT (SELECT id FROM conflict) AS conflict_id, (SELECT id FROM updated) AS updated_id`;
    // Keys are scoped by subscription id; they go with it (its deliveries go by cascade).
    this.deleteSubscription = `
      WITH keys AS (DELETE FROM ${I} WHERE scope = $1)
      DELETE FROM ${S} WHERE id = $1 RETURNING id`;

    // ── Deliveries ───────────────────────────────────────────────────────────────────────
    // One statement for any number of new deliveries, idempotency included:
    // - live_subscriptions takes KEY SHARE locks, so a subscription deleted meanwhile makes its
    //   own items "not found" instead of failing the whole batch on the foreign key.
    // - keys claims each idempotency key: a new key is inserted; an existing one is taken over
    //   only if it has expired. A live key is "updated" to itself, which locks it and RETURNs the
    //   delivery that holds it (for the duplicate error) in this same round trip.
    // - inserted writes only the deliveries whose key was claimed (or that have none), so a key
    //   is never stored without its delivery, nor a delivery without its key: one statement,
    //   one atomic outcome. Concurrent queuers of one key wait on its row lock; one wins.
    // - created_at is cut to milliseconds, the precision of a JavaScript Date, so a createdAt
    //   read back and used as a list/cleanup bound compares exactly as it does in memory.
    // Duplicate keys within one batch are resolved before this statement runs (ON CONFLICT DO
    // UPDATE cannot touch one row twice).
    this.createDeliveries = `
      WITH input AS (
        -- The bodies travel as one JSON array of strings: JSON.stringify escapes them natively,
        -- where a text[] parameter is escaped element by element in JavaScript (measured: the
        -- largest cost of preparing a 100-row insert). A body is serialised JSON, so it holds
        -- no NUL and no lone surrogate that the JSON round trip could refuse.
        SELECT * FROM ROWS FROM (
                 unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[]),
                 json_array_elements_text($6::json),
                 unnest($7::int[], $8::int[], $9::text[], $10::text[], $11::text[],
                        $12::text[], $13::float8[], $14::text[], $15::text[]))
          AS t(ord, id, subscription_id, tenant_id, event_type, body, max_attempts, attempt_budget,
               url, secret, idempotency_key, scope, ttl_ms, trace_context, delivery_key)
      ),
      live_subscriptions AS (
        SELECT s.id FROM ${S} s
        WHERE s.id IN (SELECT subscription_id FROM input WHERE subscription_id IS NOT NULL)
        FOR KEY SHARE
      ),
      valid AS (
        SELECT i.* FROM input i
        WHERE i.subscription_id IS NULL
           OR i.subscription_id IN (SELECT id FROM live_subscriptions)
      ),
      keys AS (
        INSERT INTO ${I} AS k (idempotency_key, scope, expires_at, created_at, delivery_id)
        SELECT v.idempotency_key, v.scope, now() + ${ms('v.ttl_ms')}, now(), v.id
        FROM valid v
        WHERE v.idempotency_key IS NOT NULL
        -- Keys are locked in one order by every batch, so two batches that share keys wait for
        -- each other instead of deadlocking.
        ORDER BY v.scope, v.idempotency_key
        ON CONFLICT (idempotency_key, scope) DO UPDATE SET
          expires_at  = CASE WHEN k.expires_at <= now() THEN EXCLUDED.expires_at  ELSE k.expires_at  END,
          created_at  = CASE WHEN k.expires_at <= now() THEN EXCLUDED.created_at  ELSE k.created_at  END,
          delivery_id = CASE WHEN k.expires_at <= now() THEN EXCLUDED.delivery_id ELSE k.delivery_id END
        RETURNING k.idempotency_key, k.scope, k.delivery_id, k.expires_at
      ),
      inserted AS (
        INSERT INTO ${D} (id, subscription_id, tenant_id, event_type, url, secret, status,
                          attempt_count, max_attempts, attempt_budget, idempotency_key, created_at)
        SELECT v.id, v.subscription_id, v.tenant_id, v.event_type, v.url, v.secret, 'pending',
               0, v.max_attempts, v.attempt_budget, v.delivery_key,
               date_trunc('milliseconds', now())
        FROM valid v
        WHERE v.idempotency_key IS NULL
           OR EXISTS (SELECT 1 FROM keys k
                      WHERE k.idempotency_key = v.idempotency_key AND k.scope = v.scope
                        AND k.delivery_id = v.id)
        RETURNING id, created_at
      ),
      bodies AS (
        INSERT INTO ${P} (delivery_id, body, trace_context)
        SELECT v.id, v.body, v.trace_context FROM valid v JOIN inserted d ON d.id = v.id
      )
      SELECT i.ord, d.created_at, v.id IS NOT NULL AS subscription_found,
             k.delivery_id AS holder_id, k.expires_at AS holder_expires_at,
             (SELECT ${notify} WHERE EXISTS (SELECT 1 FROM inserted)) AS notified
      FROM input i
      LEFT JOIN valid v ON v.ord = i.ord
      LEFT JOIN inserted d ON d.id = i.id
      LEFT JOIN keys k ON k.idempotency_key = i.idempotency_key AND k.scope = i.scope
      ORDER BY i.ord`;
    this.selectDelivery = `
      SELECT ${deliveryColumns}, p.body
      FROM ${D} d JOIN ${P} p ON p.delivery_id = d.id
      WHERE d.id = $1`;
    this.updateDelivery = `
      UPDATE ${D}
      SET status = $2, attempt_count = $3, max_attempts = $4, attempt_budget = $5,
          next_retry_at = $6, completed_at = $7, claim_token = NULL
      WHERE id = $1
      RETURNING id`;
    this.deleteDelivery = `DELETE FROM ${D} WHERE id = $1 RETURNING id`;
    this.moveToDeadLetter = `
      UPDATE ${D}
      SET status = 'dead_letter', completed_at = now(), next_retry_at = NULL, claim_token = NULL
      WHERE id = $1
      RETURNING id`;

    // ── Claims ───────────────────────────────────────────────────────────────────────────
    // The claim (spec §3.7 with a separate fencing token): one statement, autocommit.
    // - due walks the partial claim index in due order. Leased rows are due in the future and
    //   fall outside the range; rows another claimer is locking right now are skipped.
    // - The UPDATE makes the claim a lease stored in the row (next_retry_at = now() + lease), so
    //   it outlives this statement and its locks; it counts the attempt and sets the token.
    // - The same round trip returns what a worker needs: the body, the subscription as it is
    //   now, and the endpoint's circuit with "still parking?" decided on the database clock.
    //   A batch mostly repeats a few subscriptions and endpoints: their columns come once, on
    //   one row per subscription (and per endpoint), and as NULL on the others, so 200 claimed
    //   rows do not mean 200 copies of the same JSON to send, decode and parse.
    const claim = (limit: string, lease: string, token: string) => `
      WITH due AS (
        SELECT id, COALESCE(next_retry_at, created_at) AS due_at
        FROM ${D}
        WHERE status = 'pending' AND COALESCE(next_retry_at, created_at) <= now()
        ORDER BY COALESCE(next_retry_at, created_at), created_at
        LIMIT ${limit}
        FOR UPDATE SKIP LOCKED
      ),
      claimed AS (
        UPDATE ${D} d
        SET attempt_count = d.attempt_count + 1,
            next_retry_at = now() + ${ms(lease)},
            claim_token = ${token}
        FROM due
        -- The id list makes the target an index lookup per claimed row: joined to \`due\` alone,
        -- the planner (counting on 200 rows from the CTE) chose a hash join over a sequential
        -- scan of the whole table, every claim paying for every retained row.
        WHERE d.id = ANY(ARRAY(SELECT id FROM due)) AND d.id = due.id
        RETURNING ${deliveryColumns}, d.secret, d.claim_token, due.due_at
      )
      SELECT ${columns(DELIVERY_FIELDS, 'c')}, c.secret, c.claim_token, p.body, p.trace_context,
             s.id AS s_id, ${firstOfEach('ws', SUBSCRIPTION_FIELDS.slice(1), 's', 's_')},
             cb.endpoint AS cb_endpoint, ${firstOfEach('wc', CIRCUIT_FIELDS.slice(1), 'cb', 'cb_')},
             CASE WHEN row_number() OVER wc = 1
                  THEN cb.state = 'open' AND cb.next_retry_at > now() END AS cb_parking
      FROM claimed c
      JOIN ${P} p ON p.delivery_id = c.id
      LEFT JOIN ${S} s ON s.id = c.subscription_id
      LEFT JOIN ${C} cb ON cb.endpoint = COALESCE(c.url, s.url)
      WINDOW ws AS (PARTITION BY s.id), wc AS (PARTITION BY cb.endpoint)
      ORDER BY c.due_at, c.created_at`;
    this.claim = claim('$1', '$2', '$3');
    // The claim as the root views send it: one round trip of several statements, which
    // PostgreSQL runs as one implicit transaction (no BEGIN/COMMIT: after an error an explicit
    // block would stay open, aborted, on a pooled connection), whose SET LOCALs keep the planner
    // to the ordered scan of the claim index. A bitmap scan (what it picks when it
    // expects few pending rows — fresh statistics, or none) reads every entry of the index,
    // dead ones included, and sorts: each claim cost grew with every delivery ever updated
    // (18 ms for 99 rows over 60,000 entries, measured) until the pool fell behind. The ordered
    // scan stops at the LIMIT, and marks the dead entries it passes so later scans skip them.
    // Values are inlined (a multi-statement message takes no parameters): an integer, a finite
    // number and a token of [A-Za-z0-9_-], each checked before it is written.
    this.claimScript = (limit, leaseMs, token) => {
      if (!Number.isInteger(limit) || limit < 1) throw new Error('claim limit must be an integer');
      if (!Number.isFinite(leaseMs) || leaseMs <= 0)
        throw new Error('claim lease must be positive');
      if (!/^[A-Za-z0-9_-]+$/.test(token)) throw new Error('claim token has unexpected characters');
      return `SET LOCAL enable_bitmapscan = off;
        SET LOCAL enable_seqscan = off;
        ${claim(String(limit), String(leaseMs), `'${token}'`)}`;
    };
    // Fenced on (id, token, pending). The lease never moves backwards.
    this.renewClaim = `
      UPDATE ${D}
      SET next_retry_at = GREATEST(now() + ${ms('$3')}, next_retry_at + interval '1 microsecond')
      WHERE id = $1 AND claim_token = $2 AND status = 'pending'
      RETURNING id`;
    this.releaseClaims = `
      WITH input AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::float8[], $5::bool[])
          AS t(id, claim_token, retry_at, delay_ms, refund)
      ),
      released AS (
        UPDATE ${D} d
        SET next_retry_at = CASE
              WHEN i.retry_at IS NOT NULL THEN i.retry_at
              WHEN i.delay_ms IS NOT NULL THEN now() + ${ms('GREATEST(i.delay_ms, 0)')}
            END,
            claim_token = NULL,
            attempt_count = CASE WHEN i.refund THEN GREATEST(d.attempt_count - 1, 0)
                                 ELSE d.attempt_count END
        FROM input i
        -- IS TRUE: see completeAttempts.
        WHERE d.id = i.id AND d.claim_token = i.claim_token AND (d.status = 'pending') IS TRUE
        RETURNING d.id, d.next_retry_at
      )
      SELECT count(*)::int AS released,
             (SELECT ${notify}
              WHERE EXISTS (SELECT 1 FROM released
                            WHERE next_retry_at IS NULL OR next_retry_at <= now())) AS notified
      FROM released`;
    // A whole batch of finished attempts in one statement (perf.md: one completion statement
    // per batch is what lets the engine approach the ceiling):
    // - its cost must follow the batch, not the table: the existence check is a per-row
    //   subplan (OFFSET 0 keeps PostgreSQL from turning it into a join, which it planned as a
    //   hash join over a sequential scan of every delivery ever retained), and the status test
    //   of the UPDATE is written so that it cannot pick the partial claim index (a bitmap scan
    //   of every pending row) over the primary key;
    // - the batch travels as two JSON documents (JSON.stringify is native; node-postgres
    //   escapes text arrays element by element in JavaScript, which cost more than the rest of
    //   the write);
    // - every attempt row is kept (ON CONFLICT DO NOTHING makes a retried write harmless), as
    //   long as its delivery still exists;
    // - each delivery's new state is written only while its claim is still held.
    const complete = (input: string, attempts: string) => `
      WITH input AS (
        SELECT * FROM json_to_recordset(${input}::json)
          AS t(ord int, delivery_id text, claim_token text, outcome text, delay_ms float8,
               refund bool, ensure_next bool)
      ),
      new_attempts AS (
        SELECT * FROM json_to_recordset(${attempts}::json)
          AS t(id text, delivery_id text, attempt_number int, status_code int, response_body text,
               response_headers jsonb, error text, duration_ms bigint, attempted_at timestamptz)
      ),
      attempts AS (
        INSERT INTO ${A} (${ATTEMPT_FIELDS.join(', ')})
        SELECT a.id, a.delivery_id, a.attempt_number, a.status_code, a.response_body,
               a.response_headers, a.error, a.duration_ms, a.attempted_at
        FROM new_attempts a
        -- No FOR KEY SHARE here: the UPDATE below modifies these rows in the same statement,
        -- and rows a statement has updated itself are skipped by a lock. A delivery deleted
        -- between this check and the foreign key check fails the batch, which the completion
        -- writer retries; the retry skips the vanished delivery.
        WHERE EXISTS (SELECT 1 FROM ${D} d WHERE d.id = a.delivery_id OFFSET 0)
        ON CONFLICT DO NOTHING
      ),
      updated AS (
        UPDATE ${D} d
        SET status = CASE i.outcome WHEN 'retry' THEN 'pending' ELSE i.outcome END,
            attempt_count = CASE WHEN i.refund THEN GREATEST(d.attempt_count - 1, 0)
                                 ELSE d.attempt_count END,
            max_attempts = CASE WHEN i.ensure_next IS TRUE
                                THEN GREATEST(d.max_attempts, d.attempt_count + 1)
                                ELSE d.max_attempts END,
            completed_at = CASE i.outcome WHEN 'retry' THEN NULL ELSE now() END,
            next_retry_at = CASE i.outcome WHEN 'retry' THEN now() + ${ms('GREATEST(i.delay_ms, 0)')}
                            END,
            claim_token = NULL,
            completed_claim_token = i.claim_token
        FROM input i
        WHERE d.id = i.delivery_id AND d.claim_token = i.claim_token
          -- Same as \`d.status = 'pending'\`, but not provable from the claim index's predicate.
          AND (d.status = 'pending') IS TRUE
        RETURNING i.ord, d.next_retry_at
      )
      -- A retry of a completion whose answer was lost finds the claim token already cleared by
      -- its own first write; the token kept in completed_claim_token says it was applied. Only
      -- completions that did not apply look (CASE evaluates a subquery only when reached), and
      -- they read the rows as they were before this statement's UPDATE.
      SELECT i.ord,
             CASE WHEN u.ord IS NOT NULL THEN true
                  ELSE EXISTS (SELECT 1 FROM ${D} r
                               WHERE r.id = i.delivery_id
                                 AND r.completed_claim_token = i.claim_token) END AS applied,
             CASE WHEN u.ord IS NOT NULL THEN u.next_retry_at
                  ELSE (SELECT r.next_retry_at FROM ${D} r
                        WHERE r.id = i.delivery_id
                          AND r.completed_claim_token = i.claim_token) END AS next_retry_at
      FROM input i
      LEFT JOIN updated u ON u.ord = i.ord
      ORDER BY i.ord`;
    this.completeAttempts = complete('$1', '$2');
    // As the root views send it (an implicit transaction, like the claim's): the planner is kept
    // to primary-key lookups, with the two JSON documents inlined as dollar-quoted literals
    // (checked not to contain their quote). Planned without statistics — a table that grew
    // since the last ANALYZE, or one never analysed, as on a server without autovacuum — the
    // UPDATE became a hash join over a sequential scan of every delivery ever kept.
    this.completeScript = (input, attempts) => `SET LOCAL enable_seqscan = off;
        SET LOCAL enable_hashjoin = off;
        SET LOCAL enable_mergejoin = off;
        ${complete(dollarQuoted(input), dollarQuoted(attempts))}`;
    // Redrive is one conditional UPDATE: of two concurrent redrives the second finds the row no
    // longer dead-lettered (go-hookd's read-modify-write could requeue a claimed row).
    this.requeueDeadLetter = `
      WITH target AS (SELECT id, status FROM ${D} WHERE id = $1),
      requeued AS (
        UPDATE ${D} d
        SET status = 'pending', max_attempts = d.attempt_count + d.attempt_budget,
            next_retry_at = NULL, completed_at = NULL, claim_token = NULL
        WHERE d.id = $1 AND d.status = 'dead_letter'
        RETURNING ${deliveryColumns}
      )
      SELECT t.status AS found_status, r.*, p.body,
             (SELECT ${notify} WHERE EXISTS (SELECT 1 FROM requeued)) AS notified
      FROM target t
      LEFT JOIN requeued r ON true
      LEFT JOIN ${P} p ON p.delivery_id = r.id`;
    this.retryDelivery = `
      WITH target AS (
        SELECT id, status,
               COALESCE(status = 'pending' AND claim_token IS NOT NULL AND next_retry_at > now(),
                        false) AS in_progress
        FROM ${D} WHERE id = $1
      ),
      retried AS (
        UPDATE ${D} d
        SET status = 'pending', max_attempts = GREATEST(d.max_attempts, d.attempt_count + 1),
            next_retry_at = NULL, completed_at = NULL, claim_token = NULL
        WHERE d.id = $1 AND d.status <> 'success'
          AND NOT COALESCE(d.status = 'pending' AND d.claim_token IS NOT NULL
                           AND d.next_retry_at > now(), false)
        RETURNING ${deliveryColumns}
      )
      SELECT t.status AS found_status, t.in_progress, r.*, p.body,
             (SELECT ${notify} WHERE EXISTS (SELECT 1 FROM retried)) AS notified
      FROM target t
      LEFT JOIN retried r ON true
      LEFT JOIN ${P} p ON p.delivery_id = r.id`;
    this.wakeSubscriptionDeliveries = `
      WITH woken AS (
        UPDATE ${D}
        SET next_retry_at = NULL, claim_token = NULL
        WHERE subscription_id = $1 AND status = 'pending' AND next_retry_at IS NOT NULL
          AND NOT (claim_token IS NOT NULL AND next_retry_at > now())
        RETURNING 1
      )
      SELECT count(*)::int AS woken,
             (SELECT ${notify} WHERE EXISTS (SELECT 1 FROM woken)) AS notified
      FROM woken`;

    // ── Attempts ─────────────────────────────────────────────────────────────────────────
    this.insertAttempt = `
      WITH target AS (SELECT id FROM ${D} WHERE id = $2 FOR KEY SHARE),
      inserted AS (
        INSERT INTO ${A} (${ATTEMPT_FIELDS.join(', ')})
        SELECT $1::text, t.id, $3::int, $4::int, $5::text, $6::jsonb, $7::text, $8::bigint,
               $9::timestamptz
        FROM target t
        ON CONFLICT DO NOTHING
        RETURNING id
      )
      SELECT (SELECT count(*) FROM target) AS found, (SELECT count(*) FROM inserted) AS inserted`;
    this.selectAttempts = `
      SELECT ${columns(ATTEMPT_FIELDS, 'a')} FROM ${A} a
      WHERE a.delivery_id = $1 ORDER BY a.attempt_number`;

    // ── Idempotency ──────────────────────────────────────────────────────────────────────
    this.checkIdempotency = `
      SELECT EXISTS (SELECT 1 FROM ${I}
                     WHERE idempotency_key = $1 AND scope = $2 AND expires_at > now()) AS live`;
    this.storeIdempotencyKey = `
      INSERT INTO ${I} AS k (idempotency_key, scope, expires_at, created_at, delivery_id)
      VALUES ($1, $2, $3, now(), NULL)
      ON CONFLICT (idempotency_key, scope) DO UPDATE
        SET expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at, delivery_id = NULL
        WHERE k.expires_at <= now()
      RETURNING 1`;
    this.selectIdempotencyKey = `
      SELECT delivery_id, expires_at FROM ${I} WHERE idempotency_key = $1 AND scope = $2`;
    this.countExpiredIdempotencyKeys = `SELECT count(*) AS n FROM ${I} WHERE expires_at < now()`;
    this.deleteExpiredIdempotencyKeys = `
      WITH gone AS (DELETE FROM ${I} WHERE expires_at < now() RETURNING 1)
      SELECT count(*) AS n FROM gone`;

    // ── Circuit breaker ──────────────────────────────────────────────────────────────────
    this.selectCircuit = `SELECT ${columns(CIRCUIT_FIELDS, 'c')} FROM ${C} c WHERE c.endpoint = $1`;
    this.upsertCircuit = `
      INSERT INTO ${C} (${CIRCUIT_FIELDS.join(', ')}, updated_at)
      VALUES ($1, $2, $3, $4, $5, $6, $7, now())
      ON CONFLICT (endpoint) DO UPDATE SET
        state = EXCLUDED.state, failure_count = EXCLUDED.failure_count,
        success_count = EXCLUDED.success_count, last_failure = EXCLUDED.last_failure,
        opened_at = EXCLUDED.opened_at, next_retry_at = EXCLUDED.next_retry_at, updated_at = now()`;
    // recordCircuitEvents, in one transaction: make sure every endpoint has a row, lock them all
    // in one order (endpoints sorted: no deadlock between concurrent batches), apply the events
    // in JavaScript with the database's now(), write back the rows that changed.
    this.insertMissingCircuits = `
      INSERT INTO ${C} (endpoint) SELECT unnest($1::text[]) ON CONFLICT (endpoint) DO NOTHING`;
    this.lockCircuits = `
      SELECT ${columns(CIRCUIT_FIELDS, 'c')}, now() AS db_now
      FROM ${C} c WHERE c.endpoint = ANY($1::text[])
      ORDER BY c.endpoint
      FOR UPDATE`;
    this.updateCircuits = `
      UPDATE ${C} c
      SET state = u.state, failure_count = u.failure_count, success_count = u.success_count,
          last_failure = u.last_failure, opened_at = u.opened_at, next_retry_at = u.next_retry_at,
          updated_at = now()
      FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::timestamptz[],
                  $6::timestamptz[], $7::timestamptz[])
        AS u(endpoint, state, failure_count, success_count, last_failure, opened_at, next_retry_at)
      WHERE c.endpoint = u.endpoint`;

    // ── Maintenance ──────────────────────────────────────────────────────────────────────
    this.maintenanceStats = `
      WITH by_status AS (
        SELECT status, count(*) AS n, min(created_at) AS oldest, max(created_at) AS newest
        FROM ${D} GROUP BY status
      )
      SELECT (SELECT COALESCE(jsonb_object_agg(status, n), '{}'::jsonb) FROM by_status) AS by_status,
             (SELECT min(oldest) FROM by_status) AS oldest,
             (SELECT max(newest) FROM by_status) AS newest,
             (SELECT count(*) FROM ${A}) AS attempts,
             (SELECT count(*) FROM ${I}) AS keys,
             (SELECT count(*) FROM ${I} WHERE expires_at < now()) AS expired_keys,
             now() AS as_of`;
    this.queueDepth = `
      SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
             count(*) FILTER (WHERE status = 'dead_letter') AS dead_letter,
             min(created_at) FILTER (WHERE status = 'pending') AS oldest_pending
      FROM ${D} WHERE status IN ('pending', 'dead_letter')`;
    this.schemaVersion = `SELECT COALESCE(max(version), 0) AS version FROM ${M}`;
  }

  /** `listSubscriptions`: every filter in SQL, newest first, stable pages. */
  listSubscriptions(filter: SubscriptionFilter): { text: string; values: unknown[] } {
    const params = new SqlParams();
    const where: string[] = [];
    if (filter.tenantId) where.push(`s.tenant_id = ${params.add(filter.tenantId)}`);
    if (filter.status !== undefined) where.push(`s.status = ${params.add(filter.status)}`);
    if (filter.eventTypes && filter.eventTypes.length > 0) {
      where.push(`s.event_types && ${params.add([...filter.eventTypes])}::text[]`);
    }
    const text = `
      SELECT ${columns(SUBSCRIPTION_FIELDS, 's')} FROM ${this.schema.tables.subscriptions} s
      ${whereClause(where)}
      ORDER BY s.created_at DESC, s.id DESC
      ${page(params, filter.limit, filter.offset)}`;
    return { text, values: params.values };
  }

  /** `listDeliveries`: every filter in SQL (dates included), newest first, stable pages. */
  listDeliveries(filter: DeliveryFilter): { text: string; values: unknown[] } {
    const params = new SqlParams();
    const where = deliveryConditions(params, {
      tenantId: filter.tenantId,
      subscriptionId: filter.subscriptionId,
      statuses: filter.status === undefined ? [] : [filter.status],
      eventType: filter.eventType,
      createdBefore: filter.createdBefore,
      createdAfter: filter.createdAfter,
    });
    const { deliveries: D, deliveryPayloads: P } = this.schema.tables;
    const text = `
      SELECT ${columns(DELIVERY_FIELDS, 'd')}, p.body
      FROM ${D} d JOIN ${P} p ON p.delivery_id = d.id
      ${whereClause(where)}
      ORDER BY d.created_at DESC, d.id DESC
      ${page(params, filter.limit, filter.offset)}`;
    return { text, values: params.values };
  }

  /** Counts the deliveries a cleanup filter selects. */
  countDeliveries(filter: CleanupFilter): { text: string; values: unknown[] } {
    const params = new SqlParams();
    const where = deliveryConditions(params, cleanupConditions(filter));
    return {
      text: `SELECT count(*) AS n FROM ${this.schema.tables.deliveries} d ${whereClause(where)}`,
      values: params.values,
    };
  }

  /**
   * Deletes the deliveries a cleanup filter selects and their attempts (deleted explicitly, so
   * they can be counted; payloads go by cascade), in one statement.
   */
  deleteDeliveries(filter: CleanupFilter): { text: string; values: unknown[] } {
    const params = new SqlParams();
    const where = deliveryConditions(params, cleanupConditions(filter));
    const { deliveries: D, deliveryAttempts: A } = this.schema.tables;
    return {
      text: `
        WITH gone AS (DELETE FROM ${D} d ${whereClause(where)} RETURNING d.id),
        gone_attempts AS (
          DELETE FROM ${A} a USING gone WHERE a.delivery_id = gone.id RETURNING 1
        )
        SELECT (SELECT count(*) FROM gone) AS deliveries,
               (SELECT count(*) FROM gone_attempts) AS attempts`,
      values: params.values,
    };
  }
}

interface DeliveryConditions {
  readonly tenantId: string | undefined;
  readonly subscriptionId: string | undefined;
  readonly statuses: readonly string[];
  readonly eventType: string | undefined;
  readonly createdBefore: Date | undefined;
  readonly createdAfter: Date | undefined;
}

function cleanupConditions(filter: CleanupFilter): DeliveryConditions {
  return {
    tenantId: filter.tenantId,
    subscriptionId: filter.subscriptionId,
    statuses: cleanupStatuses(filter),
    eventType: filter.eventType,
    createdBefore: filter.createdBefore,
    createdAfter: filter.createdAfter,
  };
}

// An empty tenant id means "no tenant" (the scope rule already demanded allTenants for it).
function deliveryConditions(params: SqlParams, filter: DeliveryConditions): string[] {
  const where: string[] = [];
  if (filter.tenantId) where.push(`d.tenant_id = ${params.add(filter.tenantId)}`);
  if (filter.subscriptionId !== undefined) {
    where.push(`d.subscription_id = ${params.add(filter.subscriptionId)}`);
  }
  if (filter.statuses.length === 1) where.push(`d.status = ${params.add(filter.statuses[0])}`);
  else if (filter.statuses.length > 1) {
    where.push(`d.status = ANY(${params.add([...filter.statuses])}::text[])`);
  }
  if (filter.eventType !== undefined) where.push(`d.event_type = ${params.add(filter.eventType)}`);
  if (filter.createdBefore !== undefined) {
    where.push(`d.created_at < ${params.add(filter.createdBefore)}::timestamptz`);
  }
  if (filter.createdAfter !== undefined) {
    where.push(`d.created_at > ${params.add(filter.createdAfter)}::timestamptz`);
  }
  return where;
}

function whereClause(conditions: readonly string[]): string {
  return conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
}

function page(params: SqlParams, limit: number | undefined, offset: number | undefined): string {
  const parts: string[] = [];
  if (limit !== undefined && limit > 0) parts.push(`LIMIT ${params.add(limit)}::bigint`);
  if (offset !== undefined && offset > 0) parts.push(`OFFSET ${params.add(offset)}::bigint`);
  return parts.join(' ');
}
