/**
 * The undici dispatcher every webhook request goes through: a keep-alive `Agent` whose only way
 * to open a socket is the guarded connector, so the egress (SSRF) guard cannot be skipped.
 *
 * A user-supplied Dispatcher, Agent or ProxyAgent is refused rather than wrapped: undici offers no
 * way to interpose on the connector of a dispatcher that already exists, so accepting one would
 * silently switch the guard off. Pool tuning goes through `agentOptions` instead.
 */

import { Agent, type Dispatcher } from 'undici';

import { HookdError } from '../errors.js';
import { STRICT_EGRESS_POLICY, type EgressPolicy } from './egress-policy.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  checkGuardedTlsOptions,
  createGuardedConnector,
  type EgressRefusal,
  type GuardLookup,
  type GuardedTlsOptions,
} from './guarded-connector.js';

/** Pool settings of the delivery agent that are safe to tune. */
export interface DeliveryAgentPoolOptions {
  /**
   * Keep-alive connections per origin (default 32). Also what the worker pool runs against one
   * origin at once (times `pipelining` when above 1): more would only wait inside the pool while
   * holding worker slots, so a slow origin cannot take every slot from the others.
   */
  connections?: number;
  /** Idle time before a kept-alive socket is closed, in ms (undici default 4 s). */
  keepAliveTimeout?: number;
  /** Upper bound for a server's `Keep-Alive: timeout=` hint, in ms (undici default 10 min). */
  keepAliveMaxTimeout?: number;
  /** Requests in flight per connection (default 1: no HTTP/1.1 pipelining). */
  pipelining?: number;
  /** Budget for DNS lookup + connect + TLS handshake, in ms (default 10 s). */
  connectTimeout?: number;
  /** TLS settings, e.g. `{ ca }` for receivers behind a private CA. Merged with `connect`. */
  tls?: GuardedTlsOptions;
  /** TLS settings as a plain object (undici's name for them). A function is refused. */
  connect?: GuardedTlsOptions;
}

/** Options of {@link createDeliveryAgent}. */
export interface DeliveryAgentOptions {
  /**
   * Re-admit loopback, RFC 1918 / ULA and CGNAT destinations (development and tests only).
   * Default `false`.
   */
  allowPrivateDestinations?: boolean;
  /** Told about every refused destination (cause, host, refused address). Errors are swallowed. */
  onEgressRefused?: (refusal: EgressRefusal) => void;
  /** Replaces the system resolver (tests). */
  lookup?: GuardLookup;
  /** Pool tuning. */
  agentOptions?: DeliveryAgentPoolOptions;
  /**
   * Not supported: present only so that passing one fails loudly. Any value throws
   * `HOOKD_ERR_UNGUARDABLE_DISPATCHER`.
   */
  dispatcher?: unknown;
}

/** The guarded dispatcher and its shutdown. */
export interface DeliveryAgent {
  /** Pass as `dispatcher` to every undici `request()` that delivers a webhook. */
  readonly dispatcher: Dispatcher;
  /**
   * Requests the dispatcher carries to one origin at once (connections × pipelining); more would
   * only wait inside the pool, so the worker pool caps each origin here.
   */
  readonly requestsPerOrigin: number;
  /** Waits for in-flight requests, then closes every socket. Safe to call more than once. */
  close(): Promise<void>;
}

/** Keep-alive connections per origin unless `agentOptions.connections` says otherwise. */
export const DEFAULT_CONNECTIONS_PER_ORIGIN = 32;
/** Largest response header block accepted; a larger one fails the request. */
export const MAX_RESPONSE_HEADER_BYTES = 16_384;

const POOL_OPTION_KEYS: ReadonlySet<string> = new Set<keyof DeliveryAgentPoolOptions>([
  'connections',
  'keepAliveTimeout',
  'keepAliveMaxTimeout',
  'pipelining',
  'connectTimeout',
  'tls',
  'connect',
]);

const SUPPORTED_POOL_OPTIONS = [...POOL_OPTION_KEYS].join(', ');

/**
 * Creates the dispatcher webhook requests must use.
 *
 * It is an undici `Agent` with a keep-alive pool per origin (32 connections, no pipelining),
 * HTTP/1.1 only (`allowH2: false`, so every connection is opened by the guarded connector),
 * response headers capped at 16 KiB, a 10 s connect budget, no proxy, and redirects never
 * followed (undici's `request()` returns a 3xx as is; no redirect interceptor is installed).
 * `headersTimeout` / `bodyTimeout` are the caller's to pass per request.
 *
 * @throws HookdError `HOOKD_ERR_UNGUARDABLE_DISPATCHER` if `dispatcher` is given, or if
 *   `agentOptions` carries a `connect` function, a `factory`, or a socket-choosing TLS option —
 *   all of which would open sockets the guard never sees. `HOOKD_ERR_INVALID_CONFIG` for other
 *   unknown or out-of-range options.
 */
