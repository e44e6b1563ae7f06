/**
 * A webhook receiver on plain `node:http`, no framework.
 *
 * The raw body: nothing parses it for you, so the handler collects the request's chunks into
 * one Buffer (with a size limit, since nothing else enforces one), verifies those bytes, and
 * only then parses JSON.
 *
 * The usual mistakes: decoding each chunk to a string as it arrives (`body += chunk`), which
 * corrupts a multi-byte UTF-8 character split across two chunks, so the signature no longer
 * matches; and reading without a limit, so one huge request can exhaust memory.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';

import { isWebhookVerificationError, verifyWebhook, type VerifiedWebhook } from 'node-hookd/verify';

import {
  DEFAULT_PATH,
  InMemoryDeduplicator,
  MAX_BODY_BYTES,
  checkReceiverOptions,
  listen,
  reportError,
  type ReceiverOptions,
  type RunningReceiver,
} from './common.js';

/** The body was larger than the limit. */
export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
}

/**
 * Reads the whole request body as bytes, refusing more than `limit` bytes.
 *
 * @throws {@link BodyTooLargeError} past the limit; the stream's error if the request breaks.
 */
export async function readRawBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(request.headers['content-length']);
  if (declared > limit) throw new BodyTooLargeError(`body of ${declared} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BodyTooLargeError(`body over ${limit} bytes`);
    chunks.push(chunk);
  }
  // Concatenate the bytes, and decode only the complete body (never chunk by chunk).
  return Buffer.concat(chunks, size);
}

function answer(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(text);
}

/**
 * A `node:http` server receiving webhooks on `options.path`; nothing listens until
 * {@link start} (or your own `server.listen`).
 *
 * @throws `WebhookVerificationError` at once for a missing or malformed secret.
 */
export function createNodeReceiver(options: ReceiverOptions): http.Server {
  checkReceiverOptions(options);
  const deduplicator = options.deduplicator ?? new InMemoryDeduplicator();
  const path = options.path ?? DEFAULT_PATH;

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const { pathname } = new URL(request.url ?? '/', 'http://receiver.invalid');
    if (pathname !== path) return answer(response, 404, 'not_found');
    if (request.method !== 'POST') {
      response.setHeader('allow', 'POST');
      return answer(response, 405, 'method_not_allowed');
    }

    let body: Buffer;
    try {
      body = await readRawBody(request, MAX_BODY_BYTES);
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        // Answer, then drop the connection rather than read the rest.
        response.setHeader('connection', 'close');
        return answer(response, 413, 'payload_too_large');
      }
      throw error;
    }

    let webhook: VerifiedWebhook;
    try {
      // scheme 'standard': node-hookd signs both ways, and only this signature covers the
      // webhook id that deduplication relies on.
      webhook = verifyWebhook({
        secrets: options.secrets,
        headers: request.headers,
        body,
        scheme: 'standard',
      });
    } catch (error) {
      if (isWebhookVerificationError(error)) return answer(response, 401, error.code);
      throw error;
    }

    let event: unknown;
    try {
      event = JSON.parse(body.toString('utf8'));
    } catch {
      return answer(response, 400, 'invalid_json');
    }

    // Delivery is at least once: a lost answer or a redrive sends the same webhook-id again.
    const outcome = await deduplicator.once(webhook.id!, () => options.onEvent(event, webhook));
    if (outcome === 'duplicate') options.onDuplicate?.(webhook);
    answer(response, 200, outcome === 'processed' ? 'accepted' : 'duplicate');
  }

  return http.createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      // A client that went away while sending the body is not worth a log line.
      if (!request.readableAborted) reportError(options, error);
      // Our fault (onEvent failed): 500, so the sender retries later. No details to the caller.
      if (!response.headersSent && !response.destroyed) answer(response, 500, 'internal_error');
    });
  });
}

/** Starts {@link createNodeReceiver} on `host:port` (port 0: any free port). */
export async function start(
  options: ReceiverOptions,
  port = 0,
  host = '127.0.0.1',
): Promise<RunningReceiver> {
  return listen(createNodeReceiver(options), port, host, options.path ?? DEFAULT_PATH);
}
