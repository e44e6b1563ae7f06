import type { PgNotification, PgQueryable } from './pg-types.js';
import { PG_TYPES } from './pg-types.js';

/**
 * Cross-process wake-ups over `LISTEN`/`NOTIFY`. One dedicated connection per repository serves
 * every listener registered on it (one per manager); when the connection drops it is replaced,
 * with backoff, and every listener is called once after reconnecting, because work may have been
 * queued while nobody was listening. Polling stays the safety net either way.
 */

/** A connection that can LISTEN. */
export interface ListenClient extends PgQueryable {
  on(event: 'notification', listener: (message: PgNotification) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
}

/** A dedicated connection and how to give it back. */
export interface ListenConnection {
  readonly client: ListenClient;
  /** Closes or returns the connection; `broken` when it must not be reused. */
  release(broken: boolean): Promise<void>;
}

/** Options of {@link WorkListener}. */
export interface WorkListenerOptions {
  readonly channel: string;
  readonly connect: () => Promise<ListenConnection>;
  /** First reconnect delay. @default 100 */
  readonly minReconnectDelayMs?: number;
  /** Longest reconnect delay. @default 10000 */
  readonly maxReconnectDelayMs?: number;
  readonly random?: () => number;
}

interface Subscriber {
  readonly listener: () => void;
  readonly onError: (error: Error) => void;
}

/** Shares one LISTEN connection between any number of wake-up listeners. */
export class WorkListener {
  readonly #options: WorkListenerOptions;
  readonly #subscribers = new Set<Subscriber>();
  #connection: ListenConnection | null = null;
  #connecting: Promise<void> | null = null;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #failures = 0;
  /** Bumped on every shutdown, so late callbacks of an old connection do nothing. */
  #epoch = 0;

  constructor(options: WorkListenerOptions) {
    this.#options = options;
  }

  /**
   * Registers a listener; the first one opens the connection (a failure is reported through
   * `onError` and retried in the background). Resolves to the function that unregisters it;
   * the last one to leave closes the connection.
   */
  async add(listener: () => void, onError: (error: Error) => void): Promise<() => Promise<void>> {
    const subscriber: Subscriber = { listener, onError };
    this.#subscribers.add(subscriber);
    if (!this.#connection && !this.#reconnectTimer) {
      this.#connecting ??= this.#connect(false);
      await this.#connecting;
    }
    let removed = false;
    return async () => {
      if (removed) return;
      removed = true;
      this.#subscribers.delete(subscriber);
      if (this.#subscribers.size === 0) await this.close();
    };
  }

  /** Drops every listener and closes the connection. */
  async close(): Promise<void> {
    this.#subscribers.clear();
    this.#epoch += 1;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    if (this.#connecting) await this.#connecting;
    const connection = this.#connection;
    this.#connection = null;
    if (connection) {
      let broken = false;
      try {
        await connection.client.query({ text: 'UNLISTEN *', types: PG_TYPES });
      } catch {
        broken = true;
      }
      await connection.release(broken).catch(() => undefined);
    }
  }

  async #connect(reconnecting: boolean): Promise<void> {
    const epoch = this.#epoch;
    let connection: ListenConnection | null = null;
    try {
      connection = await this.#options.connect();
      const opened = connection;
      opened.client.on('notification', (message) => {
        if (message.channel === this.#options.channel && this.#connection === opened) this.#wake();
      });
      opened.client.on('error', (error) => this.#lost(opened, error));
      opened.client.on('end', () =>
        this.#lost(opened, new Error('the LISTEN connection was closed')),
      );
      await opened.client.query({
        text: `LISTEN ${quoteIdentifier(this.#options.channel)}`,
        types: PG_TYPES,
      });
      if (epoch !== this.#epoch) {
        // Closed while connecting.
        await opened.release(false).catch(() => undefined);
        return;
      }
      this.#connection = opened;
      this.#failures = 0;
      if (reconnecting) this.#wake();
    } catch (error) {
      if (connection) await connection.release(true).catch(() => undefined);
      if (epoch !== this.#epoch) return;
      this.#report(asError(error));
      this.#scheduleReconnect();
    } finally {
      this.#connecting = null;
    }
  }

  #lost(connection: ListenConnection, error: Error): void {
    if (this.#connection !== connection) return;
    this.#connection = null;
    void connection.release(true).catch(() => undefined);
    this.#report(error);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#subscribers.size === 0 || this.#reconnectTimer) return;
    const { minReconnectDelayMs = 100, maxReconnectDelayMs = 10_000 } = this.#options;
    const random = this.#options.random ?? Math.random;
    const base = Math.min(maxReconnectDelayMs, minReconnectDelayMs * 2 ** this.#failures);
    this.#failures += 1;
    // Half to full delay: processes that lost the server together do not return together.
    const delay = base * (0.5 + random() / 2);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#subscribers.size === 0) return;
      this.#connecting ??= this.#connect(true);
    }, delay);
    this.#reconnectTimer.unref();
  }

  #wake(): void {
    for (const { listener } of [...this.#subscribers]) {
      try {
        listener();
      } catch {
        // A listener's failure is its own; the others still get the wake-up.
      }
    }
  }

  #report(error: Error): void {
    for (const { onError } of [...this.#subscribers]) {
      try {
        onError(error);
      } catch {
        // Reporting must never break the reconnect loop.
      }
    }
  }
}

/** Double-quotes an identifier (the channel name is a validated identifier already). */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
