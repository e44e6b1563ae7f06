/**
 * What the four example receivers share: their options, an in-memory deduplicator, and a helper
 * that puts a `node:http` server on a port. Each framework file holds its own raw-body handling
 * and verification, so it can be read (and copied) on its own together with this file.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { Webhook, type VerifiedWebhook } from 'node-hookd/verify';

/**
 * The largest body the receivers accept: node-hookd refuses to queue payloads over 1 MiB of JSON
 * (`MAX_PAYLOAD_SIZE`), so every webhook it sends fits. Express's default limit is 100 kB, which
 * would answer 413 to large but legitimate webhooks (and the sender dead-letters a 413).
 */
export const MAX_BODY_BYTES = 1_048_576;

/** Where the examples listen for webhooks unless told otherwise. */
export const DEFAULT_PATH = '/webhooks';

/** Options every example receiver takes. */
export interface ReceiverOptions {
  /**
   * The subscription's signing secret(s). Several during a rotation: put the new one first and
   * keep the old one until the sender signs with the new one only.
   */
  readonly secrets: ReadonlyArray<string | Uint8Array>;
  /**
   * Handles one verified, first-seen event. Keep it short (store the event, enqueue a job): the
   * sender waits for the answer and gives up after its delivery timeout. Throwing makes the
   * receiver answer 500, so the sender retries; the event is then processed again.
   *
   * `webhook.eventType` comes from the `X-Webhook-Event-Type` header, which no signature covers;
   * prefer a type carried inside the (signed) body.
   */
  readonly onEvent: (event: unknown, webhook: VerifiedWebhook) => void | Promise<void>;
  /** Told about each redelivery that was acknowledged without being processed again. */
  readonly onDuplicate?: (webhook: VerifiedWebhook) => void;
  /** Told about unexpected failures (a throwing `onEvent`); defaults to `console.error`. */
  readonly onError?: (error: unknown) => void;
  /** Remembers processed webhook ids. Default: a new {@link InMemoryDeduplicator}. */
  readonly deduplicator?: Deduplicator;
  /** The route. Default {@link DEFAULT_PATH}. */
  readonly path?: string;
}

/** A receiver listening on a port. */
export interface RunningReceiver {
  readonly port: number;
  /** `http://<host>:<port><path>`: the URL to subscribe. */
  readonly url: string;
  /** Stops accepting connections and resolves once the open ones are closed. */
  close(): Promise<void>;
}

/** Runs the processing of each webhook id at most once (successfully). */
export interface Deduplicator {
  /**
   * Runs `work` unless `id` was already processed or is being processed right now. When `work`
   * fails, the id is forgotten so that the sender's retry processes it.
   *
   * @returns `'processed'` when `work` ran and succeeded, `'duplicate'` when it was skipped.
   * @throws Whatever `work` threw; a duplicate arriving while the first copy is still being
   *   processed waits for it and throws its error too (the sender will retry both).
   */
  once(id: string, work: () => void | Promise<void>): Promise<'processed' | 'duplicate'>;
}

/**
 * Deduplication in process memory: enough for an example or a single-instance receiver, lost on
 * restart and not shared between instances. In production, record the webhook id in a table
 * with a unique key, in the same transaction as the event's effects (`INSERT … ON CONFLICT DO
 * NOTHING`; no row inserted means a duplicate), and keep ids at least as long as the sender may
 * retry or redrive a delivery (days, not the five-minute signature window: every attempt is
 * signed afresh, with the same `webhook-id`).
 */
export class InMemoryDeduplicator implements Deduplicator {
  readonly #entries = new Map<string, Promise<void>>();
  readonly #maxEntries: number;

  /** @param maxEntries - Ids remembered; the oldest are forgotten first. */
  constructor(maxEntries = 100_000) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError('maxEntries must be a positive integer');
    }
    this.#maxEntries = maxEntries;
  }

  async once(id: string, work: () => void | Promise<void>): Promise<'processed' | 'duplicate'> {
    const existing = this.#entries.get(id);
    if (existing !== undefined) {
      // Processed, or still being processed by a concurrent copy: answer like that copy will.
      await existing;
      return 'duplicate';
    }
    // The check above and this set run without an await in between, so two copies of the same
    // webhook can never both get here.
    const running = (async () => work())();
    this.#entries.set(id, running);
    try {
      await running;
    } catch (error) {
      this.#entries.delete(id);
      throw error;
    }
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= this.#maxEntries) break;
      this.#entries.delete(oldest);
    }
    return 'processed';
  }
}

/**
 * Checks the options once, at startup, so a missing or malformed secret stops the process with a
 * clear message instead of answering 401 to every webhook.
 *
 * @throws `WebhookVerificationError` (`missing_secret`, `invalid_secret`) or `TypeError`.
 */
export function checkReceiverOptions(options: ReceiverOptions): void {
  new Webhook(options.secrets);
  if (typeof options.onEvent !== 'function') throw new TypeError('onEvent must be a function');
}

/** Logs an unexpected failure through `options.onError`, else `console.error`. */
export function reportError(options: ReceiverOptions, error: unknown): void {
  if (options.onError) options.onError(error);
  else console.error('webhook receiver: processing failed', error);
}

/**
 * Listens on `host:port` (port 0 picks a free one) and returns the address and a `close`.
 */
export async function listen(
  server: Server,
  port: number,
  host: string,
  path: string,
): Promise<RunningReceiver> {
  server.listen(port, host);
  await once(server, 'listening');
  return running(server, host, path);
}

/** Describes a server that is already listening. */
export function running(server: Server, host: string, path: string): RunningReceiver {
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    port,
    url: `http://${shownHost}:${port}${path}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        // close() stops accepting and, on Node 19+, drops idle keep-alive connections; requests
        // in progress are allowed to finish.
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeIdleConnections();
      }),
  };
}
