import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { MAX_RESPONSE_BODY_LENGTH } from '../../src/constants.js';
import { createDeliveryAgent } from '../../src/delivery/delivery-agent.js';
import { sendWebhook, type WebhookRequest } from '../../src/delivery/http-sender.js';

const agent = createDeliveryAgent({ allowPrivateDestinations: true });
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await agent.close();
});

interface Received {
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

async function serve(
  respond: (req: http.IncomingMessage, res: http.ServerResponse, received: Received[]) => void,
): Promise<{ url: string; port: number; received: Received[] }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      respond(req, res, received);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  cleanups.push(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });
  return { url: `http://127.0.0.1:${port}/hook`, port, received };
}

const webhook = (url: string, patch: Partial<WebhookRequest> = {}): WebhookRequest => ({
  url,
  headers: { 'content-type': 'application/json', 'x-webhook-delivery-id': 'dlv_test' },
  body: '{"hello":"world"}',
  timeoutMs: 5000,
  bodyLimit: MAX_RESPONSE_BODY_LENGTH,
  ...patch,
});

describe('sendWebhook', () => {
  it('POSTs the body and headers and captures a 200 answer', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-receiver': 'yes' });
      res.end('thanks');
    });
    const response = await sendWebhook(agent.dispatcher, webhook(server.url));
    expect(response).toMatchObject({
      statusCode: 200,
      body: 'thanks',
      error: null,
      failure: null,
      retryAfter: null,
    });
    expect(response.headers['x-receiver']).toBe('yes');
    expect(response.headers['content-type']).toBe('text/plain');
    expect(response.durationMs).toBeGreaterThanOrEqual(0);
    expect(server.received).toHaveLength(1);
    expect(server.received[0]).toMatchObject({
      method: 'POST',
      url: '/hook',
      body: '{"hello":"world"}',
    });
    expect(server.received[0]!.headers['x-webhook-delivery-id']).toBe('dlv_test');
  });

  it('returns a 302 as it is and never follows it', async () => {
    const server = await serve((req, res) => {
      if (req.url === '/hook') {
        res.writeHead(302, { location: '/elsewhere' });
        res.end();
      } else {
        res.end('followed');
      }
    });
    const response = await sendWebhook(agent.dispatcher, webhook(server.url));
    expect(response.statusCode).toBe(302);
    expect(response.failure).toBeNull();
    expect(response.headers['location']).toBe('/elsewhere');
    expect(server.received.map((request) => request.url)).toEqual(['/hook']);
  });

  it('gives up after timeoutMs when the receiver never answers', async () => {
    const server = await serve(() => {
      // Never respond.
    });
    const started = performance.now();
    const response = await sendWebhook(agent.dispatcher, webhook(server.url, { timeoutMs: 300 }));
    const elapsed = performance.now() - started;
    expect(response).toMatchObject({
      statusCode: 0,
      failure: 'timeout',
      error: 'request timed out after 300 ms',
      body: null,
      headers: {},
      retryAfter: null,
    });
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(5000);
  });

  it('reports a refused connection without naming the address or port', async () => {
    const server = http.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    server.close();
    await once(server, 'close');
    const response = await sendWebhook(agent.dispatcher, webhook(`http://127.0.0.1:${port}/`));
    expect(response).toMatchObject({
      statusCode: 0,
      failure: 'connection',
      error: 'connection refused',
    });
    expect(response.error).not.toContain('127.0.0.1');
    expect(response.error).not.toContain(String(port));
  });

  it('returns an unusual status code such as 999 unchanged', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(999, 'Whatever');
      res.end('odd');
    });
    const response = await sendWebhook(agent.dispatcher, webhook(server.url));
    expect(response).toMatchObject({ statusCode: 999, body: 'odd', failure: null });
  });

  it('stops reading a 50 MB body soon after the limit', async () => {
    const total = 50 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x78);
    let written = 0;
    let closed: () => void = () => undefined;
    const socketClosed = new Promise<void>((resolve) => {
      closed = resolve;
    });
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
      res.on('close', () => closed());
      const pump = () => {
        while (written < total && !res.destroyed) {
          written += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        if (written >= total) res.end();
      };
      pump();
    });
    const response = await sendWebhook(agent.dispatcher, webhook(server.url));
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe(`${'x'.repeat(MAX_RESPONSE_BODY_LENGTH)}...`);
    await socketClosed;
    // Whatever the socket buffers held, the sender walked away long before 50 MB.
    expect(written).toBeLessThan(total / 4);
  });

  it('replaces invalid UTF-8 in the body', async () => {
    const server = await serve((_req, res) => {
      res.end(Buffer.from([0x6f, 0x6b, 0xff, 0xfe, 0x00, 0x21]));
    });
    const response = await sendWebhook(agent.dispatcher, webhook(server.url));
    expect(response.body).toBe('ok\uFFFD\uFFFD\uFFFD!');
  });

  it('reports an external abort as "aborted"', async () => {
    const controller = new AbortController();
    const server = await serve(() => {
      // The request arrived: abort it, as a stopping manager would.
      controller.abort();
    });
    const response = await sendWebhook(
      agent.dispatcher,
      webhook(server.url, { signal: controller.signal }),
    );
    expect(response).toMatchObject({
      statusCode: 0,
      failure: 'aborted',
      error: 'request aborted: the sender is shutting down',
    });
    expect(server.received).toHaveLength(1);
  });

  it('captures Retry-After', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(503, { 'retry-after': '120' });
      res.end();
    });
    const response = await sendWebhook(agent.dispatcher, webhook(server.url));
    expect(response).toMatchObject({ statusCode: 503, retryAfter: '120', body: '', failure: null });
  });

  it('keeps the status of an answer whose body stalls past the timeout', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
      // Never ends.
    });
    const response = await sendWebhook(agent.dispatcher, webhook(server.url, { timeoutMs: 300 }));
    expect(response).toMatchObject({
      statusCode: 200,
      body: 'partial',
      failure: null,
      error: null,
    });
  });
});
