/**
 * The webhook receiver of the benchmark: its own process, minimal `node:http` on loopback.
 *
 *   node --import tsx bench/receiver.ts <controlPort> <hookPort>[,<hookPort>…] [slowPort:delayMs]
 *
 * Every hook port answers 200 "ok" after reading the body, except a slow port, which answers
 * after `delayMs` (past the sender's timeout). For each request it counts, notes the delivery id
 * (duplicates are reported), and records enqueue→receipt latency from the `"enq_ts":` number the
 * payload carries. One request in 100 has its Standard Webhooks signature checked.
 *
 * Control (separate port, so it never shares the senders' connection pools):
 *   GET /stats            → counts, duplicates, signature checks, latency percentiles
 *   GET /count            → the request count alone (cheap enough to poll)
 *   GET /reset[?since=ms] → zeroes everything; latencies only of deliveries enqueued after `since`
 *   GET /wait?count=N     → answers once N requests have arrived (or after 10 s)
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

import { now, percentiles, standardSignatureValid } from './lib/common.js';

const [controlArg, portsArg, slowArg] = process.argv.slice(2);
const controlPort = Number(controlArg);
const hookPorts = (portsArg ?? '').split(',').filter(Boolean).map(Number);
const [slowPortText, slowDelayText] = (slowArg ?? '').split(':');
const slowPort = slowPortText ? Number(slowPortText) : -1;
const slowDelayMs = Number(slowDelayText ?? 0);

const MAX_SAMPLES = 4_000_000;
const ENQ_MARK = Buffer.from('"enq_ts":');

let count = 0;
let bytes = 0;
let latencyCount = 0;
const latencies = new Float64Array(MAX_SAMPLES);
const perPort = new Map<number, number>();
const ids = new Set<string>();
let duplicates = 0;
let signaturesChecked = 0;
let signaturesBad = 0;
let waiters: Array<{ count: number; respond: () => void }> = [];
let firstAt = 0;
let lastAt = 0;
/** Latencies of deliveries enqueued before this epoch-ms time are not recorded (warm-up). */
let since = 0;

function reset(): void {
  count = 0;
  bytes = 0;
  latencyCount = 0;
  perPort.clear();
  ids.clear();
  duplicates = 0;
  signaturesChecked = 0;
  signaturesBad = 0;
  firstAt = 0;
  lastAt = 0;
}

function enqueueTime(body: Buffer): number {
  const at = body.indexOf(ENQ_MARK);
  if (at < 0) return Number.NaN;
  let end = at + ENQ_MARK.length;
  while (end < body.length && body[end] !== 0x2c && body[end] !== 0x7d) end++;
  return Number(body.toString('latin1', at + ENQ_MARK.length, end));
}

function onHook(port: number, request: IncomingMessage, response: ServerResponse): void {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const t = now();
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    count += 1;
    bytes += body.length;
    if (firstAt === 0) firstAt = t;
    lastAt = t;
    perPort.set(port, (perPort.get(port) ?? 0) + 1);
    const enq = enqueueTime(body);
    if (Number.isFinite(enq) && enq >= since && latencyCount < MAX_SAMPLES) {
      latencies[latencyCount++] = t - enq;
    }
    const id = request.headers['webhook-id'];
    if (typeof id === 'string') {
      if (ids.has(id)) duplicates += 1;
      else ids.add(id);
      if (count % 100 === 1) {
        signaturesChecked += 1;
        const ok = standardSignatureValid(
          id,
          String(request.headers['webhook-timestamp']),
          body,
          String(request.headers['webhook-signature']),
        );
        if (!ok) signaturesBad += 1;
      }
    }
    if (waiters.length > 0) {
      const ready = waiters.filter((waiter) => waiter.count <= count);
      if (ready.length > 0) {
        waiters = waiters.filter((waiter) => waiter.count > count);
        for (const waiter of ready) waiter.respond();
      }
    }
    const send = () => {
      if (response.destroyed) return;
      response.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
      response.end('ok');
    };
    if (port === slowPort) setTimeout(send, slowDelayMs);
    else send();
  });
}

function stats() {
  return {
    pid: process.pid,
    count,
    bytes,
    unique: ids.size,
    duplicates,
    signaturesChecked,
    signaturesBad,
    perPort: Object.fromEntries(perPort),
    firstAt,
    lastAt,
    latencyMs: percentiles(latencies.subarray(0, latencyCount)),
  };
}

for (const port of hookPorts) {
  const server = createServer((request, response) => onHook(port, request, response));
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.listen(port, '127.0.0.1');
}

const control = createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://control');
  const json = (value: unknown) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(value));
  };
  if (url.pathname === '/stats') return json(stats());
  if (url.pathname === '/count') return json({ count });
  if (url.pathname === '/reset') {
    reset();
    since = Number(url.searchParams.get('since') ?? 0);
    return json({ ok: true });
  }
  if (url.pathname === '/wait') {
    const target = Number(url.searchParams.get('count'));
    if (count >= target) return json({ count });
    const timer = setTimeout(() => {
      waiters = waiters.filter((waiter) => waiter !== entry);
      json({ count, timedOut: true });
    }, 10_000);
    const entry = {
      count: target,
      respond: () => {
        clearTimeout(timer);
        json({ count });
      },
    };
    waiters.push(entry);
    return;
  }
  response.writeHead(404);
  response.end();
});
control.listen(controlPort, '127.0.0.1', () => process.send?.({ type: 'ready' }));
process.on('disconnect', () => process.exit(0));
