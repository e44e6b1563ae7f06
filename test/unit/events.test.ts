import { describe, expect, it } from 'vitest';

import {
  InProcessEventBus,
  TOPICS,
  fanOut,
  type EventBus,
  type HookdEventMap,
  type Topic,
} from '../../src/events.js';

const cleanupEvent = (deletedCount: number): HookdEventMap['maintenance.cleanup'] => ({
  timestamp: new Date(0),
  type: 'deliveries',
  deletedCount,
  attemptsDeleted: 0,
  tenantId: null,
  statuses: [],
  createdBefore: null,
});

/** A promise that resolves with the first `count` reported subscriber errors. */
function collectErrors(count: number) {
  const reported: Array<{ error: unknown; topic: Topic }> = [];
  let done: (value: typeof reported) => void = () => undefined;
  const all = new Promise<typeof reported>((resolve) => {
    done = resolve;
  });
  return {
    reported,
    all,
    onSubscriberError: (error: unknown, topic: Topic) => {
      reported.push({ error, topic });
      if (reported.length === count) done(reported);
    },
  };
}

describe('TOPICS', () => {
  it('names every go-hookd topic, plus worker.error', () => {
    expect(TOPICS).toEqual({
      deliveryQueued: 'delivery.queued',
      deliveryStarted: 'delivery.started',
      deliverySuccess: 'delivery.success',
      deliveryFailed: 'delivery.failed',
      deliveryDeadLetter: 'delivery.dead_letter',
      circuitOpened: 'circuit.opened',
      circuitHalfOpen: 'circuit.half_open',
      circuitClosed: 'circuit.closed',
      metricsDeliveryAttempt: 'metrics.delivery_attempt',
      metricsRetryTriggered: 'metrics.retry_triggered',
      metricsQueueDepth: 'metrics.queue_depth',
      subscriptionCreated: 'audit.subscription_created',
      subscriptionUpdated: 'audit.subscription_updated',
      subscriptionDeleted: 'audit.subscription_deleted',
      maintenanceCleanup: 'maintenance.cleanup',
      workerError: 'worker.error',
    });
  });
});

