import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';

import { Agent, fetch, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';

import { createDeliveryAgent, type DeliveryAgentOptions } from '../src/delivery/delivery-agent.js';
import {
  createGuardedConnector,
  findEgressError,
  findEgressRefusalCause,
  type EgressRefusal,
  type GuardLookup,
} from '../src/delivery/guarded-connector.js';
import { STRICT_EGRESS_POLICY } from '../src/delivery/egress-policy.js';
import { HookdError } from '../src/errors.js';

// Every socket these tests open goes to 127.0.0.0/8. Test resolvers may *answer* public or
// metadata addresses, but only in cases where the guard must refuse before dialling.

interface Receiver {
  readonly port: number;
  readonly url: string;
  readonly requests: Array<{ url: string; host: string | undefined; localAddress: string }>;
  readonly server: http.Server;
}

const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  const pending = cleanups.splice(0).reverse();
  for (const cleanup of pending) await cleanup();
});

async function startReceiver(
  respond: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_req, res) => {
    res.end('ok');
  },
): Promise<Receiver> {
  const requests: Receiver['requests'] = [];
  const server = http.createServer((req, res) => {
    requests.push({
      url: req.url ?? '',
      host: req.headers.host,
      localAddress: req.socket.localAddress ?? '',
    });
    respond(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  cleanups.push(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });
  return { port, url: `http://127.0.0.1:${port}/`, requests, server };
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

function makeAgent(options: DeliveryAgentOptions = {}) {
  const refusals: EgressRefusal[] = [];
  const agent = createDeliveryAgent({
    ...options,
    onEgressRefused: (refusal) => {
      refusals.push(refusal);
      options.onEgressRefused?.(refusal);
    },
  });
  cleanups.push(() => agent.close());
  return { dispatcher: agent.dispatcher, refusals };
}

/** A test resolver with a call log; `answers` is consulted per call (last one repeats). */
function testResolver(...answers: Array<string[] | Error | 'hang'>) {
  const calls: string[] = [];
  const lookup: GuardLookup = (hostname) => {
    calls.push(hostname);
    const answer = answers[Math.min(calls.length - 1, answers.length - 1)];
    if (answer === 'hang') return new Promise(() => undefined);
    if (answer instanceof Error) return Promise.reject(answer);
    return Promise.resolve(
      (answer ?? []).map((address) => ({ address, family: net.isIPv6(address) ? 6 : 4 }) as const),
    );
  };
  return { lookup, calls };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

function expectOpaqueRefusal(error: unknown, cause: string): HookdError {
  // Finding: undici.request() rejects with the connector's error object itself, not a wrapper.
  expect(error).toBeInstanceOf(HookdError);
  const hookd = error as HookdError;
  expect(hookd.code).toBe('HOOKD_ERR_EGRESS_DESTINATION_UNREACHABLE');
  expect(hookd.message).toBe('webhook destination unreachable');
  expect(hookd.details).toEqual({ cause });
  expect(hookd.cause).toBeUndefined();
  expect(findEgressError(error)).toBe(error);
  expect(findEgressRefusalCause(error)).toBe(cause);
  return hookd;
}

describe('the default (strict) policy at connect time', () => {
  it('refuses an IP-literal loopback URL without sending anything', async () => {
    const receiver = await startReceiver();
    const { lookup, calls } = testResolver(['127.0.0.1']);
    const { dispatcher, refusals } = makeAgent({ lookup });

    const error = await rejection(request(receiver.url, { dispatcher }));

    expectOpaqueRefusal(error, 'internal_address');
    const text = `${(error as Error).message} ${JSON.stringify(error)}`;
    expect(text).not.toContain('127.0.0.1');
    expect(text).not.toContain(String(receiver.port));
    expect(receiver.requests).toHaveLength(0);
    // An IP literal is judged directly: the resolver is never asked.
    expect(calls).toHaveLength(0);
    expect(refusals).toEqual([
      {
        cause: 'internal_address',
        hostname: '127.0.0.1',
        address: '127.0.0.1',
        reason: expect.stringContaining('127.0.0.0/8') as unknown,
      },
    ]);
  });

  it('refuses http://localhost:<port>/ resolved by the real system resolver', async () => {
    const receiver = await startReceiver();
    const { dispatcher, refusals } = makeAgent();

    const error = await rejection(
      request(`http://localhost:${receiver.port}/`, { dispatcher, method: 'POST', body: '{}' }),
    );

    expectOpaqueRefusal(error, 'internal_address');
    expect(receiver.requests).toHaveLength(0);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ cause: 'internal_address', hostname: 'localhost' });
    expect(['127.0.0.1', '::1']).toContain(refusals[0]!.address);
  });

  it('refuses the bracketed IPv6 loopback and the IPv4-mapped form of 127.0.0.1', async () => {
    const receiver = await startReceiver();
    const { dispatcher, refusals } = makeAgent();
    for (const url of [
      `http://[::1]:${receiver.port}/`,
      `http://[::ffff:127.0.0.1]:${receiver.port}/`,
    ]) {
      expectOpaqueRefusal(await rejection(request(url, { dispatcher })), 'internal_address');
    }
    expect(refusals.map((refusal) => refusal.hostname)).toEqual(['::1', '::ffff:7f00:1']);
    expect(receiver.requests).toHaveLength(0);
  });

  it('refuses a mixed public/private answer entirely, after exactly one lookup', async () => {
    const receiver = await startReceiver();
    const { lookup, calls } = testResolver(['93.184.216.34', '127.0.0.1']);
    const { dispatcher, refusals } = makeAgent({ lookup });

    const error = await rejection(request(`http://hooks.test:${receiver.port}/`, { dispatcher }));

    expectOpaqueRefusal(error, 'internal_address');
    expect(calls).toEqual(['hooks.test']);
    expect(receiver.requests).toHaveLength(0);
    expect(refusals).toMatchObject([{ hostname: 'hooks.test', address: '127.0.0.1' }]);
  });

  it('survives an onRefused hook that throws', async () => {
    const receiver = await startReceiver();
    const { dispatcher } = makeAgent({
      onEgressRefused: () => {
        throw new Error('broken hook');
      },
    });
    expectOpaqueRefusal(await rejection(request(receiver.url, { dispatcher })), 'internal_address');
  });

  it('is visible through fetch() as the cause of its TypeError', async () => {
    const receiver = await startReceiver();
    const { dispatcher } = makeAgent();
    const error = await rejection(fetch(receiver.url, { dispatcher }));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).cause).toBeInstanceOf(HookdError);
    expect(findEgressError(error)?.details).toEqual({ cause: 'internal_address' });
    expect(findEgressRefusalCause(error)).toBe('internal_address');
  });
});

