import { afterEach } from 'vitest';

import type { Delivery } from '../../src/index.js';
import { stopAll } from './manager.js';
import { startReceiver, type Receiver } from './receiver.js';
import { waitFor } from './wait.js';

/**
 * Per-file test harness: receivers started through it are closed, and managers started with
 * `startManager` are stopped, after every test.
 */
export function useHarness(): {
  receiver: (...args: Parameters<typeof startReceiver>) => Promise<Receiver>;
} {
  const open: Receiver[] = [];
  afterEach(async () => {
    await stopAll();
    await Promise.all(open.splice(0).map((receiver) => receiver.close()));
  });
  return {
    async receiver(...args) {
      const started = await startReceiver(...args);
      open.push(started);
      return started;
    },
  };
}

/** Waits until the delivery is no longer pending and returns it. */
export function waitForFinal(
  repository: { getDelivery(id: string): Promise<Delivery> },
  id: string,
): Promise<Delivery> {
  return waitFor(async () => {
    const delivery = await repository.getDelivery(id);
    return delivery.status === 'pending' ? null : delivery;
  });
}
