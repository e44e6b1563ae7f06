/**
 * The connect-time half of the egress (SSRF) guard: an undici connector that resolves the
 * destination once, judges every address in the answer, and then dials exactly those addresses.
 *
 * Why a connector and not a DNS `lookup` hook: undici never calls a lookup hook for IP-literal
 * hosts (`http://127.0.0.1/`, `http://[::1]/`), and a lookup hook is consulted separately from the
 * check, which leaves room for DNS rebinding (answer a public address to the check, a private one
 * to the connect). Here the address that was judged is the address that is dialled — the answer
 * is pinned for the life of the connection attempt, so rebinding between check and connect is
 * impossible.
 *
 * What `undici.request()` surfaces when this connector fails (verified against undici 7.30, see
 * test/guarded-connector.test.ts): undici's Client hands the connector's error object, unchanged
 * and unwrapped, to every request queued on that connection, so `request()` rejects with the very
 * `HookdError` created here (`code === 'HOOKD_ERR_EGRESS_DESTINATION_UNREACHABLE'`). undici's
 * `fetch()` is different: it rejects with `TypeError('fetch failed')` whose `cause` is our error;
 * {@link findEgressError} finds it in either shape.
 */

import { promises as dns } from 'node:dns';
import { isIP, Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';

import { buildConnector } from 'undici';

import { HookdError, isHookdError } from '../errors.js';
import { classifyAddress, type EgressPolicy, type EgressRefusalCause } from './egress-policy.js';

/**
 * Resolves a hostname to every address it has. The default uses the operating system's resolver
 * (`dns.promises.lookup(hostname, { all: true, verbatim: true })`, the same one `net.connect`
 * would use); tests inject their own to return chosen answers.
 */
export type GuardLookup = (hostname: string) => Promise<Array<{ address: string; family: 4 | 6 }>>;

/** What the guard tells the application's hook when it refuses a destination. */
export interface EgressRefusal {
  /** Why the destination was refused. */
  readonly cause: EgressRefusalCause;
  /** The host of the webhook URL (a name, or an IP literal without brackets). */
  readonly hostname: string;
  /** The address that was refused, when there is one (not for lookup failures). */
  readonly address?: string;
  /** A human explanation naming the range or the resolver error. For operators' logs only. */
  readonly reason: string;
}

/**
 * Why connecting to an allowed destination failed. Carried in `details.failure` of the
 * connector's error; the message carries a human form of it and nothing more.
 */
export type EgressConnectFailure =
  | 'connection_refused'
  | 'timed_out'
  | 'connection_reset'
  | 'unreachable'
  | 'tls_failed'
  | 'connection_failed';

/**
 * TLS and socket settings the guarded connector accepts: certificate material and TLS knobs only.
 * Anything that could change where a socket goes (`host`, `port`, `path`, `socket`, `lookup` …)
 * is refused at construction, because it would bypass the guard.
 */
export type GuardedTlsOptions = Pick<
  ConnectionOptions,
  | 'ca'
  | 'cert'
  | 'key'
  | 'pfx'
  | 'passphrase'
  | 'crl'
  | 'ciphers'
  | 'sigalgs'
  | 'ecdhCurve'
  | 'dhparam'
  | 'minVersion'
  | 'maxVersion'
  | 'secureOptions'
  | 'secureProtocol'
  | 'honorCipherOrder'
  | 'secureContext'
  | 'rejectUnauthorized'
  | 'checkServerIdentity'
  | 'minDHSize'
> & {
  /** TLS sessions kept for resumption, per connector (undici default 100). */
  maxCachedSessions?: number;
  /** TCP keep-alive on the socket (default on). */
  keepAlive?: boolean;
  /** Delay before the first TCP keep-alive probe, in ms (default 60 s). */
  keepAliveInitialDelay?: number;
};

/** Options of {@link createGuardedConnector}. */
export interface GuardedConnectorOptions {
  /** The egress policy every dialled address must satisfy. */
  policy: EgressPolicy;
  /** The resolver; default {@link systemLookup}. Called exactly once per connection attempt. */
  lookup?: GuardLookup;
  /**
   * Told about every refusal, with the cause and the refused address. Errors it throws (or
   * promises it rejects) are swallowed: a broken hook must not break delivery.
   */
  onRefused?: (refusal: EgressRefusal) => void;
  /**
   * Budget for the whole connection attempt — DNS lookup, TCP connect and TLS handshake, across
   * every pinned address — in ms. Default {@link DEFAULT_CONNECT_TIMEOUT_MS}.
   */
  connectTimeoutMs?: number;
  /** TLS settings (e.g. a private CA). See {@link GuardedTlsOptions}. */
  tls?: GuardedTlsOptions;
}

/** Default budget for one connection attempt (lookup + connect + TLS), in ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** The only message a refused destination ever produces: subscribers can read attempt errors. */
export const EGRESS_REFUSED_MESSAGE = 'webhook destination unreachable';

// With several addresses the budget is split between them, but never below this (unless less is
// left), so one slow address cannot starve the rest and a tiny share cannot fail a healthy host.
const MIN_ADDRESS_BUDGET_MS = 2_000;

const ALLOWED_TLS_KEYS: ReadonlySet<string> = new Set<keyof GuardedTlsOptions>([
  'ca',
  'cert',
  'key',
  'pfx',
  'passphrase',
  'crl',
  'ciphers',
  'sigalgs',
  'ecdhCurve',
  'dhparam',
  'minVersion',
  'maxVersion',
  'secureOptions',
  'secureProtocol',
  'honorCipherOrder',
  'secureContext',
  'rejectUnauthorized',
  'checkServerIdentity',
  'minDHSize',
  'maxCachedSessions',
  'keepAlive',
  'keepAliveInitialDelay',
]);

// Options that net/tls/undici would honour to pick the destination (or an already-open socket)
// instead of the address we judged.
const DESTINATION_KEYS: ReadonlySet<string> = new Set([
  'host',
  'hostname',
  'port',
  'path',
  'socketPath',
  'socket',
  'fd',
  'handle',
  'lookup',
]);

/**
 * Checks TLS options for a guarded connector and returns a plain copy of them.
 *
 * @internal Shared with `delivery-agent.ts` so both name the offending field the same way.
 * @throws HookdError `HOOKD_ERR_UNGUARDABLE_DISPATCHER` for an option that could redirect the
 *   socket; `HOOKD_ERR_INVALID_CONFIG` for any other unknown option.
 */
export function checkGuardedTlsOptions(value: unknown, field: string): GuardedTlsOptions {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HookdError(
      'HOOKD_ERR_INVALID_CONFIG',
      `${field} must be a plain object of TLS options (e.g. { ca })`,
      { field },
    );
  }
  const copy: Record<string, unknown> = {};
  for (const [key, option] of Object.entries(value)) {
    if (option === undefined) continue;
    if (DESTINATION_KEYS.has(key)) {
      throw new HookdError(
        'HOOKD_ERR_UNGUARDABLE_DISPATCHER',
        `${field}.${key} is not allowed: it would choose where sockets connect and bypass the ` +
          `egress (SSRF) guard. Only TLS settings (ca, cert, key, rejectUnauthorized, …) are accepted.`,
        { field: `${field}.${key}` },
      );
    }
    if (!ALLOWED_TLS_KEYS.has(key)) {
      throw new HookdError(
        'HOOKD_ERR_INVALID_CONFIG',
        `${field}.${key} is not a supported option; supported: ${[...ALLOWED_TLS_KEYS].join(', ')}`,
        { field: `${field}.${key}` },
      );
    }
    copy[key] = option;
  }
  return copy;
}