describe('the relaxed policy (allowPrivateDestinations)', () => {
  it('reaches a loopback receiver', async () => {
    const receiver = await startReceiver();
    const { dispatcher } = makeAgent({ allowPrivateDestinations: true });

    const response = await request(receiver.url, { dispatcher, method: 'POST', body: '{}' });

    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe('ok');
    expect(receiver.requests).toHaveLength(1);
  });

  it('still refuses a mixed answer containing the metadata address, even with loopback first', async () => {
    const receiver = await startReceiver();
    const { lookup } = testResolver(['127.0.0.1', '169.254.169.254']);
    const { dispatcher, refusals } = makeAgent({ allowPrivateDestinations: true, lookup });

    const error = await rejection(request(`http://hooks.test:${receiver.port}/`, { dispatcher }));

    expectOpaqueRefusal(error, 'internal_address');
    expect(receiver.requests).toHaveLength(0);
    expect(refusals).toMatchObject([{ address: '169.254.169.254' }]);
  });

  it('dials the address it judged: one lookup per connection, Host and SNI keep the name', async () => {
    const receiver = await startReceiver();
    // Answers loopback first, then the metadata address on any later call: if the guard
    // resolved twice (check, then connect) the connection would go somewhere else.
    const { lookup, calls } = testResolver(['127.0.0.1'], ['169.254.169.254']);
    // One connection per origin, so the second request deterministically reuses the first one's
    // socket (a pool may open another while the first is still draining).
    const { dispatcher } = makeAgent({
      allowPrivateDestinations: true,
      lookup,
      agentOptions: { connections: 1 },
    });
    const url = `http://hooks.test:${receiver.port}/a`;

    const first = await request(url, { dispatcher });
    await first.body.text();
    const second = await request(url, { dispatcher }); // same keep-alive connection
    await second.body.text();

    expect([first.statusCode, second.statusCode]).toEqual([200, 200]);
    expect(calls).toEqual(['hooks.test']);
    expect(receiver.requests).toEqual([
      { url: '/a', host: `hooks.test:${receiver.port}`, localAddress: '127.0.0.1' },
      { url: '/a', host: `hooks.test:${receiver.port}`, localAddress: '127.0.0.1' },
    ]);
  });

  it('resolves again for a new connection, and judges that answer on its own', async () => {
    const receiver = await startReceiver();
    const { lookup, calls } = testResolver(['127.0.0.1'], ['169.254.169.254']);
    const { dispatcher, refusals } = makeAgent({ allowPrivateDestinations: true, lookup });
    const url = `http://hooks.test:${receiver.port}/`;

    const first = await request(url, { dispatcher, reset: true }); // closes the connection after
    await first.body.text();
    const error = await rejection(request(url, { dispatcher }));

    expect(first.statusCode).toBe(200);
    expectOpaqueRefusal(error, 'internal_address');
    expect(calls).toEqual(['hooks.test', 'hooks.test']);
    expect(refusals).toMatchObject([{ address: '169.254.169.254' }]);
    expect(receiver.requests).toHaveLength(1);
  });

  it('falls through to the next pinned address when one refuses the connection', async () => {
    const receiver = await startReceiver();
    // Nothing listens on 127.0.0.2 (the receiver is bound to 127.0.0.1 only).
    const { lookup, calls } = testResolver(['127.0.0.2', '127.0.0.1']);
    const { dispatcher } = makeAgent({ allowPrivateDestinations: true, lookup });

    const response = await request(`http://hooks.test:${receiver.port}/`, { dispatcher });
    await response.body.text();

    expect(response.statusCode).toBe(200);
    expect(calls).toHaveLength(1);
    expect(receiver.requests).toHaveLength(1);
  });

  it('sends the original hostname as TLS SNI while dialling the pinned IP', async () => {
    const serverNames: string[] = [];
    const server = tls.createServer({
      SNICallback: (name, callback) => {
        serverNames.push(name);
        callback(new Error('no certificate here'), undefined);
      },
    });
    server.on('tlsClientError', () => undefined);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(async () => {
      server.close();
      await once(server, 'close');
    });
    const { port } = server.address() as AddressInfo;
    const { lookup } = testResolver(['127.0.0.1']);
    const { dispatcher } = makeAgent({ allowPrivateDestinations: true, lookup });

    const error = await rejection(request(`https://hooks.test:${port}/`, { dispatcher }));

    expect(serverNames).toEqual(['hooks.test']);
    expect(error).toBeInstanceOf(HookdError);
    expect((error as HookdError).message).toMatch(/^webhook destination unreachable: /);
  });
});

