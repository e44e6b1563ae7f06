import pg from 'pg';

import { HookdError } from '../errors.js';
import { isConnectionError } from './pg-errors.js';
import {
  PG_TYPES,
  type PgPool,
  type PgPoolClient,
  type PgQueryConfig,
  type PgQueryable,
  type PgQueryResult,
} from './pg-types.js';

/**
 * How a repository view runs its statements. Every SQL statement is written once (in
 * `postgres-queries.ts`) and run through one of these, whichever connection it belongs to: the
 * repository's pool, a transaction's checked-out client, or the caller's own client.
 */

/** One result row, values parsed by node-hookd's type parsers. */
export type Row = Readonly<Record<string, unknown>>;

/** Runs statements. */
export interface Runner {
  /**
   * Runs one statement with `$n` parameters; returns its rows. Statements time out after the
   * repository's query timeout unless `unbounded` (maintenance work that may legitimately run
   * long).
   */
  rows(
    text: string,
    values?: readonly unknown[],
    options?: StatementOptions,
  ): Promise<readonly Row[]>;
  /**
   * Runs several statements (no parameters) in one round trip; returns the rows of the last one
   * that returns rows.
   */
  script(text: string): Promise<readonly Row[]>;
  /**
   * Runs `work` atomically: in a transaction of its own on a pool, inside the enclosing one on a
   * transaction's or caller's client.
   */
  transaction<T>(work: (runner: Runner) => Promise<T>): Promise<T>;
}

/** Per-statement options. */
export interface StatementOptions {
  /** No client-side timeout for this statement (cleanup of many rows, statistics). */
  readonly unbounded?: boolean;
}

/** Maps a driver error to a `HookdError`. */
export type ErrorMapper = (error: unknown) => Error;

/** Throws when the view may no longer run statements (closed repository, finished transaction). */
export type Guard = () => void;

async function run(
  target: PgQueryable,
  text: string,
  values: readonly unknown[] | undefined,
  mapError: ErrorMapper,
  timeoutMs = 0,
): Promise<PgQueryResult> {
  // (A multi-statement text, sent without values, resolves to one result per statement.)
  // query_timeout is pg's client-side read timeout: a network that silently stops answering
  // fails the call instead of hanging it, and pg then discards that connection.
  const config: {
    text: string;
    types: typeof PG_TYPES;
    values?: unknown[];
    query_timeout?: number;
  } = { text, types: PG_TYPES };
  if (values !== undefined) config.values = values as unknown[];
  if (timeoutMs > 0) config.query_timeout = timeoutMs;
  try {
    return await target.query(config);
  } catch (error) {
    throw mapError(error);
  }
}

function timeoutOf(timeoutMs: number, options: StatementOptions | undefined): number {
  return options?.unbounded === true ? 0 : timeoutMs;
}

/** The rows of the last statement of a multi-statement result that returned rows. */
function lastRows(result: PgQueryResult | readonly PgQueryResult[]): readonly Row[] {
  if (!Array.isArray(result)) return (result as PgQueryResult).rows;
  for (let index = result.length - 1; index >= 0; index--) {
    const one = result[index] as PgQueryResult & { fields?: readonly unknown[] };
    if (one.fields && one.fields.length > 0) return one.rows;
  }
  return [];
}

/**
 * The rows of a statement, moved out of pg's result into an array of our own.
 *
 * pg's result can outlive the statement as far as V8's young-generation collector can tell:
 * statements run the way {@link checkedOutQuery} avoids (in a transaction, on a caller's client,
 * through a pool of another shape) are referenced from an old-generation callback until the next
 * full collection, and V8 allocates pg's row array itself in the old generation once it has seen
 * enough of them survive (about half of the claims' arrays were old when the claim returned).
 * Rows left in it — for a claim, hundreds of them with their request bodies — then survive two
 * young collections and are promoted, to die in the old generation. Emptied, pg's array holds
 * nothing; the copy is young and dies young.
 */
function takeRows(rows: readonly Row[]): readonly Row[] {
  if (rows.length === 0 || !Object.isExtensible(rows)) return rows;
  const taken = rows.slice();
  (rows as Row[]).length = 0;
  return taken;
}

/**
 * Runs guarded, time-limited statements on one pool or client: what every runner shares. The
 * guard refuses statements of a closed repository or a finished transaction.
 */
