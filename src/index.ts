/**
 * node-hookd: reliable webhook delivery for Node.js applications, stored in their own
 * PostgreSQL. Start with {@link Manager}.
 *
 * @packageDocumentation
 */

export { Manager, type ManagerOptions, type StopOptions } from './manager.js';

export {
  claimLease,
  defaultConfig,
  defaultRetryPolicy,
  effectiveBatchSize,
  resolveConfig,
  type Config,
  type ResolvedConfig,
} from './config.js';

export {
  HookdError,
  categoryOf,
  isConflictError,
  isExternalError,
  isHookdError,
  isIdempotencyError,
  isInternalError,
  isNotFoundError,
  isRateLimitError,
  isTimeoutError,
  isValidationError,
  shouldRetry,
  type ErrorCategory,
  type HookdErrorCode,
  type HookdErrorOptions,
} from './errors.js';

export {
  DELIVERY_STATUSES,
  SUBSCRIPTION_STATUSES,
  type BatchItemResult,
  type BatchResponse,
  type CircuitBreakerState,
  type CircuitState,
  type CleanupFilter,
  type CleanupResult,
  type DeadLetterFilter,
  type Delivery,
  type DeliveryAttempt,
  type DeliveryFilter,
  type DeliveryStatus,
  type IdempotencyCleanupResult,
  type ItemError,
  type JsonObject,
  type JsonValue,
  type MaintenanceStats,
  type PurgeDeadLetterResult,
  type PurgeFilter,
  type QueueDepth,
  type RetryDeadLetterResult,
  type RetryPolicy,
  type Subscription,
  type SubscriptionFilter,
  type SubscriptionStatus,
  type TestResult,
} from './models.js';

export type {
  CreateSubscriptionRequest,
  QueueDeliveryRequest,
  QueueInlineDeliveryRequest,
  UpdateSubscriptionRequest,
} from './validation.js';
export type { QueueDeliveriesRequest } from './deliveries.js';
export type { CleanupOptions } from './maintenance.js';
export type { TransactionOptions } from './service-context.js';

export {
  InProcessEventBus,
  TOPICS,
  fanOut,
  type AttemptOutcome,
  type AuditEvent,
  type CircuitBreakerEvent,
  type CleanupEvent,
  type DeliveryAttemptEvent,
  type DeliveryEvent,
  type DeliveryQueuedEvent,
  type DeliveryStartedEvent,
  type EventBus,
  type EventHandler,
  type HookdEventMap,
  type QueueDepthEvent,
  type SubscriberErrorHandler,
  type Topic,
  type WorkerErrorEvent,
} from './events.js';

export { consoleLogger, silentLogger, type LogFn, type LogLevel, type Logger } from './logger.js';

export {
  generateSecret,
  storedSecretResolver,
  type SecretRequest,
  type SecretResolver,
  type SecretResolverLike,
} from './secret.js';

export { MockRepository, type MockRepositoryOptions } from './repository/memory-repository.js';
export * from './postgres.js';
export type {
  AttemptCompletion,
  CircuitEventInput,
  CircuitSnapshot,
  ClaimRelease,
  ClaimedDelivery,
  CompletionOutcome,
  CompletionResult,
  CreateDeliveryOptions,
  CreateDeliveryResult,
  DeletedCounts,
  IdempotencyClaim,
  NewDelivery,
  NewDeliveryItem,
  Repository,
  RepositoryTx,
} from './repository/repository.js';

export {
  formatFilterValue,
  isWildcardPattern,
  matchEventType,
  matchesAnyEventType,
  matchesMetadata,
} from './matching.js';
export { calculateBackoff, parseRetryAfter } from './retry/backoff.js';
export { classifyAttempt, type AttemptClass } from './retry/outcome.js';
export {
  applyCircuitEvent,
  closedCircuit,
  type CircuitEvent,
  type CircuitSettings,
  type CircuitTransition,
} from './retry/circuit-breaker.js';
export { generateAttemptId, generateDeliveryId, generateSubscriptionId } from './ids.js';

export type { EgressRefusal, GuardLookup } from './delivery/guarded-connector.js';
export type { EgressRefusalCause } from './delivery/egress-policy.js';
export type { DeliveryAgentPoolOptions } from './delivery/delivery-agent.js';
export type { SpanContextLike, SpanLike, TracerLike } from './telemetry/tracing.js';

export * from './constants.js';
export * from '../verify/headers.js';
/** go-hookd's root-level `VerifySignature`: the go-hookd HMAC check without timestamp rules. */
export { quick as verifySignature } from '../verify/index.js';
