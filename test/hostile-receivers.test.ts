import { once } from 'node:events';
import net from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { MockRepository, type DeliveryAttempt } from '../src/index.js';
import { startManager, stopAll } from './helpers/manager.js';
import { startReceiver } from './helpers/receiver.js';
import { waitFor } from './helpers/wait.js';

/**
 * Receivers that misbehave at the byte level, served from raw TCP sockets. Each one may cost at
 * most the delivery timeout and the capture limits; the attempt is recorded either way and the
 * worker carries on.
 */

interface Hostile {
  readonly url: string;
  /** Bytes the server managed to write before the client went away. */
  written(): number;
  connections(): number;
  close(): Promise<void>;
}

const servers: Hostile[] = [];

async function hostile(
  onRequest: (socket: net.Socket, count: (bytes: number) => void) => void,
): Promise<Hostile> {
  let written = 0;
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    let seen = '';
    socket.on('data', (chunk: Buffer) => {
      const before = seen.length;
      seen += chunk.toString('latin1');
      // Act once the request head has arrived (the body follows; we do not need it).
      if (before === 0 || !seen.slice(0, before).includes('\r\n\r\n')) {
        if (seen.includes('\r\n\r\n')) onRequest(socket, (bytes) => (written += bytes));
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const handle: Hostile = {
    url: `http://127.0.0.1:${port}/hook`,
    written: () => written,
    connections: () => connections,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  servers.push(handle);
  return handle;
}

afterEach(async () => {
  await stopAll();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Delivers one webhook to `url` with a 1 s timeout and one attempt; returns its attempt. */
async function attemptAgainst(
  url: string,
): Promise<{ attempt: DeliveryAttempt; status: string; elapsedMs: number }> {
  const repository = new MockRepository();
  const { manager } = await startManager(
    { deliveryTimeoutMs: 1_000, defaultMaxRetries: 1 },
    repository,
  );
  const subscription = await manager.createSubscription({
    tenantId: 't',
    url,
    secret: 'hostile-secret',
    eventTypes: ['*'],
  });
  const started = Date.now();
  const queued = await manager.queueDelivery({
    subscriptionId: subscription.id,
    eventType: 'a.b',
    payload: { x: 1 },
  });
  const final = await waitFor(async () => {
    const delivery = await repository.getDelivery(queued.id);
    return delivery.status === 'pending' ? null : delivery;
  });
  const elapsedMs = Date.now() - started;
  const [attempt] = await manager.getDeliveryAttempts(queued.id);
  // The worker carries on: a delivery to a sane endpoint still goes out afterwards.
  const sane = await startReceiver();
  try {
    const healthy = await manager.createSubscription({
      tenantId: 't',
      url: sane.url(),
      secret: 'hostile-secret',
      eventTypes: ['*'],
    });
    await manager.queueDelivery({ subscriptionId: healthy.id, eventType: 'a.b', payload: {} });
    await sane.waitForRequests(1);
  } finally {
    await sane.close();
  }
  return { attempt: attempt!, status: final.status, elapsedMs };
}

describe('hostile receivers', () => {
  it('a receiver that accepts the connection and never answers costs the timeout', async () => {
    const server = await hostile(() => undefined);
    const { attempt, status, elapsedMs } = await attemptAgainst(server.url);
    expect(status).toBe('dead_letter');
    expect(attempt).toMatchObject({ statusCode: 0, error: 'request timed out after 1000 ms' });
    expect(elapsedMs).toBeLessThan(3_000);
  });

  it('a receiver that trickles its headers byte by byte costs the timeout', async () => {
    const server = await hostile((socket) => {
      const head = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Slow: ' + 'a'.repeat(100_000);
      let index = 0;
      const timer = setInterval(() => {
        if (socket.destroyed || index >= head.length) return clearInterval(timer);
        socket.write(head[index++]!);
      }, 20);
      socket.on('close', () => clearInterval(timer));
    });
    const { attempt, elapsedMs } = await attemptAgainst(server.url);
    expect(attempt).toMatchObject({ statusCode: 0, error: 'request timed out after 1000 ms' });
    expect(elapsedMs).toBeLessThan(3_000);
  });

  it('a receiver that answers 200 then trickles the body is a success, bounded by the timeout', async () => {
    const server = await hostile((socket) => {
      socket.write(
        'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n',
      );
      const timer = setInterval(() => {
        if (socket.destroyed) return clearInterval(timer);
        socket.write('1\r\nx\r\n');
      }, 50);
      socket.on('close', () => clearInterval(timer));
    });
    const { attempt, status, elapsedMs } = await attemptAgainst(server.url);
    expect(status).toBe('success');
    expect(attempt.statusCode).toBe(200);
    expect(attempt.responseBody).toMatch(/^x+$/);
    expect(attempt.durationMs).toBeGreaterThanOrEqual(900);
    expect(elapsedMs).toBeLessThan(3_000);
  });

  it('an endless body is read only up to the capture limit and then abandoned', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'z');
    const server = await hostile((socket, count) => {
      socket.write(
        'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 5000000000\r\n\r\n',
      );
      const pump = () => {
        while (!socket.destroyed && socket.write(chunk)) count(chunk.length);
      };
      socket.on('drain', pump);
      pump();
    });
    const { attempt, status, elapsedMs } = await attemptAgainst(server.url);
    expect(status).toBe('success');
    expect(attempt.responseBody!.length).toBe(10_240 + 3);
    expect(attempt.responseBody!.endsWith('...')).toBe(true);
    // Only socket buffers' worth left the server: the client stopped reading and closed.
    expect(server.written()).toBeLessThan(64 * 1024 * 1024);
    expect(elapsedMs).toBeLessThan(3_000);
  });

  it('endless headers fail the attempt at 16 KiB instead of filling memory', async () => {
    const server = await hostile((socket, count) => {
      socket.write('HTTP/1.1 200 OK\r\n');
      const timer = setInterval(() => {
        if (socket.destroyed) return clearInterval(timer);
        const line = `X-Junk-${Math.random()}: ${'h'.repeat(1000)}\r\n`;
        socket.write(line);
        count(line.length);
      }, 1);
      socket.on('close', () => clearInterval(timer));
    });
    const { attempt, status } = await attemptAgainst(server.url);
    expect(status).toBe('dead_letter');
    expect(attempt).toMatchObject({ statusCode: 0, error: 'response headers too large' });
    expect(server.written()).toBeLessThan(1024 * 1024);
  });

  it('invalid UTF-8 and NUL bytes in the body are stored as replacement characters', async () => {
    const server = await hostile((socket) => {
      const body = Buffer.concat([
        Buffer.from('ok '),
        Buffer.from([0xff, 0xfe, 0x00, 0xc3]),
        Buffer.from(' end'),
      ]);
      socket.end(
        Buffer.concat([
          Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`),
          body,
        ]),
      );
    });
    const { attempt } = await attemptAgainst(server.url);
    expect(attempt.responseBody).toBe('ok \uFFFD\uFFFD\uFFFD\uFFFD end');
  });

  it.each([
    [999, 'dead_letter'],
    [599, 'dead_letter'],
    [299, 'success'],
  ])('an unusual status code %i is stored as sent', async (code, expected) => {
    const server = await hostile((socket) =>
      socket.end(`HTTP/1.1 ${code} Odd\r\nContent-Length: 0\r\n\r\n`),
    );
    const { attempt, status } = await attemptAgainst(server.url);
    expect(attempt.statusCode).toBe(code);
    expect(status).toBe(expected);
  });

  it('an informational 103 before the real answer is skipped', async () => {
    const server = await hostile((socket) =>
      socket.end('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n'),
    );
    const { attempt, status } = await attemptAgainst(server.url);
    expect(status).toBe('success');
    expect(attempt.statusCode).toBe(204);
  });

  it('a connection reset and a garbage answer are retryable failures with plain errors', async () => {
    const reset = await hostile((socket) => socket.resetAndDestroy());
    const first = await attemptAgainst(reset.url);
    expect(first.attempt).toMatchObject({
      statusCode: 0,
      error: 'connection closed by the receiver',
    });
    const garbage = await hostile((socket) => socket.end('SSH-2.0-OpenSSH_9.0\r\n\r\n'));
    const second = await attemptAgainst(garbage.url);
    expect(second.attempt).toMatchObject({ statusCode: 0, error: 'invalid HTTP response' });
  });
});
