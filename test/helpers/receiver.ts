import { EventEmitter, once } from 'node:events';
import http, { type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a test receiver got. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly receivedAt: number;
}

/** Decides the answer to one request; may be async (slow receivers). */
export type Responder = (
  request: RecordedRequest,
  response: ServerResponse,
) => void | Promise<void>;

/** A loopback HTTP server that records every request and answers as scripted. */
export interface Receiver {
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** `http://127.0.0.1:<port><path>` */
  url(path?: string): string;
  /** Replaces the responder. */
  respond(responder: Responder): void;
  /** Requests whose path starts with `path`. */
  requestsTo(path: string): RecordedRequest[];
  /** Resolves once `count` requests (optionally to `path`) have arrived. */
  waitForRequests(
    count: number,
    options?: { path?: string; timeoutMs?: number },
  ): Promise<RecordedRequest[]>;
  close(): Promise<void>;
}

/** Answers 200 with a short body. */
export const ok: Responder = (_request, response) => {
  response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
};

/** Answers with a fixed status. */
export const status =
  (code: number, headers: Record<string, string> = {}): Responder =>
  (_request, response) => {
    response.writeHead(code, headers).end(`status ${code}`);
  };

/** Starts a receiver on 127.0.0.1 with an ephemeral port. */
export async function startReceiver(responder: Responder = ok): Promise<Receiver> {
  const requests: RecordedRequest[] = [];
  const arrivals = new EventEmitter();
  let current = responder;
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const recorded: RecordedRequest = {
        method: request.method ?? '',
        path: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks),
        receivedAt: Date.now(),
      };
      requests.push(recorded);
      arrivals.emit('request');
      Promise.resolve(current(recorded, response)).catch((error: unknown) => {
        response.destroy(error instanceof Error ? error : new Error(String(error)));
      });
    });
  });
  server.keepAliveTimeout = 1_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const matching = (path?: string) =>
    path === undefined ? requests : requests.filter((r) => r.path.startsWith(path));

  return {
    port,
    requests,
    url: (path = '/') => `http://127.0.0.1:${port}${path}`,
    respond: (next) => {
      current = next;
    },
    requestsTo: (path) => matching(path),
    async waitForRequests(count, options = {}) {
      const deadline = Date.now() + (options.timeoutMs ?? 10_000);
      while (matching(options.path).length < count) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          throw new Error(
            `expected ${count} requests${options.path ? ` to ${options.path}` : ''}, got ${matching(options.path).length}`,
          );
        }
        await Promise.race([
          once(arrivals, 'request'),
          new Promise((resolve) => setTimeout(resolve, remaining)),
        ]);
      }
      return matching(options.path).slice(0, count);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A loopback URL on a port nothing listens on (a receiver that is down). */
export async function unreachableUrl(path = '/'): Promise<string> {
  const probe = await startReceiver();
  const url = probe.url(path);
  await probe.close();
  return url;
}