/**
 * The default {@link GuardLookup}: the operating system's resolver, every address, in the order
 * it returned them.
 */
export const systemLookup: GuardLookup = async (hostname) => {
  const answers = await dns.lookup(hostname, { all: true, verbatim: true });
  return answers.map((answer) => ({
    address: answer.address,
    family: answer.family === 6 ? 6 : 4,
  }));
};

/**
 * Finds the guard's error in what an undici call rejected with: the error itself (`request()`,
 * `stream()`, `dispatch()`), or the `cause` chain (`fetch()` wraps it in `TypeError('fetch
 * failed')`).
 */
export function findEgressError(error: unknown): HookdError | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current !== undefined && current !== null; depth++) {
    if (isHookdError(current, 'HOOKD_ERR_EGRESS_DESTINATION_UNREACHABLE')) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * The policy refusal cause, if `error` (or its `cause` chain) is the guard refusing a destination;
 * `undefined` for anything else — including a guard error that only reports an allowed
 * destination failing to connect (that one has `details.failure` instead). Lets a caller treat
 * "not allowed" differently from "not reachable right now".
 */
export function findEgressRefusalCause(error: unknown): EgressRefusalCause | undefined {
  const cause = findEgressError(error)?.details?.['cause'];
  return typeof cause === 'string' && REFUSAL_CAUSES.has(cause)
    ? (cause as EgressRefusalCause)
    : undefined;
}

const REFUSAL_CAUSES: ReadonlySet<string> = new Set<EgressRefusalCause>([
  'internal_address',
  'malformed_address',
  'lookup_failed',
  'empty_answer',
]);

/**
 * Builds the undici connector that enforces the egress policy on every new connection.
 *
 * Per connection attempt: an IP-literal host is judged as is; a hostname is resolved exactly once
 * with `lookup`. An empty answer (`empty_answer`), a resolver error or timeout (`lookup_failed`)
 * or ANY refused address in the answer (`internal_address` / `malformed_address`) refuses the
 * whole connection — a mixed public/private answer never reaches even its public address. The
 * allowed addresses are then dialled in order through undici's `buildConnector`, with the judged
 * IP literal as the socket's host and the original hostname as TLS SNI / certificate name (the
 * HTTP `Host` header is undici's business and stays the URL's host), falling through to the next
 * address on a connect error. There is never a second lookup.
 *
 * A refusal calls `onRefused` and fails the connection with
 * `HookdError('HOOKD_ERR_EGRESS_DESTINATION_UNREACHABLE', 'webhook destination unreachable',
 * { details: { cause } })` — nothing more, since subscribers can read attempt errors. If every
 * allowed address fails to connect, the error is the same code with a short generic reason
 * (`'webhook destination unreachable: connection refused'`), `details.failure`, and the raw
 * socket error (which names the IP and port) only as `cause`.
 *
 * @throws HookdError `HOOKD_ERR_INVALID_CONFIG` / `HOOKD_ERR_UNGUARDABLE_DISPATCHER` for bad
 *   options, at construction.
 */
export function createGuardedConnector(options: GuardedConnectorOptions): buildConnector.connector {
  const policy = options.policy;
  if (typeof policy !== 'object' || policy === null) {
    throw new HookdError('HOOKD_ERR_INVALID_CONFIG', 'policy must be an EgressPolicy object', {
      field: 'policy',
    });
  }
  const lookup = options.lookup ?? systemLookup;
  if (typeof lookup !== 'function') {
    throw new HookdError('HOOKD_ERR_INVALID_CONFIG', 'lookup must be a function', {
      field: 'lookup',
    });
  }
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new HookdError(
      'HOOKD_ERR_INVALID_CONFIG',
      'connectTimeoutMs must be a positive number of milliseconds',
      { field: 'connectTimeoutMs' },
    );
  }
  const tls = checkGuardedTlsOptions(options.tls, 'tls');
  const onRefused = options.onRefused;

  // One undici connector for all attempts, so TLS sessions are cached and resumed per servername.
  // Its own per-socket timeout is a backstop; the attempt budget below is normally shorter.
  // HTTP/2 stays off: ALPN offers http/1.1 only.
  const dial = buildConnector({ ...tls, allowH2: false, timeout: timeoutMs });

  const refuse = (refusal: EgressRefusal): HookdError => {
    if (onRefused !== undefined) {
      try {
        const result: unknown = onRefused(refusal);
        if (result instanceof Promise) result.catch(() => undefined);
      } catch {
        // A throwing hook must not turn a refusal into something else, or break the connector.
      }
    }
    return new HookdError('HOOKD_ERR_EGRESS_DESTINATION_UNREACHABLE', EGRESS_REFUSED_MESSAGE, {
      details: { cause: refusal.cause },
    });
  };

  const connectGuarded = async (target: buildConnector.Options): Promise<Socket> => {
    const deadline = performance.now() + timeoutMs;
    if (target.httpSocket !== undefined && target.httpSocket !== null) {
      // Only a proxy tunnel hands us an open socket; its far end cannot be judged.
      throw new HookdError(
        'HOOKD_ERR_UNGUARDABLE_DISPATCHER',
        'the guarded connector cannot upgrade a tunnelled socket: proxies bypass the egress guard',
      );
    }
    const hostname = unbracket(String(target.hostname));

    let candidates: unknown[];
    if (isIP(hostname) !== 0 || hostname.includes('%')) {
      candidates = [hostname];
    } else {
      let answers: unknown;
      try {
        // Promise.resolve: a resolver from untyped code may return a plain array.
        answers = await withDeadline(Promise.resolve(lookup(hostname)), deadline);
      } catch (error) {
        throw refuse({ cause: 'lookup_failed', hostname, reason: lookupFailureReason(error) });
      }
      if (!Array.isArray(answers) || answers.length === 0) {
        throw refuse({
          cause: 'empty_answer',
          hostname,
          reason: 'the resolver returned no addresses',
        });
      }
      candidates = answers.map((answer) => (answer as { address?: unknown } | null)?.address);
    }

    // Judge the whole answer before dialling anything.
    const addresses: string[] = [];
    for (const candidate of candidates) {
      if (typeof candidate !== 'string') {
        throw refuse({
          cause: 'malformed_address',
          hostname,
          reason: 'the resolver returned an answer without an address',
        });
      }
      const verdict = classifyAddress(candidate, policy);
      if (!verdict.allowed) {
        throw refuse({
          cause: verdict.cause,
          hostname,
          address: candidate,
          reason: verdict.reason,
        });
      }
      if (!addresses.includes(candidate)) addresses.push(candidate);
    }

    // For a hostname, SNI and certificate checks use the name; for an IP-literal URL there is no
    // SNI and the certificate is checked against the IP. A servername undici already chose
    // (from a Host header) is kept.
    const servername = target.servername || (isIP(hostname) === 0 ? hostname : undefined);

    let firstError: unknown;
    for (const [index, address] of addresses.entries()) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) {
        firstError ??= new AttemptTimeoutError();
        break;
      }
      const budget = addressBudget(remaining, addresses.length - index);
      try {
        return await dialOnce(dial, { ...target, hostname: address, servername }, budget);
      } catch (error) {
        firstError ??= error;
      }
    }
    const failure = classifyConnectFailure(firstError);
    throw new HookdError(
      'HOOKD_ERR_EGRESS_DESTINATION_UNREACHABLE',
      `${EGRESS_REFUSED_MESSAGE}: ${failureText(failure, firstError)}`,
      { cause: firstError, details: { failure } },
    );
  };

  return (target, callback) => {
    // A promise settles once, so the callback runs exactly once. A throw from undici's callback
    // surfaces as an unhandled rejection, as a throw from its own connector's socket events would
    // surface as an uncaught exception.
    void connectGuarded(target).then(
      (socket) => callback(null, socket),
      (error: unknown) => callback(asError(error), null),
    );
  };
}