export function createDeliveryAgent(options: DeliveryAgentOptions = {}): DeliveryAgent {
  if (options.dispatcher !== undefined) {
    throw new HookdError(
      'HOOKD_ERR_UNGUARDABLE_DISPATCHER',
      'dispatcher is not supported: a custom undici Dispatcher, Agent or ProxyAgent would send ' +
        'webhooks without the egress (SSRF) guard, because undici offers no way to wrap the ' +
        'connector of an existing dispatcher. Remove it and tune the built-in agent with ' +
        `agentOptions (${SUPPORTED_POOL_OPTIONS}) instead.`,
      { field: 'dispatcher' },
    );
  }
  const allowPrivate = options.allowPrivateDestinations ?? false;
  if (typeof allowPrivate !== 'boolean') {
    throw new HookdError('HOOKD_ERR_INVALID_CONFIG', 'allowPrivateDestinations must be a boolean', {
      field: 'allowPrivateDestinations',
    });
  }
  const policy: EgressPolicy = allowPrivate
    ? Object.freeze({ allowPrivateDestinations: true })
    : STRICT_EGRESS_POLICY;

  const pool = checkPoolOptions(options.agentOptions);
  const tls = {
    ...checkGuardedTlsOptions(pool.tls, 'agentOptions.tls'),
    ...checkGuardedTlsOptions(pool.connect, 'agentOptions.connect'),
  };

  const connector = createGuardedConnector({
    policy,
    connectTimeoutMs: pool.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS,
    tls,
    ...(options.lookup === undefined ? {} : { lookup: options.lookup }),
    ...(options.onEgressRefused === undefined ? {} : { onRefused: options.onEgressRefused }),
  });

  const agent = new Agent({
    connections: pool.connections ?? DEFAULT_CONNECTIONS_PER_ORIGIN,
    pipelining: pool.pipelining ?? 1,
    ...(pool.keepAliveTimeout === undefined ? {} : { keepAliveTimeout: pool.keepAliveTimeout }),
    ...(pool.keepAliveMaxTimeout === undefined
      ? {}
      : { keepAliveMaxTimeout: pool.keepAliveMaxTimeout }),
    maxHeaderSize: MAX_RESPONSE_HEADER_BYTES,
    // With a connect *function*, undici ignores its own connectTimeout/TLS/socketPath options;
    // the connector above owns all of them.
    connect: connector,
    allowH2: false,
  });

  const connections = pool.connections ?? DEFAULT_CONNECTIONS_PER_ORIGIN;
  let closing: Promise<void> | undefined;
  return {
    dispatcher: agent,
    requestsPerOrigin: connections * Math.max(1, pool.pipelining ?? 1),
    close: () => (closing ??= agent.close()),
  };
}

interface CheckedPoolOptions {
  connections?: number;
  keepAliveTimeout?: number;
  keepAliveMaxTimeout?: number;
  pipelining?: number;
  connectTimeout?: number;
  tls?: unknown;
  connect?: unknown;
}

function checkPoolOptions(value: unknown): CheckedPoolOptions {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HookdError('HOOKD_ERR_INVALID_CONFIG', 'agentOptions must be an object', {
      field: 'agentOptions',
    });
  }
  const raw = value as Record<string, unknown>;

  if (typeof raw['connect'] === 'function') {
    throw new HookdError(
      'HOOKD_ERR_UNGUARDABLE_DISPATCHER',
      'agentOptions.connect must not be a function: a custom connector would open sockets ' +
        'without the egress (SSRF) guard. Pass TLS settings as a plain object instead ' +
        '(agentOptions.connect = { ca, cert, key, rejectUnauthorized, … }).',
      { field: 'agentOptions.connect' },
    );
  }
  if (typeof raw['tls'] === 'function') {
    throw new HookdError(
      'HOOKD_ERR_UNGUARDABLE_DISPATCHER',
      'agentOptions.tls must not be a function: pass TLS settings as a plain object instead ' +
        '(agentOptions.tls = { ca, cert, key, rejectUnauthorized, … }).',
      { field: 'agentOptions.tls' },
    );
  }
  for (const key of ['factory', 'socketPath'] as const) {
    if (raw[key] !== undefined) {
      throw new HookdError(
        'HOOKD_ERR_UNGUARDABLE_DISPATCHER',
        `agentOptions.${key} is not supported: it would create connections the egress (SSRF) ` +
          `guard never sees. Tune the built-in pool with ${SUPPORTED_POOL_OPTIONS} instead.`,
        { field: `agentOptions.${key}` },
      );
    }
  }
  for (const key of Object.keys(raw)) {
    if (!POOL_OPTION_KEYS.has(key) && raw[key] !== undefined) {
      throw new HookdError(
        'HOOKD_ERR_INVALID_CONFIG',
        `agentOptions.${key} is not supported; supported: ${SUPPORTED_POOL_OPTIONS}`,
        { field: `agentOptions.${key}` },
      );
    }
  }

  return {
    connections: checkNumber(raw, 'connections', { integer: true, min: 1 }),
    keepAliveTimeout: checkNumber(raw, 'keepAliveTimeout', { integer: false, min: 1 }),
    keepAliveMaxTimeout: checkNumber(raw, 'keepAliveMaxTimeout', { integer: false, min: 1 }),
    // 0 is undici's way to say "no keep-alive"; allowed.
    pipelining: checkNumber(raw, 'pipelining', { integer: true, min: 0 }),
    connectTimeout: checkNumber(raw, 'connectTimeout', { integer: false, min: 1 }),
    tls: raw['tls'],
    connect: raw['connect'],
  };
}

function checkNumber(
  raw: Record<string, unknown>,
  key: string,
  rule: { integer: boolean; min: number },
): number | undefined {
  const value = raw[key];
  if (value === undefined) return undefined;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    (rule.integer && !Number.isInteger(value)) ||
    value < rule.min
  ) {
    throw new HookdError(
      'HOOKD_ERR_INVALID_CONFIG',
      `agentOptions.${key} must be ${rule.integer ? 'an integer' : 'a number'} >= ${rule.min}`,
      { field: `agentOptions.${key}` },
    );
  }
  return value;
}
