import { describe, expect, it } from 'vitest';

import type { Delivery } from '../src/models.js';
import { InsertBatcher } from '../src/repository/insert-batcher.js';
import type { CreateDeliveryResult, NewDeliveryItem } from '../src/repository/repository.js';
import { makeDelivery } from './contract/repository-contract.js';

/** A writer that records its batches and answers after the test lets it. */
function scriptedWriter(answer: (item: NewDeliveryItem) => CreateDeliveryResult) {
  const batches: Array<readonly NewDeliveryItem[]> = [];
  const gates: Array<() => void> = [];
  const write = async (items: readonly NewDeliveryItem[]) => {
    batches.push(items);
    await new Promise<void>((resolve) => gates.push(resolve));
    return items.map(answer);
  };
  const releaseAll = () => gates.splice(0).forEach((open) => open());
  return { batches, write, releaseAll, gates };
}

const delivered = (item: NewDeliveryItem): CreateDeliveryResult => ({
  ok: true,
  delivery: { id: item.delivery.id } as Delivery,
});

describe('InsertBatcher', () => {
  it('sends the calls of one turn together, and later ones while writes are under way', async () => {
    const writer = scriptedWriter(delivered);
    const batcher = new InsertBatcher(writer.write, { maxInFlight: 1 });
    const first = Array.from({ length: 5 }, () => batcher.submit({ delivery: makeDelivery(null) }));
    await new Promise((resolve) => setImmediate(resolve));
    expect(writer.batches.map((batch) => batch.length)).toEqual([5]);
    const second = Array.from({ length: 7 }, () =>
      batcher.submit({ delivery: makeDelivery(null) }),
    );
    await new Promise((resolve) => setImmediate(resolve));
    // One write in flight at a time: the seven wait for it, then go out as one statement.
    expect(writer.batches).toHaveLength(1);
    writer.releaseAll();
    await Promise.all(first);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writer.batches.map((batch) => batch.length)).toEqual([5, 7]);
    writer.releaseAll();
    const ids = await Promise.all(second);
    expect(ids.map((d) => d.id)).toEqual(writer.batches[1]!.map((item) => item.delivery.id));
    await batcher.drain();
  });

  it('caps a statement by rows and by body size, always sending at least one', async () => {
    const writer = scriptedWriter(delivered);
    const batcher = new InsertBatcher(writer.write, {
      maxInFlight: 10,
      maxBatchSize: 3,
      maxBatchChars: 100,
    });
    const body = (size: number) => JSON.stringify({ x: 'y'.repeat(size) });
    const calls = [
      ...Array.from({ length: 4 }, () => makeDelivery(null)),
      makeDelivery(null, { body: body(500) }),
      makeDelivery(null, { body: body(40) }),
      makeDelivery(null, { body: body(40) }),
    ].map((delivery) => batcher.submit({ delivery }));
    await new Promise((resolve) => setImmediate(resolve));
    expect(writer.batches.map((batch) => batch.length)).toEqual([3, 1, 1, 2]);
    writer.releaseAll();
    await Promise.all(calls);
  });

  it('settles every caller on its own: item errors go to their callers, a failed write to all', async () => {
    const refused = new Error('duplicate');
    const writer = scriptedWriter((item) =>
      item.delivery.eventType === 'bad' ? { ok: false, error: refused } : delivered(item),
    );
    const batcher = new InsertBatcher(writer.write);
    const good = batcher.submit({ delivery: makeDelivery(null) });
    const bad = batcher.submit({ delivery: makeDelivery(null, { eventType: 'bad' }) });
    await new Promise((resolve) => setImmediate(resolve));
    writer.releaseAll();
    await expect(good).resolves.toMatchObject({ id: expect.any(String) });
    await expect(bad).rejects.toBe(refused);

    const down = new Error('connection refused');
    const failing = new InsertBatcher(async () => {
      throw down;
    });
    const outcomes = await Promise.allSettled([
      failing.submit({ delivery: makeDelivery(null) }),
      failing.submit({ delivery: makeDelivery(null) }),
    ]);
    expect(outcomes).toEqual([
      { status: 'rejected', reason: down },
      { status: 'rejected', reason: down },
    ]);
    await failing.drain();
  });
});