class Statements {
  readonly #target: PgQueryable;
  readonly mapError: ErrorMapper;
  readonly guard: Guard;
  readonly timeoutMs: number;

  constructor(target: PgQueryable, mapError: ErrorMapper, guard: Guard, timeoutMs: number) {
    this.#target = target;
    this.mapError = mapError;
    this.guard = guard;
    this.timeoutMs = timeoutMs;
  }

  async rows(
    text: string,
    values?: readonly unknown[],
    options?: StatementOptions,
  ): Promise<readonly Row[]> {
    this.guard();
    return takeRows(
      (await run(this.#target, text, values, this.mapError, timeoutOf(this.timeoutMs, options)))
        .rows,
    );
  }

  async script(text: string): Promise<readonly Row[]> {
    this.guard();
    return takeRows(
      lastRows(await run(this.#target, text, undefined, this.mapError, this.timeoutMs)),
    );
  }

  /** BEGIN, COMMIT or ROLLBACK on `client` (unguarded: finishing must always be possible). */
  async control(client: PgQueryable, command: 'BEGIN' | 'COMMIT' | 'ROLLBACK'): Promise<void> {
    await run(client, command, undefined, this.mapError, this.timeoutMs);
  }
}

/** Runs its statements straight through one {@link Statements}: the pool and client runners. */
abstract class DirectRunner implements Runner {
  protected readonly statements: Statements;

  protected constructor(statements: Statements) {
    this.statements = statements;
  }

  rows(
    text: string,
    values?: readonly unknown[],
    options?: StatementOptions,
  ): Promise<readonly Row[]> {
    return this.statements.rows(text, values, options);
  }

  script(text: string): Promise<readonly Row[]> {
    return this.statements.script(text);
  }

  abstract transaction<T>(work: (runner: Runner) => Promise<T>): Promise<T>;
}

/** Statements on a client that already belongs to a transaction (ours or the caller's). */
export class ClientRunner extends DirectRunner {
  constructor(client: PgQueryable, mapError: ErrorMapper, guard: Guard, timeoutMs: number) {
    super(new Statements(client, mapError, guard, timeoutMs));
  }

  transaction<T>(work: (runner: Runner) => Promise<T>): Promise<T> {
    // The enclosing transaction makes the work atomic; committing is its owner's call.
    return work(this);
  }
}

/** An open transaction on a pool connection, with the means to finish it. */
export interface OpenTransaction {
  readonly runner: Runner;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/**
 * `pool.query(config)` for a `pg.Pool`, without what it keeps alive.
 *
 * - A pg `Client` holds on to the callback of the `connect()` that opened it for as long as the
 *   connection lives (its connection listeners share that function's scope), and with
 *   `pool.query` that callback leads to the promise of the statement that made the pool open the
 *   connection: every pooled connection kept the whole result of its first statement — for the
 *   worker, a claim of hundreds of rows with their bodies, for the life of the pool. Checked out
 *   here, the connection's first caller is the checkout, whose result is the connection itself.
 * - pg's promise form and its `query_timeout` both install the statement's callback as
 *   `query.callback = (…) => …`. V8 allocates a function written straight into a property in the
 *   old generation (it expects such functions to be long-lived), and an old-generation object,
 *   dead or not, keeps what it refers to alive through every young-generation collection until
 *   the next full one: each statement's callback kept its scope, and with it the statement — the
 *   whole SQL text (a completion batch inlines ~50 KB of JSON) and its result — until they were
 *   promoted. Here the callback is passed as an argument, and the read timeout is our own timer.
 *
 * Otherwise the same as `pool.query` with `query_timeout`: the statement fails with pg's "Query
 * read timeout" error when the database does not answer in time, an error the connection emits
 * while checked out fails the statement instead of going unhandled, and a connection whose
 * statement failed (or timed out) is discarded rather than returned to the pool.
 */
async function checkedOutQuery(pool: PgPool, config: PgQueryConfig): Promise<PgQueryResult> {
  const client = (await pool.connect()) as PgPoolClient & CallbackQueryable;
  const { query_timeout: timeoutMs, ...statement } = config;
  return new Promise<PgQueryResult>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (error: Error | null | undefined, result?: PgQueryResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.removeListener?.('error', finish);
      client.release(error ?? undefined);
      if (error) reject(error);
      else resolve(result!);
    };
    client.on('error', finish);
    if (timeoutMs !== undefined && timeoutMs > 0) {
      timer = setTimeout(() => finish(new Error('Query read timeout')), timeoutMs);
    }
    try {
      client.query(statement, finish);
    } catch (error) {
      finish(error instanceof Error ? error : new Error(String(error)));
    }
  });
}

/** pg's callback form of `query`, which a `pg.Pool`'s connections have. */
interface CallbackQueryable {
  query(
    config: PgQueryConfig,
    callback: (error: Error | null, result: PgQueryResult) => void,
  ): void;
}

/** Statements on a pool: each one on whichever connection is free. */
export class PoolRunner extends DirectRunner {
  readonly #pool: PgPool;

  constructor(pool: PgPool, mapError: ErrorMapper, guard: Guard, timeoutMs: number) {
    // A pool of another shape (a wrapper, another driver) runs statements its own way.
    const target: PgQueryable =
      pool instanceof pg.Pool ? { query: (config) => checkedOutQuery(pool, config) } : pool;
    super(new Statements(target, mapError, guard, timeoutMs));
    this.#pool = pool;
  }

  async transaction<T>(work: (runner: Runner) => Promise<T>): Promise<T> {
    const tx = await this.begin(this.statements.guard);
    try {
      const result = await work(tx.runner);
      await tx.commit();
      return result;
    } catch (error) {
      await tx.rollback();
      throw error;
    }
  }

  /**
   * Checks out a connection and starts a transaction on it. `guard` decides when the
   * transaction's statements are refused (e.g. after commit).
   */
  async begin(guard: Guard): Promise<OpenTransaction> {
    const statements = this.statements;
    statements.guard();
    let client: PgPoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw statements.mapError(error);
    }
    try {
      await statements.control(client, 'BEGIN');
    } catch (error) {
      client.release(error instanceof Error ? error : true);
      throw error;
    }
    let released = false;
    const release = (error?: unknown) => {
      if (released) return;
      released = true;
      // A connection that broke mid-transaction must not go back to the pool.
      client.release(
        error !== undefined && isConnectionError((error as { cause?: unknown }).cause ?? error),
      );
    };
    return {
      runner: new ClientRunner(client, statements.mapError, guard, statements.timeoutMs),
      commit: async () => {
        try {
          await statements.control(client, 'COMMIT');
          release();
        } catch (error) {
          release(error);
          throw error;
        }
      },
      rollback: async () => {
        if (released) return;
        try {
          await statements.control(client, 'ROLLBACK');
          release();
        } catch (error) {
          // The server rolls back a transaction whose connection is gone: nothing to report.
          release(error);
        }
      },
    };
  }
}

/**
 * Statements on one client the application handed to the constructor (not a pool): they run one
 * at a time, and a transaction keeps every other statement out until it has finished, so no
 * unrelated statement ever joins (or is rolled back with) it.
 */
export class SerialClientRunner implements Runner {
  readonly #client: PgQueryable;
  readonly #statements: Statements;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(client: PgQueryable, mapError: ErrorMapper, guard: Guard, timeoutMs: number) {
    this.#client = client;
    this.#statements = new Statements(client, mapError, guard, timeoutMs);
  }

  rows(
    text: string,
    values?: readonly unknown[],
    options?: StatementOptions,
  ): Promise<readonly Row[]> {
    return this.#exclusive(() => this.#statements.rows(text, values, options));
  }

  script(text: string): Promise<readonly Row[]> {
    return this.#exclusive(() => this.#statements.script(text));
  }

  transaction<T>(work: (runner: Runner) => Promise<T>): Promise<T> {
    const statements = this.#statements;
    return this.#exclusive(async () => {
      statements.guard();
      await statements.control(this.#client, 'BEGIN');
      try {
        const result = await work(
          new ClientRunner(
            this.#client,
            statements.mapError,
            statements.guard,
            statements.timeoutMs,
          ),
        );
        await statements.control(this.#client, 'COMMIT');
        return result;
      } catch (error) {
        // The work's error is the one to report; a connection too broken to roll back has had
        // its transaction rolled back by the server.
        await statements.control(this.#client, 'ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }

  #exclusive<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task, task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/** The error every statement of a closed repository or finished transaction gets. */
export function closedError(what: 'repository' | 'transaction'): HookdError {
  return new HookdError(
    'HOOKD_ERR_DATABASE',
    what === 'repository'
      ? 'repository is closed'
      : 'transaction is already committed or rolled back',
  );
}
