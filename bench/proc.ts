/**
 * One benchmark child process: `node --import tsx bench/proc.ts '<json spec>'`, forked by
 * bench/run.ts with an IPC channel. Roles:
 *
 * - `setup` / `teardown`: fresh storage for a run / drop it.
 * - `serve`: the delivering process. Sends `ready` once built, starts its workers on `go`, stops
 *   them on `stop` and reports `done`.
 * - `fill`: queues `n` deliveries in advance through the batch API.
 * - `steady`: an open-loop producer at `rate`/s for `seconds` through the single-item API.
 * - `idle`: one delivery at a time, waiting for the receiver to see each one.
 * - `enqueue-single`: `n` single-item calls from `callers` concurrent callers.
 * - `enqueue-batch`: `n` items through the batch API, `size` per call, `callers` concurrent.
 *
 * Producing roles wait for `go` too, so the parent can start its clocks and CPU counters.
 */
import { contenderByName } from './contenders/index.js';
import { makePayload, now, percentiles, sleep } from './lib/common.js';
import type { ProcSpec } from './lib/spec.js';

type Message = { type: 'go' } | { type: 'stop' };

const send = (message: Record<string, unknown>) =>
  new Promise<void>((resolve) => process.send!(message, () => resolve()));

function nextMessage(type: Message['type']): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (message: Message) => {
      if (message.type !== type) return;
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
  });
}

/**
 * Samples every allocation, collected or not (BENCH_ALLOC_PROF=<file>): where the garbage that
 * costs GC time comes from. A profiling aid, off in normal runs.
 */