describe('resolver failures', () => {
  it('refuses an empty answer', async () => {
    const { lookup } = testResolver([]);
    const { dispatcher, refusals } = makeAgent({ allowPrivateDestinations: true, lookup });
    const error = await rejection(request('http://hooks.test/', { dispatcher }));
    expectOpaqueRefusal(error, 'empty_answer');
    expect(refusals).toMatchObject([{ cause: 'empty_answer', hostname: 'hooks.test' }]);
  });

  it('refuses when the lookup fails', async () => {
    const failure = Object.assign(new Error('getaddrinfo ENOTFOUND hooks.test'), {
      code: 'ENOTFOUND',
    });
    const { lookup } = testResolver(failure);
    const { dispatcher, refusals } = makeAgent({ lookup });
    const error = await rejection(request('http://hooks.test/', { dispatcher }));
    expectOpaqueRefusal(error, 'lookup_failed');
    expect(refusals).toMatchObject([
      { cause: 'lookup_failed', reason: expect.stringContaining('ENOTFOUND') },
    ]);
  });

  it('refuses when the lookup outlives the connect budget', async () => {
    const { lookup } = testResolver('hang');
    const { dispatcher, refusals } = makeAgent({ lookup, agentOptions: { connectTimeout: 100 } });
    const error = await rejection(request('http://hooks.test/', { dispatcher }));
    expectOpaqueRefusal(error, 'lookup_failed');
    expect(refusals[0]?.reason).toContain('timed out');
  });

  it('refuses an answer that is not an IP address', async () => {
    const { lookup } = testResolver(['not-an-ip']);
    const { dispatcher } = makeAgent({ allowPrivateDestinations: true, lookup });
    const error = await rejection(request('http://hooks.test/', { dispatcher }));
    expectOpaqueRefusal(error, 'malformed_address');
  });
});

