/**
 * A webhook receiver on Fastify 5.
 *
 * The raw body: Fastify has no built-in "raw body" option, and its default JSON parser hands the
 * handler a parsed object, whose re-serialisation does not reproduce the signed bytes. Inside an
 * encapsulated plugin, this receiver replaces the `application/json` parser with one that keeps
 * the Buffer (`parseAs: 'buffer'`); the handler verifies those bytes and parses JSON itself.
 * Encapsulation (a plain `register`, not wrapped in `fastify-plugin`) keeps the change to the
 * webhook route: the rest of the app still gets parsed JSON.
 *
 * The usual mistakes: adding the Buffer parser at the root (every route then gets Buffers), or
 * wrapping the plugin in `fastify-plugin`, which removes the encapsulation. The `fastify-raw-body`
 * plugin is an alternative (route `config: { rawBody: true }`, `encoding: false` for a Buffer);
 * it must be registered, and awaited, before the routes.
 */
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
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
 * The webhook route as an encapsulated plugin: `app.register(fastifyWebhookPlugin(options))`.
 *
 * @throws `WebhookVerificationError` at once for a missing or malformed secret.
 */
export function fastifyWebhookPlugin(options: ReceiverOptions): FastifyPluginAsync {
  checkReceiverOptions(options);
  const deduplicator = options.deduplicator ?? new InMemoryDeduplicator();

  return async (instance) => {
    // This context only: the default JSON parser (inherited from the parent) is replaced by one
    // that keeps the exact bytes. The limit matches node-hookd's largest payload.
    instance.removeContentTypeParser('application/json');
    instance.addContentTypeParser(
      'application/json',
      { parseAs: 'buffer', bodyLimit: MAX_BODY_BYTES },
      (_request, body, done) => done(null, body),
    );

    instance.post(options.path ?? DEFAULT_PATH, async (request, reply) => {
      const body = request.body;
      if (!Buffer.isBuffer(body)) {
        // No body, or a content type other than JSON (parsed by another parser, or none).
        return reply.code(415).type('text/plain').send('expected a raw application/json body');
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
        if (isWebhookVerificationError(error)) {
          return reply.code(401).type('text/plain').send(error.code);
        }
        throw error;
      }

      let event: unknown;
      try {
        event = JSON.parse(body.toString('utf8'));
      } catch {
        return reply.code(400).type('text/plain').send('invalid_json');
      }

      // Delivery is at least once: a lost answer or a redrive sends the same webhook-id again.
      const outcome = await deduplicator.once(webhook.id!, () => options.onEvent(event, webhook));
      if (outcome === 'duplicate') options.onDuplicate?.(webhook);
      return reply
        .code(200)
        .type('text/plain')
        .send(outcome === 'processed' ? 'accepted' : 'duplicate');
    });
  };
}

/**
 * A Fastify app receiving webhooks on `options.path`, plus a small JSON route showing that the
 * rest of the app keeps Fastify's normal parsing. Nothing listens until {@link start}.
 */
export function createFastifyReceiver(options: ReceiverOptions): FastifyInstance {
  const app = Fastify({ logger: false });
  void app.register(fastifyWebhookPlugin(options));
  app.post('/api/echo', async (request) => ({ parsed: request.body }));
  app.setErrorHandler((error, _request, reply) => {
    // Fastify's own errors (413, malformed requests) keep their 4xx status; anything else is
    // our fault (onEvent failed): 500, so the sender retries later. No details to the caller.
    const statusCode = (error as { statusCode?: unknown }).statusCode;
    if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
      return reply
        .code(statusCode)
        .type('text/plain')
        .send((error as Error).message);
    }
    reportError(options, error);
    return reply.code(500).type('text/plain').send('internal_error');
  });
  return app;
}

/** Starts {@link createFastifyReceiver} on `host:port` (port 0: any free port). */
export async function start(
  options: ReceiverOptions,
  port = 0,
  host = '127.0.0.1',
): Promise<RunningReceiver> {
  const app = createFastifyReceiver(options);
  await app.listen({ port, host });
  const receiver = running(app.server, host, options.path ?? DEFAULT_PATH);
  // app.close() runs Fastify's onClose hooks as well as closing the server.
  return {
    ...receiver,
    async close() {
      await app.close();
    },
  };
}
