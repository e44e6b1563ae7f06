import type { Dispatcher } from 'undici';

import type { ResolvedConfig } from './config.js';
import type { EgressPolicy } from './delivery/egress-policy.js';
import { HookdError } from './errors.js';
import type { Publish } from './event-payloads.js';
import type { Logger } from './logger.js';
import type { RetryPolicy } from './models.js';
import type { Repository } from './repository/repository.js';
import type { SecretResolver } from './secret.js';
import type { Tracing } from './telemetry/tracing.js';
import type { SigningKeyCache } from './delivery/request-headers.js';

/** What the services behind the `Manager` share. */
export interface ServiceContext {
  readonly repository: Repository;
  readonly config: ResolvedConfig;
  readonly defaultPolicy: RetryPolicy;
  readonly egressPolicy: EgressPolicy;
  readonly publish: Publish;
  readonly logger: Logger;
  readonly secretResolver: SecretResolver;
  readonly emptySecretAllowed: boolean;
  /** The guarded HTTP dispatcher (created on first use). */
  readonly dispatcher: () => Dispatcher;
  /** Wakes the local worker pool after new work was queued. */
  readonly wake: () => void;
  /**
   * The database's time as this process best knows it (its own clock until a started worker
   * pool has read the database's off a claim), in epoch milliseconds.
   */
  readonly now: () => number;
  /** OpenTelemetry hooks, when a tracer is configured. */
  readonly tracing: Tracing | null;
  /** The manager's cache of signing keys (see SigningKeyCache). */
  readonly signingKeys: SigningKeyCache;
}

/** Options of the operations that can run inside the caller's database transaction. */
export interface TransactionOptions {
  /**
   * The caller's database client with an open transaction (a `pg` `PoolClient` after `BEGIN`).
   * The delivery exists if and only if the caller commits.
   */
  readonly client?: unknown;
}

/** The repository to use for one call: the caller's transaction, or the manager's own. */
export function repositoryFor(
  context: ServiceContext,
  options: TransactionOptions | undefined | null,
): Repository {
  let client: unknown;
  try {
    client = options?.client;
  } catch (error) {
    throw new HookdError('HOOKD_ERR_INVALID_ARGUMENT', 'options.client could not be read', {
      field: 'client',
      cause: error,
    });
  }
  if (client === undefined || client === null) return context.repository;
  if (!context.repository.withClient) {
    throw new HookdError(
      'HOOKD_ERR_UNSUPPORTED',
      'this repository cannot write inside a caller transaction (client option)',
      {
        field: 'client',
      },
    );
  }
  try {
    return context.repository.withClient(client);
  } catch (error) {
    if (error instanceof HookdError) throw error;
    // A client object that throws while being inspected (a hostile proxy) is bad input.
    throw new HookdError(
      'HOOKD_ERR_INVALID_ARGUMENT',
      'options.client is not a usable database client',
      {
        field: 'client',
        cause: error,
      },
    );
  }
}
