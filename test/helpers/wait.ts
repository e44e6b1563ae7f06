import type { HookdEventMap, Manager, Topic } from '../../src/index.js';

/**
 * Polls `check` until it returns a truthy value (which is returned), failing after `timeoutMs`.
 * For state that lives in a repository and announces itself through no event.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; message?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${options.message ?? 'condition not met'} within ${options.timeoutMs ?? 10_000} ms (last: ${String(last)})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 10));
  }
}

/** Resolves with the first event on `topic` that satisfies `predicate`. */
export function nextEvent<T extends Topic>(
  manager: Manager,
  topic: T,
  predicate: (event: HookdEventMap[T]) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<HookdEventMap[T]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no ${topic} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const unsubscribe = manager.on(topic, (event) => {
      if (!predicate(event)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(event);
    });
  });
}

/** Records every event of the given topics, in publish order. */
export function recordEvents(
  manager: Manager,
  topics: readonly Topic[],
): Array<{ topic: Topic; event: unknown }> {
  const seen: Array<{ topic: Topic; event: unknown }> = [];
  for (const topic of topics) manager.on(topic, (event) => void seen.push({ topic, event }));
  return seen;
}