async function allocationProfiler(): Promise<(file: string) => Promise<void>> {
  const { Session } = await import('node:inspector');
  const { writeFileSync } = await import('node:fs');
  const session = new Session();
  session.connect();
  const post = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve, reject) =>
      session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))),
    );
  await post('HeapProfiler.enable');
  await post('HeapProfiler.startSampling', {
    samplingInterval: 16_384,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return async (file) => {
    const result = (await post('HeapProfiler.stopSampling')) as { profile: unknown };
    writeFileSync(file, JSON.stringify(result.profile));
    session.disconnect();
  };
}

/**
 * Counts statements by their first words and rows (BENCH_SQL_STATS=1), printed at exit: how
 * many rows each statement carried. A diagnostic, off in normal runs.
 */
async function sqlStatistics(role: string): Promise<void> {
  const pg = (await import('pg')).default;
  const counts = new Map<string, { statements: number; rows: number }>();
  const original = pg.Pool.prototype.query as (...args: unknown[]) => unknown;
  pg.Pool.prototype.query = function (this: unknown, ...args: unknown[]) {
    const config = args[0] as string | { text: string };
    const text = (typeof config === 'string' ? config : config.text).replace(/\s+/g, ' ').trim();
    const key = text.replace(/^(SET LOCAL [^;]*; )+/, '').slice(0, 40);
    const result = original.apply(this, args) as Promise<{ rowCount?: number }> | undefined;
    void result?.then(
      (done) => {
        const entry = counts.get(key) ?? { statements: 0, rows: 0 };
        entry.statements += 1;
        entry.rows += Array.isArray(done)
          ? Number((done.at(-1) as { rowCount?: number }).rowCount ?? 0)
          : Number(done.rowCount ?? 0);
        counts.set(key, entry);
      },
      () => undefined,
    );
    return result;
  } as typeof pg.Pool.prototype.query;
  process.on('exit', () => {
    for (const [key, entry] of counts) {
      console.error(
        `sql ${role} ${entry.statements} statements, ${(entry.rows / entry.statements).toFixed(1)} rows each: ${key}`,
      );
    }
  });
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]!) as ProcSpec;
  if (process.env['BENCH_SQL_STATS']) await sqlStatistics(spec.role);
  const contender = await contenderByName(spec.contender);
  switch (spec.role) {
    case 'setup': {
      const info = await contender.setup(spec.runId!, spec.urls!);
      await send({ type: 'done', info });
      return;
    }
    case 'teardown': {
      await contender.teardown(spec.info!);
      await send({ type: 'done' });
      return;
    }
    case 'serve': {
      const go = nextMessage('go');
      const stop = nextMessage('stop');
      await send({ type: 'ready' });
      await go;
      if (process.env['BENCH_MEMLOG']) {
        setInterval(() => {
          const m = process.memoryUsage();
          const mb = (x: number) => Math.round(x / 1048576);
          console.error(
            `mem rss ${mb(m.rss)} heapTotal ${mb(m.heapTotal)} heapUsed ${mb(m.heapUsed)} external ${mb(m.external)} arrayBuffers ${mb(m.arrayBuffers)}`,
          );
        }, 1000).unref();
      }
      const allocations = process.env['BENCH_ALLOC_PROF'] ? await allocationProfiler() : null;
      const workers = await contender.start(spec.info!, spec.settings ?? {});
      await send({ type: 'started' });
      await stop;
      await allocations?.(process.env['BENCH_ALLOC_PROF']!);
      await workers.stop();
      await send({ type: 'done' });
      return;
    }
    default:
      break;
  }

  const producer = await contender.producer(spec.info!);
  const go = nextMessage('go');
  await send({ type: 'ready' });
  await go;
  let seq = 0;
  const payload = () => makePayload(now(), seq++);
  let result: Record<string, unknown>;
  switch (spec.role) {
    case 'fill': {
      const started = now();
      const counts = spec.counts!;
      // Interleave endpoints so every claim sees a mix, as real traffic would.
      const left = [...counts];
      let remaining = left.reduce((a, b) => a + b, 0);
      const chunk = Math.min(producer.maxBatch, 100);
      while (remaining > 0) {
        for (let endpoint = 0; endpoint < left.length; endpoint++) {
          const k = Math.min(chunk, left[endpoint]!);
          if (k === 0) continue;
          await producer.batch(
            Array.from({ length: k }, () => payload()),
            endpoint,
          );
          left[endpoint]! -= k;
          remaining -= k;
        }
      }
      result = { seconds: (now() - started) / 1000 };
      break;
    }
    case 'steady': {
      const rate = spec.rate!;
      const seconds = spec.seconds!;
      const endpoints = spec.info!.urls.length;
      const callMs: number[] = [];
      let sent = 0;
      let inFlight = 0;
      let maxInFlight = 0;
      let failures = 0;
      const started = now();
      const end = started + seconds * 1000;
      while (now() < end) {
        const due = Math.floor(((now() - started) / 1000) * rate);
        while (sent < due && inFlight < 5_000) {
          const endpoint = sent % endpoints;
          sent += 1;
          inFlight += 1;
          maxInFlight = Math.max(maxInFlight, inFlight);
          const t = now();
          producer.one(payload(), endpoint).then(
            () => {
              callMs.push(now() - t);
              inFlight -= 1;
            },
            () => {
              failures += 1;
              inFlight -= 1;
            },
          );
        }
        await sleep(1);
      }
      const issuedSeconds = (now() - started) / 1000;
      while (inFlight > 0) await sleep(5);
      result = {
        offeredRate: rate,
        enqueued: sent - failures,
        failures,
        achievedEnqueueRate: Math.round(sent / issuedSeconds),
        maxInFlight,
        callMs: percentiles(callMs),
      };
      break;
    }
    case 'idle': {
      const samples = spec.samples!;
      const endpoints = spec.info!.urls.length;
      for (let i = 0; i < samples; i++) {
        await sleep(Math.random() * 50);
        await producer.one(payload(), i % endpoints);
        const response = await fetch(`${spec.controlUrl}/wait?count=${i + 1}`);
        const body = (await response.json()) as { timedOut?: boolean };
        if (body.timedOut) throw new Error(`delivery ${i + 1} did not arrive within 10 s`);
      }
      result = { samples };
      break;
    }
    case 'enqueue-single': {
      const n = spec.n!;
      let issued = 0;
      const started = now();
      await Promise.all(
        Array.from({ length: spec.callers ?? 32 }, async () => {
          while (issued < n) {
            issued += 1;
            await producer.one(payload(), 0);
          }
        }),
      );
      const seconds = (now() - started) / 1000;
      result = { n, seconds, rowsPerSecond: Math.round(n / seconds) };
      break;
    }
    case 'enqueue-batch': {
      const n = spec.n!;
      const size = Math.min(spec.size ?? producer.maxBatch, producer.maxBatch);
      let issued = 0;
      const started = now();
      await Promise.all(
        Array.from({ length: spec.callers ?? 1 }, async () => {
          while (issued < n) {
            const k = Math.min(size, n - issued);
            issued += k;
            await producer.batch(
              Array.from({ length: k }, () => payload()),
              0,
            );
          }
        }),
      );
      const seconds = (now() - started) / 1000;
      result = { n, size, seconds, rowsPerSecond: Math.round(n / seconds) };
      break;
    }
    default:
      throw new Error(`unknown role ${String(spec.role)}`);
  }
  await producer.close();
  await send({ type: 'done', ...result });
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
