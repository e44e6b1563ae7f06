import { Writable } from 'node:stream';

import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';

import { Manager, MockRepository, consoleLogger } from '../src/index.js';
import { fastConfig } from './helpers/manager.js';

/** Collects pino's JSON lines. */
function capture(): { stream: Writable; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('logging', () => {
  it('takes a pino logger as it is and writes structured fields, never the secret', async () => {
    const { stream, lines } = capture();
    const logger = pino({ level: 'debug' }, stream);
    const secret = 'logged-secret-value';
    const repository = new MockRepository();
    const manager = new Manager(fastConfig(), repository, {
      logger,
      allowPrivateDestinations: true,
      secretResolver: () => Promise.reject(new Error(`vault says no for ${secret}`)),
    });
    await manager.start();
    try {
      const subscription = await manager.createSubscription({
        tenantId: 'acme',
        url: 'http://127.0.0.1:9/never',
        secret,
        eventTypes: ['*'],
      });
      await manager.queueDelivery({
        subscriptionId: subscription.id,
        eventType: 'a.b',
        payload: {},
      });
      await vi.waitFor(() => {
        expect(lines().some((line) => line['reason'] === 'resolver_error')).toBe(true);
      });
    } finally {
      await manager.stop();
    }
    const all = lines();
    expect(
      all.find((line) => String(line['msg']).startsWith('allowPrivateDestinations is on')),
    ).toMatchObject({ level: 40 });
    expect(all.find((line) => line['msg'] === 'node-hookd manager started')).toMatchObject({
      level: 30,
      workerCount: 4,
    });
    const resolverFailure = all.find((line) => line['reason'] === 'resolver_error')!;
    expect(resolverFailure).toMatchObject({ tenantId: 'acme', errorType: 'Error' });
    expect(resolverFailure['deliveryId']).toMatch(/^dlv_/);
    expect(JSON.stringify(all)).not.toContain(secret);
  });

  it('is silent by default, and consoleLogger prints one line per entry', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const silent = new Manager(fastConfig(), new MockRepository(), {
        allowPrivateDestinations: true,
      });
      await silent.start();
      await silent.stop();
      expect(log).not.toHaveBeenCalled();
      expect(error).not.toHaveBeenCalled();

      const logger = consoleLogger('info');
      logger.debug('hidden');
      logger.info({ deliveryId: 'dlv_1' }, 'shown');
      logger.warn('careful');
      expect(log.mock.calls).toEqual([['[hookd] INFO shown {"deliveryId":"dlv_1"}']]);
      expect(error.mock.calls).toEqual([['[hookd] WARN careful']]);
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
  });
});
