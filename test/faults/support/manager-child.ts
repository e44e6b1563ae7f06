/**
 * A worker process of the fault suite: runs one `Manager` on a `PostgresRepository`, as an
 * application would, and is killed, cut off or stopped by the test that spawned it.
 *
 * Started by `manager-process.ts` as `node --import tsx manager-child.ts '<ChildSpec JSON>'`.
 * Reports on stdout (one JSON `ChildMessage` per line), obeys `ChildCommand`s on stdin, and exits
 * when stdin closes, so a test runner that dies leaves no worker behind.
 */
import { createInterface } from 'node:readline';

import {
  Manager,
  PostgresRepository,
  TOPICS,
  type Logger,
  type Topic,
} from '../../../src/index.js';
import type { ChildMessage, ChildSpec } from './protocol.js';

function send(message: ChildMessage): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function describe(value: unknown): string {
  return value instanceof Error ? value.message : String(value);
}

/** Forwards warnings and errors: the fault scenarios check that failures are logged. */
function forwardingLogger(): Logger {
  const quiet = () => undefined;
  const forward =
    (level: string) =>
    (fieldsOrMessage: object | string, message?: string): void => {
      const fields = typeof fieldsOrMessage === 'string' ? {} : fieldsOrMessage;
      const text = typeof fieldsOrMessage === 'string' ? fieldsOrMessage : (message ?? '');
      const error = (fields as { error?: unknown }).error;
      send({
        type: 'log',
        at: Date.now(),
        level,
        message: error === undefined ? text : `${text}: ${describe(error)}`,
      });
    };
  return { debug: quiet, info: quiet, warn: forward('warn'), error: forward('error') };
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as ChildSpec;
  const repository = new PostgresRepository(spec.databaseUrl, {
    tablePrefix: spec.tablePrefix,
    pool: {
      max: spec.poolMax ?? 10,
      ...(spec.applicationName === undefined ? {} : { applicationName: spec.applicationName }),
    },
  });
  const manager = new Manager(spec.config, repository, {
    allowPrivateDestinations: true,
    logger: forwardingLogger(),
    ...(spec.agentOptions === undefined ? {} : { agentOptions: spec.agentOptions }),
  });
  const counts: Record<string, number> = {};
  const forward = new Set<Topic>(spec.forward ?? []);
  for (const topic of Object.values(TOPICS)) {
    manager.on(topic, (event) => {
      counts[topic] = (counts[topic] ?? 0) + 1;
      if (!forward.has(topic)) return;
      const fields = event as {
        deliveryId?: unknown;
        endpoint?: unknown;
        operation?: unknown;
        error?: unknown;
      };
      send({
        type: 'event',
        at: Date.now(),
        topic,
        ...(typeof fields.deliveryId === 'string' ? { deliveryId: fields.deliveryId } : {}),
        ...(typeof fields.endpoint === 'string' ? { endpoint: fields.endpoint } : {}),
        ...(typeof fields.operation === 'string' ? { operation: fields.operation } : {}),
        ...(fields.error === undefined || fields.error === null
          ? {}
          : { error: describe(fields.error) }),
      });
    });
  }

  await repository.ping();
  send({ type: 'connected', at: Date.now() });
  const start = async () => {
    await manager.start();
    send({ type: 'started', at: Date.now() });
  };
  if (spec.holdStart !== true) await start();

  for await (const line of createInterface({ input: process.stdin })) {
    const [command, argument] = line.trim().split(' ');
    if (command === 'start') {
      await start();
    } else if (command === 'stop') {
      const began = performance.now();
      await manager.stop({ timeoutMs: Number(argument) });
      send({
        type: 'stopped',
        at: Date.now(),
        elapsedMs: Math.round(performance.now() - began),
        counts: { ...counts },
      });
    } else if (command === 'exit') {
      break;
    }
  }
  // stdin closed or `exit`: leave without waiting for anything that is still running.
  await manager.stop({ timeoutMs: 1_000 }).catch(() => undefined);
  await repository.close().catch(() => undefined);
  process.exit(0);
}

main().catch((error: unknown) => {
  send({ type: 'failed', at: Date.now(), message: describe(error) });
  process.exit(1);
});