describe('InProcessEventBus', () => {
  it('runs handlers synchronously, in subscription order, on their topic only', () => {
    const bus = new InProcessEventBus();
    const calls: string[] = [];
    bus.subscribe('maintenance.cleanup', (event) => {
      calls.push(`first:${event.deletedCount}`);
    });
    bus.subscribe('maintenance.cleanup', (event) => {
      calls.push(`second:${event.deletedCount}`);
    });
    bus.subscribe('worker.error', () => {
      calls.push('wrong topic');
    });
    bus.publish('maintenance.cleanup', cleanupEvent(7));
    expect(calls).toEqual(['first:7', 'second:7']);
  });

  it('publishes to nobody without error', () => {
    expect(() =>
      new InProcessEventBus().publish('maintenance.cleanup', cleanupEvent(1)),
    ).not.toThrow();
  });

  it('unsubscribe removes exactly one registration of the same function', () => {
    const bus = new InProcessEventBus();
    let count = 0;
    const handler = () => {
      count += 1;
    };
    const first = bus.subscribe('maintenance.cleanup', handler);
    bus.subscribe('maintenance.cleanup', handler);
    expect(bus.listenerCount('maintenance.cleanup')).toBe(2);
    first();
    first();
    expect(bus.listenerCount('maintenance.cleanup')).toBe(1);
    bus.publish('maintenance.cleanup', cleanupEvent(1));
    expect(count).toBe(1);
  });

  it('lets a handler unsubscribe itself or others during a publish without skipping anyone', () => {
    const bus = new InProcessEventBus();
    const calls: string[] = [];
    const removeSelf: () => void = bus.subscribe('maintenance.cleanup', () => {
      calls.push('a');
      removeSelf();
      removeB();
    });
    const removeB = bus.subscribe('maintenance.cleanup', () => {
      calls.push('b');
    });
    bus.publish('maintenance.cleanup', cleanupEvent(1));
    bus.publish('maintenance.cleanup', cleanupEvent(2));
    expect(calls).toEqual(['a', 'b']);
    expect(bus.listenerCount('maintenance.cleanup')).toBe(0);
  });

  it('isolates a throwing handler and a rejecting async handler, reporting both', async () => {
    const errors = collectErrors(2);
    const bus = new InProcessEventBus({ onSubscriberError: errors.onSubscriberError });
    const thrown = new Error('sync failure');
    const rejected = new Error('async failure');
    const calls: string[] = [];
    bus.subscribe('maintenance.cleanup', () => {
      calls.push('throws');
      throw thrown;
    });
    bus.subscribe('maintenance.cleanup', async () => {
      calls.push('rejects');
      await Promise.resolve();
      throw rejected;
    });
    bus.subscribe('maintenance.cleanup', () => {
      calls.push('after');
    });
    expect(() => bus.publish('maintenance.cleanup', cleanupEvent(1))).not.toThrow();
    expect(calls).toEqual(['throws', 'rejects', 'after']);
    expect(await errors.all).toEqual([
      { error: thrown, topic: 'maintenance.cleanup' },
      { error: rejected, topic: 'maintenance.cleanup' },
    ]);
  });

  it('stays isolated when the error reporter itself throws', async () => {
    let reports = 0;
    const bus = new InProcessEventBus({
      onSubscriberError: () => {
        reports += 1;
        throw new Error('logger is broken');
      },
    });
    const calls: string[] = [];
    bus.subscribe('maintenance.cleanup', () => {
      throw new Error('handler failure');
    });
    const settled = new Promise<void>((resolve) => {
      bus.subscribe('maintenance.cleanup', () =>
        Promise.reject(new Error('async handler failure')).finally(() => setImmediate(resolve)),
      );
    });
    bus.subscribe('maintenance.cleanup', () => {
      calls.push('still runs');
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      expect(() => bus.publish('maintenance.cleanup', cleanupEvent(1))).not.toThrow();
      expect(calls).toEqual(['still runs']);
      await settled;
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(reports).toBe(2);
    expect(unhandled).toEqual([]);
  });
});

describe('fanOut', () => {
  function recordingBus(name: string, log: string[], fail = false): EventBus {
    const inner = new InProcessEventBus();
    return {
      publish(topic, event) {
        log.push(`${name}:${topic}`);
        inner.publish(topic, event);
        if (fail) throw new Error(`${name} failed`);
      },
      subscribe: (topic, handler) => inner.subscribe(topic, handler),
    };
  }

  it('publishes to every bus in order, then to its own subscribers', () => {
    const log: string[] = [];
    const bus = fanOut(recordingBus('a', log), recordingBus('b', log));
    bus.subscribe('maintenance.cleanup', () => {
      log.push('combined subscriber');
    });
    bus.publish('maintenance.cleanup', cleanupEvent(1));
    expect(log).toEqual(['a:maintenance.cleanup', 'b:maintenance.cleanup', 'combined subscriber']);
  });

  it('still reaches every bus when one throws, and rethrows that error afterwards', () => {
    const log: string[] = [];
    const bus = fanOut(recordingBus('a', log, true), recordingBus('b', log));
    bus.subscribe('maintenance.cleanup', () => {
      log.push('combined subscriber');
    });
    expect(() => bus.publish('maintenance.cleanup', cleanupEvent(1))).toThrow('a failed');
    expect(log).toEqual(['a:maintenance.cleanup', 'b:maintenance.cleanup', 'combined subscriber']);
  });

  it('rethrows several failures together as an AggregateError', () => {
    const log: string[] = [];
    const bus = fanOut(recordingBus('a', log, true), recordingBus('b', log, true));
    let caught: unknown;
    try {
      bus.publish('maintenance.cleanup', cleanupEvent(1));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AggregateError);
    expect((caught as AggregateError).errors.map((error: Error) => error.message)).toEqual([
      'a failed',
      'b failed',
    ]);
    expect(log).toHaveLength(2);
  });

  it('delivers each event once to a combined subscriber, and unsubscribe stops it', () => {
    const member = new InProcessEventBus();
    const bus = fanOut(member, new InProcessEventBus());
    let combined = 0;
    let direct = 0;
    const unsubscribe = bus.subscribe('maintenance.cleanup', () => {
      combined += 1;
    });
    member.subscribe('maintenance.cleanup', () => {
      direct += 1;
    });
    bus.publish('maintenance.cleanup', cleanupEvent(1));
    expect({ combined, direct }).toEqual({ combined: 1, direct: 1 });
    unsubscribe();
    bus.publish('maintenance.cleanup', cleanupEvent(2));
    expect({ combined, direct }).toEqual({ combined: 1, direct: 2 });
  });

  it('rethrows a combined subscriber that throws, after everyone got the event', () => {
    const log: string[] = [];
    const bus = fanOut(recordingBus('a', log));
    bus.subscribe('maintenance.cleanup', () => {
      throw new Error('subscriber bug');
    });
    bus.subscribe('maintenance.cleanup', () => void log.push('second subscriber'));
    expect(() => bus.publish('maintenance.cleanup', cleanupEvent(1))).toThrow('subscriber bug');
    expect(log).toEqual(['a:maintenance.cleanup', 'second subscriber']);
  });

  it('turns a combined subscriber that rejects later into a process warning, not silence', async () => {
    const bus = fanOut(new InProcessEventBus());
    bus.subscribe('maintenance.cleanup', () => Promise.reject(new Error('late failure')));
    const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
    expect(() => bus.publish('maintenance.cleanup', cleanupEvent(1))).not.toThrow();
    const warning = await warned;
    expect(warning.message).toContain('late failure');
    expect((warning as Error & { code?: string }).code).toBe('HOOKD_SUBSCRIBER_ERROR');
  });

  it('works with no member buses at all', () => {
    const bus = fanOut();
    let seen = 0;
    bus.subscribe('maintenance.cleanup', () => {
      seen += 1;
    });
    bus.publish('maintenance.cleanup', cleanupEvent(1));
    expect(seen).toBe(1);
  });
});