describe('connect failures', () => {
  it('reports a refused connection without the address or port', async () => {
    const port = await closedPort();
    const { lookup } = testResolver(['127.0.0.2', '127.0.0.1']);
    const { dispatcher, refusals } = makeAgent({ allowPrivateDestinations: true, lookup });

    const error = await rejection(request(`http://hooks.test:${port}/`, { dispatcher }));

    expect(error).toBeInstanceOf(HookdError);
    const hookd = error as HookdError;
    expect(hookd.code).toBe('HOOKD_ERR_EGRESS_DESTINATION_UNREACHABLE');
    expect(hookd.message).toBe('webhook destination unreachable: connection refused');
    expect(hookd.details).toEqual({ failure: 'connection_refused' });
    const visible = `${hookd.message} ${JSON.stringify(hookd)}`;
    expect(visible).not.toContain('127.0.0');
    expect(visible).not.toContain(String(port));
    // The raw socket error stays available to the application, as `cause` only.
    expect((hookd.cause as { code?: string }).code).toBe('ECONNREFUSED');
    expect(refusals).toHaveLength(0); // not a policy refusal
    expect(findEgressError(error)).toBe(error);
    expect(findEgressRefusalCause(error)).toBeUndefined();
  });

  it('reports a refused connection to an IP-literal URL the same way', async () => {
    const port = await closedPort();
    const { dispatcher } = makeAgent({ allowPrivateDestinations: true });
    const error = await rejection(request(`http://127.0.0.1:${port}/`, { dispatcher }));
    expect((error as Error).message).toBe('webhook destination unreachable: connection refused');
  });

  it('times out a connection that never completes, without naming the address', async () => {
    // Accepts TCP but never answers the TLS ClientHello.
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => sockets.add(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    });
    const { port } = server.address() as AddressInfo;
    const { dispatcher } = makeAgent({
      allowPrivateDestinations: true,
      agentOptions: { connectTimeout: 150 },
    });

    const error = await rejection(request(`https://127.0.0.1:${port}/`, { dispatcher }));

    expect((error as HookdError).message).toBe(
      'webhook destination unreachable: connection timed out',
    );
    expect((error as HookdError).details).toEqual({ failure: 'timed_out' });
  });
});