function asError(error: unknown): Error {
  return error instanceof Error
    ? error
    : new HookdError('HOOKD_ERR_INTERNAL', 'guarded connector failed', { cause: error });
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** Go's `partialDeadline`: share the remaining budget between the addresses still to try. */
function addressBudget(remainingMs: number, addressesLeft: number): number {
  const share = remainingMs / addressesLeft;
  if (share >= MIN_ADDRESS_BUDGET_MS) return share;
  return Math.min(remainingMs, MIN_ADDRESS_BUDGET_MS);
}

/** Our own timeout for one dial; its message names nothing. */
class AttemptTimeoutError extends Error {
  readonly code = 'HOOKD_CONNECT_TIMEOUT';
  constructor() {
    super('connect attempt timed out');
  }
}

function dialOnce(
  dial: buildConnector.connector,
  target: buildConnector.Options,
  budgetMs: number,
): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const socket: unknown = dial(target, (error, connected) => {
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      if (error === null) resolve(connected);
      else reject(error);
    });
    // undici's connector returns the socket it opened (its typings say void); when it does we
    // can hold it to this address's share of the budget. Otherwise undici's own connect timeout
    // still bounds it.
    if (!settled && socket instanceof Socket) {
      timer = setTimeout(() => socket.destroy(new AttemptTimeoutError()), budgetMs);
    }
  });
}

