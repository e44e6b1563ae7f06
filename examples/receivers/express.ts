/**
 * A webhook receiver on Express 5.
 *
 * The raw body: the signature covers the exact bytes that were sent, so the webhook route reads
 * them with `express.raw()` — `req.body` is then a Buffer — and parses JSON only after
 * verifying. `JSON.stringify(req.body)` of an already-parsed body does not give the bytes back
 * (spacing, escapes, number formats, key order all may change).
 *
 * The ordering trap: body parsers run in registration order and the first one that matches the
 * content type consumes the stream. A global `app.use(express.json())` registered *before* the
 * webhook route parses the body first; `express.raw()` then finds nothing left to read and
 * `req.body` is a plain object, which `verifyWebhook` refuses (`invalid_body`) and this router
 * reports as a 500 naming the cause. So mount the webhook router before any global JSON parser,
 * as {@link createExpressReceiver} does.
 */
import http from 'node:http';

import express, { type ErrorRequestHandler, type Express, type Router } from 'express';
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

/**
 * A router with the webhook route only, to mount in an existing app before its global body
 * parsers.
 *
 * @throws `WebhookVerificationError` at once for a missing or malformed secret.
 */
export function expressWebhookRouter(options: ReceiverOptions): Router {
  checkReceiverOptions(options);
  const deduplicator = options.deduplicator ?? new InMemoryDeduplicator();
  const router = express.Router();

  router.post(
    options.path ?? DEFAULT_PATH,
    // Route-level, so only this route gets raw bytes; the limit matches node-hookd's largest
    // payload (Express's default, 100 kB, would refuse bigger webhooks with 413).
    express.raw({ type: 'application/json', limit: MAX_BODY_BYTES }),
    async (req, res) => {
      const body: unknown = req.body;
      if (body === undefined) {
        // No body, or not JSON: express.raw() skipped it.
        res.status(415).type('text/plain').send('expected an application/json body');
        return;
      }
      if (!Buffer.isBuffer(body)) {
        // Our misconfiguration, not the sender's: 500, so the webhook is retried once fixed.
        throw new Error(
          'The webhook body was parsed before the webhook route, so its signed bytes are gone: ' +
            'mount expressWebhookRouter() before app.use(express.json()).',
        );
      }

      let webhook: VerifiedWebhook;
      try {
        // scheme 'standard': node-hookd signs both ways, and only this signature covers the
        // webhook id that deduplication relies on.
        webhook = verifyWebhook({
          secrets: options.secrets,
          headers: req.headers,
          body,
          scheme: 'standard',
        });
      } catch (error) {
        if (isWebhookVerificationError(error)) {
          res.status(401).type('text/plain').send(error.code);
          return;
        }
        throw error;
      }

      let event: unknown;
      try {
        event = JSON.parse(body.toString('utf8'));
      } catch {
        res.status(400).type('text/plain').send('invalid_json');
        return;
      }

      // Delivery is at least once: a lost answer or a redrive sends the same webhook-id again.
      const outcome = await deduplicator.once(webhook.id!, () => options.onEvent(event, webhook));
      if (outcome === 'duplicate') options.onDuplicate?.(webhook);
      res
        .status(200)
        .type('text/plain')
        .send(outcome === 'processed' ? 'accepted' : 'duplicate');
    },
  );
  return router;
}

/**
 * An Express app receiving webhooks on `options.path`; nothing listens until {@link start}.
 * The rest of the app keeps its usual `express.json()`, registered after the webhook router.
 */
export function createExpressReceiver(options: ReceiverOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(expressWebhookRouter(options));
  // Global JSON parsing for the rest of the API comes *after* the webhook router.
  app.use(express.json());
  const onError: ErrorRequestHandler = (error, _req, res, _next) => {
    // Our fault (onEvent failed): 500, so the sender retries later. No details to the caller.
    reportError(options, error);
    if (!res.headersSent) res.status(500).type('text/plain').send('internal_error');
  };
  app.use(onError);
  return app;
}

/** Starts {@link createExpressReceiver} on `host:port` (port 0: any free port). */
export async function start(
  options: ReceiverOptions,
  port = 0,
  host = '127.0.0.1',
): Promise<RunningReceiver> {
  // A plain node:http server rather than app.listen(), so the port is known when this resolves
  // and listening errors (EADDRINUSE) reject.
  const server = http.createServer(createExpressReceiver(options));
  return listen(server, port, host, options.path ?? DEFAULT_PATH);
}