describe('the delivery agent', () => {
  it('does not follow redirects', async () => {
    const target = await startReceiver();
    const origin = await startReceiver((_req, res) => {
      res.writeHead(302, { location: `${target.url}elsewhere` }).end();
    });
    const { dispatcher } = makeAgent({ allowPrivateDestinations: true });

    const response = await request(origin.url, { dispatcher, method: 'POST', body: '{}' });
    await response.body.text();

    expect(response.statusCode).toBe(302);
    expect(response.headers['location']).toBe(`${target.url}elsewhere`);
    expect(origin.requests).toHaveLength(1);
    expect(target.requests).toHaveLength(0);
  });

  it('fails a response whose headers exceed 16 KiB', async () => {
    const receiver = await startReceiver((_req, res) => {
      res.setHeader('x-padding', 'a'.repeat(20_000));
      res.end('ok');
    });
    const { dispatcher } = makeAgent({ allowPrivateDestinations: true });
    const error = await rejection(request(receiver.url, { dispatcher }));
    expect((error as { code?: string }).code).toBe('UND_ERR_HEADERS_OVERFLOW');
  });

  it('refuses a user-supplied dispatcher', () => {
    const foreign = new Agent();
    cleanups.push(() => foreign.close());
    expect(() => createDeliveryAgent({ dispatcher: foreign })).toThrow(
      expect.objectContaining({
        code: 'HOOKD_ERR_UNGUARDABLE_DISPATCHER',
        field: 'dispatcher',
        message: expect.stringContaining('agentOptions') as unknown,
      }),
    );
  });

  it.each([
    [{ connect: () => undefined }, 'agentOptions.connect'],
    [{ factory: () => new Agent() }, 'agentOptions.factory'],
    [{ connect: { path: '/run/internal.sock' } }, 'agentOptions.connect.path'],
    [{ tls: { host: '10.0.0.1' } }, 'agentOptions.tls.host'],
    [{ connect: { lookup: () => undefined } }, 'agentOptions.connect.lookup'],
    [{ socketPath: '/run/internal.sock' }, 'agentOptions.socketPath'],
  ])('refuses agentOptions that would bypass the guard: %o', (agentOptions, field) => {
    expect(() =>
      createDeliveryAgent({ agentOptions: agentOptions as DeliveryAgentOptions['agentOptions'] }),
    ).toThrow(expect.objectContaining({ code: 'HOOKD_ERR_UNGUARDABLE_DISPATCHER', field }));
  });

  it.each([
    [{ allowH2: true }, 'agentOptions.allowH2'],
    [{ connections: 0 }, 'agentOptions.connections'],
    [{ pipelining: 1.5 }, 'agentOptions.pipelining'],
    [{ connect: { servernameX: 'x' } }, 'agentOptions.connect.servernameX'],
  ])('refuses unsupported or out-of-range agentOptions: %o', (agentOptions, field) => {
    expect(() =>
      createDeliveryAgent({ agentOptions: agentOptions as DeliveryAgentOptions['agentOptions'] }),
    ).toThrow(expect.objectContaining({ code: 'HOOKD_ERR_INVALID_CONFIG', field }));
  });

  it('accepts pool tuning and TLS material as plain objects', async () => {
    const agent = createDeliveryAgent({
      agentOptions: {
        connections: 4,
        keepAliveTimeout: 1_000,
        keepAliveMaxTimeout: 5_000,
        pipelining: 1,
        connectTimeout: 2_000,
        connect: { rejectUnauthorized: true, minVersion: 'TLSv1.2' },
      },
    });
    await agent.close();
    await agent.close(); // idempotent
  });

  it('createGuardedConnector refuses socket-choosing TLS options too', () => {
    expect(() =>
      createGuardedConnector({
        policy: STRICT_EGRESS_POLICY,
        tls: { socket: new net.Socket() } as never,
      }),
    ).toThrow(
      expect.objectContaining({ code: 'HOOKD_ERR_UNGUARDABLE_DISPATCHER', field: 'tls.socket' }),
    );
  });
});
