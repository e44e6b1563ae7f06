/**
 * A webhook receiver on Hono, served on Node by `@hono/node-server`.
 *
 * The raw body: the handler reads the bytes with `await c.req.arrayBuffer()` before anything
 * parses them, verifies, and only then decodes and parses JSON. `c.req.arrayBuffer()` goes
 * through Hono's per-request body cache, so it still returns the body when a middleware read it
 * first through `c.req` (reading `c.req.raw` directly would not). Bytes rather than `text()`: a
 * text round trip changes bodies that are not valid UTF-8 or start with a byte-order mark.
 *
 * `verifyRequest(c.req.raw, { secrets })` is the one-call alternative for fetch-style handlers;
 * it reads `c.req.raw` itself, so it refuses (`invalid_body`) a request whose body any earlier
 * middleware has consumed, for example a validator that called `c.req.json()`.
 *
 * The usual mistake: a JSON validator or middleware that parses the body before the signature is
 * checked, then verifying `JSON.stringify(parsed)`, which is not the signed bytes.
 */
import type { Server } from 'node:http';

import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { isWebhookVerificationError, verifyWebhook, type VerifiedWebhook } from 'node-hookd/verify';

import {
  DEFAULT_PATH,
  InMemoryDeduplicator,
  MAX_BODY_BYTES,
  checkReceiverOptions,
  reportError,
  running,
  type ReceiverOptions,
  type RunningReceiver,
} from './common.js';

/**
 * A Hono app receiving webhooks on `options.path`. Nothing listens until {@link start}; the app
 * also runs unchanged on other runtimes (Bun, Deno, workers with `node:crypto` support).
 *
 * @throws `WebhookVerificationError` at once for a missing or malformed secret.
 */
export function createHonoReceiver(options: ReceiverOptions): Hono {
  checkReceiverOptions(options);
  const deduplicator = options.deduplicator ?? new InMemoryDeduplicator();
  const app = new Hono();

  app.post(
    options.path ?? DEFAULT_PATH,
    // @hono/node-server sets no body limit; this one matches node-hookd's largest payload. It
    // buffers the body and hands it on unchanged.
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => c.text('payload_too_large', 413),
    }),
    async (c) => {
      // The exact bytes, first.
      const body = new Uint8Array(await c.req.arrayBuffer());

      let webhook: VerifiedWebhook;
      try {
        // scheme 'standard': node-hookd signs both ways, and only this signature covers the
        // webhook id that deduplication relies on.
        webhook = verifyWebhook({
          secrets: options.secrets,
          headers: c.req.raw.headers,
          body,
          scheme: 'standard',
        });
      } catch (error) {
        if (isWebhookVerificationError(error)) return c.text(error.code, 401);
        throw error;
      }

      let event: unknown;
      try {
        event = JSON.parse(new TextDecoder().decode(body));
      } catch {
        return c.text('invalid_json', 400);
      }

      // Delivery is at least once: a lost answer or a redrive sends the same webhook-id again.
      const outcome = await deduplicator.once(webhook.id!, () => options.onEvent(event, webhook));
      if (outcome === 'duplicate') options.onDuplicate?.(webhook);
      return c.text(outcome === 'processed' ? 'accepted' : 'duplicate', 200);
    },
  );

  app.onError((error, c) => {
    // Our fault (onEvent failed): 500, so the sender retries later. No details to the caller.
    reportError(options, error);
    return c.text('internal_error', 500);
  });
  return app;
}

/** Serves {@link createHonoReceiver} with `@hono/node-server` on `host:port` (0: any free port). */
export async function start(
  options: ReceiverOptions,
  port = 0,
  host = '127.0.0.1',
): Promise<RunningReceiver> {
  const app = createHonoReceiver(options);
  return new Promise((resolve, reject) => {
    // Without serverOptions/createServer, serve() creates a node:http server.
    const server = serve({ fetch: app.fetch, port, hostname: host }, () => {
      server.off('error', reject);
      resolve(running(server as Server, host, options.path ?? DEFAULT_PATH));
    });
    server.once('error', reject);
  });
}
