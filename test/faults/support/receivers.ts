import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Loopback webhook receivers that record every request by delivery id (`webhook-id`) and attempt
 * number (`X-Webhook-Attempt`), with when it arrived, what it was answered, and whether the
 * answer reached the sender's socket or the sender went away first. Each endpoint is a server
 * of its own (its own origin), as different customers' endpoints are.
 */

/** One request as the receiver saw it. */
export interface Exchange {
  readonly deliveryId: string;
  readonly attempt: number;
  readonly endpoint: string;
  /** `Date.now()` when the whole request had arrived. */
  readonly receivedAt: number;
  /** The sender's clock: `webhook-timestamp` in milliseconds. */
  readonly signedAt: number;
  /** The status the receiver chose to answer. */
  readonly status: number;
  /** `Date.now()` when the answer was handed to the socket; null if it never was. */
  respondedAt: number | null;
  /** `Date.now()` when the sender went away before the answer was written; null otherwise. */
  abortedAt: number | null;
}

/** How to answer one request. */
export interface Answer {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Wait this long before answering. */
  readonly delayMs?: number;
}

/** Decides the answer, given the request and the earlier requests of the same delivery. */
export type Behaviour = (
  request: { readonly deliveryId: string; readonly attempt: number },
  earlier: readonly Exchange[],
) => Answer;

const randomBetween = (min: number, max: number) => min + Math.random() * (max - min);

/** Answers 200 after a random latency in `[minMs, maxMs]`. */
export const healthy =
  (minMs = 0, maxMs = minMs): Behaviour =>
  () => ({ status: 200, delayMs: randomBetween(minMs, maxMs) });

/** Always answers `status`. */
export const failing =
  (status = 500): Behaviour =>
  () => ({ status });

/** Answers 429 with `Retry-After` to the first request of every delivery, then 200. */
export const rateLimitedOnce =
  (retryAfterSeconds: number): Behaviour =>
  (_request, earlier) =>
    earlier.length === 0
      ? { status: 429, headers: { 'retry-after': String(retryAfterSeconds) } }
      : { status: 200 };

/** Answers `status` for `forMs` after the endpoint's first request, 200 afterwards. */
export function failingFor(forMs: number, status = 503): Behaviour {
  let until: number | null = null;
  return () => {
    until ??= Date.now() + forMs;
    return { status: Date.now() < until ? status : 200 };
  };
}

/** Answers `status` to the first request of every delivery, 200 afterwards. */
export const failingFirst =
  (status = 503): Behaviour =>
  (_request, earlier) => ({ status: earlier.length === 0 ? status : 200 });

/** Several recording endpoints sharing one record. */
export class ReceiverFleet {
  readonly exchanges: Exchange[] = [];
  readonly #byDelivery = new Map<string, Exchange[]>();
  readonly #servers: http.Server[] = [];
  readonly #changes = new EventEmitter();
  #closed = false;

  constructor() {
    this.#changes.setMaxListeners(0);
  }

  /** Starts an endpoint; resolves with its URL. */
  async endpoint(name: string, behaviour: Behaviour): Promise<string> {
    const server = http.createServer((request, response) => {
      request.resume();
      request.on('end', () => this.#handle(name, behaviour, request, response));
    });
    server.keepAliveTimeout = 5_000;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    this.#servers.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/${name}`;
  }

  /** The requests of one delivery, in arrival order. */
  of(deliveryId: string): readonly Exchange[] {
    return this.#byDelivery.get(deliveryId) ?? [];
  }

  /** Requests received and not yet answered or abandoned. */
  inFlight(): Exchange[] {
    return this.exchanges.filter((e) => e.respondedAt === null && e.abortedAt === null);
  }

  /** Calls `listener` on every arrival, answer and abandonment; returns the unsubscribe. */
  onChange(listener: (exchange: Exchange, what: 'request' | 'response' | 'abort') => void) {
    this.#changes.on('change', listener);
    return () => void this.#changes.off('change', listener);
  }

  /** Resolves once `predicate` holds, checked now and after every change. */
  until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const stop = this.onChange(() => {
        if (!predicate()) return;
        clearTimeout(timer);
        stop();
        resolve();
      });
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`receivers: ${what} did not happen within ${timeoutMs} ms`));
      }, timeoutMs);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(
      this.#servers.map((server) => {
        server.closeAllConnections();
        return new Promise<void>((resolve) => server.close(() => resolve()));
      }),
    );
  }

  #handle(
    endpoint: string,
    behaviour: Behaviour,
    request: http.IncomingMessage,
    response: http.ServerResponse,
  ): void {
    const deliveryId = String(request.headers['webhook-id'] ?? '');
    const attempt = Number(request.headers['x-webhook-attempt'] ?? 0);
    const earlier = this.of(deliveryId);
    const answer = behaviour({ deliveryId, attempt }, earlier);
    const exchange: Exchange = {
      deliveryId,
      attempt,
      endpoint,
      receivedAt: Date.now(),
      signedAt: Number(request.headers['webhook-timestamp'] ?? 0) * 1000,
      status: answer.status,
      respondedAt: null,
      abortedAt: null,
    };
    this.exchanges.push(exchange);
    this.#byDelivery.set(deliveryId, [...earlier, exchange]);
    let timer: NodeJS.Timeout | undefined;
    response.on('finish', () => {
      exchange.respondedAt = Date.now();
      this.#changes.emit('change', exchange, 'response');
    });
    response.on('close', () => {
      clearTimeout(timer);
      if (exchange.respondedAt !== null) return;
      exchange.abortedAt = Date.now();
      this.#changes.emit('change', exchange, 'abort');
    });
    this.#changes.emit('change', exchange, 'request');
    const reply = () => {
      if (response.destroyed || this.#closed) return;
      response.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
      response.end(`status ${answer.status}`);
    };
    const delay = answer.delayMs ?? 0;
    if (delay > 0) timer = setTimeout(reply, delay);
    else reply();
  }
}
