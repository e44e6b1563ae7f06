/**
 * The ceiling row: the same SQL and HTTP work as a webhook sender, without a library around it.
 * A measuring instrument, not library code:
 * - enqueue: concurrent single calls grouped per event-loop turn into one INSERT (at most two
 *   under way), one `pg_notify` per statement; the batch API is the same statement;
 * - deliver: `loops` claim loops, each claiming `claim` rows with FOR UPDATE SKIP LOCKED (payload
 *   joined), signing both signatures, POSTing with undici, then recording the whole batch —
 *   statuses and attempt rows — in one statement; LISTEN/NOTIFY wakes idle loops.
 * Text ids, payload in its own table, attempt rows persisted: the shape of node-hookd's data,
 * minus the features (subscriptions, idempotency, circuit breaker, events, leases renewal…).
 */
import pg from 'pg';

import { randomId, sleep } from '../lib/common.js';
import { makePoster } from '../lib/post.js';
import { query } from '../lib/db.js';
import type { Contender, Info, Producer, WorkerSettings, Workers } from './types.js';

interface Tables {
  d: string;
  p: string;
  a: string;
  channel: string;
}

const tablesOf = (info: Info): Tables => ({
  d: `${info.namespace}_deliveries`,
  p: `${info.namespace}_payloads`,
  a: `${info.namespace}_attempts`,
  channel: `${info.namespace}_work`,
});

function insertSql(t: Tables): string {
  return `
    WITH input AS (SELECT * FROM unnest($1::text[], $2::int[], $3::text[]) AS u(id, endpoint, body)),
    d AS (INSERT INTO ${t.d} (id, endpoint) SELECT id, endpoint FROM input RETURNING 1),
    p AS (INSERT INTO ${t.p} (delivery_id, body) SELECT id, body FROM input)
    SELECT pg_notify('${t.channel}', '') WHERE EXISTS (SELECT 1 FROM d)`;
}