function withDeadline<T>(promise: Promise<T>, deadline: number): Promise<T> {
  const remaining = deadline - performance.now();
  if (remaining <= 0) return Promise.reject(new AttemptTimeoutError());
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AttemptTimeoutError()), remaining);
  });
  // A late answer after the timeout is ignored; a late rejection must not go unhandled.
  promise.catch(() => undefined);
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function lookupFailureReason(error: unknown): string {
  if (error instanceof AttemptTimeoutError) return 'the DNS lookup timed out';
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  return `the DNS lookup failed: ${code ?? message}`;
}

const TLS_CODE = /^(?:ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_)/;

function classifyConnectFailure(error: unknown): EgressConnectFailure {
  const code = errorCode(error);
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection_refused';
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'HOOKD_CONNECT_TIMEOUT':
      return 'timed_out';
    case 'ECONNRESET':
    case 'ECONNABORTED':
    case 'EPIPE':
      return 'connection_reset';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
    case 'EADDRNOTAVAIL':
      return 'unreachable';
    case undefined:
      return 'connection_failed';
    default:
      return TLS_CODE.test(code) ? 'tls_failed' : 'connection_failed';
  }
}

function failureText(failure: EgressConnectFailure, error: unknown): string {
  switch (failure) {
    case 'connection_refused':
      return 'connection refused';
    case 'timed_out':
      return 'connection timed out';
    case 'connection_reset':
      return 'connection reset';
    case 'unreachable':
      return 'network unreachable';
    case 'tls_failed': {
      // TLS codes are fixed identifiers (CERT_HAS_EXPIRED …) and useful to the subscriber; the
      // messages that come with them can name addresses, so only the code is kept.
      const code = errorCode(error);
      return code !== undefined && /^[A-Z0-9_]{1,64}$/.test(code)
        ? `TLS handshake failed (${code})`
        : 'TLS handshake failed';
    }
    case 'connection_failed':
      return 'connection failed';
  }
}
