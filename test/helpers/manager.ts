import {
  Manager,
  MockRepository,
  type Config,
  type ManagerOptions,
  type Repository,
} from '../../src/index.js';

/** Settings that make retries and polls fast enough for tests, with exact (unjittered) delays. */
export function fastConfig(overrides: Partial<Config> = {}): Partial<Config> {
  return {
    workerCount: 4,
    queuePollInterval: 50,
    queueIdleMaxInterval: 200,
    deliveryTimeoutMs: 2_000,
    defaultInitialBackoffMs: 20,
    defaultMaxBackoffMs: 200,
    defaultMaxRetries: 3,
    retryJitter: 0,
    circuitBreakerTimeoutMs: 1_000,
    queueDepthIntervalMs: 0,
    shutdownTimeoutMs: 5_000,
    ...overrides,
  };
}

/** Managers started by a test file, stopped by {@link stopAll}. */
const running = new Set<Manager>();

/** A started manager on `repository` (a fresh MockRepository by default) that may reach loopback. */
export async function startManager(
  config: Partial<Config> = {},
  repository: Repository = new MockRepository(),
  options: ManagerOptions = {},
): Promise<{ manager: Manager; repository: Repository }> {
  const manager = new Manager(fastConfig(config), repository, {
    allowPrivateDestinations: true,
    ...options,
  });
  await manager.start();
  running.add(manager);
  return { manager, repository };
}

/** Stops every manager started through {@link startManager}. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((manager) => manager.stop({ timeoutMs: 2_000 })));
  running.clear();
}