export function ceilingContender(databaseUrl: string): Contender {
  const settingsOf = (settings: WorkerSettings) => ({
    loops: Number(settings['loops'] ?? 4),
    claim: Number(settings['claim'] ?? 100),
    connections: Number(settings['connections'] ?? 64),
  });
  return {
    name: 'ceiling',

    async setup(runId, urls) {
      const info: Info = { contender: 'ceiling', namespace: `ce${runId}`, urls, targets: [] };
      const t = tablesOf(info);
      await query(`
        CREATE TABLE ${t.d} (
          id text PRIMARY KEY, endpoint int NOT NULL, status text NOT NULL DEFAULT 'pending',
          attempt_count int NOT NULL DEFAULT 0, next_retry_at timestamptz, claim_token text,
          created_at timestamptz NOT NULL DEFAULT now(), completed_at timestamptz);
        CREATE INDEX ${t.d}_claim ON ${t.d} ((COALESCE(next_retry_at, created_at)))
          WHERE status = 'pending';
        CREATE TABLE ${t.p} (
          delivery_id text PRIMARY KEY REFERENCES ${t.d} (id) ON DELETE CASCADE, body text NOT NULL);
        CREATE TABLE ${t.a} (
          id text PRIMARY KEY, delivery_id text NOT NULL REFERENCES ${t.d} (id) ON DELETE CASCADE,
          attempt_number int NOT NULL, status_code int NOT NULL, duration_ms int NOT NULL,
          attempted_at timestamptz NOT NULL DEFAULT now(), UNIQUE (delivery_id, attempt_number));`);
      return info;
    },

    async producer(info) {
      const t = tablesOf(info);
      const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
      const sql = insertSql(t);
      let buffer: Array<{
        id: string;
        endpoint: number;
        body: string;
        done: () => void;
        fail: (e: unknown) => void;
      }> = [];
      let scheduled = false;
      let inFlight = 0;
      const flush = () => {
        scheduled = false;
        while (buffer.length > 0 && inFlight < 2) {
          const batch = buffer.slice(0, 500);
          buffer = buffer.slice(500);
          inFlight += 1;
          pool
            .query(sql, [
              batch.map((x) => x.id),
              batch.map((x) => x.endpoint),
              batch.map((x) => x.body),
            ])
            .then(
              () => batch.forEach((x) => x.done()),
              (error: unknown) => batch.forEach((x) => x.fail(error)),
            )
            .finally(() => {
              inFlight -= 1;
              schedule();
            });
        }
      };
      const schedule = () => {
        if (scheduled || buffer.length === 0 || inFlight >= 2) return;
        scheduled = true;
        setImmediate(flush);
      };
      const producer: Producer = {
        maxBatch: 1000,
        one(payload, endpoint) {
          return new Promise<void>((done, fail) => {
            buffer.push({
              id: randomId('dlv'),
              endpoint,
              body: JSON.stringify(payload),
              done,
              fail,
            });
            schedule();
          });
        },
        async batch(payloads, endpoint) {
          await pool.query(sql, [
            payloads.map(() => randomId('dlv')),
            payloads.map(() => endpoint),
            payloads.map((payload) => JSON.stringify(payload)),
          ]);
        },
        async close() {
          await pool.end();
        },
      };
      return producer;
    },

    async start(info, settings) {
      const { loops, claim, connections } = settingsOf(settings);
      const t = tablesOf(info);
      const pool = new pg.Pool({ connectionString: databaseUrl, max: loops + 1 });
      const poster = makePoster(info.urls, connections);
      const claimSql = `
        WITH due AS (
          SELECT id FROM ${t.d}
          WHERE status = 'pending' AND COALESCE(next_retry_at, created_at) <= now()
          ORDER BY COALESCE(next_retry_at, created_at) LIMIT $1 FOR UPDATE SKIP LOCKED),
        claimed AS (
          UPDATE ${t.d} d SET attempt_count = d.attempt_count + 1,
                 next_retry_at = now() + interval '90 seconds', claim_token = $2
          FROM due WHERE d.id = due.id
          RETURNING d.id, d.endpoint, d.attempt_count)
        SELECT c.id, c.endpoint, c.attempt_count, p.body
        FROM claimed c JOIN ${t.p} p ON p.delivery_id = c.id`;
      const completeSql = `
        WITH r AS (
          SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::text[], $5::text[], $6::int[])
            AS u(id, code, dur, st, attempt_id, attempt_number)),
        u AS (
          UPDATE ${t.d} d SET status = r.st, claim_token = NULL,
                 completed_at = CASE WHEN r.st = 'pending' THEN NULL ELSE now() END,
                 next_retry_at = CASE WHEN r.st = 'pending' THEN now() + interval '1 second' END
          FROM r WHERE d.id = r.id AND d.claim_token = $7)
        INSERT INTO ${t.a} (id, delivery_id, attempt_number, status_code, duration_ms)
        SELECT attempt_id, id, attempt_number, code, dur FROM r`;
      let running = true;
      const waiters = new Set<() => void>();
      const wakeAll = () => {
        for (const wake of [...waiters]) wake();
      };
      const listener = new pg.Client({ connectionString: databaseUrl });
      await listener.connect();
      listener.on('notification', wakeAll);
      await listener.query(`LISTEN ${t.channel}`);
      interface Row {
        id: string;
        endpoint: number;
        attempt_count: number;
        body: string;
      }
      const loop = async () => {
        while (running) {
          const token = randomId('c');
          const { rows } = await pool.query<Row>(claimSql, [claim, token]);
          if (rows.length === 0) {
            await new Promise<void>((resolve) => {
              const wake = () => {
                clearTimeout(timer);
                waiters.delete(wake);
                resolve();
              };
              const timer = setTimeout(wake, 1000);
              waiters.add(wake);
            });
            continue;
          }
          const results = await Promise.all(
            rows.map(async (row) => {
              const started = performance.now();
              const code = await poster.post(row.endpoint, row.id, row.body, row.attempt_count);
              return {
                row,
                code,
                dur: Math.round(performance.now() - started),
                st: code >= 200 && code < 300 ? 'success' : 'pending',
              };
            }),
          );
          await pool.query(completeSql, [
            results.map((r) => r.row.id),
            results.map((r) => r.code),
            results.map((r) => r.dur),
            results.map((r) => r.st),
            results.map(() => randomId('att')),
            results.map((r) => r.row.attempt_count),
            token,
          ]);
        }
      };
      const all = Array.from({ length: loops }, loop);
      const workers: Workers = {
        async stop() {
          running = false;
          wakeAll();
          await Promise.race([Promise.all(all), sleep(5_000)]);
          await listener.end();
          await pool.end();
          await poster.close();
        },
      };
      return workers;
    },

    async pending(info) {
      const t = tablesOf(info);
      const rows = await query<{ n: string }>(
        `SELECT count(*) AS n FROM ${t.d} WHERE status = 'pending'`,
      );
      return Number(rows[0]?.n ?? 0);
    },

    async succeeded(info) {
      const t = tablesOf(info);
      const rows = await query<{ n: string }>(
        `SELECT count(*) AS n FROM ${t.d} WHERE status = 'success'`,
      );
      return Number(rows[0]?.n ?? 0);
    },

    async analyze(info) {
      const t = tablesOf(info);
      await query(`ANALYZE ${t.d}, ${t.p}`);
    },

    async teardown(info) {
      const t = tablesOf(info);
      await query(`DROP TABLE IF EXISTS ${t.a}, ${t.p}, ${t.d}`);
    },

    describe(settings) {
      return {
        instrument: 'bench/contenders/ceiling.ts (no library)',
        ...settingsOf(settings),
        work:
          'claim with FOR UPDATE SKIP LOCKED (payload joined), 2 HMAC signatures, undici POST, ' +
          'one completion statement per batch (statuses + attempt rows), grouped enqueue with one NOTIFY per statement',
      };
    },
  };
}
