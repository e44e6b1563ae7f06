/**
 * Runs one example receiver by hand:
 *
 *   WEBHOOK_SECRETS='whsec_…' PORT=3000 npx tsx examples/receivers/main.ts express
 *
 * The framework is one of `express`, `fastify`, `hono`, `node-http`. `WEBHOOK_SECRETS` holds the
 * subscription's secret, or several separated by spaces or commas while rotating (new first).
 * It prints every accepted event and stops on Ctrl-C / SIGTERM.
 */
import type { ReceiverOptions, RunningReceiver } from './common.js';
import { start as startExpress } from './express.js';
import { start as startFastify } from './fastify.js';
import { start as startHono } from './hono.js';
import { start as startNodeHttp } from './node-http.js';

const starters: Record<
  string,
  (options: ReceiverOptions, port?: number, host?: string) => Promise<RunningReceiver>
> = {
  express: startExpress,
  fastify: startFastify,
  hono: startHono,
  'node-http': startNodeHttp,
};

async function main(): Promise<void> {
  const framework = process.argv[2] ?? 'node-http';
  const startReceiver = starters[framework];
  if (startReceiver === undefined) {
    throw new Error(
      `Unknown framework ${framework}; use one of ${Object.keys(starters).join(', ')}`,
    );
  }
  const secrets = (process.env['WEBHOOK_SECRETS'] ?? '').split(/[\s,]+/).filter(Boolean);
  const port = Number(process.env['PORT'] ?? 3000);
  const host = process.env['HOST'] ?? '127.0.0.1';

  const receiver = await startReceiver(
    {
      secrets,
      onEvent: (event, webhook) => {
        console.log(`accepted ${webhook.id} (attempt ${webhook.attempt ?? '?'}):`, event);
      },
      onDuplicate: (webhook) => console.log(`duplicate ${webhook.id} acknowledged`),
    },
    port,
    host,
  );
  console.log(`${framework} receiver listening on ${receiver.url}`);

  const stop = () => {
    receiver.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
